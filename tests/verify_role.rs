//! `VERIFY_ROLE` against real `redis-server`s: the reconciler publishes a candidate only when
//! Redis itself says it is the master. The emulator's replication group points at two local
//! Redis servers, a primary and its replica.

use std::time::Duration;

use failover_core::env::Env;
use failover_core::redis::config::ReconcilerConfig;
use failover_tests::redis_server::RedisServer;
use failover_tests::{event, Emulator};
use redis_reconciler::handler::Reconciler;
use tokio::time::Instant;

const PARAM: &str = "/app/orders/redis";

struct Drill {
    emu: Emulator,
    ec: aws_sdk_elasticache::Client,
    ssm: aws_sdk_ssm::Client,
    primary: RedisServer,
    replica: RedisServer,
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
        ssm: aws_sdk_ssm::Client::new(&sdk),
        ec,
        emu,
        primary,
        replica,
    })
}

/// The configuration the function would read: group `orders` -> [`PARAM`], `VERIFY_ROLE=true`.
fn config(settle: Duration, auth: Option<&str>) -> ReconcilerConfig {
    let settle = settle.as_secs().to_string();
    let mut pairs = vec![
        ("REDIS_REPLICATION_GROUP_ID", "orders"),
        ("REDIS_ENDPOINT_PARAMETER_NAME", PARAM),
        ("VERIFY_ROLE", "true"),
        ("SETTLE_TIMEOUT_SECS", settle.as_str()),
    ];
    pairs.extend(auth.map(|token| ("REDIS_AUTH_TOKEN", token)));
    let env = Env::from_pairs(&pairs);
    ReconcilerConfig::from(&env).unwrap()
}

impl Drill {
    fn reconciler(&self, settle: Duration, auth: Option<&str>) -> Reconciler {
        Reconciler::with_clients(config(settle, auth), self.ec.clone(), self.ssm.clone())
    }

    async fn param(&self) -> Option<String> {
        let out = self.ssm.get_parameter().name(PARAM).send().await.ok()?;
        out.parameter().and_then(|p| p.value()).map(str::to_owned)
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[tokio::test]
async fn the_parameter_follows_a_real_promotion_only_once_redis_confirms_it() {
    let Some(d) = drill().await else { return };
    let r = d.reconciler(Duration::from_secs(10), None);
    // GIVEN the initial sync published the real primary
    r.handle(&event("redis-reconciler/eventbridge-scheduled.json"), deadline())
        .await
        .unwrap();
    assert_eq!(d.param().await.as_deref(), Some(d.primary.endpoint().as_str()));
    // WHEN ElastiCache already reports orders-002 as primary, but Redis has not promoted it yet
    d.emu.failover("orders", "orders-002").await;
    let promote_later = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        d.replica.promote().await;
    };
    let failover_complete = event("redis-reconciler/sns-elasticache-failover-complete.json");
    let started = std::time::Instant::now();
    let (resp, ()) = tokio::join!(r.handle(&failover_complete, deadline()), promote_later);
    // THEN the reconciler waited for the real promotion, then published the new master
    let resp = resp.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "it must not publish a replica"
    );
    assert_eq!(resp.results[0].current.as_deref(), Some(d.replica.endpoint().as_str()));
    assert_eq!(d.param().await.as_deref(), Some(d.replica.endpoint().as_str()));
}

#[tokio::test]
async fn a_candidate_that_stays_a_replica_is_never_published() {
    let Some(d) = drill().await else { return };
    let r = d.reconciler(Duration::from_secs(2), None);
    r.handle(&event("redis-reconciler/direct-all.json"), deadline())
        .await
        .unwrap();
    // WHEN ElastiCache says orders-002 is primary but Redis still reports it as a replica
    d.emu.failover("orders", "orders-002").await;
    let err = r
        .handle(&event("redis-reconciler/direct-all.json"), deadline())
        .await
        .unwrap_err();
    // THEN the target fails after the settle timeout and the parameter keeps the old primary
    assert!(err.to_string().contains("reports ROLE slave, not master"), "{err}");
    assert_eq!(d.param().await.as_deref(), Some(d.primary.endpoint().as_str()));
}

#[tokio::test]
async fn an_unreachable_candidate_is_not_published() {
    let Some(mut d) = drill().await else { return };
    let r = d.reconciler(Duration::from_secs(1), None);
    // GIVEN the primary is dead and nobody was promoted yet
    d.primary.kill().await;
    let err = r
        .handle(&event("redis-reconciler/direct-all.json"), deadline())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not ask"), "{err}");
    assert_eq!(d.param().await, None);
}

#[tokio::test]
async fn auth_tokens_are_used_to_ask_for_the_role() {
    let Some(emu) = Emulator::start().await else { return };
    let Some(secured) = RedisServer::start_with(&["--requirepass", "s3cret-token"]).await else {
        return;
    };
    let sdk = emu.sdk_config().await;
    let ec = aws_sdk_elasticache::Client::new(&sdk);
    ec.create_replication_group()
        .replication_group_id("orders")
        .replication_group_description("auth")
        .engine("redis")
        .send()
        .await
        .unwrap();
    emu.set_member_endpoints("orders", &[("orders-001", "127.0.0.1", secured.port)])
        .await;
    let reconciler = |token: Option<&str>| {
        Reconciler::with_clients(
            config(Duration::ZERO, token),
            ec.clone(),
            aws_sdk_ssm::Client::new(&sdk),
        )
    };
    // WITHOUT the token the node cannot be asked, so nothing is published
    let err = reconciler(None)
        .handle(&event("redis-reconciler/direct-all.json"), deadline())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("could not ask") && err.to_string().contains("REDIS_AUTH_TOKEN"),
        "{err}"
    );
    // WITH it the master is confirmed and published
    let resp = reconciler(Some("s3cret-token"))
        .handle(&event("redis-reconciler/direct-all.json"), deadline())
        .await
        .unwrap();
    assert_eq!(resp.results[0].current.as_deref(), Some(secured.endpoint().as_str()));
}
