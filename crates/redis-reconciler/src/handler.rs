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

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use failover_core::deadline::{self, Budget, OutOfTime, Step};
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

use crate::config::{AuthToken, ReconcilerConfig, Target};
use crate::elasticache::{DescribeError, ElastiCache};
use crate::metrics::{figures, TargetFigures};
use crate::plan::{
    decide, description, select_targets, shown, Action, Decision, Response, Selection, TargetResult, UnmanagedGroup,
};
use crate::probe::{RoleCheck, RoleProbe};
use crate::ssm::{Ssm, StoredParameter};
use crate::topology::{pick_endpoint, Pick, PickError, ReplicationGroup};
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
    /// A call made once for several targets (the first describe or read) failed.
    #[error(transparent)]
    Batch(Arc<TargetError>),
    /// `VERIFY_ROLE` could not read its AUTH token.
    #[error(transparent)]
    Token(Arc<CallError>),
    /// The group's description cannot be published (e.g. an unexpected shape).
    #[error(transparent)]
    Pick(PickError),
    /// The group stayed mid-failover (or its candidate unconfirmed) for the whole settle budget.
    #[error("{source}; still unsettled after {waited:.1?} ({}); the next trigger will look again", if *.by_deadline {
        format!("the Lambda deadline left no more time to wait: the function timeout should be at least SETTLE_TIMEOUT_SECS + {}s", TIMEOUT_RESERVE.as_secs())
    } else {
        "SETTLE_TIMEOUT_SECS".to_owned()
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
    /// The invocation's time ran out while a step was in flight.
    #[error("ran out of time before the Lambda deadline while {}; raise the function timeout to at least SETTLE_TIMEOUT_SECS + {}s", .progress.describe(), TIMEOUT_RESERVE.as_secs())]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// A `PutParameter` is in flight.
    pub writing: bool,
    /// This invocation wrote the parameter at least once.
    pub wrote: bool,
    /// Time spent settling: describing again and waiting while the group is mid-failover.
    pub settle_wait: Duration,
    /// When the last write of this invocation was accepted.
    pub written_at: Option<SystemTime>,
}

impl Progress {
    fn describe(&self) -> &'static str {
        match (self.writing, self.wrote) {
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
    /// The group as described just now, and (when its endpoint could be picked at once) its
    /// parameter as read right after.
    Described(ReplicationGroup, Option<Result<Option<StoredParameter>, TargetError>>),
    /// It could not be described.
    Failed(TargetError),
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
                "the invocation has less time than SETTLE_TIMEOUT_SECS + {}s: a slow failover may be cut short; raise the function timeout",
                TIMEOUT_RESERVE.as_secs()
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

    /// One batched describe and one batched read for the targets ready at once, then every
    /// target on its own, concurrently, each cut short at the budget's stop.
    async fn reconcile(&self, targets: &[&Target], trigger: &Trigger, budget: Budget) -> Vec<(TargetResult, Progress)> {
        let first = self.first_look(targets, budget).await;
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
            let progress = *progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match result {
                Ok(result) => (result, progress),
                Err(_) => {
                    let abandoned = TargetError::Abandoned { progress }.to_string();
                    (TargetResult::failed(target, None, None, abandoned), progress)
                }
            }
        }))
        .await
    }

    /// Describes every target in one call and reads, in batches of ten, the parameters of those
    /// whose endpoint can be picked from that description. Nothing waits in between, so each
    /// read is as fresh as the describe before it.
    async fn first_look(&self, targets: &[&Target], budget: Budget) -> Vec<FirstLook> {
        let failed_all = |e: TargetError| -> Vec<FirstLook> {
            let e = Arc::new(e);
            targets
                .iter()
                .map(|_| FirstLook::Failed(TargetError::Batch(Arc::clone(&e))))
                .collect()
        };
        if let Err(e) = allowed(budget, &DESCRIBE, false) {
            return failed_all(e);
        }
        let ids: Vec<&str> = targets.iter().map(|t| t.replication_group_id.as_str()).collect();
        let mut groups = match self.elasticache.describe_many(&ids).await {
            Ok(groups) => groups,
            Err(e) => return failed_all(TargetError::Describe(Arc::new(DescribeError::Call(e)))),
        };
        let ready: Vec<&str> = targets
            .iter()
            .filter(|t| {
                groups
                    .get(&t.replication_group_id)
                    .is_some_and(|g| pick_endpoint(g, self.cfg.endpoint_mode).is_ok())
            })
            .map(|t| t.parameter.as_str())
            .collect();
        let read = if ready.is_empty() {
            None
        } else if let Err(e) = allowed(budget, &READ, false) {
            Some(Err(Arc::new(e)))
        } else {
            Some(
                self.ssm
                    .get_many(&ready)
                    .await
                    .map_err(|e| Arc::new(TargetError::Read(Arc::new(e)))),
            )
        };
        targets
            .iter()
            .map(|t| {
                let Some(group) = groups.remove(&t.replication_group_id) else {
                    return FirstLook::Failed(TargetError::Describe(Arc::new(DescribeError::NotFound {
                        group: t.replication_group_id.clone(),
                    })));
                };
                let param = ready.contains(&t.parameter.as_str()).then(|| match &read {
                    Some(Ok(found)) => Ok(found.get(&t.parameter).cloned()),
                    Some(Err(e)) => Err(TargetError::Batch(Arc::clone(e))),
                    None => unreachable!("a ready target was read"),
                });
                FirstLook::Described(group, param)
            })
            .collect()
    }

    /// One target, from its first look to its result: settle, read, write, and check the write
    /// with a fresh describe; follow a primary that moved meanwhile at most [`MAX_WRITES`] times.
    async fn target_flow(
        &self,
        target: &Target,
        first: FirstLook,
        trigger: &Trigger,
        budget: Budget,
        settle_until: SettleUntil,
        progress: &Mutex<Progress>,
    ) -> TargetResult {
        let (mut view, mut fresh_param) = match first {
            FirstLook::Described(view, param) => (view, param),
            FirstLook::Failed(e) => return TargetResult::failed(target, None, None, e.to_string()),
        };
        // The parameter as first read: what the response reports as `previous`.
        let mut before: Option<Before> = None;
        let mut written: Option<Pick> = None;
        let mut writes = 0;
        let fail = |before: &Option<Before>, pick: Option<&Pick>, e: TargetError| {
            let previous = before.as_ref().and_then(|b| b.value.clone());
            TargetResult::failed(target, previous, pick, e.to_string())
        };
        let done = |before: &Before, pick: &Pick, action: Action| {
            TargetResult::done(target, before.value.clone(), pick, action, before.secure)
        };
        loop {
            let settling = Instant::now();
            let settled = self
                .settle(
                    &mut view,
                    &mut fresh_param,
                    written.as_ref(),
                    settle_until,
                    budget,
                    writes > 0,
                )
                .await;
            set(progress, |p| p.settle_wait += settling.elapsed());
            let pick = match settled {
                Ok(pick) => pick,
                Err(e) => return fail(&before, written.as_ref(), e),
            };
            if written.as_ref() == Some(&pick) {
                // A describe made after the write still names the node we wrote.
                return done(&before.unwrap_or_default(), &pick, Action::Updated);
            }
            let stored = match fresh_param.take() {
                Some(Ok(stored)) => stored,
                Some(Err(e)) => return fail(&before, Some(&pick), e),
                None => {
                    if let Err(e) = allowed(budget, &READ, writes > 0) {
                        return fail(&before, Some(&pick), e);
                    }
                    match self.ssm.get_one(&target.parameter).await {
                        Ok(stored) => stored,
                        Err(e) => return fail(&before, Some(&pick), TargetError::Read(Arc::new(e))),
                    }
                }
            };
            let first = before.get_or_insert_with(|| Before::of(stored.as_ref())).clone();
            let wanted = pick.endpoint.to_string();
            let decision = decide(stored.as_ref().map(|p| p.value.as_str()), &wanted, self.cfg.dry_run);
            if decision != Decision::Write || writes >= MAX_WRITES {
                if writes >= MAX_WRITES && decision == Decision::Write {
                    warn!(parameter = %target.parameter, writes, "the primary kept moving while we wrote; leaving it to the next trigger");
                }
                let action = if writes > 0 { Action::Updated } else { decision.into() };
                return done(&first, &pick, action);
            }
            if let Err(e) = allowed(budget, &WRITE, writes > 0) {
                return fail(&before, Some(&pick), e);
            }
            let text = description(target, &pick, self.cfg.endpoint_mode, trigger);
            set(progress, |p| p.writing = true);
            let put = self.ssm.put(&target.parameter, &wanted, &text, stored.is_some()).await;
            set(progress, |p| p.writing = false);
            let version = match put {
                Ok(version) => version,
                Err(source) => return fail(&before, Some(&pick), TargetError::Write { source }),
            };
            set(progress, |p| {
                p.wrote = true;
                p.written_at = Some(SystemTime::now());
            });
            writes += 1;
            // What the parameter holds now, as far as this flow knows.
            fresh_param = Some(Ok(Some(StoredParameter {
                value: wanted,
                kind: stored.map(|p| p.kind).unwrap_or_else(|| "String".into()),
                version,
            })));
            written = Some(pick.clone());
            // Check the write: a describe made after it must still name the same node.
            if let Err(e) = budget.allows(&DESCRIBE) {
                warn!(parameter = %target.parameter, error = %e, "written, but not described again after the write");
                return done(&first, &pick, Action::Updated);
            }
            match self.elasticache.describe(&target.replication_group_id).await {
                Ok(group) => view = group,
                Err(e) => {
                    warn!(parameter = %target.parameter, error = %e, "written, but the describe that checks the write failed");
                    return done(&first, &pick, Action::Updated);
                }
            }
        }
    }

    /// Picks the endpoint from `view`, waiting and describing the group again while it is
    /// mid-failover (or, with `VERIFY_ROLE`, while the candidate does not answer as master).
    /// Every wait forgets `fresh_param`: a read made before a wait is not used after it. A pick
    /// equal to `confirmed` (the node this flow just wrote) needs no new `ROLE` check.
    async fn settle(
        &self,
        view: &mut ReplicationGroup,
        fresh_param: &mut Option<Result<Option<StoredParameter>, TargetError>>,
        confirmed: Option<&Pick>,
        until: SettleUntil,
        budget: Budget,
        wrote: bool,
    ) -> Result<Pick, TargetError> {
        let settled = retry::until(until.at, "replication group to settle", async |attempt| {
            if attempt > 0 {
                *fresh_param = None;
                if let Err(e) = allowed(budget, &DESCRIBE, wrote) {
                    return Look::Done(Err(e));
                }
                match self.elasticache.describe(&view.id).await {
                    Ok(group) => *view = group,
                    Err(e) => return Look::Done(Err(TargetError::Describe(Arc::new(e)))),
                }
            }
            match pick_endpoint(view, self.cfg.endpoint_mode) {
                Ok(pick) if confirmed == Some(&pick) => Look::Done(Ok(pick)),
                Ok(pick) => match self.verify(&pick, budget, wrote).await {
                    Ok(None) => Look::Done(Ok(pick)),
                    Ok(Some(check)) => Look::NotYet(NotReady::Role(check)),
                    Err(e) => Look::Done(Err(e)),
                },
                Err(e) if !e.is_transient() => Look::Done(Err(TargetError::Pick(e))),
                Err(e) => Look::NotYet(NotReady::Pick(e)),
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
        Ok(probe.confirm_master(&pick.endpoint, token).await.err())
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
}
