//! Issue 9 against the real test bed: a whole audit (L1, L2 with `--fix`, L3, every report format,
//! `--incremental` state, debug logs) with known secrets, none of which may show anywhere it writes.
//!
//! The secrets: a Nacos password (a user of its own, made an admin for this test: the bed's own
//! password, `nacos`, is a word every report contains), the DB password (given through the
//! environment, as the README says, never in argv), secret values inside a config and in instance
//! metadata on both sides, and the server identity value `--fix` sends.

use crate::bed::TARGET_CACHE_LOCK;
use crate::ops::{cred_env, live_port, md5, split_dsn, sql, sql_value, wait_until, Node};
use crate::support::{bed, run, tempdir, unique, Bed};
use std::path::Path;

const G: &str = "SECRETS";

/// Every file under `dir`, as text (lossy), with its path.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

/// A Nacos admin user of this test's own, with a password no report could contain by chance:
/// created through the API on the source, made an admin in the source DB (which the target DB
/// replicates), and usable once every node has reloaded its user and role caches.
fn admin_user(bed: &Bed, u: &str) -> (String, String) {
    let (user, pass) = (format!("drift{u}"), format!("Nd-pw-{u}-Zq"));
    let admin = Node::login(&bed.source_nacos[0], &bed.username, &bed.password);
    let (s, b) = admin.call(
        "POST",
        "/v1/auth/users",
        &[("username", &user), ("password", &pass)],
    );
    assert_eq!(s, 200, "creating user {user}: {b}");
    sql(
        &bed.source_db,
        &format!("INSERT INTO roles (username, role) VALUES ('{user}', 'ROLE_ADMIN')"),
    );
    for base in bed.source_nacos.iter().chain(&bed.target_nacos) {
        // No token of its own: a login carrying one is answered for the token's user.
        let probe = Node::login(base, "", "");
        assert!(
            wait_until(60, || {
                let (s, b) = probe.call(
                    "POST",
                    "/v1/auth/login",
                    &[("username", &user), ("password", &pass)],
                );
                // `globalAdmin` comes from the node's role cache: the new binding is loaded.
                s == 200
                    && serde_json::from_str::<serde_json::Value>(&b)
                        .is_ok_and(|v| v["globalAdmin"] == true)
            }),
            "{base} did not take user {user} as an admin"
        );
    }
    (user, pass)
}

#[test]
fn a_whole_audit_with_debug_logs_never_shows_a_secret() {
    let Some(bed) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let u = unique();
    let (user, nacos_pw) = admin_user(&bed, &u);
    let (cfg_src, cfg_tgt, cfg_tok) = (
        format!("cfg-src-{u}"),
        format!("cfg-tgt-{u}"),
        format!("tok-{u}"),
    );
    let (meta_src, meta_tgt) = (format!("meta-src-{u}"), format!("meta-tgt-{u}"));
    let ns = format!("sec-{u}");
    let src = Node::login(&bed.source_nacos[0], &bed.username, &bed.password);
    let tgt = Node::login(&bed.target_nacos[0], &bed.username, &bed.password);
    src.create_namespace(&ns);
    let content = |pw: &str| {
        format!("spring:\n  datasource:\n    password: {pw}\nclient: {{\"token\": \"{cfg_tok}\"}}\nurl: jdbc:mysql://app:{pw}@db/x\n")
    };
    src.publish(&ns, G, "app.yaml", &content(&cfg_src));
    let q = format!("SELECT md5 FROM config_info WHERE tenant_id='{ns}' AND data_id='app.yaml'");
    assert!(
        wait_until(30, || sql_value(&bed.target_db, &q).as_deref()
            == Some(&*md5(&content(&cfg_src)))),
        "replication did not bring {ns} to the target DB"
    );
    // The replica's row changed behind Nacos's back: content drift with a diff on both layers,
    // and target nodes that never heard of the config (L2, repaired by --fix).
    let (_listener, port) = live_port();
    for (n, pw) in [(&src, &meta_src), (&tgt, &meta_tgt)] {
        let meta = format!("{{\"user.password\":\"{pw}\",\"zone\":\"a\"}}");
        n.register(&ns, G, "orders", port, &[("metadata", &meta)]);
    }

    let dir = tempdir("secrets");
    let (src_dsn, db_pw) = split_dsn(&bed.source_db);
    let (tgt_dsn, tgt_db_pw) = split_dsn(&bed.target_db);
    let mut args: Vec<String> = [
        "audit",
        "--namespace",
        &ns,
        "--settle",
        "0",
        "--source-nacos",
        &bed.source_nacos.join(","),
        "--target-nacos",
        &bed.target_nacos.join(","),
        "--source-db",
        &src_dsn,
        "--target-db",
        &tgt_dsn,
        "--out",
        "OUT",
        "--incremental",
        "--state",
        "STATE",
        "--fix",
    ]
    .map(str::to_owned)
    .to_vec();
    for f in [
        "text",
        "json",
        "csv",
        "markdown",
        "junit",
        "html",
        "prometheus",
    ] {
        args.extend(["--format".to_owned(), f.to_owned()]);
    }
    let mut env: Vec<(&str, String)> = cred_env(&user, &nacos_pw).into_iter().collect();
    env.extend([
        ("NACOS_DRIFT_LOG", "debug".to_owned()),
        ("NACOS_DRIFT_SOURCE_DB_PASSWORD", db_pw.clone()),
        ("NACOS_DRIFT_TARGET_DB_PASSWORD", tgt_db_pw.clone()),
        (
            "NACOS_DRIFT_SOURCE_NACOS_IDENTITY_KEY",
            bed.identity_key.clone(),
        ),
        (
            "NACOS_DRIFT_SOURCE_NACOS_IDENTITY_VALUE",
            bed.identity_value.clone(),
        ),
        (
            "NACOS_DRIFT_TARGET_NACOS_IDENTITY_KEY",
            bed.identity_key.clone(),
        ),
        (
            "NACOS_DRIFT_TARGET_NACOS_IDENTITY_VALUE",
            bed.identity_value.clone(),
        ),
        // Per-key repairs: a full reload would touch every namespace of the target nodes.
        ("NACOS_DRIFT_FIX_FULL_THRESHOLD_PCT", "100".to_owned()),
    ]);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut places: Vec<(String, String)> = Vec::new();
    // The bed is shared: another test's full reload of a target node, or a node briefly away,
    // can take away the stale cache this run must repair; such an attempt is made again.
    let mut attempt = 0;
    let (o, json, state) = loop {
        attempt += 1;
        // Only the replica's row changes, behind Nacos's back: content drift with a diff on both
        // layers, and target nodes that never hear of it (L2, repaired by --fix).
        let changed = format!("{}rev: {attempt}\n", content(&cfg_tgt)).replace('\n', "\\n");
        sql(
            &bed.target_db,
            &format!("UPDATE config_info SET content='{changed}', md5=MD5('{changed}') WHERE tenant_id='{ns}' AND data_id='app.yaml'"),
        );
        let (out, state) = (
            dir.join(format!("reports-{attempt}")),
            dir.join(format!("state-{attempt}.json")),
        );
        let arg_ref: Vec<&str> = args
            .iter()
            .map(|a| match a.as_str() {
                "OUT" => out.to_str().unwrap(),
                "STATE" => state.to_str().unwrap(),
                a => a,
            })
            .collect();
        let o = run(&arg_ref, &env_ref);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        let json: serde_json::Value = std::fs::read_to_string(out.join("report.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        places.push((format!("stdout #{attempt}"), stdout.clone()));
        places.push((format!("stderr #{attempt}"), stderr.clone()));
        if out.exists() {
            places.extend(files_under(&out));
        }
        if let Ok(t) = std::fs::read_to_string(&state) {
            places.push((format!("state #{attempt}"), t));
        }
        let repaired = json["repairs"].as_array().is_some_and(|r| !r.is_empty());
        if attempt == 3 || (o.status.code() == Some(1) && repaired) {
            break (o, json, state);
        }
        eprintln!(
            "attempt {attempt}: exit {:?}, repaired {repaired}; again\n{stdout}",
            o.status.code()
        );
    };
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();

    // The run did what the secrets are exposed by: logs, every report, a diff, a repair, a state file.
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("DEBUG"), "debug logs expected:\n{stderr}");
    let findings = json["findings"].as_array().unwrap();
    let diffs: Vec<&str> = findings.iter().filter_map(|f| f["diff"].as_str()).collect();
    assert!(
        !diffs.is_empty() && diffs.iter().all(|d| d.contains("password: ****")),
        "masked diffs expected: {diffs:?}"
    );
    assert!(
        findings.iter().any(|f| f["code"] == "instance-differs"
            && f["detail"].as_str().unwrap().contains("user.password")),
        "{stdout}"
    );
    assert!(
        json["repairs"].as_array().is_some_and(|r| !r.is_empty()),
        "--fix repaired nothing: {stdout}"
    );
    assert!(state.exists(), "no state file");

    let secrets = [
        ("Nacos password", nacos_pw.as_str()),
        ("source DB password", db_pw.as_str()),
        ("target DB password", tgt_db_pw.as_str()),
        ("identity value", bed.identity_value.as_str()),
        ("config secret (source)", cfg_src.as_str()),
        ("config secret (target)", cfg_tgt.as_str()),
        ("config token", cfg_tok.as_str()),
        ("metadata secret (source)", meta_src.as_str()),
        ("metadata secret (target)", meta_tgt.as_str()),
    ];
    assert!(places.len() >= 10, "{places:?}");
    for (what, secret) in secrets {
        assert!(!secret.is_empty(), "{what} is empty on this bed");
        for (place, text) in &places {
            assert!(!text.contains(secret), "{what} shown in {place}:\n{text}");
        }
    }

    // A wrong password is a secret too: the failed login says so without it.
    let wrong = format!("Wr0ng-{u}");
    let bad_env: Vec<(&str, &str)> = env_ref
        .iter()
        .map(|(k, v)| match *k {
            "NACOS_DRIFT_SOURCE_NACOS_PASSWORD" => (*k, wrong.as_str()),
            _ => (*k, *v),
        })
        .collect();
    let (bad_out, bad_state) = (dir.join("bad"), dir.join("bad-state.json"));
    let bad_args: Vec<&str> = args
        .iter()
        .filter(|a| *a != "--fix")
        .map(|a| match a.as_str() {
            "OUT" => bad_out.to_str().unwrap(),
            "STATE" => bad_state.to_str().unwrap(),
            a => a,
        })
        .collect();
    let o = run(&bad_args, &bad_env);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let mut all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for (_, t) in files_under(&bad_out) {
        all.push_str(&t);
    }
    if let Ok(t) = std::fs::read_to_string(&bad_state) {
        all.push_str(&t);
    }
    assert!(!all.contains(&wrong), "the wrong password is shown:\n{all}");

    sql(
        &bed.source_db,
        &format!("DELETE FROM roles WHERE username='{user}'"),
    );
    sql(
        &bed.source_db,
        &format!("DELETE FROM users WHERE username='{user}'"),
    );
}
