//! The one SDK configuration both functions load at init: standard retries and bounded
//! timeouts, so a dead or hung AWS endpoint fails a call well before the Lambda deadline.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

/// Time to establish a connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for one attempt of a call, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// Time for a whole call, retries and backoff included. Handlers reserve time for their last
/// calls based on this.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per call (the SDK's standard mode retries throttling and transient errors).
pub const MAX_ATTEMPTS: u32 = 4;

/// The timeouts every client uses.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The retry policy every client uses: standard mode with [`MAX_ATTEMPTS`].
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// A config loader with our retry and timeout settings. Region, credentials and endpoint come
/// from the standard environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), so the same binary
/// runs against a local emulator unchanged.
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
}

/// Loads the shared SDK configuration. Resolves no credentials and makes no call yet.
pub async fn load() -> SdkConfig {
    loader().load().await
}
