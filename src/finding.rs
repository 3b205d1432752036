//! Findings: the drift kinds with their stable codes, levels, layers and the finding record itself.

use serde::{Deserialize, Serialize};

/// Stable kebab-case codes of every finding kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A namespace of the source has no counterpart on the target.
    NamespaceMissing,
    /// A namespace exists only on the target.
    NamespaceExtra,
    /// A config of the source is absent on the target.
    ConfigMissing,
    /// A config exists only on the target.
    ConfigExtra,
    /// Same key, different content.
    ConfigContentDiffers,
    /// Same content, different type/app/desc/tags.
    ConfigMetaDiffers,
    /// A node serves an md5 other than its DB's (or its cluster's API content).
    CacheStale,
    /// A node does not serve a config that its DB has.
    CacheMissing,
    /// A node serves a config whose DB row is gone.
    CacheExtra,
    /// A node's cache is newer than the DB row: no reload will take the row.
    CacheTimestampTrap,
    /// A configured node is not a member of its cluster, or a member is unreachable.
    NodeNotMember,
    /// A service of the source is absent on the target.
    ServiceMissing,
    /// A service exists only on the target.
    ServiceExtra,
    /// Protect threshold, metadata or selector differ.
    ServiceMetaDiffers,
    /// An instance of the source is absent on the target.
    InstanceMissing,
    /// An instance exists only on the target.
    InstanceExtra,
    /// Weight, health, enabled, ephemeral or metadata differ.
    InstanceDiffers,
    /// An SDK client is still connected to a source node (checked for `decommission-ready`).
    ClientConnected,
    /// L4: a client holds an md5 other than the one its node serves (or should serve).
    ClientStale,
    /// L4: a client still listens to configs on a source node.
    ClientOnSource,
    /// L4, information: a client listens to the same configs on both sides (dual subscription).
    ClientDualSubscribed,
    /// Something could not be read: the audit is incomplete.
    SourceError,
    /// An entry of the `--baseline` file matched no finding of this run (it can go).
    BaselineStale,
    /// A target instance carrying a sync tool's source marker whose source instance is gone.
    InstanceOrphaned,
    /// A user of the source is absent on the target.
    UserMissing,
    /// A user exists only on the target.
    UserExtra,
    /// A user's password hash differs (the hash is never shown).
    UserPasswordDiffers,
    /// A user → role binding of the source is absent on the target.
    RoleMissing,
    /// A user → role binding exists only on the target.
    RoleExtra,
    /// A role → resource, action permission of the source is absent on the target.
    PermissionMissing,
    /// A role → resource, action permission exists only on the target.
    PermissionExtra,
    /// A tenant or group capacity quota of the source is absent on the target.
    CapacityMissing,
    /// A tenant or group capacity quota differs (quota, max size, max aggr count/size).
    CapacityDiffers,
    /// A DB holds a default-namespace key under `public` and under `''` with different content,
    /// both written by users: Nacos 3.x refuses to start on it.
    NamespaceMigrateConflict,
}

impl Code {
    /// Every code, in report order.
    pub const ALL: [Code; 34] = [
        Code::NamespaceMissing,
        Code::NamespaceExtra,
        Code::ConfigMissing,
        Code::ConfigExtra,
        Code::ConfigContentDiffers,
        Code::ConfigMetaDiffers,
        Code::CacheStale,
        Code::CacheMissing,
        Code::CacheExtra,
        Code::CacheTimestampTrap,
        Code::NodeNotMember,
        Code::ServiceMissing,
        Code::ServiceExtra,
        Code::ServiceMetaDiffers,
        Code::InstanceMissing,
        Code::InstanceExtra,
        Code::InstanceDiffers,
        Code::ClientConnected,
        Code::ClientStale,
        Code::ClientOnSource,
        Code::ClientDualSubscribed,
        Code::SourceError,
        Code::BaselineStale,
        Code::InstanceOrphaned,
        Code::UserMissing,
        Code::UserExtra,
        Code::UserPasswordDiffers,
        Code::RoleMissing,
        Code::RoleExtra,
        Code::PermissionMissing,
        Code::PermissionExtra,
        Code::CapacityMissing,
        Code::CapacityDiffers,
        Code::NamespaceMigrateConflict,
    ];

    /// The kebab-case code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NamespaceMissing => "namespace-missing",
            Code::NamespaceExtra => "namespace-extra",
            Code::ConfigMissing => "config-missing",
            Code::ConfigExtra => "config-extra",
            Code::ConfigContentDiffers => "config-content-differs",
            Code::ConfigMetaDiffers => "config-meta-differs",
            Code::CacheStale => "cache-stale",
            Code::CacheMissing => "cache-missing",
            Code::CacheExtra => "cache-extra",
            Code::CacheTimestampTrap => "cache-timestamp-trap",
            Code::NodeNotMember => "node-not-member",
            Code::ServiceMissing => "service-missing",
            Code::ServiceExtra => "service-extra",
            Code::ServiceMetaDiffers => "service-meta-differs",
            Code::InstanceMissing => "instance-missing",
            Code::InstanceExtra => "instance-extra",
            Code::InstanceDiffers => "instance-differs",
            Code::ClientConnected => "client-connected",
            Code::ClientStale => "client-stale",
            Code::ClientOnSource => "client-on-source",
            Code::ClientDualSubscribed => "client-dual-subscribed",
            Code::SourceError => "source-error",
            Code::BaselineStale => "baseline-stale",
            Code::InstanceOrphaned => "instance-orphaned",
            Code::UserMissing => "user-missing",
            Code::UserExtra => "user-extra",
            Code::UserPasswordDiffers => "user-password-differs",
            Code::RoleMissing => "role-missing",
            Code::RoleExtra => "role-extra",
            Code::PermissionMissing => "permission-missing",
            Code::PermissionExtra => "permission-extra",
            Code::CapacityMissing => "capacity-missing",
            Code::CapacityDiffers => "capacity-differs",
            Code::NamespaceMigrateConflict => "namespace-migrate-conflict",
        }
    }

    /// The level a code has unless `[levels]` says otherwise: `allow` for information (a client
    /// subscribed on both sides, as a migration goes), `warn` for the advisory kinds (a stale
    /// baseline entry, quotas), `deny` for every other drift kind.
    #[must_use]
    pub fn default_level(self) -> Level {
        match self {
            Code::ClientDualSubscribed => Level::Allow,
            Code::BaselineStale | Code::CapacityMissing | Code::CapacityDiffers => Level::Warn,
            _ => Level::Deny,
        }
    }

    /// Parse a kebab-case code.
    #[must_use]
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Reported in the details only; never fails a gate.
    Allow,
    /// Reported; never fails a gate.
    Warn,
    /// Fails the gate (exit 1).
    Deny,
}

impl Level {
    /// `allow`, `warn` or `deny`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Deny => "deny",
        }
    }

    /// Parse a level name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "allow" => Some(Level::Allow),
            "warn" => Some(Level::Warn),
            "deny" => Some(Level::Deny),
            _ => None,
        }
    }
}

/// Which comparison found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Layer {
    /// DB ↔ DB.
    L1,
    /// DB ↔ each node's cache.
    L2,
    /// Cluster ↔ cluster through the API.
    L3,
    /// Each node ↔ the clients listening to it.
    L4,
}

impl Layer {
    /// `L1`, `L2`, `L3` or `L4`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::L1 => "L1",
            Layer::L2 => "L2",
            Layer::L3 => "L3",
            Layer::L4 => "L4",
        }
    }
}

/// One difference (or read failure) between source and target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Level after configuration.
    pub level: Level,
    /// Comparison layer.
    pub layer: Layer,
    /// Whether this finding counts for the selected gate.
    pub in_gate: bool,
    /// Namespace (source id; the target id when it differs is in `detail`).
    pub namespace: String,
    /// Group.
    pub group: String,
    /// dataId or service name.
    pub name: String,
    /// `beta`, `tag:<t>` or `gray:<g>` for config variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `ip:port` (with cluster) for instance findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Node URL for per-node findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Which side the finding is about (for source errors and node findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<crate::model::Side>,
    /// Fields that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Digest on the source side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
    /// Digest on the target side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_digest: Option<String>,
    /// L2: the md5 the node should serve (its DB row's; empty = the config should not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_md5: Option<String>,
    /// L2: the md5 the node serves (empty = it serves nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_md5: Option<String>,
    /// L4: the md5 a client holds (empty = it holds nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_md5: Option<String>,
    /// L2 with `--fix`: `repaired`, `still stale after …`, `planned: …` or `not repairable: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
    /// Human explanation.
    pub detail: String,
    /// Masked unified diff (source → target) for content differences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Seconds since the source row last changed, when known: a young difference may be replication lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_secs: Option<i64>,
    /// Against the last run (or `--since`'s report): `new` or `still`; absent with nothing to compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_last: Option<String>,
    /// Matched by an entry of the `--baseline` file: reported and counted, never failing a gate
    /// (serialised only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accepted: bool,
}

impl Finding {
    /// A finding with the identity filled and everything else empty; levels are applied later.
    #[must_use]
    pub fn new(code: Code, layer: Layer, namespace: &str, group: &str, name: &str) -> Self {
        Finding {
            code,
            level: Level::Deny,
            layer,
            in_gate: true,
            namespace: namespace.to_owned(),
            group: group.to_owned(),
            name: name.to_owned(),
            variant: None,
            instance: None,
            node: None,
            side: None,
            fields: Vec::new(),
            source_digest: None,
            target_digest: None,
            expected_md5: None,
            served_md5: None,
            held_md5: None,
            repair: None,
            detail: String::new(),
            diff: None,
            age_secs: None,
            since_last: None,
            accepted: false,
        }
    }

    /// Sort key: findings are always rendered in this order.
    #[must_use]
    pub fn sort_key(&self) -> impl Ord + '_ {
        (
            self.layer,
            self.code,
            &self.namespace,
            &self.group,
            &self.name,
            &self.variant,
            &self.instance,
            &self.node,
        )
    }

    /// Whether this finding fails the selected gate: `deny`, inside the gate, neither repaired
    /// nor accepted by the baseline.
    #[must_use]
    pub fn failing(&self) -> bool {
        self.level == Level::Deny && self.in_gate && !self.repaired() && !self.accepted
    }

    /// Whether a `--fix` repair made this finding go away (verified by a fresh probe).
    #[must_use]
    pub fn repaired(&self) -> bool {
        self.repair.as_deref() == Some("repaired")
    }

    /// Identity used to match a finding across the settling re-check.
    #[must_use]
    pub fn identity(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{:?}|{:?}|{:?}",
            self.code,
            self.layer.as_str(),
            self.namespace,
            self.group,
            self.name,
            self.variant,
            self.instance,
            self.node
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in Code::ALL {
            assert_eq!(Code::parse(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
    }
}
