//! What a migration moves besides configs and services: the auth tables (users, user → role
//! bindings, role → resource permissions) and the capacity quotas, as captured from one side.
//!
//! A password hash is never held: the DB digests it in SQL (`SHA2`, with a prefix of ours) and
//! only that digest is kept, compared for equality, and written to snapshot files; no report ever
//! shows it, not even with `--show-secrets`.

use serde::{Deserialize, Serialize};

/// Users, roles and permissions of one side (Nacos's built-in auth: `users`, `roles`,
/// `permissions`; the same through `/v1/auth/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthTables {
    /// Users.
    #[serde(default)]
    pub users: Vec<User>,
    /// User → role bindings.
    #[serde(default)]
    pub roles: Vec<RoleBinding>,
    /// Role → resource, action permissions.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// Why `permissions` could not be read on this side (r-nacos has none in Nacos' sense):
    /// then permissions are not compared, and a `--namespace` run cannot scope users by them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_not_read: Option<String>,
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub username: String,
    /// SHA-256 (hex) of a fixed prefix and the stored password hash; absent where the hash
    /// cannot be read (the auth API does not return it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_sha256: Option<String>,
}

/// One user → role binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBinding {
    /// User.
    pub username: String,
    /// Role.
    pub role: String,
}

/// One permission: a role may do `action` (`r`, `w`, `rw`) on `resource`
/// (`<namespace id>:<group>:<type>/<name>`, Nacos `PermissionInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// Role.
    pub role: String,
    /// Resource.
    pub resource: String,
    /// Action.
    pub action: String,
}

/// Capacity quotas of one side (`tenant_capacity`, `group_capacity`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Per namespace (`tenant_id`, canonical: `public` for the default namespace).
    #[serde(default)]
    pub tenants: Vec<Quota>,
    /// Per group (`group_id`; empty = the whole cluster).
    #[serde(default)]
    pub groups: Vec<Quota>,
}

/// One quota row; `0` means "the server's default" (Nacos `Capacity`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Namespace or group id.
    pub id: String,
    /// Most configs.
    pub quota: u32,
    /// Largest config, bytes.
    pub max_size: u32,
    /// Most aggregated sub-configs.
    pub max_aggr_count: u32,
    /// Largest aggregated sub-config, bytes.
    pub max_aggr_size: u32,
    /// Most history rows.
    pub max_history_count: u32,
}

impl Quota {
    /// `(field, value)` of every compared limit (`usage` is a count, not a limit: not compared).
    #[must_use]
    pub fn limits(&self) -> [(&'static str, u32); 5] {
        [
            ("quota", self.quota),
            ("max_size", self.max_size),
            ("max_aggr_count", self.max_aggr_count),
            ("max_aggr_size", self.max_aggr_size),
            ("max_history_count", self.max_history_count),
        ]
    }
}

/// What of the accounts and quotas L1 could not compare, for the report's "not compared": a side
/// whose database (or snapshot file) holds none. Nothing when L1 itself did not run or failed.
#[must_use]
pub fn not_compared(
    source: &crate::model::SideSnapshot,
    target: &crate::model::SideSnapshot,
) -> Vec<String> {
    let (Some(s), Some(t)) = (&source.db, &target.db) else {
        // No L1: the accounts come through the API, where both sides serve it.
        let (Some(s), Some(t)) = (&source.api, &target.api) else {
            return Vec::new();
        };
        if !s.errors.is_empty() || !t.errors.is_empty() {
            return Vec::new();
        }
        let who = match (&s.auth, &t.auth) {
            (Some(a), Some(b)) => {
                return [("the source", a), ("the target", b)]
                    .iter()
                    .filter_map(|(who, t)| Some((who, t.permissions_not_read.as_ref()?)))
                    .map(|(who, why)| format!(
                        "permissions (role → resource) at L3: not read on {who}: {why}; users and roles are compared cluster-wide, even in a --namespace run"
                    ))
                    .collect();
            }
            (None, Some(_)) => "the source",
            (Some(_), None) => "the target",
            (None, None) => "either side",
        };
        return vec![format!(
            "accounts (users, roles, permissions) at L3: not read on {who} (Java Nacos serves /v1/auth/* or /v3/auth/*; r-nacos only its console API, read where `rnacos_console` is set), and no database on both sides for L1"
        )];
    };
    if !s.errors.is_empty() || !t.errors.is_empty() {
        return Vec::new();
    }
    let lacking = |a: bool, b: bool| match (a, b) {
        (true, true) => None,
        (false, true) => Some("the source"),
        (true, false) => Some("the target"),
        (false, false) => Some("either side"),
    };
    let mut out = Vec::new();
    if let Some(who) = lacking(s.auth.is_some(), t.auth.is_some()) {
        out.push(format!(
            "accounts (users, roles, permissions) at L1: no `users` table read on {who} (a database without Nacos auth tables, or a snapshot file from before they were captured)"
        ));
    }
    if let Some(who) = lacking(s.quotas.is_some(), t.quotas.is_some()) {
        out.push(format!(
            "quotas (tenant_capacity, group_capacity) at L1: none read on {who} (a database without capacity tables, or a snapshot file from before they were captured)"
        ));
    }
    out
}
