//! Every gate judged on one run's findings: the migration as a table of steps, whatever `--gate`
//! was chosen (which still alone decides the exit code).
//!
//! A gate is judged only on what the run compared: a gate whose layers did not run, or whose
//! layers hold a `source-error`, is "not evaluated" (never "pass"); it still fails when findings
//! that were read already block it.

use super::{ProbeInfo, Report};
use crate::finding::{Code, Finding, Layer, Level};
use crate::model::Side;
use crate::settings::Gate;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

/// The gates in migration order (DESIGN.md: replicate, refresh caches, dual registration,
/// cutover, decommission).
pub const ORDER: [Gate; 5] = [
    Gate::DbSynced,
    Gate::CachesFresh,
    Gate::DualRegistered,
    Gate::CutoverReady,
    Gate::DecommissionReady,
];

/// Gate membership: which findings block which gate. This is the one place a new finding code
/// gets its gates (the table in `gates_tests.rs` fails for a code without a decision).
impl Gate {
    /// Whether a finding with this code, layer and side counts for the gate.
    #[must_use]
    pub fn includes(self, code: Code, layer: Layer, side: Option<Side>) -> bool {
        use Code::*;
        if code == SourceError {
            return true;
        }
        match self {
            Gate::DbSynced => layer == Layer::L1,
            Gate::CachesFresh => layer == Layer::L2 && side != Some(Side::Source),
            Gate::DualRegistered => matches!(code, ServiceMissing | InstanceMissing),
            Gate::CutoverReady => {
                Gate::DbSynced.includes(code, layer, side)
                    || Gate::CachesFresh.includes(code, layer, side)
                    || Gate::DualRegistered.includes(code, layer, side)
                    // Applications on the target holding old configs (L4).
                    || (code == ClientStale && side == Some(Side::Target))
                    || (layer == Layer::L3
                        && matches!(
                            code,
                            NamespaceMissing
                                | ConfigMissing
                                | ConfigContentDiffers
                                | ConfigMetaDiffers
                                | InstanceDiffers
                                | ServiceMetaDiffers
                                // A synced copy of a dead instance: target consumers call it.
                                | InstanceOrphaned
                        ))
                    // An application whose account, role or permission is missing (or whose
                    // password differs) on the target cannot log in after cutover, whichever
                    // layer saw it.
                    || matches!(
                        code,
                        UserMissing | UserPasswordDiffers | RoleMissing | PermissionMissing
                    )
            }
            Gate::DecommissionReady => {
                matches!(
                    code,
                    NamespaceMissing
                        | ConfigMissing
                        | ServiceMissing
                        | InstanceMissing
                        | ClientConnected
                        | ClientOnSource
                        | UserMissing
                        | RoleMissing
                        | PermissionMissing
                )
            }
        }
    }
}

/// How many codes the step tables name as blocking a gate.
pub const TOP_CODES: usize = 3;

/// One gate's verdict on a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    /// Gate name.
    #[serde(skip)]
    pub gate: String,
    /// Whether a verdict was reached (pass or fail); false: not evaluated, see `reason`.
    pub evaluated: bool,
    /// Whether the gate passes: evaluated and nothing failing.
    pub passes: bool,
    /// Findings at `deny` level inside the gate, not repaired (`source-error`s excluded: they
    /// make the gate not evaluated instead).
    pub failing: usize,
    /// The failing findings per code.
    pub by_code: BTreeMap<String, usize>,
    /// What could not be judged, when something could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl GateResult {
    /// `pass`, `fail` or `not evaluated`.
    #[must_use]
    pub fn verdict(&self) -> &'static str {
        if self.failing > 0 {
            "fail"
        } else if self.passes {
            "pass"
        } else {
            "not evaluated"
        }
    }

    /// The codes blocking the gate, most findings first, at most [`TOP_CODES`], as `code (n)`.
    #[must_use]
    pub fn top_codes(&self) -> Vec<String> {
        let mut v: Vec<(&String, &usize)> = self.by_code.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(TOP_CODES)
            .map(|(c, n)| format!("{c} ({n})"))
            .collect()
    }
}

/// Every gate's result, in [`ORDER`]; serialised as a JSON object keyed by gate name, in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates(pub Vec<GateResult>);

impl Serialize for Gates {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for g in &self.0 {
            m.serialize_entry(&g.gate, g)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Gates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut m: BTreeMap<String, GateResult> = BTreeMap::deserialize(d)?;
        let mut out = Vec::new();
        // Known gates in migration order, then any a newer version added.
        for g in ORDER {
            if let Some(mut r) = m.remove(g.name()) {
                r.gate = g.name().to_owned();
                out.push(r);
            }
        }
        for (name, mut r) in m {
            r.gate = name;
            out.push(r);
        }
        Ok(Gates(out))
    }
}

/// What of a run a gate needs before it can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A layer that ran to its end.
    Layer(Layer),
    /// L2 with at least one target node probed (source caches are outside every gate).
    TargetProbe,
    /// The SDK connections of the source nodes (only read for `--gate decommission-ready`).
    Clients,
}

fn needs(g: Gate) -> &'static [Need] {
    match g {
        Gate::DbSynced => &[Need::Layer(Layer::L1)],
        Gate::CachesFresh => &[Need::TargetProbe],
        Gate::DualRegistered => &[Need::Layer(Layer::L3)],
        // Configs are equal through the API (L3) whether or not the DBs can be reached: a managed
        // target usually has none, so L1 is not required here; its findings and its read errors
        // still count when it ran (see `error_layers`).
        Gate::CutoverReady => &[Need::TargetProbe, Need::Layer(Layer::L3)],
        Gate::DecommissionReady => &[Need::Layer(Layer::L3), Need::Clients],
    }
}

/// What a run compared, as the gates need it.
#[derive(Debug, Clone, Copy)]
pub struct Coverage<'a> {
    /// The report's `compared` lines (`L1 (…)`, `L2 (…)`, `L3 (…)`, `connected clients (…)`).
    pub compared: &'a [String],
    /// The L2 probe per side.
    pub probe: &'a BTreeMap<String, ProbeInfo>,
}

impl Coverage<'_> {
    fn has_layer(&self, l: Layer) -> bool {
        self.compared
            .iter()
            .any(|c| c.split_whitespace().next().is_some_and(|w| w == l.as_str()))
    }

    /// Why `need` was not met, or `None` when it was.
    fn missing(&self, need: Need) -> Option<String> {
        match need {
            Need::Layer(l) if !self.has_layer(l) => Some(format!("{} not compared", l.as_str())),
            Need::Layer(_) => None,
            Need::TargetProbe if !self.has_layer(Layer::L2) => Some("L2 not compared".into()),
            Need::TargetProbe if self.probe.get("target").is_none_or(|p| p.nodes == 0) => {
                Some("no target node's cache was probed (L2)".into())
            }
            Need::TargetProbe => None,
            Need::Clients
                if !self
                    .compared
                    .iter()
                    .any(|c| c.starts_with("connected clients")) =>
            {
                Some("connected clients not checked (only with --gate decommission-ready)".into())
            }
            Need::Clients => None,
        }
    }
}

/// The layers whose read errors leave a gate unjudged: those it needs, for `cutover-ready`
/// also L1 when it ran (a DB that failed may hide a missing row), and L4 for the gates holding an
/// L4 code (`client-stale` on the target, `client-on-source`) when it ran.
fn error_layers(g: Gate) -> Vec<Layer> {
    let mut layers: Vec<Layer> = needs(g).iter().map(|n| need_layer(*n)).collect();
    if g == Gate::CutoverReady {
        layers.push(Layer::L1);
    }
    if matches!(g, Gate::CutoverReady | Gate::DecommissionReady) {
        layers.push(Layer::L4);
    }
    layers
}

fn need_layer(n: Need) -> Layer {
    match n {
        Need::Layer(l) => l,
        Need::TargetProbe => Layer::L2,
        Need::Clients => Layer::L3,
    }
}

/// Judge one gate.
#[must_use]
pub fn evaluate_one(g: Gate, findings: &[Finding], cov: Coverage<'_>) -> GateResult {
    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    let mut failing = 0;
    let mut errors = 0;
    let layers = error_layers(g);
    for f in findings {
        if f.code == Code::SourceError {
            // A read failure in a layer the gate needs: what it would have shown is unknown.
            if layers.contains(&f.layer) {
                errors += 1;
            }
            continue;
        }
        if f.level == Level::Deny
            && !f.repaired()
            && !f.accepted
            && g.includes(f.code, f.layer, f.side)
        {
            failing += 1;
            *by_code.entry(f.code.as_str().to_owned()).or_default() += 1;
        }
    }
    let mut gaps: Vec<String> = needs(g).iter().filter_map(|n| cov.missing(*n)).collect();
    if errors > 0 {
        gaps.push(format!(
            "{errors} source-error finding(s) in {}",
            layers
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("/")
        ));
    }
    gaps.dedup();
    let reason = (!gaps.is_empty()).then(|| gaps.join("; "));
    GateResult {
        gate: g.name().to_owned(),
        evaluated: failing > 0 || reason.is_none(),
        passes: failing == 0 && reason.is_none(),
        failing,
        by_code,
        reason,
    }
}

/// Judge every gate on the same findings.
#[must_use]
pub fn evaluate(findings: &[Finding], cov: Coverage<'_>) -> Gates {
    Gates(
        ORDER
            .into_iter()
            .map(|g| evaluate_one(g, findings, cov))
            .collect(),
    )
}

impl Report {
    /// Why the selected gate could not be judged, when it could not (and nothing fails it).
    #[must_use]
    pub fn selected_gate_unjudged(&self) -> Option<String> {
        let name = self.gate.as_deref()?;
        let g = ORDER.into_iter().find(|g| g.name() == name)?;
        let r = evaluate_one(
            g,
            &self.findings,
            Coverage {
                compared: &self.compared,
                probe: &self.probe,
            },
        );
        (!r.evaluated).then(|| r.reason.unwrap_or_default())
    }

    /// Settle the verdict once the report is whole: a selected gate that could not be judged is
    /// named under "not compared" and the run exits 3, never 0.
    pub fn settle_gate(&mut self) {
        if let Some(why) = self.selected_gate_unjudged() {
            let name = self.gate.clone().unwrap_or_default();
            self.not_compared.push(format!(
                "gate {name}: not evaluated ({why}); a gate that cannot be judged does not pass"
            ));
        }
        self.exit_code = self.status().code();
    }

    /// Every gate judged on this report's findings and coverage.
    #[must_use]
    pub fn gates(&self) -> Gates {
        evaluate(
            &self.findings,
            Coverage {
                compared: &self.compared,
                probe: &self.probe,
            },
        )
    }
}

#[cfg(test)]
#[path = "gates_tests.rs"]
mod tests;
