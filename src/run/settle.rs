//! The settling re-check's decisions, pure: which findings depend on what was not read, and
//! which first-pass differences the re-check confirmed.

pub(crate) use crate::capture::ApiRecheck;
use crate::diff::Scope;
use crate::finding::{Code, Finding, Layer};
use crate::model::{ConfigKey, ServiceKey, Side, SideSnapshot};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// At most this many differing configs of a namespace are read again one by one; past it, or
/// past a tenth of the namespace's configs, the re-check reads the namespace's configs whole
/// (one bulk read then costs less than a request per key).
pub(crate) const PER_KEY_MAX: usize = 64;

/// What the L3 re-check reads, from the first pass's findings (source terms). `configs_in`
/// gives a namespace's config count in the first pass (the larger side); `per_key` whether both
/// sides have a DB-backed per-config view (not r-nacos). `None`: read everything again, as a
/// finding is about something other than configs and services (a namespace, accounts).
pub(crate) fn api_recheck(
    first: &[Finding],
    configs_in: impl Fn(&str) -> usize,
    per_key: bool,
) -> Option<ApiRecheck> {
    let mut plan = ApiRecheck::default();
    let mut configs: BTreeMap<&str, BTreeSet<ConfigKey>> = BTreeMap::new();
    for f in first
        .iter()
        .filter(|f| f.layer == Layer::L3 && f.code != Code::SourceError)
    {
        if f.name.is_empty() {
            return None;
        }
        match f.code {
            Code::ConfigMissing
            | Code::ConfigExtra
            | Code::ConfigContentDiffers
            | Code::ConfigMetaDiffers => {
                configs
                    .entry(f.namespace.as_str())
                    .or_default()
                    .insert(ConfigKey {
                        namespace: f.namespace.clone(),
                        group: f.group.clone(),
                        data_id: f.name.clone(),
                        variant: String::new(),
                    });
            }
            Code::ServiceMissing
            | Code::ServiceExtra
            | Code::ServiceMetaDiffers
            | Code::InstanceMissing
            | Code::InstanceExtra
            | Code::InstanceDiffers
            | Code::InstanceOrphaned => {
                plan.services.insert(ServiceKey {
                    namespace: f.namespace.clone(),
                    group: f.group.clone(),
                    name: f.name.clone(),
                });
            }
            _ => return None,
        }
    }
    for (ns, keys) in configs {
        if per_key && keys.len() <= PER_KEY_MAX && keys.len() * 10 <= configs_in(ns) {
            plan.config_keys.extend(keys);
        } else {
            plan.config_namespaces.insert(ns.to_owned());
        }
    }
    Some(plan)
}

/// What a pair of snapshots failed to read: findings that depend on it would be false (a
/// namespace "only on the source" because the target's DB could not be read).
#[derive(Debug, Default)]
pub(crate) struct Unread {
    /// A DB of either side failed: every L1 comparison depends on both.
    pub(crate) l1: bool,
    /// The API of either side could not be read at all.
    pub(crate) l3: bool,
    /// Namespaces (source terms) whose API reads failed on either side.
    l3_namespaces: HashSet<String>,
}

impl Unread {
    /// What `source` and `target` failed to read.
    pub(crate) fn of(source: &SideSnapshot, target: &SideSnapshot, scope: &Scope) -> Unread {
        let mut u = Unread::default();
        for (snap, side) in [(source, Side::Source), (target, Side::Target)] {
            if snap.db.as_ref().is_some_and(|d| !d.errors.is_empty()) {
                u.l1 = true;
            }
            let Some(api) = &snap.api else { continue };
            for e in &api.errors {
                match &e.namespace {
                    Some(ns) => {
                        u.l3_namespaces.insert(scope.source_ns(side, ns));
                    }
                    // The node the data was read from failed (or none answered): nothing of
                    // this side's API is known. Another node's failure leaves the data whole.
                    None if e.origin == api.origin || api.origin.is_empty() => u.l3 = true,
                    None => {}
                }
            }
        }
        u
    }

    /// Whether a finding depends on something that was not read (source errors never do).
    pub(crate) fn covers(&self, f: &Finding) -> bool {
        f.code != Code::SourceError
            && match f.layer {
                Layer::L1 => self.l1,
                Layer::L3 => self.l3 || self.l3_namespaces.contains(&f.namespace),
                Layer::L2 | Layer::L4 => false,
            }
    }
}

/// Drop the L1/L3 findings that depend on a side that could not be read; its `source-error`
/// findings say what was not read.
pub(crate) fn drop_unread(
    findings: &mut Vec<Finding>,
    source: &SideSnapshot,
    target: &SideSnapshot,
    scope: &Scope,
) {
    let unread = Unread::of(source, target, scope);
    findings.retain(|f| !unread.covers(f));
}

/// The findings confirmed by the settling re-check, and how many settled.
///
/// A first-pass difference is confirmed if the re-check sees it again; one whose data the
/// re-check could not read is kept as it was (not settled: nobody looked). Every read failure of
/// either pass is kept, so a re-check can never make an incomplete run look complete.
pub(crate) fn confirm(
    first: &[Finding],
    second: Vec<Finding>,
    unread: &Unread,
) -> (Vec<Finding>, usize) {
    let drift = |f: &&Finding| f.code != Code::SourceError;
    let seen: HashSet<String> = first.iter().filter(drift).map(Finding::identity).collect();
    let mut out: Vec<Finding> = first
        .iter()
        .filter(|f| f.code == Code::SourceError || unread.covers(f))
        .cloned()
        .collect();
    let errors: HashSet<(String, String)> = out
        .iter()
        .filter(|f| f.code == Code::SourceError)
        .map(|f| (f.identity(), f.detail.clone()))
        .collect();
    for f in second {
        let keep = if f.code == Code::SourceError {
            !errors.contains(&(f.identity(), f.detail.clone()))
        } else {
            !unread.covers(&f) && seen.contains(&f.identity())
        };
        if keep {
            out.push(f);
        }
    }
    let settled = first
        .iter()
        .filter(drift)
        .count()
        .saturating_sub(out.iter().filter(drift).count());
    (out, settled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiSnapshot, CaptureError, DbSnapshot};
    use crate::settings::Settings;

    fn scope() -> Scope {
        Scope::new(&Settings::default())
    }

    fn err(origin: &str, ns: Option<&str>) -> CaptureError {
        CaptureError {
            origin: origin.into(),
            namespace: ns.map(str::to_owned),
            message: "boom".into(),
        }
    }

    fn finding(code: Code, layer: Layer, ns: &str, name: &str) -> Finding {
        Finding::new(code, layer, ns, "G", name)
    }

    #[test]
    fn a_failed_database_yields_no_l1_findings_but_keeps_its_error() {
        let source = SideSnapshot {
            db: Some(DbSnapshot::default()),
            ..SideSnapshot::default()
        };
        let target = SideSnapshot {
            db: Some(DbSnapshot {
                errors: vec![err("mysql://u@h/nacos_x", None)],
                ..DbSnapshot::default()
            }),
            ..SideSnapshot::default()
        };
        let mut fs = vec![
            finding(Code::NamespaceMissing, Layer::L1, "prod", ""),
            finding(Code::ConfigMissing, Layer::L1, "prod", "a"),
            finding(Code::SourceError, Layer::L1, "", ""),
            finding(Code::ConfigMissing, Layer::L3, "prod", "a"),
        ];
        drop_unread(&mut fs, &source, &target, &scope());
        let codes: Vec<_> = fs.iter().map(|f| (f.code, f.layer)).collect();
        assert_eq!(
            codes,
            vec![
                (Code::SourceError, Layer::L1),
                (Code::ConfigMissing, Layer::L3)
            ]
        );
    }

    #[test]
    fn an_api_failure_drops_l3_findings_of_what_it_could_not_read() {
        let api = |origin: &str, errors| ApiSnapshot {
            origin: origin.into(),
            errors,
            ..ApiSnapshot::default()
        };
        // The target failed on one namespace; another node's failure does not count.
        let source = SideSnapshot {
            api: Some(api("http://s1", vec![err("http://s2", None)])),
            ..SideSnapshot::default()
        };
        let target = SideSnapshot {
            api: Some(api("http://t1", vec![err("http://t1", Some("dev"))])),
            ..SideSnapshot::default()
        };
        let u = Unread::of(&source, &target, &scope());
        assert!(u.covers(&finding(Code::ConfigMissing, Layer::L3, "dev", "a")));
        assert!(!u.covers(&finding(Code::ConfigMissing, Layer::L3, "prod", "a")));
        assert!(!u.covers(&finding(Code::SourceError, Layer::L3, "dev", "")));
        // The node the data came from failed: nothing of L3 stands.
        let target = SideSnapshot {
            api: Some(api("http://t1", vec![err("http://t1", None)])),
            ..SideSnapshot::default()
        };
        let u = Unread::of(&source, &target, &scope());
        assert!(u.covers(&finding(Code::NamespaceMissing, Layer::L3, "prod", "")));
        assert!(!u.covers(&finding(Code::CacheStale, Layer::L2, "prod", "a")));
    }

    #[test]
    fn the_api_recheck_reads_only_what_differed() {
        let c = |ns: &str, name: &str| finding(Code::ConfigContentDiffers, Layer::L3, ns, name);
        let sizes = |ns: &str| if ns == "big" { 100_000 } else { 20 };
        // A few keys of a big namespace: one by one; a service: by itself; L1 is not L3's.
        let first = vec![
            c("big", "a"),
            c("big", "b"),
            finding(Code::InstanceMissing, Layer::L3, "big", "svc"),
            finding(Code::ConfigMissing, Layer::L1, "big", "z"),
            finding(Code::SourceError, Layer::L3, "", ""),
        ];
        let plan = api_recheck(&first, sizes, true).unwrap();
        assert!(plan.config_namespaces.is_empty());
        let keys: Vec<_> = plan
            .config_keys
            .iter()
            .map(|k| k.data_id.as_str())
            .collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(plan.services.len(), 1);
        // Without a per-config view (r-nacos), or more than a tenth of a small namespace, or
        // more than PER_KEY_MAX keys: the namespace's configs whole.
        let plan = api_recheck(&first, sizes, false).unwrap();
        assert_eq!(
            (plan.config_namespaces.len(), plan.config_keys.len()),
            (1, 0)
        );
        let small = vec![c("small", "a"), c("small", "b"), c("small", "c")];
        let plan = api_recheck(&small, sizes, true).unwrap();
        assert_eq!(plan.config_namespaces.iter().collect::<Vec<_>>(), ["small"]);
        let many: Vec<_> = (0..=PER_KEY_MAX)
            .map(|i| c("big", &i.to_string()))
            .collect();
        let plan = api_recheck(&many, sizes, true).unwrap();
        assert_eq!(
            (plan.config_namespaces.len(), plan.config_keys.len()),
            (1, 0)
        );
        // A namespace-level or accounts finding: everything again.
        let ns = finding(Code::NamespaceMissing, Layer::L3, "big", "");
        assert_eq!(api_recheck(&[c("big", "a"), ns], sizes, true), None);
        let user = finding(Code::UserMissing, Layer::L3, "", "alice");
        assert_eq!(api_recheck(&[user], sizes, true), None);
        // Mapped to the target's namespace names.
        let plan = api_recheck(&first, sizes, true)
            .unwrap()
            .mapped(|n| format!("t-{n}"));
        assert!(plan.config_keys.iter().all(|k| k.namespace == "t-big"));
        assert!(plan.services.iter().all(|k| k.namespace == "t-big"));
    }

    #[test]
    fn the_recheck_confirms_seen_drift_and_never_loses_an_error() {
        let a = finding(Code::ConfigMissing, Layer::L1, "p", "a");
        let b = finding(Code::ConfigMissing, Layer::L1, "p", "b");
        let c = finding(Code::ConfigMissing, Layer::L3, "p", "c");
        let mut e1 = finding(Code::SourceError, Layer::L3, "", "");
        e1.detail = "target: node down".into();
        let first = vec![a.clone(), b.clone(), c.clone(), e1.clone()];
        // Second pass: `a` again, `b` gone (settled), a new difference `n` (not confirmed),
        // `c` gone, the same error again plus a new one.
        let n = finding(Code::ConfigMissing, Layer::L1, "p", "n");
        let mut e2 = finding(Code::SourceError, Layer::L1, "", "");
        e2.detail = "target: db gone".into();
        let second = vec![a.clone(), n, e1.clone(), e2.clone()];
        let (out, settled) = confirm(&first, second, &Unread::default());
        assert_eq!(out.iter().filter(|f| **f == e1).count(), 1);
        assert!(out.contains(&a) && out.contains(&e2));
        assert!(!out.contains(&b));
        assert_eq!(settled, 2, "b and c were not seen again");
        // The re-check could not read L1: its first-pass findings stand, none settled.
        let unread = Unread {
            l1: true,
            ..Unread::default()
        };
        let (out, settled) = confirm(&first, vec![e2.clone()], &unread);
        assert!(out.contains(&a) && out.contains(&b) && out.contains(&e1) && out.contains(&e2));
        assert_eq!(settled, 1, "only c (L3, re-read and gone) settled");
    }
}
