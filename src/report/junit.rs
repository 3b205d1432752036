//! JUnit XML report, for the test panes of CI systems: one test case per finding, grouped by layer.
//!
//! A finding that fails the gate is a `<failure>`, a `source-error` an `<error>`, a finding outside
//! the gate or below `deny` a passing case with its detail in `<system-out>`; each compared layer
//! with nothing to report is one passing case, and each layer not compared a `<skipped>` one, so a
//! clean run shows green tests rather than an empty pane.

use super::escape::{visible, visible_lines};
use super::{location, Report};
use crate::finding::{Code, Finding};
use std::io::Write;

/// XML markup characters as references; callers make the text visible first, which also takes
/// out every character XML 1.0 forbids even as a reference (ESC, NUL, U+FFFE, ...).
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// An attribute value: on one line (a parser would fold a raw line break into a space), control
/// and bidi characters shown as escapes.
fn esc(s: &str) -> String {
    xml(&visible(s))
}

/// Element text: line breaks kept, every other control or bidi character shown as an escape.
fn esc_text(s: &str) -> String {
    xml(&visible_lines(s))
}

enum Outcome {
    Pass,
    Failure,
    Error,
}

fn outcome(f: &Finding) -> Outcome {
    if f.code == Code::SourceError {
        Outcome::Error
    } else if f.failing() {
        Outcome::Failure
    } else {
        Outcome::Pass
    }
}

/// The body shown under a case: detail, digests, repair, diff (already masked).
fn body(f: &Finding) -> String {
    let mut b = f.detail.clone();
    if f.source_digest.is_some() || f.target_digest.is_some() {
        b.push_str(&format!(
            "\nsource digest: {}\ntarget digest: {}",
            f.source_digest.as_deref().unwrap_or("-"),
            f.target_digest.as_deref().unwrap_or("-")
        ));
    }
    if let Some(r) = &f.repair {
        b.push_str(&format!("\nrepair: {r}"));
    }
    if let Some(d) = &f.diff {
        b.push('\n');
        b.push_str(d);
    }
    b
}

/// Write the JUnit XML report.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    // Suites: one per layer named in `compared`/`not_compared`, plus one per layer that has findings.
    let layer_of = |label: &str| label.split_whitespace().next().unwrap_or("").to_owned();
    let mut suites: Vec<String> = Vec::new();
    for l in r
        .compared
        .iter()
        .chain(&r.not_compared)
        .map(|s| layer_of(s))
        .chain(r.findings.iter().map(|f| f.layer.as_str().to_owned()))
    {
        if l.starts_with('L') && !suites.contains(&l) {
            suites.push(l);
        }
    }
    suites.sort();
    let failures = r
        .findings
        .iter()
        .filter(|f| matches!(outcome(f), Outcome::Failure))
        .count();
    let errors = r
        .findings
        .iter()
        .filter(|f| matches!(outcome(f), Outcome::Error))
        .count();
    let mut cases_total = 0;
    let mut body_xml = String::new();
    for layer in &suites {
        let mut cases = String::new();
        let (mut n, mut nf, mut ne, mut ns) = (0, 0, 0, 0);
        let findings: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| f.layer.as_str() == layer)
            .collect();
        for f in &findings {
            n += 1;
            let class = format!("nacos-drift.{}.{}", layer, f.code.as_str());
            cases.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\">\n",
                esc(&class),
                esc(&location(f))
            ));
            let msg = format!("{} ({}): {}", f.code.as_str(), f.level.as_str(), f.detail);
            match outcome(f) {
                Outcome::Failure => {
                    nf += 1;
                    cases.push_str(&format!(
                        "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                        esc(&msg),
                        f.code.as_str(),
                        esc_text(&body(f))
                    ));
                }
                Outcome::Error => {
                    ne += 1;
                    cases.push_str(&format!(
                        "      <error message=\"{}\" type=\"source-error\">{}</error>\n",
                        esc(&msg),
                        esc_text(&body(f))
                    ));
                }
                Outcome::Pass => {
                    let why = if f.repaired() {
                        "repaired and verified"
                    } else if f.accepted {
                        "accepted by the baseline"
                    } else if !f.in_gate {
                        "outside the gate"
                    } else {
                        "below deny level"
                    };
                    cases.push_str(&format!(
                        "      <system-out>{}</system-out>\n",
                        esc_text(&format!("{msg} [{why}]\n{}", body(f)))
                    ));
                }
            }
            cases.push_str("    </testcase>\n");
        }
        for label in r.compared.iter().filter(|c| layer_of(c) == *layer) {
            if findings.is_empty() {
                n += 1;
                cases.push_str(&format!(
                    "    <testcase classname=\"nacos-drift.{layer}\" name=\"{}: no drift\"/>\n",
                    esc(label)
                ));
            }
        }
        for label in r.not_compared.iter().filter(|c| layer_of(c) == *layer) {
            n += 1;
            ns += 1;
            cases.push_str(&format!(
                "    <testcase classname=\"nacos-drift.{layer}\" name=\"{}\">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                esc(layer),
                esc(label)
            ));
        }
        cases_total += n;
        body_xml.push_str(&format!(
            "  <testsuite name=\"nacos-drift {layer}\" tests=\"{n}\" failures=\"{nf}\" errors=\"{ne}\" skipped=\"{ns}\">\n{cases}  </testsuite>\n"
        ));
    }
    let (gate_xml, gn, gf) = gate_suites(r);
    cases_total += gn;
    body_xml.push_str(&gate_xml);
    let failures = failures + gf;
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"nacos-drift {} {}\" tests=\"{cases_total}\" failures=\"{failures}\" errors=\"{errors}\">",
        esc(&r.mode),
        esc(r.gate.as_deref().unwrap_or("all findings"))
    )?;
    out.write_all(body_xml.as_bytes())?;
    writeln!(out, "</testsuites>")?;
    Ok(())
}

/// One suite per gate: a failing case per blocking code, a skipped case when the gate could not
/// be evaluated, a passing one when it passes. Returns the XML, the cases and the failures.
fn gate_suites(r: &Report) -> (String, usize, usize) {
    let (mut xml_out, mut total, mut failures) = (String::new(), 0, 0);
    for g in r.gates().0 {
        let name = esc(&g.gate);
        let mut cases = String::new();
        let (mut n, mut nf, mut ns) = (0, 0, 0);
        for (c, count) in &g.by_code {
            n += 1;
            nf += 1;
            cases.push_str(&format!(
                "    <testcase classname=\"nacos-drift.gate.{name}\" name=\"{}\">\n      <failure message=\"{count} finding(s) block the gate\" type=\"{}\"/>\n    </testcase>\n",
                esc(c),
                esc(c)
            ));
        }
        if let Some(why) = g.reason.as_deref().filter(|_| g.failing == 0) {
            n += 1;
            ns += 1;
            cases.push_str(&format!(
                "    <testcase classname=\"nacos-drift.gate.{name}\" name=\"not evaluated\">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                esc(why)
            ));
        } else if g.passes {
            n += 1;
            cases.push_str(&format!(
                "    <testcase classname=\"nacos-drift.gate.{name}\" name=\"passes\"/>\n"
            ));
        }
        total += n;
        failures += nf;
        xml_out.push_str(&format!(
            "  <testsuite name=\"nacos-drift gate {name}\" tests=\"{n}\" failures=\"{nf}\" errors=\"0\" skipped=\"{ns}\">\n{cases}  </testsuite>\n"
        ));
    }
    (xml_out, total, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_shows_control_characters() {
        assert_eq!(
            esc("a<b>&\"c'\u{1}\n\u{1b}"),
            "a&lt;b&gt;&amp;&quot;c&apos;\\x01\\n\\x1b"
        );
        assert_eq!(esc_text("a\nb\rc\u{fffe}"), "a\nb\\rc\\u{fffe}");
    }
}
