//! SSM Parameter Store adapter: batched reads and single writes of endpoint parameters.

use std::collections::HashMap;

use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client;

use failover_core::sdk::CallError;
use failover_core::secret::Secret;

/// The most names one `GetParameters` call accepts.
pub const GET_BATCH: usize = 10;

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

    /// Reads `names` in batches of [`GET_BATCH`]. Names that do not exist are absent from the
    /// map. SecureString values are decrypted so they can be compared.
    pub async fn get_many(&self, names: &[&str]) -> Result<HashMap<String, StoredParameter>, CallError> {
        let mut found = HashMap::new();
        for batch in names.chunks(GET_BATCH) {
            let out = self
                .client
                .get_parameters()
                .set_names(Some(batch.iter().map(|n| n.to_string()).collect()))
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| CallError::new("read SSM parameters", batch.join(", "), e))?;
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
        }
        Ok(found)
    }

    /// Reads one parameter; `None` when it does not exist.
    pub async fn get_one(&self, name: &str) -> Result<Option<StoredParameter>, CallError> {
        Ok(self.get_many(&[name]).await?.remove(name))
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

    /// Writes `value` to `name`, overwriting. A new parameter is created as `String`; an
    /// existing one keeps its type (and, for SecureString, its KMS key) because `Type` is sent
    /// only on creation. Returns the new version.
    pub async fn put(&self, name: &str, value: &str, description: &str, exists: bool) -> Result<i64, CallError> {
        let out = self
            .client
            .put_parameter()
            .name(name)
            .value(value)
            .description(description)
            .overwrite(true)
            .set_type((!exists).then_some(ParameterType::String))
            .send()
            .await
            .map_err(|e| CallError::new("write SSM parameter", name, e))?;
        Ok(out.version())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::operation::get_parameters::GetParametersOutput;
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
        let found = client(RuleMode::MatchAny, &[&rule]).get_many(&refs).await.unwrap();
        // THEN three calls (10 + 10 + 3) and only existing parameters are returned
        assert_eq!(rule.num_calls(), 3);
        let mut keys: Vec<&String> = found.keys().collect();
        keys.sort();
        assert_eq!(keys, ["/app/g0/redis", "/app/g10/redis", "/app/g20/redis"]);
        assert_eq!(
            found["/app/g0/redis"],
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
        let v = client(RuleMode::Sequential, &[&rule])
            .put("/p", "h:1", "d", true)
            .await
            .unwrap();
        assert_eq!((v, rule.num_calls()), (7, 3));
    }

    #[tokio::test]
    async fn persistent_5xx_on_read_is_an_error_naming_the_parameters() {
        let rule = mock!(Client::get_parameters)
            .sequence()
            .http_status(500, None)
            .repeatedly()
            .build();
        let err = client(RuleMode::Sequential, &[&rule])
            .get_many(&["/a", "/b"])
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with("Failed to read SSM parameters /a, /b:"),
            "{err}"
        );
        assert_eq!(rule.num_calls(), sdk::MAX_ATTEMPTS as usize);
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
        assert_eq!(ssm.put("/p", "h:1", "why", false).await.unwrap(), 1);
        assert_eq!(ssm.put("/p", "h:2", "why", true).await.unwrap(), 2);
    }
}
