//! When to re-read the parameter: the cached endpoint, whether it is stale, and the rate limit
//! with jitter. Pure state, no I/O; [`crate::client`] drives it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::endpoint::Endpoint;

/// What the client should do before its next connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Use this endpoint: it is fresh, or it is stale but a re-read is not allowed yet.
    Use(Endpoint),
    /// Read the parameter now.
    Read,
    /// Nothing is cached and the last read failed less than the rate limit ago.
    Wait {
        /// Time until the next read is allowed.
        retry_in: Duration,
        /// Why the last read failed.
        last_error: String,
    },
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
    /// The read failed; the cached endpoint (if any) stays, still stale.
    Failed,
}

/// The cached endpoint and the bookkeeping of the rate limit.
#[derive(Debug, Default)]
pub(crate) struct RefreshState {
    endpoint: Option<Endpoint>,
    stale: bool,
    /// When the last read started, and how long after it the next one may start.
    last_read: Option<(Instant, Duration)>,
    last_error: Option<String>,
}

impl RefreshState {
    /// The cached endpoint, if any.
    pub(crate) fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// Reads when nothing was ever read, or when the endpoint is stale (or unknown) and the
    /// gap chosen at the last read has passed.
    pub(crate) fn decide(&self, now: Instant) -> Decision {
        let Some((at, gap)) = self.last_read else {
            return Decision::Read;
        };
        let needs_read = self.stale || self.endpoint.is_none();
        let elapsed = now.saturating_duration_since(at);
        if needs_read && elapsed >= gap {
            return Decision::Read;
        }
        match &self.endpoint {
            Some(e) => Decision::Use(e.clone()),
            None => Decision::Wait {
                retry_in: gap - elapsed,
                last_error: self.last_error.clone().unwrap_or_default(),
            },
        }
    }

    /// Records a read that started at `started`; the next read may start `gap` later. A
    /// successful read makes the endpoint fresh.
    pub(crate) fn record_read(
        &mut self,
        started: Instant,
        gap: Duration,
        result: Result<Endpoint, String>,
    ) -> ReadOutcome {
        self.last_read = Some((started, gap));
        match result {
            Ok(new) => {
                self.stale = false;
                self.last_error = None;
                match self.endpoint.replace(new.clone()) {
                    None => ReadOutcome::First,
                    Some(old) if old == new => ReadOutcome::Same,
                    Some(old) => ReadOutcome::Changed { from: old },
                }
            }
            Err(why) => {
                self.stale = true;
                self.last_error = Some(why);
                ReadOutcome::Failed
            }
        }
    }

    /// The endpoint just failed like a moved primary: look it up again when allowed.
    pub(crate) fn mark_stale(&mut self) {
        self.stale = true;
    }
}

/// `min` plus a random duration in `0..=jitter`. The randomness comes from the standard
/// library's per-instance hash keys and the clock; it only has to differ between processes.
pub(crate) fn jittered(min: Duration, jitter: Duration) -> Duration {
    let max = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
    if max == 0 {
        return min;
    }
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    let extra = hasher.finish() % max.saturating_add(1);
    min.saturating_add(Duration::from_nanos(extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap()
    }

    const GAP: Duration = Duration::from_secs(1);

    #[test]
    fn reads_first_then_uses_the_cache_while_fresh() {
        let t0 = Instant::now();
        let mut st = RefreshState::default();
        assert_eq!(st.decide(t0), Decision::Read);
        assert_eq!(st.record_read(t0, GAP, Ok(ep("a:1"))), ReadOutcome::First);
        // Fresh: never re-read, however long ago the read was.
        assert_eq!(st.decide(t0 + Duration::from_secs(3600)), Decision::Use(ep("a:1")));
    }

    #[test]
    fn a_stale_endpoint_is_re_read_only_after_the_gap() {
        let t0 = Instant::now();
        let mut st = RefreshState::default();
        st.record_read(t0, GAP, Ok(ep("a:1")));
        st.mark_stale();
        assert_eq!(st.decide(t0 + GAP / 2), Decision::Use(ep("a:1")));
        assert_eq!(st.decide(t0 + GAP), Decision::Read);
        let t1 = t0 + GAP;
        assert_eq!(
            st.record_read(t1, GAP, Ok(ep("b:2"))),
            ReadOutcome::Changed { from: ep("a:1") }
        );
        assert_eq!(st.decide(t1), Decision::Use(ep("b:2")));
        st.mark_stale();
        assert_eq!(st.decide(t1 + GAP - Duration::from_millis(1)), Decision::Use(ep("b:2")));
        assert_eq!(st.record_read(t1 + GAP, GAP, Ok(ep("b:2"))), ReadOutcome::Same);
    }

    #[test]
    fn a_failed_read_keeps_the_old_endpoint_and_stays_stale() {
        let t0 = Instant::now();
        let mut st = RefreshState::default();
        st.record_read(t0, GAP, Ok(ep("a:1")));
        st.mark_stale();
        let t1 = t0 + GAP;
        assert_eq!(st.record_read(t1, GAP, Err("throttled".into())), ReadOutcome::Failed);
        assert_eq!(st.decide(t1), Decision::Use(ep("a:1")));
        assert_eq!(st.decide(t1 + GAP), Decision::Read);
    }

    #[test]
    fn with_nothing_cached_a_failed_read_makes_callers_wait() {
        let t0 = Instant::now();
        let mut st = RefreshState::default();
        st.record_read(t0, GAP, Err("ParameterNotFound".into()));
        assert_eq!(
            st.decide(t0 + Duration::from_millis(400)),
            Decision::Wait {
                retry_in: Duration::from_millis(600),
                last_error: "ParameterNotFound".into()
            }
        );
        assert_eq!(st.decide(t0 + GAP), Decision::Read);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let min = Duration::from_millis(100);
        let jitter = Duration::from_millis(50);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(min, jitter)).collect();
        assert!(samples.iter().all(|d| *d >= min && *d <= min + jitter));
        let first = samples[0];
        assert!(samples.iter().any(|d| *d != first), "jitter never varied");
        assert_eq!(jittered(min, Duration::ZERO), min);
    }
}
