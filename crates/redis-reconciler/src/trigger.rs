//! What an invocation of the redis-reconciler asks for.
//!
//! State is the truth and the event is a hint: every recognised trigger reconciles, and at most
//! narrows *which* configured groups to look at. `classify` is pure.

use std::fmt;

use serde_json::Value;

use failover_core::envelope::{parse_envelope, AlarmChange, AlarmState, Envelope, Notice, TriggerError};

/// The shapes the reconciler accepts, quoted in every "unrecognised event" error.
pub const ACCEPTED: &str = "an SNS event (ElastiCache notification, CloudWatch alarm notification or any message), \
an EventBridge \"Scheduled Event\" or \"CloudWatch Alarm State Change\", a CloudWatch alarm action, \
or a direct invocation {} or {\"replication_group_id\": \"<id>\"}";

/// How the reconciler was invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerKind {
    /// An ElastiCache event notification via SNS, e.g. `ElastiCache:FailoverComplete`.
    ElastiCache {
        /// The event name.
        event: String,
        /// The cluster or group it is about.
        source_id: String,
    },
    /// A CloudWatch alarm state change (SNS notification, EventBridge event or alarm action).
    Alarm {
        /// Alarm name.
        alarm: String,
        /// New state.
        state: AlarmState,
    },
    /// An SNS message of no particular shape.
    SnsMessage,
    /// The EventBridge schedule (safety net for missed notifications).
    Schedule,
    /// A direct invocation.
    Direct,
}

impl fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ElastiCache { event, source_id } => write!(f, "{event} {source_id}"),
            Self::Alarm { alarm, state } => write!(f, "alarm {alarm} {state}"),
            Self::SnsMessage => f.write_str("SNS message"),
            Self::Schedule => f.write_str("schedule"),
            Self::Direct => f.write_str("direct invocation"),
        }
    }
}

/// Which configured targets an invocation concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every configured target.
    All,
    /// Targets whose group is named (by group id or cache cluster id). Names of groups this
    /// function does not manage are ignored: the event was meant for another function.
    Hinted(Vec<String>),
    /// The one group a direct invocation names; it must be configured.
    Exactly(String),
}

/// A classified invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// What invoked us.
    pub kind: TriggerKind,
    /// Which targets to reconcile.
    pub scope: Scope,
}

/// Classifies a raw invocation payload. Errors say which shapes are accepted.
pub fn classify(event: &Value) -> Result<Trigger, TriggerError> {
    match parse_envelope(event, ACCEPTED)? {
        Envelope::Sns(notices) => Ok(classify_sns(&notices)),
        Envelope::Schedule { .. } => Ok(Trigger {
            kind: TriggerKind::Schedule,
            scope: Scope::All,
        }),
        Envelope::AlarmStateChange(change) | Envelope::AlarmAction(change) => Ok(from_alarm(&change)),
        Envelope::Direct(obj) => {
            let unknown: Vec<&str> = obj
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "replication_group_id")
                .collect();
            if !unknown.is_empty() {
                return Err(TriggerError::unrecognised(
                    format!("an object with keys {unknown:?}"),
                    ACCEPTED,
                ));
            }
            let scope = match obj.get("replication_group_id") {
                None => Scope::All,
                Some(Value::String(id)) if !id.trim().is_empty() => Scope::Exactly(id.trim().to_ascii_lowercase()),
                Some(other) => {
                    return Err(TriggerError::malformed(
                        "direct invocation",
                        format!("replication_group_id must be a non-empty string, got {other}"),
                    ))
                }
            };
            Ok(Trigger {
                kind: TriggerKind::Direct,
                scope,
            })
        }
    }
}

fn from_alarm(change: &AlarmChange) -> Trigger {
    let names: Vec<String> = change
        .dimensions
        .iter()
        .filter(|(k, _)| k == "CacheClusterId" || k == "ReplicationGroupId")
        .map(|(_, v)| v.to_ascii_lowercase())
        .collect();
    Trigger {
        kind: TriggerKind::Alarm {
            alarm: change.alarm.clone(),
            state: change.state,
        },
        // An alarm without cache dimensions (composite, custom metric) still means "look".
        scope: if names.is_empty() {
            Scope::All
        } else {
            Scope::Hinted(names)
        },
    }
}

fn classify_sns(notices: &[Notice]) -> Trigger {
    let mut names = Vec::new();
    let mut all = false;
    let mut kind = None;
    for notice in notices {
        let t = match notice {
            Notice::ElastiCache(n) => {
                let mut hinted = vec![n.source_id.to_ascii_lowercase()];
                hinted.extend(n.replication_group_id.as_deref().map(str::to_ascii_lowercase));
                Trigger {
                    kind: TriggerKind::ElastiCache {
                        event: n.event.clone(),
                        source_id: n.source_id.clone(),
                    },
                    scope: Scope::Hinted(hinted),
                }
            }
            Notice::Alarm(change) => from_alarm(change),
            Notice::Text { .. } => Trigger {
                kind: TriggerKind::SnsMessage,
                scope: Scope::All,
            },
        };
        match t.scope {
            Scope::Hinted(n) => names.extend(n),
            _ => all = true,
        }
        kind.get_or_insert(t.kind);
    }
    Trigger {
        kind: kind.unwrap_or(TriggerKind::SnsMessage),
        scope: if all || names.is_empty() {
            Scope::All
        } else {
            Scope::Hinted(names)
        },
    }
}

/// True when `name` (a group id, or a cache cluster id such as `orders-002` or, in cluster
/// mode, `orders-0001-002`) belongs to replication group `group`.
pub fn names_group(name: &str, group: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if name == group {
        return true;
    }
    let Some(suffix) = name.strip_prefix(group).and_then(|s| s.strip_prefix('-')) else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match suffix.split_once('-') {
        None => digits(suffix, 3),
        Some((shard, node)) => digits(shard, 4) && digits(node, 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cache_cluster_ids_name_their_group_only() {
        assert!(names_group("orders", "orders"));
        assert!(names_group("ORDERS-002", "orders"));
        assert!(names_group("orders-0002-001", "orders"));
        assert!(!names_group("orders-eu-001", "orders"));
        assert!(!names_group("orders-eu", "orders"));
        assert!(!names_group("orders-01", "orders"));
        assert!(!names_group("orders-0002-01", "orders"));
        assert!(!names_group("order", "orders"));
        assert!(!names_group("ordersx-001", "orders"));
    }

    #[test]
    fn direct_invocations() {
        assert_eq!(
            classify(&json!({})).unwrap(),
            Trigger {
                kind: TriggerKind::Direct,
                scope: Scope::All
            }
        );
        assert_eq!(
            classify(&json!({"replication_group_id": " Orders "})).unwrap().scope,
            Scope::Exactly("orders".into())
        );
        for bad in [
            json!({"replication_group_id": ""}),
            json!({"replication_group_id": 3}),
            json!({"replication_group_id": null}),
        ] {
            assert!(matches!(classify(&bad), Err(TriggerError::Malformed { .. })), "{bad}");
        }
        let err = classify(&json!({"replication_group_id": "orders", "force": true})).unwrap_err();
        assert!(
            err.to_string().contains("force") && err.to_string().contains("Accepted"),
            "{err}"
        );
    }

    #[test]
    fn alarm_without_cache_dimensions_reconciles_everything() {
        let change = AlarmChange {
            alarm: "x".into(),
            state: AlarmState::Alarm,
            previous: None,
            dimensions: vec![("LoadBalancer".into(), "lb".into())],
            accounts: vec![],
            actions_suppressed_by: None,
        };
        assert_eq!(from_alarm(&change).scope, Scope::All);
    }

    #[test]
    fn several_sns_records_union_their_hints_and_text_widens_to_all() {
        let ec = |id: &str| {
            Notice::ElastiCache(failover_core::envelope::ElastiCacheNotice {
                event: "ElastiCache:FailoverComplete".into(),
                source_id: id.into(),
                replication_group_id: None,
            })
        };
        let t = classify_sns(&[ec("orders-002"), ec("sessions-001")]);
        assert_eq!(t.scope, Scope::Hinted(vec!["orders-002".into(), "sessions-001".into()]));
        assert_eq!(t.kind.to_string(), "ElastiCache:FailoverComplete orders-002");
        let t = classify_sns(&[ec("orders-002"), Notice::Text { subject: None }]);
        assert_eq!(t.scope, Scope::All);
    }
}
