//! The settling re-check's decisions, pure: which findings depend on what was not read, and
//! which first-pass differences the re-check confirmed.

use crate::diff::Scope;
use crate::finding::{Code, Finding, Layer};
use crate::model::{Side, SideSnapshot};
use std::collections::HashSet;

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
