//! [`EndpointClient`]: resolves the primary from the SSM parameter, keeps one multiplexed
//! connection to it, and moves to the new primary after a failover.
//!
//! Three rules keep a fleet of clients well behaved at the worst moment:
//!
//! - **Single flight.** One connection attempt at a time; callers that arrive while it runs wait
//!   for it and all get its outcome, so a blackholed node costs every caller one
//!   `connect_timeout`, not one each in turn. Every call is bounded by `call_timeout`.
//! - **Reads never block calls.** The parameter is read by one background task at a time, with
//!   its own timeout; no lock is held across it. While an endpoint is cached, calls use it
//!   whatever the read is doing. Only the very first use waits for a read.
//! - **Reads follow the schedule** of the private `refresh` module: prompt and jittered after a failure,
//!   backing off while the value is unchanged, and an occasional revalidation otherwise.
//!
//! Locking: the schedule, the live connection and the last connection attempt sit behind short
//! `std` mutexes never held across an `.await` (and never two at once); the connection gate is
//! an async mutex held only while connecting.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use failover_core::redis_conn::{self, Security, Timeouts};
use failover_core::secret::Secret;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult};

use crate::config::ClientConfig;
use crate::endpoint::{classify, Endpoint, ErrorClass};
use crate::error::ClientError;
use crate::refresh::{random, RefreshState};

mod reader;

/// Shown instead of a SecureString parameter's value: in errors, logs and the client's `Debug` form.
const HIDDEN: &str = "(SecureString: value not shown)";

/// Counters of what the client did, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `GetParameter` calls made (failed ones included).
    pub parameter_reads: u64,
    /// Connection attempts after the first one.
    pub reconnects: u64,
    /// Reads that found a different endpoint than the cached one.
    pub endpoint_changes: u64,
}

/// A Redis client that follows the primary endpoint published in an SSM parameter.
///
/// Cheap to clone: clones share the cached endpoint, the connection and the counters. Needs a
/// Tokio runtime (parameter reads run as tasks).
#[derive(Clone)]
pub struct EndpointClient {
    inner: Arc<Inner>,
}

struct Inner {
    ssm: aws_sdk_ssm::Client,
    cfg: ClientConfig,
    refresh: Mutex<RefreshState>,
    live: Mutex<Option<Live>>,
    /// Held while a connection is opened; holds the last attempt's outcome for the callers that
    /// waited on it.
    connecting: tokio::sync::Mutex<Option<Attempt>>,
    /// Connection attempts finished so far.
    attempts: AtomicU64,
    /// Whether the background reader task is running.
    reader: AtomicBool,
    /// Woken after every read.
    read_done: tokio::sync::Notify,
    /// Calls made so far: the reader stops when nobody calls any more.
    calls: AtomicU64,
    next_generation: AtomicU64,
    parameter_reads: AtomicU64,
    endpoint_changes: AtomicU64,
    /// Set once a read found the parameter to be a `SecureString`, before its value is cached;
    /// from then on this client never shows an endpoint in full (see [`Inner::shown`]).
    secure: AtomicBool,
}

/// The connection in use and the endpoint it goes to.
#[derive(Clone)]
struct Live {
    endpoint: Endpoint,
    conn: MultiplexedConnection,
    /// Identifies this connection, so a late failure on an old one does not drop a new one.
    generation: u64,
}

/// One connection attempt and how it ended.
struct Attempt {
    number: u64,
    endpoint: Endpoint,
    result: Result<Live, RedisError>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (each update is a
/// single assignment or a call that cannot panic half-way), so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for EndpointClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoint = lock(&self.inner.refresh).endpoint().map(|e| self.inner.shown(e));
        f.debug_struct("EndpointClient")
            .field("cfg", &self.inner.cfg)
            .field("endpoint", &endpoint)
            .field("stats", &self.stats())
            .finish()
    }
}

impl EndpointClient {
    /// Creates a client. Makes no network call: the parameter is read on first use.
    pub fn new(ssm: aws_sdk_ssm::Client, cfg: ClientConfig) -> Self {
        let schedule = cfg.schedule();
        Self {
            inner: Arc::new(Inner {
                ssm,
                cfg,
                refresh: Mutex::new(RefreshState::new(schedule, Instant::now())),
                live: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(None),
                attempts: AtomicU64::new(0),
                reader: AtomicBool::new(false),
                read_done: tokio::sync::Notify::new(),
                calls: AtomicU64::new(0),
                next_generation: AtomicU64::new(0),
                parameter_reads: AtomicU64::new(0),
                endpoint_changes: AtomicU64::new(0),
                secure: AtomicBool::new(false),
            }),
        }
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// The current endpoint (`host:port`): the cached one, or, before the first successful read,
    /// the one a read finds (waiting at most `call_timeout`).
    pub async fn endpoint(&self) -> Result<String, ClientError> {
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        let cfg = &self.inner.cfg;
        match tokio::time::timeout(cfg.call_timeout, self.endpoint_now()).await {
            Ok(result) => Ok(result?.to_string()),
            Err(_) => Err(ClientError::Deadline {
                after: cfg.call_timeout,
                doing: "reading the parameter",
            }),
        }
    }

    /// The cached endpoint, without any I/O; `None` before the first successful read.
    pub fn cached_endpoint(&self) -> Option<String> {
        lock(&self.inner.refresh).endpoint().map(ToString::to_string)
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            parameter_reads: self.inner.parameter_reads.load(Ordering::Relaxed),
            reconnects: self.inner.attempts.load(Ordering::Relaxed).saturating_sub(1),
            endpoint_changes: self.inner.endpoint_changes.load(Ordering::Relaxed),
        }
    }

    /// Runs one command on the primary and converts the reply to `T`, within `call_timeout`.
    ///
    /// On a failover-class error (`READONLY`, `MASTERDOWN`, connection refused/reset/dropped, a
    /// timeout on a connection that then fails a `PING` too) the connection is dropped, a
    /// re-read of the parameter is scheduled and the error returned
    /// ([`ClientError::is_failover`] is true). A command that only timed out on a connection
    /// that still answers is returned as a plain error and changes nothing. Other errors
    /// (`WRONGTYPE`, a reply of another type, ...) are returned as they are.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, ClientError> {
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        self.read_if_due();
        let cfg = &self.inner.cfg;
        match tokio::time::timeout(cfg.call_timeout, self.run(cmd)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Deadline {
                after: cfg.call_timeout,
                doing: "connecting and running the command",
            }),
        }
    }

    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, ClientError> {
        let mut live = self.connection().await?;
        let source = match cmd.query_async::<T>(&mut live.conn).await {
            Ok(value) => {
                let mut refresh = lock(&self.inner.refresh);
                if refresh.in_episode() {
                    refresh.healthy(Instant::now(), random());
                }
                return Ok(value);
            }
            Err(source) => source,
        };
        Err(match classify(&source) {
            ErrorClass::Failover if source.is_timeout() && self.answers_ping(&live).await => ClientError::Command {
                endpoint: live.endpoint.to_string(),
                failover: false,
                source,
            },
            ErrorClass::Failover => {
                let endpoint = self.inner.shown(&live.endpoint);
                tracing::warn!(%endpoint, error = %source, "failover-class error: dropping the connection");
                self.invalidate(live.generation);
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
        })
    }

    /// Whether the connection still answers a `PING` within `connect_timeout`: a command that
    /// timed out on a connection that answers was slow, not a sign of a failover.
    async fn answers_ping(&self, live: &Live) -> bool {
        let mut conn = live.conn.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        matches!(
            tokio::time::timeout(self.inner.cfg.connect_timeout, ping).await,
            Ok(Ok(_))
        )
    }

    /// The live connection to the cached endpoint, opening one when there is none: one attempt
    /// at a time, whose outcome every caller that waited for it shares.
    async fn connection(&self) -> Result<Live, ClientError> {
        if let Some(live) = lock(&self.inner.live).clone() {
            return Ok(live);
        }
        let endpoint = self.endpoint_now().await?;
        let waited_from = self.inner.attempts.load(Ordering::Acquire);
        let mut gate = self.inner.connecting.lock().await;
        if let Some(live) = lock(&self.inner.live).clone() {
            return Ok(live);
        }
        if let Some(last) = gate.as_ref().filter(|a| a.number > waited_from) {
            // An attempt finished while we waited: its outcome is ours.
            return last.result.clone().map_err(|e| self.connect_error(&last.endpoint, e));
        }
        let endpoint = lock(&self.inner.refresh).endpoint().cloned().unwrap_or(endpoint);
        let result = self.open(&endpoint).await.map(|conn| Live {
            endpoint: endpoint.clone(),
            conn,
            generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
        });
        let number = self.inner.attempts.load(Ordering::Acquire) + 1;
        let still_current = lock(&self.inner.refresh).endpoint() == Some(&endpoint);
        match &result {
            // A read that found a new endpoint while we connected wins: this connection serves
            // this call and the callers that waited for it, and is not kept.
            Ok(live) if still_current => *lock(&self.inner.live) = Some(live.clone()),
            Ok(_) => {}
            Err(e) if classify(e) != ErrorClass::Auth => self.failover_signal(),
            Err(_) => {}
        }
        *gate = Some(Attempt {
            number,
            endpoint: endpoint.clone(),
            result: result.clone(),
        });
        self.inner.attempts.store(number, Ordering::Release);
        result.map_err(|e| self.connect_error(&endpoint, e))
    }

    fn connect_error(&self, endpoint: &Endpoint, source: RedisError) -> ClientError {
        match classify(&source) {
            ErrorClass::Auth => self.auth_error(endpoint, source),
            ErrorClass::Failover | ErrorClass::Other => ClientError::Connect {
                endpoint: endpoint.to_string(),
                source,
            },
        }
    }

    /// The cached endpoint; before the first successful read, waits for a read.
    async fn endpoint_now(&self) -> Result<Endpoint, ClientError> {
        let notified = self.inner.read_done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let waiting = {
            let refresh = lock(&self.inner.refresh);
            if let Some(endpoint) = refresh.endpoint() {
                return Ok(endpoint.clone());
            }
            refresh.read_due(Instant::now())
        };
        if waiting || self.inner.reader.load(Ordering::Acquire) {
            self.read_if_due();
            notified.await;
        }
        let refresh = lock(&self.inner.refresh);
        match refresh.endpoint() {
            Some(endpoint) => Ok(endpoint.clone()),
            None => Err(ClientError::NotResolved {
                parameter: self.inner.cfg.parameter.clone(),
                last_error: refresh.last_error().unwrap_or("no read finished yet").to_owned(),
                retry_in: refresh.next_read_in(Instant::now()).unwrap_or_default(),
            }),
        }
    }

    /// Drops connection `generation` if it is still the live one, and schedules a re-read.
    fn invalidate(&self, generation: u64) {
        let dropped = {
            let mut live = lock(&self.inner.live);
            let current = live.as_ref().is_some_and(|l| l.generation == generation);
            if current {
                *live = None;
            }
            current
        };
        if dropped {
            self.failover_signal();
        }
    }

    /// The cached endpoint failed like a moved primary: open a read episode.
    fn failover_signal(&self) {
        lock(&self.inner.refresh).failover_signal(Instant::now(), random());
        self.start_reader();
    }

    /// Starts the reader if a read is due now (first use, revalidation, or a paused episode).
    fn read_if_due(&self) {
        if lock(&self.inner.refresh).read_due(Instant::now()) {
            self.start_reader();
        }
    }

    /// Starts the background reader unless it runs already.
    fn start_reader(&self) {
        if self.inner.reader.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.reader_loop().await });
    }

    fn auth_error(&self, endpoint: &Endpoint, source: RedisError) -> ClientError {
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
