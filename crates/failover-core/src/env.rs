//! Typed reading of environment variables.
//!
//! Both functions validate their whole configuration once, at init, through these helpers, so a
//! misconfigured function fails its first cold start with a message that names the variable and
//! the fix, instead of failing later in the middle of a failover.

use std::time::Duration;

/// A configuration problem found at init. Every variant names the variable at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{var} is not set: {hint}")]
    Missing {
        /// The environment variable.
        var: &'static str,
        /// What to set it to.
        hint: String,
    },
    /// A variable is set to something we cannot use.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The environment variable.
        var: &'static str,
        /// The value as found.
        value: String,
        /// Why it is rejected and what is accepted instead.
        reason: String,
    },
    /// Two variables (or forms of configuration) that exclude each other are both set.
    #[error("{first} and {second} are both set: {hint}")]
    Conflict {
        /// One of the variables.
        first: &'static str,
        /// The other variable.
        second: &'static str,
        /// How to resolve it.
        hint: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub fn invalid(var: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            var,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A source of environment variables: the process environment in production, a map in tests.
///
/// Values that are empty or only whitespace count as unset, because that is what a blank
/// template parameter produces.
pub struct Env<'a> {
    lookup: Box<Lookup<'a>>,
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl<'a> Env<'a> {
    /// Reads the real process environment.
    pub fn process() -> Env<'static> {
        Env {
            lookup: Box::new(|name| std::env::var(name).ok()),
        }
    }

    /// Reads from a fixed list of `(name, value)` pairs (tests, tools).
    pub fn from_pairs(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Env {
            lookup: Box::new(move |name| {
                pairs
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }),
        }
    }

    /// The trimmed value of `var`, or `None` when unset or blank.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `var`, or [`ConfigError::Missing`] with `hint`.
    pub fn required(&self, var: &'static str, hint: &str) -> Result<String, ConfigError> {
        self.get(var).ok_or_else(|| ConfigError::Missing {
            var,
            hint: hint.to_owned(),
        })
    }

    /// A boolean flag: `true/false`, `1/0`, `yes/no`, `on/off` (any case); `default` when unset.
    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::invalid(
                    var,
                    &v,
                    "expected true or false (also accepted: 1/0, yes/no, on/off)",
                )),
            },
        }
    }

    /// An integer in `range`; `default` when unset.
    pub fn integer(
        &self,
        var: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(v) = self.get(var) else {
            return Ok(default);
        };
        let reason = || format!("expected a whole number from {} to {}", range.start(), range.end());
        let n: u64 = v.parse().map_err(|_| ConfigError::invalid(var, &v, reason()))?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::invalid(var, &v, reason()))
        }
    }

    /// A number of seconds in `range`; `default` when unset.
    pub fn seconds(
        &self,
        var: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.integer(var, default, range).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        // GIVEN a variable set to whitespace (what an empty template parameter produces)
        let env = Env::from_pairs(&[("DRY_RUN", "  ")]);
        // WHEN it is read as a flag THEN the default applies
        assert_eq!(env.flag("DRY_RUN", false), Ok(false));
        assert_eq!(env.get("DRY_RUN"), None);
    }

    #[test]
    fn flags_accept_common_spellings_and_reject_others() {
        for (raw, want) in [("TRUE", true), ("1", true), ("yes", true), ("Off", false), ("0", false)] {
            let pairs = [("DRY_RUN", raw)];
            assert_eq!(Env::from_pairs(&pairs).flag("DRY_RUN", false), Ok(want), "{raw}");
        }
        let pairs = [("DRY_RUN", "maybe")];
        let err = Env::from_pairs(&pairs).flag("DRY_RUN", false).unwrap_err();
        assert!(err.to_string().starts_with("DRY_RUN=\"maybe\" is invalid"), "{err}");
    }

    #[test]
    fn integers_are_range_checked_and_name_the_variable() {
        let pairs = [("N", "0"), ("M", "abc"), ("K", "7")];
        let env = Env::from_pairs(&pairs);
        assert!(matches!(
            env.integer("N", 5, 1..=10),
            Err(ConfigError::Invalid { var: "N", .. })
        ));
        assert!(matches!(
            env.integer("M", 5, 1..=10),
            Err(ConfigError::Invalid { var: "M", .. })
        ));
        assert_eq!(env.integer("K", 5, 1..=10), Ok(7));
        assert_eq!(env.integer("UNSET", 5, 1..=10), Ok(5));
        assert_eq!(env.seconds("K", 5, 1..=10), Ok(Duration::from_secs(7)));
    }

    #[test]
    fn required_names_the_variable_and_the_fix() {
        let env = Env::from_pairs(&[]);
        let err = env.required("HOSTED_ZONE_ID", "set it to the zone id").unwrap_err();
        assert_eq!(err.to_string(), "HOSTED_ZONE_ID is not set: set it to the zone id");
    }
}
