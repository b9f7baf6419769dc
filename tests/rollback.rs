//! bluegreen-rollback against the emulator's Route 53, through the real SDK client.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use bluegreen_rollback::config::RollbackConfig;
use bluegreen_rollback::handler::{HandlerError, Rollback};
use bluegreen_rollback::plan::{Outcome, Response, Sync};
use failover_core::env::Env;
use failover_tests::emf::Captured;
use failover_tests::lambda::ACCOUNT;
use failover_tests::{deadline, event, Emulator, Handler};
use serde_json::json;

struct Bed {
    emu: Emulator,
    sdk: aws_config::SdkConfig,
    r53: aws_sdk_route53::Client,
    zone: String,
    /// Where the handlers' EMF documents go (not the terminal).
    metrics: Captured,
}

async fn bed() -> Option<Bed> {
    let emu = Emulator::start().await?;
    let sdk = emu.sdk_config().await;
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let zone = emu.hosted_zone().await;
    Some(Bed {
        emu,
        sdk,
        r53,
        zone,
        metrics: Captured::default(),
    })
}

fn a_record(name: &str, id: &str, weight: i64, ttl: i64, ips: &[&str]) -> ResourceRecordSet {
    let mut b = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .set_identifier(id)
        .weight(weight)
        .ttl(ttl);
    for ip in ips {
        b = b.resource_records(ResourceRecord::builder().value(*ip).build().unwrap());
    }
    b.build().unwrap()
}

fn alias_record(name: &str, id: &str, weight: i64, target: &str) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .set_identifier(id)
        .weight(weight)
        .alias_target(
            AliasTarget::builder()
                .hosted_zone_id("Z35SXDOTRQ7X7K")
                .dns_name(target)
                .evaluate_target_health(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

impl Bed {
    /// The configuration the function would read for `app.example.com` in this zone: the two
    /// green alarms of `events/` allowed, a 5 s INSYNC wait, defaults otherwise.
    fn config(&self) -> RollbackConfig {
        let pairs = [
            ("HOSTED_ZONE_ID", self.zone.as_str()),
            ("RECORD_NAME", "app.example.com"),
            ("ALARM_NAMES", "app-green-5xx,app-green-health"),
            ("SYNC_TIMEOUT_SECS", "5"),
        ];
        let env = Env::from_pairs(&pairs);
        RollbackConfig::from(&env).unwrap()
    }

    fn rollback(&self, cfg: RollbackConfig) -> Rollback {
        Rollback::new(cfg, &self.sdk).with_metrics(self.metrics.emitter("Failover", "bluegreen-rollback"))
    }

    /// Creates records, then clears the emulator's request log so that later assertions count
    /// only what the function did.
    async fn create(&self, records: Vec<ResourceRecordSet>) {
        let mut batch = ChangeBatch::builder();
        for r in records {
            batch = batch.changes(
                Change::builder()
                    .action(ChangeAction::Create)
                    .resource_record_set(r)
                    .build()
                    .unwrap(),
            );
        }
        self.r53
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone)
            .change_batch(batch.build().unwrap())
            .send()
            .await
            .unwrap();
        self.emu.clear_operations().await;
    }

    /// The typical pair: A records with distinct TTLs and addresses, blue 75 / green 25.
    async fn create_a_pair(&self) {
        self.create(vec![
            a_record("app.example.com.", "blue", 75, 60, &["192.0.2.10", "192.0.2.11"]),
            a_record("app.example.com.", "green", 25, 30, &["198.51.100.20"]),
        ])
        .await;
    }

    /// Every record in the zone, sorted by name and set identifier.
    async fn records(&self) -> Vec<ResourceRecordSet> {
        let out = self
            .r53
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone)
            .send()
            .await
            .unwrap();
        let mut rs: Vec<ResourceRecordSet> = out.resource_record_sets().to_vec();
        rs.sort_by_key(|r| (r.name().to_owned(), r.set_identifier().unwrap_or_default().to_owned()));
        rs
    }

    async fn record(&self, name: &str, id: &str) -> ResourceRecordSet {
        self.records()
            .await
            .into_iter()
            .find(|r| r.name() == name && r.set_identifier() == Some(id))
            .unwrap_or_else(|| panic!("{name} {id} exists"))
    }

    async fn changes(&self) -> usize {
        self.emu
            .operations()
            .await
            .iter()
            .filter(|o| *o == "route53:ChangeResourceRecordSets")
            .count()
    }
}

fn weights(r: &Response) -> (Option<i64>, Option<i64>) {
    (r.blue_weight, r.green_weight)
}

fn with_weight(r: &ResourceRecordSet, w: i64) -> ResourceRecordSet {
    let mut r = r.clone();
    r.weight = Some(w);
    r
}

#[tokio::test]
async fn alarm_rolls_back_and_keeps_every_other_field() {
    let Some(bed) = bed().await else { return };
    // GIVEN a pair at 75/25 and an unrelated record
    bed.create_a_pair().await;
    bed.create(vec![a_record("www.example.com.", "blue", 10, 300, &["203.0.113.5"])])
        .await;
    let before = bed.records().await;
    // WHEN the green alarm invokes the function
    let resp = bed
        .rollback(bed.config())
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    // THEN traffic is back on blue, in one change
    assert_eq!(resp.action, Outcome::RolledBack);
    assert_eq!(weights(&resp), (Some(100), Some(0)));
    assert!(resp.change_id.is_some());
    assert_eq!(bed.changes().await, 1);
    // AND only the two weights changed: TTLs, addresses and the other record are as they were
    let expected: Vec<ResourceRecordSet> = before
        .iter()
        .map(|r| match (r.name(), r.set_identifier()) {
            ("app.example.com.", Some("blue")) => with_weight(r, 100),
            ("app.example.com.", Some("green")) => with_weight(r, 0),
            _ => r.clone(),
        })
        .collect();
    assert_eq!(bed.records().await, expected);
}

#[tokio::test]
async fn alias_records_keep_their_targets() {
    let Some(bed) = bed().await else { return };
    bed.create(vec![
        alias_record(
            "app.example.com.",
            "blue",
            50,
            "blue-alb-123.us-east-1.elb.amazonaws.com.",
        ),
        alias_record(
            "app.example.com.",
            "green",
            50,
            "green-alb-456.us-east-1.elb.amazonaws.com.",
        ),
    ])
    .await;
    let blue = bed.record("app.example.com.", "blue").await;
    let green = bed.record("app.example.com.", "green").await;
    let resp = bed
        .rollback(bed.config())
        .run("bluegreen-rollback/sns-alarm.json")
        .await
        .unwrap();
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::RolledBack, (Some(100), Some(0)))
    );
    assert_eq!(bed.record("app.example.com.", "blue").await, with_weight(&blue, 100));
    assert_eq!(bed.record("app.example.com.", "green").await, with_weight(&green, 0));
}

#[tokio::test]
async fn the_same_alarm_again_writes_nothing() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    let f = bed.rollback(bed.config());
    f.run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    bed.emu.clear_operations().await;
    // WHEN SNS or Lambda delivers the same ALARM a second time
    let resp = f
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    // THEN nothing is submitted
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::AlreadyRolledBack, (Some(100), Some(0)))
    );
    assert_eq!(bed.changes().await, 0);
}

#[tokio::test]
async fn ok_insufficient_data_and_other_alarms_are_ignored_without_any_call() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    let f = bed.rollback(bed.config());
    bed.emu.clear_operations().await;
    for name in [
        "alarm-action-ok.json",
        "alarm-action-insufficient-data.json",
        "alarm-action-other-alarm.json",
    ] {
        let resp = f.run(&format!("bluegreen-rollback/{name}")).await.unwrap();
        assert_eq!(resp.action, Outcome::Ignored, "{name}");
        assert!(resp.reason.is_some(), "{name}");
    }
    assert_eq!(bed.emu.operations().await, Vec::<String>::new());
    assert_eq!(bed.record("app.example.com.", "green").await.weight(), Some(25));
}

#[tokio::test]
async fn eventbridge_and_composite_alarm_shapes_roll_back() {
    let Some(bed) = bed().await else { return };
    for name in [
        "eventbridge-alarm-state-change.json",
        "alarm-action-composite-alarm.json",
    ] {
        bed.create_a_pair().await;
        let resp = bed
            .rollback(bed.config())
            .run(&format!("bluegreen-rollback/{name}"))
            .await
            .unwrap();
        assert_eq!(
            (resp.action, weights(&resp)),
            (Outcome::RolledBack, (Some(100), Some(0))),
            "{name}"
        );
        // reset the pair for the next shape
        bed.r53
            .change_resource_record_sets()
            .hosted_zone_id(&bed.zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(
                        Change::builder()
                            .action(ChangeAction::Delete)
                            .resource_record_set(bed.record("app.example.com.", "blue").await)
                            .build()
                            .unwrap(),
                    )
                    .changes(
                        Change::builder()
                            .action(ChangeAction::Delete)
                            .resource_record_set(bed.record("app.example.com.", "green").await)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn shift_then_alarm_then_status() {
    let Some(bed) = bed().await else { return };
    bed.create(vec![
        a_record("app.example.com.", "blue", 100, 60, &["192.0.2.10"]),
        a_record("app.example.com.", "green", 0, 60, &["198.51.100.20"]),
    ])
    .await;
    let f = bed.rollback(bed.config());
    let resp = f.run("bluegreen-rollback/command-shift-25.json").await.unwrap();
    assert_eq!((resp.action, weights(&resp)), (Outcome::Shifted, (Some(75), Some(25))));
    assert_eq!(bed.record("app.example.com.", "green").await.weight(), Some(25));
    let resp = f
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::RolledBack, (Some(100), Some(0)))
    );
    bed.emu.clear_operations().await;
    let resp = f.run("bluegreen-rollback/command-status.json").await.unwrap();
    assert_eq!((resp.action, weights(&resp)), (Outcome::Status, (Some(100), Some(0))));
    assert_eq!(bed.changes().await, 0);
}

#[tokio::test]
async fn invalid_commands_and_events_are_rejected_before_any_call() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    let f = bed.rollback(bed.config());
    bed.emu.clear_operations().await;
    for name in [
        "command-shift-150.json",
        "command-shift-missing-percent.json",
        "command-unknown-action.json",
        "invalid-string.json",
        "invalid-object.json",
    ] {
        let err = f.run(&format!("bluegreen-rollback/{name}")).await.unwrap_err();
        assert!(matches!(err, HandlerError::BadEvent(_)), "{name}: {err}");
        assert!(err.to_string().ends_with("nothing was written"), "{err}");
    }
    // and a scheduled event is not a trigger of this function
    let err = f.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
    assert!(err.to_string().contains("Scheduled Event"), "{err}");
    // nor is a 6 MB command, which the error does not echo
    let huge = json!({"action": "x".repeat(6 * 1024 * 1024)});
    let err = f.handle(&huge, deadline(), Some(ACCOUNT)).await.unwrap_err();
    assert!(
        matches!(err, HandlerError::BadEvent(_)) && err.to_string().len() < 2_000,
        "{}",
        err.to_string().len()
    );
    assert_eq!(bed.emu.operations().await, Vec::<String>::new());
}

#[tokio::test]
async fn the_lambda_deadline_is_never_overrun() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    // GIVEN Route 53 answers nothing for 30 s and the invocation has 5 s left
    bed.emu
        .fault(json!({"service": "route53", "operation": "ListResourceRecordSets", "delay_ms": 30000}))
        .await;
    let started = std::time::Instant::now();
    let err = bed
        .rollback(bed.config())
        .handle(
            &event("bluegreen-rollback/alarm-action-metric-alarm.json"),
            tokio::time::Instant::now() + std::time::Duration::from_secs(5),
            Some(ACCOUNT),
        )
        .await
        .unwrap_err();
    // THEN it does not start a read that could outlast the deadline, and says so at once
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.to_string()
            .contains("not enough time left before the Lambda deadline to read the weighted records")
            && err.to_string().contains("no change was submitted"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_green_record_is_an_error_naming_it() {
    let Some(bed) = bed().await else { return };
    bed.create(vec![a_record("app.example.com.", "blue", 100, 60, &["192.0.2.10"])])
        .await;
    let before = bed.records().await;
    let err = bed
        .rollback(bed.config())
        .run("bluegreen-rollback/command-rollback.json")
        .await
        .unwrap_err();
    assert!(
        matches!(err, HandlerError::MissingRecord { color: "green", .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("\"green\"") && err.to_string().contains("GREEN_SET_IDENTIFIER"),
        "{err}"
    );
    assert_eq!(bed.records().await, before);
    assert_eq!(bed.changes().await, 0);
}

#[tokio::test]
async fn dry_run_reports_what_it_would_do_and_writes_nothing() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    let mut cfg = bed.config();
    cfg.dry_run = true;
    let f = bed.rollback(cfg);
    let resp = f
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::WouldRollBack, (Some(100), Some(0)))
    );
    let resp = f.run("bluegreen-rollback/command-shift-100.json").await.unwrap();
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::WouldShift, (Some(0), Some(100)))
    );
    assert_eq!(bed.record("app.example.com.", "green").await.weight(), Some(25));
    assert_eq!(bed.changes().await, 0);
}

#[tokio::test]
async fn a_second_weighted_pair_in_the_zone_is_untouched() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    // GIVEN another blue/green pair, same set identifiers, other name
    bed.create(vec![
        a_record("api.example.com.", "blue", 50, 60, &["192.0.2.50"]),
        a_record("api.example.com.", "green", 50, 60, &["198.51.100.50"]),
    ])
    .await;
    let api_before: Vec<ResourceRecordSet> = bed
        .records()
        .await
        .into_iter()
        .filter(|r| r.name() == "api.example.com.")
        .collect();
    bed.rollback(bed.config())
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    let api_after: Vec<ResourceRecordSet> = bed
        .records()
        .await
        .into_iter()
        .filter(|r| r.name() == "api.example.com.")
        .collect();
    assert_eq!(api_after, api_before);
    assert_eq!(bed.record("app.example.com.", "green").await.weight(), Some(0));
}

#[tokio::test]
async fn route53_busy_with_a_prior_change_is_retried() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    // GIVEN Route 53 answers PriorRequestNotComplete twice
    bed.emu
        .fault(json!({"service": "route53", "operation": "ChangeResourceRecordSets", "status": 400, "code": "PriorRequestNotComplete", "count": 2}))
        .await;
    let resp = bed
        .rollback(bed.config())
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    assert_eq!(resp.action, Outcome::RolledBack);
    assert_eq!(bed.changes().await, 3);
    // AND each attempt was planned from a fresh read, not submitted again as it was
    let reads = bed
        .emu
        .operations()
        .await
        .iter()
        .filter(|o| *o == "route53:ListResourceRecordSets")
        .count();
    assert_eq!(reads, 3);
    assert_eq!(bed.record("app.example.com.", "green").await.weight(), Some(0));
}

#[tokio::test]
async fn both_weights_zero_is_repaired_to_blue() {
    let Some(bed) = bed().await else { return };
    // GIVEN someone set both weights to 0 (Route 53 then splits traffic evenly)
    bed.create(vec![
        a_record("app.example.com.", "blue", 0, 60, &["192.0.2.10"]),
        a_record("app.example.com.", "green", 0, 60, &["198.51.100.20"]),
    ])
    .await;
    let mut cfg = bed.config();
    cfg.blue_weight = 255;
    let resp = bed
        .rollback(cfg)
        .run("bluegreen-rollback/command-rollback.json")
        .await
        .unwrap();
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::RolledBack, (Some(255), Some(0)))
    );
    assert_eq!(bed.record("app.example.com.", "blue").await.weight(), Some(255));
}

#[tokio::test]
async fn an_edit_made_while_the_rollback_is_in_flight_is_kept() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    // GIVEN Route 53 holds the rollback's change for a moment (it carries the function's comment)
    bed.emu
        .fault(json!({"service": "route53", "operation": "ChangeResourceRecordSets",
                      "match": "failover bluegreen-rollback", "delay_ms": 1500, "count": 1}))
        .await;
    let f = bed.rollback(bed.config());
    let rollback = f.run("bluegreen-rollback/alarm-action-metric-alarm.json");
    let pipeline = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // WHILE it is in flight, a deploy pipeline moves blue to new instances
        let blue = bed.record("app.example.com.", "blue").await;
        let mut moved = blue.clone();
        moved.resource_records = Some(vec![ResourceRecord::builder().value("203.0.113.77").build().unwrap()]);
        bed.r53
            .change_resource_record_sets()
            .hosted_zone_id(&bed.zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(
                        Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(moved)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    };
    let (resp, ()) = tokio::join!(rollback, pipeline);
    let resp = resp.unwrap();
    // THEN the held batch, built from the read before the edit, was rejected as a whole, and a
    // batch from a new read was accepted after the pipeline's change
    let log = bed.emu.control("GET", "/_failover/requests", json!({})).await;
    let changes: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "ChangeResourceRecordSets")
        .map(|r| r["status"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(
        changes,
        [400, 200, 200],
        "held rollback, pipeline, rollback from a new read"
    );
    // AND traffic is back on blue AND blue keeps the pipeline's new address
    assert_eq!(weights(&resp), (Some(100), Some(0)));
    let blue = bed.record("app.example.com.", "blue").await;
    assert_eq!(blue.weight(), Some(100));
    let values: Vec<&str> = blue.resource_records().iter().map(|r| r.value()).collect();
    assert_eq!(
        values,
        ["203.0.113.77"],
        "the edit made during the rollback was reverted"
    );
    assert_eq!(bed.record("app.example.com.", "green").await.weight(), Some(0));
}

// ---- the fault matrix (RELIABILITY.md) ----

#[tokio::test]
async fn a_pair_rolled_back_by_someone_else_meanwhile_is_left_alone() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    bed.emu
        .fault(json!({"service": "route53", "operation": "ChangeResourceRecordSets",
                      "match": "failover bluegreen-rollback", "delay_ms": 1500, "count": 1}))
        .await;
    let f = bed.rollback(bed.config());
    let operator = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // WHILE our change is held, an operator moves all traffic to blue by hand (weight 90)
        let blue = bed.record("app.example.com.", "blue").await;
        let green = bed.record("app.example.com.", "green").await;
        bed.r53
            .change_resource_record_sets()
            .hosted_zone_id(&bed.zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(
                        Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(with_weight(&blue, 90))
                            .build()
                            .unwrap(),
                    )
                    .changes(
                        Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(with_weight(&green, 0))
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    };
    let (resp, ()) = tokio::join!(f.run("bluegreen-rollback/alarm-action-metric-alarm.json"), operator);
    // THEN our stale batch is rejected, the fresh read finds the rollback done, and the
    // operator's weights stay
    let resp = resp.unwrap();
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::AlreadyRolledBack, (Some(90), Some(0)))
    );
    assert_eq!(bed.record("app.example.com.", "blue").await.weight(), Some(90));
}

#[tokio::test]
async fn throttling_on_every_call_is_absorbed() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    for operation in ["ListResourceRecordSets", "ChangeResourceRecordSets", "GetChange"] {
        bed.emu
            .fault(
                json!({"service": "route53", "operation": operation, "status": 400, "code": "Throttling", "count": 2}),
            )
            .await;
    }
    let resp = bed
        .rollback(bed.config())
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::RolledBack, (Some(100), Some(0)))
    );
    assert_eq!(resp.sync, Some(Sync::Insync));
}

#[tokio::test]
async fn server_errors_and_access_denied_fail_clearly_within_bounded_time_and_change_nothing() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    let f = bed.rollback(bed.config());
    for (operation, status, code) in [
        ("ListResourceRecordSets", 500, "InternalError"),
        ("ListResourceRecordSets", 403, "AccessDenied"),
        ("ChangeResourceRecordSets", 500, "InternalError"),
        ("ChangeResourceRecordSets", 403, "AccessDenied"),
    ] {
        bed.emu.control("DELETE", "/_failover/faults", json!({})).await;
        bed.emu
            .fault(json!({"service": "route53", "operation": operation, "status": status, "code": code}))
            .await;
        let started = std::time::Instant::now();
        let err = f
            .run("bluegreen-rollback/alarm-action-metric-alarm.json")
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        // a 500 on the change leaves it unclear whether the batch was applied, and says so
        if (operation, status) == ("ChangeResourceRecordSets", 500) {
            assert!(matches!(err, HandlerError::Unclear(_)), "{operation} {status}: {err}");
        } else {
            assert!(matches!(err, HandlerError::Route53(_)), "{operation} {status}: {err}");
        }
        assert!(err.to_string().contains(code), "{operation} {status}: {err}");
        assert!(
            elapsed < failover_core::sdk::OPERATION_TIMEOUT + std::time::Duration::from_secs(2),
            "{elapsed:?}"
        );
        bed.emu.control("DELETE", "/_failover/faults", json!({})).await;
        assert_eq!(
            bed.record("app.example.com.", "green").await.weight(),
            Some(25),
            "nothing changed"
        );
    }
}

#[tokio::test]
async fn a_change_accepted_but_not_confirmed_is_reported_done() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    // GIVEN GetChange fails every time after Route 53 accepted the change
    bed.emu
        .fault(json!({"service": "route53", "operation": "GetChange", "status": 500, "code": "InternalError"}))
        .await;
    let resp = bed
        .rollback(bed.config())
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    // THEN the invocation succeeds: the rollback happened, only its sync state is unknown
    assert_eq!(
        (resp.action, weights(&resp)),
        (Outcome::RolledBack, (Some(100), Some(0)))
    );
    assert_eq!(resp.sync, Some(Sync::Unknown));
    assert!(resp.change_id.is_some());
    assert_eq!(bed.record("app.example.com.", "green").await.weight(), Some(0));
}

#[tokio::test]
async fn alarms_of_another_account_and_suppressed_alarms_change_nothing() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    let f = bed.rollback(bed.config());
    let mut foreign = event("bluegreen-rollback/alarm-action-metric-alarm.json");
    foreign["accountId"] = json!("210987654321");
    foreign["alarmArn"] = json!("arn:aws:cloudwatch:us-east-1:210987654321:alarm:app-green-5xx");
    let mut suppressed = event("bluegreen-rollback/eventbridge-alarm-state-change.json");
    suppressed["detail"]["state"]["actionsSuppressedBy"] = json!("Alarm");
    suppressed["detail"]["state"]["actionsSuppressedReason"] = json!("Alarm app-deploy-in-progress in ALARM");
    for event in [foreign, suppressed] {
        let resp = f.handle(&event, deadline(), Some(ACCOUNT)).await.unwrap();
        assert_eq!(resp.action, Outcome::Ignored, "{:?}", resp.reason);
    }
    // the same events from this account, unsuppressed, would roll back (checked above); here
    // nothing was read or written
    assert_eq!(bed.emu.operations().await, Vec::<String>::new());
}

#[tokio::test]
async fn an_already_rolled_back_alarm_makes_one_list_call_only() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    let f = bed.rollback(bed.config());
    f.run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    bed.emu.clear_operations().await;
    let resp = f
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    assert_eq!(resp.action, Outcome::AlreadyRolledBack);
    assert_eq!(bed.emu.operations().await, ["route53:ListResourceRecordSets"]);
}

// ---- hardening (issue 18): Route 53's spellings, throttling under any name, true errors ----

#[tokio::test]
async fn a_wildcard_pair_is_found_rolled_back_and_shifted() {
    let Some(bed) = bed().await else { return };
    // GIVEN a weighted pair for *.shop.example.com (Route 53 lists it as \052.shop.example.com.)
    bed.create(vec![
        a_record("*.shop.example.com.", "blue", 75, 60, &["192.0.2.10"]),
        a_record("*.shop.example.com.", "green", 25, 60, &["198.51.100.20"]),
    ])
    .await;
    let listed = bed.records().await;
    assert!(
        listed.iter().any(|r| r.name() == "\\052.shop.example.com."),
        "the emulator spells names as Route 53 does: {listed:?}"
    );
    let mut cfg = bed.config();
    cfg.record_name = "*.shop.example.com.".into();
    let r = bed.rollback(cfg);
    // WHEN asked for status, then an alarm fires, then an operator shifts 10 %
    let status = r.run("bluegreen-rollback/command-status.json").await.unwrap();
    assert_eq!(weights(&status), (Some(75), Some(25)));
    let rolled = r
        .run("bluegreen-rollback/alarm-action-metric-alarm.json")
        .await
        .unwrap();
    assert_eq!(rolled.action, Outcome::RolledBack);
    assert_eq!(bed.record("\\052.shop.example.com.", "green").await.weight(), Some(0));
    let shift = json!({"action": "shift", "green_percent": 10});
    let shifted = r.handle(&shift, deadline(), Some(ACCOUNT)).await.unwrap();
    // THEN each found the pair and changed only its weights
    assert_eq!(shifted.action, Outcome::Shifted);
    assert_eq!(bed.record("\\052.shop.example.com.", "blue").await.weight(), Some(90));
    assert_eq!(bed.record("\\052.shop.example.com.", "green").await.weight(), Some(10));
    assert_eq!(bed.records().await.len(), listed.len(), "no record added or lost");
}

#[tokio::test]
async fn throttling_of_the_change_under_any_aws_name_is_read_again_and_planned_again() {
    for code in [
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    ] {
        let Some(bed) = bed().await else { return };
        bed.create_a_pair().await;
        // GIVEN Route 53 throttles the change twice under this name
        bed.emu
            .fault(json!({"service": "route53", "operation": "ChangeResourceRecordSets", "status": 400, "code": code, "count": 2}))
            .await;
        // WHEN the alarm fires
        let resp = bed
            .rollback(bed.config())
            .run("bluegreen-rollback/alarm-action-metric-alarm.json")
            .await
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        // THEN the pair was read again before each attempt, and traffic is back on blue
        assert_eq!(resp.action, Outcome::RolledBack, "{code}");
        let ops = bed.emu.operations().await;
        let reads = ops.iter().filter(|o| *o == "route53:ListResourceRecordSets").count();
        assert_eq!((bed.changes().await, reads), (3, 3), "{code}: {ops:?}");
        assert_eq!(
            bed.record("app.example.com.", "green").await.weight(),
            Some(0),
            "{code}"
        );
    }
}

#[tokio::test]
async fn an_error_after_an_unclear_answer_never_says_nothing_changed() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    // GIVEN every change gets a 500 (it may or may not have been applied) ...
    bed.emu
        .fault(json!({"service": "route53", "operation": "ChangeResourceRecordSets", "status": 500, "code": "InternalFailure"}))
        .await;
    // ... and the invocation has time for about a second of attempts
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(22);
    let err = bed
        .rollback(bed.config())
        .handle(
            &event("bluegreen-rollback/alarm-action-metric-alarm.json"),
            deadline,
            Some(ACCOUNT),
        )
        .await
        .unwrap_err();
    // THEN the error says the change may have landed, and never that none was applied
    let text = err.to_string();
    assert!(text.contains("may or may not have been applied"), "{text}");
    assert!(!text.contains("no change was"), "{text}");
    assert!(text.contains("{\"action\":\"status\"}"), "{text}");
}

#[tokio::test]
async fn a_failed_read_after_an_unclear_answer_says_the_change_may_have_been_applied() {
    let Some(bed) = bed().await else { return };
    bed.create_a_pair().await;
    // GIVEN the change is held for a second, then answered with a 500 ...
    bed.emu
        .fault(
            json!({"service": "route53", "operation": "ChangeResourceRecordSets", "status": 500,
                      "code": "InternalFailure", "delay_ms": 1000, "count": 1}),
        )
        .await;
    let f = bed.rollback(bed.config());
    let rollback = f.run("bluegreen-rollback/alarm-action-metric-alarm.json");
    // ... and meanwhile Route 53 starts failing the listing too
    let outage = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        bed.emu
            .fault(json!({"service": "route53", "operation": "ListResourceRecordSets", "status": 500, "code": "InternalFailure"}))
            .await;
    };
    let (err, ()) = tokio::join!(rollback, outage);
    // THEN the read's error says the change submitted before may have been applied
    let text = err.unwrap_err().to_string();
    assert!(text.starts_with("Failed to list records"), "{text}");
    assert!(text.contains("may or may not have been applied"), "{text}");
}
