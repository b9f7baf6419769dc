//! Configuration of the redis-reconciler, read once from the environment at init.
//!
//! [`VARIABLES`] declares every variable the function reads; the crate README's configuration
//! table and the deploy template's check are derived from it.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use failover_core::env::{ConfigError, Env, Var};
use failover_core::secret::Secret;

use crate::topology::EndpointMode;

/// `REDIS_REPLICATION_GROUP_ID`: the group of the single-target form.
pub const SINGLE_GROUP: Var = Var::new(
    "REDIS_REPLICATION_GROUP_ID",
    "One target: the replication group id (with `REDIS_ENDPOINT_PARAMETER_NAME`).",
);
/// `REDIS_ENDPOINT_PARAMETER_NAME`: the parameter of the single-target form.
pub const SINGLE_PARAM: Var = Var::new(
    "REDIS_ENDPOINT_PARAMETER_NAME",
    "One target: the SSM parameter that receives the group's endpoint, e.g. `/app/orders/redis`.",
);
/// `REDIS_TARGETS`: the many-targets form.
pub const MANY: Var = Var::new(
    "REDIS_TARGETS",
    "Several targets instead: `group-a=/app/a/redis,group-b=/app/b/redis` (each parameter once).",
);
/// `ENDPOINT_MODE`.
pub const MODE: Var = Var::with_default(
    "ENDPOINT_MODE",
    "node",
    "`node`: the primary member's own endpoint (changes on failover); `primary-endpoint`: the group's `PrimaryEndpoint` DNS name.",
);
/// `DRY_RUN`.
pub const DRY_RUN: Var = Var::with_default("DRY_RUN", "false", "Decide and report, write no parameter.");
/// `SETTLE_TIMEOUT_SECS`.
pub const SETTLE: Var = Var::with_default(
    "SETTLE_TIMEOUT_SECS",
    "30",
    "How long to wait for a group that is mid-failover (0 to 840), capped by the Lambda deadline.",
);
/// `VERIFY_ROLE`.
pub const VERIFY: Var = Var::with_default(
    "VERIFY_ROLE",
    "false",
    "Publish a candidate only once it answers `ROLE` as master (the function must reach the nodes).",
);
/// `REDIS_TLS`.
pub const TLS: Var = Var::with_default(
    "REDIS_TLS",
    "false",
    "`VERIFY_ROLE` connects with TLS (in-transit encryption).",
);
/// `REDIS_AUTH_TOKEN_PARAMETER`.
pub const AUTH_PARAM: Var = Var::new(
    "REDIS_AUTH_TOKEN_PARAMETER",
    "`VERIFY_ROLE` authenticates with the AUTH token stored in this SSM SecureString parameter, read with decryption on first use. Needs `REDIS_TLS=true`.",
);
/// `REDIS_AUTH_TOKEN`.
pub const AUTH: Var = Var::new(
    "REDIS_AUTH_TOKEN",
    "The AUTH token itself, for local runs (deployments use `REDIS_AUTH_TOKEN_PARAMETER`). Needs `REDIS_TLS=true`.",
);

/// Every variable the reconciler reads, in the order the README lists them.
pub const VARIABLES: &[Var] = &[
    SINGLE_GROUP,
    SINGLE_PARAM,
    MANY,
    MODE,
    DRY_RUN,
    SETTLE,
    VERIFY,
    TLS,
    AUTH_PARAM,
    AUTH,
    failover_core::metrics::NAMESPACE,
    failover_core::sdk::SENSITIVE_BODIES,
];

/// Variables the deploy template does not set: the token itself never goes into a Lambda
/// environment (the template passes the parameter's name instead), and the SDK's body logging
/// stays off.
pub const NOT_IN_TEMPLATE: &[Var] = &[AUTH, failover_core::sdk::SENSITIVE_BODIES];

/// Where `VERIFY_ROLE` gets its AUTH token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthToken {
    /// No AUTH.
    #[default]
    None,
    /// The token, from `REDIS_AUTH_TOKEN`.
    Value(Secret),
    /// The name of an SSM SecureString that holds it, from `REDIS_AUTH_TOKEN_PARAMETER`.
    Parameter(String),
}

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
    /// AUTH token when verifying (ElastiCache AUTH); only ever sent over TLS.
    pub redis_auth: AuthToken,
    /// CloudWatch namespace of the invocation metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
}

impl ReconcilerConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    /// Reads and validates `env`. Every error names the variable at fault.
    pub fn from(env: &Env<'_>) -> Result<Self, ConfigError> {
        failover_core::sdk::refuse_sensitive_bodies(env)?;
        let targets = read_targets(env)?;
        let mode = env.get_or_default(&MODE).unwrap_or_default();
        let endpoint_mode = mode
            .parse()
            .map_err(|reason: String| ConfigError::invalid(&MODE, &mode, reason))?;
        let redis_tls = env.flag(&TLS)?;
        let redis_auth = read_auth(env, redis_tls)?;
        Ok(Self {
            targets,
            endpoint_mode,
            dry_run: env.flag(&DRY_RUN)?,
            settle_timeout: env.seconds(&SETTLE, 0..=840)?,
            verify_role: env.flag(&VERIFY)?,
            redis_tls,
            redis_auth,
            metrics_namespace: failover_core::metrics::namespace(env)?,
        })
    }
}

fn read_auth(env: &Env<'_>, tls: bool) -> Result<AuthToken, ConfigError> {
    let auth = match (env.get(&AUTH), env.get(&AUTH_PARAM)) {
        (None, None) => return Ok(AuthToken::None),
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                first: AUTH_PARAM.name,
                second: AUTH.name,
                hint: format!("are both set: keep {} and unset {}", AUTH_PARAM.name, AUTH.name),
            })
        }
        (Some(token), None) => (AUTH.name, AuthToken::Value(Secret::new(token))),
        (None, Some(name)) => {
            validate_parameter_name(&name).map_err(|reason| ConfigError::invalid(&AUTH_PARAM, &name, reason))?;
            (AUTH_PARAM.name, AuthToken::Parameter(name))
        }
    };
    if !tls {
        return Err(ConfigError::Conflict {
            first: auth.0,
            second: TLS.name,
            hint: format!(
                "go together: an AUTH token is never sent in clear text; set {}=true (ElastiCache requires in-transit encryption for AUTH)",
                TLS.name
            ),
        });
    }
    Ok(auth.1)
}

fn read_targets(env: &Env<'_>) -> Result<Vec<Target>, ConfigError> {
    let (g, p, m) = (SINGLE_GROUP.name, SINGLE_PARAM.name, MANY.name);
    let single_group = env.get(&SINGLE_GROUP);
    let single_param = env.get(&SINGLE_PARAM);
    let many = env.get(&MANY);
    let targets = match (single_group, single_param, many) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                first: m,
                second: if env.get(&SINGLE_GROUP).is_some() { g } else { p },
                hint: format!("are both set: configure one target with {g} and {p}, or several with {m}, not both"),
            })
        }
        (Some(group), Some(param), None) => vec![target(&SINGLE_GROUP, &group, &SINGLE_PARAM, &param)?],
        (Some(_), None, None) => {
            return Err(ConfigError::Missing {
                var: p,
                hint: format!(
                    "{g} is set; also set the SSM parameter to publish its primary to, e.g. /app/redis/endpoint"
                ),
            })
        }
        (None, Some(_), None) => {
            return Err(ConfigError::Missing {
                var: g,
                hint: format!("{p} is set; also set the replication group whose primary it holds"),
            })
        }
        (None, None, None) => {
            return Err(ConfigError::Missing {
                var: m,
                hint: format!(
                    "set {g} and {p} for one target, or {m}=\"group-a=/app/a/redis,group-b=/app/b/redis\" for several"
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
                &MANY,
                list,
                format!("entry {entry:?} is not of the form group-id=/parameter/name"),
            ));
        };
        let t = target(&MANY, group.trim(), &MANY, param.trim())?;
        if !parameters.insert(t.parameter.clone()) {
            return Err(ConfigError::invalid(
                &MANY,
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

fn target(group_var: &Var, group: &str, param_var: &Var, param: &str) -> Result<Target, ConfigError> {
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

    // The variables' names, to build environments with.
    const SINGLE_GROUP: &str = super::SINGLE_GROUP.name;
    const SINGLE_PARAM: &str = super::SINGLE_PARAM.name;
    const MANY: &str = super::MANY.name;
    const MODE: &str = super::MODE.name;
    const DRY_RUN: &str = super::DRY_RUN.name;
    const SETTLE: &str = super::SETTLE.name;
    const VERIFY: &str = super::VERIFY.name;
    const TLS: &str = super::TLS.name;
    const AUTH: &str = super::AUTH.name;
    const AUTH_PARAM: &str = super::AUTH_PARAM.name;

    fn parse(pairs: &[(&str, &str)]) -> Result<ReconcilerConfig, ConfigError> {
        ReconcilerConfig::from(&Env::from_pairs(pairs))
    }

    #[test]
    fn reads_exactly_the_declared_variables() {
        let pairs = [(SINGLE_GROUP, "orders"), (SINGLE_PARAM, "/p")];
        let env = Env::from_pairs(&pairs);
        ReconcilerConfig::from(&env).unwrap();
        let mut read = env.looked_up();
        read.sort_unstable();
        let mut declared: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        declared.sort_unstable();
        assert_eq!(read, declared);
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
                redis_auth: AuthToken::None,
                metrics_namespace: "Failover".into(),
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
        assert_eq!(cfg.redis_auth, AuthToken::Value(Secret::new("s3cret")));
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
            // the SDK would log decrypted SecureString values and the AUTH token at TRACE
            (
                &[
                    (SINGLE_GROUP, "a"),
                    (SINGLE_PARAM, "/p"),
                    ("LOG_SENSITIVE_BODIES", "true"),
                ],
                "LOG_SENSITIVE_BODIES",
            ),
            // AUTH is never sent in clear text, and comes from one place
            (&[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (AUTH, "s3cret")], AUTH),
            (
                &[
                    (SINGLE_GROUP, "a"),
                    (SINGLE_PARAM, "/p"),
                    (AUTH, "s3cret"),
                    (TLS, "false"),
                ],
                AUTH,
            ),
            (
                &[
                    (SINGLE_GROUP, "a"),
                    (SINGLE_PARAM, "/p"),
                    (AUTH_PARAM, "/app/redis/token"),
                ],
                AUTH_PARAM,
            ),
            (
                &[
                    (SINGLE_GROUP, "a"),
                    (SINGLE_PARAM, "/p"),
                    (TLS, "true"),
                    (AUTH, "s3cret"),
                    (AUTH_PARAM, "/t"),
                ],
                AUTH_PARAM,
            ),
            (
                &[
                    (SINGLE_GROUP, "a"),
                    (SINGLE_PARAM, "/p"),
                    (TLS, "true"),
                    (AUTH_PARAM, "no spaces"),
                ],
                AUTH_PARAM,
            ),
        ];
        for (pairs, var) in cases {
            let err = parse(pairs).expect_err(&format!("{pairs:?} should be rejected"));
            assert_eq!(err.var(), *var, "{pairs:?}: {err}");
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

    #[test]
    fn the_token_comes_from_a_parameter_and_never_reaches_an_error_or_debug() {
        let cfg = parse(&[
            (SINGLE_GROUP, "a"),
            (SINGLE_PARAM, "/p"),
            (TLS, "true"),
            (AUTH_PARAM, "/app/redis/token"),
        ])
        .unwrap();
        assert_eq!(cfg.redis_auth, AuthToken::Parameter("/app/redis/token".into()));
        for pairs in [
            &[(SINGLE_GROUP, "a"), (SINGLE_PARAM, "/p"), (AUTH, "s3cret-token")][..],
            &[
                (SINGLE_GROUP, "a"),
                (SINGLE_PARAM, "/p"),
                (TLS, "1"),
                (AUTH, "s3cret-token"),
                (AUTH_PARAM, "/t"),
            ],
        ] {
            let err = parse(pairs).unwrap_err();
            assert!(
                !err.to_string().contains("s3cret") && !format!("{err:?}").contains("s3cret"),
                "{err}"
            );
        }
        let cfg = parse(&[
            (SINGLE_GROUP, "a"),
            (SINGLE_PARAM, "/p"),
            (TLS, "yes"),
            (AUTH, "s3cret-token"),
        ])
        .unwrap();
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }
}
