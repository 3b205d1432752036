//! Markdown report, for CI job summaries.

use super::{location, Report};
use std::io::Write;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Write the Markdown report.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let verdict = match r.exit_code {
        0 => "✅ pass",
        1 => "❌ drift",
        _ => "⚠️ incomplete",
    };
    writeln!(out, "# nacos-drift {}: {verdict}\n", r.mode)?;
    writeln!(
        out,
        "- gate: `{}`",
        r.gate.as_deref().unwrap_or("all findings")
    )?;
    writeln!(out, "- complete: {}", r.complete)?;
    writeln!(
        out,
        "- compared: {}",
        if r.compared.is_empty() {
            "nothing".to_owned()
        } else {
            r.compared.join(", ")
        }
    )?;
    for n in &r.not_compared {
        writeln!(out, "- not compared: {n}")?;
    }
    let s = &r.summary;
    writeln!(
        out,
        "- findings: {} ({} deny, {} warn, {} allow; {} failing)\n",
        s.total, s.deny, s.warn, s.allow, s.failing
    )?;
    if !s.by_code.is_empty() {
        writeln!(out, "| code | count |\n|---|---|")?;
        for (c, n) in &s.by_code {
            writeln!(out, "| `{c}` | {n} |")?;
        }
        writeln!(out)?;
    }
    if !r.repairs.is_empty() {
        writeln!(out, "| side | node | mechanism | keys | status | repaired | still stale |\n|---|---|---|---|---|---|---|")?;
        for p in &r.repairs {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                p.side,
                cell(&p.node),
                p.mechanism,
                p.keys,
                p.status,
                p.repaired,
                p.still_stale
            )?;
        }
        writeln!(out)?;
    }
    if r.findings.is_empty() {
        writeln!(out, "No drift.")?;
        return Ok(());
    }
    writeln!(
        out,
        "| level | layer | code | where | detail |\n|---|---|---|---|---|"
    )?;
    for f in &r.findings {
        writeln!(
            out,
            "| {}{} | {} | `{}` | `{}` | {}{} |",
            f.level.as_str(),
            if f.in_gate { "" } else { " (outside gate)" },
            f.layer.as_str(),
            f.code,
            cell(&location(f)),
            cell(&f.detail),
            f.repair
                .as_deref()
                .map(|r| format!(" (repair: {})", cell(r)))
                .unwrap_or_default()
        )?;
    }
    let diffs: Vec<_> = r.findings.iter().filter(|f| f.diff.is_some()).collect();
    if !diffs.is_empty() {
        writeln!(out, "\n## Content diffs (secret values masked)\n")?;
        for f in diffs {
            writeln!(
                out,
                "<details><summary><code>{}</code></summary>\n\n```diff\n{}\n```\n</details>\n",
                location(f),
                f.diff.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}
