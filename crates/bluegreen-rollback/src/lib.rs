//! bluegreen-rollback: rolls Route 53 weighted blue/green records back to blue when a green
//! alarm fires, and shifts traffic on command. `main.rs` wires the Lambda runtime; [`handler`]
//! does the work.

pub mod handler;
