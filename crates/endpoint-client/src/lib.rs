//! A Redis client for applications that follows the primary endpoint published by
//! redis-reconciler in an SSM parameter, through ElastiCache failovers.
//!
//! After a failover, clients commonly stay connected to the demoted primary (every write fails
//! with `READONLY`) or keep a cached DNS answer. [`EndpointClient`] reads the endpoint
//! (`host:port`) from the parameter on first use and caches it together with one multiplexed
//! connection. When a command fails in a way that means "this is no longer the primary"
//! (`READONLY`, a refused, reset or dropped connection, a timeout on a connection that no longer
//! answers) it drops the connection and returns the error; a background task re-reads the
//! parameter on a jittered, backing-off schedule ([`ClientConfig::refresh_first_window`],
//! [`ClientConfig::refresh_max_interval`]) while calls keep using the cached endpoint. One
//! connection attempt runs at a time and every call is bounded by
//! [`ClientConfig::call_timeout`]. Retrying is the caller's decision: [`ClientError::is_failover`]
//! says whether a retry is expected to succeed once the new primary is published.
//!
//! ```no_run
//! # async fn run() -> Result<(), endpoint_client::ClientError> {
//! use endpoint_client::{ClientConfig, EndpointClient};
//!
//! let sdk = aws_config::load_from_env().await;
//! let client = EndpointClient::new(aws_sdk_ssm::Client::new(&sdk), ClientConfig::new("/app/orders/redis"));
//! let _: () = client.query(redis::cmd("SET").arg("greeting").arg("hello")).await?;
//! let value: String = client.query(redis::cmd("GET").arg("greeting")).await?;
//! # Ok(()) }
//! ```
//!
//! Modules: [`config`] (settings), [`error`] (the one error type), [`endpoint`] (parsing the
//! parameter value and classifying Redis errors), `refresh` (private: the read schedule),
//! [`client`] (the client itself).

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod endpoint;
pub mod error;
mod refresh;

pub use client::{EndpointClient, Stats};
pub use config::ClientConfig;
pub use endpoint::Endpoint;
pub use error::ClientError;
