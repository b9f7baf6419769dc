//! The redis-reconciler's handler: the imperative shell around the pure decisions in
//! [`topology`](crate::topology) and [`plan`](crate::plan).
//!
//! classify the event -> choose targets -> describe them (one batched call) -> read the
//! parameters of those whose endpoint can be picked now (batched) -> then, for each target on
//! its own: publish it if it is ready, else wait for it to settle and describe it again; write
//! only a parameter that differs, and describe the group once more after the write to check
//! that the primary did not move meanwhile.
//!
//! Never a write from a stale view: a parameter is written only from a describe (and, with
//! `VERIFY_ROLE`, a `ROLE` answer) made after the last wait of that target's flow, and a slow
//! group delays no other. Before each step the remaining time must hold the step's worst case
//! ([`AFTER_SETTLE`], [`TIMEOUT_RESERVE`]); otherwise the target stops and says why. Targets are
//! independent; if any failed, the invocation fails after trying them all, so Lambda retries
//! and the failure alarms, while the targets already written still report `updated`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use failover_core::deadline::{self, seconds, Budget, OutOfTime, Step};
use failover_core::envelope::{self, TriggerError};
use failover_core::metrics::Emitter;
use failover_core::retry::{self, Look};
use failover_core::sdk::{self, CallError};
use failover_core::secret::Secret;
use futures::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::{AuthToken, ReconcilerConfig, Target, SETTLE};
use crate::elasticache::{DescribeError, ElastiCache};
use crate::metrics::{figures, TargetFigures};
use crate::plan::{
    decide, description, select_targets, shown, Action, Decision, Response, Selection, TargetResult, UnmanagedGroup,
};
use crate::probe::{RoleCheck, RoleProbe};
use crate::ssm::{Ssm, StoredParameter};
use crate::topology::{names_stale_node, pick_endpoint, unsettled_primary, Pick, PickError, ReplicationGroup};
use crate::trigger::{classify, Trigger};

/// How long `VERIFY_ROLE` waits for a node to connect, and then to answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Describing replication groups (one call; a page of many groups counts as one).
pub const DESCRIBE: Step = Step::new("describe the replication group", sdk::OPERATION_TIMEOUT);
/// `VERIFY_ROLE`: connecting to the candidate, then its `ROLE` answer.
pub const PROBE: Step = Step::new(
    "ask the candidate for its ROLE",
    Duration::from_secs(2 * PROBE_TIMEOUT.as_secs()),
);
/// Reading the parameters.
pub const READ: Step = Step::new("read the parameter", sdk::OPERATION_TIMEOUT);
/// Writing one parameter.
pub const WRITE: Step = Step::new("write the parameter", sdk::OPERATION_TIMEOUT);
/// What a target needs after its last wait: a fresh describe, the probe, the read, the write,
/// and the describe that checks the write.
pub const AFTER_SETTLE: [Step; 5] = [DESCRIBE, PROBE, READ, WRITE, DESCRIBE];
/// A page of the first look's listing starts only while it and the steps after it still fit.
const FIRST_PAGE_THEN: [Step; 6] = [DESCRIBE, DESCRIBE, PROBE, READ, WRITE, DESCRIBE];
/// The function's timeout must be at least `SETTLE_TIMEOUT_SECS` plus this: the first describe,
/// the steps after the settle wait, and the margin kept for the response. The deploy template's
/// check derives its rule from this value.
pub const TIMEOUT_RESERVE: Duration = DESCRIBE
    .worst
    .saturating_add(deadline::worst_case(&AFTER_SETTLE))
    .saturating_add(deadline::RESPONSE_MARGIN);

/// The most writes of one parameter in one invocation: a primary that moves again while we
/// write is followed this many times, then left to the next trigger.
pub const MAX_WRITES: u32 = 3;

/// Why one target could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The group could not be described.
    #[error(transparent)]
    Describe(Arc<DescribeError>),
    /// The parameter could not be read.
    #[error(transparent)]
    Read(Arc<CallError>),
    /// The parameter could not be written.
    #[error("{source}{}", if source.may_have_applied { "; the write may or may not have landed: check the parameter" } else { "; the parameter was not changed" })]
    Write {
        /// The failed call.
        source: CallError,
    },
    /// A call made once for several targets (the first describe) failed.
    #[error(transparent)]
    Batch(Arc<TargetError>),
    /// `VERIFY_ROLE` could not read its AUTH token.
    #[error(transparent)]
    Token(Arc<CallError>),
    /// The group's description cannot be published (e.g. an unexpected shape).
    #[error(transparent)]
    Pick(PickError),
    /// The group stayed mid-failover (or its candidate unconfirmed) for the whole settle budget.
    #[error("{source}; still unsettled after {}{}; the next trigger will look again", seconds(*.waited), if !*.by_deadline {
        format!(" ({})", SETTLE.name)
    } else if *.waited < retry::FIRST_WAIT {
        format!("; the function timeout left no time to wait for the group to settle: set it to at least {} + {}", SETTLE.name, seconds(TIMEOUT_RESERVE))
    } else {
        format!("; the function timeout left no more time to wait: set it to at least {} + {}", SETTLE.name, seconds(TIMEOUT_RESERVE))
    })]
    Unsettled {
        /// The last reason it was not settled.
        #[source]
        source: NotReady,
        /// How long we waited.
        waited: Duration,
        /// Whether the wait was cut short by the Lambda deadline rather than by `SETTLE_TIMEOUT_SECS`.
        by_deadline: bool,
    },
    /// The next step would not fit before the Lambda deadline, so it was not started.
    #[error("{source}; {}", if *.wrote { "the parameter was written before that" } else { "the parameter was not changed" })]
    OutOfTime {
        /// Which step, and the time it needed.
        #[source]
        source: OutOfTime,
        /// Whether this invocation had written the parameter already.
        wrote: bool,
    },
    /// The first look stopped listing replication groups before it found this one, for lack of
    /// time.
    #[error("not reached: the listing of replication groups stopped before it found this group, to keep the Lambda deadline; the parameter was not changed: raise the function timeout")]
    NotReached,
    /// The primary kept moving while this invocation wrote: [`MAX_WRITES`] writes, then left
    /// to the next trigger.
    #[error("the primary kept moving while the parameter was written ({MAX_WRITES} writes); the group now names {now}; the next trigger will look again")]
    KeptMoving {
        /// The node the last describe names.
        now: String,
    },
    /// The invocation's time ran out while a step was in flight.
    #[error("ran out of time before the Lambda deadline while {}; raise the function timeout to at least {} + {}", .progress.describe(), SETTLE.name, seconds(TIMEOUT_RESERVE))]
    Abandoned {
        /// What the target was doing.
        progress: Progress,
    },
}

/// Why a group's endpoint cannot be published yet.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// ElastiCache's description says the group is mid-failover.
    #[error(transparent)]
    Pick(PickError),
    /// `VERIFY_ROLE`: the candidate did not confirm it is the master.
    #[error(transparent)]
    Role(RoleCheck),
}

/// How far one target's flow got, for the report when the deadline cuts it short, and its
/// timing, for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// A `PutParameter` is in flight.
    pub writing: bool,
    /// The parameter's value when first read, as [`shown`] (`None`: missing or not read yet).
    pub previous: Option<String>,
    /// The value this invocation last wrote, as [`shown`]; `None` until a write is accepted.
    pub wrote: Option<String>,
    /// Time spent settling: describing again and waiting while the group is mid-failover.
    pub settle_wait: Duration,
    /// When the last write of this invocation was accepted.
    pub written_at: Option<SystemTime>,
}

impl Progress {
    fn describe(&self) -> &'static str {
        match (self.writing, self.wrote.is_some()) {
            (true, _) => "writing the parameter: the write may or may not have landed, check the parameter",
            (false, true) => "checking the parameter it had written",
            (false, false) => "reconciling; the parameter was not changed",
        }
    }
}

/// Why an invocation failed.
#[derive(thiserror::Error)]
pub enum HandlerError {
    /// The event is not something we accept; nothing was written.
    #[error("{0}; nothing was written")]
    BadEvent(#[from] TriggerError),
    /// A direct invocation named a group we do not manage; nothing was written.
    #[error("{0}; nothing was written")]
    Unmanaged(#[from] UnmanagedGroup),
    /// At least one target failed (the others were still reconciled).
    #[error("{failed} of {total} targets failed: {summary}")]
    TargetsFailed {
        /// Number of failed targets.
        failed: usize,
        /// Number of targets tried.
        total: usize,
        /// `group: error` for each failed target.
        summary: String,
        /// Every target's result, failed or not.
        results: Vec<TargetResult>,
    },
}

// lambda_runtime logs a failed invocation's error with `{:?}`: that line shows the text an
// operator reads. The SDK's whole error chain is logged at debug level where the call failed.
impl std::fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match e {
            HandlerError::BadEvent(_) => "BadEvent",
            HandlerError::Unmanaged(_) => "UnmanagedGroup",
            HandlerError::TargetsFailed { .. } => "TargetsFailed",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// The function: configuration and clients, built once at init.
#[derive(Debug)]
pub struct Reconciler {
    cfg: ReconcilerConfig,
    elasticache: ElastiCache,
    ssm: Ssm,
    probe: Option<RoleProbe>,
    /// The AUTH token, read once from its parameter on the first probe that needs it.
    token: OnceCell<Option<Secret>>,
    /// Where each invocation's metrics go.
    metrics: Emitter,
}

/// The parameter as a target's flow first read it, as the response reports it: its value as
/// [`shown`] (`None` when it did not exist) and whether it is a SecureString, whose values are
/// never shown.
#[derive(Debug, Clone, Default)]
struct Before {
    value: Option<String>,
    secure: bool,
}

impl Before {
    fn of(stored: Option<&StoredParameter>) -> Self {
        Self {
            value: stored.map(|p| shown(&p.value, p.is_secure())),
            secure: stored.is_some_and(StoredParameter::is_secure),
        }
    }
}

/// Until when a target may wait for its group to settle, and what set that limit.
#[derive(Debug, Clone, Copy)]
struct SettleUntil {
    at: Instant,
    /// The Lambda deadline (less the steps after the wait), not `SETTLE_TIMEOUT_SECS`.
    by_deadline: bool,
}

/// What the first, batched look found for one target.
enum FirstLook {
    /// The group as described just now, and (when it could be decided at once) its parameter
    /// as read right after.
    Described(ReplicationGroup, Option<Result<Option<StoredParameter>, TargetError>>),
    /// It could not be described.
    Failed(TargetError),
}

/// A group the first look did not find: missing, or not reached by a listing cut short.
fn not_found(target: &Target, listing_complete: bool) -> TargetError {
    if listing_complete {
        TargetError::Describe(Arc::new(DescribeError::NotFound {
            group: target.replication_group_id.clone(),
        }))
    } else {
        TargetError::NotReached
    }
}

/// What one target's flow knows as it goes.
struct Flow<'a> {
    target: &'a Target,
    /// The group as last described.
    view: ReplicationGroup,
    /// The parameter as read after the last describe, with no wait since (taken when used).
    fresh: Option<Result<Option<StoredParameter>, TargetError>>,
    /// The parameter as first read: what the response reports as `previous`.
    before: Option<Before>,
    /// What this invocation last wrote.
    written: Option<Pick>,
    /// How many writes this invocation made.
    writes: u32,
}

impl<'a> Flow<'a> {
    fn new(
        target: &'a Target,
        view: ReplicationGroup,
        fresh: Option<Result<Option<StoredParameter>, TargetError>>,
    ) -> Self {
        Self {
            target,
            view,
            fresh,
            before: None,
            written: None,
            writes: 0,
        }
    }

    /// The result of a flow that reached `pick`.
    fn done(&self, pick: &Pick, action: Action) -> TargetResult {
        let before = self.before.clone().unwrap_or_default();
        TargetResult::done(self.target, before.value, pick, action, before.secure)
    }

    /// The result of a flow that failed: after a write, it says what the parameter holds.
    fn failed(&self, pick: Option<&Pick>, e: TargetError) -> TargetResult {
        let previous = self.before.as_ref().and_then(|b| b.value.clone());
        let Some(written) = &self.written else {
            return TargetResult::failed(self.target, previous.clone(), previous, pick, e.to_string());
        };
        let secure = self.before.as_ref().is_some_and(|b| b.secure);
        let holds = shown(&written.endpoint.to_string(), secure);
        let error = format!(
            "{e}; the parameter holds {holds} (node {}), written by this invocation",
            written.node
        );
        TargetResult::failed(self.target, previous, Some(holds), pick.or(Some(written)), error)
    }
}

impl Reconciler {
    /// Builds the adapters from a loaded SDK configuration. Makes no network call.
    pub fn new(cfg: ReconcilerConfig, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_adapters(cfg, ElastiCache::new(sdk), Ssm::new(sdk))
    }

    /// Builds from ready adapters (tests give them mocked clients).
    pub fn with_adapters(cfg: ReconcilerConfig, elasticache: ElastiCache, ssm: Ssm) -> Self {
        let probe = cfg.verify_role.then(|| RoleProbe::new(cfg.redis_tls, PROBE_TIMEOUT));
        let token = match &cfg.redis_auth {
            AuthToken::None => OnceCell::new_with(Some(None)),
            AuthToken::Value(secret) => OnceCell::new_with(Some(Some(secret.clone()))),
            AuthToken::Parameter(_) => OnceCell::new(),
        };
        let metrics = Emitter::for_lambda(&cfg.metrics_namespace, env!("CARGO_PKG_NAME"));
        Self {
            cfg,
            elasticache,
            ssm,
            probe,
            token,
            metrics,
        }
    }

    /// Sends the metrics to `metrics` instead of stdout (tests read them back).
    pub fn with_metrics(mut self, metrics: Emitter) -> Self {
        self.metrics = metrics;
        self
    }

    /// The Lambda entry point: handles `event` within the invocation's deadline.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Response, HandlerError> {
        self.handle(&event.payload, deadline::from_epoch_millis(event.context.deadline))
            .await
    }

    /// Handles one event, finishing before `deadline`, and emits its metrics (one EMF document,
    /// whatever the outcome).
    pub async fn handle(&self, event: &Value, deadline: Instant) -> Result<Response, HandlerError> {
        let mut targets = Vec::new();
        // Boxed: the nested futures of the target flows are too deep a type for the compiler otherwise.
        let result = Box::pin(self.reconcile_event(event, deadline, &mut targets)).await;
        let rejected = matches!(result, Err(HandlerError::BadEvent(_) | HandlerError::Unmanaged(_)));
        let group = match targets.as_slice() {
            [(group, _)] => Some(group.as_str()),
            _ => None,
        };
        let seen: Vec<TargetFigures> = targets.iter().map(|(_, f)| *f).collect();
        let metrics = figures(
            self.metrics.dimensions(group),
            &seen,
            rejected,
            envelope::event_time(event),
        );
        self.metrics.emit(metrics, group.is_some());
        result
    }

    /// [`Self::handle`] but the metrics: pushes each target's group and figures onto `figures`.
    async fn reconcile_event(
        &self,
        event: &Value,
        deadline: Instant,
        figures: &mut Vec<(String, TargetFigures)>,
    ) -> Result<Response, HandlerError> {
        let trigger = classify(event).inspect_err(|e| warn!(error = %e, "rejected event; nothing written"))?;
        let selection = select_targets(&self.cfg.targets, &trigger.scope)
            .inspect_err(|e| warn!(error = %e, trigger = %trigger.kind, "rejected invocation; nothing written"))?;
        let targets = match selection {
            Selection::Targets(targets) => targets,
            Selection::NotOurs { names } => {
                info!(trigger = %trigger.kind, ?names, "event concerns no group this function manages; nothing to do");
                return Ok(Response {
                    trigger: trigger.kind.to_string(),
                    results: vec![],
                });
            }
        };
        let budget = Budget::new(deadline);
        info!(
            trigger = %trigger.kind,
            targets = targets.len(),
            endpoint_mode = %self.cfg.endpoint_mode,
            dry_run = self.cfg.dry_run,
            time_left_ms = budget.left().as_millis() as u64,
            "reconciling"
        );
        if budget.left() < self.cfg.settle_timeout + TIMEOUT_RESERVE {
            warn!(
                time_left_ms = budget.left().as_millis() as u64,
                needed_s = (self.cfg.settle_timeout + TIMEOUT_RESERVE).as_secs(),
                "the invocation has less time than {} + {}: a slow failover may be cut short; raise the function timeout",
                SETTLE.name,
                seconds(TIMEOUT_RESERVE)
            );
        }
        let (results, timing): (Vec<_>, Vec<_>) = self.reconcile(&targets, &trigger, budget).await.into_iter().unzip();
        for (r, progress) in results.iter().zip(timing) {
            log_result(r, &trigger);
            figures.push((
                r.replication_group_id.clone(),
                TargetFigures {
                    action: r.action,
                    settle_wait: progress.settle_wait,
                    written_at: progress.written_at,
                },
            ));
        }
        let response = Response {
            trigger: trigger.kind.to_string(),
            results,
        };
        let failures = response.failures();
        if failures.is_empty() {
            Ok(response)
        } else {
            Err(HandlerError::TargetsFailed {
                failed: failures.len(),
                total: response.results.len(),
                summary: failures.join("; "),
                results: response.results,
            })
        }
    }

    /// One batched first look for every target, then every target on its own, concurrently,
    /// each cut short at the budget's stop.
    async fn reconcile(&self, targets: &[&Target], trigger: &Trigger, budget: Budget) -> Vec<(TargetResult, Progress)> {
        let first = match tokio::time::timeout_at(budget.stop(), self.first_look(targets, budget)).await {
            Ok(first) => first,
            Err(_) => {
                let abandoned = Arc::new(TargetError::Abandoned {
                    progress: Progress::default(),
                });
                targets
                    .iter()
                    .map(|_| FirstLook::Failed(TargetError::Batch(Arc::clone(&abandoned))))
                    .collect()
            }
        };
        let (by_settle, by_deadline) = (
            Instant::now() + self.cfg.settle_timeout,
            budget.last_start_of(&AFTER_SETTLE),
        );
        let settle_until = SettleUntil {
            at: by_settle.min(by_deadline),
            by_deadline: by_deadline < by_settle,
        };
        join_all(targets.iter().zip(first).map(|(target, first)| async move {
            let progress = Mutex::new(Progress::default());
            let flow = self.target_flow(target, first, trigger, budget, settle_until, &progress);
            let result = tokio::time::timeout_at(budget.stop(), flow).await;
            let progress = progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            match result {
                Ok(result) => (result, progress),
                Err(_) => {
                    let abandoned = TargetError::Abandoned {
                        progress: progress.clone(),
                    };
                    let current = progress.wrote.clone().or_else(|| progress.previous.clone());
                    let result =
                        TargetResult::failed(target, progress.previous.clone(), current, None, abandoned.to_string());
                    (result, progress)
                }
            }
        }))
        .await
    }

    /// Describes every target's group (one call, or pages of the listing) and reads the
    /// parameters of those that can be decided from that description at once, in batches sent
    /// together. Nothing waits in between, so each read is as fresh as the describe before it.
    /// Each call starts only if its worst case fits; a target the listing did not reach in
    /// time says so.
    async fn first_look(&self, targets: &[&Target], budget: Budget) -> Vec<FirstLook> {
        if let Err(e) = allowed(budget, &DESCRIBE, false) {
            let e = Arc::new(e);
            return targets
                .iter()
                .map(|_| FirstLook::Failed(TargetError::Batch(Arc::clone(&e))))
                .collect();
        }
        // Several parameters may follow one group: describe it once.
        let mut ids: Vec<&str> = targets.iter().map(|t| t.replication_group_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let listing = match self
            .elasticache
            .describe_many(&ids, budget.last_start_of(&FIRST_PAGE_THEN))
            .await
        {
            Ok(listing) => listing,
            Err(e) => {
                let e = Arc::new(TargetError::Describe(Arc::new(DescribeError::Call(e))));
                return targets
                    .iter()
                    .map(|_| FirstLook::Failed(TargetError::Batch(Arc::clone(&e))))
                    .collect();
            }
        };
        let mode = self.cfg.endpoint_mode;
        let decidable = |g: &ReplicationGroup| pick_endpoint(g, mode).is_ok() || unsettled_primary(g, mode).is_some();
        let ready: Vec<&str> = targets
            .iter()
            .filter(|t| listing.groups.get(&t.replication_group_id).is_some_and(decidable))
            .map(|t| t.parameter.as_str())
            .collect();
        let mut reads = match (ready.is_empty(), budget.allows(&READ)) {
            (true, _) => HashMap::new(),
            (false, Ok(())) => {
                self.ssm
                    .get_many(&ready, budget.last_start_of(&[READ, WRITE, DESCRIBE]))
                    .await
            }
            (false, Err(e)) => {
                let out_of_time = || TargetError::OutOfTime {
                    source: e.clone(),
                    wrote: false,
                };
                return targets
                    .iter()
                    .map(|t| match listing.groups.get(&t.replication_group_id) {
                        Some(group) if ready.contains(&t.parameter.as_str()) => {
                            FirstLook::Described(group.clone(), Some(Err(out_of_time())))
                        }
                        Some(group) => FirstLook::Described(group.clone(), None),
                        None => FirstLook::Failed(not_found(t, listing.complete)),
                    })
                    .collect();
            }
        };
        targets
            .iter()
            .map(|t| {
                let Some(group) = listing.groups.get(&t.replication_group_id) else {
                    return FirstLook::Failed(not_found(t, listing.complete));
                };
                let read = reads.remove(&t.parameter).map(|r| r.map_err(TargetError::Read));
                FirstLook::Described(group.clone(), read)
            })
            .collect()
    }

    /// One target, from its first look to its result: settle, read, write, check; a primary
    /// that moved meanwhile is followed at most [`MAX_WRITES`] times.
    async fn target_flow(
        &self,
        target: &Target,
        first: FirstLook,
        trigger: &Trigger,
        budget: Budget,
        settle_until: SettleUntil,
        progress: &Mutex<Progress>,
    ) -> TargetResult {
        let mut flow = match first {
            FirstLook::Described(view, fresh) => Flow::new(target, view, fresh),
            FirstLook::Failed(e) => return TargetResult::failed(target, None, None, None, e.to_string()),
        };
        let steps = self.steps(&mut flow, trigger, budget, settle_until, progress).await;
        match steps {
            Ok((pick, action)) => flow.done(&pick, action),
            Err((pick, e)) => flow.failed(pick.as_ref(), e),
        }
    }

    /// The steps of [`Self::target_flow`]: the endpoint reached and what was done, or the pick
    /// (if any) and the error.
    async fn steps(
        &self,
        flow: &mut Flow<'_>,
        trigger: &Trigger,
        budget: Budget,
        settle_until: SettleUntil,
        progress: &Mutex<Progress>,
    ) -> Result<(Pick, Action), (Option<Pick>, TargetError)> {
        loop {
            let settling = Instant::now();
            let settled = self.settle(flow, settle_until, budget).await;
            set(progress, |p| p.settle_wait += settling.elapsed());
            let pick = settled.map_err(|e| (None, e))?;
            if flow.written.as_ref() == Some(&pick) {
                // A describe made after the write still names the node we wrote.
                return Ok((pick, Action::Updated));
            }
            let stored = self.read(flow, budget).await.map_err(|e| (Some(pick.clone()), e))?;
            let shown_before = flow
                .before
                .get_or_insert_with(|| Before::of(stored.as_ref()))
                .value
                .clone();
            set(progress, |p| p.previous = shown_before);
            let wanted = pick.endpoint.to_string();
            match decide(stored.as_ref().map(|p| p.value.as_str()), &wanted, self.cfg.dry_run) {
                Decision::Write if flow.writes >= MAX_WRITES => {
                    warn!(parameter = %flow.target.parameter, writes = flow.writes, "the primary kept moving while we wrote; leaving it to the next trigger");
                    return Err((Some(pick.clone()), TargetError::KeptMoving { now: pick.node }));
                }
                Decision::Write => {}
                decision => {
                    let action = if flow.writes > 0 {
                        Action::Updated
                    } else {
                        decision.into()
                    };
                    return Ok((pick, action));
                }
            }
            self.write(flow, &pick, stored, trigger, budget, progress)
                .await
                .map_err(|e| (Some(pick.clone()), e))?;
            if !self.moved_since_write(flow, budget).await {
                return Ok((pick, Action::Updated));
            }
        }
    }

    /// The parameter as read after the last describe: the read made with it, or a new one.
    async fn read(&self, flow: &mut Flow<'_>, budget: Budget) -> Result<Option<StoredParameter>, TargetError> {
        if let Some(read) = flow.fresh.take() {
            return read;
        }
        allowed(budget, &READ, flow.writes > 0)?;
        self.ssm
            .get_one(&flow.target.parameter)
            .await
            .map_err(|e| TargetError::Read(Arc::new(e)))
    }

    /// Writes `pick`'s endpoint over `stored`; afterwards the flow knows what the parameter holds.
    async fn write(
        &self,
        flow: &mut Flow<'_>,
        pick: &Pick,
        stored: Option<StoredParameter>,
        trigger: &Trigger,
        budget: Budget,
        progress: &Mutex<Progress>,
    ) -> Result<(), TargetError> {
        allowed(budget, &WRITE, flow.writes > 0)?;
        let target = flow.target;
        let wanted = pick.endpoint.to_string();
        let text = description(target, pick, self.cfg.endpoint_mode, trigger);
        set(progress, |p| p.writing = true);
        let put = self.ssm.put(&target.parameter, &wanted, &text, stored.is_some()).await;
        set(progress, |p| p.writing = false);
        let version = put.map_err(|source| TargetError::Write { source })?;
        let kind = stored.map(|p| p.kind).unwrap_or_else(|| "String".into());
        let written = StoredParameter {
            value: wanted,
            kind,
            version,
        };
        set(progress, |p| {
            p.wrote = Some(shown(&written.value, written.is_secure()));
            p.written_at = Some(SystemTime::now());
        });
        flow.writes += 1;
        flow.written = Some(pick.clone());
        // What the parameter holds now, as far as this flow knows: fresh until the next wait.
        flow.fresh = Some(Ok(Some(written)));
        Ok(())
    }

    /// The check of a write: one describe after it. True when it names another node to publish
    /// (the group failed over meanwhile, or an unsettled group's one primary is not the node
    /// written); then `flow.view` is that describe. False when it confirms the write, and also
    /// when it cannot tell (no time, a failed describe, a group that started changing): the
    /// write stands and the target reports `updated` with the value written.
    async fn moved_since_write(&self, flow: &mut Flow<'_>, budget: Budget) -> bool {
        let parameter = &flow.target.parameter;
        if let Err(e) = budget.allows(&DESCRIBE) {
            warn!(parameter = %parameter, error = %e, "written, but not described again after the write");
            return false;
        }
        let view = match self.elasticache.describe(&flow.target.replication_group_id).await {
            Ok(view) => view,
            Err(e) => {
                warn!(parameter = %parameter, error = %e, "written, but the describe that checks the write failed");
                return false;
            }
        };
        let written = flow.written.as_ref().expect("checked after a write");
        let moved = match pick_endpoint(&view, self.cfg.endpoint_mode) {
            Ok(pick) => &pick != written,
            Err(e) => {
                let stale = unsettled_primary(&view, self.cfg.endpoint_mode)
                    .is_some_and(|primary| names_stale_node(&view, &primary, &written.endpoint.to_string()));
                if !stale {
                    warn!(parameter = %parameter, node = %written.node, reason = %e, "written; the describe after the write cannot confirm it");
                }
                stale
            }
        };
        if moved {
            flow.view = view;
        }
        moved
    }

    /// Picks the endpoint from `flow.view`, waiting and describing the group again while it is
    /// mid-failover (or, with `VERIFY_ROLE`, while the candidate does not answer as master).
    /// An unsettled group's one reported primary is picked at once when the parameter is known
    /// to name a stale node ([`names_stale_node`]). Every wait forgets `flow.fresh`: a read
    /// made before a wait is not used after it. The node this flow just wrote needs no new
    /// `ROLE` check.
    async fn settle(&self, flow: &mut Flow<'_>, until: SettleUntil, budget: Budget) -> Result<Pick, TargetError> {
        let wrote = flow.writes > 0;
        let settled = retry::until(until.at, "replication group to settle", async |attempt| {
            if attempt > 0 {
                flow.fresh = None;
                if let Err(e) = allowed(budget, &DESCRIBE, wrote) {
                    return Look::Done(Err(e));
                }
                match self.elasticache.describe(&flow.view.id).await {
                    Ok(group) => flow.view = group,
                    Err(e) => return Look::Done(Err(TargetError::Describe(Arc::new(e)))),
                }
            }
            let pick = match pick_endpoint(&flow.view, self.cfg.endpoint_mode) {
                Ok(pick) => pick,
                Err(e) if !e.is_transient() => return Look::Done(Err(TargetError::Pick(e))),
                Err(e) => match self.replacing_stale(flow, budget).await {
                    Ok(Some(pick)) => pick,
                    Ok(None) => return Look::NotYet(NotReady::Pick(e)),
                    Err(e) => return Look::Done(Err(e)),
                },
            };
            if flow.written.as_ref() == Some(&pick) {
                return Look::Done(Ok(pick));
            }
            match self.verify(&pick, budget, wrote).await {
                Ok(None) => Look::Done(Ok(pick)),
                Ok(Some(check)) => Look::NotYet(NotReady::Role(check)),
                Err(e) => Look::Done(Err(e)),
            }
        })
        .await;
        match settled {
            Ok(result) => result,
            Err(gave_up) => Err(TargetError::Unsettled {
                source: gave_up.last,
                waited: gave_up.waited,
                by_deadline: until.by_deadline,
            }),
        }
    }

    /// While `flow.view` is unsettled: its one reported primary when the parameter, read with
    /// this describe (now, if not yet), names a stale node; else `None` (wait as usual).
    async fn replacing_stale(&self, flow: &mut Flow<'_>, budget: Budget) -> Result<Option<Pick>, TargetError> {
        let Some(primary) = unsettled_primary(&flow.view, self.cfg.endpoint_mode) else {
            return Ok(None);
        };
        if flow.fresh.is_none() {
            allowed(budget, &READ, flow.writes > 0)?;
            let read = self.ssm.get_one(&flow.target.parameter).await;
            flow.fresh = Some(read.map_err(|e| TargetError::Read(Arc::new(e))));
        }
        let stale = match &flow.fresh {
            Some(Ok(Some(stored))) => names_stale_node(&flow.view, &primary, &stored.value),
            Some(Ok(None)) => false,
            Some(Err(_)) => return Err(flow.fresh.take().and_then(Result::err).expect("an error was read")),
            None => unreachable!("read above"),
        };
        if stale {
            info!(
                replication_group_id = %flow.view.id,
                status = %flow.view.status,
                parameter = %flow.target.parameter,
                node = %primary.node,
                "the group is not settled, but the parameter names a node this describe reports as a replica or no longer lists: publishing the one primary it reports"
            );
        }
        Ok(stale.then_some(primary))
    }

    /// `VERIFY_ROLE`: asks the candidate whether it is the master. `Ok(None)` when confirmed (or
    /// not verifying), `Ok(Some(..))` when it is not (yet). The configuration endpoint of a
    /// sharded group fronts many nodes, so it is not probed.
    async fn verify(&self, pick: &Pick, budget: Budget, wrote: bool) -> Result<Option<RoleCheck>, TargetError> {
        let Some(probe) = &self.probe else { return Ok(None) };
        if pick.node == "configuration-endpoint" {
            return Ok(None);
        }
        let token = self.token(budget, wrote).await?;
        allowed(budget, &PROBE, wrote)?;
        Ok(probe.confirm_master(&pick.endpoint, &pick.node, token).await.err())
    }

    /// The AUTH token: from the configuration, or read once from its parameter.
    async fn token(&self, budget: Budget, wrote: bool) -> Result<Option<&Secret>, TargetError> {
        if let Some(token) = self.token.get() {
            return Ok(token.as_ref());
        }
        allowed(budget, &READ, wrote)?;
        let token = self
            .token
            .get_or_try_init(|| async {
                let AuthToken::Parameter(name) = &self.cfg.redis_auth else {
                    unreachable!("the cell is filled at construction unless the token is in a parameter");
                };
                self.ssm.read_secret(name).await.map(Some)
            })
            .await
            .map_err(|e| TargetError::Token(Arc::new(e)))?;
        Ok(token.as_ref())
    }
}

/// `Ok` when `step` fits in what is left of `budget`; else the error that says so, and whether
/// this invocation had written the parameter.
fn allowed(budget: Budget, step: &Step, wrote: bool) -> Result<(), TargetError> {
    budget
        .allows(step)
        .map_err(|source| TargetError::OutOfTime { source, wrote })
}

fn set(progress: &Mutex<Progress>, change: impl FnOnce(&mut Progress)) {
    change(&mut progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
}

/// One structured line per target: the decision with its inputs.
fn log_result(r: &TargetResult, trigger: &Trigger) {
    let action = serde_json::to_value(r.action).ok();
    let action = action.as_ref().and_then(Value::as_str).unwrap_or("?");
    if let Some(error) = &r.error {
        error!(
            replication_group_id = %r.replication_group_id,
            parameter = %r.parameter,
            previous = r.previous.as_deref(),
            node = r.node.as_deref(),
            action,
            trigger = %trigger.kind,
            error = %error,
            "target failed"
        );
    } else {
        info!(
            replication_group_id = %r.replication_group_id,
            parameter = %r.parameter,
            previous = r.previous.as_deref(),
            current = r.current.as_deref(),
            node = r.node.as_deref(),
            action,
            trigger = %trigger.kind,
            "target reconciled"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_lambda_diagnostics() {
        let d: Diagnostic = HandlerError::TargetsFailed {
            failed: 1,
            total: 3,
            summary: "orders: boom".into(),
            results: vec![],
        }
        .into();
        assert_eq!(d.error_type, "TargetsFailed");
        assert_eq!(d.error_message, "1 of 3 targets failed: orders: boom");
    }

    #[tokio::test]
    async fn a_listing_cut_short_by_the_deadline_names_the_targets_it_did_not_reach() {
        use aws_sdk_elasticache::operation::describe_replication_groups::DescribeReplicationGroupsOutput;
        use aws_sdk_ssm::operation::get_parameters::GetParametersOutput;
        use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        // GIVEN the listing of groups pages on: orders on the first page, sessions never
        let pages = mock!(aws_sdk_elasticache::Client::describe_replication_groups)
            .match_requests(|r| r.replication_group_id().is_none())
            .then_output(|| {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(crate::elasticache::tests::sdk_group("orders", "001"))
                    .marker("more")
                    .build()
            });
        let check = mock!(aws_sdk_elasticache::Client::describe_replication_groups)
            .match_requests(|r| r.replication_group_id() == Some("orders"))
            .then_output(|| {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(crate::elasticache::tests::sdk_group("orders", "001"))
                    .build()
            });
        let read = mock!(aws_sdk_ssm::Client::get_parameters).then_output(|| GetParametersOutput::builder().build());
        let write =
            mock!(aws_sdk_ssm::Client::put_parameter).then_output(|| PutParameterOutput::builder().version(1).build());
        let ec = ElastiCache::from_client(mock_client!(aws_sdk_elasticache, RuleMode::MatchAny, &[&pages, &check]));
        let ssm = Ssm::from_client(mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&read, &write]));
        let env = failover_core::env::Env::from_pairs(&[(
            "REDIS_TARGETS",
            "orders=/app/orders/redis,sessions=/app/sessions/redis",
        )]);
        let r = Reconciler::with_adapters(ReconcilerConfig::from(&env).unwrap(), ec, ssm).with_metrics(Emitter::new(
            "Failover",
            "f",
            failover_core::metrics::Sink::Memory(Default::default()),
        ));
        // WHEN the invocation has 30 s: one page and one target's steps fit, a second page does not
        let event = serde_json::json!({});
        let err = r
            .handle(&event, Instant::now() + Duration::from_secs(30))
            .await
            .unwrap_err();
        // THEN orders is published, sessions is named as not reached, and no second page started
        let HandlerError::TargetsFailed {
            failed,
            summary,
            results,
            ..
        } = err
        else {
            panic!("wrong error: {err}")
        };
        assert_eq!((failed, pages.num_calls()), (1, 1), "{results:#?}");
        assert_eq!(results[0].action, Action::Updated);
        assert!(summary.starts_with("sessions: not reached"), "{summary}");
    }
}
