//! How both the reconciler's `ROLE` probe and the endpoint client open a Redis connection:
//! TLS (ElastiCache in-transit encryption), AUTH, timeouts, and the rustls crypto provider.
//!
//! Compiled with the `redis` feature only, so bluegreen-rollback does not build a Redis client.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisResult, TlsCertificates,
};

use crate::endpoint::Endpoint;
use crate::secret::Secret;

/// How to secure a connection.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// Connect with TLS, verifying the server against the system's trusted roots (ElastiCache
    /// uses public CAs) unless `root_ca_pem` is set.
    pub tls: bool,
    /// PEM certificates of the CA(s) to trust instead of the system roots (a private CA).
    pub root_ca_pem: Option<Vec<u8>>,
    /// The AUTH token (password of the `default` user).
    pub auth_token: Option<Secret>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("tls", &self.tls)
            .field("root_ca_pem", &self.root_ca_pem.as_ref().map(|_| "<set>"))
            .field("auth_token", &self.auth_token)
            .finish()
    }
}

/// Time limits of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the connection, TLS handshake and AUTH included.
    pub connect: Duration,
    /// To wait for the answer to one command.
    pub response: Duration,
}

/// Opens a multiplexed connection to `endpoint`.
pub async fn connect(
    endpoint: &Endpoint,
    security: &Security,
    timeouts: Timeouts,
) -> RedisResult<MultiplexedConnection> {
    let addr = if security.tls {
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
    if let Some(token) = &security.auth_token {
        settings = settings.set_password(token.expose());
    }
    let info = addr.into_connection_info()?.set_redis_settings(settings);
    let client = if security.tls {
        ensure_crypto_provider();
        match &security.root_ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            )?,
            None => redis::Client::open(info)?,
        }
    } else {
        redis::Client::open(info)?
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response));
    client.get_multiplexed_async_connection_with_config(&config).await
}

/// The redis crate builds its rustls config with `rustls::ClientConfig::builder()`, which uses
/// the process-wide default crypto provider and panics when none is installed and the build
/// enables more than one provider (for example an application that also pulls in `ring`). We
/// install ring, the provider our AWS SDK client already uses ([`crate::sdk::https_client`]), unless
/// one was installed first.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: some provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_token_or_the_ca() {
        let s = Security {
            tls: true,
            root_ca_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            auth_token: Some(Secret::new("s3cret-token")),
        };
        let text = format!("{s:?}");
        assert!(!text.contains("s3cret-token") && !text.contains("BEGIN"), "{text}");
    }

    #[tokio::test]
    async fn a_closed_port_is_an_io_error_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = Timeouts {
            connect: Duration::from_secs(1),
            response: Duration::from_secs(1),
        };
        let err = connect(&Endpoint::new("127.0.0.1", port), &Security::default(), t)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), redis::ErrorKind::Io, "{err}");
    }

    #[test]
    fn tls_installs_a_crypto_provider() {
        ensure_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
