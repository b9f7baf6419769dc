//! Pure helpers: parsing the parameter's `host:port` value, and sorting Redis errors into
//! "the primary moved" (failover-class), "authentication" and everything else.

use std::fmt;

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// A Redis endpoint as redis-reconciler publishes it: `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// DNS name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `host:port` (surrounding whitespace ignored; IPv6 as `[addr]:port`). The error
    /// says what is wrong, for [`ClientError::BadEndpoint`](crate::ClientError::BadEndpoint).
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let (host, port) = value.rsplit_once(':').ok_or_else(|| "there is no `:port`".to_owned())?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        if host.contains(char::is_whitespace) || host.contains('/') {
            return Err(format!("{host:?} is not a host name or address"));
        }
        let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port number"))?;
        if port == 0 {
            return Err("port 0 is not a valid port".into());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

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

    #[test]
    fn parses_host_port_as_the_reconciler_writes_it() {
        let e = Endpoint::parse("orders-002.abc123.0001.use1.cache.amazonaws.com:6379").unwrap();
        assert_eq!(e.host, "orders-002.abc123.0001.use1.cache.amazonaws.com");
        assert_eq!(e.port, 6379);
        assert_eq!(
            Endpoint::parse(" 127.0.0.1:7001\n").unwrap().to_string(),
            "127.0.0.1:7001"
        );
        let v6 = Endpoint::parse("[::1]:6380").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 6380));
        assert_eq!(v6.to_string(), "[::1]:6380");
    }

    #[test]
    fn rejects_values_that_are_not_host_port() {
        for (value, why) in [
            ("orders.cache.amazonaws.com", "no `:port`"),
            (":6379", "host is empty"),
            ("host:http", "not a port number"),
            ("host:70000", "not a port number"),
            ("host:0", "port 0"),
            ("redis://host:6379", "not a host name"),
            ("", "no `:port`"),
        ] {
            let err = Endpoint::parse(value).unwrap_err();
            assert!(err.contains(why), "{value:?}: {err}");
        }
    }

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
