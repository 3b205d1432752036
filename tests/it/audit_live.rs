//! Issue 3 against the real test bed: a clean pair exits 0, each drift kind made for real is reported exactly, errors exit 3.
//!
//! Three pairs: Java 2.0.4 → 2.3.2 over replicated MariaDB (L1 + L3), r-nacos → r-nacos (L3), and
//! the Java 2.0.4 source → a Nacos 3.x node read through the v3 admin API (L3).
//!
//! Every test works in a namespace of its own and audits only that namespace, so tests can run in
//! parallel and repeatedly on the same bed.

use crate::ops::{
    audit, cred_env, live_port, split_dsn, sql, sql_value, wait_until, Node, Run, SdkClient,
};
use crate::support::{bed, unique, Bed};

/// Which server family a pair runs on.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Java Nacos (source 1 node, target 2 nodes) over replicated MariaDB: L1 and L3.
    Java,
    /// r-nacos on both sides, API only: L3.
    Rnacos,
    /// The Java 2.0.4 source node against a Nacos 3.x node (v3 admin API), API only: L3.
    Nacos3,
}

/// A clean, identical source/target pair inside one fresh namespace.
struct Pair {
    bed: Bed,
    kind: Kind,
    ns: String,
    src: Node,
    tgt: Node,
    _listener: std::net::TcpListener,
    port: u16,
}

const GROUP: &str = "APP";

impl Pair {
    fn new(bed: Bed, kind: Kind) -> Pair {
        let ns = format!("it-{}", unique());
        let (src, tgt) = match kind {
            Kind::Java => (
                Node::login(&bed.source_nacos[0], &bed.username, &bed.password),
                Node::login(&bed.target_nacos[0], &bed.username, &bed.password),
            ),
            Kind::Rnacos => (
                Node::login(&bed.source_rnacos, "", ""),
                Node::login(&bed.target_rnacos, "", ""),
            ),
            Kind::Nacos3 => (
                Node::login(&bed.source_nacos[0], &bed.username, &bed.password),
                Node::login(&bed.nacos3, &bed.username, &bed.password),
            ),
        };
        let (listener, port) = live_port();
        src.create_namespace(&ns);
        src.publish(&ns, GROUP, "app.properties", "a=1\nb=2\n");
        match kind {
            Kind::Java => {
                // Namespaces and configs reach the target through DB replication.
                let q = format!("SELECT md5 FROM config_info WHERE tenant_id='{ns}' AND data_id='app.properties'");
                assert!(
                    wait_until(30, || sql_value(&bed.target_db, &q).is_some()),
                    "replication did not bring {ns} to the target DB"
                );
            }
            Kind::Rnacos | Kind::Nacos3 => {
                tgt.create_namespace(&ns);
                tgt.publish(&ns, GROUP, "app.properties", "a=1\nb=2\n");
            }
        }
        for n in [&src, &tgt] {
            n.register(
                &ns,
                GROUP,
                "orders",
                port,
                &[("weight", "2"), ("metadata", r#"{"zone":"a"}"#)],
            );
        }
        assert!(wait_until(20, || src.instance_count(&ns, GROUP, "orders")
            == 1
            && tgt.instance_count(&ns, GROUP, "orders") == 1));
        Pair {
            bed,
            kind,
            ns,
            src,
            tgt,
            _listener: listener,
            port,
        }
    }

    /// Audit arguments. L2 (node caches) is left to the cache tests: here the target nodes are
    /// stale by design (replicated rows are never announced to them), which is not what these tests are about.
    fn args(&self) -> Vec<String> {
        self.args_with_target(&self.bed.target_nacos)
    }

    fn args_with_target(&self, target_nodes: &[String]) -> Vec<String> {
        let mut a = vec![
            "--namespace".to_owned(),
            self.ns.clone(),
            "--settle".into(),
            "0".into(),
            "--no-probe".into(),
        ];
        match self.kind {
            Kind::Java => {
                a.extend([
                    "--source-nacos".to_owned(),
                    self.bed.source_nacos.join(","),
                    "--target-nacos".into(),
                    target_nodes.join(","),
                    "--source-db".into(),
                    split_dsn(&self.bed.source_db).0,
                    "--target-db".into(),
                    split_dsn(&self.bed.target_db).0,
                ]);
            }
            Kind::Rnacos => {
                a.extend([
                    "--source-nacos".to_owned(),
                    self.bed.source_rnacos.clone(),
                    "--target-nacos".into(),
                    self.bed.target_rnacos.clone(),
                ]);
            }
            Kind::Nacos3 => {
                a.extend([
                    "--source-nacos".to_owned(),
                    self.bed.source_nacos[0].clone(),
                    "--target-nacos".into(),
                    self.bed.nacos3.clone(),
                ]);
            }
        }
        a
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut e: Vec<(&'static str, String)> = Vec::new();
        if self.kind == Kind::Nacos3 {
            e.extend(cred_env(&self.bed.username, &self.bed.password));
        }
        if self.kind == Kind::Java {
            e.extend(cred_env(&self.bed.username, &self.bed.password));
            e.push((
                "NACOS_DRIFT_SOURCE_DB_PASSWORD",
                split_dsn(&self.bed.source_db).1,
            ));
            e.push((
                "NACOS_DRIFT_TARGET_DB_PASSWORD",
                split_dsn(&self.bed.target_db).1,
            ));
        }
        e
    }

    fn audit_with(&self, extra_args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        self.audit_custom(self.args(), extra_args, extra_env)
    }

    fn audit_custom(
        &self,
        args: Vec<String>,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Run {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(extra_args);
        let env = self.env();
        let mut e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        e.extend_from_slice(extra_env);
        audit(&all, &e)
    }

    fn audit(&self) -> Run {
        self.audit_with(&[], &[])
    }

    /// Layers where config drift shows: L1 and L3 on Java (the target API lists configs from its DB), L3 on r-nacos.
    fn config_layers(&self) -> Vec<&'static str> {
        match self.kind {
            Kind::Java => vec!["L1", "L3"],
            Kind::Rnacos | Kind::Nacos3 => vec!["L3"],
        }
    }
}

fn expect(run: &Run, want: &[(&str, &str, &str)]) {
    let mut want: Vec<(String, String, String)> = want
        .iter()
        .map(|(c, l, w)| ((*c).into(), (*l).into(), (*w).into()))
        .collect();
    want.sort();
    assert_eq!(
        run.findings(),
        want,
        "unexpected findings; output:\n{}",
        run.output
    );
    let code = if want.is_empty() { 0 } else { 1 };
    assert_eq!(run.code, code, "exit code; output:\n{}", run.output);
}

/// An API-only audit of these node lists with the bed's credentials and `--settle 0`;
/// `extra_env` wins over the credentials.
fn api_audit(
    b: &Bed,
    source: &str,
    target: &str,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Run {
    let creds = cred_env(&b.username, &b.password);
    let mut env: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra_env);
    let mut all = vec![
        "--settle",
        "0",
        "--source-nacos",
        source,
        "--target-nacos",
        target,
    ];
    all.extend_from_slice(args);
    audit(&all, &env)
}

fn each_kind(test: impl Fn(Pair)) {
    let Some(b) = bed() else { return };
    for kind in [Kind::Java, Kind::Rnacos, Kind::Nacos3] {
        test(Pair::new(b.clone(), kind));
    }
}

#[test]
fn clean_pair_exits_0() {
    each_kind(|p| {
        let r = p.audit();
        expect(&r, &[]);
        assert_eq!(r.json["complete"], true);
    });
}

#[test]
fn config_published_on_the_target_only_is_config_extra() {
    each_kind(|p| {
        p.tgt.publish(&p.ns, GROUP, "only-target.yaml", "x: 1\n");
        let want: Vec<_> = p
            .config_layers()
            .into_iter()
            .map(|l| ("config-extra", l, "APP/only-target.yaml/"))
            .collect();
        expect(&p.audit(), &want);
    });
}

#[test]
fn config_deleted_on_the_target_only_is_config_missing() {
    each_kind(|p| {
        p.tgt.delete_config(&p.ns, GROUP, "app.properties");
        let want: Vec<_> = p
            .config_layers()
            .into_iter()
            .map(|l| ("config-missing", l, "APP/app.properties/"))
            .collect();
        expect(&p.audit(), &want);
    });
}

#[test]
fn config_changed_on_one_side_is_content_differs_with_a_masked_diff() {
    each_kind(|p| {
        match p.kind {
            // A replica row changed behind Nacos's back (what a broken DTS job does).
            Kind::Java => sql(
                &p.bed.target_db,
                &format!("UPDATE config_info SET content='a=1\\nb=3\\npassword=topsecret\\n', md5=MD5('a=1\\nb=3\\npassword=topsecret\\n') WHERE tenant_id='{}' AND data_id='app.properties'", p.ns),
            ),
            Kind::Rnacos | Kind::Nacos3 => p.tgt.publish(&p.ns, GROUP, "app.properties", "a=1\nb=3\npassword=topsecret\n"),
        }
        let r = p.audit();
        let want: Vec<_> = p
            .config_layers()
            .into_iter()
            .map(|l| ("config-content-differs", l, "APP/app.properties/"))
            .collect();
        expect(&r, &want);
        let diffs: Vec<&str> = r.json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["diff"].as_str())
            .collect();
        assert_eq!(
            diffs.len(),
            want.len(),
            "every content finding carries a diff: {}",
            r.output
        );
        for d in diffs {
            assert!(is_the_masked_b_diff(d), "{d}");
        }
        assert!(!r.output.contains("topsecret"));
    });
}

/// The diff of `a=1 b=2` against `a=1 b=3 password=topsecret`, the secret masked.
fn is_the_masked_b_diff(d: &str) -> bool {
    d.contains("-b=2") && d.contains("+b=3") && d.contains("+password= ****")
}

/// An audit holds API configs as digests and fetches content back only for what differs (the
/// test above); a snapshot file still carries every config's content, which `diff` between two
/// files needs.
#[test]
fn a_snapshot_file_carries_the_api_configs_content() {
    each_kind(|p| {
        let target = match p.kind {
            Kind::Java => p.bed.target_nacos.join(","),
            Kind::Rnacos => p.bed.target_rnacos.clone(),
            Kind::Nacos3 => p.bed.nacos3.clone(),
        };
        let file = crate::support::tempdir("snapshot-content").join("target.json");
        let file_s = file.to_str().unwrap().to_owned();
        let args = [
            "snapshot",
            "--side",
            "target",
            "--target-nacos",
            &target,
            "--namespace",
            &p.ns,
            "--output",
            &file_s,
        ];
        let env = p.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let o = crate::support::run(&args, &env);
        assert_eq!(o.status.code(), Some(0), "{}", crate::support::text(&o));
        let snap: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let configs = snap["api"]["configs"].as_array().expect("api configs");
        let cfg = configs
            .iter()
            .find(|c| c["data_id"] == "app.properties")
            .unwrap_or_else(|| panic!("app.properties not in {configs:?}"));
        assert_eq!(cfg["content"], "a=1\nb=2\n", "{cfg}");
    });
}

#[test]
fn instance_registered_on_the_source_only_is_instance_missing() {
    each_kind(|p| {
        let (_l, port) = live_port();
        p.src.register(&p.ns, GROUP, "orders", port, &[]);
        expect(
            &p.audit(),
            &[(
                "instance-missing",
                "L3",
                &format!("APP/orders/ 127.0.0.1:{port}"),
            )],
        );
    });
}

#[test]
fn service_registered_on_the_source_only_is_service_missing() {
    each_kind(|p| {
        let (_l, port) = live_port();
        p.src.register(&p.ns, GROUP, "payments", port, &[]);
        expect(&p.audit(), &[("service-missing", "L3", "APP/payments/")]);
    });
}

#[test]
fn instance_on_the_target_only_is_instance_extra() {
    each_kind(|p| {
        let (_l, port) = live_port();
        p.tgt.register(&p.ns, GROUP, "orders", port, &[]);
        expect(
            &p.audit(),
            &[(
                "instance-extra",
                "L3",
                &format!("APP/orders/ 127.0.0.1:{port}"),
            )],
        );
    });
}

#[test]
fn weight_enabled_and_metadata_changes_are_instance_differs() {
    each_kind(|p| {
        let loc = format!("APP/orders/ 127.0.0.1:{}", p.port);
        let set = |weight: &str, enabled: &str, meta: &str| {
            p.tgt.update_instance(
                &p.ns,
                GROUP,
                "orders",
                p.port,
                &[("weight", weight), ("enabled", enabled), ("metadata", meta)],
            );
        };
        set("3", "true", r#"{"zone":"a"}"#);
        let r = p.audit();
        expect(&r, &[("instance-differs", "L3", &loc)]);
        assert!(r.output.contains("weight: 2 → 3"), "{}", r.output);

        // (r-nacos 0.8.8 ignores an update back to weight 1, hence a baseline weight of 2.)
        set("2", "true", r#"{"zone":"b"}"#);
        let r = p.audit();
        expect(&r, &[("instance-differs", "L3", &loc)]);
        assert!(r.output.contains("zone: `a` → `b`"), "{}", r.output);

        // Keys added by sync tools and agents are ignored by default.
        set("2", "true", r#"{"zone":"a","syncSource":"nacos-sync"}"#);
        expect(&p.audit(), &[]);

        if p.kind != Kind::Rnacos {
            set("2", "false", r#"{"zone":"a","syncSource":"nacos-sync"}"#);
            let r = p.audit();
            expect(&r, &[("instance-differs", "L3", &loc)]);
            assert!(r.output.contains("enabled: true → false"), "{}", r.output);
        } else {
            // r-nacos leaves disabled instances out of every listing, so a disabled target
            // instance can only be seen as missing there.
            let port = p.port.to_string();
            let (s, b) = p.tgt.call(
                "PUT",
                "/v1/ns/instance",
                &[
                    ("namespaceId", p.ns.as_str()),
                    ("groupName", GROUP),
                    ("serviceName", "orders"),
                    ("ip", "127.0.0.1"),
                    ("port", port.as_str()),
                    ("ephemeral", "false"),
                    ("enabled", "false"),
                ],
            );
            assert_eq!(s, 200, "{b}");
            assert!(wait_until(20, || p
                .tgt
                .catalog_instances(&p.ns, GROUP, "orders")
                .is_empty()));
            expect(&p.audit(), &[("instance-missing", "L3", &loc)]);
        }
    });
}

#[test]
fn namespace_missing_on_the_target() {
    let Some(b) = bed() else { return };
    // Java: a namespace row lost on the replica.
    let p = Pair::new(b.clone(), Kind::Java);
    sql(
        &b.target_db,
        &format!("DELETE FROM tenant_info WHERE tenant_id='{}'", p.ns),
    );
    expect(
        &p.audit(),
        &[
            ("namespace-missing", "L1", "//"),
            ("namespace-missing", "L3", "//"),
        ],
    );
    // r-nacos: a namespace created on the source only (no configs or services in it).
    let r = Node::login(&b.source_rnacos, "", "");
    let ns = format!("it-{}", unique());
    r.create_namespace(&ns);
    let run = audit(
        &[
            "--namespace",
            &ns,
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
    expect(&run, &[("namespace-missing", "L3", "//")]);
    // Nacos 3.x: a namespace created on the 2.0.4 source only, read on 3.x through the v3 admin API.
    let src = Node::login(&b.source_nacos[0], &b.username, &b.password);
    let ns = format!("it-{}", unique());
    src.create_namespace(&ns);
    let run = api_audit(
        &b,
        &b.source_nacos[0],
        &b.nacos3,
        &["--namespace", &ns, "--no-probe"],
        &[],
    );
    expect(&run, &[("namespace-missing", "L3", "//")]);
    assert!(
        run.json["target"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with('3')),
        "{}",
        run.output
    );
}

#[test]
fn a_stopped_target_node_makes_the_audit_incomplete_exit_3() {
    let Some(b) = bed() else { return };
    let p = Pair::new(b.clone(), Kind::Java);
    p.tgt.publish(&p.ns, GROUP, "only-target.yaml", "x: 1\n");
    // A third target node that is down: nothing listens on its port.
    let mut nodes = b.target_nacos.clone();
    nodes.push("http://127.0.0.1:18898/nacos".into());
    let r = p.audit_custom(p.args_with_target(&nodes), &["--timeout", "3"], &[]);
    assert_eq!(r.code, 3, "{}", r.output);
    assert_eq!(r.json["complete"], false);
    // Partial results are still there, next to the error.
    let f = r.findings();
    assert!(f.iter().any(|x| x.0 == "config-extra"), "{f:?}");
    assert!(
        r.output.contains("http://127.0.0.1:18898/nacos")
            && r.output.contains("connection refused"),
        "{}",
        r.output
    );
}

#[test]
fn a_wrong_password_names_side_and_node_and_never_shows_the_password() {
    let Some(b) = bed() else { return };
    let p = Pair::new(b.clone(), Kind::Java);
    let r = p.audit_with(
        &[],
        &[("NACOS_DRIFT_TARGET_NACOS_PASSWORD", "Wr0ng-Pa55word")],
    );
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output.contains("target")
            && r.output.contains(&b.target_nacos[0])
            && r.output.contains("wrong username or password"),
        "{}",
        r.output
    );
    assert!(!r.output.contains("Wr0ng-Pa55word"));
    assert!(!serde_json::to_string(&r.json)
        .unwrap()
        .contains("Wr0ng-Pa55word"));
    // Nacos 3.x answers a wrong password on the v1 login with a 500: still named as such.
    let r = api_audit(
        &b,
        &b.nacos3,
        &b.nacos3,
        &["--no-probe"],
        &[("NACOS_DRIFT_SOURCE_NACOS_PASSWORD", "Wr0ng-Pa55word")],
    );
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output.contains(&b.nacos3) && r.output.contains("wrong username or password"),
        "{}",
        r.output
    );
    assert!(!r.output.contains("Wr0ng-Pa55word"));
}

#[test]
fn desc_or_tags_changed_on_the_replica_are_config_meta_differs_tags_at_l3_per_config_only() {
    let Some(b) = bed() else { return };
    let p = Pair::new(b.clone(), Kind::Java);
    let key = format!(
        "tenant_id='{}' AND group_id='{GROUP}' AND data_id='app.properties'",
        p.ns
    );
    sql(
        &b.target_db,
        &format!("UPDATE config_info SET c_desc='edited on the target' WHERE {key}"),
    );
    let r = p.audit();
    expect(
        &r,
        &[
            ("config-meta-differs", "L1", "APP/app.properties/"),
            ("config-meta-differs", "L3", "APP/app.properties/"),
        ],
    );
    assert!(r.output.contains("desc"), "{}", r.output);
    // Same desc again, but a tag only on the target.
    let desc = sql_value(
        &b.source_db,
        &format!("SELECT IFNULL(c_desc, '') FROM config_info WHERE {key}"),
    )
    .unwrap_or_default();
    sql(
        &b.target_db,
        &format!("UPDATE config_info SET c_desc='{desc}' WHERE {key}"),
    );
    let id = sql_value(
        &b.target_db,
        &format!("SELECT id FROM config_info WHERE {key}"),
    )
    .unwrap();
    sql(
        &b.target_db,
        &format!("INSERT INTO config_tags_relation (id, tag_name, tag_type, data_id, group_id, tenant_id) VALUES ({id}, 'pci', '', 'app.properties', '{GROUP}', '{}')", p.ns),
    );
    // No bulk answer of Java Nacos carries tags: by default (`audit.config_meta = "bulk"`) L3
    // does not compare them and says so; L1 still finds the tag.
    let r = p.audit();
    expect(&r, &[("config-meta-differs", "L1", "APP/app.properties/")]);
    assert!(r.output.contains("tags: added [pci]"), "{}", r.output);
    assert!(
        r.output.contains("not compared: config tags on") && r.output.contains("no bulk endpoint"),
        "{}",
        r.output
    );
    // One request per config reads them.
    let r = p.audit_with(&[], &[("NACOS_DRIFT_AUDIT_CONFIG_META", "per-config")]);
    expect(
        &r,
        &[
            ("config-meta-differs", "L1", "APP/app.properties/"),
            ("config-meta-differs", "L3", "APP/app.properties/"),
        ],
    );
    assert!(
        !r.output.contains("not compared: config tags"),
        "{}",
        r.output
    );
}

/// The L1 scan verifies content inside each DB (CRC32 + CRC32C on MariaDB 10.8+, or MD5): a
/// replica row whose content changed but whose `md5` column was left as it was (a sync that copied
/// content only) is found by either digest, while the stored md5 columns still agree.
#[test]
fn a_replica_content_change_with_a_stale_md5_column_is_found_by_both_db_digests() {
    let Some(b) = bed() else { return };
    let p = Pair::new(b.clone(), Kind::Java);
    let key = format!(
        "tenant_id='{}' AND group_id='{GROUP}' AND data_id='app.properties'",
        p.ns
    );
    sql(
        &b.target_db,
        &format!("UPDATE config_info SET content='a=1\\nb=9\\n' WHERE {key}"),
    );
    let md5 = |dsn: &str| sql_value(dsn, &format!("SELECT md5 FROM config_info WHERE {key}"));
    assert_eq!(md5(&b.source_db), md5(&b.target_db), "md5 columns agree");
    for (setting, digest) in [("auto", "crc32+crc32c"), ("md5", "md5")] {
        let r = p.audit_with(&[], &[("NACOS_DRIFT_AUDIT_DB_DIGEST", setting)]);
        expect(
            &r,
            &[
                ("config-content-differs", "L1", "APP/app.properties/"),
                ("config-content-differs", "L3", "APP/app.properties/"),
            ],
        );
        for side in ["source", "target"] {
            assert_eq!(
                r.json[side]["db_content_digest"], digest,
                "db_digest = {setting}: {}",
                r.output
            );
        }
        assert!(r.output.contains("+b=9"), "{}", r.output);
    }
}

/// `decommission-ready`: nothing may be left only on the source and no client may still use it.
/// A real Java SDK client connected to the source node fails the gate; once it disconnects the
/// gate passes. r-nacos lists no connections: the report says the check could not be made.
#[test]
fn decommission_ready_fails_while_an_sdk_client_is_connected_to_the_source() {
    each_kind(|p| {
        let gate = ["--gate", "decommission-ready"];
        // The previous pair's client (same source node) may still be listed for a moment after
        // it closed: the node drops a connection when the client's shutdown reaches it.
        let _ = wait_until(30, || p.audit_with(&gate, &[]).code == 0);
        let r = p.audit_with(&gate, &[]);
        expect(&r, &[]);
        let notes = |r: &Run, key: &str| -> String {
            r.json[key]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        };
        if p.kind == Kind::Rnacos {
            assert!(
                notes(&r, "not_compared").contains("does not list client connections"),
                "{}",
                r.output
            );
            return;
        }
        assert!(
            notes(&r, "compared").contains("connected clients"),
            "{}",
            r.output
        );
        let app = format!("app-{}", p.ns);
        let client = SdkClient::connect(&p.bed.source_nacos[0], &p.ns, &app);
        let r = p.audit_with(&gate, &[]);
        let f = r.findings();
        assert_eq!(f.len(), 1, "{}", r.output);
        assert_eq!(f[0].0, "client-connected", "{}", r.output);
        assert!(f[0].2.starts_with(&format!("/{app}/ ")), "{f:?}");
        assert_eq!(r.code, 1, "{}", r.output);
        assert!(r.output.contains("still uses the source"), "{}", r.output);
        // The same audit without the gate does not ask for connections.
        expect(&p.audit(), &[]);
        drop(client);
        assert!(
            wait_until(20, || p.audit_with(&gate, &[]).code == 0),
            "the gate still fails after the client disconnected"
        );
    });
}

/// On a Nacos 3.x source the decommission check reads the v3 admin connection list.
#[test]
fn decommission_ready_sees_an_sdk_client_of_a_nacos3_source() {
    let Some(b) = bed() else { return };
    let ns = format!("it-{}", unique());
    let n3 = Node::login(&b.nacos3, &b.username, &b.password);
    n3.create_namespace(&ns);
    // The same node on both sides: nothing differs, so only a client can fail the gate.
    let args = [
        "--namespace",
        &ns,
        "--no-probe",
        "--gate",
        "decommission-ready",
    ];
    let run = || api_audit(&b, &b.nacos3, &b.nacos3, &args, &[]);
    let app = format!("app-{ns}");
    let client = SdkClient::connect(&b.nacos3, &ns, &app);
    let r = run();
    let f = r.findings();
    assert!(
        f.iter()
            .any(|x| x.0 == "client-connected" && x.2.starts_with(&format!("/{app}/ "))),
        "{}",
        r.output
    );
    assert_eq!(r.code, 1, "{}", r.output);
    drop(client);
    assert!(
        wait_until(20, || !run()
            .findings()
            .iter()
            .any(|x| x.2.starts_with(&format!("/{app}/ ")))),
        "the client is still listed after it disconnected"
    );
}

/// The L2 listener probe on a Nacos 3.x node (the v1 listener endpoint is still served there):
/// every key is probed and a matching cache gives no finding. (A stale 3.x cache cannot be made
/// on the bed: the node keeps its data in embedded Derby, which nothing else can write.)
#[test]
fn l2_probe_reads_a_nacos3_nodes_cache() {
    let Some(b) = bed() else { return };
    let ns = format!("it-{}", unique());
    let n3 = Node::login(&b.nacos3, &b.username, &b.password);
    n3.create_namespace(&ns);
    n3.publish(&ns, GROUP, "a.yaml", "a: 1\n");
    n3.publish(&ns, GROUP, "b.yaml", "b: 2\n");
    let r = api_audit(&b, &b.nacos3, &b.nacos3, &["--namespace", &ns], &[]);
    expect(&r, &[]);
    assert_eq!(r.json["probe"]["target"]["keys"], 2, "{}", r.output);
    assert_eq!(r.json["probe"]["target"]["nodes"], 1, "{}", r.output);
}

/// L1 compares the variant tables too, on real MariaDB and with either in-DB digest: a beta row
/// changed on the replica, a tag row and a gray row (the 3.x table) only on the replica. The API
/// lists formal configs only, so these are L1 findings alone.
#[test]
fn beta_tag_and_gray_rows_are_compared_at_l1() {
    let Some(b) = bed() else { return };
    let p = Pair::new(b.clone(), Kind::Java);
    let (ns, g, d) = (p.ns.as_str(), GROUP, "app.properties");
    // A beta release on the source; it replicates.
    sql(
        &b.source_db,
        &format!("INSERT INTO config_info_beta (data_id, group_id, tenant_id, app_name, content, beta_ips, md5, encrypted_data_key) VALUES ('{d}', '{g}', '{ns}', '', 'a=1\\nb=2-beta\\n', '127.0.0.1', MD5('a=1\\nb=2-beta\\n'), '')"),
    );
    let beta = format!("SELECT md5 FROM config_info_beta WHERE tenant_id='{ns}' AND data_id='{d}'");
    assert!(wait_until(30, || sql_value(&b.target_db, &beta).is_some()));
    expect(&p.audit(), &[]);
    // The replica's beta row changed, a tag row and a gray row written on the replica only.
    sql(
        &b.target_db,
        &format!("UPDATE config_info_beta SET content='a=1\\nb=3-beta\\n' WHERE tenant_id='{ns}' AND data_id='{d}'"),
    );
    sql(
        &b.target_db,
        &format!("INSERT INTO config_info_tag (data_id, group_id, tenant_id, tag_id, app_name, content, md5) VALUES ('{d}', '{g}', '{ns}', 'blue', '', 'a=1\\n', MD5('a=1\\n'))"),
    );
    // Nacos 3.x keeps gray releases in config_info_gray; 2.x servers ignore the table.
    sql(
        &b.target_db,
        "CREATE TABLE IF NOT EXISTS config_info_gray (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         data_id varchar(255) NOT NULL, group_id varchar(128) NOT NULL, content longtext NOT NULL, \
         md5 varchar(32), src_user text, src_ip varchar(100), \
         gmt_create datetime NOT NULL DEFAULT CURRENT_TIMESTAMP, gmt_modified datetime NOT NULL DEFAULT CURRENT_TIMESTAMP, \
         app_name varchar(128), tenant_id varchar(128) DEFAULT '', gray_name varchar(128) NOT NULL, \
         gray_rule text, encrypted_data_key varchar(256) NOT NULL DEFAULT '', \
         UNIQUE KEY uk_gray (data_id, group_id, tenant_id, gray_name)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    );
    sql(
        &b.target_db,
        &format!("INSERT INTO config_info_gray (data_id, group_id, tenant_id, gray_name, content, md5) VALUES ('{d}', '{g}', '{ns}', 'canary', 'a=9\\n', MD5('a=9\\n'))"),
    );
    for setting in ["auto", "md5"] {
        let r = p.audit_with(&[], &[("NACOS_DRIFT_AUDIT_DB_DIGEST", setting)]);
        expect(
            &r,
            &[
                ("config-content-differs", "L1", "APP/app.properties/beta"),
                ("config-extra", "L1", "APP/app.properties/tag:blue"),
                ("config-extra", "L1", "APP/app.properties/gray:canary"),
            ],
        );
        assert!(r.output.contains("+b=3-beta"), "{}", r.output);
    }
}

/// The settling re-check: a difference that is gone when the audit looks again (a replica or a
/// sync tool catching up while the audit runs) is not reported, only counted as settled; one that
/// is still there is reported, and at L1 with its age.
#[test]
fn lag_that_catches_up_during_the_settle_window_is_not_drift() {
    each_kind(|p| {
        // The target falls behind: other content there (Java: in the replica's row; r-nacos and
        // 3.x: through its API). It catches up when the audit announces its settle wait, i.e.
        // after the first pass saw the difference: an event of the run, not a guessed delay. The
        // window is long beside one UPDATE or one publish, and nothing here measures time.
        let behind = "a=1\nb=1\n";
        let set_target = |content: &str| {
            match p.kind {
            Kind::Java => sql(
                &p.bed.target_db,
                &format!(
                    "UPDATE config_info SET content='{}', md5=MD5('{}') WHERE tenant_id='{}' AND data_id='app.properties'",
                    content.replace('\n', "\\n"),
                    content.replace('\n', "\\n"),
                    p.ns
                ),
            ),
            Kind::Rnacos | Kind::Nacos3 => p.tgt.publish(&p.ns, GROUP, "app.properties", content),
        }
        };
        set_target(behind);
        let mut args = p.args();
        // replace `--settle 0` with a settle window
        let i = args.iter().position(|a| a == "--settle").unwrap();
        args[i + 1] = "20".into();
        let all: Vec<&str> = args.iter().map(String::as_str).collect();
        let env = p.env();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // `run::settle` logs this line just before it waits.
        let r = crate::ops::audit_at_log_line(&all, &e, "re-checking in 20 s", || {
            set_target("a=1\nb=2\n");
        });
        expect(&r, &[]);
        let settled = r.json["summary"]["settled"].as_u64().unwrap_or(0);
        assert_eq!(
            settled,
            p.config_layers().len() as u64,
            "one settled difference per layer: {}",
            r.output
        );
        // Still behind at the re-check: reported, with its age at L1.
        set_target(behind);
        let mut args = p.args();
        let i = args.iter().position(|a| a == "--settle").unwrap();
        args[i + 1] = "1".into();
        let r = p.audit_custom(args, &[], &[]);
        let want: Vec<_> = p
            .config_layers()
            .into_iter()
            .map(|l| ("config-content-differs", l, "APP/app.properties/"))
            .collect();
        expect(&r, &want);
        if p.kind == Kind::Java {
            let l1 = r.json["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["layer"] == "L1")
                .unwrap();
            assert!(l1["age_secs"].as_i64().is_some(), "{}", r.output);
        }
    });
}

/// Ignore rules (dataId, group and service globs, from the environment) drop exactly what they
/// match; `[namespace_map]` (from a config file) pairs a source namespace with a target namespace
/// of another id. Run on the r-nacos pair (API only).
#[test]
fn ignore_globs_and_namespace_mapping_hold_on_real_servers() {
    let Some(b) = bed() else { return };
    let p = Pair::new(b.clone(), Kind::Rnacos);
    let (_l, port) = live_port();
    p.tgt.publish(&p.ns, GROUP, "tmp-1.yaml", "x: 1\n");
    p.tgt.publish(&p.ns, "SCRATCH", "a.yaml", "x: 1\n");
    p.src.register(&p.ns, GROUP, "canary-orders", port, &[]);
    let all = [
        ("config-extra", "L3", "APP/tmp-1.yaml/"),
        ("config-extra", "L3", "SCRATCH/a.yaml/"),
        ("service-missing", "L3", "APP/canary-orders/"),
    ];
    expect(&p.audit(), &all);
    let rules = [
        ("NACOS_DRIFT_IGNORE_DATA_IDS", "tmp-*"),
        ("NACOS_DRIFT_IGNORE_GROUPS", "SCRATCH"),
        ("NACOS_DRIFT_IGNORE_SERVICES", "canary-*"),
    ];
    expect(&p.audit_with(&[], &rules), &[]);
    // One rule alone drops only what it matches.
    expect(&p.audit_with(&[], &rules[..1]), &all[1..]);

    // The same config under namespace A on the source and B on the target.
    let (a, bns) = (format!("it-{}", unique()), format!("it-{}", unique()));
    p.src.create_namespace(&a);
    p.tgt.create_namespace(&bns);
    p.src.publish(&a, GROUP, "mapped.yaml", "m: 1\n");
    p.tgt.publish(&bns, GROUP, "mapped.yaml", "m: 1\n");
    let dir = crate::support::tempdir("nsmap");
    let cfg = dir.join("map.toml");
    std::fs::write(&cfg, format!("[namespace_map]\n\"{a}\" = \"{bns}\"\n")).unwrap();
    let args = [
        "--namespace",
        a.as_str(),
        "--settle",
        "0",
        "--no-probe",
        "--source-nacos",
        b.source_rnacos.as_str(),
        "--target-nacos",
        b.target_rnacos.as_str(),
    ];
    let unmapped = audit(&args, &[]);
    assert!(
        unmapped
            .findings()
            .iter()
            .any(|f| f.0 == "namespace-missing"),
        "{}",
        unmapped.output
    );
    let mut with_map = args.to_vec();
    with_map.extend(["--config", cfg.to_str().unwrap()]);
    expect(&audit(&with_map, &[]), &[]);
}

/// The L3 settling re-check reads again only what differed (the two configs' details and the
/// one service, never a namespace's export or list pages), clears a difference that caught up
/// meanwhile and keeps one that did not. Run on the 2.0.4 → 3.1 pair (API only, both sides
/// with a per-config detail view). The catch-up is written when the audit logs that its first
/// pass is done, inside a 30 s window, so the test does not race the clock.
#[test]
fn the_l3_recheck_rereads_only_what_differed() {
    use std::io::{BufRead, BufReader};
    let Some(b) = bed() else { return };
    let p = Pair::new(b, Kind::Nacos3);
    // Enough alike configs that two differing ones are read again one by one.
    for i in 0..30 {
        for n in [&p.src, &p.tgt] {
            n.publish(&p.ns, GROUP, &format!("same-{i:02}.yaml"), "x: 1\n");
        }
    }
    p.src.publish(&p.ns, GROUP, "heals.yaml", "v: 2\n");
    p.tgt.publish(&p.ns, GROUP, "heals.yaml", "v: 1\n");
    p.src.publish(&p.ns, GROUP, "stays.yaml", "v: 2\n");
    p.tgt.publish(&p.ns, GROUP, "stays.yaml", "v: 1\n");
    p.tgt
        .update_instance(&p.ns, GROUP, "orders", p.port, &[("weight", "3")]);
    let out = crate::support::tempdir("recheck");
    let mut args = p.args();
    let i = args.iter().position(|a| a == "--settle").unwrap();
    args[i + 1] = "30".into();
    let mut cmd = std::process::Command::new(crate::support::bin());
    cmd.args(["audit", "--format", "json", "--out", out.to_str().unwrap()])
        .args(&args)
        .env(
            "NACOS_DRIFT_LOG",
            "nacos_drift=info,nacos_drift::nacos::transport=debug",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("NACOS_DRIFT_")) {
        cmd.env_remove(k);
    }
    for (k, v) in p.env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let (mut first, mut recheck) = (String::new(), String::new());
    let mut settling = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if settling {
            recheck.push_str(&line);
            recheck.push('\n');
        } else {
            first.push_str(&line);
            first.push('\n');
            if line.contains("re-checking in") {
                settling = true;
                p.tgt.publish(&p.ns, GROUP, "heals.yaml", "v: 2\n");
            }
        }
    }
    let code = child.wait().unwrap().code();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let r = Run {
        code: code.unwrap_or(-1),
        json,
        output: format!("{first}--- re-check ---\n{recheck}"),
    };
    assert!(
        settling,
        "the audit never started its re-check: {}",
        r.output
    );
    let inst = format!("APP/orders/ 127.0.0.1:{}", p.port);
    expect(
        &r,
        &[
            ("config-content-differs", "L3", "APP/stays.yaml/"),
            ("instance-differs", "L3", &inst),
        ],
    );
    assert_eq!(r.json["summary"]["settled"], 1, "{}", r.output);
    let asked = |what: &str| recheck.matches(&format!("({what})")).count();
    // Two configs on each side, one by one; the service's namespace listing (which says
    // whether it exists) and its detail on each side; nothing read whole.
    assert_eq!(asked("config detail"), 4, "{}", r.output);
    assert_eq!(
        asked("config export") + asked("config list"),
        0,
        "{}",
        r.output
    );
    assert_eq!(asked("service list"), 2, "{}", r.output);
    assert_eq!(asked("service detail"), 2, "{}", r.output);
}

/// Rows for a namespace bigger than one query of a Java Nacos server returns, written straight
/// into a DB (`seq_1_to_N` is MariaDB's Sequence engine): `big-000001.yaml` … with desc and type.
fn seed_big_namespace(dsn: &str, ns: &str, n: u64) {
    sql(
        dsn,
        &format!(
            "INSERT INTO config_info (data_id, group_id, tenant_id, content, md5, gmt_create, \
             gmt_modified, src_user, src_ip, type, c_desc) \
             SELECT CONCAT('big-', LPAD(seq, 6, '0'), '.yaml'), '{GROUP}', '{ns}', c, MD5(c), NOW(), \
             NOW(), 'it', '127.0.0.1', 'yaml', CONCAT('config ', seq) \
             FROM (SELECT seq, CONCAT('n: ', seq, '\\n') AS c FROM seq_1_to_{n}) t"
        ),
    );
}

/// Deletes a namespace's rows from a DB when dropped, even when the test failed (50,000
/// leftover rows per failed run would slow every later query of the source DB). Errors are
/// ignored: a drop during a panic must not panic again.
struct DeleteNamespaceRows {
    dsn: String,
    ns: String,
}

impl Drop for DeleteNamespaceRows {
    fn drop(&mut self) {
        use mysql_async::prelude::*;
        let stmt = format!("DELETE FROM config_info WHERE tenant_id='{}'", self.ns);
        let dsn = self.dsn.clone();
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let pool = mysql_async::Pool::new(dsn.as_str());
            if let Ok(mut c) = pool.get_conn().await {
                let _ = c.query_drop(stmt).await;
                drop(c);
            }
            let _ = pool.disconnect().await;
        });
    }
}

/// A namespace of more configs than one query of a Java Nacos server returns (every query stops
/// at 50,000 rows: `setMaxRows(50000)` in `ExternalDataSourceServiceImpl`) is read whole through
/// the API, by row id in chunks: on the 2.0.4 source and the 2.3.2 target (L3 next to L1), and
/// on the 3.1 cluster through the v3 admin API when the bed runs it. One planted difference is
/// all that is found: no source-error, nothing missing or extra.
#[test]
fn a_namespace_over_the_servers_50000_row_cap_is_read_whole_through_the_api() {
    const N: u64 = 50_100;
    let Some(b) = bed() else { return };
    let p = Pair::new(b.clone(), Kind::Java);
    // The delete replicates to the target DB and is fed to the 3.x DB.
    let _cleanup = DeleteNamespaceRows {
        dsn: b.source_db.clone(),
        ns: p.ns.clone(),
    };
    seed_big_namespace(&b.source_db, &p.ns, N);
    let count = format!(
        "SELECT COUNT(*) FROM config_info WHERE tenant_id='{}'",
        p.ns
    );
    assert!(
        wait_until(120, || sql_value(&b.target_db, &count)
            == Some((N + 1).to_string())),
        "replication did not bring {N} rows to the target DB"
    );
    let changed = "big-031234.yaml";
    let set_changed = |dsn: &str| {
        sql(
            dsn,
            &format!(
                "UPDATE config_info SET content='n: changed\\n', md5=MD5('n: changed\\n') \
                 WHERE tenant_id='{}' AND data_id='{changed}'",
                p.ns
            ),
        );
    };
    set_changed(&b.target_db);
    let exports = |r: &Run| r.output.matches("(config export)").count();
    let r = p.audit_with(
        &[],
        &[(
            "NACOS_DRIFT_LOG",
            "nacos_drift=info,nacos_drift::nacos::transport=debug",
        )],
    );
    expect(
        &r,
        &[
            (
                "config-content-differs",
                "L1",
                &format!("{GROUP}/{changed}/"),
            ),
            (
                "config-content-differs",
                "L3",
                &format!("{GROUP}/{changed}/"),
            ),
        ],
    );
    assert_eq!(r.json["source"]["api_configs"], N + 1, "{}", r.output);
    assert_eq!(r.json["target"]["api_configs"], N + 1, "{}", r.output);
    // Each side in more than one export, and more than one chunk each beyond the first half.
    assert!(exports(&r) > 4, "{} exports: {}", exports(&r), r.output);

    if !b.v3_nacos.is_empty() {
        // The 3.1 cluster's DB is fed from the source DB (the namespace and every row arrive
        // there too), and is read through the v3 admin API only.
        let v3 = Node::login(&b.v3_nacos[0], &b.username, &b.password);
        assert!(
            wait_until(120, || sql_value(&b.v3_db, &count)
                == Some((N + 1).to_string())),
            "the feed did not bring {N} rows to the 3.x DB"
        );
        set_changed(&b.v3_db);
        v3.register(
            &p.ns,
            GROUP,
            "orders",
            p.port,
            &[("weight", "2"), ("metadata", r#"{"zone":"a"}"#)],
        );
        assert!(wait_until(20, || v3.instance_count(&p.ns, GROUP, "orders") == 1));
        let ns = p.ns.clone();
        let src = b.source_nacos[0].clone();
        let tgt = b.v3_nacos.join(",");
        let args = [
            "--namespace",
            &ns,
            "--settle",
            "0",
            "--no-probe",
            "--source-nacos",
            &src,
            "--target-nacos",
            &tgt,
        ];
        let mut env = cred_env(&b.username, &b.password);
        env.insert(
            "NACOS_DRIFT_LOG",
            "nacos_drift=info,nacos_drift::nacos::transport=debug".to_owned(),
        );
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = audit(&args, &env);
        expect(
            &r,
            &[(
                "config-content-differs",
                "L3",
                &format!("{GROUP}/{changed}/"),
            )],
        );
        assert_eq!(r.json["target"]["api_configs"], N + 1, "{}", r.output);
        assert!(exports(&r) > 4, "{} exports: {}", exports(&r), r.output);
    }
}

/// A server that fails a namespace's export with a 5xx (what Nacos answers when it cancels the
/// export's SELECT at its 3 s query timeout on a busy DB) is read by row ids instead, and every
/// config is still compared. The fault comes from a stand-in in front of the real 2.3.2 node:
/// it answers the whole-namespace export (`ids` empty) 500 and passes every other request on.
#[test]
fn a_namespace_whose_export_fails_is_read_by_row_ids() {
    use crate::standin::{self, Reply};
    let Some(b) = bed() else { return };
    let p = Pair::new(b, Kind::Java);
    sql(
        &p.bed.target_db,
        &format!("UPDATE config_info SET content='a=1\\nb=3\\n', md5=MD5('a=1\\nb=3\\n') WHERE tenant_id='{}' AND data_id='app.properties'", p.ns),
    );
    let upstream = p.bed.target_nacos[0]
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let node = standin::start("", move |req, _| {
        let whole_export = req.path == "/nacos/v1/cs/configs"
            && req.param_is("exportV2", "true")
            && req.param_is("ids", "");
        Some(if whole_export {
            Reply::Http(
                "500 Internal Server Error",
                Vec::new(),
                b"caused: PreparedStatementCallback; Statement cancelled due to timeout or client request".to_vec(),
            )
        } else {
            standin::forward(req, &upstream)
        })
    });
    let r = p.audit_custom(
        p.args_with_target(std::slice::from_ref(&node.base)),
        &[],
        &[],
    );
    expect(
        &r,
        &[
            ("config-content-differs", "L1", "APP/app.properties/"),
            ("config-content-differs", "L3", "APP/app.properties/"),
        ],
    );
    let requests = node.requests.lock().unwrap().clone();
    let exports = |by_ids: bool| {
        requests
            .iter()
            .filter(|q| q.path == "/nacos/v1/cs/configs" && q.param_is("exportV2", "true"))
            .filter(|q| q.param_is("ids", "") != by_ids)
            .count()
    };
    // The whole export was asked (and retried), then the namespace by ids.
    assert!(exports(false) >= 1, "no whole export asked: {requests:?}");
    assert!(exports(true) >= 1, "no export by ids: {requests:?}");
    assert!(r.output.contains("by row ids instead"), "{}", r.output);
}

/// A service whose protect threshold differs is `service-meta-differs` on every pair. On r-nacos
/// this reads the service detail by `group@@name`: asked by the bare name (the service is in
/// group `APP`), r-nacos answered "service not found" and nacos-drift compared defaults, so
/// this difference passed unseen.
#[test]
fn a_service_whose_protect_threshold_differs_is_service_meta_differs() {
    each_kind(|p| {
        let path = match p.kind {
            Kind::Java | Kind::Rnacos => "/v1/ns/service",
            Kind::Nacos3 => "/v3/admin/ns/service",
        };
        let (s, b) = p.tgt.call(
            "PUT",
            path,
            &[
                ("namespaceId", p.ns.as_str()),
                ("groupName", GROUP),
                ("serviceName", "orders"),
                ("protectThreshold", "0.5"),
            ],
        );
        assert_eq!(s, 200, "{b}");
        let r = p.audit();
        expect(&r, &[("service-meta-differs", "L3", "APP/orders/")]);
        assert!(r.output.contains("0.5"), "{}", r.output);
    });
}

/// The stand-in in front of the pair's first target node, handing every request not taken by
/// `take` to the real node.
fn standin_before_target(
    p: &Pair,
    take: impl Fn(&crate::standin::Request) -> Option<crate::standin::Reply> + Send + Sync + 'static,
) -> crate::standin::StandIn {
    let upstream = p.bed.target_nacos[0]
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    crate::standin::start("", move |req, _| {
        Some(take(req).unwrap_or_else(|| crate::standin::forward(req, &upstream)))
    })
}

fn is_detail_of(req: &crate::standin::Request, name: &str) -> bool {
    req.method == "GET" && req.path == "/nacos/v1/ns/service" && req.param_is("serviceName", name)
}

/// A service listed by the target and removed before its detail is read (Nacos 2.x removes a
/// service whose instances are gone) is read as the node has it by then: missing, not a
/// `source-error`, and its real "service not found" answer is not retried. The stand-in only
/// times the removal: it deletes the service on the real 2.3.2 node when nacos-drift first asks
/// its detail, and the real node answers.
#[test]
fn a_service_removed_while_it_is_read_is_missing_not_a_source_error() {
    let Some(b) = bed() else { return };
    let p = Pair::new(b, Kind::Java);
    for n in [&p.src, &p.tgt] {
        n.register(&p.ns, GROUP, "leaving", p.port, &[]);
    }
    assert!(wait_until(20, || p
        .tgt
        .instance_count(&p.ns, GROUP, "leaving")
        == 1));
    let (tgt, ns, port) = (p.tgt.clone(), p.ns.clone(), p.port.to_string());
    let removed = std::sync::atomic::AtomicBool::new(false);
    let node = standin_before_target(&p, move |req| {
        if is_detail_of(req, "leaving") && !removed.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let who = [
                ("namespaceId", ns.as_str()),
                ("groupName", GROUP),
                ("serviceName", "leaving"),
            ];
            let mut inst = who.to_vec();
            inst.extend([
                ("ip", "127.0.0.1"),
                ("port", port.as_str()),
                ("ephemeral", "false"),
            ]);
            assert_eq!(tgt.call("DELETE", "/v1/ns/instance", &inst).0, 200);
            // The instance leaves through Raft, asynchronously; the service is refused until then.
            assert!(wait_until(30, || tgt
                .call("DELETE", "/v1/ns/service", &who)
                .0
                == 200));
            assert!(wait_until(30, || tgt.call("GET", "/v1/ns/service", &who).0 != 200));
        }
        None
    });
    let r = p.audit_custom(
        p.args_with_target(std::slice::from_ref(&node.base)),
        &[],
        &[],
    );
    expect(&r, &[("service-missing", "L3", "APP/leaving/")]);
    let requests = node.requests.lock().unwrap().clone();
    let details = requests
        .iter()
        .filter(|q| is_detail_of(q, "leaving"))
        .count();
    assert_eq!(
        details, 1,
        "the not-found answer was asked again: {requests:?}"
    );
}

/// A node that lists a service and answers its detail "service not found" (as r-nacos did when
/// asked by the bare name) is a `source-error` naming the service, never a service read as
/// absent or with defaults: the second listing still has it.
#[test]
fn a_service_listed_but_answered_not_found_is_a_source_error() {
    use crate::standin::Reply;
    let Some(b) = bed() else { return };
    let p = Pair::new(b, Kind::Java);
    let ns = p.ns.clone();
    let node = standin_before_target(&p, move |req| {
        is_detail_of(req, "orders").then(|| {
            Reply::Http(
                "500 Internal Server Error",
                Vec::new(),
                format!("caused: service not found, namespace: {ns}, serviceName: APP@@orders;")
                    .into_bytes(),
            )
        })
    });
    let r = p.audit_custom(
        p.args_with_target(std::slice::from_ref(&node.base)),
        &[],
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output
            .contains("lists service `APP@@orders` but its detail answers that it does not exist"),
        "{}",
        r.output
    );
}

/// A Java source (read as digests, content fetched again by key for the diff) against an
/// r-nacos target (no by-key view: content kept as read): the content finding still carries the
/// masked diff, built from one side's refetched content and the other's kept content.
#[test]
fn a_java_source_against_an_rnacos_target_shows_the_content_diff() {
    let Some(b) = bed() else { return };
    let ns = format!("it-{}", unique());
    let src = Node::login(&b.source_nacos[0], &b.username, &b.password);
    let tgt = Node::login(&b.target_rnacos, "", "");
    for (n, content) in [
        (&src, "a=1\nb=2\n"),
        (&tgt, "a=1\nb=3\npassword=topsecret\n"),
    ] {
        n.create_namespace(&ns);
        n.publish(&ns, GROUP, "app.properties", content);
    }
    let r = api_audit(
        &b,
        &b.source_nacos[0],
        &b.target_rnacos,
        &["--namespace", &ns, "--no-probe"],
        &[],
    );
    expect(
        &r,
        &[("config-content-differs", "L3", "APP/app.properties/")],
    );
    let f = &r.json["findings"][0];
    assert!(
        is_the_masked_b_diff(f["diff"].as_str().unwrap_or_default()),
        "{}",
        r.output
    );
    assert!(!r.output.contains("topsecret"));
}

/// A 3.x DB holding a default-namespace key under `public` and under `''` with different
/// content, both written by users, is `namespace-migrate-conflict` (a 3.x node would refuse to
/// start on it: `ConfigMigrateService.namespaceMigratePreCheck`); equal rows, and a `''` row that
/// is 3.x's own copy (`nacos_namespace_migrate`), are not. Rows are written straight into the
/// 3.1 cluster's DB (the running nodes check only at start-up) and removed at the end.
#[test]
fn a_3x_db_whose_public_and_blank_rows_differ_is_a_namespace_migrate_conflict() {
    let Some(b) = bed() else { return };
    if b.v3_db.is_empty() {
        return;
    }
    let group = format!("NMC-{}", unique());
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for table in ["config_info", "config_info_gray"] {
                sql(
                    &self.0,
                    &format!("DELETE FROM {table} WHERE group_id='{}'", self.1),
                );
            }
        }
    }
    let _cleanup = Cleanup(b.v3_db.clone(), group.clone());
    let row = |data_id: &str, tenant: &str, content: &str, user: &str| {
        format!("INSERT INTO config_info (data_id, group_id, content, md5, src_user, tenant_id) VALUES ('{data_id}', '{group}', '{content}', MD5('{content}'), '{user}', '{tenant}')")
    };
    // A tag release of the same key, conflicting too: reported as the scan names it (`tag:blue`).
    let gray = |data_id: &str, tenant: &str, content: &str| {
        format!("INSERT INTO config_info_gray (data_id, group_id, content, md5, src_user, tenant_id, gray_name, gray_rule) VALUES ('{data_id}', '{group}', '{content}', MD5('{content}'), 'alice', '{tenant}', 'tag_blue', '{{}}')")
    };
    for stmt in [
        row("conflict.yaml", "public", "a: 1", "alice"),
        row("conflict.yaml", "", "a: 2", "bob"),
        row("same.yaml", "public", "s: 1", "alice"),
        row("same.yaml", "", "s: 1", "bob"),
        row("copy.yaml", "public", "c: 1", "alice"),
        row("copy.yaml", "", "c: 0", "nacos_namespace_migrate"),
        gray("conflict.yaml", "public", "g: 1"),
        gray("conflict.yaml", "", "g: 2"),
    ] {
        sql(&b.v3_db, &stmt);
    }
    let (src, src_pw) = split_dsn(&b.source_db);
    let (tgt, tgt_pw) = split_dsn(&b.v3_db);
    let r = audit(
        &[
            "--source-db",
            &src,
            "--target-db",
            &tgt,
            "--namespace",
            "public",
            "--settle",
            "0",
            "--no-probe",
        ],
        &[
            ("NACOS_DRIFT_SOURCE_DB_PASSWORD", &src_pw),
            ("NACOS_DRIFT_TARGET_DB_PASSWORD", &tgt_pw),
        ],
    );
    let conflicts: Vec<_> = r
        .findings()
        .into_iter()
        .filter(|f| f.0 == "namespace-migrate-conflict")
        .collect();
    assert_eq!(
        conflicts,
        [
            (
                "namespace-migrate-conflict".to_owned(),
                "L1".to_owned(),
                format!("{group}/conflict.yaml/")
            ),
            (
                "namespace-migrate-conflict".to_owned(),
                "L1".to_owned(),
                format!("{group}/conflict.yaml/tag:blue")
            )
        ],
        "{}",
        r.output
    );
    assert_eq!(r.code, 1, "{}", r.output);
    assert!(
        r.output.contains("namespaceMigratePreCheck"),
        "{}",
        r.output
    );
}
