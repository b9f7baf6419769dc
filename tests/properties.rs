//! Property tests over generated inputs (proptest): group descriptions, weighted pairs and
//! arbitrary JSON events. Each property is a rule the functions must keep for every input,
//! not only for the examples the other tests pick.

use bluegreen_rollback::config::RollbackConfig;
use bluegreen_rollback::plan::{plan, Intent, Outcome, Weights};
use failover_core::env::Env;
use proptest::prelude::*;
use redis_reconciler::topology::{
    names_stale_node, pick_endpoint, unsettled_primary, Endpoint, EndpointMode, Member, Node, NodeGroup, PickError,
    ReplicationGroup,
};
use serde_json::{json, Map, Value};

// ---- the endpoint picked is the single primary, or nothing ----

fn endpoint() -> impl Strategy<Value = Option<Endpoint>> {
    prop::option::weighted(0.9, ("[a-z]{1,8}", 1u16..=65535).prop_map(|(h, p)| Endpoint::new(h, p)))
}

fn member() -> impl Strategy<Value = Member> {
    let role = prop_oneof![
        Just(Some("primary".to_owned())),
        Just(Some("replica".to_owned())),
        Just(None),
        "[a-z]{0,8}".prop_map(Some),
    ];
    ("[a-z]{1,6}-00[1-9]", role, endpoint()).prop_map(|(id, current_role, read_endpoint)| Member {
        cache_cluster_id: id,
        current_role,
        read_endpoint,
    })
}

fn group() -> impl Strategy<Value = ReplicationGroup> {
    let status = prop_oneof![
        Just("available".to_owned()),
        Just("modifying".to_owned()),
        Just("snapshotting".to_owned()),
        Just("creating".to_owned()),
        "[a-z]{0,10}",
    ];
    let node_group =
        ("000[1-4]", endpoint(), prop::collection::vec(member(), 0..5)).prop_map(|(id, primary_endpoint, members)| {
            NodeGroup {
                id,
                primary_endpoint,
                members,
            }
        });
    (
        status,
        any::<bool>(),
        endpoint(),
        prop::collection::vec(node_group, 0..3),
    )
        .prop_map(
            |(status, cluster_enabled, configuration_endpoint, node_groups)| ReplicationGroup {
                id: "orders".into(),
                status,
                cluster_enabled,
                configuration_endpoint,
                node_groups,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn node_mode_picks_the_single_primary_or_nothing(g in group()) {
        let sharded = g.cluster_enabled || g.configuration_endpoint.is_some();
        let primaries: Vec<&Member> = g
            .node_groups
            .first()
            .map(|ng| ng.members.iter().filter(|m| m.current_role.as_deref() == Some("primary")).collect())
            .unwrap_or_default();
        let settled = ["available", "snapshotting"].contains(&g.status.as_str());
        match pick_endpoint(&g, EndpointMode::Node) {
            Ok(pick) if sharded => {
                prop_assert_eq!(Some(pick.endpoint), g.configuration_endpoint.clone());
                prop_assert_eq!(pick.node, Node::ConfigurationEndpoint);
            }
            Ok(pick) => {
                // exactly one node group, a settled status, exactly one primary: the pick is it
                prop_assert_eq!(g.node_groups.len(), 1);
                prop_assert!(settled);
                prop_assert_eq!(primaries.len(), 1);
                prop_assert_eq!(pick.node, Node::Member(primaries[0].cache_cluster_id.clone()));
                prop_assert_eq!(Some(&pick.endpoint), primaries[0].read_endpoint.as_ref());
            }
            // every refusal is the one the description calls for, checked in that order
            Err(e) => {
                let expected = if sharded {
                    "MissingEndpoint"
                } else if g.node_groups.len() != 1 {
                    "UnexpectedShape"
                } else if !settled {
                    "NotSettled"
                } else {
                    match primaries.as_slice() {
                        [] => "NoPrimary",
                        [p] if p.read_endpoint.is_none() => "MissingEndpoint",
                        [_] => "a pick",
                        _ => "SeveralPrimaries",
                    }
                };
                let got = match e {
                    PickError::NotSettled { .. } => "NotSettled",
                    PickError::NoPrimary { .. } => "NoPrimary",
                    PickError::SeveralPrimaries { .. } => "SeveralPrimaries",
                    PickError::MissingEndpoint { .. } => "MissingEndpoint",
                    PickError::UnexpectedShape { .. } => "UnexpectedShape",
                };
                prop_assert_eq!(got, expected, "{:?}", g);
            }
        }
    }

    #[test]
    fn an_unsettled_group_replaces_only_a_value_known_to_be_stale(
        g in group(),
        current in prop_oneof![
            "[a-z]{1,8}:[0-9]{1,5}",
            "[a-z]{0,12}",
            Just(String::new()),
        ],
        pick_member in 0usize..5,
    ) {
        // GIVEN a value: arbitrary, or the endpoint of one of the group's own members
        let members: Vec<&Member> = g.node_groups.iter().flat_map(|ng| &ng.members).collect();
        let current = members
            .get(pick_member)
            .and_then(|m| m.read_endpoint.as_ref())
            .filter(|_| pick_member % 2 == 0)
            .map_or(current, ToString::to_string);
        let Some(primary) = unsettled_primary(&g, EndpointMode::Node) else {
            // THEN without one reported primary of an unsettled, unsharded group, nothing is replaced
            let settled = ["available", "snapshotting"].contains(&g.status.as_str());
            prop_assert!(settled || g.cluster_enabled || g.configuration_endpoint.is_some() || g.node_groups.len() != 1
                || g.node_groups[0].members.iter().filter(|m| m.current_role.as_deref() == Some("primary")).count() != 1
                || g.node_groups[0].members.iter().any(|m| m.current_role.as_deref() == Some("primary") && m.read_endpoint.is_none()));
            return Ok(());
        };
        prop_assert!(pick_endpoint(&g, EndpointMode::Node).is_err());
        if names_stale_node(&g, &primary, &current) {
            // THEN a replaced value is a host:port that is not the primary, nor the
            // PrimaryEndpoint, and names a member reported as a replica, or no member at all
            let value = Endpoint::parse(&current).expect("a replaced value names a host:port");
            prop_assert_ne!(&value, &primary.endpoint);
            prop_assert!(g.node_groups[0].primary_endpoint.as_ref() != Some(&value));
            let named = members.iter().find(|m| m.read_endpoint.as_ref() == Some(&value));
            prop_assert!(named.is_none_or(|m| m.current_role.as_deref() == Some("replica")));
        } else if let Ok(value) = Endpoint::parse(&current) {
            // AND a value kept is the primary, the PrimaryEndpoint, or a member not reported as a replica
            let kept = value == primary.endpoint
                || g.node_groups[0].primary_endpoint.as_ref() == Some(&value)
                || members
                    .iter()
                    .find(|m| m.read_endpoint.as_ref() == Some(&value))
                    .is_some_and(|m| m.current_role.as_deref() != Some("replica"));
            prop_assert!(kept, "{} kept for {:?}", current, g);
        }
    }
}

// ---- a plan never yields 0/0, names only the pair, and is a no-op at its target ----

fn cfg(blue_weight: u8, dry_run: bool) -> RollbackConfig {
    let blue_weight = blue_weight.to_string();
    let pairs = [
        ("HOSTED_ZONE_ID", "Z1"),
        ("RECORD_NAME", "app.example.com"),
        ("ALARM_NAMES", "*"),
        ("BLUE_WEIGHT", blue_weight.as_str()),
        ("DRY_RUN", if dry_run { "true" } else { "false" }),
    ];
    let env = Env::from_pairs(&pairs);
    RollbackConfig::from(&env).unwrap()
}

fn intent() -> impl Strategy<Value = Intent> {
    prop_oneof![
        "[a-z ]{0,20}".prop_map(|cause| Intent::Rollback { cause }),
        (0u8..=100).prop_map(|green_percent| Intent::Shift { green_percent }),
        Just(Intent::Status),
        "[a-z ]{0,20}".prop_map(|reason| Intent::Ignore { reason }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn plans_never_zero_zero_and_leave_a_pair_at_its_target_alone(
        intent in intent(),
        blue in 0i64..=255,
        green in 0i64..=255,
        blue_weight in 1u8..=255,
        dry_run in any::<bool>(),
    ) {
        let c = cfg(blue_weight, dry_run);
        let current = Weights { blue, green };
        let p = plan(&intent, current, &c);
        if let Some(w) = p.write {
            prop_assert!(w.blue + w.green > 0, "0/0 from {intent:?} at {blue}/{green}");
            prop_assert!((0..=255).contains(&w.blue) && (0..=255).contains(&w.green));
            prop_assert_ne!(w, current, "a write that changes nothing");
            prop_assert!(!dry_run, "a dry run wrote");
            prop_assert_eq!(p.after, w);
            prop_assert!(p.comment.chars().count() <= 256 && p.comment.starts_with("failover bluegreen-rollback: "));
        } else {
            prop_assert!(p.reason.is_some());
        }
        // planning again from the result writes nothing: the plan is idempotent
        let again = plan(&intent, p.after, &cfg(blue_weight, false));
        prop_assert_eq!(again.write, None, "{:?} from {}/{} then {:?}", intent, blue, green, p.after);
        if matches!(intent, Intent::Rollback { .. }) && !dry_run {
            prop_assert!(p.after.green == 0 && p.after.blue > 0);
            prop_assert!(matches!(p.outcome, Outcome::RolledBack | Outcome::AlreadyRolledBack));
        }
    }
}

// ---- classification never panics, whatever the JSON ----

/// Keys the envelope parsers look at, so generated objects reach deep into them.
const KEYS: &[&str] = &[
    "Records",
    "EventSource",
    "eventSource",
    "Sns",
    "Message",
    "Subject",
    "Type",
    "TopicArn",
    "detail-type",
    "source",
    "detail",
    "account",
    "resources",
    "time",
    "region",
    "id",
    "version",
    "alarmData",
    "alarmName",
    "alarmArn",
    "accountId",
    "state",
    "previousState",
    "value",
    "actionsSuppressedBy",
    "configuration",
    "metrics",
    "metricStat",
    "metric",
    "dimensions",
    "AlarmName",
    "NewStateValue",
    "OldStateValue",
    "AWSAccountId",
    "AlarmArn",
    "Trigger",
    "Dimensions",
    "name",
    "action",
    "green_percent",
    "replication_group_id",
    "ElastiCache:FailoverComplete",
    "Replication Group ID",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("ALARM".to_owned()),
            Just("OK".to_owned()),
            Just("aws:sns".to_owned()),
            Just("aws.cloudwatch".to_owned()),
            Just("aws.events".to_owned()),
            Just("Scheduled Event".to_owned()),
            Just("CloudWatch Alarm State Change".to_owned()),
            Just("shift".to_owned()),
            Just("rollback".to_owned()),
            Just(r#"{"AlarmName":"a","NewStateValue":"ALARM"}"#.to_owned()),
            Just(r#"{"ElastiCache:FailoverComplete":"orders-002"}"#.to_owned()),
            Just("arn:aws:cloudwatch:us-east-1:123456789012:alarm:a".to_owned()),
            ".{0,12}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn classification_never_panics(event in json_value()) {
        let _ = redis_reconciler::trigger::classify(&event);
        let _ = bluegreen_rollback::trigger::classify(&event);
        // and wrapped the way SNS and EventBridge wrap things
        let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": event.to_string(), "Type": "Notification"}}]});
        let _ = redis_reconciler::trigger::classify(&sns);
        let _ = bluegreen_rollback::trigger::classify(&sns);
        let eb = json!({"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": event});
        let _ = redis_reconciler::trigger::classify(&eb);
        let _ = bluegreen_rollback::trigger::classify(&eb);
    }
}
