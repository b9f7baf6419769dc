//! SSM Parameter Store adapter: batched reads and single writes of endpoint parameters.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client;

use failover_core::sdk::CallError;
use failover_core::secret::Secret;
use futures::future::join_all;
use tokio::time::Instant;

/// The most names one `GetParameters` call accepts.
pub const GET_BATCH: usize = 10;

/// One parameter's read: its value (`None` when it does not exist), or why it could not be read
/// (shared by the names of a batch that failed whole).
pub type Read = Result<Option<StoredParameter>, Arc<CallError>>;

/// A parameter as stored. Its `Debug` never shows a SecureString's value.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredParameter {
    /// Its (decrypted) value.
    pub value: String,
    /// `String`, `StringList` or `SecureString`.
    pub kind: String,
    /// Version number; every write creates a new one.
    pub version: i64,
}

impl StoredParameter {
    /// True for a SecureString, whose value is never logged or returned.
    pub fn is_secure(&self) -> bool {
        self.kind == "SecureString"
    }
}

impl std::fmt::Debug for StoredParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.is_secure() { "***" } else { self.value.as_str() };
        f.debug_struct("StoredParameter")
            .field("value", &value)
            .field("kind", &self.kind)
            .field("version", &self.version)
            .finish()
    }
}

/// Reads and writes parameters.
#[derive(Debug, Clone)]
pub struct Ssm {
    client: Client,
}

impl Ssm {
    /// Builds the client from the SDK configuration loaded once at init.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::from_client(Client::new(sdk))
    }

    /// Wraps a ready client (tests give a mocked one).
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }

    /// Reads `names`, in batches of [`GET_BATCH`] sent together, each name's outcome on its own:
    /// `Ok(None)` when it does not exist. SecureString values are decrypted so they can be
    /// compared.
    ///
    /// IAM evaluates every name of a `GetParameters` call, so one denied parameter (or one
    /// SecureString whose KMS key the role cannot use) fails its whole batch. A batch of several
    /// names that fails is therefore read again name by name, concurrently, if that can still
    /// start before `retry_by` and the batch was not throttled: only the unreadable names then
    /// carry an error.
    pub async fn get_many(&self, names: &[&str], retry_by: Instant) -> HashMap<String, Read> {
        let batches = join_all(names.chunks(GET_BATCH).map(|batch| self.get_batch(batch))).await;
        let mut reads = HashMap::new();
        for (batch, result) in names.chunks(GET_BATCH).zip(batches) {
            match result {
                Ok(found) => reads.extend(batch.iter().map(|n| (n.to_string(), Ok(found.get(*n).cloned())))),
                // Throttled even after the SDK's retries: more calls would only make it worse.
                Err(e) if batch.len() > 1 && !e.is_throttling() && Instant::now() < retry_by => {
                    tracing::warn!(parameters = %batch.join(", "), error = %e, "a batched read failed as a whole; reading each parameter on its own");
                    let one_by_one = join_all(batch.iter().map(|n| self.get_one(n))).await;
                    reads.extend(
                        batch
                            .iter()
                            .zip(one_by_one)
                            .map(|(n, r)| (n.to_string(), r.map_err(Arc::new))),
                    );
                }
                Err(e) => {
                    let e = Arc::new(e);
                    reads.extend(batch.iter().map(|n| (n.to_string(), Err(Arc::clone(&e)))));
                }
            }
        }
        reads
    }

    /// One `GetParameters` call for at most [`GET_BATCH`] names: the ones that exist.
    async fn get_batch(&self, batch: &[&str]) -> Result<HashMap<String, StoredParameter>, CallError> {
        let out = self
            .client
            .get_parameters()
            .set_names(Some(batch.iter().map(|n| n.to_string()).collect()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| CallError::new("read SSM parameters", batch.join(", "), e))?;
        let mut found = HashMap::new();
        for p in out.parameters() {
            let (Some(name), Some(value)) = (p.name(), p.value()) else {
                continue;
            };
            found.insert(
                name.to_owned(),
                StoredParameter {
                    value: value.to_owned(),
                    kind: p.r#type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                    version: p.version(),
                },
            );
        }
        Ok(found)
    }

    /// Reads one parameter; `None` when it does not exist.
    pub async fn get_one(&self, name: &str) -> Result<Option<StoredParameter>, CallError> {
        Ok(self.get_batch(&[name]).await?.remove(name))
    }

    /// Reads a secret (the AUTH token) from a parameter, decrypted. The error names the
    /// parameter, never its value.
    pub async fn read_secret(&self, name: &str) -> Result<Secret, CallError> {
        let out = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| CallError::new("read the AUTH token from SSM parameter", name, e))?;
        let parameter = out.parameter();
        if parameter.and_then(|p| p.r#type()) != Some(&ParameterType::SecureString) {
            tracing::warn!(
                parameter = name,
                "the AUTH token parameter is not a SecureString: store it encrypted"
            );
        }
        Ok(Secret::new(parameter.and_then(|p| p.value()).unwrap_or_default()))
    }

    /// Writes `value` to `name`, overwriting `existing` (`None`: the parameter does not exist
    /// yet), and returns the parameter as now stored. A new parameter is created as `String`; an
    /// existing one keeps its type (and, for SecureString, its KMS key) because `Type` is sent
    /// only on creation.
    pub async fn put(
        &self,
        name: &str,
        value: &str,
        description: &str,
        existing: Option<&StoredParameter>,
    ) -> Result<StoredParameter, CallError> {
        let out = self
            .client
            .put_parameter()
            .name(name)
            .value(value)
            .description(description)
            .overwrite(true)
            .set_type(existing.is_none().then_some(ParameterType::String))
            .send()
            .await
            .map_err(|e| CallError::new("write SSM parameter", name, e))?;
        Ok(StoredParameter {
            value: value.to_owned(),
            kind: existing.map_or_else(|| ParameterType::String.as_str().to_owned(), |p| p.kind.clone()),
            version: out.version(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::operation::get_parameters::{GetParametersError, GetParametersOutput};
    use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use failover_core::sdk;
    use std::time::Duration;

    fn client(mode: RuleMode, rules: &[&Rule]) -> Ssm {
        let retry = sdk::retry_config().with_initial_backoff(Duration::from_millis(1));
        Ssm::from_client(mock_client!(aws_sdk_ssm, mode, rules, |c| c.retry_config(retry.clone())))
    }

    fn param(name: &str, value: &str) -> Parameter {
        Parameter::builder()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .version(3)
            .build()
    }

    #[tokio::test]
    async fn reads_in_batches_of_ten_and_omits_missing_names() {
        // GIVEN 23 names, of which only the first of each batch exists
        let names: Vec<String> = (0..23).map(|i| format!("/app/g{i}/redis")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let rule = mock!(Client::get_parameters)
            .match_requests(|r| r.names().len() <= GET_BATCH && r.with_decryption() == Some(true))
            .then_compute_output(|r| {
                GetParametersOutput::builder()
                    .parameters(param(&r.names()[0], "host:6379"))
                    .set_invalid_parameters(Some(r.names()[1..].to_vec()))
                    .build()
            });
        // WHEN read
        let found = client(RuleMode::MatchAny, &[&rule]).get_many(&refs, later()).await;
        // THEN three calls (10 + 10 + 3), every name answered, only existing ones with a value
        assert_eq!(rule.num_calls(), 3);
        assert_eq!(found.len(), 23);
        let mut keys: Vec<&String> = found
            .iter()
            .filter(|(_, r)| matches!(r, Ok(Some(_))))
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        assert_eq!(keys, ["/app/g0/redis", "/app/g10/redis", "/app/g20/redis"]);
        assert!(matches!(found["/app/g1/redis"], Ok(None)));
        assert_eq!(
            *found["/app/g0/redis"].as_ref().unwrap().as_ref().unwrap(),
            StoredParameter {
                value: "host:6379".into(),
                kind: "String".into(),
                version: 3
            }
        );
    }

    #[tokio::test]
    async fn throttled_writes_are_retried() {
        let rule = mock!(Client::put_parameter)
            .sequence()
            .http_status(
                400,
                Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
            )
            .times(2)
            .output(|| PutParameterOutput::builder().version(7).build())
            .build();
        let existing = StoredParameter {
            value: "h:0".into(),
            kind: "SecureString".into(),
            version: 6,
        };
        let written = client(RuleMode::Sequential, &[&rule])
            .put("/p", "h:1", "d", Some(&existing))
            .await
            .unwrap();
        assert_eq!((written.version, rule.num_calls()), (7, 3));
        assert_eq!((written.value.as_str(), written.kind.as_str()), ("h:1", "SecureString"));
    }

    /// A fallback deadline that never stops the reads.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test]
    async fn persistent_5xx_on_read_is_an_error_naming_the_parameters() {
        let rule = mock!(Client::get_parameters)
            .sequence()
            .http_status(500, None)
            .repeatedly()
            .build();
        // no time left to read them one by one: both carry the batch's error
        let reads = client(RuleMode::Sequential, &[&rule])
            .get_many(&["/a", "/b"], Instant::now())
            .await;
        for name in ["/a", "/b"] {
            let err = reads[name].as_ref().unwrap_err();
            assert!(
                err.to_string().starts_with("Failed to read SSM parameters /a, /b:"),
                "{err}"
            );
        }
        assert_eq!(rule.num_calls(), sdk::MAX_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn a_batch_denied_whole_is_read_name_by_name_and_only_the_denied_name_fails() {
        // GIVEN IAM denies /app/b/redis, which fails every batch that names it
        let denied = || {
            GetParametersError::generic(
                aws_sdk_ssm::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform: ssm:GetParameters on /app/b/redis")
                    .build(),
            )
        };
        let batch = mock!(Client::get_parameters)
            .match_requests(|r| r.names().iter().any(|n| n == "/app/b/redis"))
            .then_error(denied);
        let alone = mock!(Client::get_parameters).then_compute_output(|r| {
            GetParametersOutput::builder()
                .parameters(param(&r.names()[0], "host:6379"))
                .build()
        });
        // WHEN three parameters are read in one batch
        let reads = client(RuleMode::MatchAny, &[&batch, &alone])
            .get_many(&["/app/a/redis", "/app/b/redis", "/app/c/redis"], later())
            .await;
        // THEN the batch failed, each was read again, and only /app/b/redis carries the error
        assert_eq!((batch.num_calls(), alone.num_calls()), (2, 2));
        for ok in ["/app/a/redis", "/app/c/redis"] {
            assert_eq!(reads[ok].as_ref().unwrap().as_ref().unwrap().value, "host:6379");
        }
        let err = reads["/app/b/redis"].as_ref().unwrap_err().to_string();
        assert!(
            err.starts_with("Failed to read SSM parameters /app/b/redis: AccessDeniedException"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn type_is_sent_only_when_creating() {
        let create = mock!(Client::put_parameter)
            .match_requests(|r| r.r#type() == Some(&ParameterType::String) && r.overwrite() == Some(true))
            .then_output(|| PutParameterOutput::builder().version(1).build());
        let update = mock!(Client::put_parameter)
            .match_requests(|r| r.r#type().is_none() && r.overwrite() == Some(true) && r.description() == Some("why"))
            .then_output(|| PutParameterOutput::builder().version(2).build());
        let ssm = client(RuleMode::Sequential, &[&create, &update]);
        let created = ssm.put("/p", "h:1", "why", None).await.unwrap();
        assert_eq!((created.kind.as_str(), created.version), ("String", 1));
        let updated = ssm.put("/p", "h:2", "why", Some(&created)).await.unwrap();
        assert_eq!(
            (updated.value.as_str(), updated.kind.as_str(), updated.version),
            ("h:2", "String", 2)
        );
    }
}
