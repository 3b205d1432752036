//! The life of one `audit` run, as named stages over one [`context::RunContext`]:
//! capture ([`read`]) → narrow/restrict ([`incremental`]) → compare ([`finish::compare`]) →
//! settle ([`settle`], re-read by [`read::recapture`]) → L1 content diffs → probe/repair and the
//! client check ([`probe`]) → report ([`finish`]); stopping early (deadline or signal) reports
//! what was gathered so far, marked incomplete.

pub mod context;
pub mod finish;
mod incremental;
mod probe;
pub mod read;
pub mod settle;

use crate::cancel::{Stopped, Stopper};
use crate::cli::AuditArgs;
use crate::diff::Scope;
use crate::error::Result;
use crate::exit::ExitStatus;
use crate::finding::{Code, Finding, Layer};
use crate::model::{Side, SideSnapshot};
use crate::report::escape::eprintln_visible;
use crate::settings::Settings;
use context::RunContext;
use incremental::KeySet;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
    /// Each side's beta/gray rules, read for L2 before the databases close (or why not).
    variant_rules: BTreeMap<crate::model::Side, probe::Rules>,
}

/// What every stage borrows for the whole run: the settings, the scope, the runtime, the
/// stopper (deadline, signals) and the handles of both sides.
pub(crate) struct Run<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) scope: &'a Arc<Scope>,
    pub(crate) rt: &'a tokio::runtime::Runtime,
    pub(crate) stop: &'a Stopper,
    pub(crate) ctx: &'a RunContext,
}

/// Run an audit with resolved and checked settings; the status becomes the exit code.
pub(crate) fn audit(a: &AuditArgs, settings: &Settings) -> Result<ExitStatus> {
    let scope = Arc::new(Scope::new(settings));
    let rt = context::runtime()?;
    let stop = Stopper::new(settings.deadline_secs);
    stop.listen(&rt);
    // Incremental runs and repairs: one at a time per state folder. Two repairs at once would
    // send every repair twice (twice the rate limit per node) and both claim them.
    let lock = if a.incremental || a.fix {
        crate::validate::state_folder(&settings.state)?;
        Some(crate::state::lock(&settings.state)?)
    } else {
        None
    };
    if let Some(prev) = lock.as_ref().and_then(|l| l.took_over.as_deref()) {
        eprintln_visible(&format!("warning: took over a stale lock left by {prev}"));
    }
    let prior = if a.incremental {
        crate::state::load(&settings.state)?
    } else {
        None
    };
    let started_ms = crate::clock::now_ms();
    let mut g = Gathered::default();
    // Both sides' node clients and DB pools are built here, once, and borrowed by every stage.
    let ctx = RunContext::new(settings, stop.deadline());
    let run = Run {
        settings,
        scope: &scope,
        rt: &rt,
        stop: &stop,
        ctx: &ctx,
    };
    let stopped = stages(a, &run, prior.as_ref(), started_ms, &mut g).err();
    // The databases are done with (a stopped run's statements are killed here).
    rt.block_on(ctx.close_dbs());
    crate::progress::clear();
    let report = g.report(settings, &scope, stopped.as_ref());
    let status = finish::emit(&report, settings)?;
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

/// The stages of an audit, each recorded in `g` as soon as it is done; `Err` when the run was
/// stopped (what `g` holds then is reported, marked incomplete).
fn stages(
    a: &AuditArgs,
    run: &Run<'_>,
    prior: Option<&crate::state::State>,
    started_ms: i64,
    g: &mut Gathered,
) -> std::result::Result<(), Stopped> {
    let Run {
        settings,
        scope,
        rt,
        stop,
        ctx,
    } = *run;
    // Holding every row of a large DB costs far more memory than its digests: when nothing needs
    // every key (no L2 probe, no incremental watermark), the DB layer keeps digests only.
    let compact = !a.incremental
        && settings.source.db.is_some()
        && settings.target.db.is_some()
        && (!settings.probe
            || (settings.source.nacos.is_empty() && settings.target.nacos.is_empty()));
    let (source, target) = read::capture_both(run, compact)?;
    g.watermarks = incremental::watermarks_of(&source, &target);
    g.source = source;
    g.target = target;
    let changed = restrict(a, run, prior, started_ms, g)?;
    let mut first = finish::compare(&g.source, &g.target, scope);
    settle::drop_unread(&mut first, &g.source, &g.target, scope);
    g.findings.extend(first);
    g.done.extend([Layer::L1, Layer::L3]);
    if settings.settle_secs > 0 && g.findings.iter().any(|f| f.code != Code::SourceError) {
        settle(run, changed.as_ref(), g)?;
    }
    let t1 = std::time::Instant::now();
    let during = "fetching the content of differing rows";
    let diffs = async {
        finish::fill_db_diffs(ctx, scope, &mut g.findings).await;
        finish::fill_api_diffs(ctx, scope, &g.source, &g.target, &mut g.findings).await;
    };
    stop.run(rt, during, Layer::L1, diffs)?;
    tracing::info!("content diffs fetched in {:?}", t1.elapsed());
    probe::read_variant_rules(run, g)?;
    // The databases are done with: what follows talks to the nodes only.
    rt.block_on(ctx.close_dbs());
    probe::probe(a, run, g)?;
    probe::client_check(run, g)?;
    // L4: what the applications hold, and who still listens on the source.
    let l4 = crate::listeners::stage(
        a.l4, settings, scope, rt, stop, &ctx.nodes, &g.source, &g.target,
    )?;
    if let Some(out) = l4 {
        g.findings.extend(out.findings);
        g.clients_not.extend(out.not_compared);
        g.l4 = Some(out.compared);
        g.done.insert(Layer::L4);
    }
    Ok(())
}

/// Incremental runs: decide the run's mode, and narrow the snapshots to the keys changed since
/// the watermark (`None`: a full run).
fn restrict(
    a: &AuditArgs,
    run: &Run<'_>,
    prior: Option<&crate::state::State>,
    started_ms: i64,
    g: &mut Gathered,
) -> std::result::Result<Option<KeySet>, Stopped> {
    let settings = run.settings;
    if a.incremental {
        // What a run stopped before it knew its mode reports.
        g.run_mode = "full".to_owned();
    }
    let has_db = settings.source.db.is_some() || settings.target.db.is_some();
    let mode = incremental::mode(
        a.incremental,
        a.full,
        prior.map(|p| p.last_full_ms),
        started_ms,
        settings.full_every_hours,
        has_db,
    );
    let changed = match (mode, prior) {
        (incremental::Mode::Changed, Some(p)) => {
            let during = "reading the keys changed since the watermark";
            let read = incremental::changed_keys(run.ctx, settings, run.scope, p);
            let (keys, errors) = run.stop.run(run.rt, during, Layer::L1, read)?;
            // Keys that could not be read cannot be audited: the run is incomplete.
            g.findings.extend(errors);
            g.run_mode = format!(
                "incremental: {} key(s) changed since the watermark",
                keys.len()
            );
            Some(keys)
        }
        (mode, _) => {
            g.run_mode = mode.text().to_owned();
            None
        }
    };
    g.incremental = changed.is_some();
    if let Some(k) = &changed {
        incremental::restrict_to(&mut g.source, k, run.scope, Side::Source);
        incremental::restrict_to(&mut g.target, k, run.scope, Side::Target);
    }
    Ok(changed)
}

/// The settling re-check: wait, read again what differed, and keep only what is seen again.
fn settle(
    run: &Run<'_>,
    changed: Option<&KeySet>,
    g: &mut Gathered,
) -> std::result::Result<(), Stopped> {
    let (settings, scope) = (run.settings, run.scope);
    tracing::info!(
        "{} difference(s); re-checking in {} s before confirming",
        g.findings.len(),
        settings.settle_secs
    );
    let during = "waiting to re-check the differences (settling)";
    run.stop
        .sleep(run.rt, settings.settle_secs, during, Layer::L1)?;
    let t0 = std::time::Instant::now();
    let (mut s2, mut t2) = read::recapture(run, &g.findings, &g.source, &g.target)?;
    if let Some(k) = changed {
        incremental::restrict_to(&mut s2, k, scope, Side::Source);
        incremental::restrict_to(&mut t2, k, scope, Side::Target);
    }
    let second = finish::compare(&s2, &t2, scope);
    let unread = settle::Unread::of(&s2, &t2, scope);
    tracing::info!("settling re-check took {:?}", t0.elapsed());
    // Later layers and the report keep the first pass's full snapshots; the re-check
    // read only what it had to.
    let (confirmed, settled) = settle::confirm(&g.findings, second, &unread);
    g.findings = confirmed;
    g.settled = settled;
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
        let mut report = finish::finish(settings, "audit", findings, &self.source, &self.target);
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
        crate::report::coverage::apply(&mut report, settings, scope, &self.source, &self.target);
        report
    }
}
