//! The imperative shell's AWS side: SDK configuration and thin adapters that turn SDK calls
//! into our domain types. No decisions are made here.

pub mod elasticache;
pub mod route53;
pub mod sdk;
pub mod ssm;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// A boxed error kept as the `source` of an adapter error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed AWS call: what we tried, on what, and the SDK's full error chain.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The replication group does not exist (or this role cannot see it).
    #[error("replication group {group} was not found in this account and region: check the group id in the function's configuration")]
    GroupNotFound {
        /// Group id.
        group: String,
    },
    /// Any other failure of an AWS API call, after the SDK's retries.
    #[error("Failed to {operation} {resource}: {detail}")]
    Call {
        /// The operation, e.g. `describe replication group`.
        operation: &'static str,
        /// The resource it was about.
        resource: String,
        /// The whole error chain, for the operator (IAM denials, throttling, timeouts...).
        detail: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

impl AwsError {
    /// Wraps a failed SDK call. A service error is summarised as `Code: message (request id)`
    /// rather than the raw response; transport errors (timeouts, connection) keep their chain.
    pub fn sdk<E, R>(operation: &'static str, resource: impl Into<String>, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let detail = match err.as_service_error() {
            Some(se) => {
                let meta = se.meta();
                let mut text = format!(
                    "{}: {}",
                    meta.code().unwrap_or("UnknownError"),
                    meta.message().unwrap_or("no message")
                );
                if let Some(id) = meta.extra("aws_request_id") {
                    text.push_str(&format!(" (request id {id})"));
                }
                text
            }
            None => DisplayErrorContext(&err).to_string(),
        };
        Self::Call {
            operation,
            resource: resource.into(),
            detail,
            source: Box::new(err),
        }
    }

    /// Wraps an SDK error with what we were doing.
    pub fn call<E>(operation: &'static str, resource: impl Into<String>, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Call {
            operation,
            resource: resource.into(),
            detail: DisplayErrorContext(&err).to_string(),
            source: Box::new(err),
        }
    }
}
