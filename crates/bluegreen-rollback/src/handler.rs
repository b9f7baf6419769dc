//! The bluegreen-rollback handler: the imperative shell around the pure decisions in
//! [`plan`](crate::plan).
//!
//! classify the event -> intent (allow-list, alarm state, account) -> read the two weighted
//! records -> plan (pure) -> submit one conditional change batch (DELETE exactly the records
//! read, CREATE them with the new weights) -> optionally wait for INSYNC.
//!
//! A change Route 53 rejects because a record changed since it was read, or defers because it
//! is busy, is never submitted again as it was: the pair is read again and planned again (a
//! pair already at its target is then a no-op). Before each step the remaining time must hold
//! the step's worst case. A change that was accepted is reported as done even if waiting for
//! INSYNC fails or runs out of time: Route 53 applies it atomically.

use failover_core::deadline::{self, Step};
use failover_core::sdk;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use failover_core::deadline::Budget;
use failover_core::envelope::{self, arn_account};
use failover_core::metrics::Emitter;
use failover_core::retry::{self, Look};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{RollbackConfig, BLUE, GREEN, LOCAL_ACCOUNT};
pub use crate::error::HandlerError;
use crate::metrics::figures;
use crate::plan::{intent, plan, Intent, Plan, Response, Sync, Weights};
use crate::route53::{ChangeError, Pair, PairSpec, Record, Route53};
use crate::trigger::classify;

/// Reading the pair (one page of the listing, normally).
pub const READ_PAIR: Step = Step::new("read the weighted records", sdk::OPERATION_TIMEOUT);
/// Submitting the change batch.
pub const CHANGE: Step = Step::new("submit the change", sdk::OPERATION_TIMEOUT);
/// One `GetChange`.
pub const GET_CHANGE: Step = Step::new("ask whether the change is INSYNC", sdk::OPERATION_TIMEOUT);
/// The function's timeout must be at least `SYNC_TIMEOUT_SECS` plus this: the read, the change,
/// the last `GetChange` and the margin kept for the response. The deploy template's check
/// derives its rule from this value.
pub const TIMEOUT_RESERVE: Duration =
    deadline::worst_case(&[READ_PAIR, CHANGE, GET_CHANGE]).saturating_add(deadline::RESPONSE_MARGIN);

/// What the attempts of one invocation have learned, across their reads.
#[derive(Debug, Default)]
struct Attempts {
    /// The pair of the last rejected change: rejected again as read, the batch is invalid in
    /// itself, not a conflict.
    rejected: Option<Pair>,
    /// Submissions of this invocation that may or may not have been applied: bounded like the
    /// SDK's own retries, since each is followed by a read that tells.
    unsure: u32,
}

/// An attempt that ended the loop: the response, the weights it read, and its plan.
struct Decided {
    response: Response,
    before: Weights,
    plan: Plan,
}

/// What one attempt found: done (or failed), or why to read and plan again.
type Attempt = Look<Result<Decided, HandlerError>, String>;

impl Attempts {
    /// The answer for a pair already at its target: an earlier attempt of this very invocation,
    /// which got no clear answer, may have put it there.
    fn no_op(&self, mut response: Response) -> Response {
        if self.unsure > 0 {
            response.reason = Some(format!(
                "{}; an earlier attempt of this invocation, which got no clear answer, may have made this change",
                response.reason.unwrap_or_default()
            ));
        }
        response
    }

    /// What a refused or unanswered change batch means: read and plan again, or fail.
    fn judge(&mut self, refused: ChangeError, pair: Pair) -> Attempt {
        let failed = |e| {
            if self.unsure > 0 {
                HandlerError::Unclear(e)
            } else {
                HandlerError::Route53(e)
            }
        };
        match refused {
            ChangeError::Conflict(e) if self.rejected.as_ref() == Some(&pair) => Look::Done(Err(failed(e))),
            ChangeError::Conflict(e) => {
                self.rejected = Some(pair);
                Look::NotYet(format!(
                    "the records changed since they were read ({}); reading them again",
                    e.detail
                ))
            }
            ChangeError::Busy(e) => Look::NotYet(format!("Route 53 is busy ({}); reading again", e.detail)),
            ChangeError::Unsure(e) => {
                self.unsure += 1;
                if self.unsure >= sdk::MAX_ATTEMPTS {
                    return Look::Done(Err(HandlerError::Unclear(e)));
                }
                Look::NotYet(format!(
                    "the change may or may not have been applied ({}); reading again",
                    e.detail
                ))
            }
            ChangeError::Failed(e) => Look::Done(Err(failed(e))),
        }
    }
}

/// The function: configuration and client, built once at init.
#[derive(Debug)]
pub struct Rollback {
    cfg: RollbackConfig,
    route53: Route53,
    /// Where each invocation's metrics go.
    metrics: Emitter,
}

impl Rollback {
    /// Builds the adapter from a loaded SDK configuration. Makes no network call.
    pub fn new(cfg: RollbackConfig, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_adapter(cfg, Route53::new(sdk))
    }

    /// Builds from a ready adapter (tests give it a mocked client).
    pub fn with_adapter(cfg: RollbackConfig, route53: Route53) -> Self {
        let metrics = Emitter::for_lambda(&cfg.metrics_namespace, env!("CARGO_PKG_NAME"));
        Self { cfg, route53, metrics }
    }

    /// Sends the metrics to `metrics` instead of stdout (tests read them back).
    pub fn with_metrics(mut self, metrics: Emitter) -> Self {
        self.metrics = metrics;
        self
    }

    /// The Lambda entry point: handles `event` within the invocation's deadline, for the
    /// account of the invoked function's ARN.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Response, HandlerError> {
        let arn = &event.context.invoked_function_arn;
        let account = arn_account(arn).or_else(|| {
            let local = self.cfg.local_account.as_deref();
            info!(invoked_function_arn = %arn, local_account = local, "the invoked ARN names no account (a local runtime); using {}", LOCAL_ACCOUNT.name);
            local
        });
        self.handle(
            &event.payload,
            deadline::from_epoch_millis(event.context.deadline),
            account,
        )
        .await
    }

    /// Handles one event, finishing before `deadline`, for a function of `account` (alarms of
    /// other accounts are ignored; `None` ignores every alarm), and emits its metrics (one EMF
    /// document, whatever the outcome).
    pub async fn handle(
        &self,
        event: &Value,
        deadline: Instant,
        account: Option<&str>,
    ) -> Result<Response, HandlerError> {
        let result = self.handle_event(event, deadline, account).await;
        let metrics = figures(
            self.metrics.dimensions(None),
            result.as_ref().ok(),
            envelope::event_time(event),
        );
        self.metrics.emit(metrics, false);
        result
    }

    /// [`Self::handle`] but the metrics.
    async fn handle_event(
        &self,
        event: &Value,
        deadline: Instant,
        account: Option<&str>,
    ) -> Result<Response, HandlerError> {
        let trigger = classify(event).inspect_err(|e| warn!(error = %e, "rejected event; nothing written"))?;
        let wanted = intent(&trigger, &self.cfg, account);
        if let Intent::Ignore { reason } = &wanted {
            info!(?trigger, reason = %reason, action = "ignored", "nothing to do");
            return Ok(Response::ignored(reason));
        }
        let budget = Budget::new(deadline);
        // A change Route 53 accepted is done whatever happens after it; keep its answer so the
        // deadline cannot turn it into a failure.
        let accepted: Mutex<Option<Response>> = Mutex::new(None);
        // Whether a submitted batch may have been applied without an answer that says so (one in
        // flight, or one that got no clear answer): an error must not then say nothing changed.
        let maybe_applied = AtomicBool::new(false);
        // Boxed: the nested futures of the retry loop are too deep a type for the compiler otherwise.
        let act = Box::pin(self.act(&wanted, budget, &accepted, &maybe_applied));
        match tokio::time::timeout_at(budget.stop(), act).await {
            Ok(result) => result,
            Err(_) => match accepted.lock().unwrap_or_else(PoisonError::into_inner).take() {
                Some(mut done) => {
                    warn!(
                        change_id = done.change_id.as_deref(),
                        "the change was accepted; ran out of time while waiting for INSYNC"
                    );
                    done.sync = Some(Sync::Unknown);
                    Ok(done)
                }
                None => Err(HandlerError::OutOfTime {
                    maybe_applied: maybe_applied.load(Ordering::SeqCst),
                }),
            },
        }
    }

    /// Reads the pair, plans, and submits the conditional change; on a conflict (the records
    /// changed since they were read) or a busy Route 53, reads and plans again, while time lasts.
    async fn act(
        &self,
        wanted: &Intent,
        budget: Budget,
        accepted: &Mutex<Option<Response>>,
        maybe_applied: &AtomicBool,
    ) -> Result<Response, HandlerError> {
        let until = budget.last_start_of(&[READ_PAIR, CHANGE]);
        let mut attempts = Attempts::default();
        let outcome = retry::until(until, "the weighted records to be changed", async |_| {
            self.attempt(wanted, budget, &mut attempts, accepted, maybe_applied)
                .await
        })
        .await;
        let Decided {
            mut response,
            before,
            plan: p,
        } = match outcome {
            Ok(done) => done?,
            Err(gave_up) => {
                return Err(HandlerError::GaveUp {
                    last: gave_up.last,
                    looks: gave_up.looks,
                    maybe_applied: maybe_applied.load(Ordering::SeqCst),
                })
            }
        };
        self.wait_if_asked(&mut response, budget).await;
        info!(
            intent = ?wanted,
            action = response.action.as_str(),
            previous_blue = before.blue,
            previous_green = before.green,
            blue = p.after.blue,
            green = p.after.green,
            change_id = response.change_id.as_deref(),
            sync = response.sync.map(Sync::as_str),
            reason = response.reason.as_deref(),
            "blue/green decision"
        );
        Ok(response)
    }

    /// One attempt: read the pair, plan, and submit the plan's change if it has one.
    async fn attempt(
        &self,
        wanted: &Intent,
        budget: Budget,
        attempts: &mut Attempts,
        accepted: &Mutex<Option<Response>>,
        maybe_applied: &AtomicBool,
    ) -> Attempt {
        let not_enough_time = |source| HandlerError::NotEnoughTime {
            source,
            maybe_applied: attempts.unsure > 0,
        };
        if let Err(e) = budget.allows(&READ_PAIR) {
            return Look::Done(Err(not_enough_time(e)));
        }
        let read = self.read().await.and_then(|pair| {
            let (blue, green, before) = self.weights(&pair)?;
            Ok((pair.clone(), blue.clone(), green.clone(), before))
        });
        let (pair, blue, green, before) = match read {
            Ok(read) => read,
            Err(e) if attempts.unsure > 0 => return Look::Done(Err(e.after_unclear())),
            Err(e) => return Look::Done(Err(e)),
        };
        let p = plan(wanted, before, &self.cfg);
        let Some(target) = p.write else {
            let response = attempts.no_op(Response::planned(&p));
            return Look::Done(Ok(Decided {
                response,
                before,
                plan: p,
            }));
        };
        if let Err(e) = budget.allows(&CHANGE) {
            return Look::Done(Err(not_enough_time(e)));
        }
        maybe_applied.store(true, Ordering::SeqCst);
        let submitted = self
            .route53
            .change_pair(&self.cfg.hosted_zone_id, (&blue, &green), target, &p.comment)
            .await;
        // A definite refusal applied nothing; only an unclear answer (now or before) may have.
        let unclear = matches!(submitted, Err(ChangeError::Unsure(_)));
        maybe_applied.store(unclear || attempts.unsure > 0, Ordering::SeqCst);
        let submitted = match submitted {
            Ok(submitted) => submitted,
            Err(e) => return attempts.judge(e, pair),
        };
        let mut response = Response::planned(&p);
        response.accepted_at = Some(SystemTime::now());
        response.change_id = Some(submitted.id.clone());
        response.sync = Some(if submitted.insync { Sync::Insync } else { Sync::Pending });
        response.insync_after = submitted.insync.then_some(Duration::ZERO);
        // From here on the change is done, whatever the deadline does.
        *accepted.lock().unwrap_or_else(PoisonError::into_inner) = Some(response.clone());
        Look::Done(Ok(Decided {
            response,
            before,
            plan: p,
        }))
    }

    /// `WAIT_FOR_SYNC`: waits for an accepted change to be INSYNC and records how long it took.
    async fn wait_if_asked(&self, response: &mut Response, budget: Budget) {
        let Some(id) = response.change_id.clone() else { return };
        if self.cfg.wait_for_sync && response.sync != Some(Sync::Insync) {
            let waiting = Instant::now();
            let sync = self.wait_insync(&id, budget).await;
            response.sync = Some(sync);
            response.insync_after = (sync == Sync::Insync).then(|| waiting.elapsed());
        }
    }

    /// The pair as it is now.
    async fn read(&self) -> Result<Pair, HandlerError> {
        let cfg = &self.cfg;
        let spec = PairSpec {
            zone: &cfg.hosted_zone_id,
            name: &cfg.record_name,
            record_type: &cfg.record_type,
            blue: &cfg.blue,
            green: &cfg.green,
        };
        Ok(self.route53.read_pair(&spec).await?)
    }

    /// Both records of `pair` and their weights, or the error that names the missing one.
    fn weights<'p>(&self, pair: &'p Pair) -> Result<(&'p Record, &'p Record, Weights), HandlerError> {
        let cfg = &self.cfg;
        let missing = |color, var, set_identifier: &str| HandlerError::MissingRecord {
            color,
            var,
            record: format!(
                "{} {} in hosted zone {}",
                cfg.record_name, cfg.record_type, cfg.hosted_zone_id
            ),
            set_identifier: set_identifier.to_owned(),
            maybe_applied: false,
        };
        let blue = pair
            .blue
            .as_ref()
            .ok_or_else(|| missing("blue", BLUE.name, &cfg.blue))?;
        let green = pair
            .green
            .as_ref()
            .ok_or_else(|| missing("green", GREEN.name, &cfg.green))?;
        let weight = |color, r: &Record| {
            r.weight().ok_or_else(|| HandlerError::NotWeighted {
                color,
                set_identifier: r.set_identifier().to_owned(),
                maybe_applied: false,
            })
        };
        let before = Weights {
            blue: weight("blue", blue)?,
            green: weight("green", green)?,
        };
        Ok((blue, green, before))
    }

    /// Polls `GetChange` until INSYNC, `SYNC_TIMEOUT_SECS`, or the last moment a `GetChange`
    /// still fits before the deadline. The change is applied either way: a failed poll only
    /// makes the sync state unknown (and is logged).
    async fn wait_insync(&self, id: &str, budget: Budget) -> Sync {
        let until = (Instant::now() + self.cfg.sync_timeout).min(budget.last_start_of(&[GET_CHANGE]));
        let polled = retry::until(until, "the change to be INSYNC", async |_| {
            match self.route53.is_insync(id).await {
                Ok(true) => Look::Done(Ok(())),
                Ok(false) => Look::NotYet("PENDING"),
                Err(e) => Look::Done(Err(e)),
            }
        })
        .await;
        match polled {
            Ok(Ok(())) => Sync::Insync,
            Ok(Err(e)) => {
                warn!(change_id = id, error = %e, "the change was accepted and is applied atomically; its sync state is unknown");
                Sync::Unknown
            }
            Err(_) => Sync::Pending,
        }
    }
}
