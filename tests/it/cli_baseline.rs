//! Offline tests of the accepted-drift baseline on the bundled demo snapshots: golden reports with
//! a baseline, the `baseline` subcommand, and malformed files.

use crate::support::{assert_golden, root, run, tempdir, text};

const DEMO_SOURCE: &str = "fixtures/demo/source.json";
const DEMO_TARGET: &str = "fixtures/demo/target.json";
const DEMO_BASELINE: &str = "fixtures/demo/accepted.toml";
const ALL_FORMATS: [&str; 7] = [
    "text",
    "json",
    "csv",
    "markdown",
    "junit",
    "html",
    "prometheus",
];

fn diff(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "diff",
        DEMO_SOURCE,
        DEMO_TARGET,
        "--out",
        out.to_str().unwrap(),
    ];
    for f in ALL_FORMATS {
        args.extend(["--format", f]);
    }
    args.extend(extra);
    run(&args, &[("NACOS_DRIFT_RUN_ID", "demo")])
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn demo_with_the_bundled_baseline_matches_its_golden_files() {
    let out = tempdir("demo-baseline");
    let o = diff(&out, &["--baseline", DEMO_BASELINE]);
    // One finding accepted; the expired entry accepts nothing; the rest still fails.
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
        assert_golden(
            &root().join("fixtures/demo/expected-baseline").join(name),
            &actual,
        );
    }
    let r = json(&out.join("report.json"));
    let accepted: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["accepted"] == true)
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["code"], "instance-extra");
    assert_eq!(r["summary"]["accepted"], 1);
    assert_eq!(r["summary"]["by_code"]["baseline-stale"], 1);
    assert_eq!(r["baseline"]["expired"], 1);
    // The expired entry's finding fails again.
    assert!(r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "scratch.yaml" && f["layer"] == "L3" && f.get("accepted").is_none()));
    // Accepted findings never count as failing, in the summary or in any gate.
    let plain = tempdir("demo-plain");
    assert_eq!(diff(&plain, &[]).status.code(), Some(1));
    let before = json(&plain.join("report.json"))["summary"]["failing"]
        .as_u64()
        .unwrap();
    assert_eq!(r["summary"]["failing"].as_u64(), Some(before - 1));
    let prom = std::fs::read_to_string(out.join("metrics.prom")).unwrap();
    assert!(
        prom.contains("\nnacos_drift_accepted_findings 1\n"),
        "{prom}"
    );
    let all = format!("\nnacos_drift_failing{{gate=\"all\"}} {}\n", before - 1);
    assert!(prom.contains(&all), "{prom}");
}

#[test]
fn a_baseline_from_a_report_makes_the_same_run_pass_and_a_new_finding_still_fails() {
    let dir = tempdir("baseline-cycle");
    let first = dir.join("first");
    assert_eq!(diff(&first, &[]).status.code(), Some(1));
    let total = json(&first.join("report.json"))["summary"]["total"].clone();
    let n = total.as_u64().unwrap() as usize;
    let file = dir.join("accepted.toml");
    let report = first.join("report.json");
    let o = run(
        &[
            "baseline",
            "--from",
            report.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
            "--reason",
            "known before cutover",
            "--expires",
            "2999-01-01",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written.matches("[[accept]]").count(), n, "{written}");
    assert!(written.contains("reason = \"known before cutover\""));

    // The identical run: every finding accepted, exit 0.
    let second = dir.join("second");
    let o = diff(&second, &["--baseline", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&second.join("report.json"));
    assert_eq!(r["summary"]["accepted"], total);
    assert_eq!(r["summary"]["total"], total);
    assert_eq!(r["summary"]["failing"], 0);
    assert!(r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["accepted"] == true));
    assert!(text(&o).contains("[ACCEPTED]"));

    // Refused to overwrite a hand-edited file without --force.
    let o = run(
        &[
            "baseline",
            "--from",
            report.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));

    // A baseline of the prod namespace only: the other namespaces' findings are new and fail.
    let prod = dir.join("prod");
    assert_eq!(diff(&prod, &["--namespace", "prod"]).status.code(), Some(1));
    let prod_file = dir.join("prod.toml");
    let o = run(
        &[
            "baseline",
            "--from",
            prod.join("report.json").to_str().unwrap(),
            "--out",
            prod_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let third = dir.join("third");
    let o = diff(&third, &["--baseline", prod_file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = json(&third.join("report.json"));
    let id = |f: &serde_json::Value| {
        [
            "code",
            "layer",
            "namespace",
            "group",
            "name",
            "variant",
            "instance",
        ]
        .map(|k| f[k].to_string())
    };
    let prod_ids: Vec<_> = json(&prod.join("report.json"))["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert!(prod_ids.len() > 3);
    for f in r["findings"].as_array().unwrap() {
        assert_eq!(
            f.get("accepted").is_some(),
            prod_ids.contains(&id(f)),
            "{f}"
        );
    }

    // Expired entries are absent: the same run fails again, and nothing is called stale.
    let expired = dir.join("expired.toml");
    let o = run(
        &[
            "baseline",
            "--from",
            report.to_str().unwrap(),
            "--out",
            expired.to_str().unwrap(),
            "--expires",
            "2001-02-03",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let fourth = dir.join("fourth");
    let o = diff(&fourth, &["--baseline", expired.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = json(&fourth.join("report.json"));
    assert_eq!(r["baseline"]["expired"], total);
    assert_eq!(
        r["summary"]["failing"],
        json(&first.join("report.json"))["summary"]["failing"]
    );
    assert!(r["summary"]["by_code"].get("baseline-stale").is_none());
}

#[test]
fn a_malformed_baseline_is_a_config_error_naming_file_and_line() {
    let dir = tempdir("baseline-bad");
    let cases: [(&str, &str); 5] = [
        (
            "[[accept]]\ncode = \"config-extra\"\nlayer = \"L4\"\n",
            ":1: unknown layer",
        ),
        (
            "[[accept]]\ncode = \"config-extr\"\n",
            ":1: unknown finding code `config-extr`",
        ),
        (
            "[[accept]]\ncode = \"config-extra\"\n\n[[accept]]\ncode = \"source-error\"\n",
            ":4: `source-error` cannot be accepted",
        ),
        (
            "[[accept]]\ncode = \"config-extra\"\nexpires = \"2026-02-30\"\n",
            ":3: `expires` must be a date",
        ),
        (
            "[[accept]]\ncode = \"config-extra\"\nnmae = \"x\"\n",
            ":3: unknown key `nmae`",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let path = dir.join(format!("b{i}.toml"));
        std::fs::write(&path, body).unwrap();
        let o = run(
            &[
                "diff",
                DEMO_SOURCE,
                DEMO_TARGET,
                "--out",
                dir.join("out").to_str().unwrap(),
                "--baseline",
                path.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let t = text(&o);
        assert!(
            t.contains(&format!("{}{want}", path.display())),
            "case {i}: {t}"
        );
    }
    // Also from the environment and the config file's `audit.baseline`.
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--out",
            dir.join("out").to_str().unwrap(),
        ],
        &[(
            "NACOS_DRIFT_AUDIT_BASELINE",
            dir.join("b0.toml").to_str().unwrap(),
        )],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `baseline --force` over an existing file keeps the reason and expiry of every entry that still
/// matches a finding; new findings get `--reason`/`--expires`; entries that match nothing or have
/// expired are dropped (an expired entry's finding comes back as a new entry); the counts are said.
#[test]
fn regenerating_a_baseline_keeps_the_reasons_and_expiry_of_entries_that_still_match() {
    let dir = tempdir("baseline-regen");
    let (all, prod) = (dir.join("all"), dir.join("prod"));
    assert_eq!(diff(&all, &[]).status.code(), Some(1));
    assert_eq!(diff(&prod, &["--namespace", "prod"]).status.code(), Some(1));
    let baseline = |from: &std::path::Path, out: &std::path::Path, extra: &[&str]| {
        let report = from.join("report.json");
        let mut args = vec![
            "baseline",
            "--from",
            report.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args, &[])
    };
    let entries = |path: &std::path::Path| -> Vec<toml::Value> {
        let v: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["accept"].as_array().unwrap().clone()
    };
    // The hand-kept file: the prod findings with their reason and expiry ...
    let file = dir.join("accepted.toml");
    let o = baseline(
        &prod,
        &file,
        &[
            "--reason",
            "prod: known, ticket OPS-1",
            "--expires",
            "2999-01-01",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let key = |e: &toml::Value| {
        let mut t = e.as_table().unwrap().clone();
        t.remove("reason");
        t.remove("expires");
        t
    };
    let prod_keys: Vec<toml::Table> = entries(&file).iter().map(key).collect();
    let n_prod = prod_keys.len();
    // ... plus an entry that matches nothing any more, and an expired one for a non-prod finding.
    let scratch = dir.join("scratch.toml");
    assert_eq!(baseline(&all, &scratch, &[]).status.code(), Some(0));
    let other = entries(&scratch)
        .into_iter()
        .find(|e| !prod_keys.contains(&key(e)))
        .expect("a finding outside prod");
    let mut expired = other.as_table().unwrap().clone();
    expired.insert("reason".into(), "expired long ago".into());
    expired.insert("expires".into(), "2000-01-01".into());
    let mut gone = toml::Table::new();
    for (k, v) in [
        ("code", "config-missing"),
        ("layer", "L1"),
        ("namespace", "prod"),
        ("group", "DEFAULT_GROUP"),
        ("name", "long-gone.yaml"),
        ("reason", "fixed last week"),
    ] {
        gone.insert(k.into(), v.into());
    }
    let mut extra = toml::Table::new();
    extra.insert(
        "accept".into(),
        toml::Value::Array(vec![expired.into(), gone.into()]),
    );
    let mut text_now = std::fs::read_to_string(&file).unwrap();
    text_now.push('\n');
    text_now.push_str(&toml::to_string(&extra).unwrap());
    std::fs::write(&file, &text_now).unwrap();

    let o = baseline(
        &all,
        &file,
        &[
            "--force",
            "--reason",
            "new this run",
            "--expires",
            "2999-06-30",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let written = entries(&file);
    let n_all = entries(&scratch).len();
    assert_eq!(written.len(), n_all);
    assert!(
        text(&o).contains(&format!(
            "{n_prod} kept with their reason and expiry, {} added, 2 dropped",
            n_all - n_prod
        )),
        "{}",
        text(&o)
    );
    for e in &written {
        let (reason, expires) = (
            e["reason"].as_str().unwrap(),
            e["expires"].as_str().unwrap(),
        );
        if prod_keys.contains(&key(e)) {
            assert_eq!(
                (reason, expires),
                ("prod: known, ticket OPS-1", "2999-01-01"),
                "{e}"
            );
        } else {
            assert_eq!((reason, expires), ("new this run", "2999-06-30"), "{e}");
        }
    }
    assert!(!written
        .iter()
        .any(|e| e["reason"].as_str() == Some("fixed last week")));
    assert!(!written
        .iter()
        .any(|e| e["reason"].as_str() == Some("expired long ago")));
}
