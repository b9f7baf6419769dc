//! The bluegreen-rollback function's configuration and decisions.

pub mod config;
pub mod plan;
pub mod trigger;
