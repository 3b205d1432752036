//! The diff engine: compares a source and a target snapshot layer by layer and returns findings.
//!
//! Keys are mapped into the target's namespace space first (`''` ↔ `public`, then the configured
//! map), so that a namespace renamed during the migration is not reported as missing plus extra.
//! Hashing and comparison run on rayon; the output is sorted so reports are deterministic.

pub mod coverage;
pub mod namespaces;
mod tags;
pub mod text;

use crate::finding::{Code, Finding, Layer};
use crate::model::{
    canonical_namespace, md5_hex, ConfigItem, ConfigKey, Instance, Namespace, Service, SideSnapshot,
};
use crate::settings::Settings;
use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Compiled scope rules: namespace filter, namespace pairing and ignore globs.
pub struct Scope {
    namespaces: Vec<String>,
    pairing: namespaces::Pairing,
    ignore_ns: GlobSet,
    ignore_group: GlobSet,
    ignore_data_id: GlobSet,
    ignore_service: GlobSet,
    ignore_meta: BTreeSet<String>,
    show_secrets: bool,
}

fn globset(globs: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        // Globs were validated when the settings were resolved.
        if let Ok(g) = Glob::new(g) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

impl Scope {
    /// Compile the scope of a run.
    #[must_use]
    pub fn new(s: &Settings) -> Self {
        Scope {
            namespaces: s.namespaces.clone(),
            // The map was checked when the settings were resolved (an ambiguous one is exit 2).
            pairing: namespaces::Pairing::new(&s.namespace_map).unwrap_or_default(),
            ignore_ns: globset(&s.ignore.namespaces),
            ignore_group: globset(&s.ignore.groups),
            ignore_data_id: globset(&s.ignore.data_ids),
            ignore_service: globset(&s.ignore.services),
            ignore_meta: s.ignore.metadata_keys.iter().cloned().collect(),
            show_secrets: s.show_secrets,
        }
    }

    /// The target namespace id a source namespace is compared with. A displaced source namespace
    /// (see [`namespaces`]) pairs with none: its own id is returned, for reading only; no target
    /// key ever maps back to it.
    #[must_use]
    pub fn to_target(&self, source_ns: &str) -> String {
        let ns = canonical_namespace(source_ns);
        self.pairing.target_of(&ns).unwrap_or(ns)
    }

    /// The key of a target namespace in source terms: the source namespace it pairs with, or for
    /// an orphan a key that is never in scope (so an orphan is neither read nor compared).
    #[must_use]
    pub fn to_source(&self, target_ns: &str) -> String {
        self.pairing.source_key(target_ns)
    }

    /// The resolved namespace pairing.
    #[must_use]
    pub fn pairing(&self) -> &namespaces::Pairing {
        &self.pairing
    }

    /// Whether a namespace (in source terms) is audited at all.
    #[must_use]
    pub fn namespace_in_scope(&self, source_ns: &str) -> bool {
        !source_ns.starts_with(namespaces::ORPHAN_PREFIX)
            && (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == source_ns))
            && !self.ignore_ns.is_match(source_ns)
    }

    /// Where a source namespace's items were looked for on the target, for the details of
    /// `*-missing` findings: its mapped id, or why it pairs with nothing.
    fn looked_for(&self, source_ns: &str) -> String {
        if let Some(note) = self.pairing.displaced_note(source_ns) {
            return format!(" ({note})");
        }
        let t = self.to_target(source_ns);
        if t == source_ns {
            String::new()
        } else {
            format!(" (looked for in target namespace `{t}`)")
        }
    }

    /// Whether a config key (source namespace terms) is audited.
    #[must_use]
    pub fn config_in_scope(&self, source_ns: &str, group: &str, data_id: &str) -> bool {
        self.namespace_in_scope(source_ns)
            && !self.ignore_group.is_match(group)
            && !self.ignore_data_id.is_match(data_id)
    }

    /// Whether a service (source namespace terms) is audited.
    #[must_use]
    pub fn service_in_scope(&self, source_ns: &str, group: &str, name: &str) -> bool {
        self.namespace_in_scope(source_ns)
            && !self.ignore_group.is_match(group)
            && !self.ignore_service.is_match(name)
    }

    /// Whether diffs show secret values.
    #[must_use]
    pub fn show_secrets(&self) -> bool {
        self.show_secrets
    }

    fn meta_without_ignored(&self, m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        m.iter()
            .filter(|(k, _)| !self.ignore_meta.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Fill in missing MD5s from content, in parallel (API snapshots carry content, not digests).
pub fn hash_contents(configs: &mut [ConfigItem]) {
    configs.par_iter_mut().for_each(|c| {
        if c.md5.is_empty() {
            if let Some(content) = &c.content {
                c.md5 = md5_hex(content);
            }
        }
    });
}

/// Compare two snapshots and return findings (levels not yet applied), sorted.
#[must_use]
pub fn compare(
    source: &SideSnapshot,
    target: &SideSnapshot,
    scope: &Scope,
    now_ms: Option<i64>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let (Some(s), Some(t)) = (&source.db, &target.db) {
        out.extend(compare_namespaces(
            &s.namespaces,
            &t.namespaces,
            scope,
            Layer::L1,
        ));
        out.extend(compare_configs(
            &s.configs,
            &t.configs,
            scope,
            Layer::L1,
            now_ms,
        ));
    }
    if let (Some(s), Some(t)) = (&source.api, &target.api) {
        out.extend(compare_namespaces(
            &s.namespaces,
            &t.namespaces,
            scope,
            Layer::L3,
        ));
        // A field one side could not read is not compared (the report names it).
        let unread = |f: &str| {
            s.config_fields_unread.contains_key(f) || t.config_fields_unread.contains_key(f)
        };
        out.extend(compare_config_fields(
            &s.configs,
            &t.configs,
            scope,
            Layer::L3,
            now_ms,
            (!unread("desc"), !unread("tags")),
        ));
        out.extend(compare_services(&s.services, &t.services, scope));
    }
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out
}

fn compare_namespaces(
    source: &[Namespace],
    target: &[Namespace],
    scope: &Scope,
    layer: Layer,
) -> Vec<Finding> {
    let src: BTreeSet<String> = source
        .iter()
        .map(|n| canonical_namespace(&n.id))
        .filter(|n| scope.namespace_in_scope(n))
        .collect();
    let tgt: BTreeSet<String> = target
        .iter()
        .map(|n| scope.to_source(&n.id))
        .filter(|n| scope.namespace_in_scope(n))
        .collect();
    let mut out = Vec::new();
    for ns in src.difference(&tgt) {
        let mut f = Finding::new(Code::NamespaceMissing, layer, ns, "", "");
        let t = scope.to_target(ns);
        f.detail = if let Some(note) = scope.pairing.displaced_note(ns) {
            format!("namespace `{ns}` exists on the source only: {note}")
        } else if t == *ns {
            format!("namespace `{ns}` exists on the source only")
        } else {
            format!("namespace `{ns}` exists on the source but `{t}` (its mapped id by [namespace_map]) is not on the target")
        };
        out.push(f);
    }
    for ns in tgt.difference(&src) {
        let mut f = Finding::new(Code::NamespaceExtra, layer, ns, "", "");
        f.detail = format!(
            "namespace `{}` exists on the target only",
            scope.to_target(ns)
        );
        out.push(f);
    }
    out
}

/// Index configs by their key in source-namespace terms, keeping only those in scope.
fn index_configs<'a>(
    items: &'a [ConfigItem],
    scope: &Scope,
    is_target: bool,
) -> HashMap<ConfigKey, &'a ConfigItem> {
    items
        .par_iter()
        .filter_map(|c| {
            let ns = if is_target {
                scope.to_source(&c.key.namespace)
            } else {
                canonical_namespace(&c.key.namespace)
            };
            if !scope.config_in_scope(&ns, &c.key.group, &c.key.data_id) {
                return None;
            }
            let key = ConfigKey {
                namespace: ns,
                ..c.key.clone()
            };
            Some((key, c))
        })
        .collect()
}

fn config_finding(code: Code, layer: Layer, key: &ConfigKey) -> Finding {
    let mut f = Finding::new(code, layer, &key.namespace, &key.group, &key.data_id);
    if !key.variant.is_empty() {
        f.variant = Some(key.variant.clone());
    }
    f
}

fn age(now_ms: Option<i64>, item: &ConfigItem) -> Option<i64> {
    Some((now_ms? - item.modified_ms?).max(0) / 1000)
}

/// Compare config items of one layer.
#[must_use]
pub fn compare_configs(
    source: &[ConfigItem],
    target: &[ConfigItem],
    scope: &Scope,
    layer: Layer,
    now_ms: Option<i64>,
) -> Vec<Finding> {
    compare_config_fields(source, target, scope, layer, now_ms, (true, true))
}

/// [`compare_configs`], comparing desc and tags only where `(desc, tags)` says so.
fn compare_config_fields(
    source: &[ConfigItem],
    target: &[ConfigItem],
    scope: &Scope,
    layer: Layer,
    now_ms: Option<i64>,
    (with_desc, with_tags): (bool, bool),
) -> Vec<Finding> {
    let (src, tgt) = rayon::join(
        || index_configs(source, scope, false),
        || index_configs(target, scope, true),
    );
    let mut keys: Vec<&ConfigKey> = src
        .keys()
        .chain(tgt.keys().filter(|k| !src.contains_key(*k)))
        .collect();
    keys.par_sort_unstable();
    keys.par_iter()
        .filter_map(|key| match (src.get(*key), tgt.get(*key)) {
            (Some(s), None) => {
                let mut f = config_finding(Code::ConfigMissing, layer, key);
                f.source_digest = Some(s.md5.clone());
                f.age_secs = age(now_ms, s);
                f.detail = format!(
                    "config exists on the source only{}",
                    scope.looked_for(&key.namespace)
                );
                Some(f)
            }
            (None, Some(t)) => {
                let mut f = config_finding(Code::ConfigExtra, layer, key);
                f.target_digest = Some(t.md5.clone());
                f.detail = "config exists on the target only".to_owned();
                Some(f)
            }
            (Some(s), Some(t)) => {
                if s.md5 != t.md5 {
                    let mut f = config_finding(Code::ConfigContentDiffers, layer, key);
                    f.source_digest = Some(s.md5.clone());
                    f.target_digest = Some(t.md5.clone());
                    f.age_secs = age(now_ms, s);
                    f.detail = "content differs".to_owned();
                    if let (Some(a), Some(b)) = (&s.content, &t.content) {
                        f.diff = Some(text::unified(a, b, scope.show_secrets));
                    }
                    return Some(f);
                }
                let mut fields = Vec::new();
                if s.r#type != t.r#type {
                    fields.push(format!("type: `{}` → `{}`", s.r#type, t.r#type));
                }
                if s.app != t.app {
                    fields.push(format!("app: `{}` → `{}`", s.app, t.app));
                }
                if with_desc && s.desc != t.desc {
                    fields.push("desc".to_owned());
                }
                if with_tags && s.tags != t.tags {
                    fields.push(format!("tags: {}", tags::change(&s.tags, &t.tags)));
                }
                if fields.is_empty() {
                    return None;
                }
                let mut f = config_finding(Code::ConfigMetaDiffers, layer, key);
                f.source_digest = Some(s.md5.clone());
                f.target_digest = Some(t.md5.clone());
                f.detail = format!("same content, metadata differs: {}", fields.join("; "));
                f.fields = fields
                    .iter()
                    .map(|x| x.split(':').next().unwrap_or(x).to_owned())
                    .collect();
                Some(f)
            }
            (None, None) => None,
        })
        .collect()
}

/// A stable digest of a service's compared fields (sha256 over canonical JSON).
fn digest_of<T: serde::Serialize>(v: &T) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

fn compare_services(source: &[Service], target: &[Service], scope: &Scope) -> Vec<Finding> {
    let index =
        |items: &[Service], is_target: bool| -> BTreeMap<(String, String, String), Service> {
            items
                .iter()
                .filter_map(|s| {
                    let ns = if is_target {
                        scope.to_source(&s.key.namespace)
                    } else {
                        canonical_namespace(&s.key.namespace)
                    };
                    if !scope.service_in_scope(&ns, &s.key.group, &s.key.name) {
                        return None;
                    }
                    let mut s = s.clone();
                    s.metadata = scope.meta_without_ignored(&s.metadata);
                    for i in &mut s.instances {
                        i.metadata = scope.meta_without_ignored(&i.metadata);
                    }
                    Some(((ns, s.key.group.clone(), s.key.name.clone()), s))
                })
                .collect()
        };
    let src = index(source, false);
    let tgt = index(target, true);
    let keys: BTreeSet<&(String, String, String)> = src.keys().chain(tgt.keys()).collect();
    let keys: Vec<_> = keys.into_iter().collect();
    keys.par_iter()
        .flat_map_iter(|k| {
            let (ns, group, name) = k;
            let mut out = Vec::new();
            match (src.get(*k), tgt.get(*k)) {
                (Some(s), None) => {
                    let mut f = Finding::new(Code::ServiceMissing, Layer::L3, ns, group, name);
                    f.source_digest = Some(digest_of(s));
                    f.detail = format!(
                        "service with {} instance(s) exists on the source but not on the target{}",
                        s.instances.len(),
                        scope.looked_for(ns)
                    );
                    out.push(f);
                }
                (None, Some(t)) => {
                    let mut f = Finding::new(Code::ServiceExtra, Layer::L3, ns, group, name);
                    f.target_digest = Some(digest_of(t));
                    f.detail = format!(
                        "service with {} instance(s) exists only on the target",
                        t.instances.len()
                    );
                    out.push(f);
                }
                (Some(s), Some(t)) => {
                    let mut fields = Vec::new();
                    if (s.protect_threshold - t.protect_threshold).abs() > 1e-9 {
                        fields.push(format!(
                            "protect_threshold: {} → {}",
                            s.protect_threshold, t.protect_threshold
                        ));
                    }
                    if s.metadata != t.metadata {
                        fields.push(format!(
                            "metadata: {}",
                            meta_delta(&s.metadata, &t.metadata)
                        ));
                    }
                    if s.selector != t.selector {
                        fields.push(format!("selector: {} → {}", s.selector, t.selector));
                    }
                    if !fields.is_empty() {
                        let mut f =
                            Finding::new(Code::ServiceMetaDiffers, Layer::L3, ns, group, name);
                        f.source_digest =
                            Some(digest_of(&(&s.protect_threshold, &s.metadata, &s.selector)));
                        f.target_digest =
                            Some(digest_of(&(&t.protect_threshold, &t.metadata, &t.selector)));
                        f.fields = fields
                            .iter()
                            .map(|x| x.split(':').next().unwrap_or(x).to_owned())
                            .collect();
                        f.detail = fields.join("; ");
                        out.push(f);
                    }
                    out.extend(compare_instances(
                        ns,
                        group,
                        name,
                        &s.instances,
                        &t.instances,
                    ));
                }
                (None, None) => {}
            }
            out
        })
        .collect()
}

fn meta_delta(s: &BTreeMap<String, String>, t: &BTreeMap<String, String>) -> String {
    let mut parts = Vec::new();
    for (k, v) in s {
        match t.get(k) {
            None => parts.push(format!("-{k}")),
            // Metadata can hold credentials (Spring Boot Admin's `user.password`): never shown.
            Some(tv) if tv != v && text::is_secret_key(k) => {
                parts.push(format!("{k}: `****` → `****(2)`"))
            }
            Some(tv) if tv != v => parts.push(format!("{k}: `{v}` → `{tv}`")),
            _ => {}
        }
    }
    for k in t.keys() {
        if !s.contains_key(k) {
            parts.push(format!("+{k}"));
        }
    }
    parts.join(", ")
}

fn compare_instances(
    ns: &str,
    group: &str,
    name: &str,
    source: &[Instance],
    target: &[Instance],
) -> Vec<Finding> {
    let key = |i: &Instance| (i.cluster.clone(), i.ip.clone(), i.port);
    let src: BTreeMap<_, _> = source.iter().map(|i| (key(i), i)).collect();
    let tgt: BTreeMap<_, _> = target.iter().map(|i| (key(i), i)).collect();
    let mut out = Vec::new();
    let label = |i: &Instance| format!("{}:{}@{}", i.ip, i.port, i.cluster);
    for (k, s) in &src {
        match tgt.get(k) {
            None => {
                let mut f = Finding::new(Code::InstanceMissing, Layer::L3, ns, group, name);
                f.instance = Some(label(s));
                f.source_digest = Some(digest_of(s));
                f.detail = "instance registered on the source only".to_owned();
                out.push(f);
            }
            Some(t) => {
                let mut fields = Vec::new();
                if (s.weight - t.weight).abs() > 1e-9 {
                    fields.push(format!("weight: {} → {}", s.weight, t.weight));
                }
                if s.healthy != t.healthy {
                    fields.push(format!("healthy: {} → {}", s.healthy, t.healthy));
                }
                if s.enabled != t.enabled {
                    fields.push(format!("enabled: {} → {}", s.enabled, t.enabled));
                }
                if s.ephemeral != t.ephemeral {
                    fields.push(format!("ephemeral: {} → {}", s.ephemeral, t.ephemeral));
                }
                if s.metadata != t.metadata {
                    fields.push(format!(
                        "metadata: {}",
                        meta_delta(&s.metadata, &t.metadata)
                    ));
                }
                if !fields.is_empty() {
                    let mut f = Finding::new(Code::InstanceDiffers, Layer::L3, ns, group, name);
                    f.instance = Some(label(s));
                    f.source_digest = Some(digest_of(s));
                    f.target_digest = Some(digest_of(t));
                    f.fields = fields
                        .iter()
                        .map(|x| x.split(':').next().unwrap_or(x).to_owned())
                        .collect();
                    f.detail = fields.join("; ");
                    out.push(f);
                }
            }
        }
    }
    for (k, t) in &tgt {
        if !src.contains_key(k) {
            let mut f = Finding::new(Code::InstanceExtra, Layer::L3, ns, group, name);
            f.instance = Some(label(t));
            f.target_digest = Some(digest_of(t));
            f.detail = "instance registered on the target only".to_owned();
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConfigKey;

    fn item(ns: &str, id: &str, content: &str) -> ConfigItem {
        ConfigItem {
            key: ConfigKey {
                namespace: ns.into(),
                group: "G".into(),
                data_id: id.into(),
                variant: String::new(),
            },
            md5: md5_hex(content),
            content: Some(content.into()),
            r#type: String::new(),
            app: String::new(),
            desc: String::new(),
            tags: vec![],
            modified_ms: None,
        }
    }

    #[test]
    fn classifies_missing_extra_changed_and_maps_namespaces() {
        let mut s = Settings::default();
        s.namespace_map.insert("old".into(), "new".into());
        let scope = Scope::new(&s);
        let src = vec![
            item("", "a", "1"),
            item("old", "b", "x"),
            item("old", "c", "same"),
            item("public", "gone", "g"),
        ];
        let tgt = vec![
            item("public", "a", "2"),
            item("new", "b", "x"),
            item("new", "c", "same"),
            item("new", "extra", "e"),
        ];
        let f = compare_configs(&src, &tgt, &scope, Layer::L1, None);
        let codes: Vec<_> = f.iter().map(|f| (f.code, f.name.as_str())).collect();
        assert_eq!(codes.len(), 3, "{codes:?}");
        assert!(codes.contains(&(Code::ConfigContentDiffers, "a")));
        assert!(codes.contains(&(Code::ConfigMissing, "gone")));
        assert!(codes.contains(&(Code::ConfigExtra, "extra")));
    }

    #[test]
    fn ignored_metadata_keys_do_not_count() {
        let s = Settings::default();
        let scope = Scope::new(&s);
        let inst = |meta: &[(&str, &str)]| Instance {
            cluster: "DEFAULT".into(),
            ip: "10.0.0.1".into(),
            port: 80,
            weight: 1.0,
            healthy: true,
            enabled: true,
            ephemeral: true,
            metadata: meta
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let svc = |i: Instance| Service {
            key: crate::model::ServiceKey {
                namespace: "public".into(),
                group: "G".into(),
                name: "s".into(),
            },
            protect_threshold: 0.0,
            metadata: BTreeMap::new(),
            selector: String::new(),
            instances: vec![i],
        };
        let f = compare_services(
            &[svc(inst(&[]))],
            &[svc(inst(&[("syncSource", "x")]))],
            &scope,
        );
        assert!(f.is_empty(), "{f:?}");
        let f = compare_services(
            &[svc(inst(&[("zone", "a")]))],
            &[svc(inst(&[("zone", "b")]))],
            &scope,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, Code::InstanceDiffers);
    }
}
