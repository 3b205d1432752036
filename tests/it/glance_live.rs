//! Issue 16 on the real test bed: one run judges every gate (a replicated change passes
//! `db-synced` and fails `caches-fresh` in the same outputs), and the next runs tell what is new
//! and what was resolved since the last one, from the record kept in the state folder.

use crate::bed::TARGET_CACHE_LOCK;
use crate::cache_live::{Env, G, PER_KEY};
use crate::ops::{live_port, md5, Run};
use crate::support::{bed, tempdir};
use serde_json::Value;

const SVC_GROUP: &str = "GLANCE";

fn gate<'a>(r: &'a Run, name: &str) -> &'a Value {
    &r.json["gates"][name]
}

fn since(r: &Run) -> (Value, Value, Value) {
    let s = &r.json["summary"];
    (s["new"].clone(), s["still"].clone(), s["resolved"].clone())
}

fn marked(r: &Run, mark: &str) -> Vec<String> {
    r.json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["since_last"] == mark)
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn one_run_judges_every_gate_and_the_next_runs_tell_new_and_resolved() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = Env::new(b);
    let state = tempdir("glance-state").join("state.json");
    let state = state.to_str().unwrap();
    let n = e.tgt.len();
    // A fresh pair: one config everywhere, one instance registered on both clusters.
    e.src.publish(&e.ns, G, "a.properties", "v=1\n");
    e.replicated("a.properties", Some(&md5("v=1\n")));
    for node in &e.tgt {
        e.refresh(node, &[("a.properties", &md5("v=1\n"))]);
    }
    let (_l1, p1) = live_port();
    e.src.register(&e.ns, SVC_GROUP, "glance-svc", p1, &[]);
    e.tgt[0].register(&e.ns, SVC_GROUP, "glance-svc", p1, &[]);
    let first = e.audit(&["--state", state], &[]);
    assert_eq!(first.code, 0, "fresh pair: {}", first.output);
    assert!(
        first.json["summary"].get("new").is_none(),
        "{}",
        first.output
    );
    for g in [
        "db-synced",
        "caches-fresh",
        "dual-registered",
        "cutover-ready",
    ] {
        assert_eq!(gate(&first, g)["passes"], true, "{g}: {}", first.output);
    }

    // Replicated change: the DBs agree, the target nodes serve the old md5.
    e.src.publish(&e.ns, G, "a.properties", "v=2\n");
    e.replicated("a.properties", Some(&md5("v=2\n")));
    let stale = e.audit(&["--state", state], &[]);
    assert_eq!(stale.code, 1, "{}", stale.output);
    let db = gate(&stale, "db-synced");
    assert_eq!(
        (&db["evaluated"], &db["passes"]),
        (&Value::from(true), &Value::from(true))
    );
    let caches = gate(&stale, "caches-fresh");
    assert_eq!(caches["passes"], false, "{}", stale.output);
    assert_eq!(caches["failing"], n);
    assert_eq!(caches["by_code"]["cache-stale"], n, "{}", stale.output);
    assert_eq!(gate(&stale, "dual-registered")["passes"], true);
    assert_eq!(gate(&stale, "cutover-ready")["passes"], false);
    assert!(
        stale.output.contains("    db-synced            PASS")
            && stale.output.contains("    caches-fresh         FAIL"),
        "{}",
        stale.output
    );
    assert_eq!(
        since(&stale),
        (n.into(), 0.into(), 0.into()),
        "{}",
        stale.output
    );
    assert_eq!(marked(&stale, "new"), vec!["cache-stale"; n]);

    // --fix repairs them (verified); the next run has them resolved and caches-fresh passing.
    let fixed = e.audit(&["--fix", "--state", state], &[PER_KEY]);
    assert_eq!(fixed.code, 0, "{}", fixed.output);
    assert_eq!(
        gate(&fixed, "caches-fresh")["passes"],
        true,
        "{}",
        fixed.output
    );
    let after = e.audit(&["--state", state], &[]);
    assert_eq!(after.code, 0, "{}", after.output);
    assert_eq!(
        gate(&after, "caches-fresh")["passes"],
        true,
        "{}",
        after.output
    );
    assert_eq!(
        since(&after),
        (0.into(), 0.into(), n.into()),
        "{}",
        after.output
    );
    assert!(
        after
            .output
            .contains(&format!("0 new, 0 still, {n} resolved")),
        "{}",
        after.output
    );

    // A new instance on the source only: new, and dual-registered fails on it alone.
    let (_l2, p2) = live_port();
    e.src.register(&e.ns, SVC_GROUP, "glance-svc", p2, &[]);
    let one_sided = e.audit(&["--state", state], &[]);
    assert_eq!(one_sided.code, 1, "{}", one_sided.output);
    assert_eq!(
        marked(&one_sided, "new"),
        ["instance-missing"],
        "{}",
        one_sided.output
    );
    assert_eq!(since(&one_sided), (1.into(), 0.into(), 0.into()));
    let dual = gate(&one_sided, "dual-registered");
    assert_eq!(dual["failing"], 1);
    assert_eq!(dual["by_code"]["instance-missing"], 1);
    assert_eq!(gate(&one_sided, "db-synced")["passes"], true);
    assert!(
        one_sided.output.contains("instance-missing") && one_sided.output.contains("[NEW]"),
        "{}",
        one_sided.output
    );
}
