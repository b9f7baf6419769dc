//! The `host:port` value the reconciler publishes and the endpoint client reads: one type that
//! both writes and reads it, so the two sides cannot drift.

use std::fmt;
use std::str::FromStr;

/// A Redis endpoint: DNS name or address, and TCP port.
///
/// Written as `host:port`, with an IPv6 address in brackets (`[::1]:6379`); read back from the
/// same form (surrounding whitespace ignored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// DNS name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Builds an endpoint.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// Parses `host:port` (IPv6 as `[addr]:port`). The error says what is wrong.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let (host, port) = value.rsplit_once(':').ok_or_else(|| "there is no `:port`".to_owned())?;
        if host.contains(|c: char| c.is_whitespace() || "/@".contains(c)) {
            return Err(format!("{host:?} is not a host name or address"));
        }
        let host = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .ok_or_else(|| format!("{host:?} opens a bracket it does not close"))?,
            None if host.contains(':') => {
                return Err(format!(
                    "{host:?} looks like an IPv6 address: write it as [{host}]:{port}"
                ));
            }
            None => host,
        };
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        if host.contains(['[', ']']) {
            return Err(format!("{host:?} is not a host name or address"));
        }
        let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port number"))?;
        if port == 0 {
            return Err("port 0 is not a valid port".into());
        }
        Ok(Self::new(host, port))
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_as_the_reconciler_writes_it() {
        let e = Endpoint::parse("orders-002.abc123.0001.use1.cache.amazonaws.com:6379").unwrap();
        assert_eq!(
            e,
            Endpoint::new("orders-002.abc123.0001.use1.cache.amazonaws.com", 6379)
        );
        assert_eq!(
            Endpoint::parse(" 127.0.0.1:7001\n").unwrap().to_string(),
            "127.0.0.1:7001"
        );
    }

    #[test]
    fn ipv6_is_written_and_read_in_brackets() {
        let v6 = Endpoint::new("2001:db8::7", 6380);
        assert_eq!(v6.to_string(), "[2001:db8::7]:6380");
        assert_eq!(Endpoint::parse(&v6.to_string()), Ok(v6));
        assert_eq!(Endpoint::parse("[::1]:6380"), Ok(Endpoint::new("::1", 6380)));
    }

    #[test]
    fn rejects_values_that_are_not_host_port() {
        for (value, why) in [
            ("orders.cache.amazonaws.com", "no `:port`"),
            (":6379", "host is empty"),
            ("[]:6379", "host is empty"),
            ("host:http", "not a port number"),
            ("host:70000", "not a port number"),
            ("host:0", "port 0"),
            ("redis://host:6379", "not a host name"),
            ("::1:6379", "IPv6"),
            ("[::1:6379", "does not close"),
            ("", "no `:port`"),
        ] {
            let err = Endpoint::parse(value).unwrap_err();
            assert!(err.contains(why), "{value:?}: {err}");
        }
    }
}
