//! bluegreen-rollback: moves Route 53 weighted blue/green traffic back to blue when a green
//! alarm fires, and shifts traffic on command. Configuration: this crate's README.
//!
//! # Layout
//!
//! - [`config`]: the environment variables, declared once ([`config::VARIABLES`]) and
//!   validated at init.
//! - [`trigger`]: what an invocation is (an alarm state change or a command), from its envelope.
//! - [`plan`]: the pure decisions: [`plan::intent`] (allow-list, alarm state) and
//!   [`plan::plan`] (which weights to write, never 0/0, nothing when already in place), and
//!   the [`plan::Response`] that reports them.
//! - [`route53`]: the adapter: reads the pair into our own [`route53::Pair`] and submits the
//!   change the plan asks for.
//! - [`metrics`]: the one EMF document each invocation emits, derived (purely) from the outcome.
//! - [`handler`]: the shell: event -> intent -> attempts (read, plan, submit; again on a
//!   conflict or a busy Route 53) -> wait for INSYNC -> response; [`error`]: why an invocation
//!   failed, and whether a change may have been applied.
//!
//! `main.rs` only wires: logging, `RollbackConfig::from_env`, the SDK configuration, the runtime.

pub mod config;
pub mod error;
pub mod handler;
pub mod metrics;
pub mod plan;
pub mod route53;
pub mod trigger;
