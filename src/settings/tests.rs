//! Unit tests of settings resolution.

use super::*;
use std::path::Path;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn tls_settings_go_into_the_dsn_and_skipping_verification_is_warned() {
    let dir = std::env::temp_dir().join(format!("nd-settings-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(
        &file,
        "[target]\ndb = \"mysql://u@h:3306/nacos?ssl-mode=required\"\nnacos = \"https://h:8848/nacos\"\nnacos_tls_insecure_skip_verify = true\n",
    )
    .unwrap();
    let env =
        |k: &str| (k == "NACOS_DRIFT_TARGET_DB_SSL_MODE").then(|| "verify_identity".to_owned());
    let inputs = |env: &dyn Fn(&str) -> Option<String>| {
        resolve(&Inputs {
            sides: None,
            report: None,
            config: Some(&file),
            namespaces: &[],
            settle: None,
            state: None,
            no_probe: false,
            env,
        })
    };
    let s = inputs(&env).unwrap();
    assert_eq!(
        s.target.db.as_deref(),
        Some("mysql://u@h:3306/nacos?ssl-mode=verify_identity")
    );
    assert!(s.target.nacos_tls_insecure_skip_verify && s.target.uses_https());
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("TLS CERTIFICATE VERIFICATION IS OFF for the target")),
        "{:?}",
        s.warnings
    );
    let bad = |k: &str| (k == "NACOS_DRIFT_TARGET_DB_SSL_MODE").then(|| "on".to_owned());
    let e = inputs(&bad).unwrap_err().chain();
    assert!(e.contains("target.db_ssl_mode: unknown mode `on`"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn flags_beat_env_beat_file() {
    let dir = std::env::temp_dir().join(format!("nd-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(
        &file,
        "[audit]\ngate = \"db-synced\"\nsettle_secs = 7\nconcurrency = 3\n",
    )
    .unwrap();
    let env = |k: &str| (k == "NACOS_DRIFT_AUDIT_SETTLE_SECS").then(|| "9".to_owned());
    let report = ReportArgs {
        gate: Some("caches-fresh".into()),
        ..ReportArgs::default()
    };
    let s = resolve(&Inputs {
        sides: None,
        report: Some(&report),
        config: Some(&file),
        namespaces: &[],
        settle: None,
        state: None,
        no_probe: false,
        env: &env,
    })
    .unwrap();
    assert_eq!(s.gate, Some(Gate::CachesFresh));
    assert_eq!(s.settle_secs, 9);
    assert_eq!(s.concurrency, 3);
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let dir = std::env::temp_dir().join(format!("nd-settings-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[source]\nnacos = \"ftp://x\"\ncolour = \"red\"\n\n[audit]\ngate = \"nope\"\nsettle_secs = \"x\"\ndb_digest = \"sha1\"\n\n[levels]\nconfig-missing = \"fatal\"\n",
    )
    .unwrap();
    let err = resolve(&Inputs {
        sides: None,
        report: None,
        config: Some(&file),
        namespaces: &[],
        settle: None,
        state: None,
        no_probe: false,
        env: &no_env,
    })
    .unwrap_err();
    let m = err.msg;
    assert!(m.contains("bad.toml:2: source.nacos"), "{m}");
    assert!(m.contains("bad.toml:3: unknown key `source.colour`"), "{m}");
    assert!(m.contains("bad.toml:6: unknown gate `nope`"), "{m}");
    assert!(
        m.contains("bad.toml:7: `audit.settle_secs` must be an integer"),
        "{m}"
    );
    assert!(
        m.contains("bad.toml:8: unknown `audit.db_digest` `sha1` (expected auto or md5)"),
        "{m}"
    );
    assert!(
        m.contains("bad.toml:11: `levels.config-missing`: unknown level"),
        "{m}"
    );
    assert!(m.contains("6 problems"), "{m}");
}

#[test]
fn every_tls_setting_has_a_flag_that_beats_the_environment() {
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/test-ca.pem");
    let sides = SidesArgs {
        target_db: Some("mysql://u@h:3306/nacos?ssl-mode=required".into()),
        source_db: Some("mysql://u@h:3306/nacos".into()),
        source_nacos: Some("https://s:8848/nacos".into()),
        target_nacos: Some("https://t:8848/nacos".into()),
        source_nacos_ca_file: Some(ca.into()),
        target_nacos_ca_file: Some(ca.into()),
        target_nacos_tls_insecure_skip_verify: true,
        target_db_ssl_mode: Some("verify_ca".into()),
        target_db_ca_file: Some(ca.into()),
        source_db_ssl_mode: Some("DISABLED".into()),
        ..SidesArgs::default()
    };
    // The environment says otherwise for two of them: the flags win.
    let env = |k: &str| match k {
        "NACOS_DRIFT_TARGET_DB_SSL_MODE" => Some("required".to_owned()),
        "NACOS_DRIFT_SOURCE_NACOS_CA_FILE" => Some("/nonexistent.pem".to_owned()),
        _ => None,
    };
    let s = resolve(&Inputs {
        sides: Some(&sides),
        report: None,
        config: None,
        namespaces: &[],
        settle: None,
        state: None,
        no_probe: false,
        env: &env,
    })
    .unwrap();
    assert_eq!(s.source.nacos_ca_file.as_deref(), Some(Path::new(ca)));
    assert_eq!(s.target.nacos_ca_file.as_deref(), Some(Path::new(ca)));
    assert!(s.target.nacos_tls_insecure_skip_verify);
    assert!(!s.source.nacos_tls_insecure_skip_verify);
    assert_eq!(
        s.target.db.as_deref(),
        Some(
            format!(
                "mysql://u@h:3306/nacos?ssl-mode=verify_ca&ssl-ca={}",
                ca.replace('/', "%2F")
            )
            .as_str()
        )
    );
    assert_eq!(
        s.source.db.as_deref(),
        Some("mysql://u@h:3306/nacos?ssl-mode=DISABLED")
    );
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("TLS CERTIFICATE VERIFICATION IS OFF for the target")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn a_bad_tls_flag_is_named_by_its_flag() {
    let sides = SidesArgs {
        source_db: Some("mysql://u@h:3306/nacos".into()),
        source_db_ssl_mode: Some("on".into()),
        target_nacos_ca_file: Some("/nonexistent/ca.pem".into()),
        target_db_ca_file: Some("/nonexistent/db-ca.pem".into()),
        ..SidesArgs::default()
    };
    let e = resolve(&Inputs {
        sides: Some(&sides),
        report: None,
        config: None,
        namespaces: &[],
        settle: None,
        state: None,
        no_probe: false,
        env: &no_env,
    })
    .unwrap_err()
    .msg;
    assert!(
        e.contains("flag --source-db-ssl-mode: source.db_ssl_mode: unknown mode `on`"),
        "{e}"
    );
    assert!(
        e.contains("flag --target-nacos-ca-file: target.nacos_ca_file `/nonexistent/ca.pem`"),
        "{e}"
    );
    assert!(
        e.contains("flag --target-db-ca-file: target.db_ca_file `/nonexistent/db-ca.pem`"),
        "{e}"
    );
}
