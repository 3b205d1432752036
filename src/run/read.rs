//! Reading both sides: the first capture (with the compact scan narrowed to the rows whose
//! digests differ) and the settling re-check, which reads again only what differed.

use super::context::{filters, target_namespaces};
use super::Run;
use crate::cancel::Stopped;
use crate::capture::{self, NamespaceFilter, SideHandles};
use crate::diff;
use crate::finding::{Code, Finding, Layer};
use crate::model::{FormalKey, Side, SideSnapshot};
use crate::settings;
use std::sync::Arc;

/// Capture both sides concurrently. With `compact`, the DB layer keeps only digests and then
/// reads in full just the rows whose digests differ (L1 without L2 or incremental needs no more).
pub(crate) fn capture_both(
    run: &Run<'_>,
    compact: bool,
) -> Result<(SideSnapshot, SideSnapshot), Stopped> {
    let Run {
        settings,
        scope,
        rt,
        stop,
        ctx,
    } = *run;
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
        let agree = capture::agree_digest(settings, ctx.db(Side::Source), ctx.db(Side::Target));
        let digest = stop.run(rt, during, Layer::L1, agree)?;
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
                ctx.side(Side::Source),
                sf,
                &settings.namespaces,
                sm,
                with_api
            ),
            capture::capture(
                Side::Target,
                &settings.target,
                ctx.side(Side::Target),
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
        let narrow = capture::narrow_compact(
            &mut source,
            &mut target,
            ctx.db(Side::Source),
            ctx.db(Side::Target),
        );
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
/// only the configs and services that differed (or the API again when a finding is about a
/// namespace or accounts). A layer without findings keeps its first-pass snapshot: the
/// re-check only confirms first-pass findings, so it could add nothing there. At a million rows
/// this makes the re-check cost what the drift is, not what the tables are.
pub(crate) fn recapture(
    run: &Run<'_>,
    first: &[Finding],
    source: &SideSnapshot,
    target: &SideSnapshot,
) -> Result<(SideSnapshot, SideSnapshot), Stopped> {
    let Run {
        settings,
        scope,
        rt,
        stop,
        ctx,
    } = *run;
    let drift = |layer: Layer| {
        first
            .iter()
            .any(|f| f.layer == layer && f.code != Code::SourceError)
    };
    let keys: Vec<FormalKey> = first
        .iter()
        .filter(|f| f.layer == Layer::L1 && f.code != Code::SourceError && !f.name.is_empty())
        .map(|f| FormalKey::new(&f.namespace, &f.group, &f.name))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let target_keys: Vec<FormalKey> = keys
        .iter()
        .map(|k| k.in_namespace(scope.to_target(&k.namespace)))
        .collect();
    let (sf, tf) = filters(scope);
    let target_also = target_namespaces(settings, scope);
    // A layer with no finding is left out of the re-check on both sides (`None`): it could
    // only repeat the first pass.
    let (l1, l3) = (drift(Layer::L1), drift(Layer::L3));
    // L3: only the configs and services that differed (see `settle::api_recheck`).
    let api_plan = match (&source.api, &target.api) {
        (Some(sa), Some(ta)) if l3 => {
            fn count(api: &crate::model::ApiSnapshot) -> std::collections::HashMap<&str, usize> {
                let mut m = std::collections::HashMap::new();
                for c in &api.configs {
                    *m.entry(c.key.namespace.as_str()).or_default() += 1;
                }
                m
            }
            let (sc, tc) = (count(sa), count(ta));
            let per_key = [sa, ta].iter().all(|a| {
                crate::nacos::ServerKind::parse(&a.version).is_some_and(|k| k.has_config_detail())
            });
            super::settle::api_recheck(
                first,
                |ns| {
                    let t = scope.to_target(ns);
                    sc.get(ns)
                        .copied()
                        .unwrap_or(0)
                        .max(tc.get(t.as_str()).copied().unwrap_or(0))
                },
                per_key,
            )
        }
        _ => None,
    };
    let target_plan = api_plan.as_ref().map(|p| p.mapped(|n| scope.to_target(n)));
    let during = "re-checking the differences";
    let layer = if l1 { Layer::L1 } else { Layer::L3 };
    let (mut s, mut t) = stop.run(rt, during, layer, async {
        tokio::join!(
            recheck_side(
                Side::Source,
                &settings.source,
                ctx.side(Side::Source),
                source,
                sf,
                &keys,
                &settings.namespaces,
                (l1, l3),
                api_plan.as_ref()
            ),
            recheck_side(
                Side::Target,
                &settings.target,
                ctx.side(Side::Target),
                target,
                tf,
                &target_keys,
                &target_also,
                (l1, l3),
                target_plan.as_ref()
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
    handles: SideHandles<'_>,
    first: &SideSnapshot,
    filter: NamespaceFilter,
    keys: &[FormalKey],
    also: &[String],
    (l1, l3): (bool, bool),
    plan: Option<&super::settle::ApiRecheck>,
) -> SideSnapshot {
    let db = match first.db.as_ref().filter(|_| l1) {
        Some(d) => Some(capture::reread_db(conf, handles.db, filter.clone(), keys, d).await),
        None => None,
    };
    let api = if let (true, Some(api), Some(plan)) = (l3, &first.api, plan) {
        Some(capture::recheck_api(side, handles.nodes, api, plan).await)
    } else if l3 && first.api.is_some() {
        let api_only = settings::SideSettings {
            db: None,
            ..conf.clone()
        };
        let nodes = SideHandles {
            nodes: handles.nodes,
            db: None,
            accounts_by_api: handles.accounts_by_api,
            api_digests_only: handles.api_digests_only,
        };
        capture::capture(side, &api_only, nodes, filter, also, None, true)
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
