//! Self-contained HTML report: one file, inline CSS, no scripts and nothing fetched, so it can be
//! attached to a ticket or opened from a CI artifact as is.
//!
//! Every value is escaped for HTML text after [`visible`]; attributes are constants of this
//! template, and the one `<style>` is a constant too, so no value can open or close an element.

use super::escape::{visible, visible_lines};
use super::{location, side_summary, Report};
use crate::finding::Level;
use std::io::Write;

/// HTML text or attribute value: `&`, `<`, `>`, `"` and `'` as references (OWASP's rule for text
/// and quoted attributes). Callers make the text [`visible`] first.
pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A value from a cluster or a file, shown on one line and escaped.
fn v(s: &str) -> String {
    esc(&visible(s))
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;margin:.6em 0 1.2em}\
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}code,pre{font:12px/1.4 ui-monospace,monospace}\
pre{background:#f7f7f7;padding:.6em;overflow:auto;margin:.3em 0}\
.deny{color:#b00020;font-weight:600}.warn{color:#a15c00}.allow{color:#666}\
.pass{color:#1b7f3b}.fail{color:#b00020}.outside{opacity:.65}";

/// Write the HTML report.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let (verdict, class) = (r.verdict(), if r.exit_code == 0 { "pass" } else { "fail" });
    let gate = r.gate.as_deref().unwrap_or("all findings");
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    )?;
    writeln!(
        out,
        "<title>nacos-drift {} {}: {verdict}</title>\n<style>{STYLE}</style></head><body>",
        v(&r.mode),
        v(&r.run_id)
    )?;
    writeln!(
        out,
        "<h1>nacos-drift {} — gate <code>{}</code> — <span class=\"{class}\">{verdict}</span></h1>",
        v(&r.mode),
        v(gate)
    )?;
    steps(r, out)?;
    writeln!(out, "<ul>")?;
    writeln!(
        out,
        "<li>run <code>{}</code>, nacos-drift {}</li>",
        v(&r.run_id),
        v(&r.tool_version)
    )?;
    for (name, side) in [("source", &r.source), ("target", &r.target)] {
        writeln!(out, "<li>{name}: {}</li>", v(&side_summary(side)))?;
    }
    for c in &r.compared {
        writeln!(out, "<li>compared: {}</li>", v(c))?;
    }
    for c in &r.not_compared {
        writeln!(out, "<li>not compared: {}</li>", v(c))?;
    }
    let s = &r.summary;
    writeln!(
        out,
        "<li>findings: {} ({} deny, {} warn, {} allow; <b>{} failing the gate</b>); {} settled; {} repaired</li></ul>",
        s.total, s.deny, s.warn, s.allow, s.failing, s.settled, s.repaired
    )?;
    if let Some(m) = &r.run_mode {
        writeln!(out, "<p>{}</p>", v(m))?;
    }
    if let Some(line) = super::since_line(r) {
        writeln!(out, "<p>{}</p>", v(&line))?;
    }
    if !s.by_code.is_empty() {
        writeln!(out, "<table><tr><th>code</th><th>count</th></tr>")?;
        for (c, n) in &s.by_code {
            writeln!(out, "<tr><td><code>{}</code></td><td>{n}</td></tr>", v(c))?;
        }
        writeln!(out, "</table>")?;
    }
    if !r.repairs.is_empty() {
        writeln!(out, "<h2>Repairs</h2><table><tr><th>side</th><th>node</th><th>version</th><th>mechanism</th><th>keys</th><th>status</th><th>repaired</th><th>still stale</th><th>detail</th></tr>")?;
        for p in &r.repairs {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                v(p.side.as_str()),
                v(&p.node),
                v(&p.version),
                v(p.mechanism.as_str()),
                p.keys,
                v(p.status.as_str()),
                p.repaired,
                p.still_stale,
                v(&p.detail)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    if r.findings.is_empty() {
        writeln!(out, "<p class=\"pass\">No drift.</p>")?;
    } else {
        writeln!(out, "<h2>Findings</h2><table><tr><th>level</th><th>layer</th><th>code</th><th>where</th><th>detail</th></tr>")?;
        for f in &r.findings {
            let level = match f.level {
                Level::Deny => "deny",
                Level::Warn => "warn",
                Level::Allow => "allow",
            };
            let row_class = if f.in_gate { "" } else { " class=\"outside\"" };
            let mut detail = v(&f.detail);
            if !f.in_gate {
                detail.push_str(" <i>(outside gate)</i>");
            }
            if f.since_last.as_deref() == Some("new") {
                detail.push_str(" <b>(new since the last run)</b>");
            }
            if f.source_digest.is_some() || f.target_digest.is_some() {
                detail.push_str(&format!(
                    "<br><small>digest: source <code>{}</code> target <code>{}</code></small>",
                    v(f.source_digest.as_deref().unwrap_or("-")),
                    v(f.target_digest.as_deref().unwrap_or("-"))
                ));
            }
            if let Some(rep) = &f.repair {
                detail.push_str(&format!("<br><small>repair: {}</small>", v(rep)));
            }
            if let Some(d) = &f.diff {
                detail.push_str(&format!(
                    "<details><summary>diff (secrets masked)</summary><pre>{}</pre></details>",
                    esc(&visible_lines(d))
                ));
            }
            writeln!(
                out,
                "<tr{row_class}><td class=\"{level}\">{level}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{detail}</td></tr>",
                f.layer.as_str(),
                f.code.as_str(),
                v(&location(f))
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</body></html>")?;
    Ok(())
}

/// The migration as steps: every gate's verdict on this run.
fn steps(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "<table><tr><th>step (gate)</th><th>verdict</th><th>failing</th><th>blocking codes</th><th>not judged</th></tr>")?;
    for g in r.gates().0 {
        let selected = if r.gate.as_deref() == Some(g.gate.as_str()) {
            " <i>(exit code)</i>"
        } else {
            ""
        };
        let class = match g.verdict() {
            "pass" => "pass",
            "fail" => "fail",
            _ => "warn",
        };
        writeln!(
            out,
            "<tr><td><code>{}</code>{selected}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v(&g.gate),
            g.verdict(),
            g.failing,
            v(&g.top_codes().join(", ")),
            v(g.reason.as_deref().unwrap_or(""))
        )?;
    }
    writeln!(out, "</table>")
}
