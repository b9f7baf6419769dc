//! Shared core of the failover Lambda functions.
//!
//! Functional core, imperative shell: everything that decides (which event is this, which node
//! is primary, whether to write, which weights roll back) is a pure function over our own types
//! in [`trigger`], [`redis`] and [`bluegreen`]; [`aws`] holds the thin adapters the handlers use
//! to read and write AWS state.

pub mod aws;
pub mod backoff;
pub mod bluegreen;
pub mod deadline;
pub mod env;
pub mod redis;
pub mod trigger;
