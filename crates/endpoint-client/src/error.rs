//! The one error type of the client, with messages written for the operator.

use redis::RedisError;

/// A boxed error kept as the `source` of an SSM read failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call to [`EndpointClient`](crate::EndpointClient) failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `GetParameter` failed (after the SDK's own retries): missing parameter, IAM, throttling,
    /// network.
    #[error("Failed to read SSM parameter {parameter}: {detail}")]
    ReadParameter {
        /// The parameter.
        parameter: String,
        /// `Code: message` of a service error, or the transport error chain.
        detail: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The parameter holds something that is not `host:port`. A cached endpoint stays in use.
    #[error("SSM parameter {parameter} holds {value:?}, which is not a Redis endpoint ({reason}): expected host:port, as redis-reconciler writes it")]
    BadEndpoint {
        /// The parameter.
        parameter: String,
        /// Its value (`(SecureString: value not shown)` for a SecureString).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The parameter names a host outside `allowed_host_suffixes`. A cached endpoint stays in use.
    #[error("SSM parameter {parameter} names host {host:?}, which does not end with any of allowed_host_suffixes ({allowed}): refused")]
    NotAllowed {
        /// The parameter.
        parameter: String,
        /// The host it names (`(SecureString: value not shown)` for a SecureString).
        host: String,
        /// The allowed suffixes.
        allowed: String,
    },
    /// The call did not finish within `call_timeout`.
    #[error("No answer within call_timeout ({after:?}) while {doing}")]
    Deadline {
        /// `call_timeout`.
        after: std::time::Duration,
        /// What the call was doing.
        doing: &'static str,
    },
    /// No endpoint is known yet: the last read of the parameter failed.
    #[error("No Redis endpoint known yet from SSM parameter {parameter}: {last_error}; the next read is in {} ms", retry_in.as_millis())]
    NotResolved {
        /// The parameter.
        parameter: String,
        /// Why the last read failed.
        last_error: String,
        /// Time until the next read is allowed.
        retry_in: std::time::Duration,
    },
    /// Opening a connection failed: refused, timed out, TLS handshake. Failover-class.
    #[error("Failed to connect to Redis at {endpoint}: {}", describe(source))]
    Connect {
        /// `host:port`.
        endpoint: String,
        /// The redis crate's error.
        #[source]
        source: RedisError,
    },
    /// The server refused the AUTH token, or requires one that was not configured.
    #[error("Redis at {endpoint} rejected the connection's authentication: {}. {hint}", describe(source).trim_end_matches('.'))]
    Auth {
        /// `host:port`.
        endpoint: String,
        /// What to check.
        hint: &'static str,
        /// The redis crate's error.
        #[source]
        source: RedisError,
    },
    /// A command failed. `failover` says whether it was failover-class (`READONLY`, I/O,
    /// timeout), in which case the connection was dropped and the endpoint marked stale.
    #[error("Redis command failed on {endpoint}: {}{}", describe(source), if *failover { " (the endpoint will be looked up again and reconnected on the next call)" } else { "" })]
    Command {
        /// `host:port`.
        endpoint: String,
        /// Whether the endpoint was marked stale.
        failover: bool,
        /// The redis crate's error.
        #[source]
        source: RedisError,
    },
}

/// A Redis error as operators know it: a server error reply as Redis writes it
/// (`READONLY You can't write against a read only replica.`), anything else as the redis crate
/// describes it.
fn describe(err: &RedisError) -> String {
    match (err.code(), err.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => err.to_string(),
    }
}

impl ClientError {
    /// True when the error looks like a failover in progress (the node is gone, refuses
    /// connections, timed out, or answered `READONLY`): the client dropped its connection and
    /// will look the endpoint up again, so retrying after a short pause is expected to succeed
    /// once the new primary is published.
    pub fn is_failover(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::Command { failover: true, .. } | ClientError::Deadline { .. }
        )
    }

    /// The Redis error behind this one, if any (to inspect its kind or code).
    pub fn redis_error(&self) -> Option<&RedisError> {
        match self {
            ClientError::Connect { source, .. }
            | ClientError::Auth { source, .. }
            | ClientError::Command { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(text: &str) -> RedisError {
        match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()) {
            Ok(redis::Value::ServerError(e)) => e.into(),
            other => panic!("expected a server error, got {other:?}"),
        }
    }

    #[test]
    fn server_errors_read_as_redis_writes_them() {
        let err = ClientError::Command {
            endpoint: "10.0.0.1:6379".into(),
            failover: true,
            source: server_error("READONLY You can't write against a read only replica."),
        };
        assert_eq!(
            err.to_string(),
            "Redis command failed on 10.0.0.1:6379: READONLY You can't write against a read only replica. \
             (the endpoint will be looked up again and reconnected on the next call)"
        );
        assert!(err.is_failover());
        let err = ClientError::Command {
            endpoint: "10.0.0.1:6379".into(),
            failover: false,
            source: server_error("WRONGTYPE Operation against a key holding the wrong kind of value"),
        };
        assert_eq!(
            err.to_string(),
            "Redis command failed on 10.0.0.1:6379: WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        assert!(!err.is_failover());
    }

    #[test]
    fn auth_and_parameter_errors_say_what_to_do() {
        let err = ClientError::Auth {
            endpoint: "h:1".into(),
            hint: "The server requires AUTH: set auth_token to the replication group's AUTH token",
            source: server_error("NOAUTH Authentication required."),
        };
        assert_eq!(
            err.to_string(),
            "Redis at h:1 rejected the connection's authentication: NOAUTH Authentication required. \
             The server requires AUTH: set auth_token to the replication group's AUTH token"
        );
        assert!(!err.is_failover());
        let err = ClientError::BadEndpoint {
            parameter: "/app/orders/redis".into(),
            value: "orders.cache.amazonaws.com".into(),
            reason: "there is no `:port`".into(),
        };
        assert!(err
            .to_string()
            .starts_with("SSM parameter /app/orders/redis holds \"orders.cache.amazonaws.com\""));
        let err = ClientError::ReadParameter {
            parameter: "/app/orders/redis".into(),
            detail: "ParameterNotFound: no such parameter".into(),
            source: "x".into(),
        };
        assert_eq!(
            err.to_string(),
            "Failed to read SSM parameter /app/orders/redis: ParameterNotFound: no such parameter"
        );
    }
}
