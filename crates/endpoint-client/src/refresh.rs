//! When to read the parameter: the cached endpoint and the read schedule. Pure state, no I/O;
//! [`crate::client`] drives it and does the reads in the background.
//!
//! The schedule is fast for one process and gentle for a fleet:
//!
//! - After a failover-class error the first re-read comes at a uniformly random moment within
//!   [`Schedule::first_window`] (full jitter: a fleet that fails at the same instant spreads its
//!   reads over the window).
//! - While the value read has not changed, each later read waits a random time in `[d/2, d]`,
//!   where `d` doubles from `2 × first_window` up to [`Schedule::max_interval`]; a throttled
//!   read jumps straight to `2 × max_interval`.
//! - A new value, or a command that succeeds again, ends the episode: reads stop until the next
//!   failover-class error or the next revalidation.
//! - Without errors, the parameter is re-read every `[revalidate/2, revalidate]`, so a client
//!   that only reads (replicas answer reads) still moves to the new primary in bounded time.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::endpoint::Endpoint;

/// The knobs of the read schedule (from [`crate::ClientConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// The first re-read after a failover-class error comes within this window.
    pub first_window: Duration,
    /// Cap of the wait between two re-reads while the value has not changed.
    pub max_interval: Duration,
    /// Periodic re-read without errors; `ZERO` turns it off.
    pub revalidate: Duration,
}

impl Schedule {
    /// The upper bound `d` of the wait after the `reads`-th read of an episode (1-based).
    pub(crate) fn bound(&self, reads: u32) -> Duration {
        let doubled = self.first_window.saturating_mul(2u32.saturating_pow(reads.min(20)));
        doubled.min(self.max_interval).max(Duration::from_millis(1))
    }
}

/// How a read ended, as far as the schedule cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadResult {
    /// The parameter holds this (usable) endpoint.
    Value(Endpoint),
    /// SSM throttled the read: back off harder.
    Throttled(String),
    /// Any other failure (timeout, refused, a value that is not usable).
    Failed(String),
}

/// What a read changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// The first endpoint this client learnt.
    First,
    /// The same value as before.
    Same,
    /// A new endpoint: the primary moved.
    Changed {
        /// The endpoint before the read.
        from: Endpoint,
    },
    /// The read failed; the cached endpoint (if any) stays.
    Failed,
}

/// The cached endpoint and when to read next.
#[derive(Debug)]
pub(crate) struct RefreshState {
    schedule: Schedule,
    endpoint: Option<Endpoint>,
    /// Reads made in the current episode (since the failover-class error that opened it);
    /// `None` when no episode is open.
    episode: Option<u32>,
    /// When the next read is due; `None`: no read is planned.
    next_read: Option<Instant>,
    last_error: Option<String>,
}

impl RefreshState {
    /// Nothing known yet: the first call reads at once.
    pub(crate) fn new(schedule: Schedule, now: Instant) -> Self {
        Self {
            schedule,
            endpoint: None,
            episode: None,
            next_read: Some(now),
            last_error: None,
        }
    }

    /// The cached endpoint, if any.
    pub(crate) fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// Whether an episode (failover-class error, not yet resolved) is open.
    pub(crate) fn in_episode(&self) -> bool {
        self.episode.is_some()
    }

    /// Why the last read failed, if it did.
    pub(crate) fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Whether a read is due at `now`.
    pub(crate) fn read_due(&self, now: Instant) -> bool {
        self.next_read.is_some_and(|at| now >= at)
    }

    /// Time until the next planned read, if one is planned.
    pub(crate) fn next_read_in(&self, now: Instant) -> Option<Duration> {
        self.next_read.map(|at| at.saturating_duration_since(now))
    }

    /// A failover-class error on the cached endpoint: open an episode (if none is open) with
    /// its first read somewhere in the first window.
    pub(crate) fn failover_signal(&mut self, now: Instant, random: f64) {
        if self.episode.is_none() {
            self.episode = Some(0);
            let first = self.schedule.first_window.mul_f64(random.clamp(0.0, 1.0));
            self.next_read = Some(self.next_read.map_or(now + first, |at| at.min(now + first)));
        }
    }

    /// The cached endpoint works (a command succeeded): close the episode.
    pub(crate) fn healthy(&mut self, now: Instant, random: f64) {
        if self.episode.take().is_some() {
            self.plan_revalidation(now, random);
        }
    }

    /// Records a read that ended at `now`.
    pub(crate) fn record(&mut self, now: Instant, result: ReadResult, random: f64) -> ReadOutcome {
        let (why, throttled) = match result {
            ReadResult::Value(new) => return self.record_value(now, new, random),
            ReadResult::Throttled(why) => (why, true),
            ReadResult::Failed(why) => (why, false),
        };
        self.last_error = Some(why);
        if self.episode.is_none() && self.endpoint.is_some() {
            // A revalidation failed while the endpoint works: try at the next one.
            self.plan_revalidation(now, random);
            return ReadOutcome::Failed;
        }
        let reads = self.episode.map_or(1, |r| r + 1);
        self.episode = Some(reads);
        let bound = if throttled {
            self.schedule.max_interval.saturating_mul(2)
        } else {
            self.schedule.bound(reads)
        };
        self.wait(now, bound, random);
        ReadOutcome::Failed
    }

    fn record_value(&mut self, now: Instant, new: Endpoint, random: f64) -> ReadOutcome {
        self.last_error = None;
        let outcome = match self.endpoint.replace(new.clone()) {
            None => ReadOutcome::First,
            Some(old) if old == new => ReadOutcome::Same,
            Some(old) => ReadOutcome::Changed { from: old },
        };
        match (&outcome, self.episode) {
            // Still in an episode on the same value: look again, later each time.
            (ReadOutcome::Same, Some(reads)) => {
                self.episode = Some(reads + 1);
                self.wait(now, self.schedule.bound(reads + 1), random);
            }
            _ => {
                self.episode = None;
                self.plan_revalidation(now, random);
            }
        }
        outcome
    }

    /// The next read comes `[bound/2, bound]` after `now`.
    fn wait(&mut self, now: Instant, bound: Duration, random: f64) {
        self.next_read = Some(now + bound.mul_f64(0.5 + random.clamp(0.0, 1.0) / 2.0));
    }

    fn plan_revalidation(&mut self, now: Instant, random: f64) {
        let every = self.schedule.revalidate;
        self.next_read = None;
        if !every.is_zero() {
            self.wait(now, every, random);
        }
    }
}

/// A uniformly distributed number in `[0, 1)`. The randomness comes from the standard library's
/// per-instance hash keys and the clock; it only has to differ between processes and calls.
pub(crate) fn random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap()
    }

    const MS: Duration = Duration::from_millis(1);

    fn schedule() -> Schedule {
        Schedule {
            first_window: 100 * MS,
            max_interval: 800 * MS,
            revalidate: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_first_use_reads_then_only_revalidation_is_planned() {
        let t0 = Instant::now();
        let mut st = RefreshState::new(schedule(), t0);
        assert!(st.read_due(t0));
        assert_eq!(st.record(t0, ReadResult::Value(ep("a:1")), 0.0), ReadOutcome::First);
        assert!(!st.read_due(t0 + Duration::from_secs(29)));
        assert!(st.read_due(t0 + Duration::from_secs(30)));
        // With random = 1 the revalidation waits the whole interval.
        st.record(t0, ReadResult::Value(ep("a:1")), 1.0);
        assert!(!st.read_due(t0 + Duration::from_secs(59)));
    }

    #[test]
    fn a_failure_reads_within_the_first_window_then_backs_off_to_the_cap() {
        let t0 = Instant::now();
        let mut st = RefreshState::new(schedule(), t0);
        st.record(t0, ReadResult::Value(ep("a:1")), 0.5);
        st.failover_signal(t0, 1.0);
        assert_eq!(st.next_read_in(t0), Some(100 * MS));
        // A second signal in the same episode does not postpone or repeat the read.
        st.failover_signal(t0 + 50 * MS, 0.0);
        assert_eq!(st.next_read_in(t0), Some(100 * MS));
        // Unchanged values: the bound doubles, 200, 400, 800, then stays at the cap; with
        // random = 1 the wait is the bound, with 0 half of it.
        let mut now = t0 + 100 * MS;
        for (i, bound) in [200, 400, 800, 800, 800].into_iter().enumerate() {
            let random = if i % 2 == 0 { 1.0 } else { 0.0 };
            assert_eq!(st.record(now, ReadResult::Value(ep("a:1")), random), ReadOutcome::Same);
            let wait = if i % 2 == 0 { bound } else { bound / 2 };
            assert_eq!(st.next_read_in(now), Some(wait * MS), "read {}", i + 1);
            now += wait * MS;
        }
    }

    #[test]
    fn a_new_value_or_a_healthy_connection_ends_the_episode() {
        let t0 = Instant::now();
        let mut st = RefreshState::new(schedule(), t0);
        st.record(t0, ReadResult::Value(ep("a:1")), 0.5);
        st.failover_signal(t0, 0.5);
        let t1 = t0 + 50 * MS;
        assert_eq!(
            st.record(t1, ReadResult::Value(ep("b:2")), 0.0),
            ReadOutcome::Changed { from: ep("a:1") }
        );
        assert_eq!(st.endpoint(), Some(&ep("b:2")));
        assert!(!st.read_due(t1 + Duration::from_secs(29)));
        st.failover_signal(t1, 0.0);
        assert!(st.read_due(t1));
        st.healthy(t1, 0.0);
        assert!(!st.read_due(t1 + Duration::from_secs(29)));
    }

    #[test]
    fn a_failed_or_throttled_read_keeps_the_cached_endpoint_and_backs_off() {
        let t0 = Instant::now();
        let mut st = RefreshState::new(schedule(), t0);
        st.record(t0, ReadResult::Value(ep("a:1")), 0.5);
        st.failover_signal(t0, 0.0);
        assert_eq!(
            st.record(t0, ReadResult::Failed("timeout".into()), 1.0),
            ReadOutcome::Failed
        );
        assert_eq!(st.endpoint(), Some(&ep("a:1")));
        assert_eq!(st.next_read_in(t0), Some(200 * MS));
        assert_eq!(
            st.record(
                t0,
                ReadResult::Throttled("ThrottlingException: Rate exceeded".into()),
                1.0
            ),
            ReadOutcome::Failed
        );
        assert_eq!(st.endpoint(), Some(&ep("a:1")));
        assert_eq!(st.next_read_in(t0), Some(1600 * MS));
        assert_eq!(st.last_error(), Some("ThrottlingException: Rate exceeded"));
    }

    #[test]
    fn with_nothing_cached_failed_reads_are_retried_on_the_backoff() {
        let t0 = Instant::now();
        let mut st = RefreshState::new(schedule(), t0);
        st.record(t0, ReadResult::Failed("ParameterNotFound".into()), 1.0);
        assert_eq!(st.endpoint(), None);
        assert_eq!(st.next_read_in(t0), Some(200 * MS));
        st.record(t0, ReadResult::Failed("ParameterNotFound".into()), 1.0);
        assert_eq!(st.next_read_in(t0), Some(400 * MS));
    }

    #[test]
    fn random_is_in_the_unit_interval_and_varies() {
        let samples: Vec<f64> = (0..200).map(|_| random()).collect();
        assert!(samples.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(samples.iter().any(|r| *r != samples[0]));
    }
}
