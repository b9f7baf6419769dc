//! The redis-reconciler's errors, one layer each: why a target failed ([`TargetError`]), why a
//! group cannot be published yet ([`NotReady`]), how far a target got ([`Progress`]), and why an
//! invocation failed ([`HandlerError`]), which becomes Lambda's `errorType`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use failover_core::deadline::{seconds, OutOfTime};
use failover_core::envelope::TriggerError;
use failover_core::retry;
use failover_core::sdk::CallError;
use lambda_runtime::Diagnostic;

use crate::config::SETTLE;
use crate::elasticache::DescribeError;
use crate::handler::{MAX_WRITES, TIMEOUT_RESERVE};
use crate::plan::{TargetResult, UnmanagedGroup};
use crate::probe::RoleCheck;
use crate::topology::PickError;

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
    /// A call made once for several targets (the first describe) failed.
    #[error(transparent)]
    Batch(Arc<TargetError>),
    /// `VERIFY_ROLE` could not read its AUTH token.
    #[error(transparent)]
    Token(Arc<CallError>),
    /// The group's description cannot be published (e.g. an unexpected shape).
    #[error(transparent)]
    Pick(PickError),
    /// The group stayed mid-failover (or its candidate unconfirmed) for the whole settle budget.
    #[error("{source}; still unsettled after {}{}; the next trigger will look again", seconds(*.waited), if !*.by_deadline {
        format!(" ({})", SETTLE.name)
    } else if *.waited < retry::FIRST_WAIT {
        format!("; the function timeout left no time to wait for the group to settle: set it to at least {} + {}", SETTLE.name, seconds(TIMEOUT_RESERVE))
    } else {
        format!("; the function timeout left no more time to wait: set it to at least {} + {}", SETTLE.name, seconds(TIMEOUT_RESERVE))
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
    /// The first look stopped listing replication groups before it found this one, for lack of
    /// time.
    #[error("not reached: the listing of replication groups stopped before it found this group, to keep the Lambda deadline; the parameter was not changed: raise the function timeout")]
    NotReached,
    /// The primary kept moving while this invocation wrote: [`MAX_WRITES`] writes, then left
    /// to the next trigger.
    #[error("the primary kept moving while the parameter was written ({MAX_WRITES} writes); the group now names {now}; the next trigger will look again")]
    KeptMoving {
        /// The node the last describe names.
        now: String,
    },
    /// The invocation's time ran out while a step was in flight.
    #[error("ran out of time before the Lambda deadline while {}; raise the function timeout to at least {} + {}", .progress.describe(), SETTLE.name, seconds(TIMEOUT_RESERVE))]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// A `PutParameter` is in flight.
    pub writing: bool,
    /// The parameter's value when first read, as [`shown`](crate::plan::shown) (`None`: missing or not read yet).
    pub previous: Option<String>,
    /// The value this invocation last wrote, as [`shown`](crate::plan::shown); `None` until a write is accepted.
    pub wrote: Option<String>,
    /// The node of that value.
    pub wrote_node: Option<String>,
    /// Time spent settling: describing again and waiting while the group is mid-failover.
    pub settle_wait: Duration,
    /// When the last write of this invocation was accepted.
    pub written_at: Option<SystemTime>,
}

impl Progress {
    fn describe(&self) -> &'static str {
        match (self.writing, self.wrote.is_some()) {
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
