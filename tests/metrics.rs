//! Every path of both functions emits exactly one valid CloudWatch EMF document per invocation
//! (checked against the specification in `harness/emf.rs`), with the figures that path stands for.
//! The handlers run in-process against the emulator, their metrics sent to a buffer; the
//! process tests (`processes.rs`) read the same documents from the binaries' stdout.

use std::time::{Duration, SystemTime};

use bluegreen_rollback::config::RollbackConfig;
use bluegreen_rollback::handler::Rollback;
use failover_core::env::Env;
use failover_tests::emf::{Captured, Document};
use failover_tests::lambda::ACCOUNT;
use failover_tests::{deadline, event, Emulator};
use redis_reconciler::config::ReconcilerConfig;
use redis_reconciler::handler::Reconciler;
use serde_json::{json, Value};

const NAMESPACE: &str = "Team/Failover";

/// The document's own checks every path must pass: namespace, dimension sets, every declared
/// name one the function lists, every count metric present.
fn common(doc: &Document, function: &str, names: &[&str], counts: &[&str], group: Option<&str>) {
    assert_eq!(doc.namespace, NAMESPACE);
    assert_eq!(doc.dimension("FunctionName"), Some(function));
    let mut sets = vec![vec!["FunctionName".to_owned()]];
    if let Some(group) = group {
        sets.push(vec!["FunctionName".to_owned(), "ReplicationGroupId".to_owned()]);
        assert_eq!(doc.dimension("ReplicationGroupId"), Some(group));
    } else {
        assert_eq!(doc.dimension("ReplicationGroupId"), None);
    }
    assert_eq!(doc.dimensions, sets);
    for name in doc.names() {
        assert!(names.contains(&name), "{name} is not in the function's NAMES {names:?}");
    }
    for name in counts {
        let unit = doc.metrics.iter().find(|(n, _)| n == name).map(|(_, u)| u.as_str());
        assert_eq!(unit, Some("Count"), "{name} present as a count");
    }
    for (name, unit) in &doc.metrics {
        if !counts.contains(&name.as_str()) {
            assert_eq!(unit, "Milliseconds", "{name}");
        }
    }
}

/// `value` with its time fields set to `ago` before now: SNS `Timestamp` and EventBridge `time`
/// (RFC 3339), the alarm's `state.timestamp` (CloudWatch's `+0000` spelling).
fn happened(mut value: Value, ago: Duration) -> Value {
    let at = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() - ago);
    let rfc = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let cw = at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string();
    if let Some(sns) = value.pointer_mut("/Records/0/Sns") {
        sns["Timestamp"] = json!(rfc);
    }
    if let Some(time) = value.get_mut("time") {
        *time = json!(rfc);
    }
    if let Some(state) = value.pointer_mut("/alarmData/state") {
        state["timestamp"] = json!(cw);
    }
    value
}

const RECONCILER_COUNTS: &[&str] = &[
    "ColdStart",
    "TargetsSeen",
    "TargetsUpdated",
    "TargetsUnchanged",
    "TargetsWouldUpdate",
    "TargetsFailed",
    "Rejected",
];

fn reconciler_config(pairs: &[(&'static str, &'static str)]) -> ReconcilerConfig {
    let mut all = vec![("SETTLE_TIMEOUT_SECS", "3"), ("METRICS_NAMESPACE", NAMESPACE)];
    all.extend_from_slice(pairs);
    let env = Env::from_pairs(&all);
    ReconcilerConfig::from(&env).unwrap()
}

#[tokio::test]
async fn every_reconciler_path_emits_one_valid_document_with_its_figures() {
    let Some(emu) = Emulator::start().await else { return };
    let sdk = emu.sdk_config().await;
    let ec = aws_sdk_elasticache::Client::new(&sdk);
    ec.create_replication_group()
        .replication_group_id("orders")
        .replication_group_description("metrics")
        .engine("redis")
        .replicas_per_node_group(1)
        .send()
        .await
        .unwrap();
    let captured = Captured::default();
    let one = reconciler_config(&[("REDIS_TARGETS", "orders=/app/orders/redis")]);
    let r = Reconciler::new(one, &sdk).with_metrics(captured.emitter(NAMESPACE, "reconciler"));
    let names = redis_reconciler::metrics::NAMES;
    let check = |doc: &Document, group| common(doc, "reconciler", names, RECONCILER_COUNTS, group);
    let fig = |doc: &Document, name: &str| doc.metric(name).unwrap_or_else(|| panic!("{name} in {:?}", doc.json));

    // The first invocation creates the parameter: a cold start, one group, no event time.
    r.handle(&event("redis-reconciler/direct-all.json"), deadline())
        .await
        .unwrap();
    let doc = captured.one();
    check(&doc, Some("orders"));
    assert_eq!(
        (
            fig(&doc, "ColdStart"),
            fig(&doc, "TargetsSeen"),
            fig(&doc, "TargetsUpdated")
        ),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(
        doc.metric("PublishLatency"),
        None,
        "a direct invocation carries no time"
    );
    assert!(fig(&doc, "SettleWait") >= 0.0);

    // Nothing changed: unchanged, warm.
    let schedule = happened(event("redis-reconciler/eventbridge-scheduled.json"), Duration::ZERO);
    r.handle(&schedule, deadline()).await.unwrap();
    let doc = captured.one();
    check(&doc, Some("orders"));
    assert_eq!(
        (
            fig(&doc, "ColdStart"),
            fig(&doc, "TargetsUnchanged"),
            fig(&doc, "TargetsUpdated")
        ),
        (0.0, 1.0, 0.0)
    );
    assert_eq!(doc.metric("PublishLatency"), None, "nothing was written");

    // A failover, notified 2 s after it happened: the publish latency counts from the SNS time.
    emu.failover("orders", "orders-002").await;
    let notice = happened(
        event("redis-reconciler/sns-elasticache-failover-complete.json"),
        Duration::from_secs(2),
    );
    r.handle(&notice, deadline()).await.unwrap();
    let doc = captured.one();
    check(&doc, Some("orders"));
    assert_eq!(fig(&doc, "TargetsUpdated"), 1.0);
    let latency = fig(&doc, "PublishLatency");
    assert!((2_000.0..10_000.0).contains(&latency), "publish latency {latency} ms");

    // A dry run after another failover would update.
    emu.failover("orders", "orders-001").await;
    let dry = reconciler_config(&[("REDIS_TARGETS", "orders=/app/orders/redis"), ("DRY_RUN", "true")]);
    let dry = Reconciler::new(dry, &sdk).with_metrics(captured.emitter(NAMESPACE, "reconciler"));
    dry.handle(&schedule, deadline()).await.unwrap();
    let doc = captured.one();
    check(&doc, Some("orders"));
    assert_eq!(
        (fig(&doc, "TargetsWouldUpdate"), fig(&doc, "TargetsUpdated")),
        (1.0, 0.0)
    );

    // Two targets, one of which does not exist: the invocation fails; no group dimension.
    let two = reconciler_config(&[("REDIS_TARGETS", "orders=/app/orders/redis,ghost=/app/ghost/redis")]);
    let two = Reconciler::new(two, &sdk).with_metrics(captured.emitter(NAMESPACE, "reconciler"));
    two.handle(&schedule, deadline()).await.unwrap_err();
    let doc = captured.one();
    check(&doc, None);
    assert_eq!(
        (
            fig(&doc, "TargetsSeen"),
            fig(&doc, "TargetsFailed"),
            fig(&doc, "TargetsUpdated")
        ),
        (2.0, 1.0, 1.0)
    );

    // Refused events: junk, and a direct call naming a group we do not manage.
    for junk in [
        "redis-reconciler/invalid-string.json",
        "redis-reconciler/direct-unmanaged-group.json",
    ] {
        r.handle(&event(junk), deadline()).await.unwrap_err();
        let doc = captured.one();
        check(&doc, None);
        assert_eq!((fig(&doc, "Rejected"), fig(&doc, "TargetsSeen")), (1.0, 0.0), "{junk}");
    }

    // Another group's failover: nothing to do, not a refusal.
    r.handle(
        &event("redis-reconciler/sns-elasticache-unmanaged-group.json"),
        deadline(),
    )
    .await
    .unwrap();
    let doc = captured.one();
    check(&doc, None);
    assert_eq!((fig(&doc, "Rejected"), fig(&doc, "TargetsSeen")), (0.0, 0.0));
}

const ROLLBACK_COUNTS: &[&str] = &[
    "ColdStart",
    "RolledBack",
    "Shifted",
    "AlreadyRolledBack",
    "Ignored",
    "DryRun",
    "Failed",
];

#[tokio::test]
async fn every_rollback_path_emits_one_valid_document_with_its_figures() {
    let Some(emu) = Emulator::start().await else { return };
    let sdk = emu.sdk_config().await;
    let zone = emu.weighted_pair(75, 25).await;
    let captured = Captured::default();
    let rollback = |extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("HOSTED_ZONE_ID", zone.as_str()),
            ("RECORD_NAME", "app.example.com"),
            ("ALARM_NAMES", "app-green-5xx"),
            ("SYNC_TIMEOUT_SECS", "5"),
            ("METRICS_NAMESPACE", NAMESPACE),
        ];
        pairs.extend_from_slice(extra);
        let env = Env::from_pairs(&pairs);
        let cfg = RollbackConfig::from(&env).unwrap();
        Rollback::new(cfg, &sdk).with_metrics(captured.emitter(NAMESPACE, "rollback"))
    };
    let names = bluegreen_rollback::metrics::NAMES;
    let check = |doc: &Document| common(doc, "rollback", names, ROLLBACK_COUNTS, None);
    let counts = |doc: &Document| {
        ROLLBACK_COUNTS[1..]
            .iter()
            .map(|n| doc.metric(n).unwrap())
            .collect::<Vec<_>>()
    };
    let f = rollback(&[]);

    // A dry run decides on the rollback and writes nothing.
    let dry = rollback(&[("DRY_RUN", "true")]);
    let alarm = happened(
        event("bluegreen-rollback/alarm-action-metric-alarm.json"),
        Duration::from_secs(3),
    );
    dry.handle(&alarm, deadline(), Some(ACCOUNT)).await.unwrap();
    let doc = captured.one();
    check(&doc);
    assert_eq!(counts(&doc), [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(doc.metric("RollbackLatency"), None, "nothing was changed");

    // The alarm, 3 s after its state changed: rolled back, latency from the alarm's own time.
    f.handle(&alarm, deadline(), Some(ACCOUNT)).await.unwrap();
    let doc = captured.one();
    check(&doc);
    assert_eq!(doc.metric("ColdStart"), Some(1.0));
    assert_eq!(counts(&doc), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let latency = doc.metric("RollbackLatency").expect("RollbackLatency");
    assert!((3_000.0..10_000.0).contains(&latency), "rollback latency {latency} ms");
    assert!(doc.metric("TimeToInsync").is_some_and(|ms| ms >= 0.0), "{:?}", doc.json);

    // The same alarm again: already rolled back.
    f.handle(&alarm, deadline(), Some(ACCOUNT)).await.unwrap();
    let doc = captured.one();
    check(&doc);
    assert_eq!(doc.metric("ColdStart"), Some(0.0));
    assert_eq!(counts(&doc), [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);

    // Another alarm: ignored. A shift on command. A status read: no count.
    let steps: [(&str, [f64; 6]); 3] = [
        (
            "bluegreen-rollback/alarm-action-other-alarm.json",
            [0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        ),
        (
            "bluegreen-rollback/command-shift-25.json",
            [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        ),
        ("bluegreen-rollback/command-status.json", [0.0; 6]),
    ];
    for (file, want) in steps {
        f.handle(&event(file), deadline(), Some(ACCOUNT)).await.unwrap();
        let doc = captured.one();
        check(&doc);
        assert_eq!(counts(&doc), want, "{file}");
        assert_eq!(doc.metric("RollbackLatency"), None, "{file}");
    }

    // Failures: a junk event, and a pair whose green record does not exist.
    f.handle(
        &event("bluegreen-rollback/invalid-string.json"),
        deadline(),
        Some(ACCOUNT),
    )
    .await
    .unwrap_err();
    let doc = captured.one();
    check(&doc);
    assert_eq!(counts(&doc), [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    let missing = rollback(&[("GREEN_SET_IDENTIFIER", "teal")]);
    missing.handle(&alarm, deadline(), Some(ACCOUNT)).await.unwrap_err();
    let doc = captured.one();
    check(&doc);
    assert_eq!(counts(&doc), [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
}
