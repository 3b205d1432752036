//! Helpers shared by the integration tests: the binary, the running test bed, temp dirs, golden files.

#![allow(dead_code)] // why: each test module uses a different subset of these helpers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the built `nacos-drift` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nacos-drift"))
}

/// Repo root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the binary with args and extra env; NACOS_DRIFT_* from the caller's environment is cleared.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(root());
    for (k, _) in std::env::vars() {
        if k.starts_with("NACOS_DRIFT_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running nacos-drift")
}

/// stdout + stderr as one string.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh temporary directory, unique per call.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "nacos-drift-it-{tag}-{}-{}",
        std::process::id(),
        unique()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A process-unique suffix (nanoseconds plus a counter).
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}{}",
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Compare `actual` with the golden file; `UPDATE_GOLDEN=1` rewrites it.
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "reading golden {}: {e} (run with UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual)
            .unified_diff()
            .header("expected", "actual")
            .to_string();
        panic!("{} differs from the output:\n{diff}", path.display());
    }
}

/// The running test bed, as `tests/testbed/testbed env` describes it.
#[derive(Debug, Clone)]
pub struct Bed {
    pub source_db: String,
    pub target_db: String,
    pub source_nacos: Vec<String>,
    pub target_nacos: Vec<String>,
    pub source_version: String,
    pub target_version: String,
    pub username: String,
    pub password: String,
    pub source_rnacos: String,
    pub target_rnacos: String,
    /// r-nacos consoles (empty on a bed from before they were exported) and their manager login.
    pub source_rnacos_console: String,
    pub target_rnacos_console: String,
    pub rnacos_username: String,
    pub rnacos_password: String,
    /// A standalone Nacos 3.x node (v3 admin API), embedded storage.
    pub nacos3: String,
    pub identity_key: String,
    pub identity_value: String,
    /// The bed's CA certificate (PEM): the target DB's and the HTTPS node's certificates.
    pub ca_file: String,
    /// The target node that also serves HTTPS, by its HTTPS URL.
    pub target_nacos_https: String,
    /// The same node behind a certificate from the bed's CA that expired in 2021.
    pub target_nacos_https_expired: String,
    /// The same node behind a certificate from the bed's CA for another name
    /// (`wrong-name.invalid`).
    pub target_nacos_https_wrong_name: String,
    /// `host:port` of that node's SDK gRPC port, which also accepts TLS (Nacos 2.3.2 has no TLS
    /// on the cluster gRPC port; 2.2.1–2.4.2 accept the cluster sync on the SDK port too).
    pub target_grpc_tls: String,
    /// The bed's state folder (`<repo the bed runs from>/.testbed`): node homes and logs.
    pub home: PathBuf,
    /// The Nacos 3.1 cluster on MariaDB (part `v3cluster`; empty when it does not run).
    pub v3_nacos: Vec<String>,
    pub v3_db: String,
    pub v3_version: String,
    /// The Nacos 2.2.3 node on the target DB (part `v22`; empty when it does not run).
    pub v22_nacos: Vec<String>,
    pub v22_version: String,
    /// `TESTBED_PAIRS`: the matrix, `source>target` side names (see [`Bed::pairs`]).
    pub pairs_spec: String,
    /// `TESTBED_PROFILE` of the bed (`full` runs every part).
    pub profile: String,
}

/// One side of a pair of the matrix: its nodes, its DB (`None`: read through the API only).
#[derive(Debug, Clone)]
pub struct Side {
    pub name: String,
    pub nacos: Vec<String>,
    pub db: Option<String>,
    pub version: String,
    /// Java Nacos with auth on (login, identity header); r-nacos runs with open-API auth off.
    pub java: bool,
}

/// A (source, target) pair of the matrix.
#[derive(Debug, Clone)]
pub struct MatrixPair {
    pub source: Side,
    pub target: Side,
}

impl MatrixPair {
    /// `2.0.4>3.1.0-bugfix`, for messages.
    pub fn label(&self) -> String {
        format!("{}>{}", self.source.name, self.target.name)
    }
}

impl Bed {
    /// A side by its name in `TESTBED_PAIRS`.
    pub fn side(&self, name: &str) -> Side {
        let java = |nacos: &[String], db: &str, version: &str| Side {
            name: name.to_owned(),
            nacos: nacos.to_vec(),
            db: Some(db.to_owned()),
            version: version.to_owned(),
            java: true,
        };
        let rnacos = |url: &str| Side {
            name: name.to_owned(),
            nacos: vec![url.to_owned()],
            db: None,
            version: "r-nacos".into(),
            java: false,
        };
        match name {
            "src-2.0.4" => java(&self.source_nacos, &self.source_db, &self.source_version),
            "tgt-2.3.2" => java(&self.target_nacos, &self.target_db, &self.target_version),
            "tgt-2.2.3" => java(&self.v22_nacos, &self.target_db, &self.v22_version),
            "v3-3.1" => java(&self.v3_nacos, &self.v3_db, &self.v3_version),
            "rnacos-src" => rnacos(&self.source_rnacos),
            "rnacos-tgt" => rnacos(&self.target_rnacos),
            other => panic!("TESTBED_PAIRS names an unknown side `{other}`"),
        }
    }

    /// The matrix of (source, target) pairs the bed runs (`testbed env` lists them). Under CI on a
    /// full bed every pair must be there.
    pub fn pairs(&self) -> Vec<MatrixPair> {
        let pairs: Vec<MatrixPair> = self
            .pairs_spec
            .split_whitespace()
            .filter_map(|p| p.split_once('>'))
            .map(|(s, t)| MatrixPair {
                source: self.side(s),
                target: self.side(t),
            })
            .collect();
        if std::env::var("CI").is_ok_and(|v| v == "true") && self.profile == "full" {
            for want in ["src-2.0.4>v3-3.1", "src-2.0.4>tgt-2.2.3"] {
                assert!(
                    pairs.iter().any(|p| p.label() == want),
                    "CI=true on a full bed: pair {want} is missing from TESTBED_PAIRS ({})",
                    self.pairs_spec
                );
            }
        }
        pairs
    }
}

/// The bed if it is up. Without it tests skip with a printed line, except under CI=true where they fail.
pub fn bed() -> Option<Bed> {
    let mut vars: std::collections::HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("TESTBED_"))
        .collect();
    if !vars.contains_key("TESTBED_SOURCE_DB") {
        if let Ok(o) = Command::new(root().join("tests/testbed/testbed"))
            .arg("env")
            .output()
        {
            if o.status.success() {
                for line in String::from_utf8_lossy(&o.stdout).lines() {
                    if let Some((k, v)) = line
                        .trim()
                        .strip_prefix("export ")
                        .and_then(|l| l.split_once('='))
                    {
                        vars.insert(k.to_owned(), v.trim_matches(['"', '\'']).to_owned());
                    }
                }
            }
        }
    }
    let up = vars.contains_key("TESTBED_SOURCE_DB") && {
        // `env` may answer from config even when nothing runs: check the source DB port is open.
        let dsn = &vars["TESTBED_SOURCE_DB"];
        let hostport = dsn
            .rsplit_once('@')
            .map(|(_, h)| h.split('/').next().unwrap_or(""))
            .unwrap_or("");
        std::net::TcpStream::connect_timeout(
            &hostport
                .parse()
                .unwrap_or_else(|_| "127.0.0.1:1".parse().unwrap()),
            std::time::Duration::from_secs(2),
        )
        .is_ok()
    };
    if !up {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the test bed is not running (CI=true): run tests/testbed/testbed up");
        }
        eprintln!("skipping: test bed not running (tests/testbed/testbed up)");
        return None;
    }
    let get = |k: &str| vars.get(k).cloned().unwrap_or_default();
    let list = |k: &str| {
        get(k)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Some(Bed {
        source_db: get("TESTBED_SOURCE_DB"),
        target_db: get("TESTBED_TARGET_DB"),
        source_nacos: list("TESTBED_SOURCE_NACOS"),
        target_nacos: list("TESTBED_TARGET_NACOS"),
        source_version: get("TESTBED_SOURCE_NACOS_VERSION"),
        target_version: get("TESTBED_TARGET_NACOS_VERSION"),
        username: get("TESTBED_NACOS_USERNAME"),
        password: get("TESTBED_NACOS_PASSWORD"),
        source_rnacos: get("TESTBED_SOURCE_RNACOS"),
        target_rnacos: get("TESTBED_TARGET_RNACOS"),
        source_rnacos_console: get("TESTBED_SOURCE_RNACOS_CONSOLE"),
        target_rnacos_console: get("TESTBED_TARGET_RNACOS_CONSOLE"),
        rnacos_username: get("TESTBED_RNACOS_USERNAME"),
        rnacos_password: get("TESTBED_RNACOS_PASSWORD"),
        nacos3: get("TESTBED_NACOS3"),
        identity_key: get("TESTBED_NACOS_IDENTITY_KEY"),
        identity_value: get("TESTBED_NACOS_IDENTITY_VALUE"),
        ca_file: get("TESTBED_CA_FILE"),
        target_nacos_https: get("TESTBED_TARGET_NACOS_HTTPS"),
        target_nacos_https_expired: get("TESTBED_TARGET_NACOS_HTTPS_EXPIRED"),
        target_nacos_https_wrong_name: get("TESTBED_TARGET_NACOS_HTTPS_WRONG_NAME"),
        target_grpc_tls: get("TESTBED_TARGET_GRPC_TLS"),
        home: vars
            .get("TESTBED_HOME")
            .map_or_else(|| root().join(".testbed"), PathBuf::from),
        v3_nacos: list("TESTBED_V3_NACOS"),
        v3_db: get("TESTBED_V3_DB"),
        v3_version: get("TESTBED_V3_NACOS_VERSION"),
        v22_nacos: list("TESTBED_V22_NACOS"),
        v22_version: get("TESTBED_V22_NACOS_VERSION"),
        // A bed started before the matrix existed: its two original pairs.
        pairs_spec: vars
            .get("TESTBED_PAIRS")
            .cloned()
            .unwrap_or_else(|| "src-2.0.4>tgt-2.3.2 rnacos-src>rnacos-tgt".into()),
        profile: get("TESTBED_PROFILE"),
    })
}

/// The process listening on a local TCP port (read from /proc: no `ss` or `lsof` needed).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is `ADDR:PORT` in hex; state 0A is LISTEN; column 9 the inode.
            let listening = cols.get(3) == Some(&"0A");
            let on_port = cols
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port);
            if listening && on_port {
                if let Some(i) = cols.get(9) {
                    inodes.push(format!("socket:[{i}]"));
                }
            }
        }
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| link.to_string_lossy() == *i) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// A file in the log folder of the bed's Nacos node at `url` (its `-Dnacos.logs.path`, read from
/// the command line of the process listening on its port).
pub fn nacos_log(url: &str, name: &str) -> Option<PathBuf> {
    let port: u16 = url
        .split("://")
        .nth(1)?
        .split('/')
        .next()?
        .rsplit_once(':')?
        .1
        .parse()
        .ok()?;
    let pid = pid_listening_on(port)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let dir = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .find_map(|a| a.strip_prefix("-Dnacos.logs.path=").map(str::to_owned))?;
    Some(PathBuf::from(dir).join(name))
}
