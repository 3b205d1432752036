//! Issue 17 on the real bed: one target node paused (SIGSTOP) during an audit. The run still
//! answers within about 2× `--timeout` more than the same audit without the pause, names the
//! paused node in one source-error, and counts one probed node.
//!
//! The node is always resumed (SIGCONT) by a guard that also runs when the test panics.

use crate::support::{bed, pid_listening_on, run, tempdir, unique, Bed};
use std::process::Command;
use std::time::{Duration, Instant};

const TIMEOUT_SECS: u64 = 3;

/// Resumes the paused process when dropped, on success and on panic alike.
struct Paused(u32);

impl Paused {
    fn pause(pid: u32) -> Paused {
        let ok = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not pause process {pid}");
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

fn port_of(url: &str) -> u16 {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|hp| hp.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// Create a namespace with one config on the source node (replicated to the target DB).
fn namespace_with_a_config(b: &Bed) -> String {
    let ns = format!("pause-{}", unique());
    let base = b.source_nacos[0].clone();
    let (user, pass) = (b.username.clone(), b.password.clone());
    let ns2 = ns.clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            nacos_drift::tls::install_provider();
            let c = reqwest::Client::new();
            let login: serde_json::Value = c
                .post(format!("{base}/v1/auth/login"))
                .form(&[("username", user), ("password", pass)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = login["accessToken"].as_str().unwrap_or("").to_owned();
            // The token in the `Authorization` header, as nacos-drift sends it (Nacos reads
            // `Bearer <token>` there: `JwtTokenManager`/`NacosAuthPluginService`), never in a form.
            let post = |path: &str, form: Vec<(&str, String)>| {
                c.post(format!("{base}{path}"))
                    .header("Authorization", format!("Bearer {token}"))
                    .form(&form)
                    .send()
            };
            let r = post(
                "/v1/console/namespaces",
                vec![
                    ("customNamespaceId", ns2.clone()),
                    ("namespaceName", ns2.clone()),
                    ("namespaceDesc", ns2.clone()),
                ],
            )
            .await
            .unwrap();
            assert!(r.status().is_success(), "namespace {ns2}: {r:?}");
            let r = post(
                "/v1/cs/configs",
                vec![
                    ("tenant", ns2.clone()),
                    ("group", "PAUSE".into()),
                    ("dataId", "p.yaml".into()),
                    ("content", "p: 1\n".into()),
                ],
            )
            .await
            .unwrap();
            assert!(r.status().is_success(), "publish in {ns2}: {r:?}");
        });
    ns
}

fn split_dsn(dsn: &str) -> (String, String) {
    // mysql://user:pass@host:port/db → (mysql://user@host:port/db, pass)
    let (scheme, rest) = dsn.split_once("://").unwrap();
    let (cred, host) = rest.split_once('@').unwrap();
    let (user, pass) = cred.split_once(':').unwrap_or((cred, ""));
    (format!("{scheme}://{user}@{host}"), pass.to_owned())
}

/// One audit of `ns` against the bed; returns (exit code, JSON report, output, elapsed).
fn audit(b: &Bed, ns: &str) -> (i32, serde_json::Value, String, Duration) {
    let out = tempdir("paused");
    let (sdb, spw) = split_dsn(&b.source_db);
    let (tdb, tpw) = split_dsn(&b.target_db);
    let timeout = TIMEOUT_SECS.to_string();
    let args = [
        "audit",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--namespace",
        ns,
        "--settle",
        "0",
        "--timeout",
        &timeout,
        "--source-nacos",
        &b.source_nacos.join(","),
        "--target-nacos",
        &b.target_nacos.join(","),
        "--source-db",
        &sdb,
        "--target-db",
        &tdb,
    ];
    let env = [
        ("NACOS_DRIFT_SOURCE_NACOS_USERNAME", b.username.as_str()),
        ("NACOS_DRIFT_SOURCE_NACOS_PASSWORD", b.password.as_str()),
        ("NACOS_DRIFT_TARGET_NACOS_USERNAME", b.username.as_str()),
        ("NACOS_DRIFT_TARGET_NACOS_PASSWORD", b.password.as_str()),
        ("NACOS_DRIFT_SOURCE_DB_PASSWORD", spw.as_str()),
        ("NACOS_DRIFT_TARGET_DB_PASSWORD", tpw.as_str()),
    ];
    let t = Instant::now();
    let o = run(&args, &env);
    let elapsed = t.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let json = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    (o.status.code().unwrap_or(-1), json, text, elapsed)
}

#[test]
fn a_paused_target_node_costs_one_timeout_and_is_named_once() {
    let Some(b) = bed() else { return };
    let _one = crate::serial();
    assert!(b.target_nacos.len() >= 2, "the bed has two target nodes");
    let ns = namespace_with_a_config(&b);
    // Let the config replicate, and have each target node load it (the bed's target nodes are
    // not told about replicated rows): the baseline must be a clean, complete run.
    std::thread::sleep(Duration::from_secs(3));
    let identity = Some((b.identity_key.as_str(), b.identity_value.as_str()));
    for node in &b.target_nacos {
        let addr = nacos_drift::nacos::grpc::cluster_grpc_addr(node).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(nacos_drift::nacos::grpc::config_change_sync(
                &addr,
                &b.target_version,
                "p.yaml",
                "PAUSE",
                &ns,
                nacos_drift::nacos::grpc::now_ms(),
                identity,
                Duration::from_secs(10),
            ))
            .unwrap_or_else(|e| panic!("loading p.yaml on {node}: {e}"));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (code, json, text, baseline) = audit(&b, &ns);
    assert_eq!(code, 0, "baseline: {text}");
    assert_eq!(json["probe"]["target"]["nodes"], 2, "{text}");

    let paused_url = b.target_nacos[1].clone();
    let pid = pid_listening_on(port_of(&paused_url))
        .unwrap_or_else(|| panic!("no process listens for {paused_url}"));
    let (code, json, text, elapsed) = {
        let _paused = Paused::pause(pid);
        audit(&b, &ns)
    };
    assert_eq!(code, 3, "{text}");
    assert_eq!(json["complete"], false, "{text}");
    // Bounded: the pause may cost about two timeouts (a request and the decision that the
    // node is down), plus slack for a loaded 2-core machine.
    let bound = baseline + Duration::from_secs(2 * TIMEOUT_SECS + 5);
    assert!(
        elapsed <= bound,
        "took {elapsed:?}, baseline {baseline:?}, bound {bound:?}: {text}"
    );
    let errors: Vec<&serde_json::Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "source-error")
        .collect();
    let naming: Vec<_> = errors
        .iter()
        .filter(|f| {
            f.to_string()
                .contains(&format!(":{}", port_of(&paused_url)))
        })
        .collect();
    assert_eq!(naming.len(), 1, "the paused node is named once: {errors:?}");
    assert_eq!(errors.len(), 1, "nothing else failed: {errors:?}");
    assert_eq!(json["probe"]["target"]["nodes"], 1, "{text}");
    assert_eq!(
        json["probe"]["target"]["not_probed"],
        serde_json::json!([paused_url]),
        "{text}"
    );
}
