//! Route 53 adapter: reads a weighted pair, submits one change batch that changes only the
//! two weights, and waits for the change to be INSYNC.
//!
//! Records are changed by copying the live record and replacing its weight, so every other
//! field (TTL, values or alias target, health check, ...) is submitted exactly as read.

use std::time::Duration;

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecordSet, RrType};
use aws_sdk_route53::Client;
use tokio::time::Instant;

use crate::aws::AwsError;
use crate::backoff;

/// Page size when listing records. Our pair sits right at the start of the listing, so one
/// page normally holds it.
pub const PAGE_SIZE: i32 = 100;

/// Which records to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSpec<'a> {
    /// Hosted zone id.
    pub zone: &'a str,
    /// Record name, lower case with a trailing dot.
    pub name: &'a str,
    /// Record type.
    pub record_type: &'a str,
    /// Blue set identifier.
    pub blue: &'a str,
    /// Green set identifier.
    pub green: &'a str,
}

/// The two weighted records as read; either may be missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pair {
    /// The blue record.
    pub blue: Option<ResourceRecordSet>,
    /// The green record.
    pub green: Option<ResourceRecordSet>,
}

/// Reads and changes weighted records in one hosted zone.
#[derive(Debug, Clone)]
pub struct Route53 {
    client: Client,
}

fn same_name(listed: &str, wanted: &str) -> bool {
    listed
        .trim_end_matches('.')
        .eq_ignore_ascii_case(wanted.trim_end_matches('.'))
}

impl Route53 {
    /// Wraps a client built once at init.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Lists records from `name`/`type` on and picks the two set identifiers. Stops when the
    /// listing moves past the name and type, at the last page, or when the cursor stops
    /// moving.
    pub async fn read_pair(&self, spec: &PairSpec<'_>) -> Result<Pair, AwsError> {
        let resource = || format!("{} {} in zone {}", spec.name, spec.record_type, spec.zone);
        let mut pair = Pair::default();
        let mut cursor: (String, String, Option<String>) = (spec.name.to_owned(), spec.record_type.to_owned(), None);
        loop {
            let out = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(spec.zone)
                .start_record_name(&cursor.0)
                .start_record_type(RrType::from(cursor.1.as_str()))
                .set_start_record_identifier(cursor.2.clone())
                .max_items(PAGE_SIZE)
                .send()
                .await
                .map_err(|e| AwsError::sdk("list records", resource(), e))?;
            let mut past = false;
            for r in out.resource_record_sets() {
                if !same_name(r.name(), spec.name) || r.r#type().as_str() != spec.record_type {
                    past = true;
                    continue;
                }
                match r.set_identifier() {
                    Some(id) if id == spec.blue => pair.blue = Some(r.clone()),
                    Some(id) if id == spec.green => pair.green = Some(r.clone()),
                    _ => {}
                }
            }
            let next = (
                out.next_record_name().unwrap_or_default().to_owned(),
                out.next_record_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                out.next_record_identifier().map(str::to_owned),
            );
            let found_both = pair.blue.is_some() && pair.green.is_some();
            if found_both || past || !out.is_truncated() || next == cursor {
                return Ok(pair);
            }
            cursor = next;
        }
    }

    /// Submits one change batch of two UPSERTs that set the weights and keep every other
    /// field. Retries `PriorRequestNotComplete` and throttling with backoff until `until`.
    /// Returns the change id.
    pub async fn set_weights(
        &self,
        zone: &str,
        (blue, blue_weight): (&ResourceRecordSet, i64),
        (green, green_weight): (&ResourceRecordSet, i64),
        comment: &str,
        until: Instant,
    ) -> Result<String, AwsError> {
        let upsert = |record: &ResourceRecordSet, weight: i64| {
            let mut record = record.clone();
            record.weight = Some(weight);
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(record)
                .build()
        };
        let batch = ChangeBatch::builder()
            .comment(comment)
            .changes(upsert(blue, blue_weight).map_err(|e| AwsError::call("build change for", zone, e))?)
            .changes(upsert(green, green_weight).map_err(|e| AwsError::call("build change for", zone, e))?)
            .build()
            .map_err(|e| AwsError::call("build change batch for zone", zone, e))?;
        let started = Instant::now();
        let budget = until.saturating_duration_since(started);
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .change_resource_record_sets()
                .hosted_zone_id(zone)
                .change_batch(batch.clone())
                .send()
                .await;
            match result {
                Ok(out) => return Ok(out.change_info().map(|c| c.id().to_owned()).unwrap_or_default()),
                Err(e) => {
                    let busy = e.as_service_error().is_some_and(|se| {
                        se.is_prior_request_not_complete()
                            || aws_smithy_types::error::metadata::ProvideErrorMetadata::code(se) == Some("Throttling")
                    });
                    let wait = if busy {
                        backoff::next_wait(attempt, started.elapsed(), budget)
                    } else {
                        None
                    };
                    let Some(wait) = wait else {
                        return Err(AwsError::sdk("change weighted records in zone", zone, e));
                    };
                    tracing::info!(
                        zone,
                        wait_ms = wait.as_millis() as u64,
                        "Route 53 busy with a prior change; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Polls `GetChange` until INSYNC or `until`. Returns whether it is INSYNC.
    pub async fn wait_insync(&self, change_id: &str, until: Instant) -> Result<bool, AwsError> {
        let started = Instant::now();
        let budget = until.saturating_duration_since(started);
        let mut attempt = 0;
        loop {
            let out = self
                .client
                .get_change()
                .id(change_id)
                .send()
                .await
                .map_err(|e| AwsError::sdk("get change", change_id, e))?;
            if out.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync) {
                return Ok(true);
            }
            let Some(wait) = backoff::next_wait(attempt, started.elapsed(), budget) else {
                return Ok(false);
            };
            tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::sdk;
    use aws_sdk_route53::operation::change_resource_record_sets::{
        ChangeResourceRecordSetsError, ChangeResourceRecordSetsOutput,
    };
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_sdk_route53::types::error::{InvalidChangeBatch, PriorRequestNotComplete};
    use aws_sdk_route53::types::{ChangeInfo, ResourceRecord};
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

    fn client(rules: &[&Rule]) -> Route53 {
        let retry = sdk::retry_config().with_initial_backoff(Duration::from_millis(1));
        Route53::new(mock_client!(aws_sdk_route53, RuleMode::Sequential, rules, |c| c
            .retry_config(retry.clone())))
    }

    fn record(name: &str, id: &str, weight: i64) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .set_identifier(id)
            .weight(weight)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value("192.0.2.10").build().unwrap())
            .build()
            .unwrap()
    }

    const SPEC: PairSpec<'static> = PairSpec {
        zone: "Z1",
        name: "app.example.com.",
        record_type: "A",
        blue: "blue",
        green: "green",
    };

    fn change_info() -> ChangeInfo {
        ChangeInfo::builder()
            .id("/change/C1")
            .status(ChangeStatus::Pending)
            .submitted_at(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn the_pair_is_found_across_pages() {
        // GIVEN blue on the first page and green on the second
        let page1 = mock!(Client::list_resource_record_sets)
            .match_requests(|r| {
                r.start_record_name() == Some("app.example.com.") && r.start_record_identifier().is_none()
            })
            .then_output(|| {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(record("app.example.com.", "blue", 100))
                    .is_truncated(true)
                    .next_record_name("app.example.com.")
                    .next_record_type(RrType::A)
                    .next_record_identifier("green")
                    .max_items(1)
                    .build()
                    .unwrap()
            });
        let page2 = mock!(Client::list_resource_record_sets)
            .match_requests(|r| r.start_record_identifier() == Some("green"))
            .then_output(|| {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(record("app.example.com.", "green", 0))
                    .is_truncated(false)
                    .max_items(1)
                    .build()
                    .unwrap()
            });
        let pair = client(&[&page1, &page2]).read_pair(&SPEC).await.unwrap();
        assert_eq!(pair.blue.unwrap().weight, Some(100));
        assert_eq!(pair.green.unwrap().weight, Some(0));
    }

    #[tokio::test]
    async fn listing_stops_past_the_name_and_when_the_cursor_is_stuck() {
        // GIVEN a page that moves on to another name: the pair is incomplete and we stop
        let past = mock!(Client::list_resource_record_sets).then_output(|| {
            ListResourceRecordSetsOutput::builder()
                .resource_record_sets(record("app.example.com.", "blue", 100))
                .resource_record_sets(record("other.example.com.", "green", 0))
                .is_truncated(true)
                .next_record_name("zzz.example.com.")
                .next_record_type(RrType::A)
                .max_items(2)
                .build()
                .unwrap()
        });
        let pair = client(&[&past]).read_pair(&SPEC).await.unwrap();
        assert!(
            pair.blue.is_some() && pair.green.is_none(),
            "green of another name must not count"
        );
        // GIVEN a truncated listing whose cursor never moves
        let stuck = mock!(Client::list_resource_record_sets)
            .sequence()
            .output(|| {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(record("app.example.com.", "blue", 100))
                    .is_truncated(true)
                    .next_record_name("app.example.com.")
                    .next_record_type(RrType::A)
                    .max_items(1)
                    .build()
                    .unwrap()
            })
            .repeatedly()
            .build();
        let pair = client(&[&stuck]).read_pair(&SPEC).await.unwrap();
        assert!(pair.green.is_none());
        assert_eq!(
            stuck.num_calls(),
            1,
            "the cursor equals the start: stop instead of looping"
        );
    }

    #[tokio::test]
    async fn prior_request_not_complete_is_retried_then_succeeds() {
        let busy = mock!(Client::change_resource_record_sets)
            .sequence()
            .error(|| {
                ChangeResourceRecordSetsError::PriorRequestNotComplete(
                    PriorRequestNotComplete::builder().message("busy").build(),
                )
            })
            .times(2)
            .output(|| {
                ChangeResourceRecordSetsOutput::builder()
                    .change_info(change_info())
                    .build()
            })
            .build();
        let blue = record("app.example.com.", "blue", 75);
        let green = record("app.example.com.", "green", 25);
        let until = Instant::now() + Duration::from_secs(10);
        let id = client(&[&busy])
            .set_weights("Z1", (&blue, 100), (&green, 0), "c", until)
            .await
            .unwrap();
        assert_eq!((id.as_str(), busy.num_calls()), ("/change/C1", 3));
    }

    #[tokio::test]
    async fn one_batch_of_two_upserts_changes_only_the_weights() {
        let blue = record("app.example.com.", "blue", 75);
        let green = record("app.example.com.", "green", 25);
        let (b, g) = (blue.clone(), green.clone());
        let exact = mock!(Client::change_resource_record_sets)
            .match_requests(move |r| {
                let batch = r.change_batch().unwrap();
                let changes = batch.changes();
                let mut want_b = b.clone();
                want_b.weight = Some(100);
                let mut want_g = g.clone();
                want_g.weight = Some(0);
                batch.comment() == Some("why")
                    && changes.len() == 2
                    && changes.iter().all(|c| c.action() == &ChangeAction::Upsert)
                    && changes[0].resource_record_set() == Some(&want_b)
                    && changes[1].resource_record_set() == Some(&want_g)
            })
            .then_output(|| {
                ChangeResourceRecordSetsOutput::builder()
                    .change_info(change_info())
                    .build()
            });
        let until = Instant::now() + Duration::from_secs(10);
        client(&[&exact])
            .set_weights("Z1", (&blue, 100), (&green, 0), "why", until)
            .await
            .unwrap();
        assert_eq!(exact.num_calls(), 1);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let invalid = mock!(Client::change_resource_record_sets).then_error(|| {
            ChangeResourceRecordSetsError::InvalidChangeBatch(InvalidChangeBatch::builder().message("bad").build())
        });
        let r = record("app.example.com.", "blue", 1);
        let until = Instant::now() + Duration::from_secs(10);
        let err = client(&[&invalid])
            .set_weights("Z1", (&r, 1), (&r, 0), "c", until)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Failed to change weighted records in zone Z1"),
            "{err}"
        );
        assert_eq!(invalid.num_calls(), 1);
    }
}
