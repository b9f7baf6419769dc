//! A function that cannot start says why, where its caller looks.
//!
//! A configuration error found at init is posted to the Runtime API's `init/error` endpoint, so
//! the invoke that started the sandbox answers with that message (in Lambda and under
//! `cargo lambda watch` alike) instead of timing out, and printed once through the log
//! subscriber (plain text, or JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`).
//!
//! Lambda ends the sandbox after an init error and tries init again on the next invoke. A local
//! Runtime API (`cargo lambda watch`) keeps the process and hands it the next invoke instead, so
//! until the Runtime API stops answering, every further invocation is answered with the same
//! error; then the process exits with status 1.
//!
//! Returning the error from `main` instead would print its `Debug` form and leave the caller
//! waiting for a response that never comes.

use std::fmt::Display;
use std::time::Duration;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{build_request, PooledClient};

/// The `errorType` of a configuration error at init: stable, so alarms and tests can match it.
pub const CONFIG_ERROR_TYPE: &str = "ConfigError";

/// The Runtime API path that takes an init error.
pub const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// How long the report may take: the Runtime API is local, so this only bounds a broken one.
const REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// The value of `result`, or, when it is an error, that error reported (see the module docs),
/// every further invocation answered with it, and the process ended with status 1.
pub async fn or_exit<T, E: Display>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => {
            let message = err.to_string();
            tracing::error!(error_type = CONFIG_ERROR_TYPE, "{message}");
            if let Err(why) = report(&message).await {
                tracing::warn!("could not report the init error to the Lambda Runtime API: {why}");
            }
            if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
                let answer = |_: LambdaEvent<serde_json::Value>| {
                    let failed = InitFailed(message.clone());
                    async move { Err::<(), _>(failed) }
                };
                // Returns when the Runtime API stops handing out invocations.
                let _ = lambda_runtime::run(service_fn(answer)).await;
            }
            std::process::exit(1)
        }
    }
}

/// The configuration error, as each later invocation reports it.
struct InitFailed(String);

// lambda_runtime logs a handler's error with `{:?}`: show the operator's text, not a struct.
impl std::fmt::Debug for InitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<InitFailed> for Diagnostic {
    fn from(e: InitFailed) -> Self {
        Diagnostic {
            error_type: CONFIG_ERROR_TYPE.to_owned(),
            error_message: e.0,
        }
    }
}

/// The body Lambda expects at `init/error`.
pub fn init_error_body(message: &str) -> String {
    serde_json::json!({ "errorType": CONFIG_ERROR_TYPE, "errorMessage": message, "stackTrace": [] }).to_string()
}

/// Posts `message` to `init/error` of the Runtime API named by `AWS_LAMBDA_RUNTIME_API`; does
/// nothing when that is unset (the binary was started by hand).
async fn report(message: &str) -> Result<(), String> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return Ok(());
    }
    let req = build_request()
        .method("POST")
        .uri(INIT_ERROR_PATH)
        .header("Lambda-Runtime-Function-Error-Type", CONFIG_ERROR_TYPE)
        .header("Content-Type", "application/json")
        .body(Body::from(init_error_body(message)))
        .map_err(|e| e.to_string())?;
    let client = PooledClient::builder().build();
    match tokio::time::timeout(REPORT_TIMEOUT, client.call(req)).await {
        Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
        Ok(Ok(resp)) => Err(format!("it answered {}", resp.status())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {REPORT_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_the_display_text_and_the_stable_type() {
        let body: serde_json::Value = serde_json::from_str(&init_error_body("HOSTED_ZONE_ID is not set: x")).unwrap();
        assert_eq!(body["errorType"], CONFIG_ERROR_TYPE);
        assert_eq!(body["errorMessage"], "HOSTED_ZONE_ID is not set: x");
    }
}
