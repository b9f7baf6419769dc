//! The Lambda invocation deadline as a monotonic instant, so every wait can be capped by it.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Assumed when the runtime gives no deadline (local tools): Lambda's maximum timeout.
pub const MAX_INVOCATION: Duration = Duration::from_secs(900);

/// Converts the runtime's deadline (milliseconds since the Unix epoch; 0 when unknown) into an
/// [`Instant`]. A deadline already past gives now.
pub fn from_epoch_millis(deadline_ms: u64) -> Instant {
    if deadline_ms == 0 {
        return Instant::now() + MAX_INVOCATION;
    }
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    Instant::now() + deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_deadline_means_the_lambda_maximum() {
        let left = from_epoch_millis(0) - Instant::now();
        assert!(left > Duration::from_secs(899) && left <= MAX_INVOCATION, "{left:?}");
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
        assert!(from_epoch_millis(1) <= Instant::now());
    }
}
