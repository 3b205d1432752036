//! L2 and the client check: each side's node caches probed (and repaired with `--fix`), and the
//! SDK clients still connected to the source (`decommission-ready`).

use super::{Gathered, Run};
use crate::cancel::Stopped;
use crate::cli::AuditArgs;
use crate::finding::Layer;
use crate::model::Side;
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
                nodes: ctx.nodes.side(side),
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
        g.clients_not.extend(crate::listeners::variants_note(
            &g.source, &g.target, run.scope,
        ));
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
