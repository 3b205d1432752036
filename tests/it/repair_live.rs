//! Issue 17 on the real bed: a repair only loads rows that agree with the source, only on nodes
//! that read the configured DB, every L2 finding says what became of it (including `failed`),
//! and a namespace subset never reloads whole nodes. Every `--fix` run here goes through
//! `Env::audit`, which also proves that no config row of either DB changed (issue 8).

use crate::bed::TARGET_CACHE_LOCK;
use crate::cache_live::{l2, repairs, Env, G, PER_KEY};
use crate::ops::{md5, sql, wait_until, Run};
use crate::support::bed;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

const UNTRUSTED: &str =
    "not repairable: the target DB disagrees with the source (fix the DB sync first)";

/// `(code, name, node, repair)` of every L2 finding about a key.
fn l2_repairs(r: &Run) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = r.json["findings"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter(|f| f["layer"] == "L2" && !f["name"].as_str().unwrap_or("").is_empty())
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_owned();
            (s("code"), s("name"), s("node"), s("repair"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_tampered_target_row_is_reported_and_never_spread() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.src.publish(&e.ns, G, "tampered.yaml", "t: 1\n");
    e.src.publish(&e.ns, G, "trusted.yaml", "ok: 1\n");
    e.replicated("tampered.yaml", Some(&md5("t: 1\n")));
    e.replicated("trusted.yaml", Some(&md5("ok: 1\n")));
    for n in &e.tgt {
        e.refresh(
            n,
            &[
                ("tampered.yaml", &md5("t: 1\n")),
                ("trusted.yaml", &md5("ok: 1\n")),
            ],
        );
    }
    // A normal repair case next to it: changed on the source, replicated, nodes not told.
    e.src.publish(&e.ns, G, "trusted.yaml", "ok: 2\n");
    e.replicated("trusted.yaml", Some(&md5("ok: 2\n")));
    // The tampered row: content changed directly on the target DB, md5 column left stale.
    sql(
        &e.bed.target_db,
        &format!("UPDATE config_info SET content='t: evil\\n' WHERE tenant_id='{}' AND group_id='{G}' AND data_id='tampered.yaml'", e.ns),
    );

    let r = e.audit(&[], &[]);
    assert_eq!(r.code, 1, "{}", r.output);
    let l1: Vec<_> = r.findings().into_iter().filter(|f| f.1 == "L1").collect();
    assert_eq!(
        l1,
        vec![(
            "config-content-differs".to_owned(),
            "L1".to_owned(),
            format!("{G}/tampered.yaml/")
        )],
        "{}",
        r.output
    );
    let mut want = Vec::new();
    for n in &e.bed.target_nacos {
        want.push((
            "cache-stale".to_owned(),
            "tampered.yaml".to_owned(),
            n.clone(),
        ));
        want.push((
            "cache-stale".to_owned(),
            "trusted.yaml".to_owned(),
            n.clone(),
        ));
    }
    want.sort();
    assert_eq!(l2(&r), want, "{}", r.output);

    let fixed = e.audit(&["--fix"], &[PER_KEY]);
    assert_eq!(fixed.code, 1, "the L1 difference stays: {}", fixed.output);
    let mut want = Vec::new();
    for n in &e.bed.target_nacos {
        want.push((
            "cache-stale".into(),
            "tampered.yaml".into(),
            n.clone(),
            UNTRUSTED.into(),
        ));
        want.push((
            "cache-stale".into(),
            "trusted.yaml".into(),
            n.clone(),
            "repaired".into(),
        ));
    }
    want.sort();
    assert_eq!(l2_repairs(&fixed), want, "{}", fixed.output);
    let mut reps = repairs(&fixed);
    reps.sort();
    let mut want = Vec::new();
    for n in &e.bed.target_nacos {
        want.push((n.clone(), "grpc-sync".to_owned(), "applied".to_owned()));
        want.push((n.clone(), "none".to_owned(), "skipped".to_owned()));
    }
    want.sort();
    assert_eq!(reps, want, "{}", fixed.output);
    assert!(fixed.output.contains(UNTRUSTED), "{}", fixed.output);
    // The nodes keep serving what they served; the trusted key was repaired.
    std::thread::sleep(std::time::Duration::from_secs(2));
    for n in &e.tgt {
        assert_eq!(
            n.get_config(&e.ns, G, "tampered.yaml").1,
            "t: 1\n",
            "{}",
            n.base
        );
        assert_eq!(
            n.get_config(&e.ns, G, "trusted.yaml").1,
            "ok: 2\n",
            "{}",
            n.base
        );
    }

    // Asked loudly, the untrusted row is loaded: warned on stderr, named in the report.
    let allow = ("NACOS_DRIFT_FIX_ALLOW_UNTRUSTED_ROWS", "true");
    let forced = e.audit(&["--fix"], &[PER_KEY, allow]);
    assert_eq!(forced.code, 1, "{}", forced.output);
    assert!(
        forced
            .output
            .contains("warning: fix.allow_untrusted_rows is set"),
        "{}",
        forced.output
    );
    let details: Vec<&str> = forced.json["repairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["detail"].as_str())
        .collect();
    assert_eq!(details.len(), 2, "{}", forced.output);
    assert!(
        details
            .iter()
            .all(|d| d.contains("fix.allow_untrusted_rows: 1 key(s) reloaded")),
        "{details:?}"
    );
    for n in &e.tgt {
        assert!(wait_until(10, || n.get_config(&e.ns, G, "tampered.yaml").1
            == "t: evil\n"));
    }
}

#[test]
fn a_node_reading_another_database_is_named_before_any_repair() {
    let Some(b) = bed() else { return };
    let e = Env::new(b);
    e.src.publish(&e.ns, G, "m1.yaml", "m: 1\n");
    e.src.publish(&e.ns, G, "m2.yaml", "m: 2\n");
    e.replicated("m2.yaml", Some(&md5("m: 2\n")));
    e.replicated("m1.yaml", Some(&md5("m: 1\n")));
    // The replica's rows change behind everyone's back...
    sql(
        &e.bed.target_db,
        &format!("UPDATE config_info SET content=CONCAT(content, '# replica\\n'), md5=MD5(CONCAT(content, '# replica\\n')) WHERE tenant_id='{}'", e.ns),
    );
    // ...and the target side is misconfigured: its node is the source node, which reads the
    // source DB, paired with the target DB.
    let node = e.bed.source_nacos[0].clone();
    let mut bed2 = e.bed.clone();
    bed2.target_nacos = vec![node.clone()];
    let e2 = Env {
        bed: bed2,
        ns: e.ns.clone(),
        src: e.src.clone(),
        tgt: vec![e.src.clone()],
    };
    let r = e2.audit(&["--fix", "--fix-source"], &[PER_KEY]);
    assert_eq!(r.code, 3, "{}", r.output);
    let errors: Vec<&serde_json::Value> = r.json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "source-error" && f["side"] == "target")
        .collect();
    assert_eq!(errors.len(), 1, "{}", r.output);
    assert_eq!(errors[0]["node"], node.as_str());
    let detail = errors[0]["detail"].as_str().unwrap();
    assert!(detail.contains("node-db-mismatch"), "{detail}");
    assert!(detail.contains("2 of 2 sampled key(s)"), "{detail}");
    // Nothing about that node's cache is reported or repaired against the wrong DB.
    assert!(
        r.json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !(f["layer"] == "L2" && f["side"] == "target" && f["code"] != "source-error")),
        "{}",
        r.output
    );
    assert_eq!(repairs(&r), vec![], "{}", r.output);
    assert_eq!(r.json["probe"]["target"]["nodes"], 0, "{}", r.output);
    assert_eq!(
        r.json["probe"]["target"]["not_probed"],
        serde_json::json!([node]),
        "{}",
        r.output
    );
    assert_eq!(e.src.get_config(&e.ns, G, "m1.yaml").1, "m: 1\n");
}

/// A TCP forwarder to `upstream`'s HTTP port on a port of its own, with nothing listening on
/// that port + 1001: the node's HTTP API works through it, its cluster gRPC port does not.
fn http_only_front(upstream: &str) -> String {
    let hp = upstream
        .split("://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let listener = loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 64_000 && TcpStream::connect(("127.0.0.1", p + 1001)).is_err() {
            break l;
        }
    };
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&hp) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    format!("http://127.0.0.1:{port}/nacos")
}

#[test]
fn every_finding_on_a_node_whose_repair_fails_says_failed_and_why() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.src.publish(&e.ns, G, "f1.yaml", "f: 1\n");
    e.src.publish(&e.ns, G, "f2.yaml", "f: 2\n");
    e.replicated("f1.yaml", Some(&md5("f: 1\n")));
    e.replicated("f2.yaml", Some(&md5("f: 2\n")));
    // Node A is reached through a front that passes HTTP only: the gRPC repair cannot reach it.
    let front = http_only_front(&e.bed.target_nacos[0]);
    let grpc = nacos_drift::nacos::grpc::cluster_grpc_addr(&front).unwrap();
    let mut bed2 = e.bed.clone();
    bed2.target_nacos = vec![front.clone(), e.bed.target_nacos[1].clone()];
    let e2 = Env {
        bed: bed2,
        ns: e.ns.clone(),
        src: e.src.clone(),
        tgt: e.tgt.clone(),
    };
    let r = e2.audit(&["--fix", "--timeout", "3"], &[PER_KEY]);
    assert_eq!(r.code, 3, "{}", r.output);
    let findings = l2_repairs(&r);
    let on_front: Vec<_> = findings.iter().filter(|f| f.2 == front).collect();
    assert_eq!(on_front.len(), 2, "{}", r.output);
    for f in &on_front {
        assert!(f.3.starts_with("failed: "), "{f:?}");
        assert!(f.3.contains(&grpc), "names the unreachable address: {f:?}");
    }
    let on_b: Vec<_> = findings
        .iter()
        .filter(|f| f.2 == e.bed.target_nacos[1])
        .collect();
    assert_eq!(on_b.len(), 2, "{}", r.output);
    assert!(on_b.iter().all(|f| f.3 == "repaired"), "{}", r.output);
    let reps = repairs(&r);
    assert!(
        reps.contains(&(front.clone(), "grpc-sync".into(), "failed".into())),
        "{}",
        r.output
    );
    assert_eq!(
        e.tgt[0].get_config(&e.ns, G, "f1.yaml").0,
        404,
        "node A was not reached"
    );
}

#[test]
fn a_namespace_subset_is_repaired_per_key_whatever_its_stale_share() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    // A witness in another namespace, stale on both nodes: a whole-node reload would refresh it.
    let other = Env::new(e.bed.clone());
    other.src.publish(&other.ns, G, "witness.yaml", "w: 1\n");
    other.replicated("witness.yaml", Some(&md5("w: 1\n")));
    e.src.publish(&e.ns, G, "s1.yaml", "s: 1\n");
    e.src.publish(&e.ns, G, "s2.yaml", "s: 2\n");
    e.replicated("s1.yaml", Some(&md5("s: 1\n")));
    e.replicated("s2.yaml", Some(&md5("s: 2\n")));
    // Every probed key (100 % of the namespace) is stale, above the default 20 % threshold.
    let r = e.audit(&["--fix"], &[]);
    assert_eq!(r.code, 0, "{}", r.output);
    let reps = repairs(&r);
    assert_eq!(reps.len(), 2, "{}", r.output);
    assert!(
        reps.iter()
            .all(|(_, m, s)| m == "grpc-sync" && s == "applied"),
        "{}",
        r.output
    );
    for n in &e.tgt {
        assert_eq!(n.get_config(&e.ns, G, "s1.yaml").1, "s: 1\n");
        assert_eq!(
            n.get_config(&other.ns, G, "witness.yaml").0,
            404,
            "{} was reloaded whole",
            n.base
        );
    }
}

/// A run stopped by its deadline while a repair is under way lists that repair as
/// `interrupted` (it may have reached the node, nothing of it was verified), instead of
/// dropping it with the stopped step. The repair here is real: a timestamp trap, which the
/// per-key reload is sent for and which stays stale, so verification waits until the deadline.
#[test]
fn a_repair_stopped_by_the_deadline_is_listed_as_interrupted() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    e.timestamp_trap("trap.yaml");
    let r = e.audit(
        &["--fix", "--deadline", "20"],
        &[PER_KEY, ("NACOS_DRIFT_FIX_VERIFY_SECS", "300")],
    );
    assert_eq!(r.code, 3, "{}", r.output);
    let reps = repairs(&r);
    assert_eq!(reps.len(), e.tgt.len(), "{}", r.output);
    assert!(
        reps.iter().all(|(_, _, status)| status == "interrupted"),
        "{}",
        r.output
    );
    assert!(r.output.contains("none was verified"), "{}", r.output);
}
