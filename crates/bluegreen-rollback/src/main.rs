//! Lambda entry point: wiring only. See `handler.rs` for what the function does.

use bluegreen_rollback::config::RollbackConfig;
use bluegreen_rollback::handler::Rollback;
use failover_core::{init, sdk};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

// One thread: each invocation is I/O-bound and Lambda runs one at a time per sandbox; a
// multi-thread runtime only adds start-up and scheduling cost (make bench-functions).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Honours AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL.
    lambda_runtime::tracing::init_default_subscriber();
    // A configuration error answers the invoke (Runtime API init/error) and ends the process.
    let cfg = init::or_exit(RollbackConfig::from_env()).await;
    let rollback = &Rollback::new(cfg, &sdk::load().await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| rollback.invoke(event))).await
}
