//! What the failover functions and the endpoint client share, and nothing else.
//!
//! Each function crate owns its own configuration, decisions and AWS adapters; this crate holds
//! only the pieces more than one of them needs.
//!
//! # Layout
//!
//! - [`env`]: typed reading of environment variables, [`env::Var`] (a variable's name, default
//!   and meaning, declared once) and [`env::ConfigError`], whose messages name the variable.
//! - `envelope` (feature `lambda`): recognises how an invocation arrived (SNS, EventBridge, a CloudWatch alarm
//!   action, a direct call) and turns it into our own types. Each function decides what an
//!   envelope means for it.
//! - `init` (feature `lambda`): a configuration error at init, reported to the Runtime API and
//!   printed once, instead of a `Debug` dump and a caller left waiting.
//! - `metrics` (feature `lambda`): one CloudWatch EMF document per invocation on stdout, the
//!   dimensions both functions share, and `METRICS_NAMESPACE`.
//! - [`deadline`]: the Lambda deadline as a monotonic instant, and the margin kept before it.
//! - [`retry`]: bounded exponential backoff and the one "wait and look again" loop.
//! - [`sdk`]: the AWS SDK configuration (timeouts, retries) and [`sdk::CallError`], the
//!   one-line summary of a failed AWS call.
//! - [`endpoint`]: the `host:port` value published by the reconciler and read by the client.
//! - [`secret`]: a value that never reaches a log line or `Debug`.
//! - `redis_conn` (feature `redis`): opening a Redis connection with TLS, AUTH and timeouts.

pub mod deadline;
pub mod endpoint;
pub mod env;
#[cfg(feature = "lambda")]
pub mod envelope;
#[cfg(feature = "lambda")]
pub mod init;
#[cfg(feature = "lambda")]
pub mod metrics;
#[cfg(feature = "redis")]
pub mod redis_conn;
pub mod retry;
pub mod sdk;
pub mod secret;
