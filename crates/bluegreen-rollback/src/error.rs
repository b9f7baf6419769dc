//! The bluegreen-rollback's errors: why an invocation failed ([`HandlerError`]), each becoming
//! Lambda's `errorType`, and each saying whether a change may have been applied.

use failover_core::deadline::OutOfTime;
use failover_core::envelope::TriggerError;
use failover_core::sdk::CallError;
use lambda_runtime::Diagnostic;

use crate::config::{NAME, TYPE};

/// Why an invocation failed. A Route 53 change batch is atomic, so a failed change leaves both
/// records as they were; each text says whether an earlier submission of this invocation, which
/// got no clear answer, may have been applied.
#[derive(thiserror::Error)]
pub enum HandlerError {
    /// The event or command is not something we accept; nothing was written.
    #[error("{0}; nothing was written")]
    BadEvent(#[from] TriggerError),
    /// One of the two weighted records does not exist.
    #[error("the {color} record ({record}, set identifier {set_identifier:?}) was not found; {}: check {var}, {} and {}", written(*.maybe_applied), NAME.name, TYPE.name)]
    MissingRecord {
        /// `blue` or `green`.
        color: &'static str,
        /// The configuration variable naming its set identifier.
        var: &'static str,
        /// Name, type and hosted zone looked in.
        record: String,
        /// Set identifier looked for.
        set_identifier: String,
        /// Whether an earlier attempt of this invocation may have applied a change.
        maybe_applied: bool,
    },
    /// A record with the set identifier exists but is not a weighted record.
    #[error("the {color} record {set_identifier:?} has no weight (not a weighted record); {}", written(*.maybe_applied))]
    NotWeighted {
        /// `blue` or `green`.
        color: &'static str,
        /// Its set identifier.
        set_identifier: String,
        /// Whether an earlier attempt of this invocation may have applied a change.
        maybe_applied: bool,
    },
    /// A Route 53 call failed after retries.
    #[error(transparent)]
    Route53(#[from] CallError),
    /// A Route 53 call failed after an attempt of this invocation that got no clear answer.
    #[error("{0}; {MAYBE_APPLIED}")]
    Unclear(CallError),
    /// The next step would not fit before the Lambda deadline.
    #[error("{source}; {}: check the weights with {{\"action\":\"status\"}} and raise the function timeout", if *.maybe_applied { MAYBE_APPLIED } else { "no change was submitted" })]
    NotEnoughTime {
        /// The step that did not fit.
        source: OutOfTime,
        /// Whether an earlier attempt of this invocation may have applied the change.
        maybe_applied: bool,
    },
    /// The records kept changing, or Route 53 stayed busy, until the time ran out.
    #[error("gave up after {looks} attempts: {last}; {}: check the weights with {{\"action\":\"status\"}}", if *.maybe_applied { MAYBE_APPLIED } else { "no change was applied" })]
    GaveUp {
        /// The last reason to try again.
        last: String,
        /// How many times the pair was read.
        looks: u32,
        /// Whether an earlier attempt of this invocation may have applied the change.
        maybe_applied: bool,
    },
    /// The invocation deadline arrived while a step was in flight, before any change was accepted.
    #[error("ran out of time before the Lambda deadline{}; check the weights with {{\"action\":\"status\"}} and raise the function timeout", if *.maybe_applied { format!(": {MAYBE_APPLIED}") } else { String::new() })]
    OutOfTime {
        /// Whether a change was in flight, or an earlier attempt got no clear answer.
        maybe_applied: bool,
    },
}

/// What an error says when a change batch of this invocation got no clear answer: it may have
/// been applied, and only a new read tells.
/// "nothing was written", unless a change may have been applied.
fn written(maybe_applied: bool) -> &'static str {
    if maybe_applied {
        MAYBE_APPLIED
    } else {
        "nothing was written"
    }
}

impl HandlerError {
    /// This error as it reads after a submission of this invocation that got no clear answer:
    /// it may have been applied, and the text says so.
    pub(crate) fn after_unclear(self) -> Self {
        match self {
            Self::Route53(e) => Self::Unclear(e),
            Self::MissingRecord {
                color,
                var,
                record,
                set_identifier,
                ..
            } => Self::MissingRecord {
                color,
                var,
                record,
                set_identifier,
                maybe_applied: true,
            },
            Self::NotWeighted {
                color, set_identifier, ..
            } => Self::NotWeighted {
                color,
                set_identifier,
                maybe_applied: true,
            },
            other => other,
        }
    }
}

const MAYBE_APPLIED: &str =
    "a change this invocation submitted got no clear answer and may or may not have been applied";

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
            HandlerError::MissingRecord { .. } => "MissingRecord",
            HandlerError::NotWeighted { .. } => "NotWeighted",
            HandlerError::Route53(_) | HandlerError::Unclear(_) => "Route53Error",
            HandlerError::NotEnoughTime { .. } | HandlerError::OutOfTime { .. } => "OutOfTime",
            HandlerError::GaveUp { .. } => "GaveUp",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}
