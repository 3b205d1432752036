//! The end of every run: compare the snapshots, turn capture failures into `source-error`
//! findings, fetch content diffs, build the report once, and write it.

use super::context::RunContext;
use crate::diff::{self, Scope};
use crate::error::Result;
use crate::exit::ExitStatus;
use crate::finding::{Code, Finding, Layer};
use crate::model::{Side, SideSnapshot};
use crate::report::{Report, SideInfo};
use crate::settings::{self, Settings};
use std::io::Write;
use std::path::PathBuf;

/// Most content diffs fetched from the DBs, and from the nodes, per run; the rest show digests
/// only.
const MAX_DB_DIFFS: usize = 200;

/// Diff two snapshots and add a `source-error` finding for every capture failure.
pub(crate) fn compare(source: &SideSnapshot, target: &SideSnapshot, scope: &Scope) -> Vec<Finding> {
    let mut out = diff::compare(source, target, scope, Some(crate::clock::now_ms()));
    out.extend(capture_errors(source, Side::Source));
    out.extend(capture_errors(target, Side::Target));
    out
}

/// A `source-error` finding for every failure recorded in a snapshot.
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
        f.side = Some(side);
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
pub(crate) async fn fill_db_diffs(ctx: &RunContext, scope: &Scope, findings: &mut [Finding]) {
    let (Some(Ok(sdb)), Some(Ok(tdb))) = (ctx.db(Side::Source), ctx.db(Side::Target)) else {
        return;
    };
    let show_secrets = scope.show_secrets();
    let wanted = diffs_wanted(findings, Layer::L1, scope);
    if wanted.is_empty() {
        return;
    }
    let skeys: Vec<_> = wanted.iter().map(|(_, s, _)| s.clone()).collect();
    let tkeys: Vec<_> = wanted.iter().map(|(_, _, t)| t.clone()).collect();
    let (s, t) = tokio::join!(sdb.contents(&skeys), tdb.contents(&tkeys));
    let (Ok(s), Ok(t)) = (s, t) else { return };
    for (i, sk, tk) in &wanted {
        if let (Some(a), Some(b)) = (s.get(sk), t.get(tk)) {
            findings[*i].diff = Some(diff::text::unified(a, b, show_secrets));
        }
    }
}

/// The `config-content-differs` findings of `layer` still without a diff, at most
/// [`MAX_DB_DIFFS`]: each one's index with its key on the source and on the target.
fn diffs_wanted(
    findings: &[Finding],
    layer: Layer,
    scope: &Scope,
) -> Vec<(usize, crate::model::ConfigKey, crate::model::ConfigKey)> {
    let key = |f: &Finding, namespace: String| crate::model::ConfigKey {
        namespace,
        group: f.group.clone(),
        data_id: f.name.clone(),
        variant: f.variant.clone().unwrap_or_default(),
    };
    findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.layer == layer && f.code == Code::ConfigContentDiffers)
        .filter(|(_, f)| f.diff.is_none())
        .take(MAX_DB_DIFFS)
        .map(|(i, f)| {
            let s = key(f, f.namespace.clone());
            let t = key(f, scope.to_target(&f.namespace));
            (i, s, t)
        })
        .collect()
}

/// For L3 content differences compared on digests alone (an audit drops API content once
/// hashed: see [`crate::capture::capture_api`]), fetch both configs again by key from the nodes
/// the snapshots were read from and attach a masked diff. A config whose content no longer
/// has the digest that was compared changed since: it keeps its digests only, never a diff of
/// something other than what was compared.
pub(crate) async fn fill_api_diffs(
    ctx: &RunContext,
    scope: &Scope,
    source: &SideSnapshot,
    target: &SideSnapshot,
    findings: &mut [Finding],
) {
    use futures::stream::{self, StreamExt};
    let node_of = |side: Side, snap: &SideSnapshot| {
        let origin = &snap.api.as_ref()?.origin;
        ctx.nodes
            .side(side)
            .iter()
            .find(|n| &n.base == origin)
            .cloned()
    };
    let (Some(sn), Some(tn)) = (node_of(Side::Source, source), node_of(Side::Target, target))
    else {
        return;
    };
    let show_secrets = scope.show_secrets();
    let wanted = diffs_wanted(findings, Layer::L3, scope);
    if wanted.is_empty() {
        return;
    }
    // A side that kept its contents (r-nacos, which has no by-key view) gives them as read.
    let kept = |snap: &SideSnapshot, keys: Vec<&crate::model::ConfigKey>| {
        let keys: std::collections::HashSet<_> = keys.into_iter().collect();
        snap.api
            .iter()
            .flat_map(|a| &a.configs)
            .filter(|c| keys.contains(&c.key))
            .filter_map(|c| Some((c.key.clone(), c.content.clone()?)))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let skept = kept(source, wanted.iter().map(|(_, s, _)| s).collect());
    let tkept = kept(target, wanted.iter().map(|(_, _, t)| t).collect());
    // The content of `key` on `node` (or as kept) if it still has the digest compared.
    let content = |node: std::sync::Arc<crate::nacos::NacosNode>,
                   key: crate::model::ConfigKey,
                   kept: Option<String>,
                   digest: Option<String>| async move {
        let content = match kept {
            Some(c) => c,
            None => node.config_by_key(&key).await.ok()??.content?,
        };
        (Some(crate::model::md5_hex(&content)) == digest).then_some(content)
    };
    let fetched: Vec<(usize, Option<String>, Option<String>)> = stream::iter(wanted)
        .map(|(i, sk, tk)| {
            let f = &findings[i];
            let (sc, tc) = (skept.get(&sk).cloned(), tkept.get(&tk).cloned());
            let (s, t) = (
                content(sn.clone(), sk, sc, f.source_digest.clone()),
                content(tn.clone(), tk, tc, f.target_digest.clone()),
            );
            async move {
                let (s, t) = tokio::join!(s, t);
                (i, s, t)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (i, s, t) in fetched {
        if let (Some(a), Some(b)) = (s, t) {
            findings[i].diff = Some(diff::text::unified(&a, &b, show_secrets));
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
            .is_none_or(|g| g.includes(f.code, f.layer, f.side));
    }
    let mut report = Report::new(
        mode,
        crate::clock::run_id(),
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
    let unread = super::settle::Unread::of(source, target, &Scope::new(settings));
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
    let mut report = crate::report::accept::applied(report, settings);
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
            crate::report::escape::eprintln_visible(&format!(
                "reports written to {}",
                dir.display()
            ));
            crate::history::save(report, settings);
            Ok(report.status())
        }
        Err(e) => Err(e),
    }
}
