//! Route 53 adapter: reads the weighted pair into our own [`Pair`], submits the one conditional
//! change batch a plan asks for, and asks whether it is INSYNC. No decisions are made here.
//!
//! A record is changed by deleting it exactly as read and creating it again with only its
//! weight replaced, so every other field (TTL, values or alias target, health check, ...) is
//! kept, and the change fails whole if the record was edited after it was read.

use std::collections::HashSet;

use aws_sdk_route53::config::retry::RetryConfig;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecordSet, RrType};
use aws_sdk_route53::Client;
use failover_core::sdk::CallError;

use crate::plan::Weights;

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

/// One weighted record, exactly as read (every field kept, so it can be written back with
/// only its weight changed).
#[derive(Debug, Clone, PartialEq)]
pub struct Record(ResourceRecordSet);

impl Record {
    /// Its weight; `None` for a record that is not weighted.
    pub fn weight(&self) -> Option<i64> {
        self.0.weight()
    }

    /// Its set identifier.
    pub fn set_identifier(&self) -> &str {
        self.0.set_identifier().unwrap_or_default()
    }

    /// The same record with another weight.
    fn with_weight(&self, weight: i64) -> ResourceRecordSet {
        let mut set = self.0.clone();
        set.weight = Some(weight);
        set
    }
}

/// The two weighted records as read; either may be missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pair {
    /// The blue record.
    pub blue: Option<Record>,
    /// The green record.
    pub green: Option<Record>,
}

/// Reads and changes weighted records in one hosted zone.
#[derive(Debug, Clone)]
pub struct Route53 {
    client: Client,
}

/// Whether a name as Route 53 lists it (`\052.shop.example.com.`) is `wanted` as configured
/// (`*.shop.example.com.`): the same name in any letter case, with or without the final dot.
fn same_name(listed: &str, wanted: &str) -> bool {
    unescaped(listed)
        .trim_end_matches('.')
        .eq_ignore_ascii_case(wanted.trim_end_matches('.'))
}

/// `name` as Route 53 spells it in a listing: every character other than a letter, a digit,
/// `-`, `_` and `.` as `\` and its three octal digits (`*` is `\052`).
pub fn escaped(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out
}

/// A name as listed by Route 53, its `\ooo` escapes turned back into the characters they stand
/// for (`\052` is `*`). A backslash not followed by three octal digits is kept as it is.
pub fn unescaped(listed: &str) -> String {
    let bytes = listed.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) if d[0] <= b'3' => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Route53 {
    /// Builds the client from the SDK configuration loaded once at init.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::from_client(Client::new(sdk))
    }

    /// Wraps a ready client (tests give a mocked one).
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }

    /// Lists records from `name`/`type` on and picks the two set identifiers. Stops when the
    /// listing moves past the name and type, at the last page, or when a cursor repeats.
    pub async fn read_pair(&self, spec: &PairSpec<'_>) -> Result<Pair, CallError> {
        let resource = || format!("{} {} in zone {}", spec.name, spec.record_type, spec.zone);
        let mut pair = Pair::default();
        // The listing starts at the name as Route 53 stores and sorts it (`*` as `\052`).
        let mut cursor: (String, String, Option<String>) = (escaped(spec.name), spec.record_type.to_owned(), None);
        let mut seen = HashSet::from([cursor.clone()]);
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
                .map_err(|e| CallError::new("list records", resource(), e))?;
            let mut past = false;
            for r in out.resource_record_sets() {
                if !same_name(r.name(), spec.name) || r.r#type().as_str() != spec.record_type {
                    past = true;
                    continue;
                }
                match r.set_identifier() {
                    Some(id) if id == spec.blue => pair.blue = Some(Record(r.clone())),
                    Some(id) if id == spec.green => pair.green = Some(Record(r.clone())),
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
            if found_both || past || !out.is_truncated() || !seen.insert(next.clone()) {
                return Ok(pair);
            }
            cursor = next;
        }
    }

    /// Changes the pair to `target` with one conditional, atomic batch: DELETE exactly the two
    /// records as read, CREATE them again with the new weights and every other field as read.
    /// Route 53 applies all four changes or none, and rejects the whole batch when a DELETE
    /// does not match the live record, so an edit made by anyone since `read` is never
    /// overwritten. No retry here: the caller reads again and plans again.
    pub async fn change_pair(
        &self,
        zone: &str,
        (blue, green): (&Record, &Record),
        target: Weights,
        comment: &str,
    ) -> Result<Submitted, ChangeError> {
        let batch = change_batch((blue, green), target, comment)
            .map_err(|e| ChangeError::Failed(CallError::local("build change batch for zone", zone, e)))?;
        // No SDK retry: a batch is submitted once; whatever went wrong, the caller reads the
        // pair again and plans again before anything is submitted a second time.
        let result = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .customize()
            .config_override(aws_sdk_route53::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        match result {
            Ok(out) => {
                let info = out.change_info();
                Ok(Submitted {
                    id: info.map(|c| c.id().to_owned()).unwrap_or_default(),
                    insync: info.map(|c| c.status()) == Some(&ChangeStatus::Insync),
                })
            }
            Err(e) => {
                let (conflict, prior) = e.as_service_error().map_or((false, false), |se| {
                    (se.is_invalid_change_batch(), se.is_prior_request_not_complete())
                });
                let e = CallError::new("change weighted records in zone", zone, e);
                // PriorRequestNotComplete and every spelling of throttling (the SDK's own list).
                let busy = prior || e.is_throttling();
                Err(if conflict {
                    ChangeError::Conflict(e)
                } else if busy {
                    ChangeError::Busy(e)
                } else if e.may_have_applied {
                    ChangeError::Unsure(e)
                } else {
                    ChangeError::Failed(e)
                })
            }
        }
    }

    /// Asks whether change `change_id` is INSYNC.
    pub async fn is_insync(&self, change_id: &str) -> Result<bool, CallError> {
        let out = self
            .client
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| CallError::new("get change", change_id, e))?;
        Ok(out.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync))
    }
}

/// The conditional batch that takes the pair as read to `target`: DELETE blue as read, CREATE
/// it with its new weight, the same for green. It names no record but the two read.
pub fn change_batch(
    (blue, green): (&Record, &Record),
    target: Weights,
    comment: &str,
) -> Result<ChangeBatch, aws_sdk_route53::error::BuildError> {
    let change = |action: ChangeAction, set: ResourceRecordSet| {
        Change::builder().action(action).resource_record_set(set).build()
    };
    ChangeBatch::builder()
        .comment(comment)
        .changes(change(ChangeAction::Delete, blue.0.clone())?)
        .changes(change(ChangeAction::Create, blue.with_weight(target.blue))?)
        .changes(change(ChangeAction::Delete, green.0.clone())?)
        .changes(change(ChangeAction::Create, green.with_weight(target.green))?)
        .build()
}

/// A change batch Route 53 accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The change id, e.g. `/change/C2682N5HXP0BZ4`.
    pub id: String,
    /// Whether it was already INSYNC when accepted.
    pub insync: bool,
}

/// Why a change batch was not (or may not have been) applied. Route 53 applies a batch whole
/// or not at all.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// `InvalidChangeBatch`: a DELETE did not match, so the records changed since they were
    /// read (or the batch is invalid in itself).
    #[error(transparent)]
    Conflict(CallError),
    /// `PriorRequestNotComplete` or throttling under any of its names: Route 53 is busy; read
    /// again and try again shortly.
    #[error(transparent)]
    Busy(CallError),
    /// A server error, a timeout or a dropped connection after the batch was sent: it may or
    /// may not have been applied; only a new read tells.
    #[error(transparent)]
    Unsure(CallError),
    /// Any other failure.
    #[error(transparent)]
    Failed(CallError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::operation::change_resource_record_sets::{
        ChangeResourceRecordSetsError, ChangeResourceRecordSetsOutput,
    };
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_sdk_route53::types::error::{InvalidChangeBatch, PriorRequestNotComplete};
    use aws_sdk_route53::types::{ChangeInfo, ResourceRecord};
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use failover_core::sdk;
    use std::time::Duration;

    fn client(rules: &[&Rule]) -> Route53 {
        let retry = sdk::retry_config().with_initial_backoff(Duration::from_millis(1));
        Route53::from_client(mock_client!(aws_sdk_route53, RuleMode::Sequential, rules, |c| c
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

    const W100_0: Weights = Weights { blue: 100, green: 0 };

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
        assert_eq!(pair.blue.unwrap().weight(), Some(100));
        assert_eq!(pair.green.unwrap().weight(), Some(0));
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
    async fn one_batch_deletes_exactly_what_was_read_and_creates_it_with_new_weights() {
        let blue = record("app.example.com.", "blue", 75);
        let green = record("app.example.com.", "green", 25);
        let (b, g) = (blue.clone(), green.clone());
        let exact = mock!(Client::change_resource_record_sets)
            .match_requests(move |r| {
                let batch = r.change_batch().unwrap();
                let got: Vec<(ChangeAction, ResourceRecordSet)> = batch
                    .changes()
                    .iter()
                    .map(|c| (c.action().clone(), c.resource_record_set().unwrap().clone()))
                    .collect();
                let mut b100 = b.clone();
                b100.weight = Some(100);
                let mut g0 = g.clone();
                g0.weight = Some(0);
                batch.comment() == Some("why")
                    && got
                        == [
                            (ChangeAction::Delete, b.clone()),
                            (ChangeAction::Create, b100),
                            (ChangeAction::Delete, g.clone()),
                            (ChangeAction::Create, g0),
                        ]
            })
            .then_output(|| {
                ChangeResourceRecordSetsOutput::builder()
                    .change_info(change_info())
                    .build()
            });
        let submitted = client(&[&exact])
            .change_pair("Z1", (&Record(blue), &Record(green)), W100_0, "why")
            .await
            .unwrap();
        assert_eq!(
            submitted,
            Submitted {
                id: "/change/C1".into(),
                insync: false
            }
        );
        assert_eq!(exact.num_calls(), 1);
    }

    #[tokio::test]
    async fn rejections_say_whether_to_read_again() {
        let r = record("app.example.com.", "blue", 1);
        let pair = (&Record(r.clone()), &Record(r));
        let conflict = mock!(Client::change_resource_record_sets).then_error(|| {
            ChangeResourceRecordSetsError::InvalidChangeBatch(
                InvalidChangeBatch::builder()
                    .message("Tried to delete resource record set [name='app.example.com.', type='A', set-identifier='blue'] but the values provided do not match the current values")
                    .build(),
            )
        });
        let err = client(&[&conflict])
            .change_pair("Z1", pair, W100_0, "c")
            .await
            .unwrap_err();
        assert!(matches!(err, ChangeError::Conflict(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("Failed to change weighted records in zone Z1"),
            "{err}"
        );
        let busy = mock!(Client::change_resource_record_sets).then_error(|| {
            ChangeResourceRecordSetsError::PriorRequestNotComplete(
                PriorRequestNotComplete::builder().message("busy").build(),
            )
        });
        let err = client(&[&busy]).change_pair("Z1", pair, W100_0, "c").await.unwrap_err();
        assert!(matches!(err, ChangeError::Busy(_)), "{err}");
        // no retry inside the adapter: one call each
        assert_eq!((conflict.num_calls(), busy.num_calls()), (1, 1));
        // throttling under each of AWS's names is "busy" too
        for code in [
            "Throttling",
            "ThrottlingException",
            "TooManyRequestsException",
            "RequestLimitExceeded",
        ] {
            let throttled = mock!(Client::change_resource_record_sets)
                .sequence()
                .http_status(400, Some(format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded</Message></Error></ErrorResponse>")))
                .build();
            let err = client(&[&throttled])
                .change_pair("Z1", pair, W100_0, "c")
                .await
                .unwrap_err();
            assert!(matches!(err, ChangeError::Busy(_)), "{code}: {err}");
            assert_eq!(throttled.num_calls(), 1, "{code}");
        }
        let denied = mock!(Client::change_resource_record_sets)
            .sequence()
            .http_status(403, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>"#.into()))
            .build();
        let err = client(&[&denied])
            .change_pair("Z1", pair, W100_0, "c")
            .await
            .unwrap_err();
        assert!(
            matches!(err, ChangeError::Failed(ref e) if e.code.as_deref() == Some("AccessDenied")),
            "{err}"
        );
    }

    #[test]
    fn names_are_compared_in_route53s_spelling() {
        assert_eq!(escaped("*.shop.example.com."), "\\052.shop.example.com.");
        assert_eq!(escaped("a+b_c-d.example.com."), "a\\053b_c-d.example.com.");
        assert_eq!(unescaped("\\052.shop.example.com."), "*.shop.example.com.");
        assert_eq!(unescaped("a\\053b.example.com."), "a+b.example.com.");
        // a backslash that starts no escape is kept
        assert_eq!(unescaped("a\\x.b\\"), "a\\x.b\\");
        for name in ["*.shop.example.com.", "app.example.com.", "x+y.example.com.", "*"] {
            assert_eq!(unescaped(&escaped(name)), name);
        }
        assert!(same_name("\\052.Shop.example.com.", "*.shop.example.com."));
        assert!(same_name("\\052.shop.example.com.", "*.shop.example.com"));
        assert!(!same_name("\\052.shop.example.com.", "x.shop.example.com."));
        assert!(!same_name("app.example.com.", "*.example.com."));
    }

    #[tokio::test]
    async fn a_wildcard_pair_is_listed_from_its_escaped_name_and_found() {
        let listing = mock!(Client::list_resource_record_sets)
            .match_requests(|r| r.start_record_name() == Some("\\052.shop.example.com."))
            .then_output(|| {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(record("\\052.shop.example.com.", "blue", 100))
                    .resource_record_sets(record("\\052.shop.example.com.", "green", 0))
                    .is_truncated(false)
                    .max_items(100)
                    .build()
                    .unwrap()
            });
        let spec = PairSpec {
            zone: "Z1",
            name: "*.shop.example.com.",
            record_type: "A",
            blue: "blue",
            green: "green",
        };
        let pair = client(&[&listing]).read_pair(&spec).await.unwrap();
        assert_eq!(pair.blue.map(|r| r.weight()), Some(Some(100)));
        assert_eq!(pair.green.map(|r| r.weight()), Some(Some(0)));
    }

    #[tokio::test]
    async fn paging_stops_on_any_cursor_seen_before() {
        // GIVEN a listing whose cursor cycles between two positions without ever ending
        let cycle = |next: &'static str| {
            move || {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(record("app.example.com.", "blue", 100))
                    .is_truncated(true)
                    .next_record_name("app.example.com.")
                    .next_record_type(RrType::A)
                    .next_record_identifier(next)
                    .max_items(1)
                    .build()
                    .unwrap()
            }
        };
        let pages = mock!(Client::list_resource_record_sets)
            .sequence()
            .output(cycle("x"))
            .output(cycle("y"))
            .output(cycle("x"))
            .repeatedly()
            .build();
        let pair = client(&[&pages]).read_pair(&SPEC).await.unwrap();
        assert!(pair.green.is_none());
        assert_eq!(pages.num_calls(), 3, "stopped when x came back");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// The batch names the two records read and nothing else, deletes each exactly as
        /// read, and creates it again changed in its weight only.
        #[test]
        fn the_batch_touches_only_the_pair_and_only_its_weights(
            blue_ttl in 0i64..=86_400,
            green_ttl in 0i64..=86_400,
            blue_weight in 0i64..=255,
            green_weight in 0i64..=255,
            target_blue in 0i64..=255,
            target_green in 0i64..=255,
            ips in proptest::collection::vec("(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}", 1..4),
        ) {
            let mut blue = record("app.example.com.", "blue", blue_weight);
            blue.ttl = Some(blue_ttl);
            blue.resource_records = Some(ips.iter().map(|ip| ResourceRecord::builder().value(ip).build().unwrap()).collect());
            let mut green = record("app.example.com.", "green", green_weight);
            green.ttl = Some(green_ttl);
            let target = Weights { blue: target_blue, green: target_green };
            let batch = change_batch((&Record(blue.clone()), &Record(green.clone())), target, "c").unwrap();
            let changes: Vec<(ChangeAction, ResourceRecordSet)> = batch
                .changes()
                .iter()
                .map(|c| (c.action().clone(), c.resource_record_set().unwrap().clone()))
                .collect();
            let mut blue2 = blue.clone();
            blue2.weight = Some(target_blue);
            let mut green2 = green.clone();
            green2.weight = Some(target_green);
            proptest::prop_assert_eq!(
                changes,
                vec![
                    (ChangeAction::Delete, blue),
                    (ChangeAction::Create, blue2),
                    (ChangeAction::Delete, green),
                    (ChangeAction::Create, green2),
                ]
            );
        }
    }
}
