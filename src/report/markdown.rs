//! Markdown report, for CI job summaries.
//!
//! Those summaries are rendered with raw HTML on, so nothing a cluster returned may become
//! markup: table cells are escaped text on one line ([`text`]), names are code spans longer than
//! any backtick run inside ([`code`]), the names in `<summary>` are HTML-escaped, and each diff
//! fence is longer than any backtick run in the diff.

use super::escape::{visible, visible_lines};
use super::{location, Report};
use std::io::Write;

/// Longest run of backticks in `s`.
fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// Inline text inside a table cell or list item, shown as is: on one line, with every character
/// CommonMark or GFM would read as markup escaped (`\`, backtick, `*`, `~`, `|`, `_` at a word
/// edge, `(` right after `]`, which is what makes a link or an image) and `<`, `>`, `&` as entities.
pub fn text(s: &str) -> String {
    let s = visible(s);
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' | '`' | '*' | '~' | '|' => {
                out.push('\\');
                out.push(c);
            }
            // `snake_case` inside a word can neither open nor close emphasis (CommonMark,
            // "left-flanking delimiter run"): only an underscore at a word edge is escaped.
            '_' if !(i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())) =>
            {
                out.push_str("\\_");
            }
            // Links and images need `](`; references need a definition, which no cell can hold.
            '(' if i > 0 && chars[i - 1] == ']' => out.push_str("\\("),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// A code span inside a table cell: delimited by one backtick more than the longest run inside,
/// padded with a space where the content starts or ends with a backtick. A name holding `|`
/// (which GFM would read as a cell border even inside a span) is written as [`text`] instead.
pub fn code(s: &str) -> String {
    let v = visible(s);
    if v.is_empty() || v.contains('|') {
        return text(s);
    }
    let ticks = "`".repeat(longest_backtick_run(&v) + 1);
    let pad = if v.starts_with('`') || v.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{v}{pad}{ticks}")
}

/// A detail line, whose own convention quotes names in backticks: the parts between backticks
/// are [`code`] spans, the rest [`text`]. A backtick inside a name only moves where a span
/// starts; each part is escaped for what it becomes, so nothing turns into markup either way.
pub fn detail(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(&text(part));
        } else if i + 1 == parts.len() {
            // An opening backtick without its closing one: shown as a backtick.
            out.push_str("\\`");
            out.push_str(&text(part));
        } else if part.is_empty() {
            // An empty quoted value (`type: `` → `yaml``) stays visible as two backticks.
            out.push_str("\\`\\`");
        } else {
            out.push_str(&code(part));
        }
    }
    out
}

/// HTML text inside the raw `<details>` block: escaped, and on one line so the block (which a
/// blank line would end) stays whole.
fn html(s: &str) -> String {
    super::html::esc(&visible(s))
}

/// Write the Markdown report.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let verdict = match r.exit_code {
        0 => "✅ pass",
        1 => "❌ drift",
        _ => "⚠️ incomplete",
    };
    writeln!(out, "# nacos-drift {}: {verdict}\n", text(&r.mode))?;
    steps(r, out)?;
    writeln!(
        out,
        "- gate: {}",
        code(r.gate.as_deref().unwrap_or("all findings"))
    )?;
    writeln!(out, "- complete: {}", r.complete)?;
    writeln!(
        out,
        "- compared: {}",
        if r.compared.is_empty() {
            "nothing".to_owned()
        } else {
            text(&r.compared.join(", "))
        }
    )?;
    for n in &r.not_compared {
        writeln!(out, "- not compared: {}", text(n))?;
    }
    let s = &r.summary;
    writeln!(
        out,
        "- findings: {} ({} deny, {} warn, {} allow; {} failing)\n",
        s.total, s.deny, s.warn, s.allow, s.failing
    )?;
    if let Some(line) = super::since_line(r) {
        writeln!(out, "- {}\n", text(&line))?;
    }
    if !s.by_code.is_empty() {
        writeln!(out, "| code | count |\n|---|---|")?;
        for (c, n) in &s.by_code {
            writeln!(out, "| {} | {n} |", code(c))?;
        }
        writeln!(out)?;
    }
    if !r.repairs.is_empty() {
        writeln!(out, "| side | node | mechanism | keys | status | repaired | still stale |\n|---|---|---|---|---|---|---|")?;
        for p in &r.repairs {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                text(p.side.as_str()),
                text(&p.node),
                text(p.mechanism.as_str()),
                p.keys,
                text(p.status.as_str()),
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
            "| {}{}{} | {} | {} | {} | {}{} |",
            f.level.as_str(),
            if f.in_gate { "" } else { " (outside gate)" },
            if f.since_last.as_deref() == Some("new") {
                " 🆕 new"
            } else {
                ""
            },
            f.layer.as_str(),
            code(f.code.as_str()),
            code(&location(f)),
            detail(&f.detail),
            f.repair
                .as_deref()
                .map(|r| format!(" (repair: {})", text(r)))
                .unwrap_or_default()
        )?;
    }
    let diffs: Vec<_> = r.findings.iter().filter(|f| f.diff.is_some()).collect();
    if !diffs.is_empty() {
        writeln!(out, "\n## Content diffs (secret values masked)\n")?;
        for f in diffs {
            let diff = visible_lines(f.diff.as_deref().unwrap_or(""));
            let fence = "`".repeat((longest_backtick_run(&diff) + 1).max(3));
            writeln!(
                out,
                "<details><summary><code>{}</code></summary>\n\n{fence}diff\n{diff}\n{fence}\n</details>\n",
                html(&location(f)),
            )?;
        }
    }
    Ok(())
}

/// The migration as steps: every gate's verdict on this run.
fn steps(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "| step (gate) | verdict | failing | blocking codes | not judged |\n|---|---|---|---|---|"
    )?;
    for g in r.gates().0 {
        let selected = if r.gate.as_deref() == Some(g.gate.as_str()) {
            " (exit code)"
        } else {
            ""
        };
        let verdict = match g.verdict() {
            "pass" => "✅ pass",
            "fail" => "❌ fail",
            _ => "⚠️ not evaluated",
        };
        writeln!(
            out,
            "| {}{selected} | {verdict} | {} | {} | {} |",
            code(&g.gate),
            g.failing,
            text(&g.top_codes().join(", ")),
            text(g.reason.as_deref().unwrap_or(""))
        )?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_inert_text_on_one_line() {
        assert_eq!(
            text("a|b`c`*d*\n<img src=x>&[l](u) snake_case _x_"),
            "a\\|b\\`c\\`\\*d\\*\\\\n&lt;img src=x&gt;&amp;[l]\\(u) snake_case \\_x\\_"
        );
    }

    #[test]
    fn code_spans_outgrow_the_backticks_inside() {
        assert_eq!(code("ops"), "`ops`");
        assert_eq!(code("a``b"), "```a``b```");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b"), "a\\|b");
    }

    #[test]
    fn details_keep_their_quoted_names_as_spans() {
        assert_eq!(detail("namespace `ops` exists"), "namespace `ops` exists");
        // A hostile name with backticks: every part still inert.
        assert_eq!(
            detail("namespace `a`<img src=x>` exists"),
            "namespace `a`&lt;img src=x&gt;\\` exists"
        );
        assert_eq!(detail("type: `` → `x`"), "type: \\`\\` → `x`");
    }
}
