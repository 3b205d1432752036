//! L2 and the client check: each side's node caches probed (and repaired with `--fix`), and the
//! SDK clients still connected to the source (`decommission-ready`).

use super::{Gathered, Run};
use crate::cache::variants::Cover;
use crate::cancel::Stopped;
use crate::cli::AuditArgs;
use crate::diff::Scope;
use crate::finding::{Code, Finding, Layer};
use crate::model::{Side, SideSnapshot};
use crate::report::escape::eprintln_visible;
use crate::settings::Gate;

/// L2: each side's node caches against what they should serve, and `--fix` repairs.
pub(super) fn probe(a: &AuditArgs, run: &Run<'_>, g: &mut Gathered) -> Result<(), Stopped> {
    let Run {
        settings,
        scope,
        rt,
        stop,
        ctx,
    } = *run;
    if !settings.probe {
        return Ok(());
    }
    let fix = crate::settings::FixOptions {
        fix: a.fix,
        dry_run: a.dry_run,
        full: a.full,
        fix_source: a.fix_source,
        ..settings.fix.clone()
    };
    if fix.fix && fix.allow_untrusted_rows {
        eprintln_visible("warning: fix.allow_untrusted_rows is set: --fix may reload node caches from target DB rows that disagree with the source (each such repair is named in the report)");
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
    let vref = crate::cache::variants::source_reference(&g.source, scope);
    let mut covers = [
        (Side::Source, Cover::NotProbed, 0),
        (Side::Target, Cover::NotProbed, 0),
    ];
    let mut left = Vec::new();
    for (ci, (side, conf)) in [
        (Side::Source, &settings.source),
        (Side::Target, &settings.target),
    ]
    .into_iter()
    .enumerate()
    {
        covers[ci].2 = variant_rows(
            if side == Side::Source {
                &g.source
            } else {
                &g.target
            },
            scope,
            side,
        );
        if conf.nacos.is_empty() {
            continue;
        }
        let snap = if side == Side::Source {
            &g.source
        } else {
            &g.target
        };
        let (mut expected, db) =
            crate::cache::expect::expected_for(snap, scope, side, reference.as_ref());
        // Variants: their rows come from the scan, their rules (who sees them) from the DB.
        covers[ci].1 = match (ctx.db(side), snap.db.as_ref()) {
            (Some(Ok(_)), Some(d)) if d.errors.is_empty() => {
                if let Some(rules) = g.variant_rules.remove(&side) {
                    match rules {
                        Ok(rules) => {
                            let (v, out) = crate::cache::variants::expected_variants(
                                snap,
                                scope,
                                side,
                                vref.as_ref(),
                                &rules,
                            );
                            expected.extend(v);
                            left.extend(out.into_iter().map(|(k, why)| (side, k, why)));
                        }
                        Err(e) => {
                            let mut f = Finding::new(Code::SourceError, Layer::L2, "", "", "");
                            f.side = Some(side);
                            f.detail = format!("{side}: cannot read the beta/gray rules: {e}");
                            g.findings.push(f);
                        }
                    }
                }
                Cover::FromDb
            }
            (Some(_), _) => Cover::FromDb,
            (None, _) => Cover::NoDb,
        };
        let identity = conf.identity_key.clone().zip(conf.identity_value.clone());
        let during = if a.fix {
            format!("probing and repairing the {side}'s node caches")
        } else {
            format!("probing the {side}'s node caches")
        };
        let journal = std::sync::Mutex::new(Vec::new());
        let outcome = stop.run(
            rt,
            &during,
            Layer::L2,
            crate::cache::audit_side(&crate::cache::SideRun {
                side,
                nodes: ctx.nodes.side(side),
                expected: &expected,
                identity: &identity,
                opts: &fix,
                grpc: Some(&grpc),
                scope: crate::cache::ProbeScope {
                    whole,
                    db: db.as_deref(),
                },
                journal: &journal,
            }),
        );
        let outcome = match outcome {
            Ok(o) => o,
            Err(stopped) => {
                // Stopped mid-repair: what was being sent is listed, never silently dropped.
                g.repairs.extend(
                    journal
                        .into_inner()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                return Err(stopped);
            }
        };
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
            .extend(crate::cache::variants::notes(covers, &left));
    }
    Ok(())
}

/// Decommission: a source that clients still use is not ready to be turned off.
pub(super) fn client_check(run: &Run<'_>, g: &mut Gathered) -> Result<(), Stopped> {
    if run.settings.gate != Some(Gate::DecommissionReady) {
        return Ok(());
    }
    if run.settings.source.nacos.is_empty() {
        g.clients_not
            .push("connected clients: the source has no Nacos nodes configured".into());
        return Ok(());
    }
    let (sf, _) = super::context::filters(run.scope);
    let during = "checking the clients connected to the source";
    let check = crate::clients::check(&run.ctx.nodes.source, &sf);
    let outcome = run.stop.run(run.rt, during, Layer::L3, check)?;
    g.findings.extend(outcome.findings);
    g.clients_not.extend(outcome.not_checked);
    g.clients_compared = Some("connected clients (SDK connections of each source node)");
    Ok(())
}

/// One side's beta/gray rules, or why they could not be read.
pub(super) type Rules = Result<Vec<(crate::model::ConfigKey, crate::db::RuleText)>, String>;

/// Read the beta/gray rules of each side whose nodes L2 will ask for variants, while its DB is
/// still open.
pub(super) fn read_variant_rules(run: &Run<'_>, g: &mut Gathered) -> Result<(), Stopped> {
    if !run.settings.probe {
        return Ok(());
    }
    for (side, conf) in [
        (Side::Source, &run.settings.source),
        (Side::Target, &run.settings.target),
    ] {
        let snap = if side == Side::Source {
            &g.source
        } else {
            &g.target
        };
        if conf.nacos.is_empty() || variant_rows(snap, run.scope, side) == 0 {
            continue;
        }
        let Some(Ok(handle)) = run.ctx.db(side) else {
            continue;
        };
        let during = format!("reading the {side}'s beta and gray rules");
        let rules = run
            .stop
            .run(run.rt, &during, Layer::L2, handle.variant_rules())?;
        g.variant_rules
            .insert(side, rules.map_err(|e| e.to_string()));
    }
    Ok(())
}

/// A side's variant rows in scope (read from its DB: API reads carry no variants).
fn variant_rows(snap: &SideSnapshot, scope: &Scope, side: Side) -> usize {
    snap.db
        .iter()
        .flat_map(|d| d.configs.iter())
        .filter(|c| {
            !c.key.variant.is_empty()
                && scope.config_in_scope(
                    &scope.source_ns(side, &c.key.namespace),
                    &c.key.group,
                    &c.key.data_id,
                )
        })
        .count()
}
