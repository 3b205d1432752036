//! Offline CLI tests of the gate's promises (issues 8 and 9): nothing compared is no pass,
//! namespaces named or mapped must exist, snapshot files are checked, configuration mistakes
//! exit 2, report folders are kept honest, credentials are never echoed.

use crate::support::{root, run, tempdir, text};

const DEMO_SOURCE: &str = "fixtures/demo/source.json";
const DEMO_TARGET: &str = "fixtures/demo/target.json";

/// Write a snapshot file with an API part holding `namespaces` and `configs` (namespace, dataId, content).
fn api_snapshot(
    dir: &std::path::Path,
    name: &str,
    side: &str,
    namespaces: &[&str],
    configs: &[(&str, &str, &str)],
) -> String {
    let snap = serde_json::json!({
        "schema_version": 1,
        "side": side,
        "api": {
            "origin": "http://node:8848/nacos",
            "version": "2.3.2",
            "namespaces": namespaces.iter().map(|n| serde_json::json!({"id": n})).collect::<Vec<_>>(),
            "configs": configs.iter().map(|(ns, id, c)| serde_json::json!({
                "namespace": ns, "group": "G", "data_id": id, "content": c
            })).collect::<Vec<_>>(),
            "services": []
        }
    });
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(&snap).unwrap()).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Issue 8 item 4: two snapshots with nothing in them, or nothing in scope, compare nothing:
/// exit 3 with a finding saying so, never "No drift" and exit 0.
#[test]
fn nothing_compared_is_not_a_pass() {
    let dir = tempdir("empty");
    for (a, b) in [
        (r#"{"schema_version": 1}"#, r#"{"schema_version": 1}"#),
        (
            r#"{"schema_version": 1, "side": "source", "api": {"origin": "x", "version": "2.3.2", "namespaces": [], "configs": [], "services": []}}"#,
            r#"{"schema_version": 1, "side": "target", "api": {"origin": "y", "version": "2.3.2", "namespaces": [], "configs": [], "services": []}}"#,
        ),
    ] {
        std::fs::write(dir.join("a.json"), a).unwrap();
        std::fs::write(dir.join("b.json"), b).unwrap();
        let out = dir.join("out");
        let o = run(
            &[
                "diff",
                dir.join("a.json").to_str().unwrap(),
                dir.join("b.json").to_str().unwrap(),
                "--format",
                "json",
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(text(&o).contains("nothing was compared"), "{}", text(&o));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["complete"], false);
        assert_eq!(json["exit_code"], 3);
    }
    // Everything filtered out by the ignore rules: nothing in scope, so nothing compared.
    let cfg = dir.join("all-ignored.toml");
    std::fs::write(&cfg, "[ignore]\nnamespaces = [\"*\"]\n").unwrap();
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            dir.join("out2").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("nothing was compared"), "{}", text(&o));
}

/// A live audit whose sides leave no layer that could run is refused before anything is read.
#[test]
fn an_audit_where_every_layer_is_skipped_exits_2() {
    let o = run(
        &[
            "audit",
            "--source-db",
            "mysql://u@127.0.0.1:1/nacos",
            "--target-nacos",
            "http://127.0.0.1:2/nacos",
            "--no-probe",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no layer can run"), "{}", text(&o));
}

/// Issue 8 items 2 and 3, offline: a mapped namespace is compared with its image only, a typo'd
/// `--namespace` is an incomplete audit, an ambiguous map is a configuration error.
#[test]
fn namespace_map_and_named_namespaces_offline() {
    let dir = tempdir("nsmap-offline");
    let src = api_snapshot(
        &dir,
        "s.json",
        "source",
        &["public", "A"],
        &[("A", "x", "1"), ("A", "y", "2")],
    );
    let tgt = api_snapshot(
        &dir,
        "t.json",
        "target",
        &["public", "A", "B"],
        &[("B", "x", "1"), ("A", "x", "1"), ("A", "y", "2")],
    );
    let cfg = dir.join("map.toml");
    let diff = |cfg_text: &str, extra: &[&str]| {
        std::fs::write(&cfg, cfg_text).unwrap();
        let out = dir.join(format!("out-{}", crate::support::unique()));
        let mut args = vec![
            "diff",
            src.as_str(),
            tgt.as_str(),
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = run(&args, &[]);
        let json: serde_json::Value = std::fs::read_to_string(out.join("report.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        (o, json)
    };
    let (o, json) = diff("[namespace_map]\nA = \"B\"\n", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = json["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{json}");
    assert_eq!(f[0]["code"], "config-missing");
    assert_eq!(f[0]["name"], "y");
    assert!(json["not_compared"]
        .to_string()
        .contains("target namespace `A` (if any): compared with nothing"));

    let (o, _) = diff("[namespace_map]\nA = \"B\"\nZ = \"B\"\n", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("both mapped to target namespace `B`"),
        "{}",
        text(&o)
    );

    let (o, json) = diff("", &["--namespace", "prdo"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "source-error"
                && f["namespace"] == "prdo"
                && f["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("flag --namespace: namespace `prdo` is not on the source")),
        "{json}"
    );
    assert!(!text(&o).contains("No drift"));
}

/// Issue 8 item 5: one key twice in a snapshot file is an error naming the key; a file whose
/// `side` contradicts its position is refused; two captures of one side are compared with a warning.
#[test]
fn snapshot_files_with_duplicate_keys_or_swapped_sides_are_refused() {
    let dir = tempdir("snapcheck");
    let dup = api_snapshot(
        &dir,
        "dup.json",
        "source",
        &["public"],
        &[("", "a.yaml", "1"), ("public", "a.yaml", "2")],
    );
    let tgt = api_snapshot(
        &dir,
        "t.json",
        "target",
        &["public"],
        &[("", "a.yaml", "1")],
    );
    let o = run(&["diff", &dup, &tgt], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("dup.json: api.configs: `public/G/a.yaml` is listed twice"),
        "{}",
        text(&o)
    );

    let src = api_snapshot(
        &dir,
        "s.json",
        "source",
        &["public"],
        &[("", "a.yaml", "1")],
    );
    let o = run(&["diff", &tgt, &src], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(
            "t.json is a capture of the target (its `side` says so) but is given as the source"
        ),
        "{}",
        text(&o)
    );
    let o = run(
        &["diff", &tgt, &tgt, "--out", dir.join("o").to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: ")
            && text(&o).contains("both captures of the target"),
        "{}",
        text(&o)
    );
}

/// Issue 8 item 8: configuration mistakes are exit 2 (nothing audited), each named.
#[test]
fn configuration_mistakes_exit_2_before_anything_is_read() {
    let dir = tempdir("cfg-exit2");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let node = "http://127.0.0.1:1/nacos";
    let db = "mysql://u@127.0.0.1:1/nacos";
    let file_s = file.to_str().unwrap().to_owned();
    let under_file = file.join("state.json").to_str().unwrap().to_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--source-nacos",
                "http://127.0.0.1:99999/nacos",
                "--target-nacos",
                node,
            ],
            "invalid port number",
        ),
        (
            vec![
                "--source-nacos",
                node,
                "--target-nacos",
                "http://[::1:8848/nacos",
            ],
            "invalid IPv6 address",
        ),
        (
            vec![
                "--source-db",
                "mysql://u@127.0.0.1:99999/nacos",
                "--target-db",
                db,
            ],
            "invalid port number",
        ),
        (
            vec![
                "--source-db",
                "mysql://u@[fe80::zz]:3306/nacos",
                "--target-db",
                db,
            ],
            "invalid IPv6 address",
        ),
        (
            vec![
                "--source-db",
                "mysql://u@127.0.0.1:3306/nacos?colour=red",
                "--target-db",
                db,
            ],
            "Unknown connection URL parameter `colour'",
        ),
        (
            vec!["--source-db", db, "--target-db", db, "--out", &file_s],
            "is a file, not a folder",
        ),
        (
            vec![
                "--source-db",
                db,
                "--target-db",
                db,
                "--out",
                "/proc/nacos-drift-out",
            ],
            "cannot write in `/proc`",
        ),
        (
            vec![
                "--source-db",
                db,
                "--target-db",
                db,
                "--incremental",
                "--state",
                &under_file,
            ],
            "(state file and lock) `",
        ),
        (
            vec![
                "--source-db",
                db,
                "--target-db",
                db,
                "--incremental",
                "--state",
                "/proc/nacos-drift/state.json",
            ],
            "cannot write in `/proc`",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["audit", "--timeout", "1"];
        all.extend(args.iter().copied());
        let o = run(&all, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains(want),
            "{args:?}: no `{want}` in {}",
            text(&o)
        );
    }
}

/// Issue 8 item 9: an unknown NACOS_DRIFT_* variable is refused like an unknown key, named
/// without its value; the variables read elsewhere (log filter, run id) are known.
#[test]
fn unknown_environment_variables_exit_2() {
    let o = run(
        &["diff", DEMO_SOURCE, DEMO_TARGET],
        &[("NACOS_DRIFT_SOURCE_NACOS_PASWORD", "value-never-shown")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("environment variable NACOS_DRIFT_SOURCE_NACOS_PASWORD: unknown setting (did you mean NACOS_DRIFT_SOURCE_NACOS_PASSWORD?)"),
        "{t}"
    );
    assert!(!t.contains("value-never-shown"), "{t}");
    let o = run(
        &[
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--out",
            tempdir("knownenv").to_str().unwrap(),
        ],
        &[
            ("NACOS_DRIFT_LOG", "warn"),
            ("NACOS_DRIFT_RUN_ID", "x"),
            ("NACOS_DRIFT_SOURCE_DB_PASSWORD", "p"),
            ("NACOS_DRIFT_TARGET_NACOS_IDENTITY_VALUE", "v"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// Issue 8 item 8: a reused `--out` with fewer formats keeps no older report of another format
/// (files nacos-drift does not name stay); a failed write leaves no temporary file.
#[test]
fn report_folder_keeps_only_this_runs_reports() {
    let out = tempdir("reuse");
    let diff = |formats: &[&str]| {
        let mut args = vec![
            "diff",
            DEMO_SOURCE,
            DEMO_TARGET,
            "--out",
            out.to_str().unwrap(),
        ];
        for f in formats {
            args.extend(["--format", f]);
        }
        run(&args, &[])
    };
    assert_eq!(diff(&["json", "html", "prometheus"]).status.code(), Some(1));
    std::fs::write(out.join("README.txt"), "mine").unwrap();
    assert_eq!(diff(&["text"]).status.code(), Some(1));
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["README.txt", "report.txt"]);

    // report.json is a folder with something in it: the rename fails, exit 3, no .tmp left.
    std::fs::create_dir_all(out.join("report.json/x")).unwrap();
    let o = diff(&["json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("writing"), "{}", text(&o));
    assert!(!out.join(".report.json.tmp").exists());
}

/// Issue 9 item 2: a node URL is scheme, host, port and path; userinfo, query and fragment are
/// exit 2 with the URL shown masked; a wrong scheme is not echoed with its credentials.
#[test]
fn node_urls_with_credentials_query_or_fragment_exit_2_masked() {
    for (url, want) in [
        (
            "http://admin:S3cr3t@127.0.0.1:1/nacos",
            "`http://****@127.0.0.1:1/nacos`",
        ),
        (
            "http://127.0.0.1:1/nacos?accessToken=S3cr3t",
            "`http://127.0.0.1:1/nacos?****`",
        ),
        (
            "http://127.0.0.1:1/nacos#S3cr3t",
            "`http://127.0.0.1:1/nacos#****`",
        ),
        (
            "ftp://admin:S3cr3t@host/x",
            "`ftp://****@host/x` is not an http",
        ),
        (
            "HTTP://admin:S3cr3t@127.0.0.1:1/nacos",
            "`HTTP://****@127.0.0.1:1/nacos`",
        ),
        ("admin:S3cr3t@host/x", "`****@host/x`"),
    ] {
        let o = run(
            &[
                "audit",
                "--source-nacos",
                url,
                "--target-nacos",
                "http://127.0.0.1:2/nacos",
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{url}: {}", text(&o));
        assert!(
            text(&o).contains(want),
            "{url}: no `{want}` in {}",
            text(&o)
        );
        assert!(!text(&o).contains("S3cr3t"), "{url}: {}", text(&o));
    }
}

/// Issue 9 items 2 and 3: a DSN password (in the userinfo or `?password=`) never appears in
/// stdout, stderr or any report; one in argv draws one warning on stderr, without the value.
#[test]
fn dsn_passwords_are_never_shown_and_argv_draws_a_warning() {
    let out = tempdir("dsnpw");
    let mut args = vec![
        "audit",
        "--source-db",
        "mysql://u:Arg-S3cret@127.0.0.1:1/nacos",
        "--target-db",
        "mysql://u@127.0.0.1:2/nacos?password=Query-S3cret",
        "--timeout",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    for f in [
        "text",
        "json",
        "csv",
        "markdown",
        "junit",
        "html",
        "prometheus",
    ] {
        args.extend(["--format", f]);
    }
    let o = run(&args, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        stderr
            .matches("warning: a database password is on the command line")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("--source-db (use NACOS_DRIFT_SOURCE_DB_PASSWORD)"),
        "{stderr}"
    );
    assert!(stderr.contains("--target-db"), "{stderr}");
    let mut all = text(&o);
    for e in std::fs::read_dir(&out).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    assert!(
        all.contains("mysql://u@127.0.0.1:2/nacos"),
        "the DSN is shown: {all}"
    );
    assert!(!all.contains("S3cret"), "{all}");

    // A hand-made snapshot whose origins carry credentials: shown masked in every format.
    let dir = tempdir("dsnpw-snap");
    let snap = std::fs::read_to_string(root().join(DEMO_SOURCE))
        .unwrap()
        .replace(
            "mysql://nacos@nacos-old-db.internal:3306/nacos",
            "mysql://nacos:File-S3cret@nacos-old-db.internal:3306/nacos?password=File-S3cret",
        )
        .replace(
            "http://nacos-old-1:8848/nacos",
            "http://nacos-old-1:8848/nacos?accessToken=File-S3cret",
        );
    std::fs::write(dir.join("s.json"), snap).unwrap();
    let mut args = vec!["diff", "s.json", DEMO_TARGET, "--out", "out"];
    for f in [
        "text",
        "json",
        "csv",
        "markdown",
        "junit",
        "html",
        "prometheus",
    ] {
        args.extend(["--format", f]);
    }
    let s_json = dir.join("s.json");
    let outdir = dir.join("out");
    args[1] = s_json.to_str().unwrap();
    args[4] = outdir.to_str().unwrap();
    let o = run(&args, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let mut all = text(&o);
    for e in std::fs::read_dir(&outdir).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    assert!(
        all.contains("mysql://nacos:****@nacos-old-db.internal:3306/nacos?password=****"),
        "{all}"
    );
    assert!(!all.contains("File-S3cret"), "{all}");
}
