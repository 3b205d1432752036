//! Unit tests of the baseline: parsing with file and line, matching, expiry, writing.

use super::*;
use crate::finding::Layer;

fn finding(code: Code, layer: Layer, ns: &str, name: &str) -> Finding {
    Finding::new(code, layer, ns, "G", name)
}

fn report(findings: Vec<Finding>) -> Report {
    let mut r = Report::new("diff", "t".into(), None, findings);
    r.compared = vec!["L1 (DB ↔ DB)".into(), "L3 (cluster ↔ cluster API)".into()];
    r
}

#[test]
fn dates_are_checked_and_ordered() {
    assert_eq!(parse_date("1970-01-01"), Some(0));
    assert_eq!(parse_date("2026-11-27"), Some(20_784));
    assert_eq!(parse_date("2024-02-29"), Some(19_782));
    for bad in [
        "2023-02-29",
        "2026-13-01",
        "2026-1-01",
        "26-01-01",
        "2026-01-00",
        "x",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn written_baselines_read_back_and_match_their_findings() {
    let mut inst = finding(Code::InstanceExtra, Layer::L3, "prod", "svc");
    inst.instance = Some("10.0.0.1:80@DEFAULT".into());
    // A name a cluster chose: quotes, newlines and a TOML header must stay data.
    let odd = finding(
        Code::ConfigExtra,
        Layer::L1,
        "ns",
        "a\"b\n[[accept]]\ncode = \"x\"",
    );
    let err = finding(Code::SourceError, Layer::L1, "", "");
    let fs = vec![inst.clone(), odd.clone(), odd.clone(), err];
    let (text, _) = render(
        &fs,
        Some("why \"so\""),
        Some("2999-12-31"),
        "report x",
        None,
    )
    .unwrap();
    let b = parse("b.toml", &text).unwrap();
    assert_eq!(b.entries.len(), 2, "{text}");
    assert!(b.entries[0].matches(&inst));
    assert!(b.entries[1].matches(&odd));
    assert!(!b.entries[0].matches(&odd));
    assert_eq!(b.entries[1].reason.as_deref(), Some("why \"so\""));
    assert!(!b.entries[0].expired(parse_date("2999-12-31").unwrap()));
    assert!(b.entries[0].expired(parse_date("3000-01-01").unwrap()));
    assert!(render(&fs, None, Some("2999-02-30"), "x", None).is_err());
}

#[test]
fn problems_name_file_and_line() {
    let text = "# c\n[[accept]]\ncode = \"config-extra\"\nlayer = 3\n\n[[accept]]\nname = \"x\"\n[other]\n";
    let e = parse("f.toml", text).unwrap_err();
    assert!(
        e.iter()
            .any(|p| p.starts_with("f.toml:4: `layer` must be a string")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|p| p.starts_with("f.toml:6: entry has no `code`")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|p| p.starts_with("f.toml:8: unknown key `other`")),
        "{e:?}"
    );
    let e = parse("f.toml", "[[accept]\n").unwrap_err();
    assert!(e[0].starts_with("f.toml:1: TOML syntax error"), "{e:?}");
    // An unquoted TOML date is a date too.
    let b = parse(
        "f.toml",
        "[[accept]]\ncode = \"config-extra\"\nexpires = 2026-12-31\n",
    )
    .unwrap();
    assert_eq!(b.entries[0].expires.as_ref().unwrap().1, "2026-12-31");
}

#[test]
fn apply_accepts_matches_reports_stale_and_skips_expired() {
    let a = finding(Code::ConfigExtra, Layer::L1, "ns", "a");
    let b = finding(Code::ConfigMissing, Layer::L3, "ns", "b");
    let mut r = report(vec![a.clone(), b.clone()]);
    let text = "[[accept]]\ncode = \"config-extra\"\nlayer = \"L1\"\nnamespace = \"ns\"\ngroup = \"G\"\nname = \"a\"\n\
                [[accept]]\ncode = \"config-missing\"\nnamespace = \"ns\"\ngroup = \"G\"\nname = \"b\"\nexpires = \"2000-01-01\"\n\
                [[accept]]\ncode = \"cache-stale\"\nlayer = \"L2\"\nname = \"gone\"\n\
                [[accept]]\ncode = \"config-extra\"\nlayer = \"L1\"\nnamespace = \"ns\"\ngroup = \"G\"\nname = \"gone\"\n";
    let base = parse("b.toml", text).unwrap();
    let settings = Settings::default();
    apply(&mut r, &base, &settings, parse_date("2026-01-01").unwrap());
    let applied = r.baseline.clone().unwrap();
    assert_eq!(
        (applied.accepted, applied.expired, applied.stale),
        (1, 1, 1)
    );
    // L2 was not compared: its entry is not called stale.
    let stale: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.code == Code::BaselineStale)
        .collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].name, "gone");
    assert_eq!(stale[0].level, crate::finding::Level::Warn);
    assert!(stale[0].detail.contains("b.toml:"));
    assert_eq!(r.summary.accepted, Some(1));
    assert_eq!(r.summary.failing, 1, "b still fails, a is accepted");
    assert_eq!(r.summary.total, 3);
    // No gate counts an accepted finding.
    let gates = r.gates();
    let db = gates.0.iter().find(|g| g.gate == "db-synced").unwrap();
    assert_eq!(db.failing, 0);
}

#[test]
fn read_failures_are_never_accepted_and_incremental_runs_call_nothing_stale() {
    let mut err = finding(Code::SourceError, Layer::L1, "", "");
    err.node = None;
    let mut r = report(vec![err]);
    r.run_mode = Some("incremental: 3 key(s) changed since the watermark".into());
    let base = parse(
        "b.toml",
        "[[accept]]\ncode = \"config-extra\"\nname = \"x\"\n",
    )
    .unwrap();
    apply(&mut r, &base, &Settings::default(), 0);
    assert!(r.findings.iter().all(|f| !f.accepted));
    assert_eq!(r.baseline.unwrap().stale, 0);
    assert_eq!(r.exit_code, 3);
}
