//! Terminal report: a summary readable without colour, then one block per finding.
//!
//! Every value that came from a cluster or a file goes through [`visible`]: one finding is one
//! header line, whatever its names contain, and no control sequence reaches the terminal.

use super::escape::visible;
use super::{location, Report};
use std::io::Write;

/// Write the human summary.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let verdict = r.verdict();
    let gate = visible(r.gate.as_deref().unwrap_or("all findings"));
    writeln!(
        out,
        "nacos-drift {} — {} — gate: {gate} — {verdict}",
        r.tool_version, r.mode
    )?;
    steps(&r.gates(), r.gate.as_deref(), out)?;
    for (name, side) in [("source", &r.source), ("target", &r.target)] {
        writeln!(out, "  {name}: {}", visible(&super::side_summary(side)))?;
        if let Some(t) = tls_summary(side) {
            writeln!(out, "  {name} TLS: {t}")?;
        }
    }
    writeln!(
        out,
        "  compared: {}",
        if r.compared.is_empty() {
            "nothing".to_owned()
        } else {
            visible(&r.compared.join(", ")).into_owned()
        }
    )?;
    for n in &r.not_compared {
        writeln!(out, "  not compared: {}", visible(n))?;
    }
    if !r.complete {
        writeln!(
            out,
            "  INCOMPLETE: some sources could not be read; see source-error findings below"
        )?;
    }
    let s = &r.summary;
    writeln!(
        out,
        "  findings: {} ({} deny, {} warn, {} allow; {} failing the gate){}{}",
        s.total,
        s.deny,
        s.warn,
        s.allow,
        s.failing,
        if s.settled > 0 {
            format!("; {} settled on re-check", s.settled)
        } else {
            String::new()
        },
        if s.repaired > 0 {
            format!("; {} repaired and verified", s.repaired)
        } else {
            String::new()
        }
    )?;
    for (code, n) in &s.by_code {
        writeln!(out, "    {code:<24} {n}")?;
    }
    if let Some(line) = super::since_line(r) {
        writeln!(out, "  {}", visible(&line))?;
    }
    if let Some(m) = &r.run_mode {
        writeln!(out, "  run: {}", visible(m))?;
    }
    for (side, p) in &r.probe {
        writeln!(
            out,
            "  L2 probe ({}, {}): {} key(s) on each of {} node(s){}",
            visible(side),
            visible(&p.mode),
            p.keys,
            p.nodes,
            if p.not_probed.is_empty() {
                String::new()
            } else {
                format!("; not probed: {}", visible(&p.not_probed.join(", ")))
            }
        )?;
    }
    for rep in &r.repairs {
        writeln!(
            out,
            "  repair {} {} (Nacos {}): {} on {} key(s): {}; {} repaired, {} still stale — {}",
            visible(rep.side.as_str()),
            visible(&rep.node),
            visible(&rep.version),
            visible(rep.mechanism.as_str()),
            rep.keys,
            visible(rep.status.as_str()),
            rep.repaired,
            rep.still_stale,
            visible(&rep.detail)
        )?;
    }
    if r.findings.is_empty() {
        writeln!(out, "\nNo drift.")?;
        return Ok(());
    }
    writeln!(out)?;
    for f in &r.findings {
        let mut gate_note = if f.in_gate { "" } else { " (outside gate)" }.to_owned();
        if f.since_last.as_deref() == Some("new") {
            gate_note.push_str(" [NEW]");
        }
        writeln!(
            out,
            "{:<5} {} {} {}{gate_note}",
            // A verified repair no longer fails the gate: say so where the eye lands first.
            if f.repaired() {
                "FIXED".to_owned()
            } else {
                f.level.as_str().to_uppercase()
            },
            f.layer.as_str(),
            f.code,
            visible(&location(f))
        )?;
        if let Some(side) = &f.side {
            writeln!(out, "      side: {}", visible(side.as_str()))?;
        }
        writeln!(out, "      {}", visible(&f.detail))?;
        match (
            f.source_digest.as_deref().map(visible),
            f.target_digest.as_deref().map(visible),
        ) {
            (Some(s), Some(t)) => writeln!(out, "      md5/digest: source {s}  target {t}")?,
            (Some(s), None) => writeln!(out, "      md5/digest: source {s}")?,
            (None, Some(t)) => writeln!(out, "      md5/digest: target {t}")?,
            (None, None) => {}
        }
        if f.expected_md5.is_some() || f.served_md5.is_some() {
            let show = |m: &Option<String>| match m.as_deref() {
                None => "?".to_owned(),
                Some("") => "(none)".to_owned(),
                Some(x) => visible(x).into_owned(),
            };
            writeln!(
                out,
                "      md5: expected {}  served {}",
                show(&f.expected_md5),
                show(&f.served_md5)
            )?;
        }
        if let Some(rep) = &f.repair {
            writeln!(out, "      repair: {}", visible(rep))?;
        }
        if let Some(a) = f.age_secs {
            writeln!(out, "      source changed {a} s ago")?;
        }
        if let Some(d) = &f.diff {
            // Split on `\n` only: a bare `\r` inside a line is shown, not taken as a line end.
            for line in d.strip_suffix('\n').unwrap_or(d).split('\n') {
                writeln!(out, "      | {}", visible(line))?;
            }
        }
    }
    Ok(())
}

/// What the run knows of a side's TLS: whether its `https://` nodes' certificates were checked
/// (said loudly when they were not) and whether its DB connection was encrypted; `None` when
/// there is nothing to say (no `https://` node and no DB read, as from snapshot files).
fn tls_summary(side: &super::SideInfo) -> Option<String> {
    let mut parts = Vec::new();
    match side.tls_verify {
        Some(true) => parts.push("certificate verification on for https nodes"),
        Some(false) => parts
            .push("CERTIFICATE VERIFICATION OFF for https nodes (nacos_tls_insecure_skip_verify)"),
        None => {}
    }
    match side.db_tls {
        Some(true) => parts.push("DB connection encrypted"),
        Some(false) => parts.push("DB connection NOT encrypted (plain text)"),
        None => {}
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The migration as steps: every gate's verdict on this run (the selected one marked `*`: it
/// decides the exit code).
pub fn steps(
    gates: &super::gates::Gates,
    selected: Option<&str>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(out, "  steps (* = the gate deciding the exit code):")?;
    for g in &gates.0 {
        let mark = if selected == Some(g.gate.as_str()) {
            '*'
        } else {
            ' '
        };
        let mut line = format!(
            "   {mark}{:<20} {:<14} {:>4} failing",
            visible(&g.gate),
            g.verdict().to_uppercase(),
            g.failing
        );
        let top = g.top_codes();
        if !top.is_empty() {
            line.push_str(&format!("  {}", top.join(", ")));
        }
        if let Some(why) = &g.reason {
            line.push_str(&format!("  ({})", visible(why)));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Report, SideInfo};

    fn text(r: &Report) -> String {
        let mut out = Vec::new();
        write(r, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_summary_says_per_side_what_tls_did_and_nothing_without_tls() {
        let mut r = Report::new("audit", "run".into(), None, Vec::new());
        let plain = text(&r);
        assert!(!plain.contains("TLS"), "{plain}");
        r.source = SideInfo {
            db_tls: Some(false),
            ..SideInfo::default()
        };
        r.target = SideInfo {
            tls_verify: Some(false),
            db_tls: Some(true),
            ..SideInfo::default()
        };
        let t = text(&r);
        assert!(
            t.contains("\n  source TLS: DB connection NOT encrypted (plain text)\n"),
            "{t}"
        );
        assert!(
            t.contains("\n  target TLS: CERTIFICATE VERIFICATION OFF for https nodes (nacos_tls_insecure_skip_verify); DB connection encrypted\n"),
            "{t}"
        );
        r.target.tls_verify = Some(true);
        assert!(
            text(&r).contains("target TLS: certificate verification on for https nodes; DB"),
            "{t}"
        );
    }
}
