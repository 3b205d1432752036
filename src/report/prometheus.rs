//! Prometheus text-format metrics, for the scheduled (cron) case: point node_exporter's textfile
//! collector at the report folder (its `node_textfile_mtime_seconds` tells when the run was).

use super::Report;
use std::collections::BTreeMap;
use std::io::Write;

/// A label value: control characters made visible first (the format knows no escape for `\r` or
/// ESC), then backslash, double quote and newline escaped, as the text exposition format asks.
fn label(s: &str) -> String {
    crate::report::escape::visible(s)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metric(
    out: &mut impl Write,
    name: &str,
    help: &str,
    samples: &[(String, usize)],
) -> std::io::Result<()> {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} gauge")?;
    for (labels, v) in samples {
        if labels.is_empty() {
            writeln!(out, "{name} {v}")?;
        } else {
            writeln!(out, "{name}{{{labels}}} {v}")?;
        }
    }
    Ok(())
}

/// Write the metrics.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let gate = label(r.gate.as_deref().unwrap_or("all"));
    metric(
        out,
        "nacos_drift_complete",
        "1 if every configured source was read (0 means exit 3).",
        &[(String::new(), usize::from(r.complete))],
    )?;
    metric(
        out,
        "nacos_drift_exit_code",
        "Exit code of the run: 0 pass, 1 drift, 3 incomplete.",
        &[(format!("gate=\"{gate}\""), usize::from(r.exit_code))],
    )?;
    // Every gate, so a dashboard shows the migration's progress; `all` (no gate selected) is
    // the run's own count, and a selected gate's series is the one of the table (one series each).
    let gates = r.gates().0;
    let mut failing: Vec<(String, usize)> = gates
        .iter()
        .map(|g| (format!("gate=\"{}\"", label(&g.gate)), g.failing))
        .collect();
    if r.gate.is_none() {
        failing.push((format!("gate=\"{gate}\""), r.summary.failing));
    }
    metric(
        out,
        "nacos_drift_failing",
        "Findings at deny level inside the gate, not repaired (every gate; `all` without --gate).",
        &failing,
    )?;
    let passes: Vec<(String, usize)> = gates
        .iter()
        .map(|g| {
            (
                format!("gate=\"{}\"", label(&g.gate)),
                usize::from(g.passes),
            )
        })
        .collect();
    metric(
        out,
        "nacos_drift_gate_passes",
        "1 if the gate passes on this run; 0 if it fails or could not be evaluated.",
        &passes,
    )?;
    let evaluated: Vec<(String, usize)> = gates
        .iter()
        .map(|g| {
            (
                format!("gate=\"{}\"", label(&g.gate)),
                usize::from(g.evaluated),
            )
        })
        .collect();
    metric(
        out,
        "nacos_drift_gate_evaluated",
        "1 if the run could judge the gate (its layers compared and read); 0: not evaluated.",
        &evaluated,
    )?;
    let mut by: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for f in &r.findings {
        *by.entry((
            f.code.as_str().to_owned(),
            f.layer.as_str().to_owned(),
            f.level.as_str().to_owned(),
        ))
        .or_default() += 1;
    }
    let findings: Vec<(String, usize)> = by
        .into_iter()
        .map(|((c, l, v), n)| (format!("code=\"{c}\",layer=\"{l}\",level=\"{v}\""), n))
        .collect();
    metric(
        out,
        "nacos_drift_findings",
        "Findings by code, layer and level (codes with none are absent).",
        &findings,
    )?;
    metric(
        out,
        "nacos_drift_settled",
        "Differences gone at the settling re-check (replication lag, not drift).",
        &[(String::new(), r.summary.settled)],
    )?;
    metric(
        out,
        "nacos_drift_repaired",
        "Findings repaired by --fix and verified.",
        &[(String::new(), r.summary.repaired)],
    )?;
    // Since the last run: absent (not 0) when there was nothing to compare with.
    for (name, help, v) in [
        (
            "nacos_drift_new_findings",
            "Findings not in the last run (or the --since report).",
            r.summary.new,
        ),
        (
            "nacos_drift_still_findings",
            "Findings also in the last run.",
            r.summary.still,
        ),
        (
            "nacos_drift_resolved_findings",
            "Findings of the last run gone in this one (absent when this run is incomplete).",
            r.summary.resolved,
        ),
    ] {
        let samples: Vec<(String, usize)> = v.map(|v| (String::new(), v)).into_iter().collect();
        metric(out, name, help, &samples)?;
    }
    // With `--baseline` only: accepted findings never count in `nacos_drift_failing`.
    if let Some(b) = &r.baseline {
        for (name, help, v) in [
            (
                "nacos_drift_accepted_findings",
                "Findings accepted by the --baseline file (reported, never failing a gate).",
                b.accepted,
            ),
            (
                "nacos_drift_baseline_stale_entries",
                "Baseline entries that matched no finding (baseline-stale).",
                b.stale,
            ),
            (
                "nacos_drift_baseline_expired_entries",
                "Baseline entries past their expiry date (treated as absent).",
                b.expired,
            ),
        ] {
            metric(out, name, help, &[(String::new(), v)])?;
        }
    }
    let mut read = Vec::new();
    for (side, info) in [("source", &r.source), ("target", &r.target)] {
        for (what, v) in [
            ("db_configs", info.db_configs),
            ("api_configs", info.api_configs),
            ("api_services", info.api_services),
            ("api_instances", info.api_instances),
        ] {
            if let Some(v) = v {
                read.push((format!("side=\"{side}\",what=\"{what}\""), v));
            }
        }
    }
    metric(
        out,
        "nacos_drift_items_read",
        "Configs, services and instances read per side.",
        &read,
    )?;
    let probe: Vec<(String, usize)> = r
        .probe
        .iter()
        .map(|(side, p)| {
            (
                format!("side=\"{}\",mode=\"{}\"", label(side), label(&p.mode)),
                p.keys,
            )
        })
        .collect();
    metric(
        out,
        "nacos_drift_probe_keys",
        "Keys probed on each node by the L2 listener probe.",
        &probe,
    )?;
    let mut repairs: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in &r.repairs {
        *repairs
            .entry((p.mechanism.to_string(), p.status.to_string()))
            .or_default() += 1;
    }
    let repairs: Vec<(String, usize)> = repairs
        .into_iter()
        .map(|((m, s), n)| {
            (
                format!("mechanism=\"{}\",status=\"{}\"", label(&m), label(&s)),
                n,
            )
        })
        .collect();
    metric(
        out,
        "nacos_drift_repair_actions",
        "Cache repair actions by mechanism and status.",
        &repairs,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
        // A line break is shown, then its backslash escaped: one line, only `\\` and `\"` escapes.
        assert_eq!(label("x\ny\r\u{1b}"), "x\\\\ny\\\\r\\\\x1b");
    }
}
