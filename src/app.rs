//! Orchestration of each subcommand: resolve settings → capture (async) → hash and diff (rayon) → report → exit status.

use crate::cancel::{Stopped, Stopper};
use crate::capture::{self, NamespaceFilter};
use crate::cli::{AuditArgs, Cli, Command};
use crate::diff::{self, Scope};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitStatus;
use crate::finding::{Code, Finding, Layer};
use crate::model::{Side, SideSnapshot};
use crate::report::{Report, SideInfo};
use crate::settings::{self, Inputs, Settings};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Most content diffs fetched from the DBs per run; the rest show digests only.
const MAX_DB_DIFFS: usize = 200;

/// Run a parsed command line; the returned status becomes the process exit code.
pub fn run(cli: Cli) -> Result<ExitStatus> {
    let env = |k: &str| std::env::var(k).ok();
    match cli.command {
        Command::Audit(a) => audit(&a, &env),
        Command::Snapshot(a) => crate::cmd::snapshot::run(&a, &env),
        Command::Diff(a) => crate::cmd::diff::run(&a, &env),
        Command::Baseline(a) => crate::cmd::baseline::run(&a, &env),
        Command::Completions(a) => crate::cli::write_completions(a.shell, &mut std::io::stdout())
            .map(|()| ExitStatus::Clean)
            .map_err(|e| Error::with_source(ErrorKind::Report, "writing the completion script", e)),
        Command::Status(a) => crate::report::status::run(a.report.as_deref(), a.reports.as_deref()),
        Command::Man => crate::cli::write_man(&mut std::io::stdout())
            .map(|()| ExitStatus::Clean)
            .map_err(|e| Error::with_source(ErrorKind::Report, "writing the man page", e)),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::with_source(ErrorKind::Source, "starting the async runtime", e))
}

/// Namespace filters for both sides, from the scope (source ids for the source, mapped ids for the target).
pub(crate) fn filters(scope: &Arc<Scope>) -> (NamespaceFilter, NamespaceFilter) {
    let s = scope.clone();
    let t = scope.clone();
    (
        Arc::new(move |ns: &str| s.namespace_in_scope(&crate::model::canonical_namespace(ns))),
        Arc::new(move |ns: &str| t.namespace_in_scope(&t.to_source(ns))),
    )
}

pub(crate) fn audit(a: &AuditArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<ExitStatus> {
    let settings = settings::resolve(&Inputs {
        sides: Some(&a.sides),
        report: Some(&a.report),
        config: a.sides.config.as_deref(),
        namespaces: &[],
        settle: a.settle,
        state: a.state.as_deref(),
        no_probe: a.no_probe,
        env,
    })?;
    settings.check_comparable()?;
    if (a.dry_run || a.fix_source) && !a.fix {
        return Err(Error::new(
            ErrorKind::Usage,
            "--dry-run and --fix-source only make sense with --fix",
        ));
    }
    if a.fix && !settings.probe {
        return Err(Error::new(
            ErrorKind::Usage,
            "--fix needs the L2 probe: drop --no-probe (or `probe = false` in [audit])",
        ));
    }
    if a.check_config {
        print!("{}", crate::check_config::describe(&settings));
        return Ok(ExitStatus::Clean);
    }
    crate::run::audit(a, &settings)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The audited namespaces (`--namespace`) in the target's ids, after `[namespace_map]`.
fn target_namespaces(settings: &Settings, scope: &Scope) -> Vec<String> {
    settings
        .namespaces
        .iter()
        .map(|n| scope.to_target(n))
        .collect()
}

/// Capture both sides concurrently. With `compact`, the DB layer keeps only digests and then
/// reads in full just the rows whose digests differ (L1 without L2 or incremental needs no more).
pub(crate) fn capture_both(
    rt: &tokio::runtime::Runtime,
    stop: &Stopper,
    settings: &Settings,
    scope: &Arc<Scope>,
    compact: bool,
    nodes: &capture::Nodes,
) -> std::result::Result<(SideSnapshot, SideSnapshot), Stopped> {
    // The step a stop interrupts here: the DB layer when there is one, else the API.
    let layer = if settings.source.db.is_some() || settings.target.db.is_some() {
        Layer::L1
    } else {
        Layer::L3
    };
    let (sf, tf) = filters(scope);
    let with_api = !settings.source.nacos.is_empty() && !settings.target.nacos.is_empty();
    let target_also = target_namespaces(settings, scope);
    // A compact scan keeps digests only: note which namespaces had rows as it maps them (once
    // per tenant and table), so a namespace without a `tenant_info` row still counts as existing.
    let (s_seen, t_seen) = (
        diff::namespaces::Seen::default(),
        diff::namespaces::Seen::default(),
    );
    // Both DB scans must digest content the same way: agree on it before either starts.
    let (sm, tm) = if compact {
        let during = "agreeing on the content digest with both databases";
        let digest = stop.run(rt, during, Layer::L1, capture::agree_digest(settings))?;
        tracing::info!("L1 content digest: {}", digest.name());
        let t = scope.clone();
        let seen = t_seen.clone();
        let to_source: capture::NamespaceMapper = Arc::new(move |ns: &str| {
            seen.note(ns);
            t.to_source(ns)
        });
        let seen = s_seen.clone();
        (
            Some(capture::Compact {
                mapper: Arc::new(move |ns: &str| {
                    seen.note(ns);
                    ns.to_owned()
                }),
                digest,
                only: (!settings.namespaces.is_empty()).then(|| settings.namespaces.clone()),
            }),
            Some(capture::Compact {
                mapper: to_source,
                digest,
                only: (!target_also.is_empty()).then(|| target_also.clone()),
            }),
        )
    } else {
        (None, None)
    };
    let t0 = std::time::Instant::now();
    let (mut source, mut target) = stop.run(rt, "reading both sides", layer, async {
        tokio::join!(
            capture::capture(
                Side::Source,
                &settings.source,
                &nodes.source,
                settings,
                sf,
                &settings.namespaces,
                sm,
                with_api
            ),
            capture::capture(
                Side::Target,
                &settings.target,
                &nodes.target,
                settings,
                tf,
                &target_also,
                tm,
                with_api
            )
        )
    })?;
    crate::progress::clear();
    tracing::info!("captured both sides in {:?}", t0.elapsed());
    s_seen.record(&mut source);
    t_seen.record(&mut target);
    if compact {
        let during = "reading the rows whose digests differ";
        let narrow = capture::narrow_compact(&mut source, &mut target, settings);
        stop.run(rt, during, Layer::L1, narrow)?;
        tracing::info!("narrowed to differing rows at {:?}", t0.elapsed());
    }
    // CPU-bound hashing runs on rayon, outside the async runtime.
    for snap in [&mut source, &mut target] {
        if let Some(api) = &mut snap.api {
            diff::hash_contents(&mut api.configs);
        }
    }
    Ok((source, target))
}

/// The snapshots of the settling re-check, reading again only what the first pass found
/// different: for L1 just the rows (every variant) of the differing keys, from both DBs; for L3
/// the API again, if it had findings. A layer without findings keeps its first-pass snapshot: the
/// re-check only confirms first-pass findings, so it could add nothing there. At a million rows
/// this makes the re-check cost what the drift is, not what the tables are.
#[allow(clippy::too_many_arguments)] // why: the run's handles plus the first pass it re-checks.
pub(crate) fn recapture(
    rt: &tokio::runtime::Runtime,
    stop: &Stopper,
    settings: &Settings,
    scope: &Arc<Scope>,
    first: &[Finding],
    source: &SideSnapshot,
    target: &SideSnapshot,
    nodes: &capture::Nodes,
) -> std::result::Result<(SideSnapshot, SideSnapshot), Stopped> {
    let drift = |layer: Layer| {
        first
            .iter()
            .any(|f| f.layer == layer && f.code != Code::SourceError)
    };
    let keys: Vec<(String, String, String)> = first
        .iter()
        .filter(|f| f.layer == Layer::L1 && f.code != Code::SourceError && !f.name.is_empty())
        .map(|f| (f.namespace.clone(), f.group.clone(), f.name.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let target_keys: Vec<(String, String, String)> = keys
        .iter()
        .map(|(n, g, d)| (scope.to_target(n), g.clone(), d.clone()))
        .collect();
    let (sf, tf) = filters(scope);
    let target_also = target_namespaces(settings, scope);
    // A layer with no finding is left out of the re-check on both sides (`None`): it could
    // only repeat the first pass.
    let (l1, l3) = (drift(Layer::L1), drift(Layer::L3));
    let during = "re-checking the differences";
    let layer = if l1 { Layer::L1 } else { Layer::L3 };
    let (mut s, mut t) = stop.run(rt, during, layer, async {
        tokio::join!(
            recheck_side(
                Side::Source,
                &settings.source,
                &nodes.source,
                settings,
                source,
                sf,
                &keys,
                &settings.namespaces,
                (l1, l3)
            ),
            recheck_side(
                Side::Target,
                &settings.target,
                &nodes.target,
                settings,
                target,
                tf,
                &target_keys,
                &target_also,
                (l1, l3)
            )
        )
    })?;
    crate::progress::clear();
    // As in the first pass: API contents are digested on rayon, outside the async runtime.
    for snap in [&mut s, &mut t] {
        if let Some(api) = &mut snap.api {
            diff::hash_contents(&mut api.configs);
        }
    }
    Ok((s, t))
}

/// One side of [`recapture`]: `layers` says whether L1 and L3 had findings.
#[allow(clippy::too_many_arguments)] // why: one call site, each argument a different piece of the run.
async fn recheck_side(
    side: Side,
    conf: &settings::SideSettings,
    nodes: &[Arc<crate::nacos::NacosNode>],
    settings: &Settings,
    first: &SideSnapshot,
    filter: NamespaceFilter,
    keys: &[(String, String, String)],
    also: &[String],
    (l1, l3): (bool, bool),
) -> SideSnapshot {
    let db = match first.db.as_ref().filter(|_| l1) {
        Some(d) => Some(capture::reread_db(conf, settings, filter.clone(), keys, d).await),
        None => None,
    };
    let api = if l3 && first.api.is_some() {
        let api_only = settings::SideSettings {
            db: None,
            ..conf.clone()
        };
        capture::capture(side, &api_only, nodes, settings, filter, also, None, true)
            .await
            .api
    } else {
        None
    };
    SideSnapshot {
        schema_version: first.schema_version,
        side: first.side,
        db,
        api,
    }
}

/// Diff two snapshots and add a `source-error` finding for every capture failure.
pub(crate) fn compare(source: &SideSnapshot, target: &SideSnapshot, scope: &Scope) -> Vec<Finding> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok());
    let mut out = diff::compare(source, target, scope, now);
    out.extend(capture_errors(source, Side::Source));
    out.extend(capture_errors(target, Side::Target));
    out
}

pub(crate) fn capture_errors(snap: &SideSnapshot, side: Side) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |layer: Layer, e: &crate::model::CaptureError| {
        let mut f = Finding::new(
            Code::SourceError,
            layer,
            e.namespace.as_deref().unwrap_or(""),
            "",
            "",
        );
        f.side = Some(side.as_str().to_owned());
        // Snapshot files are hand-editable: an origin there may carry a password or a token.
        f.node = Some(crate::validate::mask_origin(&e.origin));
        f.detail = format!("{side}: {}", e.message);
        out.push(f);
    };
    if let Some(db) = &snap.db {
        for e in &db.errors {
            push(Layer::L1, e);
        }
    }
    if let Some(api) = &snap.api {
        for e in &api.errors {
            push(Layer::L3, e);
        }
    }
    out
}

/// For L1 content differences, fetch both rows' content and attach a masked diff.
pub(crate) async fn fill_db_diffs(settings: &Settings, scope: &Scope, findings: &mut [Finding]) {
    let (Some(sdsn), Some(tdsn)) = (&settings.source.db, &settings.target.db) else {
        return;
    };
    let show_secrets = scope.show_secrets();
    let idx: Vec<usize> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.layer == Layer::L1 && f.code == Code::ConfigContentDiffers)
        .map(|(i, _)| i)
        .take(MAX_DB_DIFFS)
        .collect();
    if idx.is_empty() {
        return;
    }
    let key = |f: &Finding, ns: String| crate::model::ConfigKey {
        namespace: ns,
        group: f.group.clone(),
        data_id: f.name.clone(),
        variant: f.variant.clone().unwrap_or_default(),
    };
    let skeys: Vec<_> = idx
        .iter()
        .map(|i| key(&findings[*i], findings[*i].namespace.clone()))
        .collect();
    let tkeys: Vec<_> = idx
        .iter()
        .map(|i| key(&findings[*i], scope.to_target(&findings[*i].namespace)))
        .collect();
    let fetch =
        |dsn: &String, pw: Option<&settings::Secret>, keys: Vec<crate::model::ConfigKey>| {
            let dsn = dsn.clone();
            let pw = pw.cloned();
            let timeout = settings.timeout_secs;
            async move {
                let db = crate::db::NacosDb::new(&dsn, pw.as_ref(), timeout).ok()?;
                let r = db.contents(&keys).await.ok();
                r
            }
        };
    let (s, t) = tokio::join!(
        fetch(sdsn, settings.source.db_password.as_ref(), skeys.clone()),
        fetch(tdsn, settings.target.db_password.as_ref(), tkeys.clone())
    );
    let (Some(s), Some(t)) = (s, t) else { return };
    for (n, i) in idx.iter().enumerate() {
        if let (Some(a), Some(b)) = (s.get(&skeys[n]), t.get(&tkeys[n])) {
            findings[*i].diff = Some(diff::text::unified(a, b, show_secrets));
        }
    }
}

fn side_info(conf: Option<&settings::SideSettings>, snap: &SideSnapshot) -> SideInfo {
    SideInfo {
        // Settings hold DSNs and URLs without credentials; snapshot files may not (hand-made):
        // both are shown masked.
        nacos: conf
            .map(|c| c.nacos.clone())
            .unwrap_or_else(|| snap.api.iter().map(|a| a.origin.clone()).collect())
            .iter()
            .map(|u| crate::validate::mask_origin(u))
            .collect(),
        version: snap.api.as_ref().map(|a| a.version.clone()),
        db: conf
            .and_then(|c| c.db.clone())
            .or_else(|| snap.db.as_ref().map(|d| d.origin.clone()))
            .map(|d| crate::validate::mask_dsn(&d)),
        db_configs: snap
            .db
            .as_ref()
            .map(|d| d.rows_scanned.unwrap_or(d.configs.len())),
        db_content_digest: snap.db.as_ref().and_then(|d| d.content_digest.clone()),
        db_tls: snap.db.as_ref().and_then(|d| d.tls),
        tls_verify: conf
            .filter(|c| c.uses_https())
            .map(|c| !c.nacos_tls_insecure_skip_verify),
        api_configs: snap.api.as_ref().map(|a| a.configs.len()),
        api_services: snap.api.as_ref().map(|a| a.services.len()),
        api_instances: snap
            .api
            .as_ref()
            .map(|a| a.services.iter().map(|s| s.instances.len()).sum()),
    }
}

/// Apply levels and the gate, then build the report.
pub(crate) fn finish(
    settings: &Settings,
    mode: &str,
    mut findings: Vec<Finding>,
    source: &SideSnapshot,
    target: &SideSnapshot,
) -> Report {
    for f in &mut findings {
        f.level = settings.level_of(f.code);
        f.in_gate = settings
            .gate
            .is_none_or(|g| g.includes(f.code, f.layer, f.side.as_deref()));
    }
    let mut report = Report::new(
        mode,
        run_id(),
        settings.gate.map(|g| g.name().to_owned()),
        findings,
    );
    let live = mode == "audit";
    report.source = side_info(live.then_some(&settings.source), source);
    report.target = side_info(live.then_some(&settings.target), target);
    // Live, what was configured (a stopped run may not have read it yet); offline, the files.
    let (s_db, t_db) = if live {
        (settings.source.db.is_some(), settings.target.db.is_some())
    } else {
        (source.db.is_some(), target.db.is_some())
    };
    let unread = crate::run::Unread::of(source, target, &Scope::new(settings));
    match (s_db.then_some(()), t_db.then_some(())) {
        (Some(()), Some(())) if unread.l1 => report.not_compared.push(
            "L1 (DB ↔ DB): a database could not be read (see the source-error findings)".into(),
        ),
        (Some(()), Some(())) => report.compared.push("L1 (DB ↔ DB)".into()),
        (None, None) => report
            .not_compared
            .push("L1 (DB ↔ DB): no database configured on either side".into()),
        (None, Some(_)) => report
            .not_compared
            .push("L1 (DB ↔ DB): the source has no database configured".into()),
        (Some(_), None) => report
            .not_compared
            .push("L1 (DB ↔ DB): the target has no database configured".into()),
    }
    if !live {
        report.not_compared.push(
            "L2 (DB ↔ node caches): needs live nodes (not available from snapshot files)".into(),
        );
    } else if !settings.probe {
        report
            .not_compared
            .push("L2 (DB ↔ node caches): disabled (--no-probe)".into());
    } else if settings.source.nacos.is_empty() && settings.target.nacos.is_empty() {
        report
            .not_compared
            .push("L2 (DB ↔ node caches): no Nacos nodes configured".into());
    } else {
        report.compared.push("L2 (DB ↔ each node's cache)".into());
    }
    // Live, the API is read only when both sides have nodes: say which side lacks them.
    let (s_api, t_api) = if live {
        (
            !settings.source.nacos.is_empty(),
            !settings.target.nacos.is_empty(),
        )
    } else {
        (source.api.is_some(), target.api.is_some())
    };
    match (s_api.then_some(()), t_api.then_some(())) {
        (Some(()), Some(())) if unread.l3 => report.not_compared.push(
            "L3 (cluster ↔ cluster): a cluster's API could not be read (see the source-error findings)"
                .into(),
        ),
        (Some(()), Some(())) => report.compared.push("L3 (cluster ↔ cluster API)".into()),
        (None, None) => report
            .not_compared
            .push("L3 (cluster ↔ cluster): no Nacos nodes configured on either side".into()),
        (None, Some(_)) => report
            .not_compared
            .push("L3 (cluster ↔ cluster): the source has no Nacos nodes configured".into()),
        (Some(_), None) => report
            .not_compared
            .push("L3 (cluster ↔ cluster): the target has no Nacos nodes configured".into()),
    }
    report
}

/// Write the reports, print the text summary, and return the status.
pub(crate) fn emit(report: &Report, settings: &Settings) -> Result<ExitStatus> {
    let mut report = crate::baseline::applied(report, settings);
    report.settle_gate();
    crate::history::annotate(&mut report, settings)?;
    let report = &report;
    let dir = settings
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&report.run_id));
    let written = report.write_all(&dir, &settings.formats);
    let mut text = Vec::new();
    let _ = report.render(crate::settings::Format::Text, &mut text);
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth failing the gate over.
    let _ = stdout.write_all(&text);
    let _ = stdout.flush();
    match written {
        Ok(()) => {
            tracing::info!("reports written to {}", dir.display());
            eprintln_safe(&format!("reports written to {}", dir.display()));
            crate::history::save(report, settings);
            Ok(report.status())
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn eprintln_safe(msg: &str) {
    // Messages carry node answers (capture errors): control characters shown, never sent.
    crate::report::escape::eprintln_visible(msg);
}

/// `YYYYMMDDTHHMMSSZ` of now (UTC), used as the run id.
fn run_id() -> String {
    if let Ok(fixed) = std::env::var("NACOS_DRIFT_RUN_ID") {
        // Lets golden tests and CI pin the folder name.
        return fixed;
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_784), (2026, 11, 27));
    }
}
