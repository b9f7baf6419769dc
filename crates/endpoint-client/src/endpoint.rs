//! Pure helpers: the parameter's `host:port` value ([`Endpoint`], shared with the reconciler
//! that writes it), and sorting Redis errors into "the primary moved" (failover-class),
//! "authentication" and everything else.

use redis::{ErrorKind, RedisError, ServerErrorKind};

pub use failover_core::endpoint::Endpoint;

/// What a failed Redis call means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The node is gone, unreachable, too slow, or no longer the primary: drop the connection
    /// and look the endpoint up again.
    Failover,
    /// The server refused our credentials, or wants some: no lookup will fix that.
    Auth,
    /// Anything else (`WRONGTYPE`, a bad argument, a reply of an unexpected type): the caller's
    /// problem, and the connection is fine.
    Other,
}

/// Classifies a Redis error.
///
/// Failover-class: `READONLY` (we are talking to a replica), `MASTERDOWN`, and every I/O error:
/// connection refused, reset or aborted, broken pipe, unexpected EOF, and timeouts (the redis
/// crate reports its connect and response timeouts as I/O `TimedOut`). TLS handshake failures
/// also surface as I/O errors; they are treated the same way, since the node behind a name may
/// have changed.
pub fn classify(err: &RedisError) -> ErrorClass {
    match err.kind() {
        ErrorKind::Server(ServerErrorKind::ReadOnly) | ErrorKind::Server(ServerErrorKind::MasterDown) => {
            ErrorClass::Failover
        }
        ErrorKind::Io => ErrorClass::Failover,
        ErrorKind::AuthenticationFailed => ErrorClass::Auth,
        _ if matches!(err.code(), Some("NOAUTH" | "WRONGPASS")) => ErrorClass::Auth,
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn server_error(text: &str) -> RedisError {
        // A server error reply as the parser produces it.
        let reply = format!("-{text}\r\n");
        let value = redis::parse_redis_value(reply.as_bytes()).expect("parse error reply");
        match value {
            redis::Value::ServerError(e) => e.into(),
            other => panic!("expected a server error, got {other:?}"),
        }
    }

    #[test]
    fn readonly_masterdown_and_io_errors_are_failover_class() {
        assert_eq!(
            classify(&server_error("READONLY You can't write against a read only replica.")),
            ErrorClass::Failover
        );
        assert_eq!(
            classify(&server_error("MASTERDOWN Link with MASTER is down")),
            ErrorClass::Failover
        );
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::TimedOut,
        ] {
            assert_eq!(
                classify(&io::Error::from(kind).into()),
                ErrorClass::Failover,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn auth_errors_and_command_errors_are_not_failover_class() {
        assert_eq!(
            classify(&server_error("NOAUTH Authentication required.")),
            ErrorClass::Auth
        );
        assert_eq!(
            classify(&RedisError::from((
                ErrorKind::AuthenticationFailed,
                "Password authentication failed"
            ))),
            ErrorClass::Auth
        );
        assert_eq!(
            classify(&server_error(
                "WRONGTYPE Operation against a key holding the wrong kind of value"
            )),
            ErrorClass::Other
        );
        assert_eq!(classify(&server_error("ERR unknown command 'NOPE'")), ErrorClass::Other);
    }
}
