//! A `nacos-drift audit` run as a child process, its stderr watched line by line while it runs
//! (to act at a known step: pause a server, send a signal), its JSON report read at the end.

#![allow(dead_code)] // why: shared by the `it` and `disrupt` test binaries, each using a subset.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A running audit.
pub struct Running {
    child: std::process::Child,
    lines: Receiver<String>,
    stderr: String,
    /// The report folder.
    pub out: PathBuf,
    /// When it was started.
    pub started: Instant,
}

/// How a run ended.
pub struct Ended {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// `report.json`, or `Null` if none was written.
    pub json: serde_json::Value,
    /// Everything it wrote on stderr.
    pub stderr: String,
    /// Time from start to exit.
    pub elapsed: Duration,
}

impl Ended {
    /// The `source-error` findings' details.
    pub fn errors(&self) -> Vec<String> {
        self.json["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["code"] == "source-error")
            .map(|f| f["detail"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// `(code, namespace, name)` of every other finding.
    pub fn drift(&self) -> Vec<(String, String, String)> {
        self.json["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["code"] != "source-error")
            .map(|f| {
                let s = |k: &str| f[k].as_str().unwrap_or("").to_owned();
                (s("code"), s("namespace"), s("name"))
            })
            .collect()
    }
}

/// Start `nacos-drift audit --format json --out <tmp> ARGS` with logs at info level on stderr;
/// the caller's NACOS_DRIFT_* variables are not passed on.
pub fn spawn_audit(bin: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Running {
    let out = std::env::temp_dir().join(format!(
        "nacos-drift-child-{}-{}",
        std::process::id(),
        crate::support::unique()
    ));
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(["audit", "--format", "json", "--out", out.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("NACOS_DRIFT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("NACOS_DRIFT_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("starting nacos-drift");
    // Both pipes are drained, so a long text report never blocks the child.
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        lines,
        stderr: String::new(),
        out,
        started,
    }
}

impl Running {
    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until a stderr line contains `needle`; false if the run ended or `secs` passed first.
    pub fn wait_for(&mut self, needle: &str, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.stderr.push_str(&l);
                    self.stderr.push('\n');
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Send a signal to the child.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Wait for the exit (killing the child past `secs`, which fails the test).
    pub fn end(mut self, secs: u64) -> Ended {
        let end = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(1)) {
                    self.stderr.push_str(&l);
                    self.stderr.push('\n');
                }
                panic!(
                    "nacos-drift did not end within {secs} s; killed. stderr:\n{}",
                    self.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let elapsed = self.started.elapsed();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.stderr.push_str(&l);
            self.stderr.push('\n');
        }
        let json = std::fs::read_to_string(self.out.join("report.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null);
        let _ = std::fs::remove_dir_all(&self.out);
        Ended {
            code: status.code().unwrap_or(-1),
            json,
            stderr: std::mem::take(&mut self.stderr),
            elapsed,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that fails midway must not leave a run behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A namespace of its own (in both DBs, by replication) with one config row written on the
/// target DB only: L1 drift for a settling re-check to wait on, in data nobody else reads.
pub struct Drifted {
    /// The namespace id.
    pub ns: String,
    source_db: String,
    target_db: String,
}

/// The data id of the row that exists on the target DB only.
pub const ONLY_ON_TARGET: &str = "only-on-target.properties";

impl Drifted {
    /// Create the namespace on the source DB, wait for it on the target, add the target-only row.
    pub fn new(bed: &crate::support::Bed) -> Drifted {
        use crate::ops::{sql, sql_value, wait_until};
        let ns = format!("nd-bounded-{}", crate::support::unique());
        sql(
            &bed.source_db,
            &format!(
                "INSERT INTO tenant_info (kp, tenant_id, tenant_name, tenant_desc, create_source, gmt_create, gmt_modified) \
                 VALUES ('1', '{ns}', '{ns}', 'nacos-drift bounded-run test', 'nacos', 0, 0)"
            ),
        );
        let q = format!("SELECT tenant_id FROM tenant_info WHERE tenant_id = '{ns}'");
        assert!(
            wait_until(60, || sql_value(&bed.target_db, &q).is_some()),
            "the namespace row did not replicate to the target DB"
        );
        sql(
            &bed.target_db,
            &format!(
                "INSERT INTO config_info (data_id, group_id, content, md5, tenant_id, app_name, c_desc, type, encrypted_data_key) \
                 VALUES ('{ONLY_ON_TARGET}', 'DEFAULT_GROUP', 'x=1', MD5('x=1'), '{ns}', '', '', 'properties', '')"
            ),
        );
        Drifted {
            ns,
            source_db: bed.source_db.clone(),
            target_db: bed.target_db.clone(),
        }
    }

    /// `--source-db`, `--target-db` and `--namespace` of this drift, and the DB passwords.
    pub fn db_args(&self) -> (Vec<String>, Vec<(&'static str, String)>) {
        let (s, spw) = crate::ops::split_dsn(&self.source_db);
        let (t, tpw) = crate::ops::split_dsn(&self.target_db);
        (
            vec![
                "--source-db".into(),
                s,
                "--target-db".into(),
                t,
                "--namespace".into(),
                self.ns.clone(),
            ],
            vec![
                ("NACOS_DRIFT_SOURCE_DB_PASSWORD", spw),
                ("NACOS_DRIFT_TARGET_DB_PASSWORD", tpw),
            ],
        )
    }
}

impl Drop for Drifted {
    fn drop(&mut self) {
        // Left behind by a failed test (a panic here would abort): the names are unique.
        if std::thread::panicking() {
            return;
        }
        let ns = &self.ns;
        crate::ops::sql(
            &self.target_db,
            &format!("DELETE FROM config_info WHERE tenant_id = '{ns}'"),
        );
        crate::ops::sql(
            &self.source_db,
            &format!("DELETE FROM tenant_info WHERE tenant_id = '{ns}'"),
        );
    }
}
