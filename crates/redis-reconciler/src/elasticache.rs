//! ElastiCache adapter: describes replication groups and converts them to our
//! [`ReplicationGroup`](crate::topology::ReplicationGroup). No decisions are made here.

use std::collections::{HashMap, HashSet};

use aws_sdk_elasticache::types as sdk;
use aws_sdk_elasticache::Client;

use failover_core::sdk::CallError;
use tokio::time::Instant;

use crate::topology::{Endpoint, Member, NodeGroup, ReplicationGroup};

/// The largest page `DescribeReplicationGroups` returns.
pub const PAGE_SIZE: i32 = 100;

/// Why a group could not be described.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The replication group does not exist (or this role cannot see it).
    #[error("replication group {group} was not found in this account and region: check the group id in the function's configuration")]
    NotFound {
        /// Group id.
        group: String,
    },
    /// The call failed after the SDK's retries.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// What [`ElastiCache::describe_many`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The groups found, by id.
    pub groups: HashMap<String, ReplicationGroup>,
    /// False when the listing stopped for lack of time before reaching its end: a group absent
    /// from `groups` may exist.
    pub complete: bool,
}

/// Reads replication groups.
#[derive(Debug, Clone)]
pub struct ElastiCache {
    client: Client,
}

impl ElastiCache {
    /// Builds the client from the SDK configuration loaded once at init.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::from_client(Client::new(sdk))
    }

    /// Wraps a ready client (tests give a mocked one).
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }

    /// Describes one group by id.
    pub async fn describe(&self, id: &str) -> Result<ReplicationGroup, DescribeError> {
        let out = self
            .client
            .describe_replication_groups()
            .replication_group_id(id)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_replication_group_not_found_fault() => {
                    DescribeError::NotFound { group: id.to_owned() }
                }
                _ => CallError::new("describe replication group", id, e).into(),
            })?;
        out.replication_groups()
            .iter()
            .find(|g| g.replication_group_id() == Some(id))
            .map(to_domain)
            .ok_or_else(|| DescribeError::NotFound { group: id.to_owned() })
    }

    /// Describes several groups with as few calls as possible: one group is described by id;
    /// several are found by listing pages of [`PAGE_SIZE`], stopping as soon as all are seen.
    /// A page after the first starts only before `next_page_by` (the caller's deadline for
    /// one more call): past it, the listing stops and says it is incomplete. Groups that do not
    /// exist are absent from the map.
    pub async fn describe_many(&self, ids: &[&str], next_page_by: Instant) -> Result<Listing, CallError> {
        let wanted: HashSet<&str> = ids.iter().copied().collect();
        let complete = |groups| Listing { groups, complete: true };
        if let [only] = wanted.iter().copied().collect::<Vec<_>>().as_slice() {
            return match self.describe(only).await {
                Ok(g) => Ok(complete(HashMap::from([(g.id.clone(), g)]))),
                Err(DescribeError::NotFound { .. }) => Ok(complete(HashMap::new())),
                Err(DescribeError::Call(e)) => Err(e),
            };
        }
        let mut found = HashMap::new();
        let mut marker: Option<String> = None;
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let out = self
                .client
                .describe_replication_groups()
                .max_records(PAGE_SIZE)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| CallError::new("list replication groups", ids.join(", "), e))?;
            for g in out.replication_groups() {
                if let Some(id) = g.replication_group_id().filter(|id| wanted.contains(id)) {
                    found.insert(id.to_owned(), to_domain(g));
                }
            }
            // Stop when everything is found, at the last page, or on a cursor seen before (a
            // service that pages in a loop must not keep the function busy until its deadline).
            let Some(next) = out.marker().filter(|m| !m.is_empty()).map(str::to_owned) else {
                return Ok(complete(found));
            };
            if found.len() == wanted.len() {
                return Ok(complete(found));
            }
            // A cursor seen before: the service pages in a loop; what it did not show is unknown.
            if !seen.insert(next.clone()) {
                return Ok(Listing {
                    groups: found,
                    complete: false,
                });
            }
            if Instant::now() >= next_page_by {
                return Ok(Listing {
                    groups: found,
                    complete: false,
                });
            }
            marker = Some(next);
        }
    }
}

fn endpoint(e: Option<&sdk::Endpoint>) -> Option<Endpoint> {
    let e = e?;
    let port = u16::try_from(e.port()?).ok()?;
    Some(Endpoint::new(e.address().filter(|a| !a.is_empty())?, port))
}

/// Converts the SDK's description into our domain type.
pub fn to_domain(g: &sdk::ReplicationGroup) -> ReplicationGroup {
    ReplicationGroup {
        id: g.replication_group_id().unwrap_or_default().to_owned(),
        status: g.status().unwrap_or_default().to_owned(),
        cluster_enabled: g.cluster_enabled().unwrap_or(false),
        configuration_endpoint: endpoint(g.configuration_endpoint()),
        node_groups: g
            .node_groups()
            .iter()
            .map(|ng| NodeGroup {
                id: ng.node_group_id().unwrap_or_default().to_owned(),
                primary_endpoint: endpoint(ng.primary_endpoint()),
                members: ng
                    .node_group_members()
                    .iter()
                    .map(|m| Member {
                        cache_cluster_id: m.cache_cluster_id().unwrap_or_default().to_owned(),
                        current_role: m.current_role().map(str::to_owned),
                        read_endpoint: endpoint(m.read_endpoint()),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_elasticache::operation::describe_replication_groups::{
        DescribeReplicationGroupsError, DescribeReplicationGroupsOutput,
    };
    use aws_sdk_elasticache::types::error::ReplicationGroupNotFoundFault;
    use aws_sdk_elasticache::types::{
        Endpoint as SdkEndpoint, NodeGroup as SdkNodeGroup, NodeGroupMember, ReplicationGroup as SdkGroup,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use failover_core::sdk;
    use std::time::Duration;

    /// A described group `id` of two members, `<id>-001` and `<id>-002`, whose primary is
    /// `<id>-<primary>`.
    pub(crate) fn sdk_group(id: &str, primary: &str) -> SdkGroup {
        let member = |n: &str| {
            NodeGroupMember::builder()
                .cache_cluster_id(format!("{id}-{n}"))
                .current_role(if n == primary { "primary" } else { "replica" })
                .read_endpoint(
                    SdkEndpoint::builder()
                        .address(format!("{id}-{n}.abc.use1.cache.amazonaws.com"))
                        .port(6379)
                        .build(),
                )
                .build()
        };
        SdkGroup::builder()
            .replication_group_id(id)
            .status("available")
            .cluster_enabled(false)
            .node_groups(
                SdkNodeGroup::builder()
                    .node_group_id("0001")
                    .primary_endpoint(
                        SdkEndpoint::builder()
                            .address(format!("master.{id}.abc.use1.cache.amazonaws.com"))
                            .port(6379)
                            .build(),
                    )
                    .node_group_members(member("001"))
                    .node_group_members(member("002"))
                    .build(),
            )
            .build()
    }

    /// A client with our production retry policy, but millisecond backoff to keep tests fast.
    fn client(rules: &[&aws_smithy_mocks::Rule]) -> ElastiCache {
        let retry = sdk::retry_config().with_initial_backoff(Duration::from_millis(1));
        ElastiCache::from_client(mock_client!(aws_sdk_elasticache, RuleMode::Sequential, rules, |c| c
            .retry_config(retry.clone())))
    }

    #[tokio::test]
    async fn converts_roles_and_endpoints() {
        // GIVEN a group whose second member is primary
        let ok = mock!(Client::describe_replication_groups)
            .match_requests(|r| r.replication_group_id() == Some("orders"))
            .then_output(|| {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(sdk_group("orders", "002"))
                    .build()
            });
        // WHEN described
        let g = client(&[&ok]).describe("orders").await.unwrap();
        // THEN our domain type carries roles and member endpoints
        assert_eq!(g.node_groups[0].members[1].current_role.as_deref(), Some("primary"));
        assert_eq!(
            g.node_groups[0].members[1].read_endpoint.as_ref().unwrap().to_string(),
            "orders-002.abc.use1.cache.amazonaws.com:6379"
        );
        assert_eq!(
            g.node_groups[0].primary_endpoint.as_ref().unwrap().host,
            "master.orders.abc.use1.cache.amazonaws.com"
        );
    }

    #[tokio::test]
    async fn throttling_is_retried_then_succeeds() {
        // GIVEN two throttling responses, then a good one
        let rule = mock!(Client::describe_replication_groups)
            .sequence()
            .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
            .times(2)
            .output(|| DescribeReplicationGroupsOutput::builder().replication_groups(sdk_group("orders", "001")).build())
            .build();
        // WHEN described THEN the SDK's standard retry hides the throttling
        let g = client(&[&rule]).describe("orders").await.unwrap();
        assert_eq!(g.id, "orders");
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn persistent_server_errors_fail_after_the_retry_budget() {
        let rule = mock!(Client::describe_replication_groups)
            .sequence()
            .http_status(503, None)
            .repeatedly()
            .build();
        let err = client(&[&rule]).describe("orders").await.unwrap_err();
        assert!(matches!(err, DescribeError::Call(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("Failed to describe replication group orders:"),
            "{err}"
        );
        assert_eq!(rule.num_calls(), sdk::MAX_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn a_missing_group_is_named() {
        let rule = mock!(Client::describe_replication_groups).then_error(|| {
            DescribeReplicationGroupsError::ReplicationGroupNotFoundFault(
                ReplicationGroupNotFoundFault::builder().message("not found").build(),
            )
        });
        let err = client(&[&rule]).describe("billing").await.unwrap_err();
        assert!(
            matches!(err, DescribeError::NotFound { ref group } if group == "billing"),
            "{err}"
        );
        // and describe_many reports it as absent rather than failing the others
        let rule = mock!(Client::describe_replication_groups).then_error(|| {
            DescribeReplicationGroupsError::ReplicationGroupNotFoundFault(
                ReplicationGroupNotFoundFault::builder().build(),
            )
        });
        let listing = client(&[&rule]).describe_many(&["billing"], later()).await.unwrap();
        assert!(listing.groups.is_empty() && listing.complete);
    }

    #[tokio::test]
    async fn several_groups_are_found_by_paging_and_paging_stops_when_all_are_seen() {
        // GIVEN three pages; the groups we want are on pages 1 and 2
        let page1 = mock!(Client::describe_replication_groups)
            .match_requests(|r| {
                r.marker().is_none() && r.max_records() == Some(PAGE_SIZE) && r.replication_group_id().is_none()
            })
            .then_output(|| {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(sdk_group("orders", "001"))
                    .replication_groups(sdk_group("other", "001"))
                    .marker("m1")
                    .build()
            });
        let page2 = mock!(Client::describe_replication_groups)
            .match_requests(|r| r.marker() == Some("m1"))
            .then_output(|| {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(sdk_group("sessions", "002"))
                    .marker("m2")
                    .build()
            });
        let page3 = mock!(Client::describe_replication_groups)
            .then_output(|| DescribeReplicationGroupsOutput::builder().build());
        // WHEN both are asked for
        let found = client(&[&page1, &page2, &page3])
            .describe_many(&["orders", "sessions"], later())
            .await
            .unwrap();
        // THEN both are returned and the third page is never fetched
        assert!(found.complete);
        let found = found.groups;
        assert_eq!(found.len(), 2);
        assert_eq!(
            found["sessions"].node_groups[0].members[1].current_role.as_deref(),
            Some("primary")
        );
        assert_eq!((page1.num_calls(), page2.num_calls(), page3.num_calls()), (1, 1, 0));
    }

    #[tokio::test]
    async fn paging_stops_on_any_cursor_seen_before() {
        // GIVEN pages whose cursor cycles m1 -> m2 -> m1 without the wanted groups
        let page = |marker: &'static str| {
            move || {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(sdk_group("other", "001"))
                    .marker(marker)
                    .build()
            }
        };
        let cycle = mock!(Client::describe_replication_groups)
            .sequence()
            .output(page("m1"))
            .output(page("m2"))
            .output(page("m1"))
            .repeatedly()
            .build();
        let found = client(&[&cycle])
            .describe_many(&["orders", "sessions"], later())
            .await
            .unwrap();
        assert!(
            found.groups.is_empty() && !found.complete,
            "not found, but not known missing"
        );
        assert_eq!(cycle.num_calls(), 3, "stopped when m1 came back");
    }

    #[tokio::test]
    async fn paging_ends_at_the_last_page_or_a_stuck_cursor() {
        let stuck = mock!(Client::describe_replication_groups)
            .sequence()
            .output(|| {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(sdk_group("orders", "001"))
                    .marker("same")
                    .build()
            })
            .repeatedly()
            .build();
        let ec = client(&[&stuck]);
        let found = ec.describe_many(&["orders", "missing"], later()).await.unwrap();
        assert_eq!(found.groups.keys().collect::<Vec<_>>(), ["orders"]);
        assert!(!found.complete, "\"missing\" is unknown past a stuck cursor");
        assert_eq!(
            stuck.num_calls(),
            2,
            "one call without marker, one with it, then stop: the cursor did not move"
        );
    }

    /// A page deadline that never stops the listing.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test]
    async fn no_page_starts_after_its_deadline_and_the_listing_says_it_is_incomplete() {
        // GIVEN endless pages, each with another group than the two wanted
        let pages = mock!(Client::describe_replication_groups)
            .sequence()
            .output(|| {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(sdk_group("orders", "001"))
                    .marker("m1")
                    .build()
            })
            .output(|| {
                DescribeReplicationGroupsOutput::builder()
                    .replication_groups(sdk_group("other", "001"))
                    .marker("m2")
                    .build()
            })
            .build();
        // WHEN the time for another page is already over
        let found = client(&[&pages])
            .describe_many(&["orders", "sessions"], Instant::now())
            .await
            .unwrap();
        // THEN the first page is kept, no second page starts, and the listing is incomplete
        assert!(!found.complete);
        assert_eq!(found.groups.keys().collect::<Vec<_>>(), ["orders"]);
        assert_eq!(pages.num_calls(), 1);
    }
}
