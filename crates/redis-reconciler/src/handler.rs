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
use std::time::Duration;

use failover_core::deadline::{self, seconds, Budget, Step};
use failover_core::envelope;
use failover_core::metrics::Emitter;
use failover_core::sdk;
use failover_core::secret::Secret;
use futures::future::join_all;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::{AuthToken, ReconcilerConfig, Target, SETTLE};
use crate::elasticache::{DescribeError, ElastiCache, Listing};
pub use crate::error::{HandlerError, NotReady, Progress, TargetError};
use crate::flow::{allowed, not_found, FirstLook, Fresh, SettleUntil};
use crate::metrics::{figures, TargetFigures};
use crate::plan::{select_targets, Action, Response, Selection, TargetResult};
use crate::probe::RoleProbe;
use crate::ssm::Ssm;
use crate::topology::{pick_endpoint, unsettled_primary, ReplicationGroup};
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
/// The first look: describing every group, then reading the parameters, and reading them again
/// name by name when a batch fails whole.
pub const FIRST_LOOK: [Step; 3] = [DESCRIBE, READ, READ];
/// A page of the first look's listing starts only while it, the reads and a write with its
/// check still fit.
const FIRST_PAGE_THEN: [Step; 5] = [DESCRIBE, READ, READ, WRITE, DESCRIBE];
/// The function's timeout must be at least `SETTLE_TIMEOUT_SECS` plus this: the first look
/// (describe, read, the name-by-name read), the steps after the settle wait, and the margin kept
/// for the response. The deploy template's check derives its rule from this value.
pub const TIMEOUT_RESERVE: Duration = deadline::worst_case(&FIRST_LOOK)
    .saturating_add(deadline::worst_case(&AFTER_SETTLE))
    .saturating_add(deadline::RESPONSE_MARGIN);

/// The most writes of one parameter in one invocation: a primary that moves again while we
/// write is followed this many times, then left to the next trigger.
pub const MAX_WRITES: u32 = 3;

/// The function: configuration and clients, built once at init.
#[derive(Debug)]
pub struct Reconciler {
    pub(crate) cfg: ReconcilerConfig,
    pub(crate) elasticache: ElastiCache,
    pub(crate) ssm: Ssm,
    pub(crate) probe: Option<RoleProbe>,
    /// The AUTH token, read once from its parameter on the first probe that needs it.
    token: OnceCell<Option<Secret>>,
    /// Where each invocation's metrics go.
    metrics: Emitter,
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
        self.announce(&trigger, targets.len(), budget);
        let (results, timing): (Vec<_>, Vec<_>) = self.reconcile(&targets, &trigger, budget).await.into_iter().unzip();
        for (r, progress) in results.iter().zip(timing) {
            log_result(r, &trigger);
            let (settle_wait, written_at) = (progress.settle_wait, progress.written_at);
            let figure = TargetFigures {
                action: r.action,
                settle_wait,
                written_at,
            };
            figures.push((r.replication_group_id.clone(), figure));
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

    /// The invocation's first log line, and a warning when its time cannot hold a whole settle
    /// wait and the steps after it.
    fn announce(&self, trigger: &Trigger, targets: usize, budget: Budget) {
        info!(
            trigger = %trigger.kind,
            targets,
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
                Err(_) => (abandoned(target, &progress), progress),
            }
        }))
        .await
    }

    /// Describes every target's group (one call, or pages of the listing) and reads the
    /// parameters of those that can be decided from that description at once. Nothing waits in
    /// between, so each read is as fresh as the describe before it. Each call starts only if
    /// its worst case fits; a target the listing did not reach in time says so.
    async fn first_look(&self, targets: &[&Target], budget: Budget) -> Vec<FirstLook> {
        let listing = match self.describe_all(targets, budget).await {
            Ok(listing) => listing,
            Err(e) => {
                let e = Arc::new(e);
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
        let mut reads = self.read_ready(&ready, budget).await;
        targets
            .iter()
            .map(|t| {
                let Some(group) = listing.groups.get(&t.replication_group_id) else {
                    return FirstLook::Failed(not_found(t, listing.complete));
                };
                FirstLook::Described(group.clone(), reads.remove(&t.parameter))
            })
            .collect()
    }

    /// The first look's describe: every group once (several parameters may follow one group),
    /// a page of the listing only while it and the steps after it still fit.
    async fn describe_all(&self, targets: &[&Target], budget: Budget) -> Result<Listing, TargetError> {
        allowed(budget, &DESCRIBE, false)?;
        let mut ids: Vec<&str> = targets.iter().map(|t| t.replication_group_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        self.elasticache
            .describe_many(&ids, budget.last_start_of(&FIRST_PAGE_THEN))
            .await
            .map_err(|e| TargetError::Describe(Arc::new(DescribeError::Call(e))))
    }

    /// The first look's read of `names`, each name's outcome on its own (a batch that fails
    /// whole is read again name by name while that fits), or, with no time for a read, that
    /// error for each.
    async fn read_ready(&self, names: &[&str], budget: Budget) -> HashMap<String, Fresh> {
        if names.is_empty() {
            return HashMap::new();
        }
        if let Err(source) = budget.allows(&READ) {
            let out_of_time = || TargetError::OutOfTime {
                source: source.clone(),
                wrote: false,
            };
            return names.iter().map(|n| (n.to_string(), Err(out_of_time()))).collect();
        }
        let reads = self
            .ssm
            .get_many(names, budget.last_start_of(&[READ, WRITE, DESCRIBE]))
            .await;
        reads
            .into_iter()
            .map(|(name, read)| (name, read.map_err(TargetError::Read)))
            .collect()
    }

    /// The AUTH token: from the configuration, or read once from its parameter.
    pub(crate) async fn token(&self, budget: Budget, wrote: bool) -> Result<Option<&Secret>, TargetError> {
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

/// The result of a target the deadline cut off mid-step, from how far it got: a write that
/// landed stands (`updated`, its check cut short); a write in flight may or may not have
/// landed (`current` unknown); else the parameter was not changed.
fn abandoned(target: &Target, progress: &Progress) -> TargetResult {
    if let (false, Some(wrote), Some(node)) = (progress.writing, &progress.wrote, &progress.wrote_node) {
        warn!(parameter = %target.parameter, node = %node, "written; ran out of time while checking the write");
        return TargetResult {
            replication_group_id: target.replication_group_id.clone(),
            parameter: target.parameter.clone(),
            previous: progress.previous.clone(),
            current: Some(wrote.clone()),
            action: Action::Updated,
            node: Some(node.clone()),
            error: None,
        };
    }
    let error = TargetError::Abandoned {
        progress: progress.clone(),
    };
    let current = if progress.writing {
        None
    } else {
        progress.previous.clone()
    };
    TargetResult::failed(target, progress.previous.clone(), current, None, error.to_string())
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
