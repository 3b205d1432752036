//! Accepted drift applied to a report: findings an operator's baseline file (`--baseline`, read
//! by `crate::baseline`) accepts are marked, and entries that matched nothing become
//! `baseline-stale` findings.

use super::{Applied, Report};
use crate::baseline::{stale_finding, today, Baseline};
use crate::finding::{Code, Layer};
use crate::settings::Settings;

/// Mark the report's findings the baseline accepts, add a `baseline-stale` finding for each live
/// entry that matched nothing where this run looked, and recount.
///
/// An entry is only called stale where the run could have seen its finding: its layer was
/// compared, the run was not incremental, and its namespace was audited (`namespaces`, empty =
/// all).
pub fn apply(report: &mut Report, b: &Baseline, settings: &Settings, today: i64) {
    let namespaces = &settings.namespaces;
    let mut applied = Applied {
        path: b.path.clone(),
        entries: b.entries.len(),
        expired: 0,
        accepted: 0,
        stale: 0,
    };
    let compared = |l: Layer| {
        report
            .compared
            .iter()
            .any(|c| c.split_whitespace().next() == Some(l.as_str()))
    };
    let incremental = report
        .run_mode
        .as_deref()
        .is_some_and(|m| m.starts_with("incremental"));
    let mut stale = Vec::new();
    for e in &b.entries {
        if e.expired(today) {
            applied.expired += 1;
            continue;
        }
        let mut hit = false;
        for f in &mut report.findings {
            if f.code != Code::SourceError && e.matches(f) {
                f.accepted = true;
                hit = true;
            }
        }
        let looked = !incremental
            && e.layer.map_or(!report.compared.is_empty(), compared)
            && (namespaces.is_empty() || namespaces.contains(&e.namespace));
        if !hit && looked {
            let mut f = stale_finding(e);
            f.level = settings.level_of(f.code);
            f.in_gate = settings
                .gate
                .is_none_or(|g| g.includes(f.code, f.layer, f.side));
            stale.push(f);
        }
    }
    applied.accepted = report.findings.iter().filter(|f| f.accepted).count();
    applied.stale = stale.len();
    report.findings.extend(stale);
    report.baseline = Some(applied);
    report.recount();
}

/// A copy of `report` with the settings' baseline applied (as of today), if there is one.
#[must_use]
pub fn applied(report: &Report, settings: &Settings) -> Report {
    let mut r = report.clone();
    if let Some(b) = &settings.baseline {
        apply(&mut r, b, settings, today());
    }
    r
}
