//! What a run covered, checked before its verdict: a run that compared nothing, or that was asked
//! about namespaces neither side has, must not pass a gate.
//!
//! Both become `source-error` findings (the audit is incomplete, exit 3): they are only known
//! once the sides were read, so they are not usage errors, and they are not drift either. A live
//! audit whose settings leave no layer that could run is refused before anything is read
//! ([`crate::settings::Settings::check_comparable`], exit 2).

use super::Report;
use crate::diff::namespaces::{check_named, Named};
use crate::diff::Scope;
use crate::finding::{Code, Finding, Layer};
use crate::model::{Side, SideSnapshot};
use crate::settings::Settings;

/// How many namespaces, configs and services in scope were compared across the layers both
/// sides have (L1: DB rows, L3: API items). L2 probe keys are counted by the caller.
#[must_use]
pub fn items_compared(source: &SideSnapshot, target: &SideSnapshot, scope: &Scope) -> usize {
    let key = |ns: &str, side: Side| scope.source_ns(side, ns);
    let mut n = 0;
    if let (Some(s), Some(t)) = (&source.db, &target.db) {
        for (db, side) in [(s, Side::Source), (t, Side::Target)] {
            n += db
                .namespaces
                .iter()
                .filter(|x| scope.namespace_in_scope(&key(&x.id, side)))
                .count();
            // A compact scan keeps only differing rows; it counted the rows it digested.
            n += db.rows_scanned.unwrap_or_else(|| {
                db.configs
                    .iter()
                    .filter(|c| {
                        let ns = key(&c.key.namespace, side);
                        scope.config_in_scope(&ns, &c.key.group, &c.key.data_id)
                    })
                    .count()
            });
        }
    }
    if let (Some(s), Some(t)) = (&source.api, &target.api) {
        for (api, side) in [(s, Side::Source), (t, Side::Target)] {
            n += api
                .namespaces
                .iter()
                .filter(|x| scope.namespace_in_scope(&key(&x.id, side)))
                .count();
            n += api
                .configs
                .iter()
                .filter(|c| {
                    let ns = key(&c.key.namespace, side);
                    scope.config_in_scope(&ns, &c.key.group, &c.key.data_id)
                })
                .count();
            n += api
                .services
                .iter()
                .filter(|x| {
                    let ns = key(&x.key.namespace, side);
                    scope.service_in_scope(&ns, &x.key.group, &x.key.name)
                })
                .count();
        }
    }
    n
}

/// The detail of the finding a run that compared nothing gets, or `None` when it compared
/// something. `compared` and `not_compared` are the report's lists, `items` what
/// [`items_compared`] counted plus the L2 probe's keys.
#[must_use]
pub fn nothing_compared(
    compared: &[String],
    not_compared: &[String],
    items: usize,
) -> Option<String> {
    if compared.is_empty() {
        let why = if not_compared.is_empty() {
            String::new()
        } else {
            format!(" ({})", not_compared.join("; "))
        };
        return Some(format!(
            "nothing was compared: no layer could run{why}; a run that compares nothing cannot pass"
        ));
    }
    (items == 0).then(|| {
        format!(
            "nothing was compared: {} ran, but neither side had a namespace, config, service or probed key in scope (empty snapshots, or everything left out by --namespace and the ignore rules); a run that compares nothing cannot pass",
            compared.join(", ")
        )
    })
}

/// `config desc/tags on <node>: <why>` for the config fields an API read could not give, one
/// line per reason.
fn unread_fields(api: &crate::model::ApiSnapshot) -> impl Iterator<Item = String> + '_ {
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for (field, why) in &api.config_fields_unread {
        match by_reason.iter_mut().find(|(w, _)| w == why) {
            Some((_, fields)) => fields.push(field),
            None => by_reason.push((why, vec![field])),
        }
    }
    by_reason
        .into_iter()
        .map(move |(why, fields)| format!("config {} on {}: {why}", fields.join("/"), api.origin))
}

/// Add to a finished report what only the whole run can tell: target namespaces the map leaves
/// unpaired (under "not compared"), `source-error` findings for named namespaces that do not
/// exist and for a run that compared nothing; then recount and recompute the exit code.
///
/// `source` and `target` are the first pass's snapshots (before any incremental narrowing of
/// the comparison, which keeps namespaces and services whole).
pub fn apply(
    report: &mut Report,
    settings: &Settings,
    scope: &Scope,
    source: &SideSnapshot,
    target: &SideSnapshot,
) {
    let accounts = accounts_not_compared(source, target);
    report.not_compared.extend(accounts);
    for (orphan, to) in scope.pairing().orphans() {
        if scope.namespace_in_scope(&orphan) {
            report.not_compared.push(format!(
                "target namespace `{orphan}` (if any): compared with nothing, since [namespace_map] pairs source `{orphan}` with target `{to}` and no source namespace with `{orphan}`"
            ));
        }
    }
    if let (Some(s), Some(t)) = (&source.api, &target.api) {
        report
            .not_compared
            .extend(unread_fields(s).chain(unread_fields(t)));
    }
    let layer = if source.api.is_some() && target.api.is_some() {
        Layer::L3
    } else {
        Layer::L1
    };
    let mut extra = check_named(
        &Named {
            namespaces: &settings.namespaces,
            namespaces_at: &settings.namespaces_at,
            pairing: scope.pairing(),
            map_at: &settings.namespace_map_at,
        },
        source,
        target,
        &|ns| scope.namespace_in_scope(ns),
        layer,
    );
    let probed: usize = report.probe.values().map(|p| p.keys * p.nodes).sum();
    let items = items_compared(source, target, scope) + probed;
    // A named namespace that is not there already says why nothing was compared.
    let explained = !extra.is_empty() && !report.compared.is_empty();
    if let Some(detail) =
        nothing_compared(&report.compared, &report.not_compared, items).filter(|_| !explained)
    {
        let mut f = Finding::new(Code::SourceError, Layer::L1, "", "", "");
        f.detail = detail;
        extra.push(f);
    }
    if extra.is_empty() {
        return;
    }
    for f in &mut extra {
        f.level = settings.level_of(f.code);
        f.in_gate = settings
            .gate
            .is_none_or(|g| g.includes(f.code, f.layer, f.side));
    }
    let mut findings = std::mem::take(&mut report.findings);
    findings.extend(extra);
    let fresh = Report::new(
        &report.mode,
        report.run_id.clone(),
        report.gate.clone(),
        findings,
    );
    report.findings = fresh.findings;
    report.summary = super::Summary {
        settled: report.summary.settled,
        ..fresh.summary
    };
    report.complete = report.complete && fresh.complete;
    report.exit_code = report.status().code();
}

/// What of the accounts and quotas L1 could not compare, for the report's "not compared": a side
/// whose database (or snapshot file) holds none. Nothing when L1 itself did not run or failed.
#[must_use]
pub(super) fn accounts_not_compared(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::namespaces::tests::api;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn a_run_that_compared_nothing_is_named() {
        let why = nothing_compared(
            &[],
            &s(&["L1 (DB ↔ DB): the source has no database configured"]),
            0,
        )
        .unwrap();
        assert!(
            why.contains("no layer could run (L1 (DB ↔ DB): the source"),
            "{why}"
        );
        // Layers ran but held nothing in scope.
        let why = nothing_compared(&s(&["L3 (cluster ↔ cluster API)"]), &[], 0).unwrap();
        assert!(why.contains("L3 (cluster ↔ cluster API) ran, but"), "{why}");
        // No layer at all, even with items counted somewhere: still nothing compared.
        assert!(nothing_compared(&[], &[], 5).is_some());
        assert!(nothing_compared(&s(&["L1 (DB ↔ DB)"]), &[], 1).is_none());
    }

    #[test]
    fn items_are_counted_in_scope_only() {
        let src = api(&["public", "A"], &[("A", "x")]);
        let tgt = api(&["public", "A"], &[("A", "x")]);
        let all = Scope::new(&Settings::default());
        assert_eq!(items_compared(&src, &tgt, &all), 6);
        let mut only = Settings::default();
        only.ignore.namespaces = s(&["*"]);
        assert_eq!(items_compared(&src, &tgt, &Scope::new(&only)), 0);
        // Empty parts compare nothing; a side without the layer compares nothing at it.
        assert_eq!(items_compared(&api(&[], &[]), &api(&[], &[]), &all), 0);
        assert_eq!(items_compared(&src, &SideSnapshot::default(), &all), 0);
    }

    #[test]
    fn apply_turns_an_empty_run_into_exit_3_and_keeps_settled() {
        let settings = Settings::default();
        let scope = Scope::new(&settings);
        let empty = SideSnapshot::default();
        let mut r = Report::new("diff", "t".into(), None, Vec::new());
        r.summary.settled = 2;
        assert_eq!(r.exit_code, 0);
        apply(&mut r, &settings, &scope, &empty, &empty);
        assert_eq!(r.exit_code, 3);
        assert!(!r.complete);
        assert_eq!(r.summary.settled, 2);
        assert_eq!(r.findings.len(), 1);
        assert!(r.findings[0].detail.starts_with("nothing was compared"));
    }

    /// A named namespace that is not there makes a run with drift incomplete: errors win over
    /// drift, and the typo explains the run, so no "nothing compared" finding is added.
    #[test]
    fn a_missing_named_namespace_beats_drift() {
        let settings = Settings {
            namespaces: s(&["prod", "prdo"]),
            namespaces_at: "flag --namespace".into(),
            ..Settings::default()
        };
        let scope = Scope::new(&settings);
        let src = api(&["public", "prod"], &[("prod", "a")]);
        let tgt = api(&["public", "prod"], &[]);
        let drift = crate::diff::compare(&src, &tgt, &scope, None);
        assert_eq!(drift.len(), 1);
        let mut r = Report::new("diff", "t".into(), None, drift);
        r.compared.push("L3 (cluster ↔ cluster API)".into());
        assert_eq!(r.exit_code, 1);
        apply(&mut r, &settings, &scope, &src, &tgt);
        assert_eq!(r.exit_code, 3);
        assert_eq!(r.summary.total, 2);
        assert_eq!(r.summary.by_code.get("source-error"), Some(&1));
        assert!(r.findings.iter().any(|f| f.namespace == "prdo"));
    }
}
