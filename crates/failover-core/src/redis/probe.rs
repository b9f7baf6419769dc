//! `VERIFY_ROLE`: before publishing a candidate, ask Redis itself whether it is the master.
//!
//! ElastiCache's `CurrentRole` can lag the engine by a few seconds around a failover. With
//! verification on, the reconciler connects to the candidate (TLS and AUTH as configured for
//! ElastiCache in-transit encryption) and publishes it only if `ROLE` answers `master`;
//! anything else counts as "not settled yet" and the reconciler keeps waiting within its
//! settle timeout. It needs network access from the function to the nodes (same VPC).

use std::fmt;
use std::time::Duration;

use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};

use crate::redis::topology::Endpoint;

/// An AUTH token, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

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
    #[error("could not ask {endpoint} for its ROLE: {source} (check REDIS_TLS, REDIS_AUTH_TOKEN and that the function can reach the node)")]
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
    auth_token: Option<Secret>,
    timeout: Duration,
}

impl RoleProbe {
    /// A probe that connects with TLS when `tls`, authenticates with `auth_token` when given,
    /// and gives up on a node after `timeout` (connect and reply each).
    pub fn new(tls: bool, auth_token: Option<Secret>, timeout: Duration) -> Self {
        Self {
            tls,
            auth_token,
            timeout,
        }
    }

    /// Returns `Ok(())` if `endpoint` answers `ROLE` with `master`.
    pub async fn confirm_master(&self, endpoint: &Endpoint) -> Result<(), RoleCheck> {
        let name = endpoint.to_string();
        let unreachable = |source| RoleCheck::Unreachable {
            endpoint: name.clone(),
            source,
        };
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: endpoint.host.clone(),
                port: endpoint.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(endpoint.host.clone(), endpoint.port)
        };
        let mut settings = RedisConnectionInfo::default();
        if let Some(token) = &self.auth_token {
            settings = settings.set_password(&token.0);
        }
        let info = addr
            .into_connection_info()
            .map_err(unreachable)?
            .set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(unreachable)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unreachable)?;
        let reply: Value = redis::cmd("ROLE").query_async(&mut conn).await.map_err(unreachable)?;
        match role_of(&reply) {
            Some("master") => Ok(()),
            other => Err(RoleCheck::NotMaster {
                endpoint: name,
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

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let probe = RoleProbe::new(true, Some(Secret("hunter2".into())), Duration::from_secs(1));
        assert!(!format!("{probe:?}").contains("hunter2"));
    }
}
