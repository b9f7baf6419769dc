//! Typed reading of environment variables.
//!
//! Each function declares every variable it reads once, as a [`Var`] (name, default, meaning),
//! and reads it only through that declaration. The README's configuration table and the deploy
//! template's check are derived from the same declarations, so a name or a default lives in one
//! place. Each function validates its whole configuration at init, so a misconfigured function
//! fails its first cold start with a message that names the variable and the fix.

use std::cell::RefCell;
use std::time::Duration;

/// One environment variable a function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// Its name, e.g. `SETTLE_TIMEOUT_SECS`.
    pub name: &'static str,
    /// The value that applies when it is unset or blank, written as it would be set; `None`
    /// when there is no default (required, or optional without one).
    pub default: Option<&'static str>,
    /// What it means and what it accepts, in one or two sentences (the README table's cell).
    pub doc: &'static str,
}

impl Var {
    /// A variable without a default.
    pub const fn new(name: &'static str, doc: &'static str) -> Self {
        Self {
            name,
            default: None,
            doc,
        }
    }

    /// A variable with a default.
    pub const fn with_default(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self {
            name,
            default: Some(default),
            doc,
        }
    }
}

/// Renders declarations as a Markdown table (`variable | default | meaning`), the form the
/// crate READMEs quote.
pub fn markdown_table(vars: &[Var]) -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for v in vars {
        let default = match v.default {
            Some(d) => format!("`{d}`"),
            None => "none".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} |\n",
            v.name,
            v.doc.replace('|', "\\|")
        ));
    }
    out
}

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
    /// A variable is set to something we cannot use. The value is quoted unless it is secret.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The environment variable.
        var: &'static str,
        /// The value as found.
        value: String,
        /// Why it is rejected and what is accepted instead.
        reason: String,
    },
    /// Two variables (or forms of configuration) that exclude or need each other.
    #[error("{first} and {second} {hint}")]
    Conflict {
        /// One of the variables.
        first: &'static str,
        /// The other variable.
        second: &'static str,
        /// What is wrong and how to resolve it, continuing "FIRST and SECOND ...".
        hint: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub fn invalid(var: &Var, value: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            var: var.name,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// The variable at fault (the first one, for a conflict).
    pub fn var(&self) -> &'static str {
        match self {
            Self::Missing { var, .. } | Self::Invalid { var, .. } => var,
            Self::Conflict { first, .. } => first,
        }
    }
}

/// A source of environment variables: the process environment in production, a map in tests.
///
/// Values that are empty or only whitespace count as unset, because that is what a blank
/// template parameter produces. Every name looked up is recorded ([`Env::looked_up`]), so a
/// test can show that a function reads exactly the variables it declares.
pub struct Env<'a> {
    lookup: Box<Lookup<'a>>,
    looked_up: RefCell<Vec<&'static str>>,
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl<'a> Env<'a> {
    /// Reads the real process environment.
    pub fn process() -> Env<'static> {
        Env {
            lookup: Box::new(|name| std::env::var(name).ok()),
            looked_up: RefCell::default(),
        }
    }

    /// Reads from a fixed list of `(name, value)` pairs (tests, tools); a later pair wins.
    pub fn from_pairs(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Env {
            lookup: Box::new(move |name| {
                pairs
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }),
            looked_up: RefCell::default(),
        }
    }

    /// The names looked up so far, in order, without repeats.
    pub fn looked_up(&self) -> Vec<&'static str> {
        self.looked_up.borrow().clone()
    }

    /// The trimmed value of `var`, or `None` when unset or blank (the default is not applied).
    pub fn get(&self, var: &Var) -> Option<String> {
        let mut seen = self.looked_up.borrow_mut();
        if !seen.contains(&var.name) {
            seen.push(var.name);
        }
        (self.lookup)(var.name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `var`, else its default, else `None`.
    pub fn get_or_default(&self, var: &Var) -> Option<String> {
        self.get(var).or_else(|| var.default.map(str::to_owned))
    }

    /// The value of `var`, or [`ConfigError::Missing`] with `hint`.
    pub fn required(&self, var: &Var, hint: &str) -> Result<String, ConfigError> {
        self.get(var).ok_or_else(|| ConfigError::Missing {
            var: var.name,
            hint: hint.to_owned(),
        })
    }

    /// A boolean flag: `true/false`, `1/0`, `yes/no`, `on/off` (any case); its default (false
    /// when it declares none) when unset.
    pub fn flag(&self, var: &Var) -> Result<bool, ConfigError> {
        let Some(v) = self.get_or_default(var) else {
            return Ok(false);
        };
        match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::invalid(
                var,
                &v,
                "expected true or false (also accepted: 1/0, yes/no, on/off)",
            )),
        }
    }

    /// An integer in `range`; its default when unset. A variable read this way must declare a
    /// default.
    pub fn integer(&self, var: &Var, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
        let v = self
            .get_or_default(var)
            .unwrap_or_else(|| panic!("{} is read as a number but declares no default", var.name));
        let reason = || format!("expected a whole number from {} to {}", range.start(), range.end());
        let n: u64 = v.parse().map_err(|_| ConfigError::invalid(var, &v, reason()))?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::invalid(var, &v, reason()))
        }
    }

    /// A number of seconds in `range`; its default when unset.
    pub fn seconds(&self, var: &Var, range: std::ops::RangeInclusive<u64>) -> Result<Duration, ConfigError> {
        self.integer(var, range).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRY_RUN: Var = Var::with_default("DRY_RUN", "false", "decide, write nothing");
    const N: Var = Var::with_default("N", "5", "a number");
    const ZONE: Var = Var::new("HOSTED_ZONE_ID", "the zone");

    #[test]
    fn blank_values_count_as_unset() {
        // GIVEN a variable set to whitespace (what an empty template parameter produces)
        let env = Env::from_pairs(&[("DRY_RUN", "  ")]);
        // WHEN it is read as a flag THEN the default applies
        assert_eq!(env.flag(&DRY_RUN), Ok(false));
        assert_eq!(env.get(&DRY_RUN), None);
    }

    #[test]
    fn flags_accept_common_spellings_and_reject_others() {
        for (raw, want) in [("TRUE", true), ("1", true), ("yes", true), ("Off", false), ("0", false)] {
            let pairs = [("DRY_RUN", raw)];
            assert_eq!(Env::from_pairs(&pairs).flag(&DRY_RUN), Ok(want), "{raw}");
        }
        let pairs = [("DRY_RUN", "maybe")];
        let err = Env::from_pairs(&pairs).flag(&DRY_RUN).unwrap_err();
        assert!(err.to_string().starts_with("DRY_RUN=\"maybe\" is invalid"), "{err}");
    }

    #[test]
    fn integers_are_range_checked_and_name_the_variable() {
        for bad in ["0", "abc", "11", "-1"] {
            let pairs = [("N", bad)];
            let err = Env::from_pairs(&pairs).integer(&N, 1..=10).unwrap_err();
            assert_eq!(err.var(), "N", "{bad}");
        }
        let pairs = [("N", "7")];
        assert_eq!(Env::from_pairs(&pairs).integer(&N, 1..=10), Ok(7));
        assert_eq!(Env::from_pairs(&[]).integer(&N, 1..=10), Ok(5));
        assert_eq!(Env::from_pairs(&pairs).seconds(&N, 1..=10), Ok(Duration::from_secs(7)));
    }

    #[test]
    fn required_names_the_variable_and_the_fix() {
        let env = Env::from_pairs(&[]);
        let err = env.required(&ZONE, "set it to the zone id").unwrap_err();
        assert_eq!(err.to_string(), "HOSTED_ZONE_ID is not set: set it to the zone id");
    }

    #[test]
    fn every_lookup_is_recorded_once() {
        let env = Env::from_pairs(&[]);
        let _ = env.get(&ZONE);
        let _ = env.flag(&DRY_RUN);
        let _ = env.get(&ZONE);
        assert_eq!(env.looked_up(), ["HOSTED_ZONE_ID", "DRY_RUN"]);
    }

    #[test]
    fn the_markdown_table_quotes_name_default_and_meaning() {
        assert_eq!(
            markdown_table(&[ZONE, DRY_RUN]),
            "| variable | default | meaning |\n|---|---|---|\n\
             | `HOSTED_ZONE_ID` | none | the zone |\n\
             | `DRY_RUN` | `false` | decide, write nothing |\n"
        );
    }
}
