//! Test harness: starts the local AWS emulator (moto server plus the `awsbed.emulator` package in
//! `tests/awsbed/`) on 127.0.0.1, builds real SDK clients pointed at it, and drives its control API.
//!
//! Each test gets its own emulator process (about 1.5 s to start), so tests share no state and
//! run in parallel. The process is killed when the [`Emulator`] is dropped, and exits by itself
//! if the test process dies (it watches its stdin pipe).
//!
//! The emulator's Python comes from `FAILOVER_EMULATOR_PYTHON`, else `.venv/bin/python` at the
//! workspace root (`make venv` creates it). When neither exists a test is skipped with a
//! message, unless `FAILOVER_REQUIRE_EMULATOR=1` (set by `make test` and CI), where it fails.

pub mod client_bed;
pub mod emf;
pub mod lambda;
pub mod redis_server;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The deadline tests give an invocation: a minute from now.
pub fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// A function's handler, as the tests call it.
pub trait Handler {
    /// What a successful invocation returns.
    type Response;
    /// Why an invocation failed.
    type Error;
    /// Handles `event`, finishing before `deadline`.
    fn handle(&self, event: &Value, deadline: Instant) -> impl Future<Output = Result<Self::Response, Self::Error>>;

    /// Handles the sample event `events/<event_file>` with [`deadline`]'s minute to run, e.g.
    /// `reconciler.run("redis-reconciler/eventbridge-scheduled.json")`.
    fn run(&self, event_file: &str) -> impl Future<Output = Result<Self::Response, Self::Error>> {
        let event = event(event_file);
        async move { self.handle(&event, deadline()).await }
    }
}

impl Handler for redis_reconciler::handler::Reconciler {
    type Response = redis_reconciler::plan::Response;
    type Error = redis_reconciler::handler::HandlerError;
    fn handle(&self, event: &Value, deadline: Instant) -> impl Future<Output = Result<Self::Response, Self::Error>> {
        redis_reconciler::handler::Reconciler::handle(self, event, deadline)
    }
}

impl Handler for bluegreen_rollback::handler::Rollback {
    type Response = bluegreen_rollback::plan::Response;
    type Error = bluegreen_rollback::handler::HandlerError;
    fn handle(&self, event: &Value, deadline: Instant) -> impl Future<Output = Result<Self::Response, Self::Error>> {
        bluegreen_rollback::handler::Rollback::handle(self, event, deadline, Some(lambda::ACCOUNT))
    }
}

/// Reads a sample event from `events/`, e.g. `event("redis-reconciler/eventbridge-scheduled.json")`.
pub fn event(relative: &str) -> Value {
    let path = workspace_root().join("events").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn emulator_python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FAILOVER_EMULATOR_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = workspace_root().join(".venv/bin/python");
    venv.exists().then_some(venv)
}

/// A running emulator.
pub struct Emulator {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    host_port: String,
    _child: Child,
}

impl Emulator {
    /// Starts an emulator, or returns `None` (after saying why) when no emulator Python is
    /// installed and `FAILOVER_REQUIRE_EMULATOR` is not set.
    pub async fn start() -> Option<Emulator> {
        let Some(python) = emulator_python() else {
            if std::env::var("FAILOVER_REQUIRE_EMULATOR").as_deref() == Ok("1") {
                panic!("FAILOVER_REQUIRE_EMULATOR=1 but no emulator Python: run `make venv` or set FAILOVER_EMULATOR_PYTHON");
            }
            eprintln!("SKIPPED: no emulator (run `make venv`, or use `make test`)");
            return None;
        };
        // `python -m awsbed.emulator`, the package found through PYTHONPATH (tests/).
        let package_dir = workspace_root().join("tests");
        let mut child = Command::new(&python)
            .args(["-m", "awsbed.emulator"])
            .args(["--host", "127.0.0.1", "--port", "0", "--parent-watch"])
            .env("PYTHONPATH", &package_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("FAILOVER_EMULATOR_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {} -m awsbed.emulator: {e}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(60), BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("emulator ready within 60 s")
            .expect("read emulator stdout");
        let url = line
            .trim()
            .strip_prefix("FAILOVER_EMULATOR_READY ")
            .unwrap_or_else(|| {
                panic!("unexpected emulator output {line:?} (set FAILOVER_EMULATOR_LOG=1 to see its stderr)")
            })
            .to_owned();
        let host_port = url.trim_start_matches("http://").to_owned();
        assert!(
            host_port.starts_with("127.0.0.1:"),
            "emulator must listen on loopback, got {url}"
        );
        Some(Emulator {
            url,
            host_port,
            _child: child,
        })
    }

    /// SDK configuration for this emulator, with the production retry and timeout settings,
    /// a fixed region and dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        failover_core::sdk::loader()
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "emulator",
            ))
            .load()
            .await
    }

    /// Calls the control API (`/_failover/...`); panics on a non-2xx answer.
    pub async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let body = body.to_string();
        let mut stream = TcpStream::connect(&self.host_port).await.expect("connect to emulator");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host_port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send control request");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read control response");
        let (head, payload) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head.split_whitespace().nth(1).unwrap_or("?");
        assert!(status.starts_with('2'), "{method} {path} -> {head}\n{payload}");
        serde_json::from_str(payload).unwrap_or(Value::Null)
    }

    /// Fails `group` over to `new_primary` (a cache cluster id).
    pub async fn failover(&self, group: &str, new_primary: &str) -> Value {
        self.control(
            "POST",
            "/_failover/elasticache/failover",
            json!({"replication_group_id": group, "new_primary": new_primary}),
        )
        .await
    }

    /// Sets members' `CurrentRole` (e.g. two replicas, to simulate a failover in progress).
    pub async fn set_roles(&self, group: &str, roles: Value) {
        self.control(
            "POST",
            "/_failover/elasticache/roles",
            json!({"replication_group_id": group, "roles": roles}),
        )
        .await;
    }

    /// Sets a group's status as `DescribeReplicationGroups` reports it.
    pub async fn set_status(&self, group: &str, status: &str) {
        self.control(
            "POST",
            "/_failover/elasticache/status",
            json!({"replication_group_id": group, "status": status}),
        )
        .await;
    }

    /// Points members of `group` at real addresses, e.g. local `redis-server`s:
    /// `[("orders-001", "127.0.0.1", 7001), ...]`.
    pub async fn set_member_endpoints(&self, group: &str, members: &[(&str, &str, u16)]) {
        let members: serde_json::Map<String, Value> = members
            .iter()
            .map(|(id, host, port)| (id.to_string(), json!({"address": host, "port": port})))
            .collect();
        self.control(
            "POST",
            "/_failover/elasticache/endpoints",
            json!({"replication_group_id": group, "members": members}),
        )
        .await;
    }

    /// Injects a fault (see `tests/awsbed/emulator/faults.py`).
    pub async fn fault(&self, spec: Value) {
        self.control("POST", "/_failover/faults", spec).await;
    }

    /// The AWS operations served so far, as `service:Operation` strings, in order.
    pub async fn operations(&self) -> Vec<String> {
        let log = self.control("GET", "/_failover/requests", json!({})).await;
        log.as_array()
            .expect("request log is a list")
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["service"].as_str().unwrap_or("?"),
                    r["operation"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// Forgets the AWS operations served so far.
    pub async fn clear_operations(&self) {
        self.control("DELETE", "/_failover/requests", json!({})).await;
    }

    /// Creates the hosted zone `example.com.` and returns its id (without `/hostedzone/`).
    pub async fn hosted_zone(&self) -> String {
        let r53 = aws_sdk_route53::Client::new(&self.sdk_config().await);
        let created = r53
            .create_hosted_zone()
            .name("example.com")
            .caller_reference("tests")
            .send()
            .await
            .expect("create hosted zone");
        let zone = created.hosted_zone().expect("zone").id();
        zone.trim_start_matches("/hostedzone/").to_owned()
    }

    /// Creates the hosted zone `example.com.` holding the weighted pair `app.example.com` A
    /// ([`pair_record`] `blue` and `green` with these weights), forgets those calls, and returns the
    /// zone id (without `/hostedzone/`).
    pub async fn weighted_pair(&self, blue: i64, green: i64) -> String {
        use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
        let zone = self.hosted_zone().await;
        let r53 = aws_sdk_route53::Client::new(&self.sdk_config().await);
        let mut batch = ChangeBatch::builder();
        for record in [pair_record("blue", blue), pair_record("green", green)] {
            let change = Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(record);
            batch = batch.changes(change.build().expect("change"));
        }
        r53.change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(batch.build().expect("batch"))
            .send()
            .await
            .expect("create the pair");
        self.clear_operations().await;
        zone
    }
}

/// One record of [`Emulator::weighted_pair`]: `app.example.com.` A, TTL 60, blue `192.0.2.10`,
/// green `198.51.100.20`.
pub fn pair_record(id: &str, weight: i64) -> aws_sdk_route53::types::ResourceRecordSet {
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet, RrType};
    let ip = if id == "blue" { "192.0.2.10" } else { "198.51.100.20" };
    ResourceRecordSet::builder()
        .name("app.example.com.")
        .r#type(RrType::A)
        .set_identifier(id)
        .weight(weight)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(ip).build().expect("record"))
        .build()
        .expect("record set")
}
