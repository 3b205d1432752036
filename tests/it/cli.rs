//! Offline CLI tests: exit codes, golden reports of the bundled demo, config errors, secrets.

use crate::support::{assert_golden, root, run, tempdir, text};

const DEMO_SOURCE: &str = "fixtures/demo/source.json";
const DEMO_TARGET: &str = "fixtures/demo/target.json";

#[test]
fn demo_reports_match_golden_files_in_every_format() {
    let out = tempdir("demo");
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--format",
            "text",
            "--format",
            "json",
            "--format",
            "csv",
            "--format",
            "markdown",
            "--format",
            "junit",
            "--format",
            "html",
            "--format",
            "prometheus",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("NACOS_DRIFT_RUN_ID", "demo")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    for name in [
        "report.txt",
        "report.json",
        "report.csv",
        "report.md",
        "report.junit.xml",
        "report.html",
        "metrics.prom",
    ] {
        let actual = std::fs::read_to_string(out.join(name)).unwrap();
        assert_golden(&root().join("fixtures/demo/expected").join(name), &actual);
    }
    // The terminal summary is the text report.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout,
        std::fs::read_to_string(out.join("report.txt")).unwrap()
    );
}

#[test]
fn demo_never_shows_secret_values_unless_asked() {
    let out = tempdir("secrets");
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--format",
            "json",
            "--format",
            "csv",
            "--format",
            "markdown",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let mut all = text(&o);
    for e in std::fs::read_dir(&out).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    for secret in ["S3cr3t-prod!", "S3cr3t-rotated"] {
        assert!(!all.contains(secret), "secret {secret} leaked");
    }
    assert!(all.contains("password: ****"), "masked line expected");
    let shown = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--show-secrets",
            "--out",
            tempdir("shown").to_str().unwrap(),
        ],
        &[],
    );
    assert!(text(&shown).contains("S3cr3t-rotated"));
}

#[test]
fn identical_snapshots_exit_0() {
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_SOURCE,
            "--out",
            tempdir("same").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("No drift."));
}

#[test]
fn unreadable_source_makes_the_audit_incomplete_exit_3() {
    let out = tempdir("incomplete");
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            "fixtures/scenarios/incomplete/target.json",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["complete"], false);
    assert_eq!(json["exit_code"], 3);
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "source-error" && f["side"] == "target"));
}

#[test]
fn gate_limits_what_fails_and_levels_downgrade() {
    let dir = tempdir("gate");
    // Only codes of the gate count: with every drift kind of the gate set to warn, the gate passes.
    let cfg = dir.join("levels.toml");
    std::fs::write(
        &cfg,
        "[levels]\nservice-missing = \"warn\"\ninstance-missing = \"warn\"\n",
    )
    .unwrap();
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--gate",
            "dual-registered",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--gate",
            "dual-registered",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("(outside gate)"));
}

#[test]
fn config_with_several_mistakes_exits_2_listing_all_with_lines() {
    let dir = tempdir("badcfg");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "[source]\nnacos = \"10.0.0.1:8848\"\n\n[audit]\ngate = \"ready\"\nformats = [\"text\", \"pdf\"]\nconcurrency = 0\n\n[colours]\nx = 1\n",
    )
    .unwrap();
    let o = run(&["audit", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    for want in [
        "bad.toml:2:",
        "bad.toml:5: unknown gate `ready`",
        "bad.toml:6: unknown format `pdf`",
        "bad.toml:7: `audit.concurrency` must be between",
        "bad.toml:9: unknown section `[colours]`",
        "5 problems",
    ] {
        assert!(t.contains(want), "missing `{want}` in:\n{t}");
    }
}

#[test]
fn example_config_parses() {
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_SOURCE,
            "--config",
            "fixtures/config/example.toml",
            "--out",
            tempdir("example").to_str().unwrap(),
        ],
        &[],
    );
    // It parses (no exit 2); its `[namespace_map]` names a source namespace the demo lacks, and
    // a map from nothing is an incomplete audit, named with the line it was written on.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("example.toml:28: [namespace_map] \"dev-old\" = \"dev\": the source has no namespace `dev-old`"),
        "{t}"
    );
    assert_eq!(t.matches("DENY  L3 source-error").count(), 1, "{t}");
}

#[test]
fn nothing_configured_is_a_usage_error() {
    let o = run(&["audit"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("nothing to compare"));
    let o = run(&["audit", "--bogus-flag"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn broken_snapshot_file_names_file_and_line() {
    let dir = tempdir("broken");
    let f = dir.join("broken.json");
    std::fs::write(
        &f,
        "{\n  \"schema_version\": 1,\n  \"db\": {\"origin\": 5}\n}\n",
    )
    .unwrap();
    let o = run(&["diff", f.to_str().unwrap(), DEMO_TARGET], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("broken.json:3:"), "{}", text(&o));
}

#[test]
fn unreachable_node_and_db_are_source_errors_not_clean() {
    // Ports 1 and 2 on loopback: nothing listens there.
    let o = run(
        &[
            "audit",
            "--source-nacos",
            "http://127.0.0.1:1/nacos",
            "--target-nacos",
            "http://127.0.0.1:2/nacos",
            "--source-db",
            "mysql://u@127.0.0.1:1/nacos",
            "--target-db",
            "mysql://u@127.0.0.1:2/nacos",
            "--timeout",
            "2",
            "--out",
            tempdir("unreach").to_str().unwrap(),
        ],
        &[("NACOS_DRIFT_SOURCE_DB_PASSWORD", "hunter2-secret")],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("INCOMPLETE"));
    assert!(
        t.contains("http://127.0.0.1:1/nacos") && t.contains("127.0.0.1:2/nacos"),
        "{t}"
    );
    assert!(!t.contains("hunter2-secret"));
}

#[test]
fn repair_flags_without_fix_are_usage_errors() {
    let sides = [
        "audit",
        "--source-db",
        "mysql://u@127.0.0.1:1/nacos",
        "--target-db",
        "mysql://u@127.0.0.1:2/nacos",
    ];
    for extra in [
        &["--dry-run"][..],
        &["--fix-source"][..],
        &["--fix", "--no-probe"][..],
    ] {
        let mut args = sides.to_vec();
        args.extend_from_slice(extra);
        let o = run(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
    }
}

/// The JUnit XML parses and agrees with the JSON report; every metrics line is well-formed and
/// the failing count matches.
#[test]
fn junit_and_prometheus_agree_with_the_json_report() {
    let out = tempdir("formats");
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--format",
            "json",
            "--format",
            "junit",
            "--format",
            "prometheus",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let failing = json["summary"]["failing"].as_u64().unwrap();
    let total = json["summary"]["total"].as_u64().unwrap();
    let xml = std::fs::read_to_string(out.join("report.junit.xml")).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut failures, mut cases, mut depth_ok) = (0u64, 0u64, true);
    let mut stack: Vec<String> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => {
                let name = e.name().into_inner().to_owned();
                if name == "failure" {
                    failures += 1;
                }
                if name == "testcase" {
                    cases += 1;
                }
                stack.push(name);
            }
            Ok(quick_xml::events::Event::Empty(e)) if e.name().into_inner() == "testcase" => {
                cases += 1;
            }
            Ok(quick_xml::events::Event::End(e)) => {
                depth_ok &= stack.pop().as_deref() == Some(e.name().into_inner());
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Err(e) => panic!("report.junit.xml does not parse: {e}\n{xml}"),
            _ => {}
        }
    }
    assert!(depth_ok && stack.is_empty(), "unbalanced XML:\n{xml}");
    assert_eq!(failures, failing, "{xml}");
    assert!(cases >= total, "one case per finding at least: {xml}");
    let prom = std::fs::read_to_string(out.join("metrics.prom")).unwrap();
    let line = regex_lite_line;
    for l in prom.lines().filter(|l| !l.starts_with('#')) {
        assert!(line(l), "malformed metrics line: {l}");
    }
    assert!(
        prom.contains(&format!("nacos_drift_failing{{gate=\"all\"}} {failing}")),
        "{prom}"
    );
}

/// `name{label="v",...} value` or `name value`, as the Prometheus text format has it.
fn regex_lite_line(l: &str) -> bool {
    let (head, value) = match l.rsplit_once(' ') {
        Some(x) => x,
        None => return false,
    };
    if value.parse::<f64>().is_err() {
        return false;
    }
    let (name, labels) = match head.split_once('{') {
        Some((n, rest)) => (n, rest.strip_suffix('}')),
        None => (head, Some("")),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let labels_ok = labels.is_some_and(|ls| {
        ls.is_empty()
            || ls.split("\",").all(|kv| {
                kv.split_once("=\"").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
            })
    });
    name_ok && labels_ok
}
