//! Client settings: which parameter to follow, how often it may be re-read, timeouts, TLS and AUTH.

use std::fmt;
use std::time::Duration;

/// How an [`EndpointClient`](crate::EndpointClient) finds and talks to the Redis primary.
///
/// Build it with [`ClientConfig::new`] and adjust the public fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// The SSM parameter holding the primary's `host:port`, e.g. `/app/orders/redis`.
    pub parameter: String,
    /// The least time between two reads of the parameter (default 1 s). After a failover-class
    /// error the parameter is re-read at once if this much time (plus jitter) has passed since
    /// the last read; otherwise the cached endpoint is reconnected to.
    pub refresh_min_interval: Duration,
    /// Upper bound of the random delay added to `refresh_min_interval` for each read (default
    /// 250 ms), so many clients that fail at the same moment spread their reads.
    pub refresh_jitter: Duration,
    /// Time to open a connection, TLS handshake and AUTH included (default 1 s).
    pub connect_timeout: Duration,
    /// Time to wait for the answer to one command (default 1 s). A timeout counts as a
    /// failover-class error.
    pub command_timeout: Duration,
    /// Connect with TLS (`rediss://`), as ElastiCache in-transit encryption requires. Server
    /// certificates are checked against the system's trusted roots (ElastiCache uses public CAs)
    /// unless [`tls_root_ca_pem`](Self::tls_root_ca_pem) is set.
    pub tls: bool,
    /// PEM certificates of the CA(s) to trust instead of the system roots, for a private CA.
    /// Only used when `tls` is true. Leave `None` for ElastiCache.
    pub tls_root_ca_pem: Option<Vec<u8>>,
    /// The AUTH token (the password of the `default` user), when the group has one.
    pub auth_token: Option<String>,
}

impl ClientConfig {
    /// Settings for `parameter` with the defaults: refresh at most every 1 s + up to 250 ms of
    /// jitter, 1 s connect and command timeouts, no TLS, no AUTH.
    pub fn new(parameter: impl Into<String>) -> Self {
        Self {
            parameter: parameter.into(),
            refresh_min_interval: Duration::from_secs(1),
            refresh_jitter: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            tls: false,
            tls_root_ca_pem: None,
            auth_token: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    /// Like a derived `Debug`, but the AUTH token is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("parameter", &self.parameter)
            .field("refresh_min_interval", &self.refresh_min_interval)
            .field("refresh_jitter", &self.refresh_jitter)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("tls", &self.tls)
            .field("tls_root_ca_pem", &self.tls_root_ca_pem.as_ref().map(|_| "<set>"))
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let cfg = ClientConfig::new("/app/orders/redis");
        assert_eq!(cfg.parameter, "/app/orders/redis");
        assert_eq!(cfg.refresh_min_interval, Duration::from_secs(1));
        assert_eq!(cfg.refresh_jitter, Duration::from_millis(250));
        assert_eq!(cfg.connect_timeout, Duration::from_secs(1));
        assert_eq!(cfg.command_timeout, Duration::from_secs(1));
        assert!(!cfg.tls && cfg.auth_token.is_none() && cfg.tls_root_ca_pem.is_none());
    }

    #[test]
    fn debug_never_prints_the_auth_token() {
        let mut cfg = ClientConfig::new("/p");
        cfg.auth_token = Some("s3cret-token".into());
        let text = format!("{cfg:?}");
        assert!(!text.contains("s3cret-token"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
