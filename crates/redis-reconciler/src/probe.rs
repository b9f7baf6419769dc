//! `VERIFY_ROLE`: before publishing a candidate, ask Redis itself whether it is the master.
//!
//! ElastiCache's `CurrentRole` can lag the engine by a few seconds around a failover. With
//! verification on, the reconciler connects to the candidate (TLS and AUTH as configured for
//! ElastiCache in-transit encryption) and publishes it only if `ROLE` answers `master`;
//! anything else counts as "not settled yet" and the reconciler keeps waiting within its
//! settle timeout. It needs network access from the function to the nodes (same VPC).

use std::time::Duration;

use failover_core::redis_conn::{self, Security, Timeouts};
use failover_core::secret::Secret;
use redis::Value;

use crate::topology::Endpoint;

/// Why a candidate was not confirmed as master.
#[derive(Debug, thiserror::Error)]
pub enum RoleCheck {
    /// The node answered, but it is not the master.
    #[error("{endpoint} reports ROLE {role}, not master; waiting for the promotion to finish")]
    NotMaster {
        /// The candidate.
        endpoint: String,
        /// What it said (`slave`, `sentinel`, ...).
        role: String,
    },
    /// The node could not be asked (refused, timed out, TLS or AUTH failure).
    #[error("could not ask {endpoint} for its ROLE: {source} (check REDIS_TLS, the AUTH token and that the function can reach the node)")]
    Unreachable {
        /// The candidate.
        endpoint: String,
        /// The Redis client error.
        #[source]
        source: redis::RedisError,
    },
}

/// Asks Redis nodes for their role.
#[derive(Debug, Clone)]
pub struct RoleProbe {
    tls: bool,
    timeouts: Timeouts,
}

impl RoleProbe {
    /// A probe that connects with TLS when `tls` and gives up on a node after `timeout`
    /// (connect and reply each).
    pub fn new(tls: bool, timeout: Duration) -> Self {
        Self {
            tls,
            timeouts: Timeouts {
                connect: timeout,
                response: timeout,
            },
        }
    }

    /// Returns `Ok(())` if `endpoint` answers `ROLE` with `master`, authenticating with
    /// `auth_token` when given.
    pub async fn confirm_master(&self, endpoint: &Endpoint, auth_token: Option<&Secret>) -> Result<(), RoleCheck> {
        let unreachable = |source| RoleCheck::Unreachable {
            endpoint: endpoint.to_string(),
            source,
        };
        let security = Security {
            tls: self.tls,
            root_ca_pem: None,
            auth_token: auth_token.cloned(),
        };
        let mut conn = redis_conn::connect(endpoint, &security, self.timeouts)
            .await
            .map_err(unreachable)?;
        let reply: Value = redis::cmd("ROLE").query_async(&mut conn).await.map_err(unreachable)?;
        match role_of(&reply) {
            Some("master") => Ok(()),
            other => Err(RoleCheck::NotMaster {
                endpoint: endpoint.to_string(),
                role: other.unwrap_or("unknown").to_owned(),
            }),
        }
    }
}

/// The first element of a `ROLE` reply: `master`, `slave` or `sentinel`.
pub fn role_of(reply: &Value) -> Option<&str> {
    let Value::Array(items) = reply else { return None };
    match items.first()? {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_replies_are_read_from_their_first_element() {
        let master = Value::Array(vec![
            Value::BulkString(b"master".to_vec()),
            Value::Int(0),
            Value::Array(vec![]),
        ]);
        assert_eq!(role_of(&master), Some("master"));
        let slave = Value::Array(vec![
            Value::BulkString(b"slave".to_vec()),
            Value::BulkString(b"127.0.0.1".to_vec()),
        ]);
        assert_eq!(role_of(&slave), Some("slave"));
        assert_eq!(role_of(&Value::Nil), None);
        assert_eq!(role_of(&Value::Array(vec![])), None);
    }
}
