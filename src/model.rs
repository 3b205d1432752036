//! The snapshot model: what one side (source or target) looks like, captured from its DB and/or its Nacos API.
//!
//! A snapshot is plain data, serialisable to the JSON files that `snapshot` writes and `diff` reads.
//! Config content is optional: the DB layer normally carries only the MD5 computed inside MySQL,
//! and content is fetched later for the few keys that differ.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the snapshot file format.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// Which side of the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The cluster being migrated from.
    Source,
    /// The cluster being migrated to.
    Target,
}

impl Side {
    /// `source` or `target`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything captured of one side.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideSnapshot {
    /// File format version.
    pub schema_version: u32,
    /// `source` or `target` (informational: `diff A B` treats A as source, B as target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// Capture from the database, if one was configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<DbSnapshot>,
    /// Capture through the Nacos API, if nodes were configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiSnapshot>,
}

/// A read failure recorded during capture; it makes the audit incomplete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureError {
    /// What could not be read (`db`, a node URL without credentials, ...).
    pub origin: String,
    /// Namespace concerned, if the failure was limited to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What went wrong, without secrets.
    pub message: String,
}

/// What the DB layer captured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSnapshot {
    /// The DSN with the password removed.
    pub origin: String,
    /// Namespaces from `tenant_info`.
    pub namespaces: Vec<Namespace>,
    /// Config rows (`config_info`, beta/tag or gray tables).
    pub configs: Vec<ConfigItem>,
    /// Keys deleted through Nacos (a `his_config_info` 'D' row) that have no `config_info` row any more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<ConfigKey>,
    /// Newest `his_config_info.nid` seen (incremental watermark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_his_nid: Option<u64>,
    /// Rows scanned, when `configs` holds only the rows whose digests differ (compact L1 scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_scanned: Option<usize>,
    /// The in-DB content digest of the scan (`md5`, or `crc32+crc32c` for a compact scan on
    /// servers that have both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// Whether the connection to the DB was encrypted (TLS), when a connection was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// Compact digests of every row (compact L1 scan only; never written to files).
    #[serde(skip)]
    pub digests: Vec<DigestRow>,
    /// Namespaces (this side's ids, canonical) that had rows in scope when the DB was scanned,
    /// before any narrowing: a namespace with configs but no `tenant_info` row still exists.
    #[serde(skip)]
    pub namespaces_with_rows: std::collections::BTreeSet<String>,
    /// Default-namespace keys whose `public` and `''` rows differ, both written by users: a
    /// 3.x node will not start on this DB (`NacosDb::namespace_conflicts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_conflicts: Vec<ConfigKey>,
    /// Users, roles and permissions (absent: the DB has no `users` table, or the file predates them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::accounts::AuthTables>,
    /// Capacity quotas (absent: no capacity tables, or the file predates them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<crate::accounts::Quotas>,
    /// Failures while reading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<CaptureError>,
}

/// A config row reduced to what the L1 pre-filter compares: 48 bytes, nothing on the heap.
///
/// At a million rows per side, full rows would cost about a gigabyte; these cost about 100 MB,
/// and full rows are then read again (by id) only for the few keys whose digests differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRow {
    /// 128-bit hash (two independent 64-bit hashes: collisions are negligible) of the key in
    /// source-namespace terms: namespace, group, dataId and variant.
    pub key: u128,
    /// The content digest computed by the server (see `db::ContentDigest`).
    pub content: [u8; 16],
    /// Hash of type, app, desc and tags.
    pub meta: u64,
    /// Row id within its table.
    pub id: u64,
    /// Table index (0 `config_info`, 1 beta, 2 tag, 3 gray).
    pub table: u8,
}

/// What the API layer captured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSnapshot {
    /// The node the cluster-wide data was read from.
    pub origin: String,
    /// Server version as reported by the node (`unknown` if it does not say).
    pub version: String,
    /// Namespaces; the public one is `public`.
    pub namespaces: Vec<Namespace>,
    /// Every config with content.
    pub configs: Vec<ConfigItem>,
    /// Every service with its instances.
    pub services: Vec<Service>,
    /// Users, roles and permissions through `/v1/auth/*` (read when a side has no database;
    /// absent where the server has no such API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::accounts::AuthTables>,
    /// Config fields this read could not give (`desc`, `tags`), each with why: they are not
    /// compared with the other side, and the report says so.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_fields_unread: BTreeMap<String, String>,
    /// Failures while reading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<CaptureError>,
}

/// A namespace. The default namespace is always `public` here, whatever the server calls it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// Namespace id (`public` for the default one).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desc: String,
}

/// Identity of a config item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigKey {
    /// Namespace id (`public` for the default one).
    pub namespace: String,
    /// Group.
    pub group: String,
    /// dataId.
    pub data_id: String,
    /// Empty for the formal config; `beta`, `tag:<name>` or `gray:<name>` otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl ConfigKey {
    /// `namespace/group/dataId[#variant]`, for messages.
    #[must_use]
    pub fn display(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}/{}", self.namespace, self.group, self.data_id)
        } else {
            format!(
                "{}/{}/{}#{}",
                self.namespace, self.group, self.data_id, self.variant
            )
        }
    }

    /// The formal config this key (or variant) belongs to.
    #[must_use]
    pub fn formal(&self) -> FormalKey {
        FormalKey::new(&self.namespace, &self.group, &self.data_id)
    }
}

/// Identity of a formal config, variants aside: `(namespace, group, dataId)`, the key a node's
/// cache and its listeners work on (Nacos `GroupKey`: dataId + group + tenant).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FormalKey {
    /// Namespace id.
    pub namespace: String,
    /// Group.
    pub group: String,
    /// dataId.
    pub data_id: String,
}

impl FormalKey {
    /// A key from its three parts.
    #[must_use]
    pub fn new(namespace: &str, group: &str, data_id: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            group: group.to_owned(),
            data_id: data_id.to_owned(),
        }
    }

    /// The same key in another namespace (a side's own id for it).
    #[must_use]
    pub fn in_namespace(&self, namespace: String) -> Self {
        Self {
            namespace,
            group: self.group.clone(),
            data_id: self.data_id.clone(),
        }
    }
}

/// One entry of the listener md5 probe: a formal key and the md5 a node should hold for it (empty:
/// the node should not hold it at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeKey {
    /// The config.
    pub key: FormalKey,
    /// Expected md5.
    pub md5: String,
}

/// One config item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigItem {
    /// Identity.
    #[serde(flatten)]
    pub key: ConfigKey,
    /// Lowercase hex MD5 of the UTF-8 content, as Nacos computes it. Filled from content if absent.
    #[serde(default)]
    pub md5: String,
    /// Content, when captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `type` column (yaml, properties, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// `app_name`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app: String,
    /// `c_desc`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desc: String,
    /// Tags, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `gmt_modified` in epoch milliseconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ms: Option<i64>,
}

/// Identity of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceKey {
    /// Namespace id.
    pub namespace: String,
    /// Group.
    pub group: String,
    /// Service name without the group prefix.
    pub name: String,
}

/// A service with its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Identity.
    #[serde(flatten)]
    pub key: ServiceKey,
    /// Protect threshold.
    #[serde(default)]
    pub protect_threshold: f64,
    /// Service metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Selector, rendered as compact JSON (`{"type":"none"}` when unset).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Instances of every cluster, including disabled ones where the server lists them.
    #[serde(default)]
    pub instances: Vec<Instance>,
}

/// One registered instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Cluster name.
    pub cluster: String,
    /// IP.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: f64,
    /// Health as the server sees it.
    pub healthy: bool,
    /// Enabled flag.
    pub enabled: bool,
    /// Ephemeral (true) or persistent.
    pub ephemeral: bool,
    /// Instance metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Instance {
    /// `ip:port`.
    #[must_use]
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

impl SideSnapshot {
    /// A snapshot file must not hold one key twice: which entry would count is arbitrary, and
    /// a second entry could hide a difference. Namespaces, configs (with variant), deleted keys,
    /// services and instances (cluster, ip, port) are checked, namespace ids canonical
    /// (`''` = `public`). The error names the part and the key.
    pub fn check_unique_keys(&self) -> Result<(), String> {
        fn first_dup<K: Ord + Clone>(keys: impl Iterator<Item = K>) -> Option<K> {
            let mut seen = std::collections::BTreeSet::new();
            keys.into_iter().find(|k| !seen.insert(k.clone()))
        }
        let cfg = |c: &ConfigKey| ConfigKey {
            namespace: canonical_namespace(&c.namespace),
            ..c.clone()
        };
        let mut parts: Vec<(&str, Option<String>)> = Vec::new();
        if let Some(db) = &self.db {
            parts.push((
                "db.namespaces",
                first_dup(db.namespaces.iter().map(|n| canonical_namespace(&n.id))),
            ));
            parts.push((
                "db.configs",
                first_dup(db.configs.iter().map(|c| cfg(&c.key))).map(|k| k.display()),
            ));
            parts.push((
                "db.deleted",
                first_dup(db.deleted.iter().map(cfg)).map(|k| k.display()),
            ));
        }
        if let Some(api) = &self.api {
            parts.push((
                "api.namespaces",
                first_dup(api.namespaces.iter().map(|n| canonical_namespace(&n.id))),
            ));
            parts.push((
                "api.configs",
                first_dup(api.configs.iter().map(|c| cfg(&c.key))).map(|k| k.display()),
            ));
            let svc = |s: &Service| {
                (
                    canonical_namespace(&s.key.namespace),
                    s.key.group.clone(),
                    s.key.name.clone(),
                )
            };
            parts.push((
                "api.services",
                first_dup(api.services.iter().map(svc)).map(|(n, g, s)| format!("{n}/{g}/{s}")),
            ));
            for s in &api.services {
                let dup = first_dup(
                    s.instances
                        .iter()
                        .map(|i| (i.cluster.clone(), i.ip.clone(), i.port)),
                );
                if let Some((c, ip, port)) = dup {
                    let (n, g, name) = svc(s);
                    return Err(format!(
                        "api.services: instance {ip}:{port}@{c} of {n}/{g}/{name} is listed twice"
                    ));
                }
            }
        }
        match parts.into_iter().find_map(|(p, d)| d.map(|d| (p, d))) {
            Some((part, key)) => Err(format!("{part}: `{key}` is listed twice")),
            None => Ok(()),
        }
    }
}

/// `diff A B` reads A as the source and B as the target. A file whose `side` says otherwise is
/// refused: swapped files turn every missing item into an extra one, which most gates do not
/// count, so the swap would pass. Two captures of the same side (both `source` or both `target`)
/// are compared on purpose, with a warning. Returns the warning, if any.
pub fn check_sides(
    a: Option<Side>,
    a_name: &str,
    b: Option<Side>,
    b_name: &str,
) -> Result<Option<String>, String> {
    match (a, b) {
        (Some(x), Some(y)) if x == y => Ok(Some(format!(
            "{a_name} and {b_name} are both captures of the {x}: comparing them as source ({a_name}) and target ({b_name})"
        ))),
        (Some(Side::Target), _) => Err(format!(
            "{a_name} is a capture of the target (its `side` says so) but is given as the source: give the source snapshot first (`diff SOURCE TARGET`)"
        )),
        (_, Some(Side::Source)) => Err(format!(
            "{b_name} is a capture of the source (its `side` says so) but is given as the target: give the source snapshot first (`diff SOURCE TARGET`)"
        )),
        _ => Ok(None),
    }
}

/// Add the default namespace if a listing left it out (Nacos never stores it), then sort and dedup by id.
pub fn normalise_namespaces(list: &mut Vec<Namespace>) {
    if !list.iter().any(|n| n.id == "public") {
        list.push(Namespace {
            id: "public".into(),
            name: "public".into(),
            desc: String::new(),
        });
    }
    list.sort_by(|a, b| a.id.cmp(&b.id));
    list.dedup_by(|a, b| a.id == b.id);
}

/// Lowercase hex MD5 of a string's UTF-8 bytes: the digest Nacos serves in `Content-MD5`.
#[must_use]
pub fn md5_hex(content: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(content.as_bytes()))
}

/// Normalise a namespace id: `""`, `"public"` and `"null"` all mean the default namespace.
#[must_use]
pub fn canonical_namespace(id: &str) -> String {
    match id {
        "" | "public" | "null" => "public".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_nacos_lowercase_hex() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        // UTF-8 bytes, not Latin-1 or GBK: `MD5Utils.md5Hex(content, Constants.ENCODE)`, ENCODE = "UTF-8".
        assert_eq!(md5_hex("héllo"), "be50e8478cf24ff3595bc7307fb91b50");
    }

    #[test]
    fn sides_must_match_their_position() {
        use Side::{Source, Target};
        assert_eq!(check_sides(Some(Source), "a", Some(Target), "b"), Ok(None));
        assert_eq!(check_sides(None, "a", None, "b"), Ok(None));
        assert!(check_sides(Some(Target), "a", Some(Source), "b").is_err());
        assert!(check_sides(Some(Target), "a", None, "b")
            .unwrap_err()
            .starts_with("a is a capture of the target"));
        assert!(check_sides(None, "a", Some(Source), "b").is_err());
        assert!(check_sides(Some(Target), "a", Some(Target), "b")
            .unwrap()
            .unwrap()
            .contains("both captures of the target"));
    }

    #[test]
    fn duplicate_keys_are_named() {
        let item = |ns: &str, id: &str| ConfigItem {
            key: ConfigKey {
                namespace: ns.into(),
                group: "G".into(),
                data_id: id.into(),
                variant: String::new(),
            },
            md5: String::new(),
            content: Some("x".into()),
            r#type: String::new(),
            app: String::new(),
            desc: String::new(),
            tags: vec![],
            modified_ms: None,
        };
        let mut snap = SideSnapshot {
            schema_version: 1,
            api: Some(ApiSnapshot {
                configs: vec![item("", "a"), item("prod", "a"), item("public", "b")],
                ..ApiSnapshot::default()
            }),
            ..SideSnapshot::default()
        };
        assert_eq!(snap.check_unique_keys(), Ok(()));
        // `''` and `public` are one namespace.
        snap.api.as_mut().unwrap().configs.push(item("public", "a"));
        assert_eq!(
            snap.check_unique_keys(),
            Err("api.configs: `public/G/a` is listed twice".to_owned())
        );
        // A variant is another key.
        let mut beta = item("public", "a");
        beta.key.variant = "beta".into();
        snap.api.as_mut().unwrap().configs = vec![item("public", "a"), beta];
        assert_eq!(snap.check_unique_keys(), Ok(()));
    }

    #[test]
    fn default_namespace_spellings_are_one() {
        assert_eq!(canonical_namespace(""), "public");
        assert_eq!(canonical_namespace("public"), "public");
        assert_eq!(canonical_namespace("dev"), "dev");
    }
}
