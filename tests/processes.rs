//! The functions as Lambda runs them: their own binaries, as separate processes polling a
//! local Lambda Runtime API (`harness/lambda.rs`), against the emulator. Two processes are two
//! sandboxes, so two invocations overlap as they do in AWS.

use std::path::Path;
use std::time::Duration;

use aws_sdk_route53::types::ResourceRecordSet;
use aws_sdk_ssm::types::ParameterType;
use failover_tests::emf;
use failover_tests::lambda::{FunctionProcess, RuntimeApi};
use failover_tests::redis_server::RedisServer;
use failover_tests::tls::TlsFiles;
use failover_tests::{event, pair_record, Emulator};
use serde_json::json;

const RECONCILER: &str = env!("CARGO_BIN_EXE_redis-reconciler-under-test");
const ROLLBACK: &str = env!("CARGO_BIN_EXE_bluegreen-rollback-under-test");
const TIMEOUT: Duration = Duration::from_secs(60);

async fn create_group(ec: &aws_sdk_elasticache::Client, id: &str) {
    ec.create_replication_group()
        .replication_group_id(id)
        .replication_group_description("process tests")
        .engine("redis")
        .replicas_per_node_group(1)
        .send()
        .await
        .expect("create replication group");
}

async fn param(ssm: &aws_sdk_ssm::Client, name: &str) -> Option<String> {
    let out = ssm.get_parameter().name(name).with_decryption(true).send().await.ok()?;
    out.parameter().and_then(|p| p.value()).map(str::to_owned)
}

#[tokio::test]
async fn two_reconcilers_after_one_failover_both_succeed_and_publish_the_new_primary() {
    let Some(emu) = Emulator::start().await else { return };
    let sdk = emu.sdk_config().await;
    let (ec, ssm) = (aws_sdk_elasticache::Client::new(&sdk), aws_sdk_ssm::Client::new(&sdk));
    create_group(&ec, "orders").await;
    let api = RuntimeApi::start().await;
    let env = [("REDIS_TARGETS", "orders=/app/orders/redis")];
    let a = FunctionProcess::start(Path::new(RECONCILER), "redis-reconciler", &api, &emu.url, &env);
    let b = FunctionProcess::start(Path::new(RECONCILER), "redis-reconciler", &api, &emu.url, &env);
    api.invoke("redis-reconciler", event("redis-reconciler/direct-all.json"), TIMEOUT)
        .await
        .response();
    // GIVEN the group fails over
    emu.failover("orders", "orders-002").await;
    // WHEN the schedule and the FailoverComplete notification arrive at the same moment
    let (scheduled, notified) = tokio::join!(
        api.invoke(
            "redis-reconciler",
            event("redis-reconciler/eventbridge-scheduled.json"),
            TIMEOUT
        ),
        api.invoke(
            "redis-reconciler",
            event("redis-reconciler/sns-elasticache-failover-complete.json"),
            TIMEOUT
        ),
    );
    // THEN both succeed, and the parameter holds the new primary
    for response in [scheduled.response(), notified.response()] {
        assert_eq!(response["results"][0]["node"], "orders-002", "{response}");
    }
    let described = ec
        .describe_replication_groups()
        .replication_group_id("orders")
        .send()
        .await
        .unwrap();
    let member = &described.replication_groups()[0].node_groups()[0].node_group_members()[1];
    let e = member.read_endpoint().unwrap();
    let new_primary = format!("{}:{}", e.address().unwrap(), e.port().unwrap());
    assert_eq!(param(&ssm, "/app/orders/redis").await, Some(new_primary));
    // AND each invocation printed one EMF document on stdout, a line of its own beside the JSON
    // logs (not inside one): three in all. The first sync wrote; of the two overlapping runs one
    // or both wrote the same value (SSM has no compare-and-set, RELIABILITY.md).
    let docs = emf::documents(&(a.output() + &b.output()));
    assert_eq!(docs.len(), 3, "{}{}", a.output(), b.output());
    let sum = |name| docs.iter().map(|d| d.metric(name).unwrap()).sum::<f64>();
    let (seen, updated) = (sum("TargetsSeen"), sum("TargetsUpdated"));
    assert_eq!((seen, updated + sum("TargetsUnchanged")), (3.0, 3.0));
    assert!(updated == 2.0 || updated == 3.0, "updated {updated}");
    assert!(docs
        .iter()
        .all(|d| d.dimension("FunctionName") == Some("redis-reconciler")));
}

#[tokio::test]
async fn two_rollbacks_after_one_alarm_change_the_pair_once() {
    let Some(emu) = Emulator::start().await else { return };
    let r53 = aws_sdk_route53::Client::new(&emu.sdk_config().await);
    let zone = emu.weighted_pair(75, 25).await;
    let api = RuntimeApi::start().await;
    let env = [
        ("HOSTED_ZONE_ID", zone.as_str()),
        ("RECORD_NAME", "app.example.com"),
        ("ALARM_NAMES", "app-green-5xx"),
        ("SYNC_TIMEOUT_SECS", "5"),
    ];
    let a = FunctionProcess::start(Path::new(ROLLBACK), "bluegreen-rollback", &api, &emu.url, &env);
    let b = FunctionProcess::start(Path::new(ROLLBACK), "bluegreen-rollback", &api, &emu.url, &env);
    // WHEN the same ALARM reaches two sandboxes at once (an alarm action retried, SNS twice)
    let alarm = event("bluegreen-rollback/alarm-action-metric-alarm.json");
    let (one, two) = tokio::join!(
        api.invoke("bluegreen-rollback", alarm.clone(), TIMEOUT),
        api.invoke("bluegreen-rollback", alarm, TIMEOUT),
    );
    // THEN both succeed: one rolled back, the other found it done
    let mut actions: Vec<String> = [one.response(), two.response()]
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    actions.sort();
    assert_eq!(actions, ["already-rolled-back", "rolled-back"]);
    // AND exactly one change was applied; the pair is at 100 / 0 with its other fields intact
    let listed = r53
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap();
    let pair: Vec<ResourceRecordSet> = listed
        .resource_record_sets()
        .iter()
        .filter(|r| r.name() == "app.example.com.")
        .cloned()
        .collect();
    let record = |id: &str| pair.iter().find(|r| r.set_identifier() == Some(id)).cloned();
    assert_eq!(record("blue").expect("blue"), pair_record("blue", 100));
    assert_eq!(record("green").expect("green").weight(), Some(0));
    let applied = emu
        .control("GET", "/_failover/requests", json!({}))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "ChangeResourceRecordSets" && r["status"] == 200)
        .count();
    assert_eq!(applied, 1, "one change batch was applied");
    // AND each sandbox printed one EMF document: one rolled back, one found it done.
    let docs = emf::documents(&(a.output() + &b.output()));
    assert_eq!(docs.len(), 2, "{}{}", a.output(), b.output());
    let sum = |name| docs.iter().map(|d| d.metric(name).unwrap()).sum::<f64>();
    assert_eq!(
        (sum("RolledBack"), sum("AlreadyRolledBack"), sum("Failed")),
        (1.0, 1.0, 0.0)
    );
}

#[tokio::test]
async fn verify_role_over_tls_reads_its_token_from_ssm_and_never_prints_it_at_info() {
    verify_role_over_tls_reads_its_token_from_ssm_and_never_prints_it("INFO").await;
}

/// The template's `LogLevel` allows TRACE (and DEBUG), where the SDK logs every request and
/// response it handles and the error chains.
#[tokio::test]
async fn verify_role_over_tls_reads_its_token_from_ssm_and_never_prints_it_at_trace() {
    verify_role_over_tls_reads_its_token_from_ssm_and_never_prints_it("TRACE").await;
}

/// The reconciler with `VERIFY_ROLE` over TLS and its AUTH token in SSM, logging at `level`
/// (`AWS_LAMBDA_LOG_LEVEL`): a wrong token, then the right one.
async fn verify_role_over_tls_reads_its_token_from_ssm_and_never_prints_it(level: &str) {
    let Some(emu) = Emulator::start().await else { return };
    let Some(tls) = TlsFiles::create().await else { return };
    let Some(server) = RedisServer::start_tls(&tls, &["--requirepass", "s3cret-token-7f3a"]).await else {
        return;
    };
    let sdk = emu.sdk_config().await;
    let (ec, ssm) = (aws_sdk_elasticache::Client::new(&sdk), aws_sdk_ssm::Client::new(&sdk));
    ec.create_replication_group()
        .replication_group_id("orders")
        .replication_group_description("tls")
        .engine("redis")
        .send()
        .await
        .unwrap();
    emu.set_member_endpoints("orders", &[("orders-001", "127.0.0.1", server.port)])
        .await;
    let put = |name: &'static str, value: &'static str| {
        let ssm = ssm.clone();
        async move {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(ParameterType::SecureString)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        }
    };
    // GIVEN the endpoint parameter is a SecureString with a stale value, and a wrong token
    put("/app/orders/redis", "stale-secret-endpoint.example:6379").await;
    put("/app/orders/redis-auth", "wrong-token-91c2").await;
    let api = RuntimeApi::start().await;
    let ca = tls.ca();
    let env = [
        ("REDIS_TARGETS", "orders=/app/orders/redis"),
        ("VERIFY_ROLE", "true"),
        ("REDIS_TLS", "true"),
        ("REDIS_AUTH_TOKEN_PARAMETER", "/app/orders/redis-auth"),
        ("SETTLE_TIMEOUT_SECS", "0"),
        // The function trusts the system's roots; here the test CA is the system's root.
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ("AWS_LAMBDA_LOG_LEVEL", level),
    ];
    let mut wrong = FunctionProcess::start(Path::new(RECONCILER), "redis-reconciler", &api, &emu.url, &env);
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        api.invoke("redis-reconciler", event("redis-reconciler/direct-all.json"), TIMEOUT),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer; the sandbox printed:\n{}", wrong.output()));
    let (_, message) = outcome.error();
    // THEN the node cannot be asked, nothing is written, and the reason says what to check
    assert!(
        message.contains("could not ask") && message.contains("AUTH token"),
        "{message}"
    );
    assert_eq!(
        param(&ssm, "/app/orders/redis").await.as_deref(),
        Some("stale-secret-endpoint.example:6379")
    );
    wrong.stop().await;
    // GIVEN the right token (a new sandbox reads it again)
    put("/app/orders/redis-auth", "s3cret-token-7f3a").await;
    let right = FunctionProcess::start(Path::new(RECONCILER), "redis-reconciler", &api, &emu.url, &env);
    let response = api
        .invoke("redis-reconciler", event("redis-reconciler/direct-all.json"), TIMEOUT)
        .await
        .response();
    // THEN the master is confirmed over TLS with AUTH and published, and the response hides
    // the SecureString's values
    assert_eq!(response["results"][0]["action"], "updated", "{response}");
    assert_eq!(param(&ssm, "/app/orders/redis").await, Some(server.endpoint()));
    let text = response.to_string();
    assert!(
        !text.contains("stale-secret-endpoint") && !text.contains(&server.endpoint()),
        "{text}"
    );
    // AND no log line of either sandbox carries a token or the SecureString's old value
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = format!("{}{}", wrong.output(), right.output());
    assert!(logs.contains("target reconciled"), "the logs were captured:\n{logs}");
    let at_level = format!("\"level\":\"{level}\"");
    assert!(logs.contains(&at_level), "nothing was logged at {level}:\n{logs}");
    for secret in ["s3cret-token-7f3a", "wrong-token-91c2", "stale-secret-endpoint"] {
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "{secret} appears in the logs at {level}:\n{}",
            leaks.join("\n")
        );
    }
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_configuration_error_answers_the_invoke_at_once_with_its_message() {
    for format in ["JSON", "Text"] {
        let api = RuntimeApi::start().await;
        // GIVEN a rollback function whose hosted zone is not configured
        let env = [
            ("RECORD_NAME", "app.example.com"),
            ("ALARM_NAMES", "app-green-5xx"),
            ("AWS_LAMBDA_LOG_FORMAT", format),
        ];
        let mut sandbox = FunctionProcess::start(
            Path::new(ROLLBACK),
            "bluegreen-rollback",
            &api,
            "http://127.0.0.1:1",
            &env,
        );
        // WHEN it is invoked, twice
        for _ in 0..2 {
            let outcome = tokio::time::timeout(
                Duration::from_secs(1),
                api.invoke(
                    "bluegreen-rollback",
                    event("bluegreen-rollback/command-status.json"),
                    TIMEOUT,
                ),
            )
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{format}: no answer within 1 s; the sandbox printed:\n{}",
                    sandbox.output()
                )
            });
            // THEN each invoke fails with the configuration error's own text and a stable type
            let (error_type, message) = outcome.error();
            assert_eq!(error_type, "ConfigError");
            assert!(
                message.starts_with("HOSTED_ZONE_ID is not set: set it to the id of the hosted zone"),
                "{message}"
            );
        }
        // AND the init error went to the Runtime API's init/error endpoint
        let reported = api.init_errors();
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert_eq!(reported[0]["errorType"], "ConfigError");
        assert!(reported[0]["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("HOSTED_ZONE_ID is not set: "));
        // AND the log says it in the requested format, never as a Rust Debug dump
        let out = sandbox.output();
        let logged: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("HOSTED_ZONE_ID is not set"))
            .collect();
        assert!(!logged.is_empty(), "{format}: {out}");
        assert!(
            !out.contains("Missing {") && !out.contains("Diagnostic {"),
            "{format}: {out}"
        );
        let first: &str = logged[0];
        match format {
            "JSON" => {
                let line: serde_json::Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
                assert_eq!(line["level"], "ERROR", "{first}");
            }
            _ => assert!(first.contains("ERROR") && !first.starts_with('{'), "{first}"),
        }
        sandbox.stop().await;
    }
}

#[tokio::test]
async fn an_unreachable_aws_endpoint_is_named_in_one_line_for_either_function() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let env = [
        ("REDIS_TARGETS", "orders=/app/orders/redis"),
        ("HOSTED_ZONE_ID", "Z0000000000000000000"),
        ("RECORD_NAME", "app.example.com"),
        ("ALARM_NAMES", "app-green-5xx"),
    ];
    // GIVEN both functions point at an AWS endpoint where nothing listens
    for (binary, function, file, what) in [
        (
            RECONCILER,
            "redis-reconciler",
            "redis-reconciler/direct-all.json",
            "Failed to describe replication group orders",
        ),
        (
            ROLLBACK,
            "bluegreen-rollback",
            "bluegreen-rollback/command-status.json",
            "Failed to list records",
        ),
    ] {
        let api = RuntimeApi::start().await;
        let sandbox = FunctionProcess::start(Path::new(binary), function, &api, &url, &env);
        let (_, message) = api.invoke(function, event(file), TIMEOUT).await.error();
        // THEN the error names the call and the address, in words, without the SDK's chain
        let expected = format!("cannot reach {url}: connection refused");
        assert!(message.contains(what) && message.contains(&expected), "{message}");
        let out = sandbox.output();
        assert!(
            !out.contains("DispatchFailure") && !out.contains("ConnectorError"),
            "{out}"
        );
    }
}
