//! What a replication group looks like to us, and which endpoint of it to publish.
//!
//! `pick_endpoint` is the decision the whole reconciler exists for. The group's
//! `PrimaryEndpoint` is a DNS name that ElastiCache repoints after a failover, so copying it
//! anywhere changes nothing and clients that cached its old address (or hold connections to the
//! demoted node) keep writing to a replica. In `node` mode we publish the address of the member
//! whose `CurrentRole` is `primary`, which is the node that accepts writes right now.

use std::fmt;
use std::str::FromStr;

pub use failover_core::endpoint::Endpoint;

/// Which endpoint of a cluster-mode-disabled group to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// The member whose `CurrentRole` is `primary` (default).
    Node,
    /// The node group's `PrimaryEndpoint` DNS name.
    PrimaryEndpoint,
}

impl FromStr for EndpointMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "node" => Ok(Self::Node),
            "primary-endpoint" => Ok(Self::PrimaryEndpoint),
            _ => Err("expected node or primary-endpoint".into()),
        }
    }
}

impl fmt::Display for EndpointMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Node => "node",
            Self::PrimaryEndpoint => "primary-endpoint",
        })
    }
}

/// A replication group as described by `DescribeReplicationGroups`, reduced to what we decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationGroup {
    /// Replication group id.
    pub id: String,
    /// Group status: `available`, `modifying`, `snapshotting`, `creating`, ...
    pub status: String,
    /// True for cluster-mode-enabled groups (sharded; clients use the configuration endpoint).
    pub cluster_enabled: bool,
    /// The configuration endpoint of a cluster-mode-enabled group.
    pub configuration_endpoint: Option<Endpoint>,
    /// Node groups (shards); exactly one when cluster mode is disabled.
    pub node_groups: Vec<NodeGroup>,
}

/// One node group (shard) of a replication group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeGroup {
    /// Node group id, e.g. `0001`.
    pub id: String,
    /// The node group's `PrimaryEndpoint` (a DNS name that follows the primary).
    pub primary_endpoint: Option<Endpoint>,
    /// Members (cache clusters) of the node group.
    pub members: Vec<Member>,
}

/// A member of a node group: one cache cluster (node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Cache cluster id, e.g. `orders-002`.
    pub cache_cluster_id: String,
    /// `CurrentRole` as reported (`primary`, `replica`); absent for cluster mode enabled.
    pub current_role: Option<String>,
    /// The member's own endpoint (`ReadEndpoint`), which always points at this node.
    pub read_endpoint: Option<Endpoint>,
}

impl Member {
    fn is_primary(&self) -> bool {
        self.current_role.as_deref() == Some("primary")
    }
}

/// What a published endpoint belongs to. Shown as the member's id, `primary-endpoint` or
/// `configuration-endpoint` (the response's `node` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// One member (cache cluster) of the group, by id, e.g. `orders-002`.
    Member(String),
    /// The node group's `PrimaryEndpoint`, a DNS name that follows the primary.
    PrimaryEndpoint,
    /// The `ConfigurationEndpoint` of a sharded group, which fronts many nodes.
    ConfigurationEndpoint,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Member(id) => id,
            Self::PrimaryEndpoint => "primary-endpoint",
            Self::ConfigurationEndpoint => "configuration-endpoint",
        })
    }
}

/// The endpoint chosen for a group, and which node it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// What to publish.
    pub endpoint: Endpoint,
    /// What the endpoint is.
    pub node: Node,
}

/// Why no endpoint could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// The group is changing (failover, modification); roles may be about to move.
    #[error("replication group {group} is {status}, not available; waiting for it to settle")]
    NotSettled {
        /// Group id.
        group: String,
        /// Reported status.
        status: String,
    },
    /// No member reports `CurrentRole=primary` (mid-failover).
    #[error("replication group {group} has no member with CurrentRole=primary (failover in progress?)")]
    NoPrimary {
        /// Group id.
        group: String,
    },
    /// More than one member reports `CurrentRole=primary` (mid-failover).
    #[error("replication group {group} reports several primaries ({members}); waiting for one")]
    SeveralPrimaries {
        /// Group id.
        group: String,
        /// The members claiming the role, comma separated.
        members: String,
    },
    /// The endpoint we need is not in the description (group still being created).
    #[error("replication group {group} has no {what} yet")]
    MissingEndpoint {
        /// Group id.
        group: String,
        /// Which endpoint is missing.
        what: String,
    },
    /// A cluster-mode-disabled group with other than one node group: not something we can publish.
    #[error(
        "replication group {group} has {count} node groups but is not cluster-mode enabled; cannot choose one primary"
    )]
    UnexpectedShape {
        /// Group id.
        group: String,
        /// Number of node groups found.
        count: usize,
    },
}

impl PickError {
    /// True when waiting and describing the group again may give an answer.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::UnexpectedShape { .. })
    }
}

/// Statuses in which members' roles do not change. A daily backup (`snapshotting`) must not
/// hold up publishing.
const SETTLED_STATUSES: [&str; 2] = ["available", "snapshotting"];

/// Chooses the endpoint to publish for `group`.
///
/// - Cluster mode enabled: the `ConfigurationEndpoint` (it never moves; status is irrelevant).
/// - `primary-endpoint` mode: the node group's `PrimaryEndpoint` (a fixed DNS name).
/// - `node` mode: the `ReadEndpoint` of the one member whose `CurrentRole` is `primary`, only
///   while the group is settled; zero or several primaries, or a changing status, are transient
///   errors the caller waits out.
pub fn pick_endpoint(group: &ReplicationGroup, mode: EndpointMode) -> Result<Pick, PickError> {
    let missing = |what: &str| PickError::MissingEndpoint {
        group: group.id.clone(),
        what: what.to_owned(),
    };
    if group.cluster_enabled || group.configuration_endpoint.is_some() {
        let endpoint = group
            .configuration_endpoint
            .clone()
            .ok_or_else(|| missing("ConfigurationEndpoint"))?;
        return Ok(Pick {
            endpoint,
            node: Node::ConfigurationEndpoint,
        });
    }
    let [node_group] = group.node_groups.as_slice() else {
        return Err(PickError::UnexpectedShape {
            group: group.id.clone(),
            count: group.node_groups.len(),
        });
    };
    if mode == EndpointMode::PrimaryEndpoint {
        let endpoint = node_group
            .primary_endpoint
            .clone()
            .ok_or_else(|| missing("PrimaryEndpoint"))?;
        return Ok(Pick {
            endpoint,
            node: Node::PrimaryEndpoint,
        });
    }
    if !is_settled(group) {
        return Err(PickError::NotSettled {
            group: group.id.clone(),
            status: group.status.clone(),
        });
    }
    single_primary(group, node_group)
}

fn is_settled(group: &ReplicationGroup) -> bool {
    SETTLED_STATUSES.contains(&group.status.as_str())
}

/// The one member of `node_group` whose `CurrentRole` is `primary`, whatever the group's status.
fn single_primary(group: &ReplicationGroup, node_group: &NodeGroup) -> Result<Pick, PickError> {
    let primaries: Vec<&Member> = node_group.members.iter().filter(|m| m.is_primary()).collect();
    match primaries.as_slice() {
        [] => Err(PickError::NoPrimary {
            group: group.id.clone(),
        }),
        [primary] => {
            let endpoint = primary
                .read_endpoint
                .clone()
                .ok_or_else(|| PickError::MissingEndpoint {
                    group: group.id.clone(),
                    what: format!("ReadEndpoint for member {}", primary.cache_cluster_id),
                })?;
            Ok(Pick {
                endpoint,
                node: Node::Member(primary.cache_cluster_id.clone()),
            })
        }
        several => Err(PickError::SeveralPrimaries {
            group: group.id.clone(),
            members: several
                .iter()
                .map(|m| m.cache_cluster_id.as_str())
                .collect::<Vec<_>>()
                .join(","),
        }),
    }
}

/// The primary an unsettled group reports, in `node` mode: `Some` only when [`pick_endpoint`]
/// refuses `group` for its status alone (one node group, exactly one member reporting
/// `primary`, with an endpoint). Whether to publish it depends on the parameter: see
/// [`names_stale_node`].
pub fn unsettled_primary(group: &ReplicationGroup, mode: EndpointMode) -> Option<Pick> {
    if mode != EndpointMode::Node
        || group.cluster_enabled
        || group.configuration_endpoint.is_some()
        || is_settled(group)
    {
        return None;
    }
    let [node_group] = group.node_groups.as_slice() else {
        return None;
    };
    single_primary(group, node_group).ok()
}

/// Whether `current` (the parameter's value) is known to be wrong while `group` is unsettled
/// and reports `primary` as its one primary: it names a member that the same description
/// reports in another role (a replica), or a `host:port` that is no longer any member's (nor
/// the group's `PrimaryEndpoint`). Scaling and engine upgrades keep a group `modifying` for tens
/// of minutes and fail the primary over meanwhile: a known replica is worse than the reported
/// primary. A value that is the primary, the `PrimaryEndpoint` (which follows the primary), a
/// member in no reported role, or not a `host:port` at all is not known to be wrong.
pub fn names_stale_node(group: &ReplicationGroup, primary: &Pick, current: &str) -> bool {
    let Ok(current) = Endpoint::parse(current) else {
        return false;
    };
    let same = |e: &Endpoint| e.port == current.port && e.host.eq_ignore_ascii_case(&current.host);
    if same(&primary.endpoint) {
        return false;
    }
    let node_groups = &group.node_groups;
    if node_groups
        .iter()
        .any(|ng| ng.primary_endpoint.as_ref().is_some_and(same))
    {
        return false;
    }
    let named = node_groups
        .iter()
        .flat_map(|ng| &ng.members)
        .find(|m| m.read_endpoint.as_ref().is_some_and(same));
    match named {
        // A member at that address: stale when the same describe reports it as a replica.
        Some(member) => member.current_role.as_deref() == Some("replica"),
        // No member has that address any more.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, role: &str) -> Member {
        Member {
            cache_cluster_id: id.into(),
            current_role: Some(role.into()),
            read_endpoint: Some(Endpoint::new(
                format!("{id}.abc123.0001.use1.cache.amazonaws.com"),
                6379,
            )),
        }
    }

    /// GIVEN a cluster-mode-disabled group with the given member roles.
    fn group(status: &str, roles: &[(&str, &str)]) -> ReplicationGroup {
        ReplicationGroup {
            id: "orders".into(),
            status: status.into(),
            cluster_enabled: false,
            configuration_endpoint: None,
            node_groups: vec![NodeGroup {
                id: "0001".into(),
                primary_endpoint: Some(Endpoint::new("master.orders.abc123.use1.cache.amazonaws.com", 6379)),
                members: roles.iter().map(|(id, role)| member(id, role)).collect(),
            }],
        }
    }

    #[test]
    fn node_mode_publishes_the_member_that_is_primary_now() {
        // GIVEN orders-002 was promoted (orders-001 is now a replica)
        let g = group("available", &[("orders-001", "replica"), ("orders-002", "primary")]);
        // WHEN we pick in node mode
        let pick = pick_endpoint(&g, EndpointMode::Node).unwrap();
        // THEN the new primary's own endpoint is published, not the group's DNS name
        assert_eq!(pick.node, Node::Member("orders-002".into()));
        assert_eq!(
            pick.endpoint.to_string(),
            "orders-002.abc123.0001.use1.cache.amazonaws.com:6379"
        );
    }

    #[test]
    fn primary_endpoint_mode_publishes_the_dns_name_whatever_the_roles() {
        for roles in [
            &[("orders-001", "primary")][..],
            &[("orders-001", "replica"), ("orders-002", "replica")],
        ] {
            for status in ["available", "modifying"] {
                let pick = pick_endpoint(&group(status, roles), EndpointMode::PrimaryEndpoint).unwrap();
                assert_eq!(pick.node, Node::PrimaryEndpoint);
                assert_eq!(
                    pick.endpoint.to_string(),
                    "master.orders.abc123.use1.cache.amazonaws.com:6379"
                );
            }
        }
    }

    #[test]
    fn zero_primaries_is_transient() {
        let g = group("available", &[("orders-001", "replica"), ("orders-002", "replica")]);
        let err = pick_endpoint(&g, EndpointMode::Node).unwrap_err();
        assert_eq!(err, PickError::NoPrimary { group: "orders".into() });
        assert!(err.is_transient());
    }

    #[test]
    fn two_primaries_is_transient_and_names_both() {
        let g = group("available", &[("orders-001", "primary"), ("orders-002", "primary")]);
        let err = pick_endpoint(&g, EndpointMode::Node).unwrap_err();
        assert_eq!(
            err,
            PickError::SeveralPrimaries {
                group: "orders".into(),
                members: "orders-001,orders-002".into()
            }
        );
        assert!(err.is_transient());
    }

    #[test]
    fn a_changing_group_is_not_trusted_but_a_backup_does_not_block() {
        let roles = [("orders-001", "primary"), ("orders-002", "replica")];
        let err = pick_endpoint(&group("modifying", &roles), EndpointMode::Node).unwrap_err();
        assert!(matches!(err, PickError::NotSettled { ref status, .. } if status == "modifying"));
        assert!(err.is_transient());
        assert_eq!(
            pick_endpoint(&group("snapshotting", &roles), EndpointMode::Node)
                .unwrap()
                .node,
            Node::Member("orders-001".into())
        );
    }

    #[test]
    fn an_unsettled_group_reports_its_one_primary_and_nothing_else_does() {
        let roles = [("orders-001", "replica"), ("orders-002", "primary")];
        let primary = unsettled_primary(&group("modifying", &roles), EndpointMode::Node).unwrap();
        assert_eq!(
            primary,
            pick_endpoint(&group("available", &roles), EndpointMode::Node).unwrap()
        );
        // settled, or nothing to report, or not node mode: no unsettled primary
        for (status, roles) in [
            ("available", &roles[..]),
            ("snapshotting", &roles[..]),
            ("modifying", &[("orders-001", "replica"), ("orders-002", "replica")][..]),
            ("modifying", &[("orders-001", "primary"), ("orders-002", "primary")][..]),
        ] {
            assert_eq!(
                unsettled_primary(&group(status, roles), EndpointMode::Node),
                None,
                "{status} {roles:?}"
            );
        }
        assert_eq!(
            unsettled_primary(&group("modifying", &roles), EndpointMode::PrimaryEndpoint),
            None
        );
        let mut no_endpoint = group("modifying", &roles);
        no_endpoint.node_groups[0].members[1].read_endpoint = None;
        assert_eq!(unsettled_primary(&no_endpoint, EndpointMode::Node), None);
        let mut sharded = group("modifying", &roles);
        sharded.cluster_enabled = true;
        assert_eq!(unsettled_primary(&sharded, EndpointMode::Node), None);
    }

    #[test]
    fn a_parameter_is_known_stale_only_when_it_names_a_replica_or_a_node_gone() {
        let g = group(
            "modifying",
            &[
                ("orders-001", "replica"),
                ("orders-002", "primary"),
                ("orders-003", "replica"),
            ],
        );
        let primary = unsettled_primary(&g, EndpointMode::Node).unwrap();
        let at = |id: &str| format!("{id}.abc123.0001.use1.cache.amazonaws.com:6379");
        // a replica of the same description, in any letter case; a node no longer in the group
        assert!(names_stale_node(&g, &primary, &at("orders-001")));
        assert!(names_stale_node(&g, &primary, &at("ORDERS-003")));
        assert!(names_stale_node(&g, &primary, &at("orders-009")));
        assert!(names_stale_node(
            &g,
            &primary,
            "orders-002.abc123.0001.use1.cache.amazonaws.com:6380"
        ));
        // a member in no reported role is not known to be a replica
        let mut unknown = g.clone();
        unknown.node_groups[0].members[0].current_role = None;
        assert!(!names_stale_node(&unknown, &primary, &at("orders-001")));
        // the primary itself, the PrimaryEndpoint (it follows the primary), or no host:port at all
        assert!(!names_stale_node(&g, &primary, &at("orders-002")));
        assert!(!names_stale_node(&g, &primary, &at("Orders-002")));
        assert!(!names_stale_node(
            &g,
            &primary,
            "master.orders.abc123.use1.cache.amazonaws.com:6379"
        ));
        for not_an_endpoint in ["", "pending", "host-without-port"] {
            assert!(!names_stale_node(&g, &primary, not_an_endpoint), "{not_an_endpoint:?}");
        }
    }

    #[test]
    fn a_primary_without_endpoint_is_transient() {
        let mut g = group("available", &[("orders-001", "primary")]);
        g.node_groups[0].members[0].read_endpoint = None;
        let err = pick_endpoint(&g, EndpointMode::Node).unwrap_err();
        assert!(
            matches!(err, PickError::MissingEndpoint { .. }) && err.is_transient(),
            "{err}"
        );
    }

    #[test]
    fn cluster_mode_enabled_always_publishes_the_configuration_endpoint() {
        // GIVEN a sharded group: members have no CurrentRole, status may be anything
        let cfg = Endpoint::new("clustercfg.orders.abc123.use1.cache.amazonaws.com", 6379);
        for mode in [EndpointMode::Node, EndpointMode::PrimaryEndpoint] {
            let g = ReplicationGroup {
                id: "orders".into(),
                status: "modifying".into(),
                cluster_enabled: true,
                configuration_endpoint: Some(cfg.clone()),
                node_groups: vec![
                    NodeGroup {
                        id: "0001".into(),
                        primary_endpoint: None,
                        members: vec![],
                    },
                    NodeGroup {
                        id: "0002".into(),
                        primary_endpoint: None,
                        members: vec![],
                    },
                ],
            };
            let pick = pick_endpoint(&g, mode).unwrap();
            assert_eq!((pick.endpoint, pick.node), (cfg.clone(), Node::ConfigurationEndpoint));
        }
    }

    #[test]
    fn cluster_mode_enabled_without_configuration_endpoint_is_transient() {
        let g = ReplicationGroup {
            id: "orders".into(),
            status: "creating".into(),
            cluster_enabled: true,
            configuration_endpoint: None,
            node_groups: vec![],
        };
        assert!(pick_endpoint(&g, EndpointMode::Node).unwrap_err().is_transient());
    }

    #[test]
    fn a_disabled_group_with_several_shards_is_a_permanent_error() {
        let mut g = group("available", &[("orders-001", "primary")]);
        g.node_groups.push(g.node_groups[0].clone());
        let err = pick_endpoint(&g, EndpointMode::Node).unwrap_err();
        assert!(!err.is_transient(), "{err}");
    }

    #[test]
    fn endpoint_modes_parse_and_print() {
        for mode in [EndpointMode::Node, EndpointMode::PrimaryEndpoint] {
            assert_eq!(mode.to_string().parse::<EndpointMode>(), Ok(mode));
        }
        assert!("Node".parse::<EndpointMode>().is_err());
    }
}
