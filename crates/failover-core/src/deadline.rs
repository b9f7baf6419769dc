//! The Lambda invocation deadline as a monotonic instant, so every wait can be capped by it, and
//! the [`Budget`] a handler checks before each step: a step starts only if its worst case fits
//! in the time left.

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

/// `d` as a person reads it in a message: seconds with one decimal, the decimal dropped when it
/// is zero (`0 s`, `1.2 s`, `24 s`), never `1.4µs`.
pub fn seconds(d: Duration) -> String {
    let tenths = (d.as_secs_f64() * 10.0).round() as u64;
    if tenths.is_multiple_of(10) {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

/// One step of a handler (an AWS call, a Redis probe) and the longest it can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// What the step does, completing "not enough time left to ...".
    pub name: &'static str,
    /// Its worst case: the timeouts that bound it.
    pub worst: Duration,
}

impl Step {
    /// A step named `name` that takes at most `worst`.
    pub const fn new(name: &'static str, worst: Duration) -> Self {
        Self { name, worst }
    }
}

/// The sum of the worst cases of `steps`.
pub const fn worst_case(steps: &[Step]) -> Duration {
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < steps.len() {
        total = total.saturating_add(steps[i].worst);
        i += 1;
    }
    total
}

/// A step did not start because its worst case would pass the deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not enough time left before the Lambda deadline to {step} (it can take {}, {} were left)", seconds(*.needs), seconds(*.left))]
pub struct OutOfTime {
    /// The step that was not started.
    pub step: &'static str,
    /// Its worst case.
    pub needs: Duration,
    /// The time that was left.
    pub left: Duration,
}

/// The time an invocation may use: up to [`RESPONSE_MARGIN`] before the Lambda deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    stop: Instant,
}

impl Budget {
    /// The budget of an invocation due at `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Self {
            stop: respond_by(deadline),
        }
    }

    /// When work must stop so the answer still reaches Lambda.
    pub fn stop(&self) -> Instant {
        self.stop
    }

    /// The time left.
    pub fn left(&self) -> Duration {
        self.stop.saturating_duration_since(Instant::now())
    }

    /// `Ok` when `step`'s worst case fits in the time left.
    pub fn allows(&self, step: &Step) -> Result<(), OutOfTime> {
        let left = self.left();
        if step.worst <= left {
            Ok(())
        } else {
            Err(OutOfTime {
                step: step.name,
                needs: step.worst,
                left,
            })
        }
    }

    /// The latest instant from which `steps` can still all complete.
    pub fn last_start_of(&self, steps: &[Step]) -> Instant {
        self.stop.checked_sub(worst_case(steps)).unwrap_or_else(Instant::now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Step = Step::new("call", Duration::from_secs(10));

    #[test]
    fn a_step_starts_only_if_its_worst_case_fits() {
        let budget = Budget::new(Instant::now() + Duration::from_secs(12));
        assert_eq!(budget.allows(&CALL), Ok(()));
        let budget = Budget::new(Instant::now() + Duration::from_secs(10));
        let err = budget.allows(&CALL).unwrap_err();
        assert_eq!((err.step, err.needs), ("call", Duration::from_secs(10)));
        let text = err.to_string();
        assert!(
            text.starts_with("not enough time left before the Lambda deadline to call (it can take 10 s, ")
                && text.ends_with(" s were left)"),
            "{text}"
        );
    }

    #[test]
    fn seconds_read_as_a_person_writes_them() {
        let cases = [
            (Duration::from_nanos(1_400), "0 s"),
            (Duration::ZERO, "0 s"),
            (Duration::from_millis(49), "0 s"),
            (Duration::from_millis(50), "0.1 s"),
            (Duration::from_millis(1_240), "1.2 s"),
            (Duration::from_millis(1_960), "2 s"),
            (Duration::from_secs(24), "24 s"),
            (Duration::from_millis(10_500), "10.5 s"),
        ];
        for (d, text) in cases {
            assert_eq!(seconds(d), text, "{d:?}");
        }
    }

    #[test]
    fn worst_cases_add_up() {
        assert_eq!(
            worst_case(&[CALL, CALL, Step::new("probe", Duration::from_secs(4))]),
            Duration::from_secs(24)
        );
        let budget = Budget::new(Instant::now() + Duration::from_secs(60));
        let latest = budget.last_start_of(&[CALL, CALL]);
        assert_eq!(budget.stop() - latest, Duration::from_secs(20));
    }

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
