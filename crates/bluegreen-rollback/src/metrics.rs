//! What one invocation of the rollback reports to CloudWatch (one EMF document, see
//! [`failover_core::metrics`]), and the pure function that derives it from the outcome.
//!
//! Rollback latency is from the alarm's state change (as the event states it) to Route 53
//! accepting the change: the function's share of how long green kept its traffic.

use std::time::{Duration, SystemTime};

use failover_core::metrics::{latency, Dimensions};
use metrique::unit::Count;
use metrique::unit_of_work::metrics;

use crate::plan::{Outcome, Response};

/// Every metric name the rollback emits, as the template's alarms and dashboard name them
/// (tests check the documents against this list, and the template against it).
pub const NAMES: &[&str] = &[
    "ColdStart",
    "RolledBack",
    "Shifted",
    "AlreadyRolledBack",
    "Ignored",
    "DryRun",
    "Failed",
    "RollbackLatency",
    "TimeToInsync",
];

/// One invocation's document. Exactly one of the counts is 1 unless the invocation only
/// reported the weights (`status`).
#[metrics(rename_all = "PascalCase")]
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackMetrics {
    /// `FunctionName`, `ColdStart`.
    #[metrics(flatten)]
    pub dimensions: Dimensions,
    /// Traffic was sent back to blue.
    #[metrics(unit = Count)]
    pub rolled_back: u64,
    /// The weights were shifted on command.
    #[metrics(unit = Count)]
    pub shifted: u64,
    /// Green already had no traffic; nothing written.
    #[metrics(unit = Count)]
    pub already_rolled_back: u64,
    /// The event asked for nothing (another alarm, OK, another account); nothing written.
    #[metrics(unit = Count)]
    pub ignored: u64,
    /// A dry run decided on a change and wrote nothing.
    #[metrics(unit = Count)]
    pub dry_run: u64,
    /// The invocation failed (bad event, missing records, Route 53, out of time).
    #[metrics(unit = Count)]
    pub failed: u64,
    /// From the alarm's state change to Route 53 accepting the change (ms); absent when no
    /// change was made or the event carries no time.
    pub rollback_latency: Option<Duration>,
    /// From the change being accepted to INSYNC (ms), when the function waited and saw it.
    pub time_to_insync: Option<Duration>,
}

/// The document's figures for an invocation that ended with `outcome` (`None`: it failed).
/// `event_time` is [`failover_core::envelope::event_time`].
pub fn figures(dimensions: Dimensions, outcome: Option<&Response>, event_time: Option<SystemTime>) -> RollbackMetrics {
    let is = |o: &[Outcome]| u64::from(outcome.is_some_and(|r| o.contains(&r.action)));
    RollbackMetrics {
        dimensions,
        rolled_back: is(&[Outcome::RolledBack]),
        shifted: is(&[Outcome::Shifted]),
        already_rolled_back: is(&[Outcome::AlreadyRolledBack]),
        ignored: is(&[Outcome::Ignored]),
        dry_run: is(&[Outcome::WouldRollBack, Outcome::WouldShift]),
        failed: u64::from(outcome.is_none()),
        rollback_latency: latency(event_time, outcome.and_then(|r| r.accepted_at)),
        time_to_insync: outcome.and_then(|r| r.insync_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> Dimensions {
        Dimensions {
            function_name: "f".into(),
            replication_group_id: None,
            cold_start: true,
        }
    }

    fn response(action: Outcome, accepted_ms: Option<u64>) -> Response {
        let mut r = Response::ignored("x");
        r.action = action;
        r.accepted_at = accepted_ms.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        r.insync_after = accepted_ms.map(|_| Duration::from_millis(40));
        r
    }

    #[test]
    fn one_count_per_outcome_and_the_latency_from_the_alarm() {
        let alarm = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_000));
        let counts = |m: &RollbackMetrics| {
            [
                m.rolled_back,
                m.shifted,
                m.already_rolled_back,
                m.ignored,
                m.dry_run,
                m.failed,
            ]
        };
        let m = figures(dims(), Some(&response(Outcome::RolledBack, Some(1_250))), alarm);
        assert_eq!(counts(&m), [1, 0, 0, 0, 0, 0]);
        assert_eq!(m.rollback_latency, Some(Duration::from_millis(250)));
        assert_eq!(m.time_to_insync, Some(Duration::from_millis(40)));
        for (outcome, want) in [
            (Outcome::Shifted, [0, 1, 0, 0, 0, 0]),
            (Outcome::AlreadyRolledBack, [0, 0, 1, 0, 0, 0]),
            (Outcome::Ignored, [0, 0, 0, 1, 0, 0]),
            (Outcome::WouldRollBack, [0, 0, 0, 0, 1, 0]),
            (Outcome::WouldShift, [0, 0, 0, 0, 1, 0]),
            (Outcome::Status, [0, 0, 0, 0, 0, 0]),
        ] {
            let m = figures(dims(), Some(&response(outcome, None)), alarm);
            assert_eq!(counts(&m), want, "{outcome:?}");
            assert_eq!(m.rollback_latency, None);
        }
        let failed = figures(dims(), None, alarm);
        assert_eq!(counts(&failed), [0, 0, 0, 0, 0, 1]);
        let early = figures(dims(), Some(&response(Outcome::RolledBack, Some(500))), alarm);
        assert_eq!(early.rollback_latency, None);
    }
}
