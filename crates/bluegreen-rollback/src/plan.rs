//! The rollback function's decisions: what an invocation means, and which weights to write.
//!
//! Pure functions over the two records' weights. The shell reads the live records, asks
//! [`plan`], and submits at most one change batch. Two invariants hold for every plan:
//! a plan never writes blue 0 and green 0 at once (Route 53 then splits traffic evenly, the
//! opposite of a rollback), and a rollback that is already in place writes nothing (alarms,
//! SNS and Lambda retries may deliver the same ALARM twice).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use failover_core::envelope::AlarmState;

use crate::config::{RollbackConfig, ALARMS, DRY_RUN};
use crate::trigger::{Command, RollbackTrigger};

/// The weights of the blue and green records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// Blue's weight.
    pub blue: i64,
    /// Green's weight.
    pub green: i64,
}

/// What an invocation asks for, once the allow-list and alarm state are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Send all traffic to blue.
    Rollback {
        /// Who asked: `alarm app-green-5xx` or `rollback command`.
        cause: String,
    },
    /// Put `green_percent` on green and the rest on blue.
    Shift {
        /// 0..=100.
        green_percent: u8,
    },
    /// Report the weights.
    Status,
    /// Nothing to do (an alarm leaving ALARM, or an alarm not on the allow-list).
    Ignore {
        /// Why.
        reason: String,
    },
}

/// Interprets a classified trigger under the configuration, for a function running in
/// `account` (from its invoked ARN; `None` when unknown). An alarm rolls back only when it
/// belongs to that account, is allowed by `ALARM_NAMES`, entered ALARM, and its actions were
/// not suppressed; anything else is ignored, with the reason.
pub fn intent(trigger: &RollbackTrigger, cfg: &RollbackConfig, account: Option<&str>) -> Intent {
    let change = match trigger {
        RollbackTrigger::Command(Command::Rollback) => {
            return Intent::Rollback {
                cause: "rollback command".into(),
            }
        }
        RollbackTrigger::Command(Command::Shift { green_percent }) => {
            return Intent::Shift {
                green_percent: *green_percent,
            }
        }
        RollbackTrigger::Command(Command::Status) => return Intent::Status,
        RollbackTrigger::Alarm(change) => change,
    };
    let ignore = |reason: String| Intent::Ignore { reason };
    let alarm = &change.alarm;
    match (account, change.accounts.as_slice()) {
        (None, _) => {
            return ignore(format!(
                "alarm {alarm}: the function's own account is unknown, so no alarm may roll back"
            ))
        }
        (_, []) => {
            return ignore(format!(
                "alarm {alarm}: the event names no account; only alarms of this account roll back"
            ))
        }
        (Some(own), found) if found.iter().any(|a| a != own) => {
            return ignore(format!(
                "alarm {alarm} belongs to account {}, not to this function's account {own}",
                found.join(", ")
            ))
        }
        _ => {}
    }
    if !cfg.alarm_names.allows(alarm) {
        return ignore(format!("alarm {alarm} is not in {} ({})", ALARMS.name, cfg.alarm_names));
    }
    if change.state != AlarmState::Alarm {
        return ignore(format!("alarm {alarm} went to {}; only ALARM rolls back", change.state));
    }
    if let Some(by) = &change.actions_suppressed_by {
        return ignore(format!(
            "alarm {alarm} is in ALARM but its actions are suppressed ({by}); CloudWatch did not run them, so neither do we"
        ));
    }
    Intent::Rollback {
        cause: format!("alarm {alarm}"),
    }
}

/// The response's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Traffic was sent back to blue.
    RolledBack,
    /// Green already had weight 0 and blue more; nothing written.
    AlreadyRolledBack,
    /// The event asks for nothing; nothing written.
    Ignored,
    /// Weights were shifted (or already were as asked).
    Shifted,
    /// Weights reported; nothing written.
    Status,
    /// Dry run of a rollback.
    WouldRollBack,
    /// Dry run of a shift.
    WouldShift,
}

impl Outcome {
    /// The spelling the response uses, e.g. `rolled-back`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RolledBack => "rolled-back",
            Self::AlreadyRolledBack => "already-rolled-back",
            Self::Ignored => "ignored",
            Self::Shifted => "shifted",
            Self::Status => "status",
            Self::WouldRollBack => "would-roll-back",
            Self::WouldShift => "would-shift",
        }
    }
}

/// What to do about the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What the response reports.
    pub outcome: Outcome,
    /// Weights to submit in one change batch; `None` writes nothing.
    pub write: Option<Weights>,
    /// The weights after the action (for `would-*`, the weights it would produce).
    pub after: Weights,
    /// Why nothing was written, when nothing was.
    pub reason: Option<String>,
    /// The change batch comment (Route 53 allows 256 characters).
    pub comment: String,
}

/// How far a submitted change has propagated. A change Route 53 accepted is applied, atomically,
/// whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Sync {
    /// `GetChange` says INSYNC.
    Insync,
    /// Not yet INSYNC when the function stopped waiting (or did not wait).
    Pending,
    /// Accepted, but asking `GetChange` failed or ran out of time.
    Unknown,
}

impl Sync {
    /// The spelling the response uses, e.g. `INSYNC`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insync => "INSYNC",
            Self::Pending => "PENDING",
            Self::Unknown => "UNKNOWN",
        }
    }
}

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
    /// Whether the submitted change has reached every Route 53 name server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<Sync>,
    /// Why nothing was written, or a note about the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When Route 53 accepted the change (for the metrics; not in the response).
    #[serde(skip)]
    pub accepted_at: Option<SystemTime>,
    /// From acceptance to INSYNC, when the function saw it (zero when Route 53 answered INSYNC
    /// at once; metrics only).
    #[serde(skip)]
    pub insync_after: Option<Duration>,
}

impl Response {
    /// The answer to an event that asks for nothing; the records were not read.
    pub fn ignored(reason: &str) -> Self {
        Self {
            action: Outcome::Ignored,
            blue_weight: None,
            green_weight: None,
            change_id: None,
            sync: None,
            reason: Some(reason.to_owned()),
            accepted_at: None,
            insync_after: None,
        }
    }

    /// The answer for `plan`, before any change was submitted.
    pub fn planned(plan: &Plan) -> Self {
        Self {
            action: plan.outcome,
            blue_weight: Some(plan.after.blue),
            green_weight: Some(plan.after.green),
            change_id: None,
            sync: None,
            reason: plan.reason.clone(),
            accepted_at: None,
            insync_after: None,
        }
    }
}

/// Plans `intent` against the current weights.
pub fn plan(intent: &Intent, current: Weights, cfg: &RollbackConfig) -> Plan {
    let keep = |outcome, reason: String| Plan {
        outcome,
        write: None,
        after: current,
        reason: Some(reason),
        comment: String::new(),
    };
    let (target, cause, outcome, dry_outcome) = match intent {
        Intent::Status => {
            return keep(
                Outcome::Status,
                format!("blue {} / green {}", current.blue, current.green),
            )
        }
        Intent::Ignore { reason } => return keep(Outcome::Ignored, reason.clone()),
        Intent::Rollback { cause } => {
            if current.green == 0 && current.blue > 0 {
                return keep(
                    Outcome::AlreadyRolledBack,
                    format!("green already 0, blue {}", current.blue),
                );
            }
            let target = Weights {
                blue: cfg.blue_weight,
                green: 0,
            };
            (
                target,
                format!("roll back to blue on {cause}"),
                Outcome::RolledBack,
                Outcome::WouldRollBack,
            )
        }
        Intent::Shift { green_percent } => {
            let green = i64::from(*green_percent);
            let target = Weights {
                blue: 100 - green,
                green,
            };
            if current == target {
                return keep(
                    Outcome::Shifted,
                    format!("already blue {} / green {}", target.blue, target.green),
                );
            }
            (
                target,
                format!("shift {green}% to green"),
                Outcome::Shifted,
                Outcome::WouldShift,
            )
        }
    };
    debug_assert!(target.blue + target.green > 0, "never write both weights 0");
    let mut comment = format!("failover bluegreen-rollback: {cause}");
    comment.truncate(comment.char_indices().nth(256).map_or(comment.len(), |(i, _)| i));
    if cfg.dry_run {
        Plan {
            outcome: dry_outcome,
            write: None,
            after: target,
            reason: Some(format!("{}: nothing written", DRY_RUN.name)),
            comment,
        }
    } else {
        Plan {
            outcome,
            write: Some(target),
            after: target,
            reason: None,
            comment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AlarmFilter;
    use failover_core::envelope::AlarmChange;

    const ACCOUNT: &str = "123456789012";

    /// The configuration with every default and any alarm allowed, as the function reads it.
    fn cfg() -> RollbackConfig {
        let pairs = [
            ("HOSTED_ZONE_ID", "Z1"),
            ("RECORD_NAME", "app.example.com"),
            ("ALARM_NAMES", "*"),
        ];
        let env = failover_core::env::Env::from_pairs(&pairs);
        RollbackConfig::from(&env).unwrap()
    }

    fn alarm(name: &str, state: AlarmState) -> RollbackTrigger {
        RollbackTrigger::Alarm(AlarmChange {
            alarm: name.into(),
            state,
            previous: None,
            dimensions: vec![],
            accounts: vec![ACCOUNT.into()],
            actions_suppressed_by: None,
        })
    }

    fn w(blue: i64, green: i64) -> Weights {
        Weights { blue, green }
    }

    #[test]
    fn only_an_allowed_alarm_entering_alarm_rolls_back() {
        let mut c = cfg();
        let own = Some(ACCOUNT);
        assert_eq!(
            intent(&alarm("app-green-5xx", AlarmState::Alarm), &c, own),
            Intent::Rollback {
                cause: "alarm app-green-5xx".into()
            }
        );
        for state in [AlarmState::Ok, AlarmState::InsufficientData] {
            assert!(matches!(
                intent(&alarm("app-green-5xx", state), &c, own),
                Intent::Ignore { .. }
            ));
        }
        c.alarm_names = AlarmFilter::Named(vec!["app-green-5xx".into()]);
        assert!(matches!(
            intent(&alarm("app-green-5xx", AlarmState::Alarm), &c, own),
            Intent::Rollback { .. }
        ));
        let Intent::Ignore { reason } = intent(&alarm("billing-cpu-high", AlarmState::Alarm), &c, own) else {
            panic!()
        };
        assert!(reason.contains("not in ALARM_NAMES"), "{reason}");
    }

    #[test]
    fn alarms_of_another_account_or_with_suppressed_actions_never_roll_back() {
        let c = cfg();
        let with = |accounts: &[&str], suppressed: Option<&str>| {
            let RollbackTrigger::Alarm(mut change) = alarm("app-green-5xx", AlarmState::Alarm) else {
                unreachable!()
            };
            change.accounts = accounts.iter().map(|a| a.to_string()).collect();
            change.actions_suppressed_by = suppressed.map(str::to_owned);
            RollbackTrigger::Alarm(change)
        };
        let reason = |i: Intent| match i {
            Intent::Ignore { reason } => reason,
            other => panic!("expected to ignore, got {other:?}"),
        };
        let foreign = reason(intent(&with(&["210987654321"], None), &c, Some(ACCOUNT)));
        assert!(foreign.contains("belongs to account 210987654321"), "{foreign}");
        // an event whose fields disagree about the account is not ours either
        assert!(reason(intent(&with(&[ACCOUNT, "210987654321"], None), &c, Some(ACCOUNT))).contains("belongs"));
        assert!(reason(intent(&with(&[], None), &c, Some(ACCOUNT))).contains("names no account"));
        assert!(reason(intent(&with(&[ACCOUNT], None), &c, None)).contains("own account is unknown"));
        let held = reason(intent(&with(&[ACCOUNT], Some("Alarm")), &c, Some(ACCOUNT)));
        assert!(held.contains("actions are suppressed (Alarm)"), "{held}");
        // commands need no account
        assert_eq!(
            intent(&RollbackTrigger::Command(Command::Status), &c, None),
            Intent::Status
        );
    }

    #[test]
    fn rollback_for_every_weight_combination() {
        let rollback = Intent::Rollback {
            cause: "alarm a".into(),
        };
        for blue in [0, 1, 50, 100, 255] {
            for green in [0, 1, 25, 100, 255] {
                let p = plan(&rollback, w(blue, green), &cfg());
                if green == 0 && blue > 0 {
                    // GIVEN green already drained THEN nothing is written (idempotent)
                    assert_eq!(
                        (p.outcome, p.write),
                        (Outcome::AlreadyRolledBack, None),
                        "{blue}/{green}"
                    );
                    assert_eq!(p.after, w(blue, green));
                } else {
                    // including blue 0 / green 0, which Route 53 would split evenly
                    assert_eq!(
                        (p.outcome, p.write),
                        (Outcome::RolledBack, Some(w(100, 0))),
                        "{blue}/{green}"
                    );
                    assert_eq!(p.comment, "failover bluegreen-rollback: roll back to blue on alarm a");
                }
            }
        }
    }

    #[test]
    fn rollback_uses_the_configured_blue_weight() {
        let mut c = cfg();
        c.blue_weight = 255;
        let p = plan(&Intent::Rollback { cause: "x".into() }, w(0, 0), &c);
        assert_eq!(p.write, Some(w(255, 0)));
        c.blue_weight = 1;
        assert_eq!(
            plan(&Intent::Rollback { cause: "x".into() }, w(50, 50), &c).write,
            Some(w(1, 0))
        );
    }

    #[test]
    fn shifts_split_one_hundred_and_skip_a_no_op() {
        for n in [0u8, 25, 50, 100] {
            let p = plan(&Intent::Shift { green_percent: n }, w(100, 0), &cfg());
            let want = w(100 - i64::from(n), i64::from(n));
            assert_eq!(p.after, want);
            assert_eq!(p.write, (want != w(100, 0)).then_some(want), "{n}");
            assert_eq!(p.outcome, Outcome::Shifted);
        }
        let p = plan(&Intent::Shift { green_percent: 25 }, w(75, 25), &cfg());
        assert_eq!(
            (p.write, p.reason.as_deref()),
            (None, Some("already blue 75 / green 25"))
        );
    }

    #[test]
    fn no_plan_ever_writes_both_weights_zero() {
        let intents = [
            Intent::Rollback { cause: "a".into() },
            Intent::Shift { green_percent: 0 },
            Intent::Shift { green_percent: 100 },
            Intent::Status,
            Intent::Ignore { reason: "r".into() },
        ];
        for i in &intents {
            for blue in [0, 100] {
                for green in [0, 100] {
                    if let Some(t) = plan(i, w(blue, green), &cfg()).write {
                        assert!(t.blue + t.green > 0, "{i:?} from {blue}/{green}");
                    }
                }
            }
        }
    }

    #[test]
    fn dry_run_reports_the_would_be_state_and_writes_nothing() {
        let mut c = cfg();
        c.dry_run = true;
        let p = plan(&Intent::Rollback { cause: "a".into() }, w(75, 25), &c);
        assert_eq!((p.outcome, p.write, p.after), (Outcome::WouldRollBack, None, w(100, 0)));
        let p = plan(&Intent::Shift { green_percent: 25 }, w(100, 0), &c);
        assert_eq!((p.outcome, p.write, p.after), (Outcome::WouldShift, None, w(75, 25)));
        // an already-rolled-back pair is reported as such, dry run or not
        assert_eq!(
            plan(&Intent::Rollback { cause: "a".into() }, w(100, 0), &c).outcome,
            Outcome::AlreadyRolledBack
        );
    }

    #[test]
    fn status_and_ignore_keep_the_weights() {
        let p = plan(&Intent::Status, w(75, 25), &cfg());
        assert_eq!((p.outcome, p.write, p.after), (Outcome::Status, None, w(75, 25)));
        let p = plan(&Intent::Ignore { reason: "r".into() }, w(75, 25), &cfg());
        assert_eq!(
            (p.outcome, p.write, p.reason.as_deref()),
            (Outcome::Ignored, None, Some("r"))
        );
    }

    #[test]
    fn log_spellings_are_the_response_spellings() {
        for o in [
            Outcome::RolledBack,
            Outcome::AlreadyRolledBack,
            Outcome::Ignored,
            Outcome::Shifted,
            Outcome::Status,
            Outcome::WouldRollBack,
            Outcome::WouldShift,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for s in [Sync::Insync, Sync::Pending, Sync::Unknown] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn responses_serialise_to_the_documented_shape() {
        let p = plan(
            &Intent::Rollback {
                cause: "alarm a".into(),
            },
            w(75, 25),
            &cfg(),
        );
        let mut r = Response::planned(&p);
        r.change_id = Some("/change/C1".into());
        r.sync = Some(Sync::Unknown);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"action": "rolled-back", "blue_weight": 100, "green_weight": 0,
                               "change_id": "/change/C1", "sync": "UNKNOWN"})
        );
        let p = plan(
            &Intent::Rollback {
                cause: "alarm a".into(),
            },
            w(100, 0),
            &cfg(),
        );
        assert_eq!(
            serde_json::to_value(Response::planned(&p)).unwrap(),
            serde_json::json!({"action": "already-rolled-back", "blue_weight": 100, "green_weight": 0,
                               "reason": "green already 0, blue 100"})
        );
        assert_eq!(
            serde_json::to_value(Response::ignored("alarm x went to OK")).unwrap(),
            serde_json::json!({"action": "ignored", "blue_weight": null, "green_weight": null, "reason": "alarm x went to OK"})
        );
    }
}
