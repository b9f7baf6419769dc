//! CloudWatch metrics in the Embedded Metric Format (EMF): one JSON document per invocation,
//! printed on its own line to stdout, which CloudWatch Logs turns into metrics with no API call.
//!
//! Each function declares its figures as a `#[metrics]` struct (metrique) that flattens
//! [`Dimensions`] in; [`Emitter::emit`] formats it and writes it with one `write` call, so the
//! line is never interleaved with a log line. The line goes to stdout itself, not through
//! `tracing`: a log formatter would prefix it (text) or quote it (JSON) and CloudWatch would
//! extract nothing.
//!
//! Dimensions are bounded by the deployment: the function's name always, and the replication
//! group when an invocation concerns exactly one (the reconciler's group ids come from its
//! configuration). Every metric is published under `[FunctionName]`; a document with a group is
//! also published under `[FunctionName, ReplicationGroupId]`.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use metrique::emf::Emf;
use metrique::unit::Count;
use metrique::unit_of_work::metrics;
use metrique::writer::format::Format as _;
use metrique::{CloseValue, InflectableEntry, RootEntry};

use crate::env::{ConfigError, Env, Var};

/// `METRICS_NAMESPACE`: the CloudWatch namespace of both functions' metrics.
pub const NAMESPACE: Var = Var::with_default(
    "METRICS_NAMESPACE",
    "Failover",
    "CloudWatch namespace of the metrics each invocation emits (Embedded Metric Format on stdout). \
     1 to 255 characters: letters, digits, `.-_/#:` and spaces; not starting with `AWS/` or `:`.",
);

/// The dimension every metric carries: the Lambda function's name.
pub const FUNCTION_DIMENSION: &str = "FunctionName";
/// The dimension added when an invocation concerns one replication group.
pub const GROUP_DIMENSION: &str = "ReplicationGroupId";

/// Reads and checks `METRICS_NAMESPACE` (CloudWatch's rules for a namespace).
pub fn namespace(env: &Env<'_>) -> Result<String, ConfigError> {
    let ns = env.get_or_default(&NAMESPACE).unwrap_or_default();
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if ns.is_empty() || ns.len() > 255 {
        return Err(ConfigError::invalid(&NAMESPACE, &ns, "must be 1 to 255 characters"));
    }
    if let Some(bad) = ns.chars().find(|c| !allowed(*c)) {
        return Err(ConfigError::invalid(
            &NAMESPACE,
            &ns,
            format!("{bad:?} is not allowed: use letters, digits, `.-_/#:` and spaces"),
        ));
    }
    // CloudWatch's model pattern is `[^:].*`: a `:` anywhere but first.
    if ns.starts_with(':') {
        return Err(ConfigError::invalid(
            &NAMESPACE,
            &ns,
            "must not start with `:` (CloudWatch rejects it)",
        ));
    }
    if ns.starts_with("AWS/") {
        return Err(ConfigError::invalid(
            &NAMESPACE,
            &ns,
            "namespaces starting with AWS/ are reserved for AWS",
        ));
    }
    Ok(ns)
}

/// From `event` (the event's own time) to `done`, for a latency metric: `None` when either is
/// unknown, or when the clock puts `done` first (skew yields no figure rather than a wrong one).
pub fn latency(event: Option<SystemTime>, done: Option<SystemTime>) -> Option<Duration> {
    done?.duration_since(event?).ok()
}

/// The part of every document that is the same for both functions.
#[metrics]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimensions {
    /// `FunctionName`: the Lambda function's name.
    pub function_name: String,
    /// `ReplicationGroupId`, when the invocation concerns exactly one group.
    pub replication_group_id: Option<String>,
    /// `ColdStart`: 1 on the first invocation of this process, else 0.
    #[metrics(unit = Count)]
    pub cold_start: bool,
}

/// Where documents go.
#[derive(Debug, Clone, Default)]
pub enum Sink {
    /// The process's stdout (Lambda sends it to CloudWatch Logs).
    #[default]
    Stdout,
    /// A buffer, for tests.
    Memory(Arc<Mutex<Vec<u8>>>),
}

/// Formats and writes one EMF document per invocation. Built once at init.
pub struct Emitter {
    function: String,
    by_function: Mutex<Emf>,
    by_group: Mutex<Emf>,
    first: AtomicBool,
    sink: Sink,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("function", &self.function)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// An emitter for `function` (the Lambda function's name) publishing under `namespace`.
    pub fn new(namespace: &str, function: impl Into<String>, sink: Sink) -> Self {
        let function_only = vec![vec![FUNCTION_DIMENSION.to_owned()]];
        let with_group = vec![
            vec![FUNCTION_DIMENSION.to_owned()],
            vec![FUNCTION_DIMENSION.to_owned(), GROUP_DIMENSION.to_owned()],
        ];
        Self {
            function: function.into(),
            by_function: Mutex::new(Emf::builder(namespace.to_owned(), function_only).build()),
            by_group: Mutex::new(Emf::builder(namespace.to_owned(), with_group).build()),
            first: AtomicBool::new(true),
            sink,
        }
    }

    /// An emitter to stdout for the running Lambda function (`AWS_LAMBDA_FUNCTION_NAME`, or
    /// `fallback` outside Lambda).
    pub fn for_lambda(namespace: &str, fallback: &str) -> Self {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| fallback.to_owned());
        Self::new(namespace, function, Sink::Stdout)
    }

    /// The dimensions of this invocation's document; the first call in the process is the cold
    /// start.
    pub fn dimensions(&self, group: Option<&str>) -> Dimensions {
        Dimensions {
            function_name: self.function.clone(),
            replication_group_id: group.map(str::to_owned),
            cold_start: self.first.swap(false, Ordering::Relaxed),
        }
    }

    /// Writes `metrics` as one EMF line. `metrics` must flatten in a [`Dimensions`] from
    /// [`Self::dimensions`]; `group` says which one it carries. A failure to format or write is
    /// logged, never returned: metrics must not fail the invocation that did the work.
    pub fn emit<M>(&self, metrics: M, group: bool)
    where
        M: CloseValue,
        M::Closed: InflectableEntry,
    {
        let entry = RootEntry::new(metrics.close());
        let emf = if group { &self.by_group } else { &self.by_function };
        let mut line = Vec::with_capacity(1024);
        let formatted = emf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .format(&entry, &mut line);
        if let Err(e) = formatted {
            tracing::warn!(error = %e, "could not format this invocation's metrics; none emitted");
            return;
        }
        let written = match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&line).and_then(|()| out.flush())
            }
            Sink::Memory(buf) => {
                buf.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&line);
                Ok(())
            }
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not write this invocation's metrics");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_defaults_and_is_checked() {
        assert_eq!(namespace(&Env::from_pairs(&[])).unwrap(), "Failover");
        assert_eq!(
            namespace(&Env::from_pairs(&[("METRICS_NAMESPACE", "Team/Failover 2")])).unwrap(),
            "Team/Failover 2"
        );
        for bad in ["AWS/Lambda", "a$b", &"x".repeat(256), ":Failover", ":"] {
            let err = namespace(&Env::from_pairs(&[("METRICS_NAMESPACE", bad)])).unwrap_err();
            assert!(err.to_string().contains("METRICS_NAMESPACE"), "{err}");
        }
    }

    #[test]
    fn a_latency_needs_both_times_in_order() {
        let at = |ms| Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(latency(at(1_000), at(1_250)), Some(Duration::from_millis(250)));
        assert_eq!(latency(at(1_250), at(1_000)), None);
        assert_eq!(latency(None, at(1_000)), None);
        assert_eq!(latency(at(1_000), None), None);
    }

    #[test]
    fn only_the_first_invocation_is_the_cold_start() {
        let e = Emitter::new("Failover", "f", Sink::default());
        assert!(e.dimensions(None).cold_start);
        assert!(!e.dimensions(None).cold_start);
    }
}
