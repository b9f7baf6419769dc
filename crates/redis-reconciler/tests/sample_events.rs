//! Every sample event in `events/redis-reconciler/` classifies as its README row says.

use failover_core::envelope::{AlarmState, TriggerError};
use redis_reconciler::trigger::{classify, Scope, Trigger, TriggerKind};
use serde_json::Value;

macro_rules! event {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("../../../events/redis-reconciler/", $name)))
            .expect(concat!($name, " is valid JSON"))
    };
}

fn hinted(names: &[&str]) -> Scope {
    Scope::Hinted(names.iter().map(|s| s.to_string()).collect())
}

#[test]
fn elasticache_failover_complete_names_the_cluster_and_group() {
    // GIVEN the SNS notification ElastiCache sends after a failover
    let t = classify(&event!("sns-elasticache-failover-complete.json")).unwrap();
    // THEN it is an ElastiCache trigger hinting at the new primary's cluster and its group
    assert_eq!(
        t,
        Trigger {
            kind: TriggerKind::ElastiCache {
                event: "ElastiCache:FailoverComplete".into(),
                source_id: "orders-002".into()
            },
            scope: hinted(&["orders-002", "orders"]),
        }
    );
}

#[test]
fn elasticache_notification_variants() {
    assert_eq!(
        classify(&event!("sns-elasticache-failover-complete-cluster-only.json"))
            .unwrap()
            .scope,
        hinted(&["orders-002"])
    );
    assert_eq!(
        classify(&event!("sns-elasticache-failover-complete-group-keyed.json"))
            .unwrap()
            .scope,
        hinted(&["orders"])
    );
    assert_eq!(
        classify(&event!("sns-elasticache-unmanaged-group.json")).unwrap().scope,
        hinted(&["billing-002", "billing"])
    );
}

#[test]
fn cloudwatch_alarm_via_sns_hints_at_its_cache_cluster() {
    let t = classify(&event!("sns-cloudwatch-alarm.json")).unwrap();
    assert_eq!(
        t.kind,
        TriggerKind::Alarm {
            alarm: "orders-primary-not-master".into(),
            state: AlarmState::Alarm
        }
    );
    assert_eq!(t.scope, hinted(&["orders-001"]));
}

#[test]
fn cloudwatch_alarm_via_eventbridge_hints_at_its_cache_cluster() {
    let t = classify(&event!("eventbridge-alarm-state-change.json")).unwrap();
    assert_eq!(
        t.kind,
        TriggerKind::Alarm {
            alarm: "orders-primary-not-master".into(),
            state: AlarmState::Alarm
        }
    );
    assert_eq!(t.scope, hinted(&["orders-001"]));
}

#[test]
fn any_other_sns_message_and_the_schedule_reconcile_everything() {
    assert_eq!(
        classify(&event!("sns-other-message.json")).unwrap(),
        Trigger {
            kind: TriggerKind::SnsMessage,
            scope: Scope::All
        }
    );
    assert_eq!(
        classify(&event!("eventbridge-scheduled.json")).unwrap(),
        Trigger {
            kind: TriggerKind::Schedule,
            scope: Scope::All
        }
    );
}

#[test]
fn direct_invocations() {
    assert_eq!(
        classify(&event!("direct-all.json")).unwrap(),
        Trigger {
            kind: TriggerKind::Direct,
            scope: Scope::All
        }
    );
    assert_eq!(
        classify(&event!("direct-one-group.json")).unwrap().scope,
        Scope::Exactly("orders".into())
    );
    assert_eq!(
        classify(&event!("direct-unmanaged-group.json")).unwrap().scope,
        Scope::Exactly("billing".into())
    );
}

#[test]
fn invalid_envelopes_are_errors_that_list_the_accepted_shapes() {
    for (name, event, found) in [
        ("invalid-string.json", event!("invalid-string.json"), "string"),
        ("invalid-array.json", event!("invalid-array.json"), "array"),
        ("invalid-object.json", event!("invalid-object.json"), "keys"),
        (
            "invalid-eventbridge-other-detail-type.json",
            event!("invalid-eventbridge-other-detail-type.json"),
            "EC2 Instance State-change Notification",
        ),
        ("invalid-sqs-record.json", event!("invalid-sqs-record.json"), "aws:sqs"),
    ] {
        let err = classify(&event).expect_err(name);
        assert!(matches!(err, TriggerError::Unrecognised { .. }), "{name}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(found) && msg.contains("Scheduled Event") && msg.contains("replication_group_id"),
            "{name}: {msg}"
        );
    }
}
