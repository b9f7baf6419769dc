//! [`EndpointClient`]: resolves the primary from the SSM parameter, keeps one multiplexed
//! connection to it, and moves to the new primary after a failover.
//!
//! Locking: the cached endpoint and the live connection sit behind short-lived `std` mutexes,
//! never held across an `.await`. Two async mutexes make the slow paths single-flight: one
//! parameter read at a time, one connection attempt at a time. Callers that arrive while one
//! is in progress wait for it and then use its result.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use failover_core::redis_conn::{self, Security, Timeouts};
use failover_core::sdk;
use failover_core::secret::Secret;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, RedisResult};

use crate::config::ClientConfig;
use crate::endpoint::{classify, Endpoint, ErrorClass};
use crate::error::ClientError;
use crate::refresh::{jittered, Decision, ReadOutcome, RefreshState};

/// Counters of what the client did, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `GetParameter` calls made (failed ones included).
    pub parameter_reads: u64,
    /// Connection attempts after the first one (each follows a dropped connection).
    pub reconnects: u64,
    /// Reads that found a different endpoint than the cached one.
    pub endpoint_changes: u64,
}

/// A Redis client that follows the primary endpoint published in an SSM parameter.
///
/// Cheap to clone: clones share the cached endpoint, the connection and the counters.
#[derive(Clone)]
pub struct EndpointClient {
    inner: Arc<Inner>,
}

struct Inner {
    ssm: aws_sdk_ssm::Client,
    cfg: ClientConfig,
    refresh: Mutex<RefreshState>,
    live: Mutex<Option<Live>>,
    /// Held while the parameter is read, so concurrent callers read it once.
    reading: tokio::sync::Mutex<()>,
    /// Held while a connection is opened, so concurrent callers open one.
    connecting: tokio::sync::Mutex<()>,
    next_generation: AtomicU64,
    ever_connected: AtomicBool,
    parameter_reads: AtomicU64,
    reconnects: AtomicU64,
    endpoint_changes: AtomicU64,
}

/// The connection in use and the endpoint it goes to.
#[derive(Clone)]
struct Live {
    endpoint: Endpoint,
    conn: MultiplexedConnection,
    /// Identifies this connection, so a late failure on an old one does not drop a new one.
    generation: u64,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (plain fields, each
/// update a single assignment), so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for EndpointClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointClient")
            .field("cfg", &self.inner.cfg)
            .field("endpoint", &self.cached_endpoint())
            .field("stats", &self.stats())
            .finish()
    }
}

impl EndpointClient {
    /// Creates a client. Makes no network call: the parameter is read on first use.
    pub fn new(ssm: aws_sdk_ssm::Client, cfg: ClientConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                ssm,
                cfg,
                refresh: Mutex::new(RefreshState::default()),
                live: Mutex::new(None),
                reading: tokio::sync::Mutex::new(()),
                connecting: tokio::sync::Mutex::new(()),
                next_generation: AtomicU64::new(0),
                ever_connected: AtomicBool::new(false),
                parameter_reads: AtomicU64::new(0),
                reconnects: AtomicU64::new(0),
                endpoint_changes: AtomicU64::new(0),
            }),
        }
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// The current endpoint (`host:port`). Reads the parameter on first use, and again when
    /// the endpoint is stale and the rate limit allows; otherwise answers from the cache.
    pub async fn endpoint(&self) -> Result<String, ClientError> {
        Ok(self.resolve().await?.to_string())
    }

    /// The cached endpoint, without any I/O; `None` before the first successful read.
    pub fn cached_endpoint(&self) -> Option<String> {
        lock(&self.inner.refresh).endpoint().map(ToString::to_string)
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            parameter_reads: self.inner.parameter_reads.load(Ordering::Relaxed),
            reconnects: self.inner.reconnects.load(Ordering::Relaxed),
            endpoint_changes: self.inner.endpoint_changes.load(Ordering::Relaxed),
        }
    }

    /// Runs one command on the primary and converts the reply to `T`.
    ///
    /// On a failover-class error (`READONLY`, `MASTERDOWN`, connection refused/reset/dropped,
    /// timeout) the connection is dropped, the endpoint marked stale and the error returned
    /// ([`ClientError::is_failover`] is true): the caller's next call re-reads the parameter if
    /// the rate limit allows, else reconnects to the cached endpoint. Other errors (`WRONGTYPE`,
    /// a reply of another type, ...) are returned as they are and change nothing.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, ClientError> {
        let mut live = self.connection().await?;
        match cmd.query_async::<T>(&mut live.conn).await {
            Ok(value) => Ok(value),
            Err(source) => Err(match classify(&source) {
                ErrorClass::Failover => {
                    self.invalidate(live.generation);
                    tracing::warn!(endpoint = %live.endpoint, error = %source, "failover-class error: dropping the connection");
                    ClientError::Command {
                        endpoint: live.endpoint.to_string(),
                        failover: true,
                        source,
                    }
                }
                ErrorClass::Auth => self.auth_error(&live.endpoint, source),
                ErrorClass::Other => ClientError::Command {
                    endpoint: live.endpoint.to_string(),
                    failover: false,
                    source,
                },
            }),
        }
    }

    /// The live connection, opening one (and resolving the endpoint) when there is none.
    async fn connection(&self) -> Result<Live, ClientError> {
        if let Some(live) = lock(&self.inner.live).clone() {
            return Ok(live);
        }
        let _connecting = self.inner.connecting.lock().await;
        if let Some(live) = lock(&self.inner.live).clone() {
            return Ok(live);
        }
        let endpoint = self.resolve().await?;
        if self.inner.ever_connected.swap(true, Ordering::Relaxed) {
            self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        match self.open(&endpoint).await {
            Ok(conn) => {
                let live = Live {
                    endpoint,
                    conn,
                    generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
                };
                *lock(&self.inner.live) = Some(live.clone());
                Ok(live)
            }
            Err(source) => Err(match classify(&source) {
                ErrorClass::Auth => self.auth_error(&endpoint, source),
                // Failover-class, and anything unexpected while connecting: look again later.
                ErrorClass::Failover | ErrorClass::Other => {
                    lock(&self.inner.refresh).mark_stale();
                    ClientError::Connect {
                        endpoint: endpoint.to_string(),
                        source,
                    }
                }
            }),
        }
    }

    /// Drops connection `generation` if it is still the live one, and marks the endpoint stale.
    fn invalidate(&self, generation: u64) {
        let mut live = lock(&self.inner.live);
        if live.as_ref().is_some_and(|l| l.generation == generation) {
            *live = None;
            lock(&self.inner.refresh).mark_stale();
        }
    }

    fn auth_error(&self, endpoint: &Endpoint, source: redis::RedisError) -> ClientError {
        let hint = if self.inner.cfg.auth_token.is_some() {
            "Check auth_token: it must be the replication group's current AUTH token"
        } else {
            "The server requires AUTH: set auth_token to the replication group's AUTH token"
        };
        ClientError::Auth {
            endpoint: endpoint.to_string(),
            hint,
            source,
        }
    }

    /// The endpoint to use now, reading the parameter when [`RefreshState::decide`] says so.
    async fn resolve(&self) -> Result<Endpoint, ClientError> {
        let _reading = self.inner.reading.lock().await;
        let decision = lock(&self.inner.refresh).decide(Instant::now());
        match decision {
            Decision::Use(endpoint) => Ok(endpoint),
            Decision::Wait { retry_in, last_error } => Err(ClientError::NotResolved {
                parameter: self.inner.cfg.parameter.clone(),
                last_error,
                retry_in,
            }),
            Decision::Read => {
                let cfg = &self.inner.cfg;
                let started = Instant::now();
                let gap = jittered(cfg.refresh_min_interval, cfg.refresh_jitter);
                self.inner.parameter_reads.fetch_add(1, Ordering::Relaxed);
                let result = self.read_parameter().await;
                let mut state = lock(&self.inner.refresh);
                match result {
                    Ok(endpoint) => {
                        if let ReadOutcome::Changed { from } = state.record_read(started, gap, Ok(endpoint.clone())) {
                            self.inner.endpoint_changes.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(parameter = %cfg.parameter, %from, to = %endpoint, "Redis endpoint changed");
                        }
                        Ok(endpoint)
                    }
                    Err(err) => {
                        state.record_read(started, gap, Err(err.to_string()));
                        match state.endpoint() {
                            // Keep going with what we have: Redis may be fine while SSM is not.
                            Some(cached) => {
                                tracing::warn!(error = %err, endpoint = %cached, "using the cached endpoint");
                                Ok(cached.clone())
                            }
                            None => Err(err),
                        }
                    }
                }
            }
        }
    }

    /// One `GetParameter` (decrypted, so `SecureString` works).
    async fn read_parameter(&self) -> Result<Endpoint, ClientError> {
        let parameter = &self.inner.cfg.parameter;
        let out = self
            .inner
            .ssm
            .get_parameter()
            .name(parameter)
            .with_decryption(true)
            .send()
            .await
            .map_err(|err| ClientError::ReadParameter {
                parameter: parameter.clone(),
                detail: sdk::summarize(&err).0,
                source: Box::new(err),
            })?;
        let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
        Endpoint::parse(value).map_err(|reason| ClientError::BadEndpoint {
            parameter: parameter.clone(),
            value: value.to_owned(),
            reason,
        })
    }

    /// Opens a multiplexed connection with the configured timeouts, TLS and AUTH.
    async fn open(&self, endpoint: &Endpoint) -> RedisResult<MultiplexedConnection> {
        let cfg = &self.inner.cfg;
        let security = Security {
            tls: cfg.tls,
            root_ca_pem: cfg.tls_root_ca_pem.clone(),
            auth_token: cfg.auth_token.clone().map(Secret::new),
        };
        let timeouts = Timeouts {
            connect: cfg.connect_timeout,
            response: cfg.command_timeout,
        };
        redis_conn::connect(endpoint, &security, timeouts).await
    }
}
