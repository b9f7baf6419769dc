//! Configuration of the bluegreen-rollback function, read once from the environment at init.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HOSTED_ZONE_ID` | required | zone holding the pair (with or without `/hostedzone/`) |
//! | `RECORD_NAME` | required | the weighted name, with or without the trailing dot |
//! | `RECORD_TYPE` | `A` | record type of the pair |
//! | `BLUE_SET_IDENTIFIER` / `GREEN_SET_IDENTIFIER` | `blue` / `green` | the two records |
//! | `BLUE_WEIGHT` | 100 | blue's weight after a rollback (1..=255) |
//! | `ALARM_NAMES` | any | comma-separated alarms allowed to roll back |
//! | `DRY_RUN` | false | decide and report, write nothing |
//! | `WAIT_FOR_SYNC` / `SYNC_TIMEOUT_SECS` | true / 60 | wait for the change to be INSYNC |

use std::time::Duration;

use crate::env::{ConfigError, Env};

const ZONE: &str = "HOSTED_ZONE_ID";
const NAME: &str = "RECORD_NAME";
const TYPE: &str = "RECORD_TYPE";
const BLUE: &str = "BLUE_SET_IDENTIFIER";
const GREEN: &str = "GREEN_SET_IDENTIFIER";
const BLUE_WEIGHT: &str = "BLUE_WEIGHT";
const ALARMS: &str = "ALARM_NAMES";
const DRY_RUN: &str = "DRY_RUN";
const WAIT: &str = "WAIT_FOR_SYNC";
const SYNC_TIMEOUT: &str = "SYNC_TIMEOUT_SECS";

/// Record types Route 53 can route by weight.
const RECORD_TYPES: [&str; 11] = [
    "A", "AAAA", "CAA", "CNAME", "DS", "MX", "NAPTR", "PTR", "SPF", "SRV", "TXT",
];

/// Validated configuration of the bluegreen-rollback function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackConfig {
    /// Hosted zone id without the `/hostedzone/` prefix.
    pub hosted_zone_id: String,
    /// Record name, lower case with a trailing dot (as Route 53 returns it).
    pub record_name: String,
    /// Record type, upper case.
    pub record_type: String,
    /// Set identifier of the blue (current) record.
    pub blue: String,
    /// Set identifier of the green (new) record.
    pub green: String,
    /// Blue's weight after a rollback.
    pub blue_weight: i64,
    /// Alarms allowed to roll back; empty means any alarm.
    pub alarm_names: Vec<String>,
    /// Decide and report, but write nothing.
    pub dry_run: bool,
    /// Wait for the change to reach INSYNC before returning.
    pub wait_for_sync: bool,
    /// How long to wait for INSYNC (capped by the invocation deadline).
    pub sync_timeout: Duration,
}

impl RollbackConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    /// Reads and validates `env`. Every error names the variable at fault.
    pub fn from(env: &Env<'_>) -> Result<Self, ConfigError> {
        let zone = env.required(
            ZONE,
            "set it to the id of the hosted zone holding the blue/green records, e.g. Z0123456789ABCDEFGHIJ",
        )?;
        let hosted_zone_id = zone.trim_start_matches("/hostedzone/").to_owned();
        if hosted_zone_id.is_empty()
            || !hosted_zone_id.chars().all(|c| c.is_ascii_alphanumeric())
            || hosted_zone_id.len() > 32
        {
            return Err(ConfigError::invalid(
                ZONE,
                &zone,
                "expected a hosted zone id such as Z0123456789ABCDEFGHIJ",
            ));
        }
        let name = env.required(NAME, "set it to the weighted record's name, e.g. app.example.com")?;
        let record_name = normalize_name(&name).map_err(|reason| ConfigError::invalid(NAME, &name, reason))?;
        let record_type = env.get(TYPE).unwrap_or_else(|| "A".into()).to_ascii_uppercase();
        if !RECORD_TYPES.contains(&record_type.as_str()) {
            return Err(ConfigError::invalid(
                TYPE,
                &record_type,
                format!("expected one of {}", RECORD_TYPES.join(", ")),
            ));
        }
        let blue = env.get(BLUE).unwrap_or_else(|| "blue".into());
        let green = env.get(GREEN).unwrap_or_else(|| "green".into());
        for (var, id) in [(BLUE, &blue), (GREEN, &green)] {
            if id.len() > 128 {
                return Err(ConfigError::invalid(
                    var,
                    id,
                    "a set identifier is at most 128 characters",
                ));
            }
        }
        if blue == green {
            return Err(ConfigError::invalid(GREEN, &green, format!("must differ from {BLUE}")));
        }
        let alarm_names: Vec<String> = env
            .get(ALARMS)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            hosted_zone_id,
            record_name,
            record_type,
            blue,
            green,
            blue_weight: env.integer(BLUE_WEIGHT, 100, 1..=255)? as i64,
            alarm_names,
            dry_run: env.flag(DRY_RUN, false)?,
            wait_for_sync: env.flag(WAIT, true)?,
            sync_timeout: env.seconds(SYNC_TIMEOUT, 60, 0..=900)?,
        })
    }
}

/// Lower-cases a DNS name and adds the trailing dot, as Route 53 lists names.
pub fn normalize_name(name: &str) -> Result<String, String> {
    let bare = name.trim_end_matches('.');
    if bare.is_empty() || bare.len() > 253 {
        return Err("expected a DNS name of 1 to 253 characters, e.g. app.example.com".into());
    }
    if bare.split('.').any(|label| label.is_empty() || label.len() > 63) {
        return Err("every label between dots must be 1 to 63 characters".into());
    }
    if bare.chars().any(|c| c.is_whitespace()) {
        return Err("a DNS name cannot contain spaces".into());
    }
    Ok(format!("{}.", bare.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<RollbackConfig, ConfigError> {
        RollbackConfig::from(&Env::from_pairs(pairs))
    }

    const REQUIRED: [(&str, &str); 2] = [(ZONE, "/hostedzone/Z0123456789ABC"), (NAME, "App.Example.com")];

    #[test]
    fn defaults() {
        let cfg = parse(&REQUIRED).unwrap();
        assert_eq!(
            cfg,
            RollbackConfig {
                hosted_zone_id: "Z0123456789ABC".into(),
                record_name: "app.example.com.".into(),
                record_type: "A".into(),
                blue: "blue".into(),
                green: "green".into(),
                blue_weight: 100,
                alarm_names: vec![],
                dry_run: false,
                wait_for_sync: true,
                sync_timeout: Duration::from_secs(60),
            }
        );
    }

    #[test]
    fn every_option() {
        let mut pairs = REQUIRED.to_vec();
        pairs.extend([
            (NAME, "api.example.com."),
            (TYPE, "cname"),
            (BLUE, "v1"),
            (GREEN, "v2"),
            (BLUE_WEIGHT, "255"),
            (ALARMS, "app-green-5xx, app-green-health,"),
            (DRY_RUN, "yes"),
            (WAIT, "false"),
            (SYNC_TIMEOUT, "5"),
        ]);
        let cfg = parse(&pairs).unwrap();
        assert_eq!(
            (cfg.record_name.as_str(), cfg.record_type.as_str()),
            ("api.example.com.", "CNAME")
        );
        assert_eq!(
            (cfg.blue.as_str(), cfg.green.as_str(), cfg.blue_weight),
            ("v1", "v2", 255)
        );
        assert_eq!(cfg.alarm_names, ["app-green-5xx", "app-green-health"]);
        assert!(cfg.dry_run && !cfg.wait_for_sync);
        assert_eq!(cfg.sync_timeout, Duration::from_secs(5));
    }

    #[test]
    fn every_misconfiguration_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(NAME, "a.example.com")], ZONE),
            (&[(ZONE, "Z1")], NAME),
            (&[(ZONE, "/hostedzone/"), (NAME, "a.example.com")], ZONE),
            (&[(ZONE, "Z1-bad"), (NAME, "a.example.com")], ZONE),
            (&[(ZONE, "Z1"), (NAME, "a..example.com")], NAME),
            (&[(ZONE, "Z1"), (NAME, "a b.example.com")], NAME),
            (&[(ZONE, "Z1"), (NAME, "a.example.com"), (TYPE, "SOA")], TYPE),
            (
                &[(ZONE, "Z1"), (NAME, "a.example.com"), (BLUE, "x"), (GREEN, "x")],
                GREEN,
            ),
            (
                &[(ZONE, "Z1"), (NAME, "a.example.com"), (BLUE_WEIGHT, "0")],
                BLUE_WEIGHT,
            ),
            (
                &[(ZONE, "Z1"), (NAME, "a.example.com"), (BLUE_WEIGHT, "256")],
                BLUE_WEIGHT,
            ),
            (&[(ZONE, "Z1"), (NAME, "a.example.com"), (DRY_RUN, "maybe")], DRY_RUN),
            (&[(ZONE, "Z1"), (NAME, "a.example.com"), (WAIT, "sometimes")], WAIT),
            (
                &[(ZONE, "Z1"), (NAME, "a.example.com"), (SYNC_TIMEOUT, "1000")],
                SYNC_TIMEOUT,
            ),
        ];
        for (pairs, var) in cases {
            let err = parse(pairs).expect_err(&format!("{pairs:?} should be rejected"));
            assert!(err.to_string().starts_with(var), "{pairs:?}: {err}");
        }
    }
}
