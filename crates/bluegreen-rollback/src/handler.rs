//! The bluegreen-rollback handler: the imperative shell around `failover_core::bluegreen`.
//!
//! classify the event -> intent (allow-list, alarm state) -> read the two weighted records ->
//! plan (pure) -> submit at most one change batch -> optionally wait for INSYNC.

use failover_core::aws::route53::{PairSpec, Route53};
use failover_core::aws::AwsError;
use failover_core::bluegreen::config::RollbackConfig;
use failover_core::bluegreen::plan::{intent, plan, Intent, Outcome, Weights};
use failover_core::bluegreen::trigger::classify;
use failover_core::deadline;
use failover_core::trigger::TriggerError;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{info, warn};

/// The JSON response.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Response {
    /// What was done.
    pub action: Outcome,
    /// Blue's weight after the action (for `would-*`, the weight it would have; `null` when
    /// the event was ignored without reading the records).
    pub blue_weight: Option<i64>,
    /// Green's weight, likewise.
    pub green_weight: Option<i64>,
    /// The Route 53 change id, when a change was submitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// Why nothing was written, or a note about the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why an invocation failed. Nothing is written in any of these cases: a Route 53 change batch
/// is atomic, so a failed change leaves both records as they were.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event or command is not something we accept; nothing was written.
    #[error("{0}; nothing was written")]
    BadEvent(#[from] TriggerError),
    /// One of the two weighted records does not exist; nothing was written.
    #[error("the {color} record ({record}, set identifier {set_identifier:?}) was not found; nothing was written: check {var}, RECORD_NAME and RECORD_TYPE")]
    MissingRecord {
        /// `blue` or `green`.
        color: &'static str,
        /// The configuration variable naming its set identifier.
        var: &'static str,
        /// Name, type and hosted zone looked in.
        record: String,
        /// Set identifier looked for.
        set_identifier: String,
    },
    /// A record with the set identifier exists but is not a weighted record.
    #[error("the {color} record {set_identifier:?} has no weight (not a weighted record); nothing was written")]
    NotWeighted {
        /// `blue` or `green`.
        color: &'static str,
        /// Its set identifier.
        set_identifier: String,
    },
    /// A Route 53 call failed after retries.
    #[error(transparent)]
    Route53(#[from] AwsError),
    /// The invocation deadline arrived first.
    #[error("ran out of time before the Lambda deadline; check the weights with {{\"action\":\"status\"}} and raise the function timeout")]
    OutOfTime,
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match e {
            HandlerError::BadEvent(_) => "BadEvent",
            HandlerError::MissingRecord { .. } => "MissingRecord",
            HandlerError::NotWeighted { .. } => "NotWeighted",
            HandlerError::Route53(_) => "Route53Error",
            HandlerError::OutOfTime => "OutOfTime",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// The function: configuration and client, built once at init.
#[derive(Debug, Clone)]
pub struct Rollback {
    cfg: RollbackConfig,
    route53: Route53,
}

impl Rollback {
    /// Builds the client from a loaded SDK configuration. Makes no network call.
    pub fn new(cfg: RollbackConfig, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_client(cfg, aws_sdk_route53::Client::new(sdk))
    }

    /// Builds from a ready client (tests point it at the emulator).
    pub fn with_client(cfg: RollbackConfig, client: aws_sdk_route53::Client) -> Self {
        Self {
            cfg,
            route53: Route53::new(client),
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
        let wanted = intent(&trigger, &self.cfg);
        if let Intent::Ignore { reason } = &wanted {
            info!(?trigger, reason = %reason, action = "ignored", "nothing to do");
            return Ok(Response {
                action: Outcome::Ignored,
                blue_weight: None,
                green_weight: None,
                change_id: None,
                reason: Some(reason.clone()),
            });
        }
        let hard_stop = deadline::respond_by(deadline);
        tokio::time::timeout_at(hard_stop, self.act(&wanted, hard_stop))
            .await
            .map_err(|_| HandlerError::OutOfTime)?
    }

    async fn act(&self, wanted: &Intent, hard_stop: Instant) -> Result<Response, HandlerError> {
        let cfg = &self.cfg;
        let spec = PairSpec {
            zone: &cfg.hosted_zone_id,
            name: &cfg.record_name,
            record_type: &cfg.record_type,
            blue: &cfg.blue,
            green: &cfg.green,
        };
        let pair = self.route53.read_pair(&spec).await?;
        let missing = |color, var, set_identifier: &str| HandlerError::MissingRecord {
            color,
            var,
            record: format!(
                "{} {} in hosted zone {}",
                cfg.record_name, cfg.record_type, cfg.hosted_zone_id
            ),
            set_identifier: set_identifier.to_owned(),
        };
        let blue = pair
            .blue
            .ok_or_else(|| missing("blue", "BLUE_SET_IDENTIFIER", &cfg.blue))?;
        let green = pair
            .green
            .ok_or_else(|| missing("green", "GREEN_SET_IDENTIFIER", &cfg.green))?;
        let weight = |color, r: &aws_sdk_route53::types::ResourceRecordSet| {
            r.weight.ok_or_else(|| HandlerError::NotWeighted {
                color,
                set_identifier: r.set_identifier.clone().unwrap_or_default(),
            })
        };
        let before = Weights {
            blue: weight("blue", &blue)?,
            green: weight("green", &green)?,
        };
        let p = plan(wanted, before, cfg);
        let mut response = Response {
            action: p.outcome,
            blue_weight: Some(p.after.blue),
            green_weight: Some(p.after.green),
            change_id: None,
            reason: p.reason.clone(),
        };
        if let Some(target) = p.write {
            let id = self
                .route53
                .set_weights(
                    &cfg.hosted_zone_id,
                    (&blue, target.blue),
                    (&green, target.green),
                    &p.comment,
                    hard_stop,
                )
                .await?;
            if cfg.wait_for_sync {
                let until = (Instant::now() + cfg.sync_timeout).min(hard_stop);
                if !self.route53.wait_insync(&id, until).await? {
                    response.reason = Some(format!(
                        "change {id} submitted; not yet INSYNC after waiting (Route 53 applies it atomically)"
                    ));
                }
            }
            response.change_id = Some(id);
        }
        info!(
            intent = ?wanted,
            action = ?response.action,
            previous_blue = before.blue,
            previous_green = before.green,
            blue = p.after.blue,
            green = p.after.green,
            change_id = response.change_id.as_deref(),
            reason = response.reason.as_deref(),
            "blue/green decision"
        );
        Ok(response)
    }
}
