//! `VERIFY_ROLE` against real `redis-server`s: the reconciler publishes a candidate only when
//! Redis itself says it is the master. The emulator's replication group points at two local
//! Redis servers, a primary and its replica. (TLS and AUTH, which need a trusted certificate,
//! are shown with the function's own process in `processes.rs`.)

use std::time::{Duration, Instant};

use failover_core::env::Env;
use failover_tests::emf::Captured;
use failover_tests::redis_server::RedisServer;
use failover_tests::{deadline, event, Emulator, Handler};
use redis_reconciler::config::ReconcilerConfig;
use redis_reconciler::handler::Reconciler;

const PARAM: &str = "/app/orders/redis";

struct Drill {
    emu: Emulator,
    sdk: aws_config::SdkConfig,
    ssm: aws_sdk_ssm::Client,
    primary: RedisServer,
    replica: RedisServer,
    /// Where the handlers' EMF documents go (not the terminal).
    metrics: Captured,
}

/// GIVEN group `orders` whose members orders-001 / orders-002 are a real primary / replica.
async fn drill() -> Option<Drill> {
    let emu = Emulator::start().await?;
    let primary = RedisServer::start().await?;
    let replica = RedisServer::start_replica_of(&primary).await?;
    let sdk = emu.sdk_config().await;
    let ec = aws_sdk_elasticache::Client::new(&sdk);
    ec.create_replication_group()
        .replication_group_id("orders")
        .replication_group_description("drill")
        .engine("redis")
        .replicas_per_node_group(1)
        .send()
        .await
        .unwrap();
    emu.set_member_endpoints(
        "orders",
        &[
            ("orders-001", "127.0.0.1", primary.port),
            ("orders-002", "127.0.0.1", replica.port),
        ],
    )
    .await;
    Some(Drill {
        metrics: Captured::default(),
        ssm: aws_sdk_ssm::Client::new(&sdk),
        sdk,
        emu,
        primary,
        replica,
    })
}

/// The configuration the function would read: group `orders` -> [`PARAM`], `VERIFY_ROLE=true`.
fn config(settle: Duration) -> ReconcilerConfig {
    let settle = settle.as_secs().to_string();
    let pairs = [
        ("REDIS_REPLICATION_GROUP_ID", "orders"),
        ("REDIS_ENDPOINT_PARAMETER_NAME", PARAM),
        ("VERIFY_ROLE", "true"),
        ("SETTLE_TIMEOUT_SECS", settle.as_str()),
    ];
    let env = Env::from_pairs(&pairs);
    ReconcilerConfig::from(&env).unwrap()
}

impl Drill {
    fn reconciler(&self, settle: Duration) -> Reconciler {
        Reconciler::new(config(settle), &self.sdk).with_metrics(self.metrics.emitter("Failover", "redis-reconciler"))
    }

    async fn param(&self) -> Option<String> {
        let out = self.ssm.get_parameter().name(PARAM).send().await.ok()?;
        out.parameter().and_then(|p| p.value()).map(str::to_owned)
    }
}

#[tokio::test]
async fn the_parameter_follows_a_real_promotion_only_once_redis_confirms_it() {
    let Some(d) = drill().await else { return };
    let r = d.reconciler(Duration::from_secs(10));
    // GIVEN the initial sync published the real primary
    r.run("redis-reconciler/eventbridge-scheduled.json").await.unwrap();
    assert_eq!(d.param().await.as_deref(), Some(d.primary.endpoint().as_str()));
    // WHEN ElastiCache already reports orders-002 as primary, but Redis promotes it only 1.5 s
    // later
    d.emu.failover("orders", "orders-002").await;
    let failover_complete = event("redis-reconciler/sns-elasticache-failover-complete.json");
    let handled = async {
        let resp = r.handle(&failover_complete, deadline()).await;
        (resp, Instant::now())
    };
    let promote_later = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let before = d.param().await;
        let promoted = Instant::now();
        d.replica.promote().await;
        (before, promoted)
    };
    let ((resp, finished), (before, promoted)) = tokio::join!(handled, promote_later);
    // THEN up to the promotion the parameter still held the old primary, and the handler
    // finished only after it: it waited for Redis, then published the new master
    assert_eq!(
        before.as_deref(),
        Some(d.primary.endpoint().as_str()),
        "the replica was published before Redis confirmed it"
    );
    assert!(
        finished >= promoted,
        "the handler finished {:?} before the promotion",
        promoted - finished
    );
    let resp = resp.unwrap();
    assert_eq!(resp.results[0].current.as_deref(), Some(d.replica.endpoint().as_str()));
    assert_eq!(d.param().await.as_deref(), Some(d.replica.endpoint().as_str()));
}

#[tokio::test]
async fn a_candidate_that_stays_a_replica_is_never_published() {
    let Some(d) = drill().await else { return };
    let r = d.reconciler(Duration::from_secs(2));
    r.run("redis-reconciler/direct-all.json").await.unwrap();
    // WHEN ElastiCache says orders-002 is primary but Redis still reports it as a replica
    d.emu.failover("orders", "orders-002").await;
    let err = r.run("redis-reconciler/direct-all.json").await.unwrap_err();
    // THEN the target fails after the settle timeout and the parameter keeps the old primary
    assert!(err.to_string().contains("reports ROLE slave, not master"), "{err}");
    assert_eq!(d.param().await.as_deref(), Some(d.primary.endpoint().as_str()));
}

#[tokio::test]
async fn an_unreachable_candidate_is_not_published() {
    let Some(mut d) = drill().await else { return };
    let r = d.reconciler(Duration::from_secs(1));
    // GIVEN the primary is dead and nobody was promoted yet
    d.primary.kill().await;
    let err = r.run("redis-reconciler/direct-all.json").await.unwrap_err();
    assert!(err.to_string().contains("could not ask"), "{err}");
    assert_eq!(d.param().await, None);
}
