//! Shared core of the failover Lambda functions.
//!
//! Functional core, imperative shell: everything that decides (which event is this, which node
//! is primary, whether to write) is a pure function over our own types in [`redis`] and
//! [`trigger`]; [`aws`] holds the thin adapters the handlers use to read and write AWS state.

pub mod aws;
pub mod env;
pub mod redis;
pub mod trigger;
