//! The rollback function's decisions: what an invocation means, and which weights to write.
//!
//! Pure functions over the two records' weights. The shell reads the live records, asks
//! [`plan`], and submits at most one change batch. Two invariants hold for every plan:
//! a plan never writes blue 0 and green 0 at once (Route 53 then splits traffic evenly, the
//! opposite of a rollback), and a rollback that is already in place writes nothing (alarms,
//! SNS and Lambda retries may deliver the same ALARM twice).

use serde::Serialize;

use crate::bluegreen::config::RollbackConfig;
use crate::bluegreen::trigger::{Command, RollbackTrigger};
use crate::trigger::AlarmState;

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

/// Interprets a classified trigger under the configuration.
pub fn intent(trigger: &RollbackTrigger, cfg: &RollbackConfig) -> Intent {
    match trigger {
        RollbackTrigger::Command(Command::Rollback) => Intent::Rollback {
            cause: "rollback command".into(),
        },
        RollbackTrigger::Command(Command::Shift { green_percent }) => Intent::Shift {
            green_percent: *green_percent,
        },
        RollbackTrigger::Command(Command::Status) => Intent::Status,
        RollbackTrigger::Alarm(change) => {
            if !cfg.alarm_names.is_empty() && !cfg.alarm_names.contains(&change.alarm) {
                Intent::Ignore {
                    reason: format!(
                        "alarm {} is not in ALARM_NAMES ({})",
                        change.alarm,
                        cfg.alarm_names.join(", ")
                    ),
                }
            } else if change.state != AlarmState::Alarm {
                Intent::Ignore {
                    reason: format!("alarm {} went to {}; only ALARM rolls back", change.alarm, change.state),
                }
            } else {
                Intent::Rollback {
                    cause: format!("alarm {}", change.alarm),
                }
            }
        }
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
            reason: Some("DRY_RUN: nothing written".into()),
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
    use crate::trigger::AlarmChange;

    /// The configuration with every default, as the function reads it.
    fn cfg() -> RollbackConfig {
        let pairs = [("HOSTED_ZONE_ID", "Z1"), ("RECORD_NAME", "app.example.com")];
        let env = crate::env::Env::from_pairs(&pairs);
        RollbackConfig::from(&env).unwrap()
    }

    fn alarm(name: &str, state: AlarmState) -> RollbackTrigger {
        RollbackTrigger::Alarm(AlarmChange {
            alarm: name.into(),
            state,
            previous: None,
            dimensions: vec![],
        })
    }

    fn w(blue: i64, green: i64) -> Weights {
        Weights { blue, green }
    }

    #[test]
    fn only_an_allowed_alarm_entering_alarm_rolls_back() {
        let mut c = cfg();
        assert_eq!(
            intent(&alarm("app-green-5xx", AlarmState::Alarm), &c),
            Intent::Rollback {
                cause: "alarm app-green-5xx".into()
            }
        );
        for state in [AlarmState::Ok, AlarmState::InsufficientData] {
            assert!(matches!(
                intent(&alarm("app-green-5xx", state), &c),
                Intent::Ignore { .. }
            ));
        }
        c.alarm_names = vec!["app-green-5xx".into()];
        assert!(matches!(
            intent(&alarm("app-green-5xx", AlarmState::Alarm), &c),
            Intent::Rollback { .. }
        ));
        let Intent::Ignore { reason } = intent(&alarm("billing-cpu-high", AlarmState::Alarm), &c) else {
            panic!()
        };
        assert!(reason.contains("not in ALARM_NAMES"), "{reason}");
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
}
