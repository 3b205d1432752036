//! Services and their instances compared (L3): a service missing or extra, its metadata and
//! protection threshold, and each instance by ip:port and cluster.

use super::{text, Scope};
use crate::finding::{Code, Finding, Layer};
use crate::model::{Instance, Service, ServiceKey, Side};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// A stable digest of a service's compared fields (sha256 over canonical JSON).
fn digest_of<T: serde::Serialize>(v: &T) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

pub(super) fn compare_services(
    source: &[Service],
    target: &[Service],
    scope: &Scope,
) -> Vec<Finding> {
    let index = |items: &[Service], side: Side| -> BTreeMap<ServiceKey, Service> {
        items
            .iter()
            .filter_map(|s| {
                let ns = scope.source_ns(side, &s.key.namespace);
                if !scope.service_in_scope(&ns, &s.key.group, &s.key.name) {
                    return None;
                }
                let mut s = s.clone();
                s.metadata = scope.meta_without_ignored(&s.metadata);
                for i in &mut s.instances {
                    i.metadata = scope.meta_without_ignored(&i.metadata);
                }
                let key = ServiceKey {
                    namespace: ns,
                    group: s.key.group.clone(),
                    name: s.key.name.clone(),
                };
                Some((key, s))
            })
            .collect()
    };
    let src = index(source, Side::Source);
    let tgt = index(target, Side::Target);
    let keys: BTreeSet<&ServiceKey> = src.keys().chain(tgt.keys()).collect();
    let keys: Vec<_> = keys.into_iter().collect();
    keys.par_iter()
        .flat_map_iter(|k| {
            let ServiceKey {
                namespace: ns,
                group,
                name,
            } = *k;
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
