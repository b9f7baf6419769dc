//! The reconciler's pure decisions besides picking the endpoint: which targets an invocation
//! concerns, whether to write, what to record, and the response that reports it.

use serde::Serialize;

use crate::config::Target;
use crate::topology::{EndpointMode, Pick};
use crate::trigger::{names_group, Scope, Trigger};

/// The targets an invocation concerns.
#[derive(Debug, PartialEq, Eq)]
pub enum Selection<'a> {
    /// Reconcile these, in configuration order.
    Targets(Vec<&'a Target>),
    /// The event names only groups this function does not manage: nothing to do here.
    NotOurs {
        /// The names the event carried.
        names: Vec<String>,
    },
}

/// A direct invocation named a group this function does not manage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replication group {group} is not managed by this function (managed: {managed}); invoke with one of those, or {{}} for all")]
pub struct UnmanagedGroup {
    /// The group asked for.
    pub group: String,
    /// The configured groups, comma separated.
    pub managed: String,
}

/// Chooses the configured targets `scope` concerns.
pub fn select_targets<'a>(targets: &'a [Target], scope: &Scope) -> Result<Selection<'a>, UnmanagedGroup> {
    match scope {
        Scope::All => Ok(Selection::Targets(targets.iter().collect())),
        Scope::Hinted(names) => {
            let chosen: Vec<&Target> = targets
                .iter()
                .filter(|t| names.iter().any(|n| names_group(n, &t.replication_group_id)))
                .collect();
            if chosen.is_empty() {
                Ok(Selection::NotOurs { names: names.clone() })
            } else {
                Ok(Selection::Targets(chosen))
            }
        }
        Scope::Exactly(group) => {
            let chosen: Vec<&Target> = targets.iter().filter(|t| &t.replication_group_id == group).collect();
            if chosen.is_empty() {
                Err(UnmanagedGroup {
                    group: group.clone(),
                    managed: targets
                        .iter()
                        .map(|t| t.replication_group_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            } else {
                Ok(Selection::Targets(chosen))
            }
        }
    }
}

/// Whether to write a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The parameter already holds the endpoint: write nothing.
    Unchanged,
    /// The parameter differs (or does not exist): write it.
    Write,
    /// Dry run: it differs, and would be written.
    WouldWrite,
}

/// Whether to write the parameter, given its current value (`None` when it does not exist).
/// Writing an unchanged value would create a new parameter version and wake every watcher.
pub fn decide(previous: Option<&str>, wanted: &str, dry_run: bool) -> Decision {
    match (previous == Some(wanted), dry_run) {
        (true, _) => Decision::Unchanged,
        (false, true) => Decision::WouldWrite,
        (false, false) => Decision::Write,
    }
}

/// What was (or would be) done to one target's parameter, as the response reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The parameter was written (created or overwritten).
    Updated,
    /// The parameter already held the endpoint; nothing was written.
    Unchanged,
    /// Dry run: the parameter differs and would have been written.
    WouldUpdate,
    /// The target could not be reconciled.
    Failed,
}

impl From<Decision> for Action {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Unchanged => Self::Unchanged,
            Decision::Write => Self::Updated,
            Decision::WouldWrite => Self::WouldUpdate,
        }
    }
}

/// The JSON response: one result per reconciled target.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Response {
    /// What invoked the function, e.g. `ElastiCache:FailoverComplete orders-002`.
    pub trigger: String,
    /// One entry per target, in configuration order. Empty when the event was about groups
    /// this function does not manage.
    pub results: Vec<TargetResult>,
}

impl Response {
    /// `group: error` for each failed target, in order; `group (parameter): error` when the
    /// group has several targets, so each failure names its own.
    pub fn failures(&self) -> Vec<String> {
        let shared = |group: &str| self.results.iter().filter(|r| r.replication_group_id == group).count() > 1;
        self.results
            .iter()
            .filter_map(|r| {
                let error = r.error.as_deref()?;
                Some(if shared(&r.replication_group_id) {
                    format!("{} ({}): {error}", r.replication_group_id, r.parameter)
                } else {
                    format!("{}: {error}", r.replication_group_id)
                })
            })
            .collect()
    }
}

/// Shown instead of the value of a SecureString parameter: its value never reaches a response
/// or a log line.
pub const REDACTED: &str = "(SecureString: value not shown)";

/// `value` as a response or log line may show it.
pub fn shown(value: &str, secure: bool) -> String {
    if secure {
        REDACTED.to_owned()
    } else {
        value.to_owned()
    }
}

/// What happened to one target.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetResult {
    /// Replication group id.
    pub replication_group_id: String,
    /// SSM parameter name.
    pub parameter: String,
    /// The parameter's value before this invocation (`null` if it did not exist or was not
    /// read; [`REDACTED`] for a SecureString).
    pub previous: Option<String>,
    /// The value after this invocation; for `would-update`, the value that would be written
    /// ([`REDACTED`] for a SecureString).
    pub current: Option<String>,
    /// `updated`, `unchanged`, `would-update` or `failed`.
    pub action: Action,
    /// The node the endpoint belongs to (`orders-002`, `primary-endpoint`, `configuration-endpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why the target failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TargetResult {
    /// What was done for `target`: the parameter held `previous` (as [`shown`]) and now holds
    /// (or, for a dry run, would hold) the endpoint of `pick`. `secure` hides that value.
    pub fn done(target: &Target, previous: Option<String>, pick: &Pick, action: Action, secure: bool) -> Self {
        Self {
            replication_group_id: target.replication_group_id.clone(),
            parameter: target.parameter.clone(),
            previous,
            current: Some(shown(&pick.endpoint.to_string(), secure)),
            action,
            node: Some(pick.node.to_string()),
            error: None,
        }
    }

    /// A target that could not be reconciled: its parameter held `previous` and, as far as we
    /// know, holds `current` now (both as [`shown`]): `previous` unless this invocation wrote it.
    pub fn failed(
        target: &Target,
        previous: Option<String>,
        current: Option<String>,
        pick: Option<&Pick>,
        error: String,
    ) -> Self {
        Self {
            replication_group_id: target.replication_group_id.clone(),
            parameter: target.parameter.clone(),
            current,
            previous,
            action: Action::Failed,
            node: pick.map(|p| p.node.to_string()),
            error: Some(error),
        }
    }
}

/// SSM's limit on a parameter description.
const DESCRIPTION_MAX: usize = 1024;

/// The `Description` written with the parameter: which group, which node, why.
pub fn description(target: &Target, pick: &Pick, mode: EndpointMode, trigger: &Trigger) -> String {
    let mut text = format!(
        "Redis endpoint of ElastiCache replication group {} ({}, {} mode). Written by failover redis-reconciler on {}.",
        target.replication_group_id, pick.node, mode, trigger.kind
    );
    if text.len() > DESCRIPTION_MAX {
        let mut cut = DESCRIPTION_MAX - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Endpoint, Node};
    use crate::trigger::TriggerKind;

    fn targets() -> Vec<Target> {
        ["orders", "sessions", "carts"]
            .iter()
            .map(|g| Target {
                replication_group_id: g.to_string(),
                parameter: format!("/app/{g}/redis"),
            })
            .collect()
    }

    fn groups(sel: Selection<'_>) -> Vec<String> {
        match sel {
            Selection::Targets(ts) => ts.iter().map(|t| t.replication_group_id.clone()).collect(),
            Selection::NotOurs { .. } => vec!["<not ours>".into()],
        }
    }

    #[test]
    fn all_scope_selects_every_target_in_order() {
        assert_eq!(
            groups(select_targets(&targets(), &Scope::All).unwrap()),
            ["orders", "sessions", "carts"]
        );
    }

    #[test]
    fn hints_narrow_by_group_or_cache_cluster_id() {
        let ts = targets();
        let hinted = |names: &[&str]| Scope::Hinted(names.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            groups(select_targets(&ts, &hinted(&["orders-002"])).unwrap()),
            ["orders"]
        );
        assert_eq!(
            groups(select_targets(&ts, &hinted(&["carts", "billing-001", "sessions-0001-002"])).unwrap()),
            ["sessions", "carts"]
        );
        // GIVEN an event about groups we do not manage THEN nothing is selected, and that is not an error
        assert_eq!(
            select_targets(&ts, &hinted(&["billing-002", "billing"])).unwrap(),
            Selection::NotOurs {
                names: vec!["billing-002".into(), "billing".into()]
            }
        );
    }

    #[test]
    fn a_direct_invocation_for_an_unmanaged_group_is_an_error_listing_the_managed_ones() {
        let err = select_targets(&targets(), &Scope::Exactly("billing".into())).unwrap_err();
        assert_eq!(err.managed, "orders, sessions, carts");
        assert!(err.to_string().contains("billing is not managed"), "{err}");
        assert_eq!(
            groups(select_targets(&targets(), &Scope::Exactly("sessions".into())).unwrap()),
            ["sessions"]
        );
    }

    #[test]
    fn write_only_when_the_value_differs() {
        let e = "orders-002.x.cache.amazonaws.com:6379";
        assert_eq!(decide(Some(e), e, false), Decision::Unchanged);
        assert_eq!(decide(Some(e), e, true), Decision::Unchanged);
        assert_eq!(decide(Some("orders-001.x:6379"), e, false), Decision::Write);
        assert_eq!(decide(None, e, false), Decision::Write);
        assert_eq!(decide(None, e, true), Decision::WouldWrite);
        assert_eq!(decide(Some("orders-001.x:6379"), e, true), Decision::WouldWrite);
    }

    #[test]
    fn description_names_group_node_mode_and_trigger_within_ssm_limit() {
        let t = &targets()[0];
        let pick = Pick {
            endpoint: Endpoint::new("h", 6379),
            node: Node::Member("orders-002".into()),
        };
        let trigger = Trigger {
            kind: TriggerKind::ElastiCache {
                event: "ElastiCache:FailoverComplete".into(),
                source_id: "orders-002".into(),
            },
            scope: Scope::All,
        };
        assert_eq!(
            description(t, &pick, EndpointMode::Node, &trigger),
            "Redis endpoint of ElastiCache replication group orders (orders-002, node mode). \
             Written by failover redis-reconciler on ElastiCache:FailoverComplete orders-002."
        );
        let long = Trigger {
            kind: TriggerKind::Alarm {
                alarm: "é".repeat(900),
                state: failover_core::envelope::AlarmState::Alarm,
            },
            scope: Scope::All,
        };
        let d = description(t, &pick, EndpointMode::Node, &long);
        assert!(d.len() <= 1024 && d.ends_with("..."), "{}", d.len());
    }

    #[test]
    fn the_response_serialises_to_the_documented_shape() {
        let t = &targets()[0];
        let pick = Pick {
            endpoint: Endpoint::new("orders-002.x.cache.amazonaws.com", 6379),
            node: Node::Member("orders-002".into()),
        };
        let response = Response {
            trigger: "schedule".into(),
            results: vec![
                TargetResult::done(
                    t,
                    Some("orders-001.x.cache.amazonaws.com:6379".into()),
                    &pick,
                    Action::Updated,
                    false,
                ),
                TargetResult::failed(&targets()[1], None, None, None, "boom".into()),
            ],
        };
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({
                "trigger": "schedule",
                "results": [
                    {"replication_group_id": "orders", "parameter": "/app/orders/redis",
                     "previous": "orders-001.x.cache.amazonaws.com:6379",
                     "current": "orders-002.x.cache.amazonaws.com:6379",
                     "action": "updated", "node": "orders-002"},
                    {"replication_group_id": "sessions", "parameter": "/app/sessions/redis",
                     "previous": null, "current": null, "action": "failed", "error": "boom"}
                ]
            })
        );
        assert_eq!(response.failures(), ["sessions: boom"]);
        let secure = TargetResult::done(t, Some(shown("old:6379", true)), &pick, Action::Updated, true);
        assert_eq!(
            (secure.previous.as_deref(), secure.current.as_deref()),
            (Some(REDACTED), Some(REDACTED))
        );
    }
}
