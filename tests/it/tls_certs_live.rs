//! Issue 10: certificates that must be refused, from real servers, each named for the node or
//! the DB that presented it (exit 3, never "unreachable").
//!
//! Nacos: target node 18868 serves the same application behind two more HTTPS connectors (see
//! `tests/testbed/nacos-2.3.2/HttpsLauncher.java`), one with a certificate from the bed's CA that
//! expired in 2021, one with a certificate for `wrong-name.invalid`. MariaDB: the bed's DBs
//! cannot change certificate while others use them, so each DB test starts a throwaway
//! `mariadbd` (empty data folder, no grant tables: the handshake fails before any login) with
//! the same certificates, and stops it at the end.

use crate::ops::{audit, cred_env, split_dsn, Run};
use crate::support::{tempdir, unique, Bed};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The bed with its refused-certificate parts (a bed from before them has none: skipped with a
/// printed line, except under CI=true where that fails).
fn bed() -> Option<Bed> {
    let b = crate::support::bed()?;
    if b.ca_file.is_empty()
        || b.target_nacos_https_expired.is_empty()
        || b.target_nacos_https_wrong_name.is_empty()
    {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "the test bed has no refused certificates (TESTBED_TARGET_NACOS_HTTPS_EXPIRED, _WRONG_NAME): run tests/testbed/testbed restart-nacos 18868"
        );
        eprintln!("skipping: the bed has no refused certificates (tests/testbed/testbed restart-nacos 18868)");
        return None;
    }
    Some(b)
}

/// An audit of a namespace nobody has, with the target's nodes and DB as given and the bed's
/// CA trusted for both (through the flags).
fn audit_target(b: &Bed, target_nacos: &str, target_db: &str) -> Run {
    let ns = format!("it-tlscert-{}", unique());
    let (sdb, spw) = split_dsn(&b.source_db);
    let (_, tpw) = split_dsn(&b.target_db);
    let args = [
        "--namespace",
        ns.as_str(),
        "--settle",
        "0",
        "--source-db",
        &sdb,
        "--source-nacos",
        &b.source_nacos[0],
        "--target-db",
        target_db,
        "--target-nacos",
        target_nacos,
        "--target-nacos-ca-file",
        &b.ca_file,
        "--target-db-ca-file",
        &b.ca_file,
    ];
    let creds = cred_env(&b.username, &b.password);
    let mut e: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    e.push(("NACOS_DRIFT_SOURCE_DB_PASSWORD", &spw));
    e.push(("NACOS_DRIFT_TARGET_DB_PASSWORD", &tpw));
    audit(&args, &e)
}

/// The bed's target DB, verified with its name (it passes: only the nodes fail).
fn good_target_db(b: &Bed) -> String {
    let (dsn, _) = split_dsn(&b.target_db);
    format!(
        "{}?ssl-mode=verify_identity",
        dsn.split('?').next().unwrap()
    )
}

/// The one output line that names `who` and `problem`; never "unreachable" anywhere.
fn assert_named(r: &Run, who: &str, problem: &str) {
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output
            .lines()
            .any(|l| l.contains(who) && l.contains(problem)),
        "no line names {who} and `{problem}`:\n{}",
        r.output
    );
    assert!(!r.output.contains("unreachable"), "{}", r.output);
    let errors = r.json["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["code"] == "source-error")
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(
        errors.iter().any(|f| f.contains(problem)),
        "no source-error finding says `{problem}`: {errors:?}"
    );
}

#[test]
fn an_expired_node_certificate_is_named_for_that_node() {
    let Some(b) = bed() else { return };
    let r = audit_target(&b, &b.target_nacos_https_expired, &good_target_db(&b));
    assert_named(&r, &b.target_nacos_https_expired, "certificate has expired");
    // The DB beside it was verified and read.
    assert_eq!(r.json["target"]["db_tls"], true, "{}", r.json["target"]);
}

#[test]
fn a_node_certificate_for_another_name_is_named_for_that_node() {
    let Some(b) = bed() else { return };
    let r = audit_target(&b, &b.target_nacos_https_wrong_name, &good_target_db(&b));
    assert_named(
        &r,
        &b.target_nacos_https_wrong_name,
        "certificate name does not match",
    );
}

/// A real MariaDB serving `<name>.pem` of the bed's TLS folder, on a free port; stopped on drop.
struct ThrowawayDb {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl ThrowawayDb {
    fn start(b: &Bed, name: &str) -> ThrowawayDb {
        let tls = Path::new(&b.ca_file).parent().unwrap();
        let dir = tempdir(&format!("tls-db-{name}"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let arg = |k: &str, v: &Path| format!("--{k}={}", v.display());
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=root",
                &arg("datadir", &dir.join("data")),
                &arg("tmpdir", &dir),
                &arg("socket", &dir.join("s.sock")),
                &arg("log-error", &dir.join("error.log")),
                &arg("pid-file", &dir.join("mysqld.pid")),
                &format!("--port={port}"),
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=8M",
                "--performance-schema=OFF",
                &arg("ssl-ca", &tls.join("ca.pem")),
                &arg("ssl-cert", &tls.join(format!("{name}.pem"))),
                &arg("ssl-key", &tls.join(format!("{name}.key"))),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd (apt-get install mariadb-server)");
        let mut db = ThrowawayDb { child, port, dir };
        let ready = crate::ops::wait_until(60, || {
            std::net::TcpStream::connect(("127.0.0.1", db.port)).is_ok()
        });
        if !ready || db.child.try_wait().ok().flatten().is_some() {
            let log = std::fs::read_to_string(db.dir.join("error.log")).unwrap_or_default();
            panic!("the throwaway mariadbd did not start:\n{log}");
        }
        db
    }

    fn dsn(&self, mode: &str) -> String {
        format!(
            "mysql://nacos@127.0.0.1:{}/nacos?ssl-mode={mode}",
            self.port
        )
    }
}

impl Drop for ThrowawayDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn an_expired_db_certificate_is_named_for_that_db() {
    let Some(b) = bed() else { return };
    let db = ThrowawayDb::start(&b, "expired");
    let r = audit_target(&b, &b.target_nacos_https, &db.dsn("verify_ca"));
    assert_named(
        &r,
        &format!("database mysql://nacos@127.0.0.1:{}", db.port),
        "certificate has expired",
    );
}

#[test]
fn a_db_certificate_for_another_name_is_named_for_that_db() {
    let Some(b) = bed() else { return };
    let db = ThrowawayDb::start(&b, "wrong-name");
    let r = audit_target(&b, &b.target_nacos_https, &db.dsn("verify_identity"));
    assert_named(
        &r,
        &format!("database mysql://nacos@127.0.0.1:{}", db.port),
        "certificate name does not match",
    );
}
