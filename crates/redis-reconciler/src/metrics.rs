//! What one invocation of the reconciler reports to CloudWatch (one EMF document, see
//! [`failover_core::metrics`]), and the pure function that derives it from the results.
//!
//! Publish latency is the reconciler's share of a recovery in production: from the moment the
//! event says the news happened (the failover notification, the alarm's state change, the
//! schedule's tick) to the parameter write that published the new primary.

use std::time::{Duration, SystemTime};

use failover_core::metrics::{latency, Dimensions};
use metrique::unit::Count;
use metrique::unit_of_work::metrics;

use crate::plan::Action;

/// Every metric name the reconciler emits, as the template's alarms and dashboard name them
/// (tests check the documents against this list, and the template against it).
pub const NAMES: &[&str] = &[
    "ColdStart",
    "TargetsSeen",
    "TargetsUpdated",
    "TargetsUnchanged",
    "TargetsWouldUpdate",
    "TargetsFailed",
    "Rejected",
    "SettleWait",
    "PublishLatency",
];

/// One invocation's document.
#[metrics(rename_all = "PascalCase")]
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileMetrics {
    /// `FunctionName`, `ReplicationGroupId` (one target only), `ColdStart`.
    #[metrics(flatten)]
    pub dimensions: Dimensions,
    /// Targets this invocation looked at.
    #[metrics(unit = Count)]
    pub targets_seen: u64,
    /// Targets whose parameter was written.
    #[metrics(unit = Count)]
    pub targets_updated: u64,
    /// Targets whose parameter already held the primary.
    #[metrics(unit = Count)]
    pub targets_unchanged: u64,
    /// Dry run: targets whose parameter would have been written.
    #[metrics(unit = Count)]
    pub targets_would_update: u64,
    /// Targets that could not be reconciled (the invocation fails).
    #[metrics(unit = Count)]
    pub targets_failed: u64,
    /// 1 when the event was refused (unrecognised, malformed, or naming a group this
    /// function does not manage); nothing was written.
    #[metrics(unit = Count)]
    pub rejected: u64,
    /// The longest any target waited for its group to settle (ms).
    pub settle_wait: Duration,
    /// From the event's time to the last parameter write (ms); absent when nothing was
    /// written or the event carries no time.
    pub publish_latency: Option<Duration>,
}

/// One target's outcome and timing, as the handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetFigures {
    /// What was done.
    pub action: Action,
    /// How long it waited for its group to settle.
    pub settle_wait: Duration,
    /// When its parameter was last written by this invocation.
    pub written_at: Option<SystemTime>,
}

/// The document's figures for `targets` (empty when the event concerned none of ours), or for
/// a refused event. `event_time` is [`failover_core::envelope::event_time`].
pub fn figures(
    dimensions: Dimensions,
    targets: &[TargetFigures],
    rejected: bool,
    event_time: Option<SystemTime>,
) -> ReconcileMetrics {
    let count = |a: Action| targets.iter().filter(|t| t.action == a).count() as u64;
    let last_write = targets.iter().filter_map(|t| t.written_at).max();
    ReconcileMetrics {
        dimensions,
        targets_seen: targets.len() as u64,
        targets_updated: count(Action::Updated),
        targets_unchanged: count(Action::Unchanged),
        targets_would_update: count(Action::WouldUpdate),
        targets_failed: count(Action::Failed),
        rejected: u64::from(rejected),
        settle_wait: targets.iter().map(|t| t.settle_wait).max().unwrap_or_default(),
        publish_latency: latency(event_time, last_write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> Dimensions {
        Dimensions {
            function_name: "f".into(),
            replication_group_id: None,
            cold_start: false,
        }
    }

    fn target(action: Action, wait_ms: u64, written: Option<u64>) -> TargetFigures {
        TargetFigures {
            action,
            settle_wait: Duration::from_millis(wait_ms),
            written_at: written.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    #[test]
    fn counts_each_action_and_times_the_last_write_from_the_event() {
        let event = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_000));
        let m = figures(
            dims(),
            &[
                target(Action::Updated, 300, Some(1_450)),
                target(Action::Updated, 0, Some(1_200)),
                target(Action::Unchanged, 0, None),
                target(Action::Failed, 900, None),
            ],
            false,
            event,
        );
        assert_eq!(
            (
                m.targets_seen,
                m.targets_updated,
                m.targets_unchanged,
                m.targets_would_update,
                m.targets_failed,
                m.rejected
            ),
            (4, 2, 1, 0, 1, 0)
        );
        assert_eq!(m.settle_wait, Duration::from_millis(900));
        assert_eq!(m.publish_latency, Some(Duration::from_millis(450)));
    }

    #[test]
    fn no_latency_without_a_write_an_event_time_or_a_sane_clock() {
        let at = |ms| Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        let unchanged = [target(Action::Unchanged, 0, None)];
        assert_eq!(figures(dims(), &unchanged, false, at(1)).publish_latency, None);
        let written = [target(Action::Updated, 0, Some(5_000))];
        assert_eq!(figures(dims(), &written, false, None).publish_latency, None);
        assert_eq!(figures(dims(), &written, false, at(6_000)).publish_latency, None);
        let refused = figures(dims(), &[], true, at(1));
        assert_eq!((refused.targets_seen, refused.rejected), (0, 1));
    }
}
