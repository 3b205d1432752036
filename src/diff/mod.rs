//! The diff engine: compares a source and a target snapshot layer by layer and returns findings.
//!
//! Keys are mapped into the target's namespace space first (`''` ↔ `public`, then the configured
//! map), so that a namespace renamed during the migration is not reported as missing plus extra.
//! Hashing and comparison run on rayon; the output is sorted so reports are deterministic.

pub mod auth;
pub mod capacity;
pub mod namespaces;
mod scope;
mod services;
pub mod sync;
mod tags;
pub mod text;

use crate::finding::{Code, Finding, Layer};
use crate::model::{
    canonical_namespace, md5_hex, ConfigItem, ConfigKey, Namespace, Side, SideSnapshot,
};
use rayon::prelude::*;
pub use scope::Scope;
use services::compare_services;
use std::collections::{BTreeSet, HashMap};

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
        out.extend(auth::compare(
            s.auth.as_ref(),
            t.auth.as_ref(),
            scope,
            Layer::L1,
        ));
        out.extend(capacity::compare(
            s.quotas.as_ref(),
            t.quotas.as_ref(),
            scope,
        ));
    }
    // Each DB on its own: a hazard of that DB, whatever the other side holds.
    for (side, db) in [(Side::Source, &source.db), (Side::Target, &target.db)] {
        if let Some(db) = db {
            out.extend(namespace_conflicts(side, &db.namespace_conflicts, scope));
        }
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
        out.extend(auth::compare(
            s.auth.as_ref(),
            t.auth.as_ref(),
            scope,
            Layer::L3,
        ));
        let mut services = compare_services(&s.services, &t.services, scope);
        sync::mark_orphans(&mut services, &t.services, scope);
        out.extend(services);
    }
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out
}

/// One finding per default-namespace key of a DB whose `public` and `''` rows conflict.
fn namespace_conflicts(side: Side, keys: &[ConfigKey], scope: &Scope) -> Vec<Finding> {
    keys.iter()
        .filter_map(|k| {
            let ns = match side {
                Side::Source => canonical_namespace(&k.namespace),
                Side::Target => scope.to_source(&k.namespace),
            };
            if !scope.config_in_scope(&ns, &k.group, &k.data_id) {
                return None;
            }
            let mut f = Finding::new(
                Code::NamespaceMigrateConflict,
                Layer::L1,
                &ns,
                &k.group,
                &k.data_id,
            );
            f.variant = (!k.variant.is_empty()).then(|| k.variant.clone());
            f.side = Some(side);
            f.detail = format!(
                "{side} DB: this key's `public` row and its `''` row differ, and neither is 3.x's own copy: \
                 a Nacos 3.x node in its namespace-compatible mode (the default) will not start on this DB \
                 (`ConfigMigrateService.namespaceMigratePreCheck`) until they agree or one is deleted"
            );
            Some(f)
        })
        .collect()
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
        f.detail = if let Some(note) = scope.pairing().displaced_note(ns) {
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
    side: Side,
) -> HashMap<ConfigKey, &'a ConfigItem> {
    items
        .par_iter()
        .filter_map(|c| {
            let ns = scope.source_ns(side, &c.key.namespace);
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
        || index_configs(source, scope, Side::Source),
        || index_configs(target, scope, Side::Target),
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
                        f.diff = Some(text::unified(a, b, scope.show_secrets()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConfigKey, Instance, Service};
    use crate::settings::Settings;
    use std::collections::BTreeMap;

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
