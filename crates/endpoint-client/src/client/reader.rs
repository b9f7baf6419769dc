//! The client's parameter reads: the reader loop that runs while a read episode lasts, one
//! read and what it changes, and how an endpoint may be shown (never in full once the parameter
//! was read as a SecureString).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_ssm::types::ParameterType;
use failover_core::sdk;

use super::{lock, Inner, HIDDEN};
use crate::endpoint::Endpoint;
use crate::error::ClientError;
use crate::refresh::{random, ReadOutcome, ReadResult};

impl Inner {
    /// `endpoint` as this client may print it: in full, or [`HIDDEN`] once the parameter was
    /// read as a `SecureString` (sticky, so a value read as secret is never printed later).
    pub(super) fn shown(&self, endpoint: &Endpoint) -> String {
        if self.secure.load(Ordering::Acquire) {
            HIDDEN.to_owned()
        } else {
            endpoint.to_string()
        }
    }

    /// Reads whenever the schedule says, while an episode lasts and callers keep calling; then
    /// stops (the next call that finds a read due starts it again).
    pub(super) async fn reader_loop(self: Arc<Self>) {
        loop {
            let calls_before = self.calls.load(Ordering::Relaxed);
            let wait = lock(&self.refresh).next_read_in(Instant::now());
            if let Some(wait) = wait.filter(|w| *w <= self.cfg.refresh_max_interval.saturating_mul(2)) {
                tokio::time::sleep(wait).await;
                self.read_once().await;
                self.read_done.notify_waiters();
            }
            let more = {
                let refresh = lock(&self.refresh);
                refresh.in_episode() && refresh.endpoint().is_some()
            };
            let still_called = self.calls.load(Ordering::Relaxed) != calls_before;
            if more && still_called && wait.is_some() {
                continue;
            }
            self.reader.store(false, Ordering::Release);
            // A signal that came while we were stopping must not be lost.
            let due = lock(&self.refresh).read_due(Instant::now());
            if !due || self.reader.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }

    /// One `GetParameter` (decrypted, so `SecureString` works), recorded in the schedule.
    async fn read_once(&self) {
        let cfg = &self.cfg;
        self.parameter_reads.fetch_add(1, Ordering::Relaxed);
        let call = self
            .ssm
            .get_parameter()
            .name(&cfg.parameter)
            .with_decryption(true)
            .send();
        let result = match tokio::time::timeout(cfg.read_timeout, call).await {
            Err(_) => ReadResult::Failed(format!(
                "Failed to read SSM parameter {}: no answer within read_timeout ({:?})",
                cfg.parameter, cfg.read_timeout
            )),
            Ok(Err(err)) => {
                let (detail, code) = sdk::summarize(&err);
                let text = ClientError::ReadParameter {
                    parameter: cfg.parameter.clone(),
                    detail,
                    source: Box::new(err),
                }
                .to_string();
                if code.is_some_and(|c| c.contains("Throttl")) {
                    ReadResult::Throttled(text)
                } else {
                    ReadResult::Failed(text)
                }
            }
            Ok(Ok(out)) => {
                let parameter = out.parameter();
                let secure = parameter.and_then(|p| p.r#type()) == Some(&ParameterType::SecureString);
                if secure {
                    self.secure.store(true, Ordering::Release);
                }
                let value = parameter.and_then(|p| p.value()).unwrap_or_default();
                let shown = |v: &str| if secure { HIDDEN.to_owned() } else { v.to_owned() };
                match Endpoint::parse(value) {
                    Err(reason) => ReadResult::Failed(
                        ClientError::BadEndpoint {
                            parameter: cfg.parameter.clone(),
                            value: shown(value),
                            reason,
                        }
                        .to_string(),
                    ),
                    Ok(endpoint) if !cfg.host_allowed(&endpoint.host) => ReadResult::Failed(
                        ClientError::NotAllowed {
                            parameter: cfg.parameter.clone(),
                            host: shown(&endpoint.host),
                            allowed: cfg.allowed_host_suffixes.join(", "),
                        }
                        .to_string(),
                    ),
                    Ok(endpoint) => ReadResult::Value(endpoint),
                }
            }
        };
        if let ReadResult::Failed(why) | ReadResult::Throttled(why) = &result {
            tracing::warn!(parameter = %cfg.parameter, error = %why, "could not refresh the endpoint; keeping the cached one, if any");
        }
        let outcome = lock(&self.refresh).record(Instant::now(), result, random());
        if let ReadOutcome::Changed { from } = outcome {
            self.endpoint_changes.fetch_add(1, Ordering::Relaxed);
            let to = lock(&self.refresh).endpoint().cloned();
            let shown_to = to.as_ref().map(|e| self.shown(e)).unwrap_or_default();
            tracing::info!(parameter = %cfg.parameter, from = %self.shown(&from), to = %shown_to, "Redis endpoint changed");
            // The next call connects to the new endpoint.
            let mut live = lock(&self.live);
            if live.as_ref().is_some_and(|l| Some(&l.endpoint) != to.as_ref()) {
                *live = None;
            }
        }
    }
}
