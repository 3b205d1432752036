//! Live on the bed: a run stopped by SIGTERM or by its deadline still writes its reports, marked
//! incomplete, and releases its lock; a stale lock is taken over; two repairs never run at once;
//! a database that cannot be read yields its source-error and no finding about what it holds.

use crate::ops::cred_env;
use crate::support::{bed, bin, tempdir};
#[path = "../disrupt/child.rs"]
mod child;
use child::{spawn_audit, Drifted, ONLY_ON_TARGET};

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn env_of<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The target-only row of `d` is among the findings (what the run gathered before it stopped).
fn has_first_pass_drift(e: &child::Ended, d: &Drifted) -> bool {
    e.drift()
        .iter()
        .any(|(c, ns, n)| c == "config-extra" && *ns == d.ns && n == ONLY_ON_TARGET)
}

#[test]
fn sigterm_mid_run_writes_partial_reports_releases_the_lock_and_exits_3() {
    let Some(b) = bed() else { return };
    let d = Drifted::new(&b);
    let dir = tempdir("sigterm");
    let state = dir.join("state.json");
    let (mut args, env) = d.db_args();
    args.extend(
        ["--no-probe", "--settle", "120", "--incremental", "--state"]
            .map(str::to_owned)
            .into_iter()
            .chain([state.display().to_string()]),
    );
    let mut run = spawn_audit(bin(), &strs(&args), &env_of(&env));
    assert!(
        run.wait_for("re-checking in", 120),
        "the run never reached its settling wait"
    );
    assert!(
        dir.join("state.json.lock").exists(),
        "no lock while running"
    );
    run.signal("TERM");
    let e = run.end(60);
    assert_eq!(e.code, 3, "{}", e.stderr);
    assert!(
        e.elapsed.as_secs() < 100,
        "the run waited out its settling delay instead of stopping: {:?}",
        e.elapsed
    );
    assert!(
        e.stderr.contains("SIGTERM received: stopping"),
        "{}",
        e.stderr
    );
    assert_eq!(e.json["complete"], false, "{}", e.json);
    assert_eq!(e.json["exit_code"], 3);
    let errors = e.errors();
    assert!(
        errors
            .iter()
            .any(|m| m.contains("SIGTERM received") && m.contains("re-check")),
        "{errors:?}"
    );
    assert!(has_first_pass_drift(&e, &d), "{:?}", e.drift());
    assert!(
        !dir.join("state.json.lock").exists(),
        "the lock was left behind"
    );
    assert!(!state.exists(), "an incomplete run moved the watermark");
}

#[test]
fn the_run_deadline_stops_the_run_with_a_partial_report() {
    let Some(b) = bed() else { return };
    let d = Drifted::new(&b);
    let (mut args, env) = d.db_args();
    args.extend(["--no-probe", "--settle", "120", "--deadline", "10"].map(str::to_owned));
    let e = spawn_audit(bin(), &strs(&args), &env_of(&env)).end(90);
    assert_eq!(e.code, 3, "{}", e.stderr);
    assert!(
        e.elapsed.as_secs() < 60,
        "a 10 s deadline took {:?}",
        e.elapsed
    );
    assert_eq!(e.json["complete"], false);
    let errors = e.errors();
    assert!(
        errors
            .iter()
            .any(|m| m.contains("deadline of 10 s") && m.contains("re-check")),
        "{errors:?}"
    );
    assert!(has_first_pass_drift(&e, &d), "{:?}", e.drift());
}

#[test]
fn a_lock_holding_the_pid_of_a_live_process_that_is_not_nacos_drift_is_taken_over() {
    let Some(b) = bed() else { return };
    let d = Drifted::new(&b);
    let dir = tempdir("foreign-lock");
    let state = dir.join("state.json");
    // After a reboot the PID in an old lock file belongs to some other program.
    let mut other = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    std::fs::write(dir.join("state.json.lock"), other.id().to_string()).unwrap();
    let (mut args, env) = d.db_args();
    args.extend(
        ["--no-probe", "--settle", "0", "--incremental", "--state"]
            .map(str::to_owned)
            .into_iter()
            .chain([state.display().to_string()]),
    );
    let e = spawn_audit(bin(), &strs(&args), &env_of(&env)).end(120);
    let _ = other.kill();
    let _ = other.wait();
    assert!(
        e.stderr.contains(&format!(
            "took over a stale lock left by process {}, which is `sleep`",
            other.id()
        )),
        "{}",
        e.stderr
    );
    // It ran: the drift is reported and the run is complete (exit 1, not 3).
    assert_eq!(e.code, 1, "{}", e.stderr);
    assert!(has_first_pass_drift(&e, &d), "{:?}", e.drift());
    assert!(!dir.join("state.json.lock").exists());
    assert!(
        state.exists(),
        "a complete incremental run saves its watermark"
    );
}

#[test]
fn two_fix_runs_started_together_one_runs_and_the_other_exits_3_naming_the_holder() {
    let Some(b) = bed() else { return };
    let d = Drifted::new(&b);
    let dir = tempdir("two-fixes");
    let state = dir.join("state.json").display().to_string();
    let (mut args, mut env) = d.db_args();
    args.extend([
        "--source-nacos".into(),
        b.source_nacos.join(","),
        "--target-nacos".into(),
        b.target_nacos.join(","),
        "--fix".into(),
        "--settle".into(),
        "3".into(),
        "--state".into(),
        state,
    ]);
    env.extend(cred_env(&b.username, &b.password));
    let one = spawn_audit(bin(), &strs(&args), &env_of(&env));
    let two = spawn_audit(bin(), &strs(&args), &env_of(&env));
    let pids = [one.pid(), two.pid()];
    let ends = [one.end(300), two.end(300)];
    let refused: Vec<usize> = (0..2)
        .filter(|i| ends[*i].stderr.contains("another nacos-drift run"))
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "exactly one run must be refused:\n--- one:\n{}\n--- two:\n{}",
        ends[0].stderr,
        ends[1].stderr
    );
    let (lost, won) = (refused[0], 1 - refused[0]);
    assert_eq!(ends[lost].code, 3);
    assert!(
        ends[lost]
            .stderr
            .contains(&format!("(pid {}) holds", pids[won])),
        "the refusal must name the holder {}: {}",
        pids[won],
        ends[lost].stderr
    );
    assert_eq!(
        ends[lost].json,
        serde_json::Value::Null,
        "a refused run reports nothing"
    );
    // The other one ran its audit (and its repairs) to the end.
    assert!(has_first_pass_drift(&ends[won], &d), "{}", ends[won].stderr);
    assert!(!dir.join("state.json.lock").exists());
}

#[test]
fn a_wrongly_named_target_db_yields_its_source_error_and_nothing_about_what_it_holds() {
    let Some(b) = bed() else { return };
    let (s, spw) = crate::ops::split_dsn(&b.source_db);
    let (t, tpw) = crate::ops::split_dsn(&b.target_db);
    // The bed's target DSN may carry TLS parameters: the database name is before them.
    let (path, query) = t.split_once('?').map_or((t.as_str(), ""), |(p, q)| (p, q));
    let wrong = format!("{}_x?{query}", path.trim_end_matches('/'));
    let wrong = wrong.trim_end_matches('?');
    let args = ["--source-db", &s, "--target-db", wrong, "--no-probe"];
    let env = [
        ("NACOS_DRIFT_SOURCE_DB_PASSWORD", spw.as_str()),
        ("NACOS_DRIFT_TARGET_DB_PASSWORD", tpw.as_str()),
    ];
    let e = spawn_audit(bin(), &args, &env).end(120);
    assert_eq!(e.code, 3, "{}", e.stderr);
    // Not "namespace-missing public" nor "exists on the source only": the target was not read.
    assert!(e.drift().is_empty(), "{:?}", e.drift());
    let errors = e.errors();
    assert!(
        errors
            .iter()
            .any(|m| m.contains("nacos_x`") && !m.contains("wrong user or password")),
        "the error must name the database, not blame the password: {errors:?}"
    );
    assert!(
        e.json["not_compared"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("L1")),
        "{}",
        e.json
    );
}
