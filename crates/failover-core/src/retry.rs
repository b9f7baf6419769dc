//! Bounded exponential backoff, and the one "wait and look again" loop every function uses: a
//! replication group settling after a failover, a Route 53 change that conflicts or is still
//! being applied, a change waiting to be INSYNC.

use std::fmt::Display;
use std::time::Duration;

use tokio::time::Instant;

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

/// What one look found.
#[derive(Debug)]
pub enum Look<T, R> {
    /// Finished (successfully or not): stop looking.
    Done(T),
    /// Not yet, for this reason: wait and look again while the budget lasts.
    NotYet(R),
}

/// The budget ran out while the answer was still "not yet".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp<R> {
    /// The reason of the last look.
    pub last: R,
    /// How many looks were made.
    pub looks: u32,
    /// Time from the first look to giving up.
    pub waited: Duration,
}

/// Looks with `look` until it is done, waiting [`next_wait`] between looks, and gives up once
/// waiting longer would pass `until`. Each wait is logged once with its reason; `what` names
/// the thing waited for in that line.
pub async fn until<T, R: Display>(
    until: Instant,
    what: &str,
    mut look: impl AsyncFnMut(u32) -> Look<T, R>,
) -> Result<T, GaveUp<R>> {
    let started = Instant::now();
    let budget = until.saturating_duration_since(started);
    let mut attempt = 0;
    loop {
        let reason = match look(attempt).await {
            Look::Done(value) => return Ok(value),
            Look::NotYet(reason) => reason,
        };
        let Some(wait) = next_wait(attempt, started.elapsed(), budget) else {
            return Err(GaveUp {
                last: reason,
                looks: attempt + 1,
                waited: started.elapsed(),
            });
        };
        tracing::info!(what, reason = %reason, wait_ms = wait.as_millis() as u64, "not yet; looking again after a wait");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
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

    #[tokio::test(start_paused = true)]
    async fn looks_until_done_with_growing_waits() {
        let started = Instant::now();
        let mut seen = Vec::new();
        let out: Result<u32, GaveUp<&str>> = until(started + Duration::from_secs(60), "test", async |n| {
            seen.push(started.elapsed().as_millis());
            if n == 3 {
                Look::Done(n)
            } else {
                Look::NotYet("busy")
            }
        })
        .await;
        assert_eq!(out, Ok(3));
        assert_eq!(seen, [0, 500, 1500, 3500]);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_budget_with_the_last_reason() {
        let started = Instant::now();
        let out: Result<(), _> = until(started + Duration::from_secs(2), "test", async |n| Look::NotYet(n)).await;
        // looks at 0, 0.5 s, 1.5 s and 2 s (the last wait shortened to end at the budget)
        let gave_up = out.unwrap_err();
        assert_eq!((gave_up.last, gave_up.looks), (3, 4));
        assert_eq!(gave_up.waited, Duration::from_secs(2));
    }
}
