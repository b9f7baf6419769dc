//! redis-reconciler: publishes the writable endpoint of ElastiCache (Redis OSS / Valkey)
//! replication groups into SSM parameters, so applications find the node that accepts writes
//! now. Configuration: this crate's README.
//!
//! # Layout
//!
//! The decisions are pure functions over our own types; the shell around them talks to AWS.
//!
//! - [`config`]: the environment variables, declared once ([`config::VARIABLES`]) and
//!   validated at init.
//! - [`trigger`]: what an invocation asks for (which groups, and why), from its envelope.
//! - [`topology`]: a replication group as we see it, and [`topology::pick_endpoint`], the
//!   endpoint to publish (the single member whose role is primary, or nothing).
//! - [`plan`]: which targets an event concerns, whether to write, the parameter description,
//!   and the [`plan::Response`] that reports it all.
//! - [`probe`]: `VERIFY_ROLE`, asking Redis itself for its role.
//! - [`elasticache`], [`ssm`]: adapters that turn SDK calls into those types and back.
//! - [`metrics`]: the one EMF document each invocation emits, derived (purely) from the results.
//! - [`handler`]: the shell: event -> targets -> the first look (one describe, batched reads)
//!   -> each target's flow -> response; `flow` (private): one target's named steps, settle,
//!   read, write, check; [`error`]: the errors and progress they report.
//!
//! `main.rs` only wires: logging, `ReconcilerConfig::from_env`, the SDK configuration, the runtime.

pub mod config;
pub mod elasticache;
pub mod error;
mod flow;
pub mod handler;
pub mod metrics;
pub mod plan;
pub mod probe;
pub mod ssm;
pub mod topology;
pub mod trigger;
