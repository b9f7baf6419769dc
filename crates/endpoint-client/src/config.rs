//! Client settings: which parameter to follow, how often it may be re-read, timeouts, TLS and AUTH.

use std::fmt;
use std::time::Duration;

/// How an [`EndpointClient`](crate::EndpointClient) finds and talks to the Redis primary.
///
/// Build it with [`ClientConfig::new`] and adjust the public fields. The read schedule and its
/// fleet arithmetic are in the crate's README.
#[derive(Clone)]
pub struct ClientConfig {
    /// The SSM parameter holding the primary's `host:port`, e.g. `/app/orders/redis`.
    pub parameter: String,
    /// The whole time one call may take: waiting for a connection attempt in progress,
    /// connecting, and the command (default 2 s). Past it the call fails with `Deadline`.
    pub call_timeout: Duration,
    /// Time to open a connection, TLS handshake and AUTH included (default 1 s).
    pub connect_timeout: Duration,
    /// Time to wait for the answer to one command (default 1 s). A timeout is a failover signal
    /// only if the connection then fails a `PING` within `connect_timeout` too.
    pub command_timeout: Duration,
    /// Time one `GetParameter` may take, the SDK's retries included (default 2 s). A read runs in
    /// the background while an endpoint is cached, so a slow read never holds up a call.
    pub read_timeout: Duration,
    /// After a failover-class error, the first re-read of the parameter comes at a random moment
    /// within this window (default 100 ms).
    pub refresh_first_window: Duration,
    /// While the value read has not changed, the wait between re-reads doubles from
    /// `2 × refresh_first_window` up to this cap (default 500 ms), each wait drawn from
    /// `[cap/2, cap]`; a throttled read waits `[cap, 2 × cap]`. See
    /// [`max_reads_after_failure`](Self::max_reads_after_failure).
    pub refresh_max_interval: Duration,
    /// Without errors, the parameter is re-read every `[revalidate_interval/2,
    /// revalidate_interval]` (default 60 s), so a client that only reads moves to the new
    /// primary in bounded time. `Duration::ZERO` turns it off.
    pub revalidate_interval: Duration,
    /// Host suffixes the parameter may name, e.g. `.cache.amazonaws.com` (default: empty, any
    /// host). A value naming another host is refused and never replaces a cached endpoint.
    pub allowed_host_suffixes: Vec<String>,
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
    /// Settings for `parameter` with the defaults (see each field).
    pub fn new(parameter: impl Into<String>) -> Self {
        Self {
            parameter: parameter.into(),
            call_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(2),
            refresh_first_window: Duration::from_millis(100),
            refresh_max_interval: Duration::from_millis(500),
            revalidate_interval: Duration::from_secs(60),
            allowed_host_suffixes: Vec::new(),
            tls: false,
            tls_root_ca_pem: None,
            auth_token: None,
        }
    }

    /// The most `GetParameter` calls one client makes in `window` after a failover-class error
    /// while the parameter keeps its value, plus the read that then sees a new value: one
    /// within `refresh_first_window`, then one after each wait, where wait `k` lasts at least
    /// half of `min(2^k × refresh_first_window, refresh_max_interval)`. The README's fleet
    /// arithmetic is this number times the number of processes.
    pub fn max_reads_after_failure(&self, window: Duration) -> usize {
        let mut reads = 1;
        let mut at = Duration::ZERO;
        for k in 1u32..10_000 {
            at += self.schedule().bound(k) / 2;
            if at > window {
                break;
            }
            reads += 1;
        }
        reads + 1
    }

    /// The read schedule these settings describe.
    pub(crate) fn schedule(&self) -> crate::refresh::Schedule {
        crate::refresh::Schedule {
            first_window: self.refresh_first_window,
            max_interval: self.refresh_max_interval,
            revalidate: self.revalidate_interval,
        }
    }

    /// Whether `host` may be connected to.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_host_suffixes.is_empty()
            || self
                .allowed_host_suffixes
                .iter()
                .any(|suffix| host.ends_with(&suffix.trim_end_matches('.').to_ascii_lowercase()))
    }
}

impl fmt::Debug for ClientConfig {
    /// Like a derived `Debug`, but the AUTH token is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("parameter", &self.parameter)
            .field("call_timeout", &self.call_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("refresh_first_window", &self.refresh_first_window)
            .field("refresh_max_interval", &self.refresh_max_interval)
            .field("revalidate_interval", &self.revalidate_interval)
            .field("allowed_host_suffixes", &self.allowed_host_suffixes)
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
        assert_eq!(cfg.call_timeout, Duration::from_secs(2));
        assert_eq!(cfg.connect_timeout, Duration::from_secs(1));
        assert_eq!(cfg.command_timeout, Duration::from_secs(1));
        assert_eq!(cfg.read_timeout, Duration::from_secs(2));
        assert_eq!(cfg.refresh_first_window, Duration::from_millis(100));
        assert_eq!(cfg.refresh_max_interval, Duration::from_millis(500));
        // 2 s of an unchanged value: reads at 0, >= 0.1, 0.3, 0.55, 0.8, 1.05, 1.3, 1.55, 1.8 s, and
        // the read that sees the change.
        assert_eq!(cfg.max_reads_after_failure(Duration::from_secs(2)), 10);
        assert_eq!(cfg.revalidate_interval, Duration::from_secs(60));
        assert!(cfg.allowed_host_suffixes.is_empty());
        assert!(!cfg.tls && cfg.auth_token.is_none() && cfg.tls_root_ca_pem.is_none());
    }

    #[test]
    fn allowed_hosts_match_by_suffix_case_insensitively() {
        let mut cfg = ClientConfig::new("/p");
        assert!(cfg.host_allowed("anything.example"));
        cfg.allowed_host_suffixes = vec![".cache.amazonaws.com".into()];
        assert!(cfg.host_allowed("orders-002.orders.abc123.use1.cache.amazonaws.com"));
        assert!(cfg.host_allowed("ORDERS.abc.use1.Cache.AmazonAWS.com."));
        assert!(!cfg.host_allowed("evil.example.com"));
        assert!(!cfg.host_allowed("cache.amazonaws.com.evil.example"));
        assert!(!cfg.host_allowed("127.0.0.1"));
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
