//! Bounded exponential backoff, shared by every "wait and look again" loop: a replication group
//! settling after a failover, a Route 53 change that is still being applied.

use std::time::Duration;

/// The first wait.
pub const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(4);

/// How long to wait before looking again, or `None` to give up.
///
/// `attempt` counts the looks already repeated, `waited` the time spent since the first look,
/// `budget` the total time allowed (already capped by the invocation deadline). Waits double
/// from [`FIRST_WAIT`] up to [`MAX_WAIT`]; the last wait is shortened so the final look happens
/// exactly at the budget rather than past it.
pub fn next_wait(attempt: u32, waited: Duration, budget: Duration) -> Option<Duration> {
    if waited >= budget {
        return None;
    }
    let backoff = FIRST_WAIT.saturating_mul(2u32.saturating_pow(attempt)).min(MAX_WAIT);
    Some(backoff.min(budget - waited))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_then_cap_and_never_pass_the_budget() {
        let budget = Duration::from_secs(10);
        let mut waited = Duration::ZERO;
        let mut waits = Vec::new();
        let mut attempt = 0;
        while let Some(w) = next_wait(attempt, waited, budget) {
            waits.push(w.as_millis());
            waited += w;
            attempt += 1;
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 2500]);
        assert_eq!(waited, budget);
    }

    #[test]
    fn no_budget_means_no_wait_and_huge_attempts_do_not_overflow() {
        assert_eq!(next_wait(0, Duration::ZERO, Duration::ZERO), None);
        assert_eq!(next_wait(40, Duration::ZERO, Duration::from_secs(60)), Some(MAX_WAIT));
    }
}
