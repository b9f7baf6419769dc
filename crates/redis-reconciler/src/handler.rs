//! The redis-reconciler's handler: the imperative shell around `failover_core::redis`.
//!
//! classify the event -> choose targets -> describe groups (batched) -> pick each endpoint,
//! waiting out a failover in progress -> read the parameters (batched) -> write only those that
//! differ. Targets are independent; if any failed, the invocation fails after trying them all,
//! so Lambda retries and the failure alarms.

use std::sync::Arc;
use std::time::Duration;

use failover_core::aws::elasticache::ElastiCache;
use failover_core::aws::ssm::{Ssm, StoredParameter};
use failover_core::aws::{sdk, AwsError};
use failover_core::redis::config::{ReconcilerConfig, Target};
use failover_core::redis::plan::{decide, description, select_targets, Action, Selection, UnmanagedGroup};
use failover_core::redis::probe::{RoleCheck, RoleProbe};
use failover_core::redis::topology::{pick_endpoint, Pick, PickError, ReplicationGroup};
use failover_core::redis::trigger::{classify, Trigger};
use failover_core::trigger::TriggerError;
use failover_core::{backoff, deadline};
use futures::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// Time kept back, when waiting for a group to settle, for the parameter read and write.
const AFTER_SETTLE_RESERVE: Duration = Duration::from_secs(2 * sdk::OPERATION_TIMEOUT.as_secs() + 1);

/// The JSON response: one result per reconciled target.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Response {
    /// What invoked the function, e.g. `ElastiCache:FailoverComplete orders-002`.
    pub trigger: String,
    /// One entry per target, in configuration order. Empty when the event was about groups
    /// this function does not manage.
    pub results: Vec<TargetResult>,
}

/// What happened to one target.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetResult {
    /// Replication group id.
    pub replication_group_id: String,
    /// SSM parameter name.
    pub parameter: String,
    /// The parameter's value before this invocation (`null` if it did not exist or was not read).
    pub previous: Option<String>,
    /// The value after this invocation; for `would-update`, the value that would be written.
    pub current: Option<String>,
    /// `updated`, `unchanged`, `would-update` or `failed`.
    pub action: Action,
    /// The node the endpoint belongs to (`orders-002`, `primary-endpoint`, `configuration-endpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why the target failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why one target could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// An AWS call failed after the SDK's retries.
    #[error(transparent)]
    Aws(Arc<AwsError>),
    /// The group's description cannot be published (e.g. an unexpected shape).
    #[error(transparent)]
    Pick(PickError),
    /// The group stayed mid-failover (or its candidate unconfirmed) for the whole settle budget.
    #[error("{source}; still unsettled after {waited:.1?} (SETTLE_TIMEOUT_SECS, capped by the Lambda deadline); the next trigger will look again")]
    Unsettled {
        /// The last reason it was not settled.
        #[source]
        source: NotReady,
        /// How long we waited.
        waited: Duration,
    },
    /// The invocation deadline arrived first.
    #[error("ran out of time before the Lambda deadline; the parameter may or may not have been written: check it, and raise the function timeout above SETTLE_TIMEOUT_SECS + 25 s")]
    OutOfTime,
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

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
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
#[derive(Debug, Clone)]
pub struct Reconciler {
    cfg: ReconcilerConfig,
    elasticache: ElastiCache,
    ssm: Ssm,
    probe: Option<RoleProbe>,
}

/// How long `VERIFY_ROLE` waits for a node to connect, and then to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Reconciler {
    /// Builds the clients from a loaded SDK configuration. Makes no network call.
    pub fn new(cfg: ReconcilerConfig, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_clients(
            cfg,
            aws_sdk_elasticache::Client::new(sdk),
            aws_sdk_ssm::Client::new(sdk),
        )
    }

    /// Builds from ready clients (tests point them at the emulator).
    pub fn with_clients(
        cfg: ReconcilerConfig,
        elasticache: aws_sdk_elasticache::Client,
        ssm: aws_sdk_ssm::Client,
    ) -> Self {
        let probe = cfg
            .verify_role
            .then(|| RoleProbe::new(cfg.redis_tls, cfg.redis_auth_token.clone(), PROBE_TIMEOUT));
        Self {
            cfg,
            elasticache: ElastiCache::new(elasticache),
            ssm: Ssm::new(ssm),
            probe,
        }
    }

    /// The Lambda entry point: handles `event` within the invocation's deadline.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Response, HandlerError> {
        self.handle(&event.payload, deadline::from_epoch_millis(event.context.deadline))
            .await
    }

    /// Handles one event, finishing before `deadline`.
    pub async fn handle(&self, event: &Value, deadline: Instant) -> Result<Response, HandlerError> {
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
        info!(
            trigger = %trigger.kind,
            targets = targets.len(),
            endpoint_mode = %self.cfg.endpoint_mode,
            dry_run = self.cfg.dry_run,
            "reconciling"
        );
        let hard_stop = deadline::respond_by(deadline);
        let results = match tokio::time::timeout_at(hard_stop, self.reconcile(&targets, &trigger, deadline)).await {
            Ok(results) => results,
            Err(_) => targets
                .iter()
                .map(|t| failed(t, None, None, &TargetError::OutOfTime))
                .collect(),
        };
        for r in &results {
            log_result(r, &trigger);
        }
        let failures: Vec<String> = results
            .iter()
            .filter(|r| r.action == Action::Failed)
            .map(|r| {
                format!(
                    "{}: {}",
                    r.replication_group_id,
                    r.error.as_deref().unwrap_or("unknown error")
                )
            })
            .collect();
        if failures.is_empty() {
            Ok(Response {
                trigger: trigger.kind.to_string(),
                results,
            })
        } else {
            Err(HandlerError::TargetsFailed {
                failed: failures.len(),
                total: results.len(),
                summary: failures.join("; "),
                results,
            })
        }
    }

    async fn reconcile(&self, targets: &[&Target], trigger: &Trigger, deadline: Instant) -> Vec<TargetResult> {
        let ids: Vec<&str> = targets.iter().map(|t| t.replication_group_id.as_str()).collect();
        let described = self.elasticache.describe_many(&ids).await.map_err(Arc::new);
        let settle_until = (Instant::now() + self.cfg.settle_timeout)
            .min(deadline.checked_sub(AFTER_SETTLE_RESERVE).unwrap_or(deadline));
        let picks = join_all(targets.iter().map(|t| {
            let first = match &described {
                Ok(groups) => groups.get(&t.replication_group_id).cloned().ok_or_else(|| {
                    Arc::new(AwsError::GroupNotFound {
                        group: t.replication_group_id.clone(),
                    })
                }),
                Err(e) => Err(e.clone()),
            };
            self.settle(first, settle_until)
        }))
        .await;

        let names: Vec<&str> = targets.iter().map(|t| t.parameter.as_str()).collect();
        let stored = match self.ssm.get_many(&names).await {
            Ok(stored) => stored,
            Err(e) => {
                let e = TargetError::Aws(Arc::new(e));
                return targets
                    .iter()
                    .zip(picks)
                    .map(|(t, p)| failed(t, None, p.ok().as_ref(), &e))
                    .collect();
            }
        };

        let mut results = Vec::with_capacity(targets.len());
        for (target, pick) in targets.iter().zip(picks) {
            results.push(self.publish(target, pick, stored.get(&target.parameter), trigger).await);
        }
        results
    }

    /// Picks the endpoint, re-describing the group with backoff while it is mid-failover (or,
    /// with `VERIFY_ROLE`, while the candidate does not yet answer as master).
    async fn settle(
        &self,
        first: Result<ReplicationGroup, Arc<AwsError>>,
        until: Instant,
    ) -> Result<Pick, TargetError> {
        let started = Instant::now();
        let budget = until.saturating_duration_since(started);
        let mut group = first.map_err(TargetError::Aws)?;
        let mut attempt = 0;
        loop {
            let not_ready = match pick_endpoint(&group, self.cfg.endpoint_mode) {
                Ok(pick) => match self.verify(&pick).await {
                    Ok(()) => return Ok(pick),
                    Err(check) => NotReady::Role(check),
                },
                Err(e) if !e.is_transient() => return Err(TargetError::Pick(e)),
                Err(e) => NotReady::Pick(e),
            };
            let Some(wait) = backoff::next_wait(attempt, started.elapsed(), budget) else {
                return Err(TargetError::Unsettled {
                    source: not_ready,
                    waited: started.elapsed(),
                });
            };
            info!(
                replication_group_id = %group.id,
                reason = %not_ready,
                wait_ms = wait.as_millis() as u64,
                "not ready to publish; describing again"
            );
            tokio::time::sleep(wait).await;
            group = self
                .elasticache
                .describe(&group.id)
                .await
                .map_err(|e| TargetError::Aws(Arc::new(e)))?;
            attempt += 1;
        }
    }

    /// `VERIFY_ROLE`: confirms with Redis that the candidate is the master. The configuration
    /// endpoint of a sharded group fronts many nodes, so it is not probed.
    async fn verify(&self, pick: &Pick) -> Result<(), RoleCheck> {
        match &self.probe {
            Some(probe) if pick.node != "configuration-endpoint" => probe.confirm_master(&pick.endpoint).await,
            _ => Ok(()),
        }
    }

    /// Compares and, if needed, writes one parameter.
    async fn publish(
        &self,
        target: &Target,
        pick: Result<Pick, TargetError>,
        stored: Option<&StoredParameter>,
        trigger: &Trigger,
    ) -> TargetResult {
        let previous = stored.map(|p| p.value.clone());
        let pick = match pick {
            Ok(pick) => pick,
            Err(e) => return failed(target, previous, None, &e),
        };
        let wanted = pick.endpoint.to_string();
        let action = decide(previous.as_deref(), &wanted, self.cfg.dry_run);
        if action == Action::Updated {
            let text = description(target, &pick, self.cfg.endpoint_mode, trigger);
            if let Err(e) = self.ssm.put(&target.parameter, &wanted, &text, stored.is_some()).await {
                return failed(target, previous, Some(&pick), &TargetError::Aws(Arc::new(e)));
            }
        }
        let current = match action {
            Action::Unchanged | Action::Updated | Action::WouldUpdate => Some(wanted),
            Action::Failed => previous.clone(),
        };
        TargetResult {
            replication_group_id: target.replication_group_id.clone(),
            parameter: target.parameter.clone(),
            previous,
            current,
            action,
            node: Some(pick.node),
            error: None,
        }
    }
}

fn failed(target: &Target, previous: Option<String>, pick: Option<&Pick>, e: &TargetError) -> TargetResult {
    TargetResult {
        replication_group_id: target.replication_group_id.clone(),
        parameter: target.parameter.clone(),
        current: previous.clone(),
        previous,
        action: Action::Failed,
        node: pick.map(|p| p.node.clone()),
        error: Some(e.to_string()),
    }
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
