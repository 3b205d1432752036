//! The migration at a glance, offline: every gate judged in every run (checked against hand
//! counts of the demo), the findings record across runs, and `status` on a reports folder.

use crate::support::{root, run, tempdir, text};
use serde_json::Value;

const DEMO_SOURCE: &str = "fixtures/demo/source.json";
const DEMO_TARGET: &str = "fixtures/demo/target.json";

fn demo(out: &std::path::Path, extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec![
        "diff",
        DEMO_SOURCE,
        DEMO_TARGET,
        "--format",
        "json",
        "--format",
        "text",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args, &[("NACOS_DRIFT_RUN_ID", "demo")]);
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    (o, serde_json::from_str(&json).unwrap())
}

fn codes(v: &Value) -> Vec<(String, u64)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

/// Hand count of the demo (fixtures/demo/expected/report.txt): L1 holds 1 namespace-missing,
/// 1 namespace-extra, 3 config-missing, 2 config-extra, 2 config-content-differs and 1
/// config-meta-differs, and of the accounts 1 user-missing, 1 user-password-differs, 1
/// role-missing and 2 permission-missing (the two quota findings are warn); the target lacks
/// exactly the service `prod/GATEWAY/api-gateway` and the instance `10.0.1.14:8080` of
/// `prod/ORDER/order-service`.
#[test]
fn demo_gates_match_a_hand_count() {
    let out = tempdir("glance-demo");
    let (o, r) = demo(&out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let g = &r["gates"];
    // Every gate, in migration order in the file.
    let raw = std::fs::read_to_string(out.join("report.json")).unwrap();
    let at: Vec<usize> = [
        "db-synced",
        "caches-fresh",
        "dual-registered",
        "cutover-ready",
        "decommission-ready",
    ]
    .iter()
    .map(|n| raw.find(&format!("\n    \"{n}\": {{")).unwrap())
    .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
    assert_eq!(g.as_object().unwrap().len(), 5);
    let db = &g["db-synced"];
    assert_eq!(
        (db["evaluated"].as_bool(), db["passes"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(db["failing"], 15);
    assert_eq!(
        codes(&db["by_code"]),
        [
            ("config-content-differs".to_owned(), 2),
            ("config-extra".to_owned(), 2),
            ("config-meta-differs".to_owned(), 1),
            ("config-missing".to_owned(), 3),
            ("namespace-extra".to_owned(), 1),
            ("namespace-missing".to_owned(), 1),
            ("permission-missing".to_owned(), 2),
            ("role-missing".to_owned(), 1),
            ("user-missing".to_owned(), 1),
            ("user-password-differs".to_owned(), 1),
        ]
    );
    let dual = &g["dual-registered"];
    assert_eq!(dual["failing"], 2);
    assert_eq!(
        codes(&dual["by_code"]),
        [
            ("instance-missing".to_owned(), 1),
            ("service-missing".to_owned(), 1)
        ]
    );
    let missing: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| ["service-missing", "instance-missing"].contains(&f["code"].as_str().unwrap()))
        .map(|f| format!("{} {} {}", f["name"], f["instance"], f["layer"]))
        .collect();
    assert_eq!(
        missing,
        [
            "\"api-gateway\" null \"L3\"",
            "\"order-service\" \"10.0.1.14:8080@DEFAULT\" \"L3\""
        ]
    );
    // No L2 from snapshot files: caches can be neither fresh nor stale, so neither can cutover pass.
    let caches = &g["caches-fresh"];
    assert_eq!(caches["evaluated"], false);
    assert_eq!(caches["passes"], false);
    assert_eq!(caches["reason"], "L2 not compared");
    // cutover-ready: the 15 failing L1 findings, both missing ones, and L3's config-missing...
    assert_eq!(g["cutover-ready"]["failing"], 27);
    assert_eq!(g["cutover-ready"]["passes"], false);
    // Decommission: 2 namespace-missing + 6 config-missing + 1 service + 1 instance missing,
    // and the accounts only on the source: 1 user, 1 role, 2 permissions.
    assert_eq!(g["decommission-ready"]["failing"], 14);
    // The text report shows the step table right after the summary line.
    let txt = std::fs::read_to_string(out.join("report.txt")).unwrap();
    let lines: Vec<&str> = txt.lines().collect();
    assert!(lines[1].starts_with("  steps"), "{txt}");
    assert!(
        lines[2].contains("db-synced") && lines[2].contains("FAIL"),
        "{txt}"
    );
    assert!(
        lines[3].contains("caches-fresh") && lines[3].contains("NOT EVALUATED"),
        "{txt}"
    );
}

/// `--gate` picks the exit code only: the table shows every gate whatever is selected; a selected
/// gate that cannot be judged (caches-fresh from snapshot files: no L2) exits 3, never 0.
#[test]
fn the_selected_gate_decides_the_exit_code_only() {
    let out = tempdir("glance-gate");
    assert!(root().join("fixtures/demo").is_dir());
    let (o, r) = demo(&out, &["--gate", "caches-fresh"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(r["exit_code"], 3);
    assert_eq!(r["gates"]["caches-fresh"]["passes"], false, "{}", text(&o));
    assert_eq!(r["gates"]["db-synced"]["failing"], 15);
    let txt = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(txt.contains("   *caches-fresh"), "{txt}");
    assert!(
        txt.contains("not compared: gate caches-fresh: not evaluated (L2 not compared)"),
        "{txt}"
    );
    // A gate the demo can judge: its own verdict is the exit code, the others only shown.
    let out = tempdir("glance-gate-db");
    let (o, r) = demo(&out, &["--gate", "db-synced"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(r["summary"]["failing"], 15);
    assert_eq!(r["gates"]["dual-registered"]["failing"], 2);
}

/// `diff --since`: the same drift again is all `still`; a finding the earlier report did not
/// have is `new`, one it had that is gone is `resolved`. Without `--since`, `diff` compares with
/// nothing (it keeps no record).
#[test]
fn diff_since_an_earlier_report_marks_new_still_and_resolved() {
    let first = tempdir("glance-since-1");
    let (_, r1) = demo(&first, &[]);
    assert!(r1["summary"].get("new").is_none(), "{}", r1["summary"]);
    assert!(r1.get("since_last").is_none());
    let earlier = first.join("report.json");
    let second = tempdir("glance-since-2");
    let (o, r2) = demo(&second, &["--since", earlier.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(r2["summary"]["new"], 0);
    assert_eq!(r2["summary"]["still"], 34);
    assert_eq!(r2["summary"]["resolved"], 0);
    assert!(r2["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["since_last"] == "still"));
    // An earlier report where the service-missing finding was not yet, and another one was.
    let mut e: Value = r1.clone();
    let findings = e["findings"].as_array_mut().unwrap();
    let at = findings
        .iter()
        .position(|f| f["code"] == "service-missing")
        .unwrap();
    let mut gone = findings.remove(at);
    gone["name"] = Value::from("fixed-since");
    findings.push(gone);
    let edited = second.join("earlier.json");
    std::fs::write(&edited, serde_json::to_vec(&e).unwrap()).unwrap();
    let third = tempdir("glance-since-3");
    let (_, r3) = demo(&third, &["--since", edited.to_str().unwrap()]);
    assert_eq!(
        (
            &r3["summary"]["new"],
            &r3["summary"]["still"],
            &r3["summary"]["resolved"]
        ),
        (&Value::from(1), &Value::from(33), &Value::from(1))
    );
    let new: Vec<&Value> = r3["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["since_last"] == "new")
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["code"], "service-missing");
    let txt = std::fs::read_to_string(third.join("report.txt")).unwrap();
    assert!(txt.contains("1 new, 33 still, 1 resolved"), "{txt}");
    assert!(
        txt.contains("service-missing prod/GATEWAY/api-gateway [NEW]"),
        "{txt}"
    );
    // A --since that is not a report: usage error before anything is compared.
    let o = run(
        &["diff", DEMO_SOURCE, DEMO_TARGET, "--since", DEMO_SOURCE],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a nacos-drift JSON report"),
        "{}",
        text(&o)
    );
}

/// `status` on a reports folder: the newest report's step table and since-last counts, and its
/// exit code; no server is read (the demo's nodes do not exist).
#[test]
fn status_shows_the_newest_report_and_exits_with_its_code() {
    let dir = tempdir("glance-status");
    let older = dir.join("run-a");
    let (o, _) = demo(&older, &["--gate", "db-synced"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    std::thread::sleep(std::time::Duration::from_millis(50));
    let newer = dir.join("run-b");
    let earlier = older.join("report.json");
    let (_, r) = demo(
        &newer,
        &[
            "--gate",
            "dual-registered",
            "--since",
            earlier.to_str().unwrap(),
        ],
    );
    assert_eq!(r["exit_code"], 1);
    let o = run(&["status", "--reports", dir.to_str().unwrap()], &[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(out.contains("run-b/report.json"), "{out}");
    assert!(
        out.contains("gate: dual-registered — FAIL (drift) (exit 1)"),
        "{out}"
    );
    assert!(out.contains("   *dual-registered      FAIL"), "{out}");
    assert!(out.contains("    db-synced            FAIL"), "{out}");
    assert!(out.contains("caches-fresh         NOT EVALUATED"), "{out}");
    assert!(out.contains("0 new, 34 still, 0 resolved"), "{out}");
    // A given report; a clean one exits 0.
    let mut clean: Value = r.clone();
    clean["exit_code"] = Value::from(0);
    clean["run_id"] = Value::from("evil\u{1b}[2J\nrun");
    let p = dir.join("clean.json");
    std::fs::write(&p, serde_json::to_vec(&clean).unwrap()).unwrap();
    let o = run(&["status", "--report", p.to_str().unwrap()], &[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(out.contains("run evil\\x1b[2J\\nrun"), "{out}");
    // Nothing to show: a usage error naming the folder.
    let empty = tempdir("glance-status-empty");
    let o = run(&["status", "--reports", empty.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no report.json in"), "{}", text(&o));
}
