//! The Lambda invocation deadline as a monotonic instant, so every wait can be capped by it.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Assumed when the runtime gives no deadline (local tools): Lambda's maximum timeout.
pub const MAX_INVOCATION: Duration = Duration::from_secs(900);

/// Deadlines before 2000-01-01 are not real deadlines: local runtimes send placeholders
/// (`cargo lambda watch` 1.9.2 always sends 600000, ten minutes after the epoch).
const PLAUSIBLE_AFTER_MS: u64 = 946_684_800_000;

/// Time kept back from the Lambda deadline so a handler returns its answer (or error) instead of
/// being killed mid-way.
pub const RESPONSE_MARGIN: Duration = Duration::from_secs(1);

/// When a handler must stop working on an invocation due at `deadline`: [`RESPONSE_MARGIN`]
/// before it.
pub fn respond_by(deadline: Instant) -> Instant {
    deadline.checked_sub(RESPONSE_MARGIN).unwrap_or(deadline)
}

/// Converts the runtime's deadline (milliseconds since the Unix epoch) into an [`Instant`].
/// A placeholder (0, or before the year 2000) means [`MAX_INVOCATION`]; a real deadline
/// already past gives now.
pub fn from_epoch_millis(deadline_ms: u64) -> Instant {
    if deadline_ms < PLAUSIBLE_AFTER_MS {
        return Instant::now() + MAX_INVOCATION;
    }
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    Instant::now() + deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_stop_one_margin_before_the_deadline() {
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(deadline - respond_by(deadline), RESPONSE_MARGIN);
    }

    #[test]
    fn unknown_or_placeholder_deadline_means_the_lambda_maximum() {
        // 0 from Context::default(); 600000 from `cargo lambda watch`
        for placeholder in [0, 600_000] {
            let left = from_epoch_millis(placeholder) - Instant::now();
            assert!(
                left > Duration::from_secs(899) && left <= MAX_INVOCATION,
                "{placeholder}: {left:?}"
            );
        }
    }

    #[test]
    fn a_real_deadline_is_honoured_and_a_past_one_is_now() {
        let in_30s = SystemTime::now() + Duration::from_secs(30);
        let ms = in_30s.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
        let left = from_epoch_millis(ms) - Instant::now();
        assert!(
            left > Duration::from_secs(29) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        let a_second_ago = SystemTime::now() - Duration::from_secs(1);
        let ms = a_second_ago.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(from_epoch_millis(ms) <= Instant::now());
    }
}
