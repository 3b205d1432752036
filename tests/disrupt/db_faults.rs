//! A database that holds a run up: a real `LOCK TABLES ... WRITE` on the bed's target MariaDB,
//! and the target `mariadbd` paused with SIGSTOP mid-run. Either way the run ends in bounded
//! time with exit 3 and a partial report naming the database, and leaves nothing behind.

use crate::child::{spawn_audit, Drifted, ONLY_ON_TARGET};
use crate::ops::split_dsn;
use crate::ops::{sql, sql_value, wait_until};
use crate::support::{bed, bin, Bed};
use mysql_async::prelude::*;
use std::time::{Duration, Instant};

/// A root session on the bed's target MariaDB, through its socket (the bed's root has no
/// password there), on a runtime of its own so that it lives across blocking test code.
struct Root {
    rt: tokio::runtime::Runtime,
    conn: Option<mysql_async::Conn>,
}

impl Root {
    fn target(bed: &Bed) -> Root {
        let socket = sql_value(&bed.target_db, "SELECT @@socket").expect("the target's socket");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opts = mysql_async::OptsBuilder::default()
            .user(Some("root"))
            .socket(Some(socket.clone()))
            .db_name(Some("nacos"));
        let conn = rt
            .block_on(mysql_async::Conn::new(opts))
            .unwrap_or_else(|e| panic!("root on the target DB through {socket}: {e}"));
        Root {
            rt,
            conn: Some(conn),
        }
    }

    fn exec(&mut self, stmt: &str) {
        let c = self.conn.as_mut().unwrap();
        self.rt
            .block_on(c.query_drop(stmt))
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }

    fn count(&mut self, stmt: &str) -> u64 {
        let c = self.conn.as_mut().unwrap();
        self.rt
            .block_on(c.query_first::<u64, _>(stmt))
            .unwrap_or_else(|e| panic!("{stmt}: {e}"))
            .unwrap_or(0)
    }

    /// Statements of nacos-drift process `pid` on the server (they carry its tag), and how many
    /// of those wait on a lock.
    fn statements_of(&mut self, pid: u32) -> (u64, u64) {
        let of = format!(
            "FROM information_schema.processlist WHERE id <> CONNECTION_ID() \
             AND command = 'Query' AND info LIKE '%nacos-drift pid {pid} %'"
        );
        (
            self.count(&format!("SELECT COUNT(*) {of}")),
            self.count(&format!("SELECT COUNT(*) {of} AND state LIKE '%lock%'")),
        )
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // Closing the session releases its table locks, on a panic too.
        if let Some(c) = self.conn.take() {
            let _ = self.rt.block_on(async move {
                let mut c = c;
                let _ = c.query_drop("UNLOCK TABLES").await;
                c.disconnect().await
            });
        }
    }
}

/// The target `mariadbd` stopped with SIGSTOP until dropped (on a panic too).
struct Paused(u32);

impl Paused {
    fn target(bed: &Bed) -> Paused {
        let file = sql_value(&bed.target_db, "SELECT @@pid_file").expect("the target's pid file");
        let pid: u32 = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .trim()
            .parse()
            .unwrap();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&cmd).contains("mariadbd"),
            "pid {pid} from {file} is not mariadbd"
        );
        signal(pid, "STOP");
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The target DSN as reports show it (no password).
fn target_origin(bed: &Bed) -> String {
    split_dsn(&bed.target_db).0
}

#[test]
fn a_locked_table_on_the_target_ends_the_run_with_exit_3_and_leaves_no_query_behind() {
    let _one = crate::serial();
    let Some(b) = bed() else { return };
    let d = Drifted::new(&b);
    let (mut args, env) = d.db_args();
    args.extend(["--no-probe", "--settle", "0", "--timeout", "2"].map(str::to_owned));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut root = Root::target(&b);
    root.exec("LOCK TABLES config_info WRITE");
    let run = spawn_audit(bin(), &strs(&args), &env);
    let pid = run.pid();
    // The scan really reaches the lock and waits on it (else this test would prove nothing).
    let mut waited = false;
    let end = Instant::now() + Duration::from_secs(30);
    while !waited && Instant::now() < end {
        waited = root.statements_of(pid).1 > 0;
        std::thread::sleep(Duration::from_millis(100));
    }
    let e = run.end(60);
    // Still locked: whatever of the run's is left on the server now would wait for ever.
    let left = root.statements_of(pid).0;
    drop(root);
    assert!(waited, "the run never waited on the lock: {}", e.stderr);
    assert_eq!(e.code, 3, "{}", e.stderr);
    assert!(
        e.elapsed < Duration::from_secs(30),
        "a 2 s lock wait took {:?}",
        e.elapsed
    );
    assert_eq!(left, 0, "the run left a statement on the server");
    assert_eq!(e.json["complete"], false, "{}", e.json);
    let errors = e.errors();
    assert!(
        errors.iter().any(|m| m.contains(&target_origin(&b))
            && m.contains("scanning config_info")
            && m.contains("locked")),
        "the report must name the DB and what it waited for: {errors:?}"
    );
    // Nothing is said about data that was not read.
    assert!(e.drift().is_empty(), "{:?}", e.drift());
}

#[test]
fn a_run_stopped_by_its_deadline_while_waiting_on_a_lock_kills_its_statement() {
    let _one = crate::serial();
    let Some(b) = bed() else { return };
    let d = Drifted::new(&b);
    let (mut args, env) = d.db_args();
    // The server would wait 60 s for the lock: the run's deadline (4 s) comes first.
    args.extend(
        [
            "--no-probe",
            "--settle",
            "0",
            "--timeout",
            "60",
            "--deadline",
            "4",
        ]
        .map(str::to_owned),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut root = Root::target(&b);
    root.exec("LOCK TABLES config_info WRITE");
    let run = spawn_audit(bin(), &strs(&args), &env);
    let pid = run.pid();
    let e = run.end(60);
    let left = root.statements_of(pid).0;
    drop(root);
    assert_eq!(e.code, 3, "{}", e.stderr);
    assert!(
        e.elapsed < Duration::from_secs(30),
        "a 4 s deadline took {:?}",
        e.elapsed
    );
    assert_eq!(
        left, 0,
        "the stopped run left its statement waiting on the server"
    );
    let errors = e.errors();
    assert!(
        errors
            .iter()
            .any(|m| m.contains("deadline of 4 s") && m.contains("reading both sides")),
        "{errors:?}"
    );
    assert!(e.drift().is_empty(), "{:?}", e.drift());
}

#[test]
fn a_target_db_paused_mid_run_ends_the_run_with_exit_3_and_the_bed_recovers() {
    let _one = crate::serial();
    let Some(b) = bed() else { return };
    let d = Drifted::new(&b);
    let (mut args, env) = d.db_args();
    args.extend(["--no-probe", "--settle", "3", "--timeout", "2"].map(str::to_owned));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut run = spawn_audit(bin(), &strs(&args), &env);
    assert!(
        run.wait_for("re-checking in", 60),
        "the run never reached its settling wait"
    );
    // Paused after the run has connected: its re-check finds the server silent.
    let paused = Paused::target(&b);
    let t0 = Instant::now();
    let e = run.end(120);
    let held = t0.elapsed();
    drop(paused);
    assert_eq!(e.code, 3, "{}", e.stderr);
    // Settling (3 s), one unanswered statement (2 s + 1 s), the failed kill (2 s), clean-up.
    assert!(
        held < Duration::from_secs(45),
        "the run took {held:?} after the pause"
    );
    assert_eq!(e.json["complete"], false, "{}", e.json);
    let errors = e.errors();
    assert!(
        errors
            .iter()
            .any(|m| m.contains(&target_origin(&b)) && m.contains("no answer within")),
        "{errors:?}"
    );
    // The first pass's difference stands, neither confirmed nor settled: nobody could look.
    assert!(
        e.drift()
            .iter()
            .any(|(c, ns, n)| c == "config-extra" && *ns == d.ns && n == ONLY_ON_TARGET),
        "{:?}",
        e.drift()
    );
    assert_eq!(e.json["summary"]["settled"], 0);
    // The bed recovers: the replica answers and replication still flows.
    let marker = format!("nd-bounded-recover-{}", crate::support::unique());
    sql(
        &b.source_db,
        &format!(
            "INSERT INTO tenant_info (kp, tenant_id, tenant_name, tenant_desc, create_source, gmt_create, gmt_modified) \
             VALUES ('1', '{marker}', '{marker}', '', 'nacos', 0, 0)"
        ),
    );
    let q = format!("SELECT tenant_id FROM tenant_info WHERE tenant_id = '{marker}'");
    let replicated = wait_until(90, || sql_value(&b.target_db, &q).is_some());
    sql(
        &b.source_db,
        &format!("DELETE FROM tenant_info WHERE tenant_id = '{marker}'"),
    );
    assert!(replicated, "replication did not resume after the pause");
}
