//! Issue 10 against the real test bed: Nacos over HTTPS and the target DB over TLS.
//!
//! The bed's target MariaDB requires TLS (`require_secure_transport=ON`, certificate from the
//! bed's throwaway CA) and target node 18868 also serves HTTPS (`TESTBED_TARGET_NACOS_HTTPS`,
//! a second Tomcat connector: its cluster address stays the plain one, so the audits here allow
//! `node-not-member`). Each audit covers the mixed cluster: the HTTPS URL plus the other,
//! plain-HTTP node.

use crate::ops::{audit, cred_env, split_dsn, wait_until, Node, Run};
use crate::support::{unique, Bed};

const GROUP: &str = "TLS";

/// The HTTPS URL of the bed's node is not a member address (see the module comment).
const CONFIG: &str = "[levels]\n\"node-not-member\" = \"allow\"\n";

/// The bed, if it is up and has its TLS parts (a bed started before they existed has none:
/// skipped with a printed line, except under CI=true where that fails).
fn bed() -> Option<Bed> {
    let b = crate::support::bed()?;
    if b.ca_file.is_empty() || b.target_nacos_https.is_empty() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "the test bed has no TLS (TESTBED_CA_FILE, TESTBED_TARGET_NACOS_HTTPS): run tests/testbed/testbed down, then up"
        );
        eprintln!("skipping: the test bed has no TLS parts (tests/testbed/testbed down, then up)");
        return None;
    }
    Some(b)
}

/// The bed's target DB without mysql_async's own TLS parameters (nacos-drift's are tested).
fn target_dsn(b: &Bed) -> (String, String) {
    let (dsn, pw) = split_dsn(&b.target_db);
    (dsn.split('?').next().unwrap_or(&dsn).to_owned(), pw)
}

/// A namespace with one config, published on the source, replicated to the target DB and
/// served by the target node behind HTTPS.
fn namespace_with_a_config(b: &Bed) -> String {
    let ns = format!("it-tls-{}", unique());
    let src = Node::login(&b.source_nacos[0], &b.username, &b.password);
    src.create_namespace(&ns);
    src.publish(&ns, GROUP, "tls.properties", "tls=1\n");
    let https_node = b
        .target_nacos
        .iter()
        .find(|u| u.contains(":18868/"))
        .expect("the bed's target node 18868");
    let q = format!("SELECT md5 FROM config_info WHERE tenant_id='{ns}'");
    assert!(
        wait_until(30, || crate::ops::sql_value(&b.target_db, &q).is_some()),
        "replication did not bring {ns} to the target DB"
    );
    // Replicated rows reach no node cache (no dump on the target: see bed.rs); the same
    // publish on the target cluster makes its nodes load the config.
    let tgt = Node::login(https_node, &b.username, &b.password);
    tgt.publish(&ns, GROUP, "tls.properties", "tls=1\n");
    assert!(
        wait_until(60, || tgt.get_config(&ns, GROUP, "tls.properties").0 == 200),
        "the target node does not serve {ns}/tls.properties"
    );
    ns
}

/// An audit of `ns` (L1, L2 probe, L3) with the target reached over TLS; `env` adds settings.
fn tls_audit(b: &Bed, ns: &str, target_db: &str, env: &[(&str, &str)]) -> Run {
    tls_audit_with(b, ns, target_db, env, &[])
}

/// [`tls_audit`] with more flags.
fn tls_audit_with(b: &Bed, ns: &str, target_db: &str, env: &[(&str, &str)], more: &[&str]) -> Run {
    let dir = crate::support::tempdir("tls-live");
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let (sdb, spw) = split_dsn(&b.source_db);
    let (_, tpw) = target_dsn(b);
    let plain_target = b
        .target_nacos
        .iter()
        .find(|u| !u.contains(":18868/"))
        .expect("a plain target node");
    let tn = format!("{},{plain_target}", b.target_nacos_https);
    let mut args = vec![
        "--config",
        cfg.to_str().unwrap(),
        "--namespace",
        ns,
        "--settle",
        "5",
        "--source-db",
        &sdb,
        "--target-db",
        target_db,
        "--source-nacos",
        &b.source_nacos[0],
        "--target-nacos",
        &tn,
    ];
    args.extend_from_slice(more);
    let creds = cred_env(&b.username, &b.password);
    let mut e: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    e.push(("NACOS_DRIFT_SOURCE_DB_PASSWORD", &spw));
    e.push(("NACOS_DRIFT_TARGET_DB_PASSWORD", &tpw));
    e.extend_from_slice(env);
    audit(&args, &e)
}

/// Findings that fail the run (allowed ones left out), as `(code, layer, location)`.
fn failing(r: &Run) -> Vec<(String, String, String)> {
    r.findings()
        .into_iter()
        .filter(|f| f.0 != "node-not-member")
        .collect()
}

#[test]
fn a_full_audit_over_https_and_a_verified_tls_db_passes_with_the_ca() {
    let Some(b) = bed() else { return };
    let ns = namespace_with_a_config(&b);
    let (dsn, _) = target_dsn(&b);
    // The conventional DSN parameters, verifying the DB's certificate and its name.
    let db = format!("{dsn}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}", b.ca_file);
    let r = tls_audit(
        &b,
        &ns,
        &db,
        &[("NACOS_DRIFT_TARGET_NACOS_CA_FILE", &b.ca_file)],
    );
    assert_eq!(r.code, 0, "{}", r.output);
    assert!(failing(&r).is_empty(), "{:?}\n{}", r.findings(), r.output);
    let t = &r.json["target"];
    assert_eq!(t["db_tls"], true, "{t}");
    assert_eq!(t["tls_verify"], true, "{t}");
    assert!(
        r.output.contains("  source TLS: DB connection NOT encrypted (plain text)\n")
            && r.output.contains(
                "  target TLS: certificate verification on for https nodes; DB connection encrypted\n"
            ),
        "{}",
        r.output
    );
    assert_eq!(t["db_configs"], 1, "{t}");
    assert_eq!(t["api_configs"], 1, "{t}");
    // The source DB offers no TLS: `preferred` (the default) fell back to plain text.
    assert_eq!(r.json["source"]["db_tls"], false, "{}", r.json["source"]);
    assert!(
        r.json["source"].get("tls_verify").is_none(),
        "no https node"
    );
    // Both target nodes, the HTTPS one among them, were probed (L2).
    let probed = r.json["compared"].to_string();
    assert!(probed.contains("L2"), "{probed}\n{}", r.output);
    assert!(!r.output.contains("not probed"), "{}", r.output);
}

#[test]
fn without_the_ca_the_node_and_the_db_certificate_problems_are_named() {
    let Some(b) = bed() else { return };
    let ns = format!("it-tls-noca-{}", unique());
    let (dsn, _) = target_dsn(&b);
    let r = tls_audit(&b, &ns, &format!("{dsn}?ssl-mode=verify_ca"), &[]);
    assert_eq!(r.code, 3, "{}", r.output);
    let errors: Vec<String> = r.json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "source-error")
        .map(|f| format!("{} {}", f["source"], f["detail"]))
        .collect();
    let all = format!("{errors:?}\n{}", r.output);
    let node_err = r
        .output
        .lines()
        .find(|l| l.contains(&b.target_nacos_https) && l.contains("unknown certificate authority"));
    assert!(node_err.is_some(), "{all}");
    let db_err = r
        .output
        .lines()
        .find(|l| l.contains("database mysql://") && l.contains("unknown certificate authority"));
    assert!(db_err.is_some(), "{all}");
    assert!(!r.output.contains("unreachable"), "{all}");
}

#[test]
fn with_verification_skipped_the_run_warns_and_the_report_says_so() {
    let Some(b) = bed() else { return };
    let ns = namespace_with_a_config(&b);
    let (dsn, _) = target_dsn(&b);
    let r = tls_audit(
        &b,
        &ns,
        &dsn,
        &[("NACOS_DRIFT_TARGET_NACOS_TLS_INSECURE_SKIP_VERIFY", "true")],
    );
    assert_eq!(r.code, 0, "{}", r.output);
    assert!(
        r.output
            .contains("TLS CERTIFICATE VERIFICATION IS OFF for the target Nacos nodes"),
        "{}",
        r.output
    );
    assert!(
        r.output.contains(
            "target TLS: CERTIFICATE VERIFICATION OFF for https nodes (nacos_tls_insecure_skip_verify); DB connection encrypted"
        ),
        "{}",
        r.output
    );
    assert_eq!(
        r.json["target"]["tls_verify"], false,
        "{}",
        r.json["target"]
    );
    // Default `preferred` against the TLS-only DB: encrypted.
    assert_eq!(r.json["target"]["db_tls"], true, "{}", r.json["target"]);
}

#[test]
fn ssl_mode_disabled_against_the_tls_only_db_says_the_server_requires_tls() {
    let Some(b) = bed() else { return };
    let ns = format!("it-tls-off-{}", unique());
    let (dsn, _) = target_dsn(&b);
    let r = tls_audit(
        &b,
        &ns,
        &dsn,
        &[
            ("NACOS_DRIFT_TARGET_DB_SSL_MODE", "disabled"),
            ("NACOS_DRIFT_TARGET_NACOS_CA_FILE", &b.ca_file),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.output);
    let line = r
        .output
        .lines()
        .find(|l| l.contains("database mysql://") && l.contains("the server requires TLS"));
    assert!(line.is_some(), "{}", r.output);
    assert!(!r.output.contains("wrong user or password"), "{}", r.output);
}

#[test]
fn a_stale_config_on_the_https_node_is_repaired_by_the_whole_node_reload() {
    let Some(b) = bed() else { return };
    let ns = format!("it-tls-fix-{}", unique());
    let src = Node::login(&b.source_nacos[0], &b.username, &b.password);
    src.create_namespace(&ns);
    src.publish(&ns, GROUP, "fix.properties", "fix=1\n");
    let q = format!("SELECT md5 FROM config_info WHERE tenant_id='{ns}'");
    assert!(
        wait_until(30, || crate::ops::sql_value(&b.target_db, &q).is_some()),
        "replication did not bring {ns} to the target DB"
    );
    let (dsn, _) = target_dsn(&b);
    let env = [
        ("NACOS_DRIFT_TARGET_NACOS_CA_FILE", b.ca_file.as_str()),
        (
            "NACOS_DRIFT_TARGET_NACOS_IDENTITY_KEY",
            b.identity_key.as_str(),
        ),
        (
            "NACOS_DRIFT_TARGET_NACOS_IDENTITY_VALUE",
            b.identity_value.as_str(),
        ),
    ];
    // Replicated, so served by no target node: stale at L2 on both, the HTTPS one included.
    let r = tls_audit(&b, &ns, &dsn, &env);
    assert_eq!(r.code, 1, "{}", r.output);
    let stale: Vec<String> = r.json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["layer"] == "L2" && f["code"] != "node-not-member")
        .map(|f| f["node"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        stale.contains(&b.target_nacos_https),
        "{stale:?}\n{}",
        r.output
    );
    // `--fix --full`: the whole-node reload goes through the node's HTTPS API (the per-key
    // gRPC channel is plain text and is not used).
    let mut args_env = env.to_vec();
    args_env.push(("NACOS_DRIFT_FIX_VERIFY_SECS", "60"));
    let fixed = tls_audit_with(&b, &ns, &dsn, &args_env, &["--fix", "--full"]);
    assert_eq!(fixed.code, 0, "{}", fixed.output);
    let again = tls_audit(&b, &ns, &dsn, &env);
    assert_eq!(again.code, 0, "{}", again.output);
    assert!(failing(&again).is_empty(), "{:?}", again.findings());
}

#[test]
fn required_tls_from_a_plain_server_and_https_to_a_plain_port_are_named() {
    let Some(b) = bed() else { return };
    let ns = format!("it-tls-plain-{}", unique());
    let (sdb, spw) = split_dsn(&b.source_db);
    let (tdb, tpw) = target_dsn(&b);
    // db-source offers no TLS at all; node 18848 is plain HTTP.
    let source_db = format!("{sdb}?ssl-mode=required");
    let source_https = b.source_nacos[0].replace("http://", "https://");
    let args = [
        "--namespace",
        ns.as_str(),
        "--settle",
        "0",
        "--source-db",
        &source_db,
        "--target-db",
        &tdb,
        "--source-nacos",
        &source_https,
    ];
    let creds = cred_env(&b.username, &b.password);
    let mut e: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    e.push(("NACOS_DRIFT_SOURCE_DB_PASSWORD", &spw));
    e.push(("NACOS_DRIFT_TARGET_DB_PASSWORD", &tpw));
    let r = audit(&args, &e);
    assert_eq!(r.code, 3, "{}", r.output);
    let db = r.output.lines().find(|l| {
        l.contains("database mysql://")
            && l.contains("ssl-mode requires TLS and the server does not offer it")
    });
    assert!(db.is_some(), "{}", r.output);
    let node = r
        .output
        .lines()
        .find(|l| l.contains(&source_https) && l.contains("the server did not answer in TLS"));
    assert!(node.is_some(), "{}", r.output);
    assert!(!r.output.contains("unreachable"), "{}", r.output);
}
