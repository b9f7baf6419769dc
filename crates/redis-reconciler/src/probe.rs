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
///
/// It names the node by its id, never by its address: the address is the value of the
/// parameter, which may be a SecureString, and these texts reach logs and responses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleCheck {
    /// The node answered, but it is not the master.
    #[error("node {node} reports ROLE {role}, not master; waiting for the promotion to finish")]
    NotMaster {
        /// The candidate's id, e.g. `orders-002`.
        node: String,
        /// What it said (`slave`, `sentinel`, ...).
        role: String,
    },
    /// The node could not be asked (refused, timed out, TLS or AUTH failure).
    #[error("could not ask node {node} for its ROLE: {detail} (check {}, the AUTH token and that the function can reach the node)", crate::config::TLS.name)]
    Unreachable {
        /// The candidate's id.
        node: String,
        /// The Redis client's error, with the node's address replaced by its id. Kept as text,
        /// not as a source: the client's errors (a TLS name mismatch, say) can name the host.
        detail: String,
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

    /// Returns `Ok(())` if `endpoint` (the node `node`) answers `ROLE` with `master`,
    /// authenticating with `auth_token` when given.
    pub async fn confirm_master(
        &self,
        endpoint: &Endpoint,
        node: &str,
        auth_token: Option<&Secret>,
    ) -> Result<(), RoleCheck> {
        let unreachable = |source: redis::RedisError| RoleCheck::Unreachable {
            node: node.to_owned(),
            detail: without_address(&source.to_string(), endpoint, node),
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
                node: node.to_owned(),
                role: other.unwrap_or("unknown").to_owned(),
            }),
        }
    }
}

/// `text` with every mention of `endpoint`'s host replaced by `node`.
fn without_address(text: &str, endpoint: &Endpoint, node: &str) -> String {
    if endpoint.host.is_empty() {
        return text.to_owned();
    }
    text.replace(&endpoint.host, node)
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

    #[tokio::test]
    async fn an_unreachable_node_is_named_by_its_id_never_by_its_address() {
        // GIVEN a node that refuses connections, at an address that must stay secret
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let endpoint = Endpoint::new("127.0.0.1", port);
        let probe = RoleProbe::new(false, Duration::from_millis(500));
        // WHEN it is asked for its role
        let err = probe.confirm_master(&endpoint, "orders-002", None).await.unwrap_err();
        // THEN no text of the error carries the address
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(text.contains("orders-002"), "{text}");
            assert!(
                !text.contains("127.0.0.1") && !text.contains(&port.to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn an_address_in_a_client_error_is_replaced_by_the_node_id() {
        let endpoint = Endpoint::new("orders-002.abc.cache.amazonaws.com", 6379);
        assert_eq!(
            without_address(
                "invalid peer certificate: NotValidForName: orders-002.abc.cache.amazonaws.com",
                &endpoint,
                "orders-002"
            ),
            "invalid peer certificate: NotValidForName: orders-002"
        );
    }

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
