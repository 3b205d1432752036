//! `--fix` on one side: plan per node, refuse untrusted rows, apply, verify, and give every L2
//! finding its outcome.

use super::plan::{self, Mechanism, NodePlan, Outcome, PlanInput, RepairStatus, TrapInput};
use super::sync::per_key;
use super::{probe_all, served_of, vias_of, CacheOutcome, NodeState, Repair, SideRun, Via};
use crate::finding::{Code, Finding};
use crate::model::ProbeKey;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

type Findings = BTreeMap<(String, usize), Finding>;

fn set_outcome(findings: &mut Findings, node: &str, idx: &[usize], outcome: &Outcome) {
    for i in idx {
        if let Some(f) = findings.get_mut(&(node.to_owned(), *i)) {
            f.repair = Some(outcome.to_string());
        }
    }
}

/// Plan, apply and verify the repairs of every stale node of one side.
pub(super) async fn repair_side(
    run: &SideRun<'_>,
    live: &[NodeState],
    keys: &[ProbeKey],
    findings: &mut Findings,
    out: &mut CacheOutcome,
) {
    let opts = run.opts;
    let expected = run.expected;
    let side = run.side;
    let mut applied: Vec<(usize, usize, Vec<usize>)> = Vec::new(); // (live index, repair index, keys sent)
    for (n, s) in live.iter().enumerate() {
        if s.stale.is_empty() {
            continue;
        }
        let record = |mechanism, status, keys: usize, detail: String| Repair {
            side,
            node: s.node.base.clone(),
            version: s.version.clone(),
            mechanism,
            keys,
            status,
            detail,
            repaired: 0,
            still_stale: 0,
        };
        // Rows that disagree with the source are never loaded into a cache, unless asked loudly.
        let (mut refused, mut allowed, mut untrusted_allowed) = (Vec::new(), Vec::new(), 0usize);
        for i in &s.stale {
            match expected[*i].trust.refusal() {
                Some(_) if !opts.allow_untrusted_rows => refused.push(*i),
                Some(_) => {
                    untrusted_allowed += 1;
                    allowed.push(*i);
                }
                None => allowed.push(*i),
            }
        }
        // Group the refusals by reason: one action per reason.
        let mut by_reason: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        for i in &refused {
            if let Some(why) = expected[*i].trust.refusal() {
                by_reason.entry(why).or_default().push(*i);
            }
        }
        for (why, idx) in &by_reason {
            set_outcome(
                findings,
                &s.node.base,
                idx,
                &Outcome::NotRepairable((*why).to_owned()),
            );
            out.repairs.push(record(
                Mechanism::None,
                RepairStatus::Skipped,
                idx.len(),
                format!("not repairable: {why}"),
            ));
        }
        // Variants are reloaded one key at a time whatever their number: a full reload dumps
        // formal configs only (`DumpAllTask`).
        let (variant, allowed): (Vec<usize>, Vec<usize>) = allowed
            .into_iter()
            .partition(|i| !expected[*i].key.variant.is_empty());
        for (mech, idx) in variant_plans(run, &s.version, &variant) {
            let (mechanism, why) = match mech {
                Ok(m) => (
                    m,
                    format!(
                        "variant reload, key by key ({m}): a full reload dumps formal configs only"
                    ),
                ),
                Err(why) => (Mechanism::None, why),
            };
            if mechanism == Mechanism::None || opts.dry_run {
                let (outcome, status) = if mechanism == Mechanism::None {
                    (Outcome::NotRepairable(why.clone()), RepairStatus::Skipped)
                } else {
                    (Outcome::Planned(mechanism), RepairStatus::Planned)
                };
                set_outcome(findings, &s.node.base, &idx, &outcome);
                out.repairs.push(record(mechanism, status, idx.len(), why));
                continue;
            }
            let mut r = record(mechanism, RepairStatus::Applied, idx.len(), why);
            journal(run, &r);
            let (sent, failures) = apply(run, s, &idx, mechanism).await;
            note_failures(run, s, &idx, &failures, &sent, &mut r, findings, out);
            if !sent.is_empty() {
                applied.push((n, out.repairs.len(), sent));
            }
            out.repairs.push(r);
        }
        if allowed.is_empty() {
            continue;
        }
        let formal = expected.iter().filter(|e| e.key.variant.is_empty()).count();
        let NodePlan { mechanism, mut why } = plan::plan_node(&PlanInput {
            version: &s.version,
            grpc: run.grpc.is_some(),
            stale: allowed.len(),
            refused: refused.len(),
            served: run.scope.whole.then_some(formal),
            full: opts.full,
            threshold_pct: opts.full_threshold_pct,
        });
        if untrusted_allowed > 0 {
            why = format!("{why}; fix.allow_untrusted_rows: {untrusted_allowed} key(s) reloaded from target DB rows that disagree with the source");
        }
        if mechanism == Mechanism::None {
            set_outcome(
                findings,
                &s.node.base,
                &allowed,
                &Outcome::NotRepairable(why.clone()),
            );
            out.repairs
                .push(record(mechanism, RepairStatus::Skipped, allowed.len(), why));
            continue;
        }
        if opts.dry_run {
            set_outcome(
                findings,
                &s.node.base,
                &allowed,
                &Outcome::Planned(mechanism),
            );
            out.repairs
                .push(record(mechanism, RepairStatus::Planned, allowed.len(), why));
            continue;
        }
        let mut r = record(mechanism, RepairStatus::Applied, allowed.len(), why);
        journal(run, &r);
        let (sent, failures) = apply(run, s, &allowed, mechanism).await;
        note_failures(run, s, &allowed, &failures, &sent, &mut r, findings, out);
        if !sent.is_empty() {
            applied.push((n, out.repairs.len(), sent));
        }
        out.repairs.push(r);
    }
    if !opts.dry_run {
        verify(run, live, keys, findings, out, &applied).await;
    }
}

/// Note a repair about to be sent, as it would stand if the run stopped before its end.
fn journal(run: &SideRun<'_>, r: &Repair) {
    let mut j = r.clone();
    j.status = RepairStatus::Interrupted;
    j.detail = format!(
        "{}; the run stopped while this repair was sent or verified: some or all of its keys may have been reloaded, none was verified",
        r.detail
    );
    // A poisoned lock only means another side's task panicked: the list is still whole.
    run.journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(j);
}

/// The variant keys of one node grouped by how they can be reloaded there (or why not).
fn variant_plans(
    run: &SideRun<'_>,
    version: &str,
    idx: &[usize],
) -> BTreeMap<Result<Mechanism, String>, Vec<usize>> {
    let mut out: BTreeMap<Result<Mechanism, String>, Vec<usize>> = BTreeMap::new();
    for i in idx {
        let m =
            super::variants::mechanism(version, &run.expected[*i].key.variant, run.grpc.is_some());
        out.entry(m).or_default().push(*i);
    }
    out
}

/// Record the keys whose repair request failed, on their findings and the repair action.
#[allow(clippy::too_many_arguments)] // why: one repair action's context, used twice above.
fn note_failures(
    run: &SideRun<'_>,
    s: &NodeState,
    tried: &[usize],
    failures: &[(usize, String)],
    sent: &[usize],
    r: &mut Repair,
    findings: &mut Findings,
    out: &mut CacheOutcome,
) {
    for (i, e) in failures {
        set_outcome(findings, &s.node.base, &[*i], &Outcome::Failed(e.clone()));
    }
    if let Some((_, first)) = failures.first() {
        let what = format!(
            "{} of {} key(s) failed: {first}",
            failures.len(),
            tried.len()
        );
        r.detail = format!("{}; {what}", r.detail);
        if sent.is_empty() {
            r.status = RepairStatus::Failed;
        }
        out.findings
            .push(run.node_error(&s.node.base, &format!("repair failed: {what}")));
    }
}

/// Send the repair; returns the keys sent successfully and the keys that failed, with why.
async fn apply(
    run: &SideRun<'_>,
    s: &NodeState,
    allowed: &[usize],
    mechanism: Mechanism,
) -> (Vec<usize>, Vec<(usize, String)>) {
    let id = run.identity.as_ref().map(|(k, v)| (k.as_str(), v.expose()));
    let pause = Duration::from_millis(1000 / run.opts.rate_per_sec.max(1));
    let results = if mechanism == Mechanism::FullReload {
        match s.node.reload_all(id).await {
            Err(e) => allowed
                .iter()
                .map(|i| (*i, Err(e.message.clone())))
                .collect(),
            Ok(()) => {
                // A full dump never removes deleted configs (`DumpAllProcessor` only adds and
                // updates): drop those per key where the version allows.
                let deleted: Vec<usize> = allowed
                    .iter()
                    .copied()
                    .filter(|i| run.expected[*i].md5.is_empty())
                    .collect();
                let (m2, _) = plan::incremental_mechanism(&s.version, run.grpc.is_some());
                let mut res: Vec<(usize, Result<(), String>)> = allowed
                    .iter()
                    .filter(|i| !deleted.contains(i))
                    .map(|i| (*i, Ok(())))
                    .collect();
                if m2.per_key() {
                    res.extend(
                        per_key(
                            &s.node,
                            &s.version,
                            &deleted,
                            run.expected,
                            m2,
                            id,
                            run.grpc,
                            pause,
                        )
                        .await,
                    );
                } else {
                    // Still sent: the verification says whether the dump dropped them.
                    res.extend(deleted.iter().map(|i| (*i, Ok(()))));
                }
                res
            }
        }
    } else {
        per_key(
            &s.node,
            &s.version,
            allowed,
            run.expected,
            mechanism,
            id,
            run.grpc,
            pause,
        )
        .await
    };
    let mut sent = Vec::new();
    let mut failed = Vec::new();
    for (i, r) in results {
        match r {
            Ok(()) => sent.push(i),
            Err(e) => failed.push((i, e)),
        }
    }
    (sent, failed)
}

/// Re-probe the keys sent on each node until fresh or out of time (reloads are asynchronous).
async fn verify(
    run: &SideRun<'_>,
    live: &[NodeState],
    keys: &[ProbeKey],
    findings: &mut Findings,
    out: &mut CacheOutcome,
    applied: &[(usize, usize, Vec<usize>)],
) {
    let deadline = Instant::now() + Duration::from_secs(run.opts.verify_secs);
    let vias = vias_of(run.expected);
    for (n, ri, sent) in applied {
        let s = &live[*n];
        let r = &mut out.repairs[*ri];
        let subset: Vec<ProbeKey> = sent.iter().map(|i| keys[*i].clone()).collect();
        let sub_vias: Vec<&Via> = sent.iter().map(|i| vias[*i]).collect();
        let still: BTreeSet<usize> = loop {
            match probe_all(&s.node, &subset, &sub_vias).await {
                Ok(idx) => {
                    let still: BTreeSet<usize> = idx.into_iter().map(|j| sent[j]).collect();
                    if still.is_empty() || Instant::now() >= deadline {
                        break still;
                    }
                }
                Err(e) => {
                    let why = format!("verification probe failed: {}", e.message);
                    r.detail = format!("{}; {why}", r.detail);
                    r.status = RepairStatus::Failed;
                    set_outcome(findings, &s.node.base, sent, &Outcome::Failed(why));
                    break BTreeSet::new();
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if r.status == RepairStatus::Failed {
            continue;
        }
        r.repaired = sent.len() - still.len();
        r.still_stale = still.len();
        for i in sent {
            let Some(f) = findings.get_mut(&(s.node.base.clone(), *i)) else {
                continue;
            };
            if !still.contains(i) {
                f.repair = Some(Outcome::Repaired.to_string());
                if run.expected[*i].trust.refusal().is_some() {
                    f.detail = format!("{} (reloaded from a target DB row that disagrees with the source, as fix.allow_untrusted_rows allows)", f.detail);
                }
                continue;
            }
            f.repair = Some(Outcome::StillStale(r.mechanism).to_string());
            let e = &run.expected[*i];
            if let Ok(sv) = served_of(&s.node, e).await {
                f.served_md5 = Some(sv.md5.clone());
                let trap = plan::is_timestamp_trap(&TrapInput {
                    version: &s.version,
                    served_status: sv.status,
                    node_modified_ms: sv.last_modified_ms,
                    db_modified_ms: e.modified_ms,
                    deleted: e.md5.is_empty(),
                });
                if trap {
                    f.code = Code::CacheTimestampTrap;
                    f.detail = format!(
                        "a reload did not take: the node's cached copy (Last-Modified {}) is newer than the DB row's gmt_modified ({}), and Nacos ≥ 2.1 ignores older dumps. Remedy: set gmt_modified = NOW() on the row, then reload (or restart the node)",
                        sv.last_modified_ms.unwrap_or(0) / 1000,
                        e.modified_ms.unwrap_or(0) / 1000
                    );
                }
            }
        }
    }
}
