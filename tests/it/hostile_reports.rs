//! Issue 9: the hostile fixture (`fixtures/hostile/`, names, metadata and content with CR/LF, ESC,
//! `</script>`, `<img onerror>`, backticks and fences, quotes, `=cmd|…`, non-ASCII text and an RTL
//! override) rendered through every report format, each output read by a real parser of its format.

use crate::support::{root, run, tempdir};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const SOURCE: &str = "fixtures/hostile/source.json";
const TARGET: &str = "fixtures/hostile/target.json";
const FORMATS: [&str; 7] = [
    "text",
    "json",
    "csv",
    "markdown",
    "junit",
    "html",
    "prometheus",
];

/// One run of `diff` over the hostile pair: its folder, stdout, stderr and JSON report.
struct Hostile {
    out: PathBuf,
    stdout: String,
    stderr: String,
    json: serde_json::Value,
}

impl Hostile {
    fn run() -> Hostile {
        let out = tempdir("hostile");
        let mut args = vec!["diff", SOURCE, TARGET, "--out", out.to_str().unwrap()];
        for f in FORMATS {
            args.extend(["--format", f]);
        }
        let o = run(&args, &[]);
        // The target snapshot carries a capture error: incomplete, exit 3.
        assert_eq!(o.status.code(), Some(3), "{o:?}");
        let json = serde_json::from_str(&read(&out, "report.json")).unwrap();
        Hostile {
            out,
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
            json,
        }
    }

    fn file(&self, name: &str) -> String {
        read(&self.out, name)
    }

    fn findings(&self) -> &Vec<serde_json::Value> {
        self.json["findings"].as_array().unwrap()
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The demo report of a format, for the set of elements and attributes the template uses.
fn demo(name: &str) -> String {
    std::fs::read_to_string(root().join("fixtures/demo/expected").join(name)).unwrap()
}

/// `(element names, "element attribute=value")` of an HTML document, as an HTML5 parser builds it.
fn html_shape(html: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let doc = scraper::Html::parse_document(html);
    let (mut elements, mut attrs) = (BTreeSet::new(), BTreeSet::new());
    for node in doc.root_element().descendants() {
        if let Some(e) = node.value().as_element() {
            elements.insert(e.name().to_owned());
            for (k, v) in e.attrs() {
                attrs.insert(format!("{} {k}={v}", e.name()));
            }
        }
    }
    (elements, attrs)
}

/// Markdown rendered as a CI summary would: GFM tables and strikethrough, raw HTML passed through.
fn render_markdown(md: &str) -> String {
    use pulldown_cmark::{html, Options, Parser};
    let mut out = String::new();
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    html::push_html(&mut out, Parser::new_ext(md, opts));
    out
}

/// The characters the hostile fixture plants (besides `\n`, which text formats use as line ends).
fn planted(c: char) -> bool {
    c != '\n' && nacos_drift::report::escape::needs_escape(c)
}

#[test]
fn hostile_fixture_findings_carry_the_hostile_names_unchanged_in_json() {
    let h = Hostile::run();
    let names: Vec<&str> = h
        .findings()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    // JSON is the data contract: names round-trip exactly (serde escapes them).
    assert!(names.contains(&"a.yaml\nDENY  L1 config-missing forged/FAKE/injected"));
    assert!(names.contains(&"=cmd|' /C calc'!A0"));
    assert!(names
        .iter()
        .any(|n| n.contains("\u{1b}[2J") && n.contains('\u{202e}')));
    assert_eq!(h.findings().len(), 24, "{}", h.stdout);
}

#[test]
fn hostile_text_report_shows_control_characters_and_one_header_per_finding() {
    let h = Hostile::run();
    let txt = h.file("report.txt");
    assert_eq!(h.stdout, txt, "the terminal summary is the text report");
    for (what, s) in [("report.txt", &txt), ("stderr", &h.stderr)] {
        let raw: Vec<char> = s.chars().filter(|c| planted(*c)).collect();
        assert!(raw.is_empty(), "{what} carries raw {raw:?}:\n{s}");
    }
    // A finding header: `LEVEL LAYER code where`, at the start of a line.
    let header = |l: &str| {
        let mut w = l.split(' ').filter(|w| !w.is_empty());
        matches!(w.next(), Some("DENY" | "WARN" | "ALLOW" | "FIXED"))
            && matches!(w.next(), Some("L1" | "L2" | "L3"))
    };
    let headers: Vec<&str> = txt.lines().filter(|l| header(l)).collect();
    assert_eq!(headers.len(), h.findings().len(), "{txt}");
    // The planted newline is shown, not obeyed: the forged finding is inside its real one.
    assert!(txt.contains(
        "DENY  L1 config-missing public/DEFAULT_GROUP/a.yaml\\nDENY  L1 config-missing forged/FAKE/injected"
    ));
    assert!(txt.contains("\\x1b[2J") && txt.contains("\\u{202e}") && txt.contains("配置"));
    // The secret in the hostile content is masked even there.
    assert!(!txt.contains("S3cr3t-hostile") && !txt.contains("S3cr3t-meta"));
}

#[test]
fn hostile_html_report_has_only_the_template_elements_and_attributes() {
    let h = Hostile::run();
    let html = h.file("report.html");
    let (elements, attrs) = html_shape(&html);
    let (demo_elements, demo_attrs) = html_shape(&demo("report.html"));
    assert!(
        elements.is_subset(&demo_elements),
        "elements not in the template: {:?}",
        elements.difference(&demo_elements).collect::<Vec<_>>()
    );
    assert!(
        attrs.is_subset(&demo_attrs),
        "attributes not in the template: {:?}",
        attrs.difference(&demo_attrs).collect::<Vec<_>>()
    );
    let doc = scraper::Html::parse_document(&html);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("script")).count(), 0);
    assert_eq!(doc.select(&sel("style")).count(), 1);
    // One row per finding (plus the header) in the findings table, which is the last one.
    let table = doc.select(&sel("table")).next_back().unwrap();
    assert_eq!(
        table.select(&sel("tr")).count(),
        h.findings().len() + 1,
        "{html}"
    );
    // The markup in names arrives as text, shown: escaped, not dropped.
    let text: String = doc.root_element().text().collect();
    assert!(text.contains("</script><img src=x onerror=alert(1)>.yaml"));
    assert!(text.contains("\\x1b[2J") && text.contains("\\u{202e}"));
    assert!(
        !text.chars().any(planted),
        "raw control characters in the text"
    );
}

#[test]
fn hostile_markdown_renders_to_template_elements_and_one_row_per_finding() {
    let h = Hostile::run();
    let rendered = render_markdown(&h.file("report.md"));
    let (elements, attrs) = html_shape(&rendered);
    let (demo_elements, demo_attrs) = html_shape(&render_markdown(&demo("report.md")));
    assert!(
        elements.is_subset(&demo_elements),
        "elements not in the template: {:?}\n{rendered}",
        elements.difference(&demo_elements).collect::<Vec<_>>()
    );
    assert!(
        attrs.is_subset(&demo_attrs),
        "attributes not in the template: {:?}\n{rendered}",
        attrs.difference(&demo_attrs).collect::<Vec<_>>()
    );
    let doc = scraper::Html::parse_document(&rendered);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let table = doc.select(&sel("table")).next_back().unwrap();
    let rows: Vec<_> = table.select(&sel("tbody tr")).collect();
    assert_eq!(rows.len(), h.findings().len(), "{rendered}");
    // Every row has the five columns, and the where column shows the name as written.
    for r in &rows {
        assert_eq!(r.select(&sel("td")).count(), 5, "{}", r.html());
    }
    let wheres: Vec<String> = rows
        .iter()
        .map(|r| r.select(&sel("td")).nth(3).unwrap().text().collect())
        .collect();
    assert!(
        wheres.contains(&"prod/G`` ```/</script><img src=x onerror=alert(1)>.yaml".to_owned()),
        "{wheres:#?}"
    );
    assert!(wheres.contains(&"public/DEFAULT_GROUP/=cmd|' /C calc'!A0".to_owned()));
    // Each diff stays inside its fence: one code block per content diff, none of it markup.
    let diffs = h
        .findings()
        .iter()
        .filter(|f| f["diff"].is_string())
        .count();
    assert_eq!(doc.select(&sel("pre > code")).count(), diffs);
    assert_eq!(doc.select(&sel("details")).count(), diffs);
    let summary: String = doc
        .select(&sel("summary code"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(
        summary,
        "prod/G`` ```/</script><img src=x onerror=alert(1)>.yaml"
    );
}

/// Whether XML 1.0 allows `c` at all (production `Char`), escaped or not.
fn xml10_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[test]
fn hostile_junit_parses_as_xml_with_one_case_per_finding() {
    use quick_xml::events::Event;
    let h = Hostile::run();
    let xml = h.file("report.junit.xml");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut stack: Vec<String> = Vec::new();
    let mut failing_cases = 0;
    let mut values = String::new();
    loop {
        let ev = reader.read_event();
        match &ev {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                for a in e.attributes() {
                    let a = a.expect("attribute");
                    values.push_str(
                        &a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .expect("attribute value"),
                    );
                }
                let name = e.name().into_inner().to_owned();
                // One case per finding in the layer suites; the gate suites (one per gate)
                // count blocking codes, not findings.
                let in_gate_suite = xml[..reader.buffer_position() as usize]
                    .rfind("<testsuite name=\"nacos-drift gate ")
                    > xml[..reader.buffer_position() as usize]
                        .rfind("<testsuite name=\"nacos-drift L");
                if matches!(name.as_str(), "failure" | "error") && !in_gate_suite {
                    failing_cases += 1;
                }
                if matches!(ev, Ok(Event::Start(_))) {
                    stack.push(name);
                }
            }
            Ok(Event::End(e)) => {
                let name = e.name().into_inner().to_owned();
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "unbalanced");
            }
            Ok(Event::Text(t)) => values.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) if r.is_char_ref() => {
                values.push(r.resolve_char_ref().unwrap().unwrap());
            }
            Ok(Event::Eof) => break,
            Err(e) => panic!("report.junit.xml does not parse: {e}\n{xml}"),
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(failing_cases, h.findings().len(), "{xml}");
    let bad: Vec<char> = xml
        .chars()
        .chain(values.chars())
        .filter(|c| !xml10_char(*c))
        .collect();
    assert!(bad.is_empty(), "characters XML 1.0 forbids: {bad:?}");
    assert!(
        !values.chars().any(|c| c != '\n' && planted(c)),
        "raw control characters"
    );
    assert!(
        values.contains("</script><img src=x onerror=alert(1)>") && values.contains("\\x1b[2J")
    );
}

#[test]
fn hostile_csv_has_one_record_per_finding_and_no_formula_cell() {
    let h = Hostile::run();
    let mut reader = csv::Reader::from_path(h.out.join("report.csv")).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), h.findings().len());
    for r in &records {
        for cell in r {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula cell {cell:?} in {r:?}"
            );
        }
    }
    let names: Vec<&str> = records.iter().map(|r| &r[7]).collect();
    // Neutralised by a leading `'`, content kept.
    assert!(names.contains(&"'=cmd|' /C calc'!A0"), "{names:?}");
    assert!(names.contains(&"'@SUM(1+1)") && names.contains(&"'-1+1"));
    let groups: Vec<&str> = records.iter().map(|r| &r[6]).collect();
    assert!(groups.contains(&"'\tTAB") && groups.contains(&"'+cmd"));
}

#[test]
fn hostile_prometheus_lines_all_parse() {
    let h = Hostile::run();
    let prom = h.file("metrics.prom");
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut samples = 0;
    for line in prom.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            let (kind, name) = (w.next().unwrap(), w.next().unwrap_or(""));
            assert!(matches!(kind, "HELP" | "TYPE") && name_ok(name), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "value in {line}");
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap_or_else(|| panic!("{line}"))),
            None => (series, ""),
        };
        assert!(name_ok(name), "{line}");
        // label="value" pairs: only \\, \" and \n escapes inside values.
        let mut chars = labels.chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            assert!(name_ok(&key), "label name in {line}");
            assert_eq!(chars.next(), Some('"'), "{line}");
            loop {
                match chars.next() {
                    Some('\\') => assert!(matches!(chars.next(), Some('\\' | '"' | 'n')), "{line}"),
                    Some('"') => break,
                    Some(c) => assert!(!c.is_control(), "{line}"),
                    None => panic!("unterminated label value in {line}"),
                }
            }
            match chars.next() {
                Some(',') | None => {}
                other => panic!("{other:?} after a label in {line}"),
            }
        }
        samples += 1;
    }
    assert!(samples > 0, "{prom}");
}
