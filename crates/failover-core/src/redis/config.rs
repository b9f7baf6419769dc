//! Configuration of the redis-reconciler, read once from the environment at init.
//!
//! | variable | meaning |
//! |---|---|
//! | `REDIS_REPLICATION_GROUP_ID` + `REDIS_ENDPOINT_PARAMETER_NAME` | one target |
//! | `REDIS_TARGETS` | many targets: `group-a=/app/a/redis,group-b=/app/b/redis` |
//! | `ENDPOINT_MODE` | `node` (default) or `primary-endpoint` |
//! | `DRY_RUN` | decide and report, write nothing (default false) |
//! | `SETTLE_TIMEOUT_SECS` | how long to wait for a group that is mid-failover (default 30) |
//! | `VERIFY_ROLE` | publish only a candidate that answers `ROLE` = master (default false) |
//! | `REDIS_TLS` / `REDIS_AUTH_TOKEN` | how `VERIFY_ROLE` connects (in-transit encryption, AUTH) |

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use crate::env::{ConfigError, Env};
use crate::redis::probe::Secret;
use crate::redis::topology::EndpointMode;

const SINGLE_GROUP: &str = "REDIS_REPLICATION_GROUP_ID";
const SINGLE_PARAM: &str = "REDIS_ENDPOINT_PARAMETER_NAME";
const MANY: &str = "REDIS_TARGETS";
const MODE: &str = "ENDPOINT_MODE";
const DRY_RUN: &str = "DRY_RUN";
const SETTLE: &str = "SETTLE_TIMEOUT_SECS";
const VERIFY: &str = "VERIFY_ROLE";
const TLS: &str = "REDIS_TLS";
const AUTH: &str = "REDIS_AUTH_TOKEN";

/// One replication group whose primary is published into one SSM parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// ElastiCache replication group id (lower case, as ElastiCache stores it).
    pub replication_group_id: String,
    /// SSM parameter name that applications read the endpoint from.
    pub parameter: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.replication_group_id, self.parameter)
    }
}

/// Validated configuration of the redis-reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// Every group this function manages, in configuration order.
    pub targets: Vec<Target>,
    /// Which endpoint to publish for cluster-mode-disabled groups.
    pub endpoint_mode: EndpointMode,
    /// Decide and report, but write nothing.
    pub dry_run: bool,
    /// How long to keep re-describing a group that is mid-failover.
    pub settle_timeout: Duration,
    /// Connect to the candidate and publish it only if Redis says it is the master.
    pub verify_role: bool,
    /// Connect with TLS when verifying (ElastiCache in-transit encryption).
    pub redis_tls: bool,
    /// AUTH token when verifying (ElastiCache AUTH).
    pub redis_auth_token: Option<Secret>,
}

impl ReconcilerConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    /// Reads and validates `env`. Every error names the variable at fault.
    pub fn from(env: &Env<'_>) -> Result<Self, ConfigError> {
        let targets = read_targets(env)?;
        let endpoint_mode = match env.get(MODE) {
            None => EndpointMode::Node,
            Some(v) => v
                .parse()
                .map_err(|reason: String| ConfigError::invalid(MODE, &v, reason))?,
        };
        Ok(Self {
            targets,
            endpoint_mode,
            dry_run: env.flag(DRY_RUN, false)?,
            settle_timeout: env.seconds(SETTLE, 30, 0..=840)?,
            verify_role: env.flag(VERIFY, false)?,
            redis_tls: env.flag(TLS, false)?,
            redis_auth_token: env.get(AUTH).map(Secret),
        })
    }
}

fn read_targets(env: &Env<'_>) -> Result<Vec<Target>, ConfigError> {
    let single_group = env.get(SINGLE_GROUP);
    let single_param = env.get(SINGLE_PARAM);
    let many = env.get(MANY);
    let targets = match (single_group, single_param, many) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                first: MANY,
                second: if env.get(SINGLE_GROUP).is_some() { SINGLE_GROUP } else { SINGLE_PARAM },
                hint: format!(
                    "configure one target with {SINGLE_GROUP} and {SINGLE_PARAM}, or several with {MANY}, not both"
                ),
            })
        }
        (Some(group), Some(param), None) => vec![target(SINGLE_GROUP, &group, SINGLE_PARAM, &param)?],
        (Some(_), None, None) => {
            return Err(ConfigError::Missing {
                var: SINGLE_PARAM,
                hint: format!("{SINGLE_GROUP} is set; also set the SSM parameter to publish its primary to, e.g. /app/redis/endpoint"),
            })
        }
        (None, Some(_), None) => {
            return Err(ConfigError::Missing {
                var: SINGLE_GROUP,
                hint: format!("{SINGLE_PARAM} is set; also set the replication group whose primary it holds"),
            })
        }
        (None, None, None) => {
            return Err(ConfigError::Missing {
                var: MANY,
                hint: format!(
                    "set {SINGLE_GROUP} and {SINGLE_PARAM} for one target, or {MANY}=\"group-a=/app/a/redis,group-b=/app/b/redis\" for several"
                ),
            })
        }
        (None, None, Some(list)) => parse_target_list(&list)?,
    };
    Ok(targets)
}

fn parse_target_list(list: &str) -> Result<Vec<Target>, ConfigError> {
    let mut targets = Vec::new();
    let mut parameters = HashSet::new();
    for entry in list.split(',').map(str::trim) {
        let Some((group, param)) = entry.split_once('=') else {
            return Err(ConfigError::invalid(
                MANY,
                list,
                format!("entry {entry:?} is not of the form group-id=/parameter/name"),
            ));
        };
        let t = target(MANY, group.trim(), MANY, param.trim())?;
        if !parameters.insert(t.parameter.clone()) {
            return Err(ConfigError::invalid(
                MANY,
                list,
                format!(
                    "parameter {} appears twice; each parameter can hold one group's endpoint",
                    t.parameter
                ),
            ));
        }
        targets.push(t);
    }
    Ok(targets)
}

fn target(group_var: &'static str, group: &str, param_var: &'static str, param: &str) -> Result<Target, ConfigError> {
    validate_group_id(group).map_err(|reason| ConfigError::invalid(group_var, group, reason))?;
    validate_parameter_name(param).map_err(|reason| ConfigError::invalid(param_var, param, reason))?;
    Ok(Target {
        replication_group_id: group.to_ascii_lowercase(),
        parameter: param.to_owned(),
    })
}

/// Checks an ElastiCache replication group id against ElastiCache's naming rules.
pub fn validate_group_id(id: &str) -> Result<(), String> {
    let rules = "a replication group id is 1 to 40 letters, digits or hyphens, starts with a letter, \
                 and has no two consecutive hyphens and no trailing hyphen";
    let ok = !id.is_empty()
        && id.len() <= 40
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(rules.to_owned())
    }
}

/// Checks an SSM parameter name against the rules `PutParameter` enforces, so a bad name fails
/// at init rather than at the first failover.
pub fn validate_parameter_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the parameter name is empty".into());
    }
    if name.len() > 1011 {
        return Err("a parameter name is at most 1011 characters".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c)))
    {
        return Err(format!(
            "{bad:?} is not allowed: use only a-z A-Z 0-9 _ . - and / between levels"
        ));
    }
    let bare = name.trim_start_matches('/').to_ascii_lowercase();
    if bare.starts_with("aws") || bare.starts_with("ssm") {
        return Err("names beginning with \"aws\" or \"ssm\" are reserved by AWS".into());
    }
    if name.contains('/') {
        if !name.starts_with('/') {
            return Err("a hierarchical name must start with / (e.g. /app/redis/endpoint)".into());
        }
        let levels: Vec<&str> = name[1..].split('/').collect();
        if levels.iter().any(|l| l.is_empty()) {
            return Err("a hierarchical name cannot have empty levels (// or a trailing /)".into());
        }
        if levels.len() > 15 {
            return Err("a parameter hierarchy is at most 15 levels deep".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ReconcilerConfig, ConfigError> {
        ReconcilerConfig::from(&Env::from_pairs(pairs))
    }

    fn var_of(err: &ConfigError) -> &'static str {
        match err {
            ConfigError::Missing { var, .. } | ConfigError::Invalid { var, .. } => var,
            ConfigError::Conflict { first, .. } => first,
        }
    }

    #[test]
    fn one_target_with_defaults() {
        // GIVEN the single-target form and nothing else
        let cfg = parse(&[(SINGLE_GROUP, "Orders"), (SINGLE_PARAM, "/app/orders/redis")]).unwrap();
        // THEN node mode, no dry run, 30 s settle, and the group id is lower-cased like ElastiCache does
        assert_eq!(
            cfg,
            ReconcilerConfig {
                targets: vec![Target {
                    replication_group_id: "orders".into(),
                    parameter: "/app/orders/redis".into()
                }],
                endpoint_mode: EndpointMode::Node,
                dry_run: false,
                settle_timeout: Duration::from_secs(30),
                verify_role: false,
                redis_tls: false,
                redis_auth_token: None,
            }
        );
    }

    #[test]
    fn many_targets_with_options() {
        let cfg = parse(&[
            (MANY, " orders=/app/orders/redis , sessions=sessions.redis.endpoint"),
            (MODE, "primary-endpoint"),
            (DRY_RUN, "true"),
            (SETTLE, "5"),
            (VERIFY, "true"),
            (TLS, "1"),
            (AUTH, "s3cret"),
        ])
        .unwrap();
        assert!(cfg.verify_role && cfg.redis_tls);
        assert_eq!(cfg.redis_auth_token, Some(Secret("s3cret".into())));
        assert!(!format!("{cfg:?}").contains("s3cret"), "the token never reaches logs");
        let names: Vec<String> = cfg.targets.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["orders -> /app/orders/redis", "sessions -> sessions.redis.endpoint"]
        );
        assert_eq!(cfg.endpoint_mode, EndpointMode::PrimaryEndpoint);
        assert!(cfg.dry_run);
        assert_eq!(cfg.settle_timeout, Duration::from_secs(5));
    }

    #[test]
    fn every_misconfiguration_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            // neither form
            (&[], MANY),
            // both forms
            (&[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (MANY, "b=/q")], MANY),
            (&[(SINGLE_PARAM, "/p"), (MANY, "b=/q")], MANY),
            // half of the single form
            (&[(SINGLE_GROUP, "orders")], SINGLE_PARAM),
            (&[(SINGLE_PARAM, "/p")], SINGLE_GROUP),
            // empty names inside the list
            (&[(MANY, "orders=")], MANY),
            (&[(MANY, "=/p")], MANY),
            (&[(MANY, "orders=/p,")], MANY),
            (&[(MANY, "orders")], MANY),
            // names SSM or ElastiCache would reject
            (
                &[(SINGLE_GROUP, "orders"), (SINGLE_PARAM, "/app/redis endpoint")],
                SINGLE_PARAM,
            ),
            (&[(SINGLE_GROUP, "orders"), (SINGLE_PARAM, "app/redis")], SINGLE_PARAM),
            (
                &[(SINGLE_GROUP, "orders"), (SINGLE_PARAM, "/aws/reserved")],
                SINGLE_PARAM,
            ),
            (&[(SINGLE_GROUP, "orders"), (SINGLE_PARAM, "ssm-thing")], SINGLE_PARAM),
            (&[(SINGLE_GROUP, "orders"), (SINGLE_PARAM, "/app//redis")], SINGLE_PARAM),
            (&[(SINGLE_GROUP, "orders"), (SINGLE_PARAM, "/app/redis/")], SINGLE_PARAM),
            (
                &[
                    (SINGLE_GROUP, "orders"),
                    (SINGLE_PARAM, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"),
                ],
                SINGLE_PARAM,
            ),
            (&[(SINGLE_GROUP, "1orders"), (SINGLE_PARAM, "/p")], SINGLE_GROUP),
            (&[(SINGLE_GROUP, "orders--a"), (SINGLE_PARAM, "/p")], SINGLE_GROUP),
            (&[(SINGLE_GROUP, "orders_a"), (SINGLE_PARAM, "/p")], SINGLE_GROUP),
            // the same parameter for two groups would flap between them
            (&[(MANY, "a=/p,b=/p")], MANY),
            // options
            (&[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (MODE, "reader")], MODE),
            (
                &[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (DRY_RUN, "perhaps")],
                DRY_RUN,
            ),
            (&[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (SETTLE, "-1")], SETTLE),
            (&[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (SETTLE, "10000")], SETTLE),
            (&[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (VERIFY, "sure")], VERIFY),
            (&[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (TLS, "tls")], TLS),
        ];
        for (pairs, var) in cases {
            let err = parse(pairs).expect_err(&format!("{pairs:?} should be rejected"));
            assert_eq!(var_of(&err), *var, "{pairs:?}: {err}");
            assert!(err.to_string().contains(var), "message must name {var}: {err}");
        }
    }

    #[test]
    fn accepted_parameter_names() {
        for name in [
            "redis-endpoint",
            "/app/orders/redis",
            "a.b_c-d",
            "/Prod/East/Project-ABC/x",
        ] {
            assert_eq!(validate_parameter_name(name), Ok(()), "{name}");
        }
    }
}
