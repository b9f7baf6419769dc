//! Configuration of the bluegreen-rollback function, read once from the environment at init.
//!
//! [`VARIABLES`] declares every variable the function reads; the crate README's configuration
//! table and the deploy template's check are derived from it.

use std::time::Duration;

use failover_core::env::{ConfigError, Env, Var};

/// `HOSTED_ZONE_ID`.
pub const ZONE: Var = Var::new(
    "HOSTED_ZONE_ID",
    "Hosted zone of the pair, e.g. `Z0123456789ABCDEFGHIJ` (a `/hostedzone/` prefix is accepted).",
);
/// `RECORD_NAME`.
pub const NAME: Var = Var::new(
    "RECORD_NAME",
    "The weighted name, e.g. `app.example.com` (trailing dot optional).",
);
/// `RECORD_TYPE`.
pub const TYPE: Var = Var::with_default("RECORD_TYPE", "A", "Record type of the pair.");
/// `BLUE_SET_IDENTIFIER`.
pub const BLUE: Var = Var::with_default(
    "BLUE_SET_IDENTIFIER",
    "blue",
    "Set identifier of the blue (current) record.",
);
/// `GREEN_SET_IDENTIFIER`.
pub const GREEN: Var = Var::with_default(
    "GREEN_SET_IDENTIFIER",
    "green",
    "Set identifier of the green (new) record; must differ from blue's.",
);
/// `BLUE_WEIGHT`.
pub const BLUE_WEIGHT: Var = Var::with_default("BLUE_WEIGHT", "100", "Blue's weight after a rollback (1 to 255).");
/// `ALARM_NAMES`.
pub const ALARMS: Var = Var::new(
    "ALARM_NAMES",
    "Required. Comma-separated names of the alarms allowed to roll back, or `*` for any alarm of this account.",
);
/// `DRY_RUN`.
pub const DRY_RUN: Var = Var::with_default("DRY_RUN", "false", "Decide and report, change no record.");
/// `WAIT_FOR_SYNC`.
pub const WAIT: Var = Var::with_default(
    "WAIT_FOR_SYNC",
    "true",
    "After the change, poll `GetChange` until INSYNC.",
);
/// `SYNC_TIMEOUT_SECS`.
pub const SYNC_TIMEOUT: Var = Var::with_default(
    "SYNC_TIMEOUT_SECS",
    "60",
    "How long to wait for INSYNC (0 to 900), capped by the Lambda deadline.",
);

/// `LOCAL_ACCOUNT_ID`.
pub const LOCAL_ACCOUNT: Var = Var::new(
    "LOCAL_ACCOUNT_ID",
    "Local runs only: the account whose alarms may roll back when the invoked function ARN names none (`cargo lambda watch` sends `function-arn`). In Lambda the ARN's account is used and this is ignored.",
);

/// Every variable the function reads, in the order the README lists them.
pub const VARIABLES: &[Var] = &[
    ZONE,
    NAME,
    TYPE,
    BLUE,
    GREEN,
    BLUE_WEIGHT,
    ALARMS,
    DRY_RUN,
    WAIT,
    SYNC_TIMEOUT,
    LOCAL_ACCOUNT,
    failover_core::metrics::NAMESPACE,
];

/// Variables the deploy template does not set: in Lambda the account comes from the ARN.
pub const NOT_IN_TEMPLATE: &[Var] = &[LOCAL_ACCOUNT];

/// Record types Route 53 can route by weight.
const RECORD_TYPES: [&str; 11] = [
    "A", "AAAA", "CAA", "CNAME", "DS", "MX", "NAPTR", "PTR", "SPF", "SRV", "TXT",
];

/// Which alarms may roll back. There is no "unset means any": `*` says so explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmFilter {
    /// `*`: any alarm of the function's own account.
    Any,
    /// These alarm names (at least one).
    Named(Vec<String>),
}

impl AlarmFilter {
    /// Whether `alarm` may roll back.
    pub fn allows(&self, alarm: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Named(names) => names.iter().any(|n| n == alarm),
        }
    }
}

impl std::fmt::Display for AlarmFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Named(names) => f.write_str(&names.join(", ")),
        }
    }
}

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
    /// Alarms allowed to roll back.
    pub alarm_names: AlarmFilter,
    /// Decide and report, but write nothing.
    pub dry_run: bool,
    /// Wait for the change to reach INSYNC before returning.
    pub wait_for_sync: bool,
    /// How long to wait for INSYNC (capped by the invocation deadline).
    pub sync_timeout: Duration,
    /// The account to assume when the invoked function ARN names none (local runtimes).
    pub local_account: Option<String>,
    /// CloudWatch namespace of the invocation metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
}

impl RollbackConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    /// Reads and validates `env`. Every error names the variable at fault.
    pub fn from(env: &Env<'_>) -> Result<Self, ConfigError> {
        let zone = env.required(
            &ZONE,
            "set it to the id of the hosted zone holding the blue/green records, e.g. Z0123456789ABCDEFGHIJ",
        )?;
        let hosted_zone_id = zone.trim_start_matches("/hostedzone/").to_owned();
        if hosted_zone_id.is_empty()
            || !hosted_zone_id.chars().all(|c| c.is_ascii_alphanumeric())
            || hosted_zone_id.len() > 32
        {
            return Err(ConfigError::invalid(
                &ZONE,
                &zone,
                "expected a hosted zone id such as Z0123456789ABCDEFGHIJ",
            ));
        }
        let name = env.required(&NAME, "set it to the weighted record's name, e.g. app.example.com")?;
        let record_name = normalize_name(&name).map_err(|reason| ConfigError::invalid(&NAME, &name, reason))?;
        let record_type = env.get_or_default(&TYPE).unwrap_or_default().to_ascii_uppercase();
        if !RECORD_TYPES.contains(&record_type.as_str()) {
            return Err(ConfigError::invalid(
                &TYPE,
                &record_type,
                format!("expected one of {}", RECORD_TYPES.join(", ")),
            ));
        }
        let blue = env.get_or_default(&BLUE).unwrap_or_default();
        let green = env.get_or_default(&GREEN).unwrap_or_default();
        for (var, id) in [(&BLUE, &blue), (&GREEN, &green)] {
            if id.len() > 128 {
                return Err(ConfigError::invalid(
                    var,
                    id,
                    "a set identifier is at most 128 characters",
                ));
            }
        }
        if blue == green {
            return Err(ConfigError::invalid(
                &GREEN,
                &green,
                format!("must differ from {}", BLUE.name),
            ));
        }
        let list = env.required(
            &ALARMS,
            "name the alarms allowed to roll back, comma-separated (e.g. app-green-5xx), or * for any alarm of this account",
        )?;
        let names: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let alarm_names = match names.as_slice() {
            [] => return Err(ConfigError::invalid(&ALARMS, &list, "names no alarm")),
            [any] if any == "*" => AlarmFilter::Any,
            _ if names.iter().any(|n| n == "*") => {
                return Err(ConfigError::invalid(
                    &ALARMS,
                    &list,
                    "* means any alarm; it cannot be combined with names",
                ))
            }
            _ => AlarmFilter::Named(names),
        };
        Ok(Self {
            hosted_zone_id,
            record_name,
            record_type,
            blue,
            green,
            blue_weight: env.integer(&BLUE_WEIGHT, 1..=255)? as i64,
            alarm_names,
            dry_run: env.flag(&DRY_RUN)?,
            wait_for_sync: env.flag(&WAIT)?,
            sync_timeout: env.seconds(&SYNC_TIMEOUT, 0..=900)?,
            local_account: match env.get(&LOCAL_ACCOUNT) {
                Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => Some(a),
                Some(a) => {
                    return Err(ConfigError::invalid(
                        &LOCAL_ACCOUNT,
                        &a,
                        "expected a 12-digit AWS account id",
                    ))
                }
                None => None,
            },
            metrics_namespace: failover_core::metrics::namespace(env)?,
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

    // The variables' names, to build environments with.
    const ZONE: &str = super::ZONE.name;
    const NAME: &str = super::NAME.name;
    const TYPE: &str = super::TYPE.name;
    const BLUE: &str = super::BLUE.name;
    const GREEN: &str = super::GREEN.name;
    const BLUE_WEIGHT: &str = super::BLUE_WEIGHT.name;
    const ALARMS: &str = super::ALARMS.name;
    const DRY_RUN: &str = super::DRY_RUN.name;
    const WAIT: &str = super::WAIT.name;
    const SYNC_TIMEOUT: &str = super::SYNC_TIMEOUT.name;
    const LOCAL_ACCOUNT: &str = super::LOCAL_ACCOUNT.name;

    #[test]
    fn reads_exactly_the_declared_variables() {
        let env = Env::from_pairs(&REQUIRED);
        RollbackConfig::from(&env).unwrap();
        let mut read = env.looked_up();
        read.sort_unstable();
        let mut declared: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        declared.sort_unstable();
        assert_eq!(read, declared);
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<RollbackConfig, ConfigError> {
        RollbackConfig::from(&Env::from_pairs(pairs))
    }

    const REQUIRED: [(&str, &str); 3] = [
        (ZONE, "/hostedzone/Z0123456789ABC"),
        (NAME, "App.Example.com"),
        (ALARMS, "app-green-5xx"),
    ];

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
                alarm_names: AlarmFilter::Named(vec!["app-green-5xx".into()]),
                dry_run: false,
                wait_for_sync: true,
                sync_timeout: Duration::from_secs(60),
                local_account: None,
                metrics_namespace: "Failover".into(),
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
        assert_eq!(
            cfg.alarm_names,
            AlarmFilter::Named(vec!["app-green-5xx".into(), "app-green-health".into()])
        );
        assert!(cfg.dry_run && !cfg.wait_for_sync);
        assert_eq!(cfg.sync_timeout, Duration::from_secs(5));
        let mut any = REQUIRED.to_vec();
        any.push((ALARMS, " * "));
        any.push((LOCAL_ACCOUNT, "123456789012"));
        let local = parse(&any).unwrap();
        assert_eq!(local.alarm_names, AlarmFilter::Any);
        assert_eq!(local.local_account.as_deref(), Some("123456789012"));
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
            // no allow-list means no alarm rolls back: "any" must be said with *
            (&[(ZONE, "Z1"), (NAME, "a.example.com"), (ALARMS, "")], ALARMS),
            (&[(ZONE, "Z1"), (NAME, "a.example.com"), (ALARMS, " , ")], ALARMS),
            (
                &[(ZONE, "Z1"), (NAME, "a.example.com"), (ALARMS, "*,app-green-5xx")],
                ALARMS,
            ),
            (
                &[(ZONE, "Z1"), (NAME, "a.example.com"), (LOCAL_ACCOUNT, "1234")],
                LOCAL_ACCOUNT,
            ),
        ];
        for (pairs, var) in cases {
            // every case names an alarm unless it sets ALARM_NAMES itself (a later pair wins)
            let pairs = [&[(ALARMS, "app-green-5xx")][..], pairs].concat();
            let err = parse(&pairs).expect_err(&format!("{pairs:?} should be rejected"));
            assert!(err.to_string().starts_with(var), "{pairs:?}: {err}");
        }
    }
}
