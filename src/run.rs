//! The life of one `audit` run: lock, capture, compare, settle, probe and repair, report, and
//! stopping early (deadline or signal) with the reports gathered so far marked incomplete.

use crate::app;
use crate::cancel::{Stopped, Stopper};
use crate::capture;
use crate::cli::AuditArgs;
use crate::diff::Scope;
use crate::error::Result;
use crate::exit::ExitStatus;
use crate::finding::{Code, Finding, Layer};
use crate::model::{Side, SideSnapshot};
use crate::settings::{self, Settings};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// `(namespace, group, dataId)` in source terms.
type KeySet = HashSet<(String, String, String)>;

/// What a run has gathered so far: enough to write a report at any point.
#[derive(Default)]
struct Gathered {
    source: SideSnapshot,
    target: SideSnapshot,
    findings: Vec<Finding>,
    settled: usize,
    repairs: Vec<crate::cache::Repair>,
    probe: BTreeMap<String, crate::report::ProbeInfo>,
    clients_compared: Option<&'static str>,
    /// L4's `compared` line, when it ran.
    l4: Option<String>,
    clients_not: Vec<String>,
    run_mode: String,
    /// Only keys changed since the watermark were audited.
    incremental: bool,
    watermarks: BTreeMap<String, crate::state::Watermark>,
    /// Layers whose comparison ran to its end (a stopped run reports the others as not compared).
    done: BTreeSet<Layer>,
}

/// Run an audit with resolved and checked settings; the status becomes the exit code.
pub(crate) fn audit(a: &AuditArgs, settings: &Settings) -> Result<ExitStatus> {
    let scope = Arc::new(Scope::new(settings));
    let rt = app::runtime()?;
    let stop = Stopper::new(settings.deadline_secs);
    stop.listen(&rt);
    crate::db::limit_run(Some(stop.deadline()));
    // Incremental runs and repairs: one at a time per state folder. Two repairs at once would
    // send every repair twice (twice the rate limit per node) and both claim them.
    let lock = if a.incremental || a.fix {
        crate::validate::state_folder(&settings.state)?;
        Some(crate::state::lock(&settings.state)?)
    } else {
        None
    };
    if let Some(prev) = lock.as_ref().and_then(|l| l.took_over.as_deref()) {
        app::eprintln_safe(&format!("warning: took over a stale lock left by {prev}"));
    }
    let prior = if a.incremental {
        crate::state::load(&settings.state)?
    } else {
        None
    };
    let started_ms = app::now_ms();
    let mut g = Gathered::default();
    // Node clients are built once per run and shared by every stage: each node logs in once,
    // and one found down stays down.
    let nodes = capture::Nodes::new(settings);
    let stopped = stages(
        a,
        settings,
        &scope,
        &rt,
        &stop,
        &nodes,
        prior.as_ref(),
        started_ms,
        &mut g,
    )
    .err();
    // The databases are done with (a stopped run's statements are killed here).
    rt.block_on(crate::db::close_all());
    crate::progress::clear();
    let report = g.report(settings, &scope, stopped.as_ref());
    let status = app::emit(&report, settings)?;
    // Only a complete run moves the watermark: an incomplete one must be looked at again.
    if a.incremental && report.complete {
        let last_full_ms = if g.incremental {
            prior.map_or(started_ms, |p| p.last_full_ms)
        } else {
            started_ms
        };
        crate::state::save(
            &settings.state,
            &crate::state::State {
                schema_version: crate::state::STATE_SCHEMA_VERSION,
                last_full_ms,
                sides: g.watermarks,
            },
        )?;
    }
    drop(lock);
    // Requests a stop left behind are not waited for.
    rt.shutdown_background();
    Ok(status)
}

/// The steps of an audit, each recorded in `g` as soon as it is done; `Err` when the run was
/// stopped (what `g` holds then is reported, marked incomplete).
#[allow(clippy::too_many_arguments)] // why: one call site, each argument a different piece of the run.
fn stages(
    a: &AuditArgs,
    settings: &Settings,
    scope: &Arc<Scope>,
    rt: &tokio::runtime::Runtime,
    stop: &Stopper,
    nodes: &capture::Nodes,
    prior: Option<&crate::state::State>,
    started_ms: i64,
    g: &mut Gathered,
) -> std::result::Result<(), Stopped> {
    // Holding every row of a large DB costs far more memory than its digests: when nothing needs
    // every key (no L2 probe, no incremental watermark), the DB layer keeps digests only.
    let compact = !a.incremental
        && settings.source.db.is_some()
        && settings.target.db.is_some()
        && (!settings.probe
            || (settings.source.nacos.is_empty() && settings.target.nacos.is_empty()));
    let (source, target) = app::capture_both(rt, stop, settings, scope, compact, nodes)?;
    g.watermarks = watermarks_of(&source, &target);
    g.source = source;
    g.target = target;
    if a.incremental {
        g.run_mode = "full".to_owned();
    }
    let changed: Option<KeySet> = match prior {
        Some(p) if !a.full && !full_due(p, started_ms, settings.full_every_hours) => {
            if settings.source.db.is_none() && settings.target.db.is_none() {
                g.run_mode =
                    "full (an incremental run needs a database to take a watermark from)".into();
                None
            } else {
                let during = "reading the keys changed since the watermark";
                let (keys, errors) =
                    stop.run(rt, during, Layer::L1, changed_keys(settings, scope, p))?;
                // Keys that could not be read cannot be audited: the run is incomplete.
                g.findings.extend(errors);
                g.run_mode = format!(
                    "incremental: {} key(s) changed since the watermark",
                    keys.len()
                );
                Some(keys)
            }
        }
        Some(_) => {
            g.run_mode = "full (scheduled full pass, or --full)".into();
            None
        }
        None if a.incremental => {
            g.run_mode = "full (no state file yet)".into();
            None
        }
        None => None,
    };
    g.incremental = changed.is_some();
    if let Some(k) = &changed {
        restrict_to(&mut g.source, k, scope, Side::Source);
        restrict_to(&mut g.target, k, scope, Side::Target);
    }
    let mut first = app::compare(&g.source, &g.target, scope);
    drop_unread(&mut first, &g.source, &g.target, scope);
    g.findings.extend(first);
    g.done.extend([Layer::L1, Layer::L3]);
    if settings.settle_secs > 0 && g.findings.iter().any(|f| f.code != Code::SourceError) {
        tracing::info!(
            "{} difference(s); re-checking in {} s before confirming",
            g.findings.len(),
            settings.settle_secs
        );
        let during = "waiting to re-check the differences (settling)";
        stop.sleep(rt, settings.settle_secs, during, Layer::L1)?;
        let t0 = std::time::Instant::now();
        let (mut s2, mut t2) = app::recapture(
            rt,
            stop,
            settings,
            scope,
            &g.findings,
            &g.source,
            &g.target,
            nodes,
        )?;
        if let Some(k) = &changed {
            restrict_to(&mut s2, k, scope, Side::Source);
            restrict_to(&mut t2, k, scope, Side::Target);
        }
        let second = app::compare(&s2, &t2, scope);
        let unread = Unread::of(&s2, &t2, scope);
        tracing::info!("settling re-check took {:?}", t0.elapsed());
        // Later layers and the report keep the first pass's full snapshots; the re-check
        // read only what it had to.
        let (confirmed, settled) = confirm(&g.findings, second, &unread);
        g.findings = confirmed;
        g.settled = settled;
    }
    let t1 = std::time::Instant::now();
    let during = "fetching the content of differing rows";
    stop.run(
        rt,
        during,
        Layer::L1,
        app::fill_db_diffs(settings, scope, &mut g.findings),
    )?;
    tracing::info!("content diffs fetched in {:?}", t1.elapsed());
    // The databases are done with: what follows talks to the nodes only.
    rt.block_on(crate::db::close_all());
    probe(a, settings, scope, rt, stop, nodes, g)?;
    // Decommission: a source that clients still use is not ready to be turned off.
    if settings.gate == Some(settings::Gate::DecommissionReady) {
        if settings.source.nacos.is_empty() {
            g.clients_not
                .push("connected clients: the source has no Nacos nodes configured".into());
        } else {
            let (sf, _) = app::filters(scope);
            let during = "checking the clients connected to the source";
            let outcome = stop.run(
                rt,
                during,
                Layer::L3,
                crate::clients::check(&nodes.source, &sf),
            )?;
            g.findings.extend(outcome.findings);
            g.clients_not.extend(outcome.not_checked);
            g.clients_compared = Some("connected clients (SDK connections of each source node)");
        }
    }
    // L4: what the applications hold, and who still listens on the source.
    let l4 = crate::listeners::stage(a.l4, settings, scope, rt, stop, nodes, &g.source, &g.target)?;
    if let Some(out) = l4 {
        g.findings.extend(out.findings);
        g.clients_not.extend(out.not_compared);
        g.l4 = Some(out.compared);
        g.done.insert(Layer::L4);
    }
    Ok(())
}

/// L2: each side's node caches against what they should serve, and `--fix` repairs.
fn probe(
    a: &AuditArgs,
    settings: &Settings,
    scope: &Scope,
    rt: &tokio::runtime::Runtime,
    stop: &Stopper,
    nodes: &capture::Nodes,
    g: &mut Gathered,
) -> std::result::Result<(), Stopped> {
    if !settings.probe {
        return Ok(());
    }
    let fix = crate::cache::FixOptions {
        fix: a.fix,
        dry_run: a.dry_run,
        full: a.full,
        fix_source: a.fix_source,
        ..settings.fix.clone()
    };
    if fix.fix && fix.allow_untrusted_rows {
        app::eprintln_safe("warning: fix.allow_untrusted_rows is set: --fix may reload node caches from target DB rows that disagree with the source (each such repair is named in the report)");
    }
    let grpc = crate::cache::GrpcSyncer::for_settings(settings);
    // The probe covers every key a node serves only without a subset: only then is a node's
    // stale share (the full-reload threshold) known.
    let whole = !g.incremental
        && settings.namespaces.is_empty()
        && settings.ignore.namespaces.is_empty()
        && settings.ignore.groups.is_empty()
        && settings.ignore.data_ids.is_empty();
    let reference = crate::cache::expect::source_reference(&g.source, scope);
    for (side, conf) in [
        (Side::Source, &settings.source),
        (Side::Target, &settings.target),
    ] {
        if conf.nacos.is_empty() {
            continue;
        }
        let snap = if side == Side::Source {
            &g.source
        } else {
            &g.target
        };
        let (expected, db) =
            crate::cache::expect::expected_for(snap, scope, side, reference.as_ref());
        let identity = conf.identity_key.clone().zip(conf.identity_value.clone());
        let during = if a.fix {
            format!("probing and repairing the {side}'s node caches")
        } else {
            format!("probing the {side}'s node caches")
        };
        let outcome = stop.run(
            rt,
            &during,
            Layer::L2,
            crate::cache::audit_side(&crate::cache::SideRun {
                side,
                nodes: nodes.side(side),
                expected: &expected,
                identity: &identity,
                opts: &fix,
                grpc: Some(&grpc),
                scope: crate::cache::ProbeScope {
                    whole,
                    db: db.as_deref(),
                },
            }),
        )?;
        g.probe.insert(
            side.as_str().to_owned(),
            crate::report::ProbeInfo {
                nodes: outcome.nodes,
                keys: outcome.probed,
                mode: if g.incremental { "incremental" } else { "full" }.into(),
                not_probed: outcome.not_probed,
            },
        );
        g.findings.extend(outcome.findings);
        g.repairs.extend(outcome.repairs);
    }
    g.done.insert(Layer::L2);
    if !g.probe.is_empty() {
        g.clients_not
            .extend(crate::listeners::variants_note(&g.source, &g.target, scope));
    }
    Ok(())
}

impl Gathered {
    /// The report of what was gathered; a stopped run's says why and what was not compared.
    fn report(
        &mut self,
        settings: &Settings,
        scope: &Scope,
        stopped: Option<&Stopped>,
    ) -> crate::report::Report {
        let mut findings = std::mem::take(&mut self.findings);
        findings.extend(stopped.map(Stopped::finding));
        let mut report = app::finish(settings, "audit", findings, &self.source, &self.target);
        report
            .compared
            .extend(self.clients_compared.map(str::to_owned));
        report.compared.extend(self.l4.take());
        report.not_compared.append(&mut self.clients_not);
        if let Some(s) = stopped {
            let layer_of = |c: &str| {
                [Layer::L1, Layer::L2, Layer::L3, Layer::L4]
                    .into_iter()
                    .find(|l| c.starts_with(l.as_str()))
            };
            let (kept, cut): (Vec<String>, Vec<String>) = std::mem::take(&mut report.compared)
                .into_iter()
                .partition(|c| layer_of(c).is_some_and(|l| self.done.contains(&l)));
            report.compared = kept;
            report.not_compared.extend(
                cut.into_iter()
                    .map(|c| format!("{c}: not finished, the run stopped ({})", s.why)),
            );
        }
        report.summary.settled = self.settled;
        report.repairs = std::mem::take(&mut self.repairs);
        report.probe = std::mem::take(&mut self.probe);
        if !self.run_mode.is_empty() {
            report.run_mode = Some(self.run_mode.clone());
        }
        crate::diff::coverage::apply(&mut report, settings, scope, &self.source, &self.target);
        report
    }
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
        for (snap, is_target) in [(source, false), (target, true)] {
            if snap.db.as_ref().is_some_and(|d| !d.errors.is_empty()) {
                u.l1 = true;
            }
            let Some(api) = &snap.api else { continue };
            for e in &api.errors {
                match &e.namespace {
                    Some(ns) if is_target => {
                        u.l3_namespaces.insert(scope.to_source(ns));
                    }
                    Some(ns) => {
                        u.l3_namespaces
                            .insert(crate::model::canonical_namespace(ns));
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
fn confirm(first: &[Finding], second: Vec<Finding>, unread: &Unread) -> (Vec<Finding>, usize) {
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

fn full_due(p: &crate::state::State, now: i64, every_hours: u64) -> bool {
    every_hours > 0
        && now - p.last_full_ms > i64::try_from(every_hours * 3_600_000).unwrap_or(i64::MAX)
}

/// Newest `gmt_modified` and history nid per side, read from the (unrestricted) DB snapshots.
fn watermarks_of(
    source: &SideSnapshot,
    target: &SideSnapshot,
) -> BTreeMap<String, crate::state::Watermark> {
    let mut out = BTreeMap::new();
    for (name, snap) in [("source", source), ("target", target)] {
        if let Some(db) = &snap.db {
            if db.errors.is_empty() {
                out.insert(
                    name.to_owned(),
                    crate::state::Watermark {
                        modified_ms: db
                            .configs
                            .iter()
                            .filter_map(|c| c.modified_ms)
                            .max()
                            .unwrap_or(0),
                        his_nid: db.max_his_nid.unwrap_or(0),
                    },
                );
            }
        }
    }
    out
}

/// Keys (in source namespace terms) changed on either DB since the watermark: rows modified at or
/// after `modified − skew`, and keys with a history entry after the last nid (deletions included).
/// A DB that cannot say is a `source-error`: its changes are unknown, so the run is incomplete.
async fn changed_keys(
    settings: &Settings,
    scope: &Scope,
    prior: &crate::state::State,
) -> (KeySet, Vec<Finding>) {
    let mut out = HashSet::new();
    let mut errors = Vec::new();
    for (name, conf, is_target) in [
        ("source", &settings.source, false),
        ("target", &settings.target, true),
    ] {
        let Some(dsn) = &conf.db else { continue };
        let wm = prior.sides.get(name).cloned().unwrap_or_default();
        let since = wm.modified_ms - i64::try_from(settings.skew_secs * 1000).unwrap_or(0);
        let read = async {
            let db =
                crate::db::NacosDb::new(dsn, conf.db_password.as_ref(), settings.timeout_secs)?;
            let mut keys = db.modified_keys_since(since).await?;
            keys.extend(db.history_keys_since(wm.his_nid).await?);
            Ok::<_, crate::db::DbError>(keys)
        };
        match read.await {
            Ok(keys) => {
                for k in keys {
                    let ns = if is_target {
                        scope.to_source(&k.namespace)
                    } else {
                        k.namespace.clone()
                    };
                    out.insert((ns, k.group, k.data_id));
                }
            }
            Err(e) => {
                let mut f = Finding::new(Code::SourceError, Layer::L1, "", "", "");
                f.side = Some(name.to_owned());
                f.node = Some(dsn.clone());
                f.detail = format!("{name}: keys changed since the watermark: {e}");
                errors.push(f);
            }
        }
    }
    (out, errors)
}

/// Keep only the changed keys' configs (and deletions) in a snapshot.
fn restrict_to(snap: &mut SideSnapshot, keys: &KeySet, scope: &Scope, side: Side) {
    let keep = |k: &crate::model::ConfigKey| {
        let ns = if side == Side::Target {
            scope.to_source(&k.namespace)
        } else {
            crate::model::canonical_namespace(&k.namespace)
        };
        keys.contains(&(ns, k.group.clone(), k.data_id.clone()))
    };
    if let Some(db) = &mut snap.db {
        db.configs.retain(|c| keep(&c.key));
        db.deleted.retain(|k| keep(k));
    }
    if let Some(api) = &mut snap.api {
        api.configs.retain(|c| keep(&c.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiSnapshot, CaptureError, DbSnapshot};

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
