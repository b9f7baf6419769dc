//! redis-reconciler against the emulator, through the real SDK clients.
//!
//! Every test starts its own emulator on 127.0.0.1, creates replication groups with moto, and
//! calls the handler directly with sample events from `events/`.

use std::time::Duration;

use aws_sdk_elasticache::types::ClusterMode;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};
use failover_core::env::Env;
use failover_tests::emf::Captured;
use failover_tests::{deadline, event, Emulator, Handler};
use redis_reconciler::config::ReconcilerConfig;
use redis_reconciler::handler::{HandlerError, Reconciler};
use redis_reconciler::plan::{Action, Response, TargetResult, REDACTED};
use redis_reconciler::topology::EndpointMode;
use serde_json::{json, Value};
use tokio::time::Instant;

/// The emulator plus clients to set up and inspect state.
struct Bed {
    emu: Emulator,
    sdk: aws_config::SdkConfig,
    ec: aws_sdk_elasticache::Client,
    ssm: aws_sdk_ssm::Client,
    /// Where the handlers' EMF documents go (not the terminal).
    metrics: Captured,
}

async fn bed() -> Option<Bed> {
    let emu = Emulator::start().await?;
    let sdk = emu.sdk_config().await;
    Some(Bed {
        metrics: Captured::default(),
        ec: aws_sdk_elasticache::Client::new(&sdk),
        ssm: aws_sdk_ssm::Client::new(&sdk),
        sdk,
        emu,
    })
}

/// The configuration the function would read from `REDIS_TARGETS`, with a 3 s settle timeout.
fn config(targets: &[(&str, &str)]) -> ReconcilerConfig {
    let list: Vec<String> = targets.iter().map(|(g, p)| format!("{g}={p}")).collect();
    let list = list.join(",");
    let pairs = [("REDIS_TARGETS", list.as_str()), ("SETTLE_TIMEOUT_SECS", "3")];
    let env = Env::from_pairs(&pairs);
    ReconcilerConfig::from(&env).unwrap()
}

impl Bed {
    /// Creates a cluster-mode-disabled group with a primary `<id>-001` and a replica `<id>-002`.
    async fn create_group(&self, id: &str) {
        self.ec
            .create_replication_group()
            .replication_group_id(id)
            .replication_group_description("test group")
            .engine("redis")
            .cache_node_type("cache.t4g.micro")
            .replicas_per_node_group(1)
            .automatic_failover_enabled(true)
            .send()
            .await
            .expect("create replication group");
    }

    /// `host:port` of a member, as ElastiCache reports it.
    async fn member_endpoint(&self, group: &str, member: &str) -> String {
        let out = self
            .ec
            .describe_replication_groups()
            .replication_group_id(group)
            .send()
            .await
            .unwrap();
        let m = out.replication_groups()[0].node_groups()[0]
            .node_group_members()
            .iter()
            .find(|m| m.cache_cluster_id() == Some(member))
            .expect("member exists")
            .read_endpoint()
            .expect("member endpoint")
            .clone();
        format!("{}:{}", m.address().unwrap(), m.port().unwrap())
    }

    fn reconciler(&self, cfg: ReconcilerConfig) -> Reconciler {
        Reconciler::new(cfg, &self.sdk).with_metrics(self.metrics.emitter("Failover", "redis-reconciler"))
    }

    /// `(value, version)` of a parameter, or `None` if it does not exist.
    async fn param(&self, name: &str) -> Option<(String, i64)> {
        match self.ssm.get_parameter().name(name).with_decryption(true).send().await {
            Ok(out) => out.parameter().map(|p| (p.value().unwrap().to_owned(), p.version())),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => None,
            Err(e) => panic!("get parameter {name}: {e:?}"),
        }
    }

    async fn put_param(&self, name: &str, value: &str, kind: ParameterType) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    async fn puts(&self) -> usize {
        self.emu
            .operations()
            .await
            .iter()
            .filter(|o| *o == "ssm:PutParameter")
            .count()
    }
}

fn result_of<'a>(response: &'a Response, group: &str) -> &'a TargetResult {
    response
        .results
        .iter()
        .find(|r| r.replication_group_id == group)
        .unwrap_or_else(|| panic!("no result for {group}: {response:?}"))
}

#[tokio::test]
async fn initial_sync_creates_the_parameter_with_the_primary_node() {
    let Some(bed) = bed().await else { return };
    // GIVEN a group whose primary is orders-001 and no parameter yet
    bed.create_group("orders").await;
    let primary = bed.member_endpoint("orders", "orders-001").await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    // WHEN invoked directly with {}
    let resp = r.run("redis-reconciler/direct-all.json").await.unwrap();
    // THEN the parameter is created with the primary node's own endpoint
    let res = result_of(&resp, "orders");
    assert_eq!(
        (res.action, res.previous.as_deref(), res.current.as_deref()),
        (Action::Updated, None, Some(primary.as_str()))
    );
    assert_eq!(res.node.as_deref(), Some("orders-001"));
    assert_eq!(bed.param("/app/orders/redis").await, Some((primary.clone(), 1)));
    // AND it is a String with a description naming group, node and trigger
    let described = bed
        .ssm
        .describe_parameters()
        .parameter_filters(
            ParameterStringFilter::builder()
                .key("Name")
                .values("/app/orders/redis")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let meta = &described.parameters()[0];
    assert_eq!(meta.r#type(), Some(&ParameterType::String));
    let text = meta.description().unwrap();
    assert!(
        text.contains("orders") && text.contains("orders-001") && text.contains("direct invocation"),
        "{text}"
    );
    // AND the response serialises to the documented shape
    let json = serde_json::to_value(&resp).unwrap();
    assert_eq!(json["results"][0]["action"], "updated");
    assert_eq!(json["results"][0]["previous"], Value::Null);
    assert!(json["results"][0].get("error").is_none());
}

#[tokio::test]
async fn an_unchanged_endpoint_creates_no_new_version() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    r.run("redis-reconciler/direct-all.json").await.unwrap();
    let before = bed.param("/app/orders/redis").await.unwrap();
    bed.emu.clear_operations().await;
    // WHEN the schedule fires with nothing changed
    let resp = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
    // THEN nothing is written: same version, no PutParameter at all
    assert_eq!(result_of(&resp, "orders").action, Action::Unchanged);
    assert_eq!(bed.param("/app/orders/redis").await.unwrap(), before);
    assert_eq!(bed.puts().await, 0);
}

#[tokio::test]
async fn failover_then_failover_complete_moves_the_parameter() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    r.run("redis-reconciler/direct-all.json").await.unwrap();
    let old = bed.member_endpoint("orders", "orders-001").await;
    let new = bed.member_endpoint("orders", "orders-002").await;
    // GIVEN ElastiCache fails the group over (TestFailover, as an operator would)
    bed.ec
        .test_failover()
        .replication_group_id("orders")
        .node_group_id("0001")
        .send()
        .await
        .expect("TestFailover");
    // WHEN the FailoverComplete notification arrives
    let resp = r
        .run("redis-reconciler/sns-elasticache-failover-complete.json")
        .await
        .unwrap();
    // THEN the parameter moves from the old primary to the new one
    let res = result_of(&resp, "orders");
    assert_eq!(
        (res.action, res.previous.as_deref(), res.current.as_deref()),
        (Action::Updated, Some(old.as_str()), Some(new.as_str()))
    );
    assert_eq!(bed.param("/app/orders/redis").await, Some((new, 2)));
    assert_eq!(resp.trigger, "ElastiCache:FailoverComplete orders-002");
}

#[tokio::test]
async fn the_schedule_repairs_a_drifted_parameter() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    // GIVEN someone wrote a stale endpoint by hand
    bed.put_param("/app/orders/redis", "stale.example.com:6379", ParameterType::String)
        .await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    let resp = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
    let res = result_of(&resp, "orders");
    assert_eq!(
        (res.action, res.previous.as_deref()),
        (Action::Updated, Some("stale.example.com:6379"))
    );
    assert_eq!(
        bed.param("/app/orders/redis").await.unwrap().0,
        bed.member_endpoint("orders", "orders-001").await
    );
}

#[tokio::test]
async fn primary_endpoint_mode_publishes_the_dns_name_which_failover_does_not_change() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let mut cfg = config(&[("orders", "/app/orders/redis")]);
    cfg.endpoint_mode = EndpointMode::PrimaryEndpoint;
    let r = bed.reconciler(cfg);
    let first = r.run("redis-reconciler/direct-all.json").await.unwrap();
    let published = first.results[0].current.clone().unwrap();
    assert!(
        published.starts_with("master.orders.") && published.ends_with(":6379"),
        "{published}"
    );
    assert_eq!(first.results[0].node.as_deref(), Some("primary-endpoint"));
    bed.emu.failover("orders", "orders-002").await;
    let after = r
        .run("redis-reconciler/sns-elasticache-failover-complete.json")
        .await
        .unwrap();
    assert_eq!(
        after.results[0].action,
        Action::Unchanged,
        "the DNS name stays the same across a failover"
    );
}

#[tokio::test]
async fn cluster_mode_enabled_publishes_the_configuration_endpoint() {
    let Some(bed) = bed().await else { return };
    bed.ec
        .create_replication_group()
        .replication_group_id("shards")
        .replication_group_description("sharded")
        .engine("redis")
        .cluster_mode(ClusterMode::Enabled)
        .num_node_groups(2)
        .replicas_per_node_group(1)
        .send()
        .await
        .unwrap();
    let r = bed.reconciler(config(&[("shards", "/app/shards/redis")]));
    let resp = r.run("redis-reconciler/direct-all.json").await.unwrap();
    let res = result_of(&resp, "shards");
    assert_eq!(res.node.as_deref(), Some("configuration-endpoint"));
    assert!(
        res.current.as_deref().unwrap().starts_with("clustercfg.shards."),
        "{res:?}"
    );
}

#[tokio::test]
async fn three_targets_one_drifted_uses_batched_reads_and_writes_once() {
    let Some(bed) = bed().await else { return };
    for g in ["orders", "sessions", "carts"] {
        bed.create_group(g).await;
    }
    let r = bed.reconciler(config(&[
        ("orders", "/app/orders/redis"),
        ("sessions", "/app/sessions/redis"),
        ("carts", "/app/carts/redis"),
    ]));
    r.run("redis-reconciler/direct-all.json").await.unwrap();
    // GIVEN sessions failed over
    bed.emu.failover("sessions", "sessions-002").await;
    bed.emu.clear_operations().await;
    // WHEN the schedule fires
    let resp = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
    // THEN only sessions is written
    let actions: Vec<(&str, Action)> = resp
        .results
        .iter()
        .map(|r| (r.replication_group_id.as_str(), r.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("orders", Action::Unchanged),
            ("sessions", Action::Updated),
            ("carts", Action::Unchanged)
        ]
    );
    // AND the reads were batched: one listing of groups, one GetParameters, one PutParameter,
    // then one describe of the written group to check that its primary did not move meanwhile
    assert_eq!(
        bed.emu.operations().await,
        [
            "elasticache:DescribeReplicationGroups",
            "ssm:GetParameters",
            "ssm:PutParameter",
            "elasticache:DescribeReplicationGroups"
        ]
    );
}

#[tokio::test]
async fn an_event_naming_one_group_reconciles_only_that_group() {
    let Some(bed) = bed().await else { return };
    for g in ["orders", "sessions"] {
        bed.create_group(g).await;
    }
    let r = bed.reconciler(config(&[
        ("orders", "/app/orders/redis"),
        ("sessions", "/app/sessions/redis"),
    ]));
    let resp = r.run("redis-reconciler/sns-cloudwatch-alarm.json").await.unwrap();
    let groups: Vec<&str> = resp.results.iter().map(|r| r.replication_group_id.as_str()).collect();
    assert_eq!(groups, ["orders"]);
    assert_eq!(bed.param("/app/sessions/redis").await, None, "sessions was not touched");
    // and a direct invocation naming one group does the same
    let resp = r.run("redis-reconciler/direct-one-group.json").await.unwrap();
    assert_eq!(resp.results.len(), 1);
    assert_eq!(resp.results[0].replication_group_id, "orders");
}

#[tokio::test]
async fn dry_run_decides_and_reports_but_writes_nothing() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.put_param("/app/orders/redis", "stale.example.com:6379", ParameterType::String)
        .await;
    let mut cfg = config(&[("orders", "/app/orders/redis")]);
    cfg.dry_run = true;
    bed.emu.clear_operations().await;
    let resp = bed
        .reconciler(cfg)
        .run("redis-reconciler/eventbridge-scheduled.json")
        .await
        .unwrap();
    let res = result_of(&resp, "orders");
    assert_eq!(res.action, Action::WouldUpdate);
    assert_eq!(
        res.current.as_deref(),
        Some(bed.member_endpoint("orders", "orders-001").await.as_str())
    );
    assert_eq!(
        bed.param("/app/orders/redis").await,
        Some(("stale.example.com:6379".into(), 1))
    );
    assert_eq!(bed.puts().await, 0);
}

#[tokio::test]
async fn an_unknown_group_fails_while_the_others_still_reconcile() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.create_group("sessions").await;
    let r = bed.reconciler(config(&[
        ("orders", "/app/orders/redis"),
        ("ghost", "/app/ghost/redis"),
        ("sessions", "/app/sessions/redis"),
    ]));
    let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
    // THEN the invocation fails (so Lambda retries and alarms) ...
    let HandlerError::TargetsFailed {
        failed,
        total,
        summary,
        results,
    } = err
    else {
        panic!("wrong error: {err}")
    };
    assert_eq!((failed, total), (1, 3));
    assert!(summary.contains("ghost") && summary.contains("not found"), "{summary}");
    // ... but the other targets were published
    let actions: Vec<Action> = results.iter().map(|r| r.action).collect();
    assert_eq!(actions, [Action::Updated, Action::Failed, Action::Updated]);
    assert!(bed.param("/app/orders/redis").await.is_some() && bed.param("/app/sessions/redis").await.is_some());
    assert_eq!(bed.param("/app/ghost/redis").await, None);
}

#[tokio::test]
async fn junk_envelopes_are_rejected_before_any_aws_call() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.emu.clear_operations().await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    for name in [
        "invalid-string.json",
        "invalid-array.json",
        "invalid-object.json",
        "invalid-eventbridge-other-detail-type.json",
        "invalid-sqs-record.json",
    ] {
        let err = r.run(&format!("redis-reconciler/{name}")).await.unwrap_err();
        assert!(matches!(err, HandlerError::BadEvent(_)), "{name}: {err}");
        assert!(
            err.to_string().contains("Accepted:") && err.to_string().ends_with("nothing was written"),
            "{err}"
        );
    }
    // a direct invocation for a group we do not manage is an error too
    let err = r.run("redis-reconciler/direct-unmanaged-group.json").await.unwrap_err();
    assert!(matches!(err, HandlerError::Unmanaged(_)), "{err}");
    assert_eq!(bed.emu.operations().await, Vec::<String>::new(), "no AWS call was made");
    assert_eq!(bed.param("/app/orders/redis").await, None);
}

#[tokio::test]
async fn a_notification_for_another_groups_failover_does_nothing_and_succeeds() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.emu.clear_operations().await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    let resp = r
        .run("redis-reconciler/sns-elasticache-unmanaged-group.json")
        .await
        .unwrap();
    assert_eq!(resp.results, vec![]);
    assert_eq!(bed.emu.operations().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_group_mid_failover_is_waited_for_then_published() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    // GIVEN the group is mid-failover: no primary yet
    bed.emu
        .set_roles("orders", json!({"orders-001": "replica", "orders-002": "replica"}))
        .await;
    // WHEN the reconciler runs and, a second later, orders-002 becomes primary
    let promote = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        bed.emu.set_roles("orders", json!({"orders-002": "primary"})).await;
    };
    let failover_complete = event("redis-reconciler/sns-elasticache-failover-complete.json");
    let (resp, ()) = tokio::join!(r.handle(&failover_complete, deadline()), promote);
    // THEN it waited and published the new primary rather than failing or guessing
    let resp = resp.unwrap();
    assert_eq!(result_of(&resp, "orders").node.as_deref(), Some("orders-002"));
    let describes = bed
        .emu
        .operations()
        .await
        .iter()
        .filter(|o| o.ends_with("DescribeReplicationGroups"))
        .count();
    assert!(describes >= 2, "re-described while waiting: {describes}");
}

#[tokio::test]
async fn a_group_that_never_settles_fails_within_the_settle_timeout() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.emu.set_status("orders", "modifying").await;
    let mut cfg = config(&[("orders", "/app/orders/redis")]);
    cfg.settle_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let err = bed
        .reconciler(cfg)
        .run("redis-reconciler/eventbridge-scheduled.json")
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        err.to_string().contains("modifying") && err.to_string().contains("still unsettled"),
        "{err}"
    );
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert_eq!(bed.param("/app/orders/redis").await, None);
}

#[tokio::test]
async fn throttling_is_retried_and_a_failing_write_fails_the_invocation() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    // GIVEN the first two reads are throttled
    bed.emu.fault(json!({"service": "ssm", "operation": "GetParameters", "status": 400, "code": "ThrottlingException", "count": 2})).await;
    // THEN the SDK's retries absorb it
    let resp = r.run("redis-reconciler/direct-all.json").await.unwrap();
    assert_eq!(resp.results[0].action, Action::Updated);
    // GIVEN every write now fails with a server error, and the group failed over
    bed.emu
        .fault(json!({"service": "ssm", "operation": "PutParameter", "status": 500, "code": "InternalServerError"}))
        .await;
    bed.emu.failover("orders", "orders-002").await;
    // THEN the invocation fails and says which parameter could not be written
    let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Failed to write SSM parameter /app/orders/redis"),
        "{err}"
    );
}

#[tokio::test]
async fn a_hung_aws_endpoint_fails_the_target_in_bounded_time() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    // GIVEN ElastiCache answers nothing for 30 s
    bed.emu
        .fault(json!({"service": "elasticache", "operation": "DescribeReplicationGroups", "delay_ms": 30000}))
        .await;
    let started = std::time::Instant::now();
    let err = bed
        .reconciler(config(&[("orders", "/app/orders/redis")]))
        .run("redis-reconciler/direct-all.json")
        .await
        .unwrap_err();
    // THEN the SDK's operation timeout ends the call, and the error says so
    let elapsed = started.elapsed();
    assert!(
        elapsed < failover_core::sdk::OPERATION_TIMEOUT + Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(
        err.to_string().contains("Failed to describe replication group orders"),
        "{err}"
    );
}

#[tokio::test]
async fn the_lambda_deadline_is_never_overrun() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.emu
        .fault(json!({"service": "elasticache", "operation": "DescribeReplicationGroups", "delay_ms": 30000}))
        .await;
    // GIVEN only 3 s left in the invocation
    let started = std::time::Instant::now();
    let err = bed
        .reconciler(config(&[("orders", "/app/orders/redis")]))
        .handle(
            &event("redis-reconciler/direct-all.json"),
            Instant::now() + Duration::from_secs(3),
        )
        .await
        .unwrap_err();
    // THEN the handler returns an error before the deadline instead of being killed
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(
        err.to_string()
            .contains("not enough time left before the Lambda deadline to describe the replication group")
            && err.to_string().contains("the parameter was not changed"),
        "{err}"
    );
}

#[tokio::test]
async fn an_existing_secure_string_keeps_its_type() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.put_param("/app/orders/redis", "old.example.com:6379", ParameterType::SecureString)
        .await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    let resp = r.run("redis-reconciler/direct-all.json").await.unwrap();
    // compared against the decrypted value (so it was written), which the response never shows
    assert_eq!(resp.results[0].action, Action::Updated);
    assert_eq!(
        (resp.results[0].previous.as_deref(), resp.results[0].current.as_deref()),
        (Some(REDACTED), Some(REDACTED))
    );
    let p = bed
        .ssm
        .get_parameter()
        .name("/app/orders/redis")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let p = p.parameter().unwrap();
    assert_eq!(p.r#type(), Some(&ParameterType::SecureString));
    assert_eq!(
        p.value(),
        Some(bed.member_endpoint("orders", "orders-001").await.as_str())
    );
}

#[tokio::test]
async fn a_run_waiting_on_one_group_never_writes_back_another_groups_old_primary() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.create_group("sessions").await;
    let targets = [("orders", "/app/orders/redis"), ("sessions", "/app/sessions/redis")];
    let mut cfg = config(&targets);
    cfg.settle_timeout = Duration::from_secs(20);
    let r = bed.reconciler(cfg);
    r.run("redis-reconciler/direct-all.json").await.unwrap();
    // GIVEN orders is held mid-failover, so a scheduled run waits on it
    bed.emu.set_status("orders", "modifying").await;
    let waiting = r.run("redis-reconciler/eventbridge-scheduled.json");
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // WHILE it waits, sessions fails over and its own notification publishes the new primary
        bed.emu.failover("sessions", "sessions-002").await;
        let resp = r
            .handle(&json!({"replication_group_id": "sessions"}), deadline())
            .await
            .unwrap();
        assert_eq!(resp.results[0].node.as_deref(), Some("sessions-002"));
        // THEN orders settles and the waiting run finishes
        bed.emu.set_status("orders", "available").await;
    };
    let (first, ()) = tokio::join!(waiting, meanwhile);
    first.unwrap();
    // AND the parameter still holds the new primary of sessions, not the one described before the wait
    assert_eq!(
        bed.param("/app/sessions/redis").await.unwrap().0,
        bed.member_endpoint("sessions", "sessions-002").await
    );
}

// ---- the fault matrix (RELIABILITY.md) ----

#[tokio::test]
async fn a_slow_write_phase_reports_every_target_on_its_own() {
    let Some(bed) = bed().await else { return };
    for g in ["orders", "sessions", "carts"] {
        bed.create_group(g).await;
    }
    let targets = [
        ("orders", "/app/orders/redis"),
        ("sessions", "/app/sessions/redis"),
        ("carts", "/app/carts/redis"),
    ];
    let r = bed.reconciler(config(&targets));
    // GIVEN orders and sessions drifted, carts is mid-failover ...
    for (_, p) in &targets[..2] {
        bed.put_param(p, "stale.example.com:6379", ParameterType::String).await;
    }
    bed.emu.set_status("carts", "modifying").await;
    // ... the write of sessions never gets an answer, and every other write takes a second
    // (the emulator applies the first fault that matches)
    bed.emu
        .fault(
            json!({"service": "ssm", "operation": "PutParameter", "match": "/app/sessions/redis", "delay_ms": 12000}),
        )
        .await;
    bed.emu
        .fault(json!({"service": "ssm", "operation": "PutParameter", "delay_ms": 1000}))
        .await;
    // WHEN the invocation has 15 s
    let started = std::time::Instant::now();
    let err = r
        .handle(
            &event("redis-reconciler/eventbridge-scheduled.json"),
            Instant::now() + Duration::from_secs(15),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let HandlerError::TargetsFailed { failed, results, .. } = err else {
        panic!("wrong error: {err}")
    };
    // THEN orders reports updated although the invocation failed ...
    assert_eq!(failed, 2, "{results:#?}");
    let by_group = |g: &str| results.iter().find(|r| r.replication_group_id == g).unwrap().clone();
    assert_eq!(by_group("orders").action, Action::Updated);
    assert_eq!(
        bed.param("/app/orders/redis").await.unwrap().0,
        bed.member_endpoint("orders", "orders-001").await
    );
    // ... the write that got no answer says it may or may not have landed, and claims no value ...
    assert_eq!(by_group("sessions").current, None, "the write's outcome is unknown");
    let sessions = by_group("sessions").error.unwrap();
    assert!(
        sessions.contains("Failed to write SSM parameter /app/sessions/redis")
            && sessions.contains("may or may not have landed"),
        "{sessions}"
    );
    // ... and carts, which the deadline left no time to wait for, says so in words and was not written
    let carts = by_group("carts").error.unwrap();
    assert!(
        carts.contains("modifying")
            && carts.contains(
                "still unsettled after 0 s; the function timeout left no time to wait for the group to settle"
            ),
        "{carts}"
    );
    assert_eq!(bed.param("/app/carts/redis").await, None);
}

#[tokio::test]
async fn throttling_on_every_call_is_absorbed() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.put_param("/app/orders/redis", "stale.example.com:6379", ParameterType::String)
        .await;
    // GIVEN every operation the reconciler uses is throttled twice
    for (service, operation, code) in [
        ("elasticache", "DescribeReplicationGroups", "Throttling"),
        ("ssm", "GetParameters", "ThrottlingException"),
        ("ssm", "PutParameter", "ThrottlingException"),
    ] {
        bed.emu
            .fault(json!({"service": service, "operation": operation, "status": 400, "code": code, "count": 2}))
            .await;
    }
    // THEN the SDK's retries absorb it and the parameter is written once
    let resp = bed
        .reconciler(config(&[("orders", "/app/orders/redis")]))
        .run("redis-reconciler/eventbridge-scheduled.json")
        .await
        .unwrap();
    assert_eq!(resp.results[0].action, Action::Updated);
    assert_eq!(bed.param("/app/orders/redis").await.unwrap().1, 2, "one new version");
}

#[tokio::test]
async fn server_errors_and_access_denied_fail_clearly_within_bounded_time_and_write_nothing() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.put_param("/app/orders/redis", "stale.example.com:6379", ParameterType::String)
        .await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    for (service, operation, status, code, says) in [
        (
            "elasticache",
            "DescribeReplicationGroups",
            500,
            "InternalFailure",
            "Failed to describe replication group orders: InternalFailure",
        ),
        (
            "elasticache",
            "DescribeReplicationGroups",
            403,
            "AccessDenied",
            "Failed to describe replication group orders: AccessDenied",
        ),
        (
            "ssm",
            "GetParameters",
            500,
            "InternalServerError",
            "Failed to read SSM parameters /app/orders/redis: InternalServerError",
        ),
        (
            "ssm",
            "GetParameters",
            400,
            "AccessDeniedException",
            "Failed to read SSM parameters /app/orders/redis: AccessDeniedException",
        ),
        (
            "ssm",
            "PutParameter",
            400,
            "AccessDeniedException",
            "Failed to write SSM parameter /app/orders/redis: AccessDeniedException",
        ),
    ] {
        bed.emu.control("DELETE", "/_failover/faults", json!({})).await;
        bed.emu
            .fault(json!({"service": service, "operation": operation, "status": status, "code": code}))
            .await;
        let started = std::time::Instant::now();
        let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(err.to_string().contains(says), "{service} {operation} {status}: {err}");
        assert!(
            elapsed < failover_core::sdk::OPERATION_TIMEOUT + Duration::from_secs(2),
            "{operation} {status}: {elapsed:?}"
        );
        assert_eq!(
            bed.param("/app/orders/redis").await.unwrap(),
            ("stale.example.com:6379".to_owned(), 1),
            "{operation} {status}: nothing written"
        );
    }
}

#[tokio::test]
async fn an_aws_endpoint_that_refuses_connections_is_a_clear_error() {
    let Some(bed) = bed().await else { return };
    // GIVEN the emulator's address, but nothing listens there any more
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let sdk = bed.sdk.to_builder().endpoint_url(format!("http://{closed}")).build();
    let r = Reconciler::new(config(&[("orders", "/app/orders/redis")]), &sdk)
        .with_metrics(bed.metrics.emitter("Failover", "redis-reconciler"));
    let started = std::time::Instant::now();
    let err = r.run("redis-reconciler/direct-all.json").await.unwrap_err();
    assert!(
        started.elapsed() < failover_core::sdk::OPERATION_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains("Failed to describe replication group orders: cannot reach the AWS endpoint")
            && text.contains("refused")
            && !text.contains("DispatchFailure"),
        "{text}"
    );
}

#[tokio::test]
async fn a_parameter_deleted_between_read_and_write_fails_that_target_and_writes_nothing() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.put_param("/app/orders/redis", "stale.example.com:6379", ParameterType::String)
        .await;
    // GIVEN the write is held for a moment, and meanwhile someone deletes the parameter
    bed.emu
        .fault(json!({"service": "ssm", "operation": "PutParameter", "delay_ms": 1500, "count": 1}))
        .await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    let delete = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        bed.ssm
            .delete_parameter()
            .name("/app/orders/redis")
            .send()
            .await
            .unwrap();
    };
    let (result, ()) = tokio::join!(r.run("redis-reconciler/eventbridge-scheduled.json"), delete);
    // THEN the write (without a Type, as for an existing parameter) is refused, the target
    // fails saying so, and the next trigger creates the parameter
    let err = result.unwrap_err();
    assert!(
        err.to_string()
            .contains("Failed to write SSM parameter /app/orders/redis")
            && err.to_string().contains("the parameter was not changed"),
        "{err}"
    );
    assert_eq!(bed.param("/app/orders/redis").await, None);
    let resp = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
    assert_eq!(
        (resp.results[0].action, resp.results[0].previous.as_deref()),
        (Action::Updated, None)
    );
}

#[tokio::test]
async fn zero_or_two_primaries_are_never_published() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.put_param("/app/orders/redis", "stale.example.com:6379", ParameterType::String)
        .await;
    let mut cfg = config(&[("orders", "/app/orders/redis")]);
    cfg.settle_timeout = Duration::from_secs(1);
    let r = bed.reconciler(cfg);
    for (roles, says) in [
        (
            json!({"orders-001": "replica", "orders-002": "replica"}),
            "no member with CurrentRole=primary",
        ),
        (
            json!({"orders-001": "primary", "orders-002": "primary"}),
            "several primaries",
        ),
    ] {
        bed.emu.set_roles("orders", roles).await;
        let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
        assert!(
            err.to_string().contains(says) && err.to_string().contains("still unsettled"),
            "{err}"
        );
        assert_eq!(
            bed.param("/app/orders/redis").await.unwrap().0,
            "stale.example.com:6379"
        );
    }
}

#[tokio::test]
async fn oversized_and_junk_events_are_rejected_without_any_call() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    bed.emu.clear_operations().await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    let huge = "x".repeat(6 * 1024 * 1024);
    let many_keys: serde_json::Map<String, Value> = (0..20_000).map(|i| (format!("k{i}"), json!(i))).collect();
    // as deep as the runtime's JSON parser lets an event be (serde_json stops at 128 levels)
    let mut nested = json!("deep");
    for _ in 0..120 {
        nested = json!({"replication_group_id": nested});
    }
    for junk in [
        json!(huge),
        Value::Object(many_keys),
        json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": 7}}]}),
        json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": "x", "time": "not a time"}),
        nested,
    ] {
        let err = r.handle(&junk, deadline()).await.unwrap_err();
        assert!(matches!(err, HandlerError::BadEvent(_)), "{err}");
        assert!(err.to_string().len() < 2_000, "the error does not echo the event");
    }
    assert_eq!(bed.emu.operations().await, Vec::<String>::new());
}

// ---- The fewest AWS calls (speed issue: the API-call minimums are tests, not bench figures) ----

#[tokio::test]
async fn a_no_change_reconcile_of_one_group_makes_one_describe_and_one_read() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    r.run("redis-reconciler/direct-all.json").await.unwrap();
    bed.emu.clear_operations().await;
    let resp = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
    assert_eq!(result_of(&resp, "orders").action, Action::Unchanged);
    assert_eq!(
        bed.emu.operations().await,
        ["elasticache:DescribeReplicationGroups", "ssm:GetParameters"]
    );
}

#[tokio::test]
async fn a_no_change_reconcile_of_1000_groups_makes_at_most_10_describe_pages_and_100_reads() {
    let Some(bed) = bed().await else { return };
    // GIVEN 1,000 groups, each parameter already holding its group's primary
    let ids: Vec<String> = (0..1000).map(|i| format!("g{i:04}")).collect();
    for id in &ids {
        bed.create_group(id).await;
    }
    let mut marker: Option<String> = None;
    loop {
        let page = bed
            .ec
            .describe_replication_groups()
            .max_records(100)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        for g in page.replication_groups() {
            let member = g.node_groups()[0]
                .node_group_members()
                .iter()
                .find(|m| m.current_role() == Some("primary"))
                .unwrap();
            let e = member.read_endpoint().unwrap();
            bed.put_param(
                &format!("/app/{}/redis", g.replication_group_id().unwrap()),
                &format!("{}:{}", e.address().unwrap(), e.port().unwrap()),
                ParameterType::String,
            )
            .await;
        }
        marker = page.marker().map(str::to_owned);
        if marker.is_none() {
            break;
        }
    }
    let targets: Vec<(String, String)> = ids.iter().map(|id| (id.clone(), format!("/app/{id}/redis"))).collect();
    let targets: Vec<(&str, &str)> = targets.iter().map(|(g, p)| (g.as_str(), p.as_str())).collect();
    let r = bed.reconciler(config(&targets));
    bed.emu.clear_operations().await;
    // WHEN the schedule fires
    let resp = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
    // THEN every group is unchanged, read with at most 10 describe pages and 100 GetParameters
    assert!(
        resp.results.iter().all(|t| t.action == Action::Unchanged),
        "{:?}",
        resp.failures()
    );
    assert_eq!(resp.results.len(), 1000);
    let ops = bed.emu.operations().await;
    let describes = ops
        .iter()
        .filter(|o| *o == "elasticache:DescribeReplicationGroups")
        .count();
    let reads = ops.iter().filter(|o| *o == "ssm:GetParameters").count();
    assert!(describes <= 10, "{describes} describe calls");
    assert!(reads <= 100, "{reads} GetParameters calls");
    assert_eq!(ops.len(), describes + reads, "{ops:?}");
}

// ---- hardening (issue 18): independent targets, true reports, unsettled groups ----

/// Waits until the emulator has served `operation` (`service:Operation`) at least `n` times.
async fn served(bed: &Bed, operation: &str, n: usize) {
    for _ in 0..200 {
        if bed.emu.operations().await.iter().filter(|o| *o == operation).count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{operation} was not served {n} times");
}

fn count(ops: &[String], operation: &str) -> usize {
    ops.iter().filter(|o| *o == operation).count()
}

#[tokio::test]
async fn one_group_publishes_into_each_of_its_parameters() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let primary = bed.member_endpoint("orders", "orders-001").await;
    // GIVEN two applications read one cache, one of them from a stale value
    bed.put_param("/app/b/redis", "stale.example.com:6379", ParameterType::String)
        .await;
    let r = bed.reconciler(config(&[("orders", "/app/a/redis"), ("orders", "/app/b/redis")]));
    bed.emu.clear_operations().await;
    // WHEN the schedule runs
    let resp = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
    // THEN both parameters hold the primary, each reported on its own
    assert_eq!(resp.results.len(), 2);
    for (result, parameter) in resp.results.iter().zip(["/app/a/redis", "/app/b/redis"]) {
        assert_eq!(
            (result.parameter.as_str(), result.action, result.current.as_deref()),
            (parameter, Action::Updated, Some(primary.as_str()))
        );
        assert_eq!(bed.param(parameter).await.unwrap().0, primary);
    }
    // AND the group was described once for both (then once per write, to check it)
    let ops = bed.emu.operations().await;
    assert_eq!(ops[0], "elasticache:DescribeReplicationGroups", "{ops:?}");
    assert_eq!(count(&ops, "elasticache:DescribeReplicationGroups"), 1 + 2, "{ops:?}");
    assert_eq!(count(&ops, "ssm:GetParameters"), 1, "{ops:?}");
}

#[tokio::test]
async fn one_unreadable_parameter_fails_only_its_target() {
    let Some(bed) = bed().await else { return };
    for g in ["orders", "sessions", "carts"] {
        bed.create_group(g).await;
    }
    let targets = [
        ("orders", "/app/orders/redis"),
        ("sessions", "/app/sessions/redis"),
        ("carts", "/app/carts/redis"),
    ];
    let r = bed.reconciler(config(&targets));
    // GIVEN IAM denies /app/sessions/redis: every GetParameters that names it fails whole
    bed.emu
        .fault(json!({
            "service": "ssm", "operation": "GetParameters", "body_contains": "/app/sessions/redis",
            "code": "AccessDeniedException",
            "message": "User: arn:aws:sts::123456789012:assumed-role/r/f is not authorized to perform: ssm:GetParameters on resource: /app/sessions/redis",
        }))
        .await;
    // WHEN the schedule runs
    let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
    let HandlerError::TargetsFailed {
        failed,
        summary,
        results,
        ..
    } = err
    else {
        panic!("wrong error: {err}")
    };
    // THEN the other two are published in the same invocation ...
    assert_eq!(failed, 1, "{results:#?}");
    for (group, parameter) in [targets[0], targets[2]] {
        let primary = bed.member_endpoint(group, &format!("{group}-001")).await;
        assert_eq!(bed.param(parameter).await.unwrap().0, primary);
        let result = results.iter().find(|r| r.parameter == parameter).unwrap();
        assert_eq!(result.action, Action::Updated);
    }
    // ... and the error names the unreadable one
    assert!(
        summary.starts_with("sessions: Failed to read SSM parameters /app/sessions/redis: AccessDeniedException"),
        "{summary}"
    );
    assert_eq!(bed.param("/app/sessions/redis").await, None);
}

#[tokio::test]
async fn a_modifying_group_replaces_a_parameter_that_names_a_replica_or_a_node_gone() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let old = bed.member_endpoint("orders", "orders-001").await;
    // GIVEN a node-type scaling keeps the group modifying, and it failed the primary over meanwhile
    bed.emu.failover("orders", "orders-002").await;
    bed.emu.set_status("orders", "modifying").await;
    let new = bed.member_endpoint("orders", "orders-002").await;
    let mut cfg = config(&[("orders", "/app/orders/redis")]);
    cfg.settle_timeout = Duration::from_secs(1);
    let r = bed.reconciler(cfg);
    for stale in [old.as_str(), "orders-009.abc123.0001.use1.cache.amazonaws.com:6379"] {
        // WHEN the parameter names the demoted node (a replica now), or a node no longer in the group
        bed.put_param("/app/orders/redis", stale, ParameterType::String).await;
        bed.emu.clear_operations().await;
        let resp = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
        // THEN the primary the describe reports is published at once, without waiting
        let result = result_of(&resp, "orders");
        assert_eq!(
            (result.action, result.current.as_deref(), result.node.as_deref()),
            (Action::Updated, Some(new.as_str()), Some("orders-002")),
            "{stale}"
        );
        assert_eq!(bed.param("/app/orders/redis").await.unwrap().0, new);
        let ops = bed.emu.operations().await;
        assert_eq!(
            count(&ops, "elasticache:DescribeReplicationGroups"),
            2,
            "the first look and the check: {ops:?}"
        );
    }
    // AND a parameter that already names the reported primary is waited for as before: no write
    let puts = bed.puts().await;
    let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("still unsettled after 1 s (SETTLE_TIMEOUT_SECS)"),
        "{err}"
    );
    assert_eq!(bed.puts().await, puts);
}

#[tokio::test]
async fn a_modifying_group_with_a_missing_parameter_or_no_single_primary_is_waited_for() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let replica = bed.member_endpoint("orders", "orders-002").await;
    let mut cfg = config(&[("orders", "/app/orders/redis")]);
    cfg.settle_timeout = Duration::from_secs(1);
    let r = bed.reconciler(cfg);
    // GIVEN a modifying group and no parameter yet: nothing is known to be stale
    bed.emu.set_status("orders", "modifying").await;
    let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
    assert!(err.to_string().contains("modifying"), "{err}");
    // GIVEN the parameter names a replica but the group reports no primary: nothing to publish
    bed.put_param("/app/orders/redis", &replica, ParameterType::String)
        .await;
    bed.emu
        .set_roles("orders", json!({"orders-001": "replica", "orders-002": "replica"}))
        .await;
    let puts = bed.puts().await;
    let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
    assert!(err.to_string().contains("still unsettled"), "{err}");
    assert_eq!(bed.puts().await, puts);
    assert_eq!(bed.param("/app/orders/redis").await.unwrap().0, replica);
}

#[tokio::test]
async fn a_write_the_check_cannot_confirm_is_reported_updated_with_the_value_written() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let primary = bed.member_endpoint("orders", "orders-001").await;
    bed.put_param("/app/orders/redis", "stale.example.com:6379", ParameterType::String)
        .await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    // GIVEN the write takes a second, and meanwhile the group starts modifying (same primary)
    bed.emu
        .fault(json!({"service": "ssm", "operation": "PutParameter", "delay_ms": 1000, "count": 1}))
        .await;
    bed.emu.clear_operations().await;
    let modify = async {
        served(&bed, "ssm:GetParameters", 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        bed.emu.set_status("orders", "modifying").await;
    };
    // WHEN the schedule runs
    let (resp, ()) = tokio::join!(r.run("redis-reconciler/eventbridge-scheduled.json"), modify);
    // THEN the write stands and is reported as what the parameter holds, not as a failure
    let resp = resp.unwrap();
    let result = result_of(&resp, "orders");
    assert_eq!(
        (result.action, result.current.as_deref(), result.previous.as_deref()),
        (Action::Updated, Some(primary.as_str()), Some("stale.example.com:6379"))
    );
    assert_eq!(bed.param("/app/orders/redis").await.unwrap().0, primary);
}

#[tokio::test]
async fn a_primary_that_moves_during_the_write_is_described_again_and_written_again() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    for modifying in [false, true] {
        bed.emu.failover("orders", "orders-001").await;
        bed.emu.set_status("orders", "available").await;
        let first = bed.member_endpoint("orders", "orders-001").await;
        bed.put_param("/app/orders/redis", "stale.example.com:6379", ParameterType::String)
            .await;
        // GIVEN the write of orders-001 takes a second, and meanwhile the group fails over to
        // orders-002 (and, the second time, stays modifying: orders-001 is a known replica)
        bed.emu
            .fault(json!({"service": "ssm", "operation": "PutParameter", "delay_ms": 1000, "count": 1}))
            .await;
        bed.emu.clear_operations().await;
        let fail_over = async {
            served(&bed, "ssm:GetParameters", 1).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            bed.emu.failover("orders", "orders-002").await;
            if modifying {
                bed.emu.set_status("orders", "modifying").await;
            }
        };
        let (resp, ()) = tokio::join!(r.run("redis-reconciler/eventbridge-scheduled.json"), fail_over);
        // THEN the check after the write saw the move and wrote the new primary
        let resp = resp.unwrap();
        let second = bed.member_endpoint("orders", "orders-002").await;
        let result = result_of(&resp, "orders");
        assert_eq!(
            (result.action, result.current.as_deref(), result.node.as_deref()),
            (Action::Updated, Some(second.as_str()), Some("orders-002")),
            "modifying: {modifying}"
        );
        assert_eq!(bed.param("/app/orders/redis").await.unwrap().0, second);
        let ops = bed.emu.operations().await;
        assert_eq!(count(&ops, "ssm:PutParameter"), 2, "{ops:?}");
        assert_ne!(first, second);
    }
}

#[tokio::test]
async fn a_parameter_read_before_a_wait_is_read_again_after_it() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    let primary = bed.member_endpoint("orders", "orders-001").await;
    let replica = bed.member_endpoint("orders", "orders-002").await;
    // GIVEN the parameter already names the primary, and the group is modifying
    bed.put_param("/app/orders/redis", &primary, ParameterType::String)
        .await;
    bed.emu.set_status("orders", "modifying").await;
    let r = bed.reconciler(config(&[("orders", "/app/orders/redis")]));
    bed.emu.clear_operations().await;
    // WHEN, while the function waits for the group, someone writes the replica into the
    // parameter and the group settles
    let meanwhile = async {
        served(&bed, "ssm:GetParameters", 1).await;
        bed.put_param("/app/orders/redis", &replica, ParameterType::String)
            .await;
        bed.emu.set_status("orders", "available").await;
    };
    let (resp, ()) = tokio::join!(r.run("redis-reconciler/eventbridge-scheduled.json"), meanwhile);
    // THEN the value read before the wait was not trusted: the primary is written again
    let resp = resp.unwrap();
    assert_eq!(result_of(&resp, "orders").action, Action::Updated);
    assert_eq!(bed.param("/app/orders/redis").await.unwrap().0, primary);
}

#[tokio::test]
async fn unsettled_texts_say_times_in_seconds_and_never_show_a_secure_string() {
    let Some(bed) = bed().await else { return };
    bed.create_group("orders").await;
    // GIVEN a SecureString parameter, VERIFY_ROLE on, and a primary whose ROLE cannot be asked
    // (its address refuses connections)
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    bed.emu
        .set_member_endpoints(
            "orders",
            &[("orders-001", "127.0.0.1", port), ("orders-002", "127.0.0.1", port + 1)],
        )
        .await;
    let secret = "127.0.0.1:1";
    bed.put_param("/app/orders/redis", secret, ParameterType::SecureString)
        .await;
    let pairs = [
        ("REDIS_TARGETS", "orders=/app/orders/redis"),
        ("SETTLE_TIMEOUT_SECS", "1"),
        ("VERIFY_ROLE", "true"),
    ];
    let r = bed.reconciler(ReconcilerConfig::from(&Env::from_pairs(&pairs)).unwrap());
    // WHEN it runs
    let err = r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap_err();
    // THEN the error names the node, never an address, and says the wait in seconds
    let HandlerError::TargetsFailed { ref results, .. } = err else {
        panic!("wrong error: {err}")
    };
    let texts = [
        err.to_string(),
        format!("{err:?}"),
        serde_json::to_string(results).unwrap(),
    ];
    for text in &texts {
        assert!(text.contains("node orders-001"), "{text}");
        assert!(!text.contains("127.0.0.1"), "{text}");
        assert!(!text.contains("µs") && !text.contains("ms)"), "{text}");
    }
    assert!(
        texts[0].contains("still unsettled after 1 s (SETTLE_TIMEOUT_SECS)"),
        "{}",
        texts[0]
    );
}
