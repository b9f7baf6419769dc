//! redis-reconciler: publishes the real primary of ElastiCache replication groups into SSM
//! Parameter Store. `main.rs` wires the Lambda runtime; [`handler`] does the work.

pub mod handler;
