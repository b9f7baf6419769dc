//! Real `redis-server` processes on free loopback ports, for tests and the drill.
//!
//! Started with persistence off and `--repl-diskless-sync-delay 0` (otherwise a replica's first
//! sync waits 5 s). Killed when dropped. Needs Debian's `redis-server` (`apt-get install
//! redis-server`); when it is missing a test is skipped with a message, unless
//! `FAILOVER_REQUIRE_REDIS=1` (set by `make test` and CI), where it fails.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running `redis-server` on 127.0.0.1.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local addr").port()
}

/// Whether `program` runs; when it does not, the test is skipped (saying why) unless
/// `FAILOVER_REQUIRE_REDIS=1` (set by `make test` and CI), where it fails.
pub fn tool_available(program: &str, version_arg: &str) -> bool {
    let ok = std::process::Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("FAILOVER_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("FAILOVER_REQUIRE_REDIS=1 but `{program}` is not installed (make redis installs redis-server)");
        }
        eprintln!("SKIPPED: `{program}` is not installed");
    }
    ok
}

impl RedisServer {
    /// Starts a primary, or returns `None` (after saying why) when `redis-server` is missing and
    /// `FAILOVER_REQUIRE_REDIS` is not set.
    pub async fn start() -> Option<RedisServer> {
        Self::launch(&[]).await
    }

    /// Starts a primary with extra `redis-server` arguments (e.g. `--requirepass`).
    pub async fn start_with(args: &[&str]) -> Option<RedisServer> {
        Self::launch(args).await
    }

    /// Starts a replica of `primary` and waits until its first sync has completed.
    pub async fn start_replica_of(primary: &RedisServer) -> Option<RedisServer> {
        let port = primary.port.to_string();
        let replica = Self::launch(&["--replicaof", "127.0.0.1", &port]).await?;
        for _ in 0..100 {
            let info: String = replica.query(&["INFO", "replication"]).await.unwrap_or_default();
            if info.contains("master_link_status:up") {
                return Some(replica);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "replica on {} did not sync with {} within 5 s",
            replica.port, primary.port
        );
    }

    /// Starts a TLS-only server (certificate from `tls`) with extra arguments, e.g.
    /// `--requirepass`. Plain-text commands ([`RedisServer::query`]) do not reach it.
    pub async fn start_tls(tls: &crate::tls::TlsFiles, extra: &[&str]) -> Option<RedisServer> {
        let (cert, key, ca) = (tls.cert(), tls.key(), tls.ca());
        let mut args = vec![
            "--tls-cert-file",
            cert.to_str().expect("utf-8 path"),
            "--tls-key-file",
            key.to_str().expect("utf-8 path"),
            "--tls-ca-cert-file",
            ca.to_str().expect("utf-8 path"),
            "--tls-auth-clients",
            "no",
        ];
        args.extend_from_slice(extra);
        Self::launch_with(&args, true).await
    }

    async fn launch(extra: &[&str]) -> Option<RedisServer> {
        Self::launch_with(extra, false).await
    }

    async fn launch_with(extra: &[&str], tls: bool) -> Option<RedisServer> {
        if !tool_available("redis-server", "--version") {
            return None;
        }
        let port = free_port();
        let port_args: Vec<String> = if tls {
            vec!["--port".into(), "0".into(), "--tls-port".into(), port.to_string()]
        } else {
            vec!["--port".into(), port.to_string()]
        };
        // A replica stores the RDB it receives in its working directory: keep it out of the tree.
        let dir = std::env::temp_dir().join(format!("failover-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("create redis working directory");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1"])
            .args(&port_args)
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--repl-diskless-sync-delay",
                "0",
                "--protected-mode",
                "no",
            ])
            .args(extra)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server");
        let server = RedisServer {
            port,
            child: Some(child),
        };
        for _ in 0..100 {
            if tls {
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return Some(server);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            match server.query::<String>(&["PING"]).await {
                // A server started with --requirepass answers, but only with NOAUTH.
                Ok(_) => return Some(server),
                Err(e) if e.to_string().contains("NOAUTH") => return Some(server),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server on port {port} did not answer PING within 2 s");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, as the reconciler publishes it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends one command on a fresh connection.
    pub async fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut conn).await
    }

    /// Promotes this replica: `REPLICAOF NO ONE`.
    pub async fn promote(&self) {
        let _: String = self.query(&["REPLICAOF", "NO", "ONE"]).await.expect("REPLICAOF NO ONE");
    }

    /// Kills the server now (a crashed primary).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}
