//! Issue 4 against the real test bed: the L2 probe finds stale node caches and `--fix` repairs them, verified.
//!
//! The target cluster is Java Nacos 2.3.2 (two nodes, incremental dump worker off), the source
//! Java Nacos 2.0.4, on a replicated MariaDB pair: a config published on the source reaches the
//! target DB but no target node is told, which is the staleness these tests make and repair.
//! Every test holds `TARGET_CACHE_LOCK`: a full reload anywhere refreshes every key of a node.
//! Nacos also runs a full dump every 6 h, the first 10–370 min after start: on a bed that has
//! been up longer than ten minutes a node may heal itself mid-test (`testbed down && up` resets).

use crate::bed::TARGET_CACHE_LOCK;
use crate::db_rows::RowsGuard;
use crate::ops::{audit, cred_env, md5, split_dsn, sql, sql_value, wait_until, Node, Run};
use crate::support::{bed, tempdir, unique, Bed};

pub(crate) const G: &str = "CACHE";

/// A fresh namespace on the bed, the source node and the target nodes.
pub(crate) struct Env {
    pub(crate) bed: Bed,
    pub(crate) ns: String,
    pub(crate) src: Node,
    pub(crate) tgt: Vec<Node>,
}

impl Env {
    pub(crate) fn new(bed: Bed) -> Env {
        let ns = format!("l2-{}", unique());
        let src = Node::login(&bed.source_nacos[0], &bed.username, &bed.password);
        let tgt = bed
            .target_nacos
            .iter()
            .map(|b| Node::login(b, &bed.username, &bed.password))
            .collect();
        src.create_namespace(&ns);
        Env { bed, ns, src, tgt }
    }

    /// Wait until the target DB row of `data_id` has this md5 (`None` = row gone).
    pub(crate) fn replicated(&self, data_id: &str, want: Option<&str>) {
        let q = format!("SELECT md5 FROM config_info WHERE tenant_id='{}' AND group_id='{G}' AND data_id='{data_id}'", self.ns);
        assert!(
            wait_until(30, || sql_value(&self.bed.target_db, &q).as_deref() == want),
            "replication of {data_id} did not reach the target DB"
        );
    }

    /// A timestamp trap on `data_id`: every target node caches `t: 1`, then a sync tool rewrites
    /// the row to `t: 2` with an old timestamp (on the source, so that the target row, its
    /// replica, agrees with the source: a repair only loads rows the source confirms). A reload
    /// is sent and never takes.
    pub(crate) fn timestamp_trap(&self, data_id: &str) {
        self.src.publish(&self.ns, G, data_id, "t: 1\n");
        self.replicated(data_id, Some(&md5("t: 1\n")));
        for n in &self.tgt {
            self.refresh(n, &[(data_id, &md5("t: 1\n"))]);
        }
        sql(
            &self.bed.source_db,
            &format!("UPDATE config_info SET content='t: 2\\n', md5=MD5('t: 2\\n'), gmt_modified='2020-01-01 00:00:00' WHERE tenant_id='{}' AND data_id='{data_id}'", self.ns),
        );
        self.replicated(data_id, Some(&md5("t: 2\n")));
    }

    /// Reload a target node whole (ops/localCache) once, and wait until it serves every `(data_id, md5)`.
    ///
    /// One request per node: the reload is asynchronous, and a second request made while one runs
    /// is queued and runs later, after the test has changed the DB, healing what it wants stale.
    pub(crate) fn refresh(&self, node: &Node, keys: &[(&str, &str)]) {
        let (s, b) = node.call("POST", "/v1/cs/ops/localCache", &[]);
        assert_eq!(s, 200, "localCache on {}: {b}", node.base);
        for (data_id, md5) in keys {
            assert!(
                wait_until(30, || node.get_config(&self.ns, G, data_id).2 == *md5),
                "{} did not reload {data_id}",
                node.base
            );
        }
        // Let the dump-all finish writing before the test changes rows under it.
        std::thread::sleep(std::time::Duration::from_secs(1));
    }

    pub(crate) fn audit(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args: Vec<String> = vec![
            "--namespace".into(),
            self.ns.clone(),
            "--settle".into(),
            "0".into(),
            "--source-nacos".into(),
            self.bed.source_nacos.join(","),
            "--target-nacos".into(),
            self.bed.target_nacos.join(","),
            "--source-db".into(),
            split_dsn(&self.bed.source_db).0,
            "--target-db".into(),
            split_dsn(&self.bed.target_db).0,
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut e: Vec<(&str, String)> = cred_env(&self.bed.username, &self.bed.password)
            .into_iter()
            .collect();
        e.push((
            "NACOS_DRIFT_SOURCE_DB_PASSWORD",
            split_dsn(&self.bed.source_db).1,
        ));
        e.push((
            "NACOS_DRIFT_TARGET_DB_PASSWORD",
            split_dsn(&self.bed.target_db).1,
        ));
        e.push((
            "NACOS_DRIFT_TARGET_NACOS_IDENTITY_KEY",
            self.bed.identity_key.clone(),
        ));
        e.push((
            "NACOS_DRIFT_TARGET_NACOS_IDENTITY_VALUE",
            self.bed.identity_value.clone(),
        ));
        e.push((
            "NACOS_DRIFT_SOURCE_NACOS_IDENTITY_KEY",
            self.bed.identity_key.clone(),
        ));
        e.push((
            "NACOS_DRIFT_SOURCE_NACOS_IDENTITY_VALUE",
            self.bed.identity_value.clone(),
        ));
        let mut all: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(env);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        // A repair reloads caches only: no config row of either DB may change (issue 8).
        let guard = extra
            .contains(&"--fix")
            .then(|| RowsGuard::new(&[&self.bed.source_db, &self.bed.target_db], &self.ns, &[G]));
        let r = audit(&a, &all);
        if let Some(g) = guard {
            g.assert_unchanged(&format!("audit {extra:?}"));
        }
        r
    }
}

/// `(code, data_id, node)` of every L2 finding.
pub(crate) fn l2(r: &Run) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = r.json["findings"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter(|f| f["layer"] == "L2")
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_owned(),
                f["name"].as_str().unwrap_or("").to_owned(),
                f["node"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

pub(crate) fn repairs(r: &Run) -> Vec<(String, String, String)> {
    r.json["repairs"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|p| {
            (
                p["node"].as_str().unwrap_or("").to_owned(),
                p["mechanism"].as_str().unwrap_or("").to_owned(),
                p["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Incremental per-key repairs even when every probed key of the namespace is stale.
pub(crate) const PER_KEY: (&str, &str) = ("NACOS_DRIFT_FIX_FULL_THRESHOLD_PCT", "100");

#[test]
fn replicated_publish_change_and_delete_are_stale_on_every_target_node_and_fix_repairs_them() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.src.publish(&e.ns, G, "changed.properties", "v=1\n");
    e.src.publish(&e.ns, G, "deleted.properties", "gone=soon\n");
    e.replicated("changed.properties", Some(&md5("v=1\n")));
    e.replicated("deleted.properties", Some(&md5("gone=soon\n")));
    for n in &e.tgt {
        e.refresh(
            n,
            &[
                ("changed.properties", &md5("v=1\n")),
                ("deleted.properties", &md5("gone=soon\n")),
            ],
        );
    }
    let clean = e.audit(&[], &[]);
    assert_eq!(clean.code, 0, "fresh pair: {}", clean.output);

    e.src.publish(&e.ns, G, "new.properties", "fresh=1\n");
    e.src.publish(&e.ns, G, "changed.properties", "v=2\n");
    e.src.delete_config(&e.ns, G, "deleted.properties");
    e.replicated("new.properties", Some(&md5("fresh=1\n")));
    e.replicated("changed.properties", Some(&md5("v=2\n")));
    e.replicated("deleted.properties", None);

    let r = e.audit(&[], &[]);
    assert_eq!(r.code, 1, "{}", r.output);
    let mut want = Vec::new();
    for n in &e.bed.target_nacos {
        want.push((
            "cache-extra".to_owned(),
            "deleted.properties".to_owned(),
            n.clone(),
        ));
        want.push((
            "cache-missing".to_owned(),
            "new.properties".to_owned(),
            n.clone(),
        ));
        want.push((
            "cache-stale".to_owned(),
            "changed.properties".to_owned(),
            n.clone(),
        ));
    }
    want.sort();
    assert_eq!(l2(&r), want, "{}", r.output);
    assert_eq!(
        r.findings().iter().filter(|f| f.1 != "L2").count(),
        0,
        "the DBs agree: {}",
        r.output
    );

    let fixed = e.audit(&["--fix"], &[PER_KEY]);
    assert_eq!(fixed.code, 0, "{}", fixed.output);
    let reps = repairs(&fixed);
    assert_eq!(reps.len(), 2, "{}", fixed.output);
    for (node, mech, status) in &reps {
        assert!(e.bed.target_nacos.contains(node));
        assert_eq!(
            (mech.as_str(), status.as_str()),
            ("grpc-sync", "applied"),
            "{}",
            fixed.output
        );
    }
    assert_eq!(fixed.json["summary"]["repaired"], 6, "{}", fixed.output);

    let again = e.audit(&[], &[]);
    assert_eq!(again.code, 0, "{}", again.output);
    for n in &e.tgt {
        assert_eq!(n.get_config(&e.ns, G, "new.properties").1, "fresh=1\n");
        assert_eq!(n.get_config(&e.ns, G, "changed.properties").1, "v=2\n");
        assert_eq!(
            n.get_config(&e.ns, G, "deleted.properties").0,
            404,
            "deleted config still served by {}",
            n.base
        );
    }
}

#[test]
fn full_reload_repairs_a_whole_node() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.src.publish(&e.ns, G, "a.yaml", "a: 1\n");
    e.src.publish(&e.ns, G, "b.yaml", "b: 1\n");
    e.replicated("a.yaml", Some(&md5("a: 1\n")));
    e.replicated("b.yaml", Some(&md5("b: 1\n")));
    let r = e.audit(&["--fix", "--full"], &[]);
    assert_eq!(r.code, 0, "{}", r.output);
    let reps = repairs(&r);
    assert_eq!(reps.len(), 2, "{}", r.output);
    assert!(
        reps.iter()
            .all(|(_, m, s)| m == "full-reload" && s == "applied"),
        "{}",
        r.output
    );
    for n in &e.tgt {
        assert_eq!(n.get_config(&e.ns, G, "a.yaml").1, "a: 1\n");
        assert_eq!(n.get_config(&e.ns, G, "b.yaml").1, "b: 1\n");
    }
}

#[test]
fn when_one_node_is_stale_only_that_node_is_touched() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    // A witness config in another namespace, stale on node A: a reload of node A would refresh it.
    let other = Env::new(e.bed.clone());
    other.src.publish(&other.ns, G, "witness.yaml", "w: 1\n");
    other.replicated("witness.yaml", Some(&md5("w: 1\n")));
    e.src.publish(&e.ns, G, "k.yaml", "k: 1\n");
    e.replicated("k.yaml", Some(&md5("k: 1\n")));
    // Node A gets just k.yaml through the cluster gRPC sync; node B stays stale.
    let a = &e.tgt[0];
    let addr = nacos_drift::nacos::grpc::cluster_grpc_addr(&a.base).unwrap();
    crate::ops::block(nacos_drift::nacos::grpc::config_change_sync(
        &addr,
        &e.bed.target_version,
        "k.yaml",
        G,
        &e.ns,
        nacos_drift::nacos::grpc::now_ms(),
        None,
        std::time::Duration::from_secs(10),
    ))
    .unwrap();
    assert!(wait_until(20, || a.get_config(&e.ns, G, "k.yaml").2 == md5("k: 1\n")));

    let r = e.audit(&["--fix"], &[]);
    assert_eq!(r.code, 0, "{}", r.output);
    let reps = repairs(&r);
    assert_eq!(reps.len(), 1, "{}", r.output);
    assert_eq!(
        reps[0].0, e.bed.target_nacos[1],
        "only node B is repaired: {}",
        r.output
    );
    assert_eq!(
        l2(&r)
            .iter()
            .filter(|f| f.2 == e.bed.target_nacos[0])
            .count(),
        0,
        "{}",
        r.output
    );
    assert_eq!(e.tgt[1].get_config(&e.ns, G, "k.yaml").1, "k: 1\n");
    // Node A was not reloaded: its witness is still stale.
    assert_eq!(
        a.get_config(&other.ns, G, "witness.yaml").0,
        404,
        "node A was touched"
    );
}

#[test]
fn dry_run_changes_nothing() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.src.publish(&e.ns, G, "d.yaml", "d: 1\n");
    e.replicated("d.yaml", Some(&md5("d: 1\n")));
    let plan = e.audit(&["--fix", "--dry-run"], &[]);
    assert_eq!(plan.code, 1, "{}", plan.output);
    let reps = repairs(&plan);
    assert_eq!(reps.len(), 2, "{}", plan.output);
    assert!(
        reps.iter().all(|(_, _, s)| s == "planned"),
        "{}",
        plan.output
    );
    assert!(plan.output.contains("planned"), "{}", plan.output);
    let after = e.audit(&[], &[]);
    assert_eq!(
        l2(&after),
        l2(&plan),
        "a dry run must leave the caches as they were"
    );
    for n in &e.tgt {
        assert_eq!(n.get_config(&e.ns, G, "d.yaml").0, 404);
    }
}

#[test]
fn a_stopped_node_is_reported_while_the_others_are_repaired_exit_3() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.src.publish(&e.ns, G, "s.yaml", "s: 1\n");
    e.replicated("s.yaml", Some(&md5("s: 1\n")));
    // A third target node that is down (nothing listens on its port).
    let mut nodes = e.bed.target_nacos.clone();
    nodes.push("http://127.0.0.1:18899/nacos".into());
    let mut bed2 = e.bed.clone();
    bed2.target_nacos = nodes;
    let e2 = Env {
        bed: bed2,
        ns: e.ns.clone(),
        src: e.src.clone(),
        tgt: e.tgt.clone(),
    };
    let r = e2.audit(&["--fix", "--timeout", "3"], &[]);
    assert_eq!(r.code, 3, "{}", r.output);
    assert_eq!(r.json["complete"], false);
    assert!(
        r.output.contains("http://127.0.0.1:18899/nacos"),
        "{}",
        r.output
    );
    let reps = repairs(&r);
    assert_eq!(reps.len(), 2, "{}", r.output);
    assert!(reps.iter().all(|(_, _, s)| s == "applied"));
    for n in &e.tgt {
        assert_eq!(n.get_config(&e.ns, G, "s.yaml").1, "s: 1\n");
    }
    // Coverage counts the nodes actually probed and names the one that was not (issue 17).
    assert_eq!(r.json["probe"]["target"]["nodes"], 2, "{}", r.output);
    assert_eq!(
        r.json["probe"]["target"]["not_probed"],
        serde_json::json!(["http://127.0.0.1:18899/nacos"]),
        "{}",
        r.output
    );
    assert!(
        r.output
            .contains("on each of 2 node(s); not probed: http://127.0.0.1:18899/nacos"),
        "{}",
        r.output
    );
    // Every L2 finding on a node says what became of it.
    for f in r.json["findings"].as_array().unwrap() {
        if f["layer"] == "L2" && f["code"] != "source-error" && f["code"] != "node-not-member" {
            assert_eq!(f["repair"], "repaired", "{f}");
        }
    }
}

#[test]
fn incremental_run_probes_only_changed_keys_and_catches_a_deletion() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    for k in ["i1", "i2", "i3", "i4"] {
        e.src.publish(&e.ns, G, k, &format!("{k}=1\n"));
    }
    e.replicated("i4", Some(&md5("i4=1\n")));
    let state = tempdir("state").join("state.json");
    let st = state.to_str().unwrap();
    let skew = ("NACOS_DRIFT_AUDIT_SKEW_SECS", "0");
    // First run: no state yet, so a full pass (and a repair, so the next run starts clean).
    let first = e.audit(&["--incremental", "--state", st, "--fix"], &[skew]);
    assert!(
        first.output.contains("run: full (no state file yet)"),
        "{}",
        first.output
    );
    assert_eq!(first.json["probe"]["target"]["keys"], 4, "{}", first.output);
    std::thread::sleep(std::time::Duration::from_millis(1500));

    e.src.publish(&e.ns, G, "i2", "i2=2\n");
    e.src.delete_config(&e.ns, G, "i3");
    e.replicated("i2", Some(&md5("i2=2\n")));
    e.replicated("i3", None);
    let r = e.audit(&["--incremental", "--state", st], &[skew]);
    assert!(r.output.contains("run: incremental"), "{}", r.output);
    assert_eq!(
        r.json["probe"]["target"]["keys"], 2,
        "only the changed and the deleted key are probed: {}",
        r.output
    );
    let mut want = Vec::new();
    for n in &e.bed.target_nacos {
        want.push(("cache-extra".to_owned(), "i3".to_owned(), n.clone()));
        want.push(("cache-stale".to_owned(), "i2".to_owned(), n.clone()));
    }
    want.sort();
    assert_eq!(l2(&r), want, "{}", r.output);
    // A run holding the lock keeps a second one out (a PID alone no longer does: issue 8).
    let held = nacos_drift::state::lock(std::path::Path::new(st)).unwrap();
    let locked = e.audit(&["--incremental", "--state", st], &[skew]);
    assert_eq!(locked.code, 3, "{}", locked.output);
    assert!(locked.output.contains("holds"), "{}", locked.output);
    drop(held);
}

#[test]
fn source_repairs_use_data_change_on_2_0_and_only_with_fix_source() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.src.publish(&e.ns, G, "src.yaml", "s: 1\n");
    e.replicated("src.yaml", Some(&md5("s: 1\n")));
    // Let the source node's own asynchronous post-publish dump finish first: it re-reads the row
    // from the DB, so a row changed before it runs would be picked up and nothing would be stale.
    assert!(wait_until(20, || e.src.get_config(&e.ns, G, "src.yaml").2
        == md5("s: 1\n")));
    std::thread::sleep(std::time::Duration::from_secs(2));
    // The source DB row changes behind the source node's back (as a botched manual fix would).
    sql(
        &e.bed.source_db,
        &format!("UPDATE config_info SET content='s: 2\\n', md5=MD5('s: 2\\n'), gmt_modified=NOW() WHERE tenant_id='{}' AND data_id='src.yaml'", e.ns),
    );
    let r = e.audit(&["--fix"], &[PER_KEY]);
    let src_findings: Vec<_> = l2(&r)
        .into_iter()
        .filter(|f| f.2 == e.bed.source_nacos[0])
        .collect();
    assert_eq!(src_findings.len(), 1, "{}", r.output);
    assert!(
        r.output.contains("never touched without --fix-source"),
        "{}",
        r.output
    );
    assert_eq!(
        e.src.get_config(&e.ns, G, "src.yaml").1,
        "s: 1\n",
        "the source must not be touched"
    );

    let r = e.audit(&["--fix", "--fix-source"], &[PER_KEY]);
    assert_eq!(r.code, 0, "{}", r.output);
    let reps = repairs(&r);
    assert!(
        reps.contains(&(
            e.bed.source_nacos[0].clone(),
            "data-change".into(),
            "applied".into()
        )),
        "{}",
        r.output
    );
    assert_eq!(e.src.get_config(&e.ns, G, "src.yaml").1, "s: 2\n");
}

#[test]
fn a_row_rewritten_with_an_older_timestamp_is_a_timestamp_trap() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.timestamp_trap("trap.yaml");
    let r = e.audit(&["--fix"], &[PER_KEY, ("NACOS_DRIFT_FIX_VERIFY_SECS", "4")]);
    assert_eq!(r.code, 1, "{}", r.output);
    let traps: Vec<_> = l2(&r)
        .into_iter()
        .filter(|f| f.0 == "cache-timestamp-trap")
        .collect();
    assert_eq!(traps.len(), 2, "{}", r.output);
    assert!(
        r.output.contains("gmt_modified = NOW()"),
        "the report names the remedy: {}",
        r.output
    );
}
