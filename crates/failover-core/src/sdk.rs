//! The one AWS SDK configuration every function loads at init, and the error every adapter
//! wraps a failed call in.
//!
//! Timeouts are bounded so a dead or hung AWS endpoint fails a call well before the Lambda
//! deadline; [`OPERATION_TIMEOUT`] is the worst case of one call, retries included, and is what
//! the handlers reserve time for before each step.

use std::error::Error as StdError;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::env::{ConfigError, Env, Var};

/// `LOG_SENSITIVE_BODIES`: the AWS SDK's switch that logs every request and response body at
/// TRACE. A function that reads secrets refuses to start with it on ([`refuse_sensitive_bodies`]).
pub const SENSITIVE_BODIES: Var = Var::new(
    "LOG_SENSITIVE_BODIES",
    "Must stay unset (or `false`): on, the AWS SDK logs every response body at TRACE, decrypted SecureString values and the AUTH token included, so the function refuses to start.",
);

/// Refuses [`SENSITIVE_BODIES`] on: with it, the SDK's TRACE lines would carry the bodies of
/// `GetParameters` with decryption, which hold SecureString values and the AUTH token.
pub fn refuse_sensitive_bodies(env: &Env<'_>) -> Result<(), ConfigError> {
    if env.flag(&SENSITIVE_BODIES)? {
        return Err(ConfigError::invalid(
            &SENSITIVE_BODIES,
            &env.get(&SENSITIVE_BODIES).unwrap_or_default(),
            "the AWS SDK would log every response body at TRACE, decrypted SecureString values and the AUTH token included: unset it",
        ));
    }
    Ok(())
}

/// Time to establish a connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for one attempt of a call, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// Time for a whole call, retries and backoff included: the worst case of one AWS call.
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
        .http_client(https_client())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
}

/// The HTTPS client every AWS call goes through: the SDK's default client (hyper, rustls, the
/// system's trust store, `HTTPS_PROXY`/`NO_PROXY` honoured) with ring as rustls' crypto provider
/// instead of aws-lc-rs. ring makes each function's zip about 0.65 MB smaller (BENCHMARKS.md);
/// what it lacks is a FIPS mode and the post-quantum key exchange, neither of which the calls to
/// ElastiCache, SSM and Route 53 need.
pub fn https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Loads the shared SDK configuration. Resolves no credentials and makes no call yet.
pub async fn load() -> SdkConfig {
    let config = loader().load().await;
    let _ = WHERE.set(where_calls_go(&config));
    config
}

/// Where this process sends its AWS calls, as a transport failure names it: set by [`load`].
static WHERE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `http://127.0.0.1:5005` when an endpoint is configured (`AWS_ENDPOINT_URL`), else the
/// region's AWS endpoints.
fn where_calls_go(config: &SdkConfig) -> String {
    match (config.endpoint_url(), config.region()) {
        (Some(url), _) => url.to_owned(),
        (None, Some(region)) => format!("the AWS endpoint in {region}"),
        (None, None) => "the AWS endpoint".to_owned(),
    }
}

/// A boxed error kept as the `source` of another.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failed AWS call, after the SDK's retries: what we tried, on what, and why, in one line an
/// operator can act on. The SDK's whole error stays available as the source.
#[derive(Debug, thiserror::Error)]
#[error("Failed to {operation} {resource}: {detail}")]
pub struct CallError {
    /// The operation, e.g. `describe replication group`.
    pub operation: &'static str,
    /// What it was about, e.g. the group id.
    pub resource: String,
    /// `Code: message (request id)` of a service error, or a summary of a transport failure.
    pub detail: String,
    /// The service's error code (`ThrottlingException`, `AccessDeniedException`, ...), if the
    /// service answered with one.
    pub code: Option<String>,
    /// Whether the request may have been carried out although the call failed (a timeout, a
    /// dropped connection or a server error after the request was sent).
    pub may_have_applied: bool,
    /// The SDK error.
    #[source]
    pub source: BoxError,
}

impl CallError {
    /// Wraps a failed SDK call.
    pub fn new<E>(operation: &'static str, resource: impl Into<String>, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let resource = resource.into();
        tracing::debug!(operation, %resource, error = %DisplayErrorContext(&err), "AWS call failed");
        let (detail, code) = summarize(&err);
        let may_have_applied = match &err {
            SdkError::ConstructionFailure(_) => false,
            // A 4xx is a definite refusal; a 5xx may come after the change was made.
            SdkError::ServiceError(se) => se.raw().status().as_u16() >= 500,
            // An I/O failure may come after the request was sent (a reset or closed connection
            // while awaiting the answer); only a refused connection certainly sent nothing.
            SdkError::DispatchFailure(d) => !(d.is_user() || d.is_io() && refused(&err)),
            _ => true,
        };
        Self {
            operation,
            resource,
            detail,
            code,
            may_have_applied,
            source: Box::new(err),
        }
    }

    /// True when the service refused the call for its rate, under any of AWS's names for that
    /// (`Throttling`, `ThrottlingException`, `TooManyRequestsException`, `RequestLimitExceeded`,
    /// `PriorRequestNotComplete`, ...): the SDK's own list, [`is_throttling`].
    pub fn is_throttling(&self) -> bool {
        self.code.as_deref().is_some_and(is_throttling)
    }

    /// Wraps an error that happened before anything was sent (building a request).
    pub fn local(
        operation: &'static str,
        resource: impl Into<String>,
        err: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self {
            operation,
            resource: resource.into(),
            detail: err.to_string(),
            code: None,
            may_have_applied: false,
            source: Box::new(err),
        }
    }
}

/// Whether `code` is one of the error codes the AWS SDK itself retries as throttling
/// (`aws_runtime::retries::classifiers::THROTTLING_ERRORS`), so every service's spelling counts.
pub fn is_throttling(code: &str) -> bool {
    aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&code)
}

/// One line for an operator: `Code: message (request id)` for a service error; for a failure to
/// get an answer at all, what happened (`cannot reach http://127.0.0.1:5005: connection refused`,
/// `no answer within 10s`). The full chain is logged at debug level by [`CallError::new`].
pub fn summarize<E, R>(err: &SdkError<E, R>) -> (String, Option<String>)
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let meta = se.err().meta();
            let mut text = match meta.code() {
                Some(code) => format!("{code}: {}", meta.message().unwrap_or("no message")),
                // A modelled error built without metadata (the SDK's own mocks) still names itself.
                None => se.err().to_string(),
            };
            if let Some(id) = meta.extra("aws_request_id") {
                text.push_str(&format!(" (request id {id})"));
            }
            (text, meta.code().map(str::to_owned))
        }
        SdkError::TimeoutError(_) => (
            format!(
                "no answer within the SDK's timeouts ({}s per attempt, {}s in all)",
                ATTEMPT_TIMEOUT.as_secs(),
                OPERATION_TIMEOUT.as_secs()
            ),
            None,
        ),
        SdkError::DispatchFailure(d) => {
            let what = if d.is_timeout() {
                "timed out".to_owned()
            } else {
                innermost(err).map_or_else(|| "connection failed".to_owned(), |e| plain_io(&e))
            };
            let target = WHERE.get().map_or("the AWS endpoint", String::as_str);
            (format!("cannot reach {target}: {what}"), None)
        }
        SdkError::ResponseError(_) => (
            format!("the answer could not be read: {}", innermost(err).unwrap_or_default()),
            None,
        ),
        _ => (DisplayErrorContext(err).to_string(), None),
    }
}

/// `Connection refused (os error 111)` as a sentence continues it: `connection refused`.
fn plain_io(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text,
    };
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Whether `err`'s source chain holds a refused connection: the request was never sent.
fn refused(err: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The message of the deepest error in a source chain, e.g. `Connection refused (os error 111)`.
fn innermost(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut cur: &(dyn StdError + 'static) = err.source()?;
    while let Some(next) = cur.source() {
        cur = next;
    }
    Some(cur.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_reads_as_part_of_a_sentence() {
        assert_eq!(plain_io("Connection refused (os error 111)"), "connection refused");
        assert_eq!(
            plain_io("dns error: failed to lookup address"),
            "dns error: failed to lookup address"
        );
        assert_eq!(plain_io(""), "");
    }

    #[test]
    fn only_a_refused_connection_certainly_sent_nothing() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_types::error::ErrorMetadata;
        let io = |kind| {
            let err: SdkError<ErrorMetadata, HttpResponse> =
                SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::from(kind))));
            CallError::new("change", "Z1", err)
        };
        assert!(!io(std::io::ErrorKind::ConnectionRefused).may_have_applied);
        for kind in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            assert!(io(kind).may_have_applied, "{kind:?}");
        }
    }

    #[test]
    fn timeouts_nest() {
        assert!(CONNECT_TIMEOUT < ATTEMPT_TIMEOUT && ATTEMPT_TIMEOUT < OPERATION_TIMEOUT);
    }
}
