//! sample-app: the failover drill's application. Writes `SET drill:<n> <unix-millis>` in a loop
//! through an [`EndpointClient`] and reports, as one JSON object per line on stdout, what an
//! operator wants to see during a failover: failed writes, the endpoint moving, the first
//! write that works again, and a summary with the longest outage.
//!
//! ```text
//! sample-app --parameter /app/orders/redis [--interval-ms 50] [--duration-secs N] [--tls]
//! ```
//!
//! `REDIS_AUTH_TOKEN` (environment, so it stays out of `ps`) is the AUTH token; `--tls` or
//! `REDIS_TLS=true` turns on TLS. AWS settings (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials)
//! are read the standard SDK way. Without `--duration-secs` it runs until SIGTERM, SIGINT, or
//! end of input when its stdin is a pipe (a parent holding the pipe open; stdin from
//! `/dev/null` or a terminal is not watched), and then prints the summary and exits 0.
//!
//! Lines (`t_ms` is unix milliseconds when the event happened):
//! - `{"event":"write-ok","n":1,"endpoint":"127.0.0.1:7001","t_ms":..}`: the first success, and
//!   the first success after failures;
//! - `{"event":"heartbeat","n":20,"endpoint":..,"writes_ok":..,"writes_failed":..,"t_ms":..}`:
//!   every 20th write, when it succeeds;
//! - `{"event":"write-failed","n":..,"error":"...","t_ms":..}`: every failed write;
//! - `{"event":"endpoint-changed","from":..,"to":..,"t_ms":..}`;
//! - `{"event":"summary","writes_ok":..,"writes_failed":..,"longest_outage_ms":..,"outages":..,
//!   "endpoint_changes":..,"parameter_reads":..,"reconnects":..,"stopped_by":"SIGTERM","t_ms":..}`.
//!
//! An outage runs from issuing the first failed write to completing the next successful one.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use endpoint_client::{ClientConfig, EndpointClient};
use serde_json::{json, Value};
use tokio::time::MissedTickBehavior;

const USAGE: &str = "usage: sample-app --parameter NAME [--interval-ms 50] [--duration-secs N] [--tls]
  env: REDIS_AUTH_TOKEN (AUTH token), REDIS_TLS=true, AWS_ENDPOINT_URL, AWS_REGION, AWS credentials";

/// Every this many writes a successful write prints a heartbeat.
const HEARTBEAT_EVERY: u64 = 20;

/// Command-line settings.
struct Args {
    parameter: String,
    interval: Duration,
    duration: Option<Duration>,
    tls: bool,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parameter = None;
        let mut interval = Duration::from_millis(50);
        let mut duration = None;
        let mut tls = std::env::var("REDIS_TLS").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"));
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--parameter" => parameter = Some(value("--parameter")?),
                "--interval-ms" => interval = Duration::from_millis(number(&value("--interval-ms")?, "--interval-ms")?),
                "--duration-secs" => {
                    duration = Some(Duration::from_secs(number(
                        &value("--duration-secs")?,
                        "--duration-secs",
                    )?))
                }
                "--tls" => tls = true,
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let parameter = parameter
            .filter(|p| !p.trim().is_empty())
            .ok_or("--parameter is required (the SSM parameter redis-reconciler writes)")?;
        if interval.is_zero() {
            return Err("--interval-ms must be at least 1".into());
        }
        Ok(Self {
            parameter,
            interval,
            duration,
            tls,
        })
    }
}

fn number(text: &str, name: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{name} must be a whole number, got {text:?}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Prints one JSON line with `event` first, then `fields` in the order given (easier to read
/// than a map's sorted keys).
fn emit(event: &str, fields: &[(&str, Value)]) {
    let mut line = format!("{{\"event\":{}", Value::from(event));
    for (key, value) in fields {
        line.push_str(&format!(",{}:{value}", Value::from(*key)));
    }
    line.push('}');
    // A closed stdout must not stop the drill's writes; the summary is best effort too.
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Counts writes and outages.
#[derive(Default)]
struct Tally {
    writes_ok: u64,
    writes_failed: u64,
    outages: u64,
    longest_outage_ms: u64,
    /// Issue time of the first failed write of the current outage.
    outage_since: Option<u64>,
}

impl Tally {
    /// Records a success at `t_ms`; true when it is worth a `write-ok` line (the first
    /// success, or the first after failures).
    fn ok(&mut self, t_ms: u64) -> bool {
        self.writes_ok += 1;
        match self.outage_since.take() {
            Some(since) => {
                self.longest_outage_ms = self.longest_outage_ms.max(t_ms.saturating_sub(since));
                true
            }
            None => self.writes_ok == 1,
        }
    }

    /// Records a failure of a write issued at `issued_ms`.
    fn failed(&mut self, issued_ms: u64) {
        self.writes_failed += 1;
        if self.outage_since.is_none() {
            self.outage_since = Some(issued_ms);
            self.outages += 1;
        }
    }

    /// Closes an outage still open at exit.
    fn finish(&mut self, t_ms: u64) {
        if let Some(since) = self.outage_since.take() {
            self.longest_outage_ms = self.longest_outage_ms.max(t_ms.saturating_sub(since));
        }
    }
}

/// Resolves when the app should stop, with what stopped it.
async fn stop_requested(duration: Option<Duration>) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    let elapsed = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = sigterm => "SIGTERM",
        _ = stdin_closed() => "stdin closed",
        _ = elapsed => "duration elapsed",
    }
}

/// Resolves at end of input when stdin is a pipe or socket; never otherwise. A plain thread
/// reads it, so a pending read cannot keep the runtime from shutting down.
async fn stdin_closed() {
    use std::os::unix::fs::FileTypeExt;
    let watched =
        std::fs::metadata("/proc/self/fd/0").is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket());
    if !watched {
        return std::future::pending().await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut sink = [0u8; 512];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    if rx.await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("sample-app: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // This workspace builds the SDK without its default HTTPS client (failover_core::sdk::https_client
    // explains why); an application with aws-config's default features needs no such line.
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(failover_core::sdk::https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(3))
                .build(),
        )
        .load()
        .await;
    let mut cfg = ClientConfig::new(&args.parameter);
    cfg.tls = args.tls;
    cfg.auth_token = std::env::var("REDIS_AUTH_TOKEN").ok().filter(|t| !t.is_empty());
    let client = EndpointClient::new(aws_sdk_ssm::Client::new(&sdk), cfg);
    let (stopped_by, tally) = run(&client, &args).await;
    emit_summary(&client, stopped_by, tally);
    ExitCode::SUCCESS
}

/// The write loop; returns what stopped it and the tally.
async fn run(client: &EndpointClient, args: &Args) -> (&'static str, Tally) {
    let stop = stop_requested(args.duration);
    tokio::pin!(stop);
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tally = Tally::default();
    let mut last_endpoint: Option<String> = None;
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            why = &mut stop => return (why, tally),
            _ = ticker.tick() => {}
        }
        n += 1;
        let issued = now_ms();
        let cmd = redis::cmd("SET").arg(format!("drill:{n}")).arg(issued).clone();
        let result = tokio::select! {
            why = &mut stop => return (why, tally),
            r = client.query::<()>(&cmd) => r,
        };
        let t_ms = now_ms();
        let endpoint = client.cached_endpoint();
        if let (Some(from), Some(to)) = (&last_endpoint, &endpoint) {
            if from != to {
                emit(
                    "endpoint-changed",
                    &[("from", json!(from)), ("to", json!(to)), ("t_ms", json!(t_ms))],
                );
            }
        }
        if endpoint.is_some() {
            last_endpoint = endpoint.clone();
        }
        match result {
            Ok(()) => {
                if tally.ok(t_ms) {
                    emit(
                        "write-ok",
                        &[("n", json!(n)), ("endpoint", json!(endpoint)), ("t_ms", json!(t_ms))],
                    );
                } else if n.is_multiple_of(HEARTBEAT_EVERY) {
                    emit(
                        "heartbeat",
                        &[
                            ("n", json!(n)),
                            ("endpoint", json!(endpoint)),
                            ("writes_ok", json!(tally.writes_ok)),
                            ("writes_failed", json!(tally.writes_failed)),
                            ("t_ms", json!(t_ms)),
                        ],
                    );
                }
            }
            Err(e) => {
                tally.failed(issued);
                emit(
                    "write-failed",
                    &[("n", json!(n)), ("error", json!(e.to_string())), ("t_ms", json!(t_ms))],
                );
            }
        }
    }
}

fn emit_summary(client: &EndpointClient, stopped_by: &str, mut tally: Tally) {
    let t_ms = now_ms();
    tally.finish(t_ms);
    let stats = client.stats();
    emit(
        "summary",
        &[
            ("writes_ok", json!(tally.writes_ok)),
            ("writes_failed", json!(tally.writes_failed)),
            ("longest_outage_ms", json!(tally.longest_outage_ms)),
            ("outages", json!(tally.outages)),
            ("endpoint_changes", json!(stats.endpoint_changes)),
            ("parameter_reads", json!(stats.parameter_reads)),
            ("reconnects", json!(stats.reconnects)),
            ("stopped_by", json!(stopped_by)),
            ("t_ms", json!(t_ms)),
        ],
    );
}
