//! Traces sync tools leave on the instances they copy, and `instance-orphaned`: a copy on the
//! target whose source instance is gone (the tool, or its leftover heart-beat, keeps it alive).
//!
//! Which marker each tool writes, from its source:
//! - nacos-sync (`nacos-group/nacos-sync`): `NacosSyncToNacosServiceImpl.buildSyncInstance` adds
//!   `destClusterId`, `syncSource` (the source cluster's type), `sourceClusterId` and
//!   `sync.instance.tag` (`<sourceClusterId>@@<task version>`); the key names are in
//!   `constant/SkyWalkerConstants.java`. Its Eureka, Consul and ZooKeeper → Nacos syncs add
//!   `syncSource` too (`EurekaSyncToNacosServiceImpl`, `ConsulSyncToNacosServiceImpl`,
//!   `ZookeeperSyncToNacosServiceImpl`).
//! - Polaris sync (`polarismesh/polaris-sync`): `registry-nacos/…/NacosRegistryCenter.java` puts
//!   `__sync__` = the source registry's name (`DefaultValues.META_SYNC`).
//! - MSE Sync (Alibaba Cloud) is a closed-source build of nacos-sync: its keys cannot be read
//!   from its source; the nacos-sync ones are assumed.
//!
//! All of these keys are in the built-in ignored metadata keys, so a synced copy compares equal to
//! its source instance; they are looked for here on the target's own, unfiltered metadata.

use super::Scope;
use crate::finding::{Code, Finding};
use crate::model::{canonical_namespace, Service};
use std::collections::BTreeMap;

/// `(tool, metadata key)` of every source marker, strongest first.
pub const SOURCE_MARKERS: [(&str, &str); 4] = [
    ("nacos-sync", "sourceClusterId"),
    ("nacos-sync", "sync.instance.tag"),
    ("nacos-sync", "syncSource"),
    ("Polaris sync", "__sync__"),
];

/// The first sync-tool source marker in `meta`: tool, key, value.
#[must_use]
pub fn marker_of(meta: &BTreeMap<String, String>) -> Option<(&'static str, &'static str, &str)> {
    SOURCE_MARKERS
        .iter()
        .find_map(|(tool, key)| meta.get(*key).map(|v| (*tool, *key, v.as_str())))
}

/// Turn each `instance-extra` whose target instance carries a sync tool's source marker into
/// `instance-orphaned`: the tool copied it from an instance the source no longer has.
pub fn mark_orphans(findings: &mut [Finding], target: &[Service], scope: &Scope) {
    if !findings.iter().any(|f| f.code == Code::InstanceExtra) {
        return;
    }
    let by_key: BTreeMap<(String, &str, &str), &Service> = target
        .iter()
        .map(|s| {
            (
                (
                    scope.to_source(&canonical_namespace(&s.key.namespace)),
                    s.key.group.as_str(),
                    s.key.name.as_str(),
                ),
                s,
            )
        })
        .collect();
    for f in findings
        .iter_mut()
        .filter(|f| f.code == Code::InstanceExtra)
    {
        let Some(svc) = by_key.get(&(f.namespace.clone(), f.group.as_str(), f.name.as_str()))
        else {
            continue;
        };
        let Some(label) = f.instance.as_deref() else {
            continue;
        };
        let inst = svc
            .instances
            .iter()
            .find(|i| format!("{}:{}@{}", i.ip, i.port, i.cluster) == label);
        if let Some((tool, key, value)) = inst.and_then(|i| marker_of(&i.metadata)) {
            f.code = Code::InstanceOrphaned;
            f.detail = format!(
                "instance registered on the target only, carrying {tool}'s source marker `{key}={value}`: \
                 a synced copy whose source instance is gone (the sync tool keeps it registered); \
                 consumers of the target may still be sent to it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Layer;
    use crate::model::{Instance, ServiceKey};

    fn inst(ip: &str, meta: &[(&str, &str)]) -> Instance {
        Instance {
            cluster: "DEFAULT".into(),
            ip: ip.into(),
            port: 80,
            weight: 1.0,
            healthy: true,
            enabled: true,
            ephemeral: true,
            metadata: meta
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn only_marked_extra_instances_become_orphans() {
        let svc = Service {
            key: ServiceKey {
                namespace: "".into(),
                group: "G".into(),
                name: "s".into(),
            },
            protect_threshold: 0.0,
            metadata: BTreeMap::new(),
            selector: String::new(),
            instances: vec![
                inst("10.0.0.1", &[("sourceClusterId", "c1")]),
                inst("10.0.0.2", &[("__sync__", "polaris-src")]),
                inst("10.0.0.3", &[("app", "x")]),
            ],
        };
        let mk = |ip: &str, code| {
            let mut f = Finding::new(code, Layer::L3, "public", "G", "s");
            f.instance = Some(format!("{ip}:80@DEFAULT"));
            f
        };
        let mut fs = vec![
            mk("10.0.0.1", Code::InstanceExtra),
            mk("10.0.0.2", Code::InstanceExtra),
            mk("10.0.0.3", Code::InstanceExtra),
            mk("10.0.0.1", Code::InstanceMissing),
        ];
        mark_orphans(
            &mut fs,
            &[svc],
            &Scope::new(&crate::settings::Settings::default()),
        );
        let codes: Vec<Code> = fs.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            [
                Code::InstanceOrphaned,
                Code::InstanceOrphaned,
                Code::InstanceExtra,
                Code::InstanceMissing
            ]
        );
        assert!(fs[0].detail.contains("nacos-sync"));
        assert!(fs[1].detail.contains("Polaris sync"));
    }

    #[test]
    fn every_marker_is_ignored_by_default() {
        for (_, key) in SOURCE_MARKERS {
            assert!(
                crate::settings::DEFAULT_IGNORED_METADATA_KEYS.contains(&key),
                "{key}"
            );
        }
    }
}
