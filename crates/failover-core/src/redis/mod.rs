//! The redis-reconciler's configuration and decisions.

pub mod config;
pub mod plan;
pub mod probe;
pub mod topology;
pub mod trigger;
