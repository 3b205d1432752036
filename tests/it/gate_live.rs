//! Issue 8 items 2, 3 and 4 against the real test bed: `[namespace_map]` compares a mapped
//! namespace with its image only, a typo'd `--namespace` is no clean audit, and a run that
//! compares nothing does not pass.
//!
//! Java pair: the 2.0.4 source node over db-source, the 2.3.2 target nodes over its replica
//! (L1 and L3: the target API lists configs from its DB). Every namespace is fresh and unique.

use crate::ops::{audit, cred_env, split_dsn, sql, sql_value, wait_until, Node, Run};
use crate::support::{bed, unique, Bed};

const GROUP: &str = "APP";

/// (code, layer, namespace, name) of every finding, sorted.
fn found(r: &Run) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = r.json["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    let s = |k: &str| f[k].as_str().unwrap_or("").to_owned();
                    (s("code"), s("layer"), s("namespace"), s("name"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn f(code: &str, layer: &str, ns: &str, name: &str) -> (String, String, String, String) {
    (code.into(), layer.into(), ns.into(), name.into())
}

/// An audit of the Java pair (L1 and L3, no probe, no settle) with a config file.
fn java_audit(b: &Bed, config: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = crate::support::tempdir("gate-live");
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, config).unwrap();
    let (sdb, spw) = split_dsn(&b.source_db);
    let (tdb, tpw) = split_dsn(&b.target_db);
    let (sn, tn) = (b.source_nacos.join(","), b.target_nacos.join(","));
    let mut all = vec![
        "--config",
        cfg.to_str().unwrap(),
        "--settle",
        "0",
        "--no-probe",
        "--source-db",
        &sdb,
        "--target-db",
        &tdb,
        "--source-nacos",
        &sn,
        "--target-nacos",
        &tn,
    ];
    all.extend_from_slice(args);
    let creds = cred_env(&b.username, &b.password);
    let mut e: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    e.push(("NACOS_DRIFT_SOURCE_DB_PASSWORD", &spw));
    e.push(("NACOS_DRIFT_TARGET_DB_PASSWORD", &tpw));
    e.extend_from_slice(env);
    audit(&all, &e)
}

/// Source A = {x, y} (published on the source node, replicated to target A); target B = {x},
/// written on the replica. Returns (A, B).
fn namespaces_a_and_b(b: &Bed) -> (String, String) {
    let (a, bn) = (format!("it-a-{}", unique()), format!("it-b-{}", unique()));
    let src = Node::login(&b.source_nacos[0], &b.username, &b.password);
    src.create_namespace(&a);
    src.publish(&a, GROUP, "x.properties", "x=1\n");
    src.publish(&a, GROUP, "y.properties", "y=1\n");
    let q = format!("SELECT COUNT(*) FROM config_info WHERE tenant_id='{a}'");
    assert!(
        wait_until(30, || sql_value(&b.target_db, &q).as_deref() == Some("2")),
        "replication did not bring {a} to the target DB"
    );
    sql(
        &b.target_db,
        &format!("INSERT INTO tenant_info (kp, tenant_id, tenant_name, tenant_desc, create_source, gmt_create, gmt_modified) VALUES ('1', '{bn}', '{bn}', '{bn}', 'nacos', 0, 0)"),
    );
    sql(
        &b.target_db,
        &format!("INSERT INTO config_info (data_id, group_id, content, md5, app_name, tenant_id, c_desc, type, encrypted_data_key) SELECT data_id, group_id, content, md5, app_name, '{bn}', c_desc, type, encrypted_data_key FROM config_info WHERE tenant_id='{a}' AND data_id='x.properties'"),
    );
    (a, bn)
}

/// The case on the real clusters: with `A = B`, y missing from B fails the gate even
/// though target A (not B) holds it, at L1 and L3; `A = C` with C absent reports A's configs
/// missing instead of comparing A with A; `Z = A` with Z absent is a source-error and leaves
/// source A paired with nothing.
#[test]
fn namespace_map_compares_a_mapped_namespace_with_its_image_only() {
    let Some(b) = bed() else { return };
    let (a, bn) = namespaces_a_and_b(&b);
    let ns = ["--namespace", a.as_str()];

    // Unmapped, A is compared with A: identical.
    let r = java_audit(&b, "", &ns, &[]);
    assert_eq!(r.code, 0, "{}", r.output);

    let r = java_audit(
        &b,
        &format!("[namespace_map]\n\"{a}\" = \"{bn}\"\n"),
        &ns,
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.output);
    assert_eq!(
        found(&r),
        vec![
            f("config-missing", "L1", &a, "y.properties"),
            f("config-missing", "L3", &a, "y.properties"),
        ],
        "{}",
        r.output
    );
    // Same under the gate that matters before a cutover.
    let r = java_audit(
        &b,
        &format!("[namespace_map]\n\"{a}\" = \"{bn}\"\n"),
        &[ns[0], ns[1], "--gate", "cutover-ready"],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.output);

    // A = C, C on neither side: A's configs are missing from C, never compared with target A.
    let c = format!("it-c-{}", unique());
    let r = java_audit(
        &b,
        &format!("[namespace_map]\n\"{a}\" = \"{c}\"\n"),
        &ns,
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.output);
    let got = found(&r);
    for layer in ["L1", "L3"] {
        for want in [
            f("namespace-missing", layer, &a, ""),
            f("config-missing", layer, &a, "x.properties"),
            f("config-missing", layer, &a, "y.properties"),
        ] {
            assert!(got.contains(&want), "{want:?} not in {got:?}\n{}", r.output);
        }
    }
    assert!(
        r.output
            .contains(&format!("(looked for in target namespace `{c}`)")),
        "{}",
        r.output
    );

    // Z = A, Z not on the source: the map is a source-error (exit 3) naming it; source A pairs
    // with nothing (target A is Z's image), so A's configs are missing, not compared with target A.
    let z = format!("it-z-{}", unique());
    let r = java_audit(
        &b,
        &format!("[namespace_map]\n\"{z}\" = \"{a}\"\n"),
        &[ns[0], ns[1], "--namespace", &z],
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.output);
    let got = found(&r);
    assert!(
        got.iter().any(|x| x.0 == "source-error" && x.2 == z),
        "{got:?}\n{}",
        r.output
    );
    assert!(
        r.output.contains(&format!(
            "[namespace_map] \"{z}\" = \"{a}\": the source has no namespace `{z}`"
        )),
        "{}",
        r.output
    );
    for layer in ["L1", "L3"] {
        assert!(
            got.contains(&f("config-missing", layer, &a, "y.properties")),
            "{got:?}"
        );
    }
}

/// The same map on r-nacos (L3 only), where both target namespaces are made through the API.
#[test]
fn namespace_map_on_rnacos() {
    let Some(b) = bed() else { return };
    let (src, tgt) = (
        Node::login(&b.source_rnacos, "", ""),
        Node::login(&b.target_rnacos, "", ""),
    );
    let (a, bn) = (format!("it-a-{}", unique()), format!("it-b-{}", unique()));
    src.create_namespace(&a);
    tgt.create_namespace(&a);
    tgt.create_namespace(&bn);
    for n in [&src, &tgt] {
        n.publish(&a, GROUP, "x.yaml", "x: 1\n");
        n.publish(&a, GROUP, "y.yaml", "y: 1\n");
    }
    tgt.publish(&bn, GROUP, "x.yaml", "x: 1\n");
    let dir = crate::support::tempdir("gate-rnacos");
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, format!("[namespace_map]\n\"{a}\" = \"{bn}\"\n")).unwrap();
    let r = audit(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--namespace",
            &a,
            "--settle",
            "0",
            "--no-probe",
            "--source-nacos",
            &b.source_rnacos,
            "--target-nacos",
            &b.target_rnacos,
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.output);
    assert_eq!(
        found(&r),
        vec![f("config-missing", "L3", &a, "y.yaml")],
        "{}",
        r.output
    );
}

/// Item 3: a mistyped `--namespace` (on neither side) is a source-error naming it, exit 3,
/// never "No drift".
#[test]
fn a_mistyped_namespace_is_not_a_clean_audit() {
    let Some(b) = bed() else { return };
    let typo = format!("it-prdo-{}", unique());
    let r = java_audit(&b, "", &["--namespace", &typo], &[]);
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(!r.output.contains("No drift"), "{}", r.output);
    assert!(
        r.output.contains(&format!(
            "flag --namespace: namespace `{typo}` is not on the source nor on the target"
        )),
        "{}",
        r.output
    );
    // From the config file, with its line.
    let r = java_audit(
        &b,
        &format!("[audit]\nnamespaces = [\"{typo}\"]\n"),
        &[],
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output
            .contains(&format!("c.toml:2: audit.namespaces: namespace `{typo}`")),
        "{}",
        r.output
    );
}

/// Item 4: an audit that compares nothing does not pass. Every layer ran against the real
/// servers but every namespace was ignored: exit 3; sides that leave no layer to run: exit 2
/// before anything is read.
#[test]
fn an_audit_that_compares_nothing_does_not_pass() {
    let Some(b) = bed() else { return };
    let r = java_audit(&b, "", &[], &[("NACOS_DRIFT_IGNORE_NAMESPACES", "*")]);
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(r.output.contains("nothing was compared"), "{}", r.output);
    assert_eq!(r.json["complete"], false, "{}", r.output);

    let (sdb, spw) = split_dsn(&b.source_db);
    let r = audit(
        &[
            "--source-db",
            &sdb,
            "--target-nacos",
            &b.target_nacos[0],
            "--no-probe",
        ],
        &[("NACOS_DRIFT_SOURCE_DB_PASSWORD", &spw)],
    );
    assert_eq!(r.code, 2, "{}", r.output);
    assert!(r.output.contains("no layer can run"), "{}", r.output);
}
