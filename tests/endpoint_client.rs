//! endpoint-client against real `redis-server` processes and the emulator's SSM.
//!
//! Each test starts its own emulator (the parameter lives there) and its own Redis servers on
//! free loopback ports. Timings are scaled down where a test waits on them (re-reads capped at
//! 300 ms instead of 800 ms); bounds are derived from those settings. The fleet test runs with
//! the defaults.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoint_client::{ClientConfig, ClientError, EndpointClient, Stats};
use failover_tests::client_bed::{CapturedLogs, ClientBed, PARAM};
use failover_tests::redis_server::RedisServer;
use failover_tests::tls::TlsFiles;
use tokio::time::Instant;

/// Pause between two writes of the simulated application.
const WRITE_INTERVAL: Duration = Duration::from_millis(20);

async fn bed() -> Option<ClientBed> {
    ClientBed::start().await
}

/// Production behaviour at test speed.
fn fast_config() -> ClientConfig {
    let mut cfg = ClientConfig::new(PARAM);
    cfg.refresh_first_window = Duration::from_millis(100);
    cfg.refresh_max_interval = Duration::from_millis(300);
    cfg.connect_timeout = Duration::from_millis(500);
    cfg.command_timeout = Duration::from_millis(500);
    cfg
}

fn set(key: &str, value: &str) -> redis::Cmd {
    redis::cmd("SET").arg(key).arg(value).clone()
}

fn get(key: &str) -> redis::Cmd {
    redis::cmd("GET").arg(key).clone()
}

/// Failed writes a failover may cost: writes keep failing until the parameter has been
/// updated (`publish_lag` after the failure) and then re-read, which the schedule does at most
/// `refresh_max_interval` after the previous read (and the first within
/// `refresh_first_window`); one write per `WRITE_INTERVAL`, plus the write that first hits the
/// failure, one in flight, and 100 ms for the read and the reconnect.
fn failure_bound(cfg: &ClientConfig, publish_lag: Duration) -> usize {
    let window = publish_lag + cfg.refresh_first_window + cfg.refresh_max_interval + Duration::from_millis(100);
    window.as_millis().div_ceil(WRITE_INTERVAL.as_millis()) as usize + 2
}

/// One write of the simulated application.
struct Write {
    n: u64,
    /// `None` on success, else (failover-class, message).
    error: Option<(bool, String)>,
}

/// Writes `SET drill:<n> <n>` every [`WRITE_INTERVAL`] into `log` until `stop` is set.
fn spawn_writer(
    client: EndpointClient,
    log: Arc<Mutex<Vec<Write>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2000 {
            n += 1;
            let result = client.query::<()>(&set(&format!("drill:{n}"), &n.to_string())).await;
            let error = result.err().map(|e| (e.is_failover(), e.to_string()));
            log.lock().unwrap().push(Write { n, error });
            tokio::time::sleep(WRITE_INTERVAL).await;
        }
    })
}

/// Waits (at most `limit`) until `pred` holds for the write log.
async fn wait_for(log: &Arc<Mutex<Vec<Write>>>, limit: Duration, pred: impl Fn(&[Write]) -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if pred(&log.lock().unwrap()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Kills the client's connection, so that its next write fails with a failover-class error,
/// which opens a read episode; then waits longer than any re-read interval, so a read of the
/// parameter is due.
async fn drop_connection_until_a_read_is_due(primary: &RedisServer, client: &EndpointClient) {
    let _: i64 = primary
        .query(&["CLIENT", "KILL", "TYPE", "normal"])
        .await
        .expect("CLIENT KILL");
    let err = client
        .query::<()>(&set("k", "v"))
        .await
        .expect_err("a write on the killed connection");
    assert!(
        matches!(err, ClientError::Command { failover: true, .. }),
        "the killed connection must fail as failover-class: {err:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// The `GetParameter` calls the emulator answered with `status`, since its log was cleared.
async fn parameter_reads_answered(bed: &ClientBed, status: u64) -> usize {
    let log = bed
        .emu
        .control("GET", "/_failover/requests", serde_json::json!({}))
        .await;
    let log = log.as_array().expect("request log is a list");
    log.iter()
        .filter(|r| r["operation"] == "GetParameter" && r["status"] == status)
        .count()
}

/// Writes every 20 ms for `window`; each must succeed in under 300 ms.
async fn writes_stay_quick(client: &EndpointClient, window: Duration, what: &str) {
    let until = Instant::now() + window;
    let mut i = 0;
    while Instant::now() < until {
        let started = Instant::now();
        client
            .query::<()>(&set(&format!("k:{i}"), "v"))
            .await
            .unwrap_or_else(|e| panic!("write {i} {what}: {e}"));
        let took = started.elapsed();
        assert!(took < Duration::from_millis(300), "write {i} {what} took {took:?}");
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True once a write succeeded after a failed one.
fn recovered(log: &[Write]) -> bool {
    log.iter()
        .position(|w| w.error.is_some())
        .is_some_and(|first_fail| log[first_fail..].iter().any(|w| w.error.is_none()))
}

#[tokio::test]
async fn resolves_once_caches_and_writes_to_the_primary() {
    let Some(primary) = RedisServer::start().await else {
        return;
    };
    let Some(bed) = bed().await else { return };
    // GIVEN the parameter names the primary, and a client that has made no call yet
    bed.publish(&primary.endpoint()).await;
    bed.emu.clear_operations().await;
    let client = bed.client(fast_config());
    assert_eq!(bed.parameter_reads().await, 0, "construction must not call SSM");
    assert_eq!(client.cached_endpoint(), None);

    // WHEN 20 clones write concurrently on first use, then 20 more writes follow
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.query::<()>(&set(&format!("k:{i}"), "v")).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("concurrent write");
    }
    for i in 20..40 {
        client.query::<()>(&set(&format!("k:{i}"), "v")).await.expect("write");
    }

    // THEN the parameter was read once and one connection was opened, to the primary
    assert_eq!(client.endpoint().await.expect("endpoint"), primary.endpoint());
    assert_eq!(bed.parameter_reads().await, 1);
    assert_eq!(
        client.stats(),
        Stats {
            parameter_reads: 1,
            reconnects: 0,
            endpoint_changes: 0
        }
    );
    // AND the writes are on the primary
    for i in [0, 19, 39] {
        let v: Option<String> = primary.query(&["GET", &format!("k:{i}")]).await.expect("GET");
        assert_eq!(v.as_deref(), Some("v"), "k:{i}");
    }
    let read_back: String = client.query(&get("k:39")).await.expect("read back");
    assert_eq!(read_back, "v");
}

#[tokio::test]
async fn after_the_primary_dies_writes_fail_a_bounded_number_of_times_then_land_on_the_new_primary() {
    let Some(mut primary) = RedisServer::start().await else {
        return;
    };
    let Some(replica) = RedisServer::start_replica_of(&primary).await else {
        return;
    };
    let Some(bed) = bed().await else { return };
    // GIVEN an application writing through the client to the primary named by the parameter
    bed.publish(&primary.endpoint()).await;
    let cfg = fast_config();
    let client = bed.client(cfg.clone());
    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = spawn_writer(client.clone(), log.clone(), stop.clone());
    assert!(
        wait_for(&log, Duration::from_secs(5), |l| l.len() >= 5).await,
        "writer never started"
    );

    // WHEN the replica is promoted, the primary dies, and the parameter is updated
    replica.promote().await;
    primary.kill().await;
    let killed = Instant::now();
    bed.publish(&replica.endpoint()).await;
    let publish_lag = killed.elapsed();
    let came_back = wait_for(&log, Duration::from_secs(5), recovered).await;
    // (a few more writes, to see that they stay on the new primary)
    let settled = log.lock().unwrap().len() + 5;
    wait_for(&log, Duration::from_secs(2), |l| l.len() >= settled).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.expect("writer");

    // THEN writes failed (failover-class), but no more often than the refresh rate allows
    let log = std::mem::take(&mut *log.lock().unwrap());
    assert!(came_back, "the client never recovered");
    let failures: Vec<&Write> = log.iter().filter(|w| w.error.is_some()).collect();
    let bound = failure_bound(&cfg, publish_lag);
    eprintln!(
        "{} failed writes (bound {bound}, parameter updated {publish_lag:?} after the kill)",
        failures.len()
    );
    assert!(!failures.is_empty(), "the failover was not noticed at all");
    assert!(
        failures.len() <= bound,
        "{} failed writes, bound {bound}: {:?}",
        failures.len(),
        failures.iter().map(|w| &w.error).collect::<Vec<_>>()
    );
    assert!(
        failures.iter().all(|w| w.error.as_ref().is_some_and(|e| e.0)),
        "every failure should be failover-class: {:?}",
        failures.iter().map(|w| &w.error).collect::<Vec<_>>()
    );
    // AND once recovered, every write succeeded and is on the new primary
    let last_failure = failures.last().map(|w| w.n).unwrap_or_default();
    let after: Vec<&Write> = log.iter().filter(|w| w.n > last_failure).collect();
    assert!(after.len() >= 5, "too few writes after recovery: {}", after.len());
    for w in after {
        assert!(w.error.is_none());
        let v: Option<String> = replica.query(&["GET", &format!("drill:{}", w.n)]).await.expect("GET");
        assert_eq!(v, Some(w.n.to_string()), "drill:{} on the new primary", w.n);
    }
    assert_eq!(client.cached_endpoint(), Some(replica.endpoint()));
    let stats = client.stats();
    assert_eq!(stats.endpoint_changes, 1);
    assert!(stats.reconnects >= 1);
}

#[tokio::test]
async fn a_demoted_primary_answering_readonly_is_left_for_the_new_primary() {
    let Some(old) = RedisServer::start().await else { return };
    let Some(new) = RedisServer::start_replica_of(&old).await else {
        return;
    };
    let Some(bed) = bed().await else { return };
    // GIVEN a client writing to the primary named by the parameter
    bed.publish(&old.endpoint()).await;
    let cfg = fast_config();
    let client = bed.client(cfg.clone());
    client
        .query::<()>(&set("before", "1"))
        .await
        .expect("write before failover");

    // WHEN the replica is promoted and the old primary is demoted to its replica: it still
    // accepts connections, but refuses writes
    new.promote().await;
    let new_port = new.port.to_string();
    let _: String = old
        .query(&["REPLICAOF", "127.0.0.1", &new_port])
        .await
        .expect("demote the old primary");
    // THEN, while the parameter still names the old node, writes fail with READONLY
    let mut readonly = None;
    for _ in 0..5 {
        match client.query::<()>(&set("during", "1")).await {
            Err(e) if e.to_string().contains("READONLY") => {
                readonly = Some(e);
                break;
            }
            Err(e) => assert!(e.is_failover(), "unexpected error: {e}"),
            Ok(()) => panic!("a write succeeded on the demoted primary"),
        }
        tokio::time::sleep(WRITE_INTERVAL).await;
    }
    let readonly = readonly.expect("no READONLY error from the demoted primary");
    assert!(readonly.is_failover(), "READONLY must be failover-class: {readonly}");

    // WHEN the parameter is updated
    bed.publish(&new.endpoint()).await;
    let updated = Instant::now();
    let mut failures = 0;
    let recovered_on = loop {
        match client.query::<()>(&set("after", "2")).await {
            Ok(()) => break client.cached_endpoint(),
            Err(e) => {
                assert!(e.is_failover(), "unexpected error: {e}");
                failures += 1;
                assert!(updated.elapsed() < Duration::from_secs(5), "never recovered: {e}");
            }
        }
        tokio::time::sleep(WRITE_INTERVAL).await;
    };
    // THEN the client moves within the refresh bound and writes on the new primary
    let bound = failure_bound(&cfg, Duration::ZERO);
    eprintln!("{failures} failed writes after the update (bound {bound})");
    assert!(
        failures <= bound,
        "{failures} failed writes after the update, bound {bound}"
    );
    assert_eq!(recovered_on, Some(new.endpoint()));
    let v: Option<String> = new.query(&["GET", "after"]).await.expect("GET");
    assert_eq!(v.as_deref(), Some("2"));
    let role: Vec<redis::Value> = new.query(&["ROLE"]).await.expect("ROLE");
    assert_eq!(role.first(), Some(&redis::Value::BulkString(b"master".to_vec())));
    assert_eq!(client.stats().endpoint_changes, 1);
}

#[tokio::test]
async fn parameter_reads_are_rate_limited_while_the_endpoint_is_dead() {
    let Some(bed) = bed().await else { return };
    // GIVEN the parameter names a port nobody listens on
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    bed.publish(&format!("127.0.0.1:{dead}")).await;
    bed.emu.clear_operations().await;
    let cfg = fast_config();
    let client = bed.client(cfg.clone());

    // WHEN the application retries 50 times in quick succession
    let started = Instant::now();
    for i in 0..50 {
        let err = client
            .query::<()>(&set("k", "v"))
            .await
            .expect_err("nothing listens there");
        assert!(
            matches!(err, ClientError::Connect { .. }) && err.is_failover(),
            "attempt {i}: {err}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();

    // THEN the parameter was re-read, but no more often than the schedule allows: the first
    // read, one within the first window, then at least half the doubled window apart
    let reads = bed.parameter_reads().await;
    let bound = cfg.max_reads_after_failure(elapsed);
    assert!(reads <= bound, "{reads} reads in {elapsed:?}, bound {bound}");
    assert!(
        reads >= 2,
        "the parameter was never re-read ({reads} reads in {elapsed:?})"
    );
    // AND the client's own count is the emulator's, once a read still in flight when the loop
    // ended has landed (the background reader may be mid-read at the last call)
    let mut stats = client.stats();
    for _ in 0..100 {
        if stats.parameter_reads as usize == bed.parameter_reads().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = client.stats();
    }
    assert_eq!(stats.parameter_reads as usize, bed.parameter_reads().await);
    assert_eq!(stats.reconnects, 49, "every retry should try to connect again");
}

#[tokio::test]
async fn a_wrongtype_error_neither_reconnects_nor_re_reads_the_parameter() {
    let Some(primary) = RedisServer::start().await else {
        return;
    };
    let Some(bed) = bed().await else { return };
    // GIVEN a connected client with no rate limit at all, so any refresh would show
    bed.publish(&primary.endpoint()).await;
    let _: i64 = primary.query(&["LPUSH", "a-list", "x"]).await.expect("LPUSH");
    let mut cfg = fast_config();
    cfg.refresh_first_window = Duration::ZERO;
    cfg.revalidate_interval = Duration::ZERO;
    let client = bed.client(cfg);
    client.query::<()>(&set("k", "v")).await.expect("first write");
    bed.emu.clear_operations().await;

    // WHEN a command fails with WRONGTYPE
    let err = client
        .query::<Option<String>>(&get("a-list"))
        .await
        .expect_err("WRONGTYPE");

    // THEN it is reported as is, and the next command uses the same connection and endpoint
    assert!(!err.is_failover(), "{err}");
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    let v: String = client.query(&get("k")).await.expect("next command");
    assert_eq!(v, "v");
    assert_eq!(bed.parameter_reads().await, 0);
    assert_eq!(client.stats().reconnects, 0);
    assert_eq!(client.stats().parameter_reads, 1);
}

// ---- AUTH and TLS ----

#[tokio::test]
async fn the_auth_token_is_sent_and_a_missing_or_wrong_one_fails_clearly() {
    let Some(bed) = bed().await else { return };
    // GIVEN a server that requires an AUTH token, named by the parameter
    let Some(server) = RedisServer::start_with(&["--requirepass", "s3cret-token"]).await else {
        return;
    };
    bed.publish(&server.endpoint()).await;

    // WHEN a client has the token THEN commands work
    let mut cfg = fast_config();
    cfg.auth_token = Some("s3cret-token".into());
    let authed = bed.client(cfg);
    authed.query::<()>(&set("k", "v")).await.expect("write with the token");
    let v: String = authed.query(&get("k")).await.expect("read with the token");
    assert_eq!(v, "v");

    // WHEN a client has no token THEN the error says the server wants one, and is no failover
    let anonymous = bed.client(fast_config());
    let err = anonymous.query::<()>(&set("k", "w")).await.expect_err("no token");
    assert!(matches!(err, ClientError::Auth { .. }), "{err:?}");
    assert!(!err.is_failover());
    let text = err.to_string();
    assert!(text.contains("NOAUTH") && text.contains("set auth_token"), "{text}");

    // WHEN a client has the wrong token THEN the error says to check it
    let logs = CapturedLogs::start();
    let mut cfg = fast_config();
    cfg.auth_token = Some(WRONG_TOKEN.into());
    let wrong = bed.client(cfg);
    let err = wrong.query::<()>(&set("k", "w")).await.expect_err("wrong token");
    assert!(matches!(err, ClientError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("Check auth_token"), "{err}");
    // AND the token itself is never printed: not by the error, the client, nor in any log line
    let printed = format!("{err}\n{err:?}\n{wrong:?}\n{:?}\n{}", wrong.config(), logs.text());
    assert!(!printed.contains(WRONG_TOKEN), "the token is printed:\n{printed}");
}

/// A wrong AUTH token, distinctive enough that no other text contains it by chance.
const WRONG_TOKEN: &str = "wrong-token-5e1d9a";

#[tokio::test]
async fn tls_with_a_private_ca_and_auth_works_and_an_untrusted_server_is_refused() {
    let Some(bed) = bed().await else { return };
    // GIVEN a TLS-only server with an AUTH token and a certificate from a private CA
    let Some(tls) = TlsFiles::create().await else { return };
    let Some(server) = RedisServer::start_tls(&tls, &["--requirepass", "s3cret-token"]).await else {
        return;
    };
    let port = server.port;
    bed.publish(&format!("127.0.0.1:{port}")).await;
    let ca = std::fs::read(tls.ca()).expect("read CA");
    let tls_config = |root: Option<Vec<u8>>| {
        let mut cfg = fast_config();
        cfg.tls = true;
        cfg.tls_root_ca_pem = root;
        cfg.auth_token = Some("s3cret-token".into());
        cfg
    };

    // WHEN the client trusts the CA THEN commands work over TLS
    let trusted = bed.client(tls_config(Some(ca)));
    trusted
        .query::<()>(&set("k", "over-tls"))
        .await
        .expect("write over TLS");
    let v: String = trusted.query(&get("k")).await.expect("read over TLS");
    assert_eq!(v, "over-tls");

    // WHEN the client trusts only the system roots THEN the certificate is refused
    let untrusting = bed.client(tls_config(None));
    let err = untrusting
        .query::<()>(&set("k", "x"))
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // WHEN the client does not use TLS THEN it cannot talk to the TLS port
    let mut plain = tls_config(None);
    plain.tls = false;
    let err = bed
        .client(plain)
        .query::<()>(&set("k", "x"))
        .await
        .expect_err("plain text to a TLS port");
    assert!(err.is_failover(), "{err}");
}

// ---- A fleet at the worst moment (issue: single flight, stalled reads, the read schedule) ----

/// A TCP port on 127.0.0.1 that accepts connections and never answers, like a blackholed node;
/// counts the connections it accepted.
async fn blackhole() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn concurrent_callers_share_one_connection_attempt_to_a_blackholed_node() {
    let Some(bed) = bed().await else { return };
    // GIVEN the parameter names a node that accepts TCP and never answers
    let (port, accepted) = blackhole().await;
    bed.publish(&format!("127.0.0.1:{port}")).await;
    let mut cfg = fast_config();
    cfg.call_timeout = Duration::from_secs(30);
    let client = bed.client(cfg.clone());
    client.endpoint().await.expect("endpoint");
    // WHEN 50 callers write at once
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let r = c.query::<()>(&set("k", "v")).await;
            (r, Instant::now())
        }));
    }
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (result, done) = t.await.expect("task");
        let err = result.expect_err("the node never answers");
        assert!(err.is_failover(), "{err}");
        slowest = slowest.max(done - started);
    }
    // THEN they all got the one attempt's outcome, within about one connect timeout
    assert!(
        slowest < cfg.connect_timeout * 2,
        "the slowest caller waited {slowest:?} (connect_timeout {:?})",
        cfg.connect_timeout
    );
    let connections = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(connections <= 2, "{connections} connection attempts for one burst");
}

#[tokio::test]
async fn a_call_never_outlives_call_timeout() {
    let Some(bed) = bed().await else { return };
    let (port, _) = blackhole().await;
    bed.publish(&format!("127.0.0.1:{port}")).await;
    let mut cfg = fast_config();
    cfg.connect_timeout = Duration::from_secs(10);
    cfg.call_timeout = Duration::from_millis(300);
    let client = bed.client(cfg);
    let started = Instant::now();
    let err = client.query::<()>(&set("k", "v")).await.expect_err("blackholed");
    assert!(matches!(err, ClientError::Deadline { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stalled_parameter_read_does_not_hold_up_calls() {
    let Some(primary) = RedisServer::start().await else {
        return;
    };
    let Some(bed) = bed().await else { return };
    // GIVEN a connected client
    bed.publish(&primary.endpoint()).await;
    let client = bed.client(fast_config());
    client.query::<()>(&set("k", "v")).await.expect("first write");
    // AND SSM now takes 3 s to answer GetParameter
    bed.emu
        .fault(serde_json::json!({"service": "ssm", "operation": "GetParameter", "delay_ms": 3000}))
        .await;
    // WHEN its connection is killed (a failover-class error that schedules a re-read)
    drop_connection_until_a_read_is_due(&primary, &client).await;
    // THEN for the next 1.5 s (several re-read intervals) calls go on with the cached endpoint,
    // each quickly
    writes_stay_quick(&client, Duration::from_millis(1500), "during the stalled read").await;
    assert_eq!(client.cached_endpoint(), Some(primary.endpoint()));
    // AND a re-read was started meanwhile (it is the one stalled)
    let reads = client.stats().parameter_reads;
    assert!(
        reads >= 2,
        "the failover-class error started no re-read ({reads} reads)"
    );
}

#[tokio::test]
async fn a_slow_command_is_not_a_failover() {
    let Some(primary) = RedisServer::start().await else {
        return;
    };
    let Some(bed) = bed().await else { return };
    bed.publish(&primary.endpoint()).await;
    let mut cfg = fast_config();
    cfg.command_timeout = Duration::from_millis(400);
    cfg.connect_timeout = Duration::from_secs(1);
    let client = bed.client(cfg.clone());
    client.query::<()>(&set("k", "v")).await.expect("first write");
    bed.emu.clear_operations().await;
    // WHEN one command runs for 700 ms, longer than command_timeout
    let busy = redis::cmd("EVAL")
        .arg(
            "local s = redis.call('TIME'); local t0 = s[1] * 1000000 + s[2]; \
             while true do local n = redis.call('TIME'); if n[1] * 1000000 + n[2] - t0 > 700000 then break end end; return 1",
        )
        .arg(0)
        .clone();
    let started = Instant::now();
    let err = client.query::<i64>(&busy).await.expect_err("command_timeout");
    let took = started.elapsed();
    // THEN it is reported as a timeout of that command that is not a failover, and nothing is
    // re-read or reopened
    assert!(matches!(err, ClientError::Command { failover: false, .. }), "{err:?}");
    assert!(
        err.redis_error().is_some_and(redis::RedisError::is_timeout),
        "not the command's timeout: {err:?}"
    );
    assert!(
        took >= cfg.command_timeout,
        "failed after {took:?}, before command_timeout"
    );
    assert!(!err.is_failover(), "{err}");
    let v: String = client
        .query(&get("k"))
        .await
        .expect("next command on the same connection");
    assert_eq!(v, "v");
    assert_eq!(client.stats().reconnects, 0);
    assert_eq!(bed.parameter_reads().await, 0);
}

#[tokio::test]
async fn a_read_only_client_moves_to_the_new_primary_in_bounded_time() {
    let Some(old) = RedisServer::start().await else { return };
    let Some(new) = RedisServer::start().await else { return };
    let Some(bed) = bed().await else { return };
    let _: () = old.query(&["SET", "k", "v"]).await.expect("SET");
    let _: () = new.query(&["SET", "k", "v"]).await.expect("SET");
    bed.publish(&old.endpoint()).await;
    let mut cfg = fast_config();
    cfg.revalidate_interval = Duration::from_millis(400);
    let client = bed.client(cfg.clone());
    let _: String = client.query(&get("k")).await.expect("read");
    // WHEN the parameter moves, while the old node keeps answering reads
    bed.publish(&new.endpoint()).await;
    let moved = Instant::now();
    let until = moved + cfg.revalidate_interval + Duration::from_secs(1);
    while Instant::now() < until && client.cached_endpoint() != Some(new.endpoint()) {
        let _: String = client.query(&get("k")).await.expect("reads keep working");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // THEN within the revalidation interval the client follows, and reads go to the new node
    assert_eq!(
        client.cached_endpoint(),
        Some(new.endpoint()),
        "did not move within {:?}",
        moved.elapsed()
    );
    let _: String = client.query(&get("k")).await.expect("read");
    let clients: String = new.query(&["CLIENT", "LIST"]).await.expect("CLIENT LIST");
    assert!(
        clients.lines().count() >= 2,
        "no client connection on the new node: {clients}"
    );
}

#[tokio::test]
async fn a_disallowed_or_malformed_value_never_replaces_a_good_endpoint_and_hides_secrets() {
    let Some(primary) = RedisServer::start().await else {
        return;
    };
    let Some(bed) = bed().await else { return };
    // GIVEN a client allowed to connect only to hosts ending in .cache.amazonaws.com
    put_secure(&bed, &primary.endpoint()).await;
    let mut cfg = fast_config();
    cfg.allowed_host_suffixes = vec![".cache.amazonaws.com".into()];
    let client = bed.client(cfg);
    // THEN a SecureString naming another host is refused, and its value is not in the message
    let err = client.query::<()>(&set("k", "v")).await.expect_err("not allowed");
    let text = format!("{err}\n{err:?}");
    assert!(
        text.contains("allowed_host_suffixes") && !text.contains("127.0.0.1"),
        "{text}"
    );
    assert_eq!(client.cached_endpoint(), None);

    // GIVEN a client that trusts 127.0.0.1, is connected to it, and revalidates every 200 ms
    let logs = CapturedLogs::start();
    let mut cfg = fast_config();
    cfg.allowed_host_suffixes = vec!["127.0.0.1".into()];
    cfg.revalidate_interval = Duration::from_millis(200);
    let client = bed.client(cfg);
    client.query::<()>(&set("k", "v")).await.expect("allowed");
    // WHEN the parameter names a disallowed host, then holds a malformed secret
    let refused = |reason: &str| logs.client_lines().lines().filter(|l| l.contains(reason)).count();
    let bad = [
        (DISALLOWED_SECRET, "allowed_host_suffixes"),
        (MALFORMED_SECRET, "not a Redis endpoint"),
    ];
    for (value, reason) in bad {
        put_secure(&bed, value).await;
        let (reads_before, refused_before) = (client.stats().parameter_reads, refused(reason));
        let until = Instant::now() + Duration::from_millis(700);
        while Instant::now() < until {
            client
                .query::<()>(&set("k", "v"))
                .await
                .expect("writes go on to the good endpoint");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // THEN revalidation read the value and refused it, and the good endpoint stays
        let reads = client.stats().parameter_reads - reads_before;
        let refusals = refused(reason) - refused_before;
        assert!(
            reads >= 1 && refusals >= 1,
            "{value}: {reads} re-reads, {refusals} refusals logged:\n{}",
            logs.client_lines()
        );
        assert_eq!(client.cached_endpoint(), Some(primary.endpoint()));
    }
    assert_eq!(client.stats().endpoint_changes, 0);
    // AND no value read is printed: not in any log line nor the client's Debug form
    let printed = format!("{}\n{client:?}", logs.text());
    for (value, _) in bad {
        assert!(!printed.contains(value), "{value} is printed:\n{printed}");
    }
}

/// A SecureString value naming a host outside `allowed_host_suffixes`.
const DISALLOWED_SECRET: &str = "attacker-8d2b.example:6379";

/// A malformed SecureString is reported without its value: not in the error (`Display` or
/// `Debug`), the client's `Debug`, nor any log line.
#[tokio::test]
async fn a_malformed_secure_value_is_reported_without_its_value() {
    let Some(bed) = bed().await else { return };
    put_secure(&bed, MALFORMED_SECRET).await;
    let logs = CapturedLogs::start();
    let client = bed.client(fast_config());
    let err = client.query::<()>(&set("k", "v")).await.expect_err("malformed");
    let text = err.to_string();
    assert!(text.contains("not a Redis endpoint"), "{text}");
    assert!(
        logs.client_lines().contains("could not refresh the endpoint"),
        "the refused read was not logged:\n{}",
        logs.text()
    );
    let printed = format!("{text}\n{err:?}\n{client:?}\n{}", logs.text());
    assert!(
        !printed.contains(MALFORMED_SECRET),
        "the SecureString's value is printed:\n{printed}"
    );
}

/// A SecureString value that is not `host:port`, distinctive enough that no other text
/// contains it by chance.
const MALFORMED_SECRET: &str = "s3cret-4c7f1e-not-an-endpoint";

/// Writes `value` into [`PARAM`] as a `SecureString`.
async fn put_secure(bed: &ClientBed, value: &str) {
    bed.ssm
        .put_parameter()
        .name(PARAM)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("put");
}

/// A SecureString endpoint is used but never printed in full: not when its connection fails,
/// not when the parameter moves to another one, not in the client's `Debug`.
#[tokio::test]
async fn a_secure_string_endpoint_is_never_logged_in_full() {
    let Some(old) = RedisServer::start().await else { return };
    let Some(new) = RedisServer::start().await else { return };
    let Some(bed) = bed().await else { return };
    // GIVEN a SecureString parameter naming `old`, and a client writing to it
    put_secure(&bed, &old.endpoint()).await;
    let logs = CapturedLogs::start();
    let client = bed.client(fast_config());
    client.query::<()>(&set("k", "v")).await.expect("write to the old node");
    // WHEN the parameter moves to `new` and the connection to `old` drops
    put_secure(&bed, &new.endpoint()).await;
    drop_connection_until_a_read_is_due(&old, &client).await;
    client.query::<()>(&set("k", "v")).await.expect("write to the new node");
    // THEN the client followed, and logged both the failure and the change
    assert_eq!(client.cached_endpoint(), Some(new.endpoint()));
    let lines = logs.client_lines();
    assert!(
        lines.contains("failover-class error") && lines.contains("Redis endpoint changed"),
        "{}",
        logs.text()
    );
    // AND neither endpoint appears in the client's log lines or its Debug form
    let printed = format!("{lines}\n{client:?}");
    for endpoint in [old.endpoint(), new.endpoint()] {
        assert!(!printed.contains(&endpoint), "{endpoint} is printed:\n{printed}");
    }
}

#[tokio::test]
async fn a_throttled_parameter_read_backs_off_and_is_not_an_error_for_callers() {
    let Some(primary) = RedisServer::start().await else {
        return;
    };
    let Some(bed) = bed().await else { return };
    bed.publish(&primary.endpoint()).await;
    let cfg = fast_config();
    let client = bed.client(cfg.clone());
    client.query::<()>(&set("k", "v")).await.expect("first write");
    bed.emu.clear_operations().await;
    // GIVEN SSM throttles every GetParameter from now on
    bed.emu
        .fault(serde_json::json!({"service": "ssm", "operation": "GetParameter", "status": 400, "code": "ThrottlingException", "message": "Rate exceeded"}))
        .await;
    // WHEN the connection drops, so the client re-reads
    drop_connection_until_a_read_is_due(&primary, &client).await;
    // THEN callers keep writing through the cached endpoint for the next 2 s, without an error
    writes_stay_quick(&client, Duration::from_secs(2), "while SSM throttles").await;
    assert_eq!(client.cached_endpoint(), Some(primary.endpoint()));
    // AND the client did ask SSM and was throttled, but (the SDK retries each read 4 times)
    // far less often than it wrote
    let throttled = parameter_reads_answered(&bed, 400).await;
    assert!(throttled >= 1, "no GetParameter was made, so none was throttled");
    let reads = bed.parameter_reads().await;
    let episode_reads = cfg.max_reads_after_failure(Duration::from_secs(2)) * failover_core::sdk::MAX_ATTEMPTS as usize;
    assert!(
        reads <= episode_reads,
        "{reads} GetParameter calls, bound {episode_reads}"
    );
}
