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
            "--out",
            out.to_str().unwrap(),
        ],
        &[("NACOS_DRIFT_RUN_ID", "demo")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    for name in ["report.txt", "report.json", "report.csv", "report.md"] {
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
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
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
