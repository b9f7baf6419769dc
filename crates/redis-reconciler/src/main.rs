//! Lambda entry point: wiring only. See `handler.rs` for what the function does.

use failover_core::{init, sdk};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use redis_reconciler::config::ReconcilerConfig;
use redis_reconciler::handler::Reconciler;
use serde_json::Value;

// One thread: each invocation is I/O-bound and Lambda runs one at a time per sandbox; a
// multi-thread runtime only adds start-up and scheduling cost (make bench-functions).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Honours AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL.
    lambda_runtime::tracing::init_default_subscriber();
    // A configuration error answers the invoke (Runtime API init/error) and ends the process.
    let cfg = init::or_exit(ReconcilerConfig::from_env()).await;
    let reconciler = &Reconciler::new(cfg, &sdk::load().await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| reconciler.invoke(event))).await
}
