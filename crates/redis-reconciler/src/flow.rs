//! One target's flow, from its first look to its result, in named steps: [`Reconciler::settle`]
//! (wait until the group can be published), [`Reconciler::read`], [`Reconciler::write`] and
//! [`Reconciler::moved_since_write`] (the check), looped while the primary moves.
//!
//! What the flow knows lives in [`Flow`]: the group as last described, the parameter as read
//! after that describe (forgotten at every wait: a read made before a wait is never used after
//! it), and what this invocation wrote, so every result says what the parameter holds.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use failover_core::deadline::{Budget, Step};
use failover_core::retry::{self, Look};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Target;
use crate::elasticache::DescribeError;
use crate::error::{NotReady, Progress, TargetError};
use crate::handler::{Reconciler, DESCRIBE, MAX_WRITES, PROBE, READ, WRITE};
use crate::plan::{decide, description, shown, Action, Decision, TargetResult};
use crate::probe::RoleCheck;
use crate::ssm::StoredParameter;
use crate::topology::{names_stale_node, pick_endpoint, unsettled_primary, Node, Pick, ReplicationGroup};
use crate::trigger::Trigger;

/// The parameter as a target's flow first read it, as the response reports it: its value as
/// [`shown`] (`None` when it did not exist) and whether it is a SecureString, whose values are
/// never shown.
#[derive(Debug, Clone, Default)]
pub(crate) struct Before {
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
pub(crate) struct SettleUntil {
    pub(crate) at: Instant,
    /// The Lambda deadline (less the steps after the wait), not `SETTLE_TIMEOUT_SECS`.
    pub(crate) by_deadline: bool,
}

/// The parameter as read right after the last describe, or why it could not be read.
pub(crate) type Fresh = Result<Option<StoredParameter>, TargetError>;

/// What the first, batched look found for one target.
pub(crate) enum FirstLook {
    /// The group as described just now, and (when it could be decided at once) its parameter
    /// as read right after.
    Described(ReplicationGroup, Option<Fresh>),
    /// It could not be described.
    Failed(TargetError),
}

/// A group the first look did not find: missing, or not reached by a listing cut short.
pub(crate) fn not_found(target: &Target, listing_complete: bool) -> TargetError {
    if listing_complete {
        TargetError::Describe(Arc::new(DescribeError::NotFound {
            group: target.replication_group_id.clone(),
        }))
    } else {
        TargetError::NotReached
    }
}

/// What one target's flow knows as it goes.
pub(crate) struct Flow<'a> {
    target: &'a Target,
    /// The group as last described.
    view: ReplicationGroup,
    /// The parameter as read after the last describe, with no wait since (taken when used).
    fresh: Option<Fresh>,
    /// The parameter as first read: what the response reports as `previous`.
    before: Option<Before>,
    /// What this invocation last wrote.
    written: Option<Pick>,
    /// How many writes this invocation made.
    writes: u32,
}

impl<'a> Flow<'a> {
    fn new(target: &'a Target, view: ReplicationGroup, fresh: Option<Fresh>) -> Self {
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

    /// The result of a flow that failed, saying what the parameter holds as far as this flow
    /// knows: the value first read; the value this invocation wrote; or, after a write that got
    /// no clear answer, nothing certain (`current` is `None` and the error says why).
    fn failed(&self, pick: Option<&Pick>, e: TargetError) -> TargetResult {
        let previous = self.before.as_ref().and_then(|b| b.value.clone());
        let unknown = matches!(&e, TargetError::Write { source } if source.may_have_applied);
        let Some(written) = &self.written else {
            let current = if unknown { None } else { previous.clone() };
            return TargetResult::failed(self.target, previous, current, pick, e.to_string());
        };
        let secure = self.before.as_ref().is_some_and(|b| b.secure);
        let holds = shown(&written.endpoint.to_string(), secure);
        let node = &written.node;
        if unknown {
            let error = format!("{e}; before that write it held {holds} (node {node}), written by this invocation");
            return TargetResult::failed(self.target, previous, None, pick, error);
        }
        let error = format!("{e}; the parameter holds {holds} (node {node}), written by this invocation");
        TargetResult::failed(self.target, previous, Some(holds), Some(written), error)
    }
}

impl Reconciler {
    /// One target, from its first look to its result: settle, read, write, check; a primary
    /// that moved meanwhile is followed at most [`MAX_WRITES`] times.
    pub(crate) async fn target_flow(
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
                    return Err((
                        Some(pick.clone()),
                        TargetError::KeptMoving {
                            now: pick.node.to_string(),
                        },
                    ));
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
        let put = self.ssm.put(&target.parameter, &wanted, &text, stored.as_ref()).await;
        set(progress, |p| p.writing = false);
        let written = put.map_err(|source| TargetError::Write { source })?;
        set(progress, |p| {
            p.wrote = Some(shown(&written.value, written.is_secure()));
            p.wrote_node = Some(pick.node.to_string());
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
        if pick.node == Node::ConfigurationEndpoint {
            return Ok(None);
        }
        let token = self.token(budget, wrote).await?;
        allowed(budget, &PROBE, wrote)?;
        Ok(probe
            .confirm_master(&pick.endpoint, &pick.node.to_string(), token)
            .await
            .err())
    }
}

/// `Ok` when `step` fits in what is left of `budget`; else the error that says so, and whether
/// this invocation had written the parameter.
pub(crate) fn allowed(budget: Budget, step: &Step, wrote: bool) -> Result<(), TargetError> {
    budget
        .allows(step)
        .map_err(|source| TargetError::OutOfTime { source, wrote })
}

pub(crate) fn set(progress: &Mutex<Progress>, change: impl FnOnce(&mut Progress)) {
    change(&mut progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
}
