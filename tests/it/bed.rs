//! Test-bed smoke tests (written with the test bed): real MariaDB replication, real Java Nacos
//! clusters (source 1 node, target 2 nodes) and two r-nacos servers, as started by
//! `tests/testbed/testbed up`. No mocks. Every test uses its own dataIds / services / namespaces,
//! so the tests can run in parallel and repeatedly on one bed without a restart.
//!
//! Tests that assert a target node is *stale*, or that reload a target node's cache, hold
//! [`TARGET_CACHE_LOCK`]: a full reload (`POST /v1/cs/ops/localCache`) on a target node loads
//! every config of the target DB, including other tests' fresh rows. Other test modules that
//! reload target caches (repair tests) should take the same lock.

use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use mysql_async::prelude::Queryable;

use crate::ops::with_token;
use crate::support::{bed, root, unique, Bed};

/// Serialises tests that reload target node caches or rely on them being stale.
pub static TARGET_CACHE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const GROUP: &str = "DEFAULT_GROUP";
/// Upper bound for replication, asynchronous dumps and reloads.
const WAIT: Duration = Duration::from_secs(30);

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn client() -> reqwest::Client {
    nacos_drift::tls::install_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("http client")
}

/// Whether the target nodes poll the DB for changes (`TESTBED_DUMP_CHANGE=on`): then "stale"
/// only lasts up to ~30 s and the staleness tests are skipped.
fn target_dump_change_on() -> bool {
    if let Ok(v) = std::env::var("TESTBED_TARGET_DUMP_CHANGE") {
        return v == "on";
    }
    std::process::Command::new(root().join("tests/testbed/testbed"))
        .arg("env")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("TESTBED_TARGET_DUMP_CHANGE=on"))
        .unwrap_or(false)
}

async fn login(http: &reqwest::Client, base: &str, bed: &Bed) -> String {
    let resp = http
        .post(format!("{base}/v1/auth/login"))
        .form(&[
            ("username", bed.username.as_str()),
            ("password", bed.password.as_str()),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("login on {base}: {e}"));
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .unwrap_or_else(|e| panic!("login on {base}: {status}: {e}"));
    body["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("login on {base}: no accessToken in {body}"))
        .to_owned()
}

/// One node's cached answer for a config: (HTTP status, body, Content-MD5 header).
async fn get_config(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    data_id: &str,
) -> (u16, String, Option<String>) {
    let q = vec![("dataId", data_id), ("group", GROUP)];
    let resp = with_token(http.get(format!("{base}/v1/cs/configs")).query(&q), token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET config {data_id} on {base}: {e}"));
    let status = resp.status().as_u16();
    let md5 = resp
        .headers()
        .get("Content-MD5")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.unwrap_or_default();
    (status, body, md5)
}

async fn publish(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    data_id: &str,
    content: &str,
) {
    let form = vec![("dataId", data_id), ("group", GROUP), ("content", content)];
    let resp = with_token(
        http.post(format!("{base}/v1/cs/configs")).form(&form),
        token,
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("publish {data_id} on {base}: {e}"));
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert!(
        status.is_success() && body.trim() == "true",
        "publish {data_id} on {base}: {status} {body}"
    );
}

/// Polls until `base` serves `content` (and its MD5) for `data_id`.
async fn wait_served(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    data_id: &str,
    content: &str,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = get_config(http, base, token, data_id).await;
        if got.0 == 200 && got.1 == content && got.2.as_deref() == Some(&md5_hex(content)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base} does not serve {data_id}={content:?} after {WAIT:?}; last answer {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls the DB until the config row of `data_id` has the MD5 of `content`.
async fn wait_db_row(db_url: &str, data_id: &str, content: &str) {
    let pool = mysql_async::Pool::new(db_url);
    let want = md5_hex(content);
    let deadline = Instant::now() + WAIT;
    let mut last = None;
    loop {
        if let Ok(mut conn) = pool.get_conn().await {
            let row: Option<(String, String)> = conn
                .exec_first(
                    "SELECT md5, content FROM config_info \
                     WHERE data_id = ? AND group_id = ? AND tenant_id = ''",
                    (data_id, GROUP),
                )
                .await
                .unwrap_or_else(|e| panic!("query {db_url}: {e}"));
            if let Some((md5, body)) = &row {
                if *md5 == want && body == content {
                    drop(conn);
                    pool.disconnect().await.ok();
                    return;
                }
            }
            last = row;
        }
        assert!(
            Instant::now() < deadline,
            "row {data_id} with md5 {want} not in {db_url} after {WAIT:?}; last {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks one node for a full dump from its DB (asynchronous on the server).
async fn reload(http: &reqwest::Client, base: &str, token: &str) {
    let resp = with_token(
        http.post(format!("{base}/v1/cs/ops/localCache")),
        Some(token),
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("localCache on {base}: {e}"));
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "localCache on {base}: {status} {body}");
}

fn two_target_nodes(bed: &Bed) -> (&str, &str) {
    assert!(
        bed.target_nacos.len() >= 2,
        "the target cluster needs two nodes: {:?}",
        bed.target_nacos
    );
    (&bed.target_nacos[0], &bed.target_nacos[1])
}

#[tokio::test]
async fn bed_runs_the_announced_versions_and_a_two_node_target_cluster() {
    let Some(bed) = bed() else { return };
    let http = client();
    for (base, version) in bed
        .source_nacos
        .iter()
        .map(|b| (b, &bed.source_version))
        .chain(bed.target_nacos.iter().map(|b| (b, &bed.target_version)))
    {
        let state: serde_json::Value = http
            .get(format!("{base}/v1/console/server/state"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(state["version"].as_str(), Some(version.as_str()), "{base}");
        assert_eq!(
            state["standalone_mode"]
                .as_str()
                .or(state["startup_mode"].as_str()),
            Some("cluster"),
            "{base}"
        );
    }
    let (a, _) = two_target_nodes(&bed);
    let token = login(&http, a, &bed).await;
    let nodes: serde_json::Value =
        with_token(http.get(format!("{a}/v1/core/cluster/nodes")), Some(&token))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let members = nodes["data"].as_array().expect("members");
    assert_eq!(members.len(), bed.target_nacos.len(), "{nodes}");
    assert!(members.iter().all(|m| m["state"] == "UP"), "{nodes}");
}

#[tokio::test]
async fn new_config_reaches_target_db_but_no_target_node_serves_it() {
    let Some(bed) = bed() else { return };
    if target_dump_change_on() {
        eprintln!("skipping: target nodes run with dumpChangeOn=true");
        return;
    }
    let _guard = TARGET_CACHE_LOCK.lock().await;
    let http = client();
    let src = &bed.source_nacos[0];
    let stoken = login(&http, src, &bed).await;
    let data_id = format!("bed-new-{}", unique());
    let content = format!("fresh.value={}\n", unique());

    publish(&http, src, Some(&stoken), &data_id, &content).await;
    wait_served(&http, src, Some(&stoken), &data_id, &content).await;
    wait_db_row(&bed.source_db, &data_id, &content).await;
    wait_db_row(&bed.target_db, &data_id, &content).await;

    for node in &bed.target_nacos {
        let token = login(&http, node, &bed).await;
        let (status, body, md5) = get_config(&http, node, Some(&token), &data_id).await;
        assert_eq!(status, 404, "{node} serves {data_id}: {body:?} md5 {md5:?}");
    }
}

#[tokio::test]
async fn changed_config_stays_stale_on_every_target_node_until_that_node_reloads() {
    let Some(bed) = bed() else { return };
    if target_dump_change_on() {
        eprintln!("skipping: target nodes run with dumpChangeOn=true");
        return;
    }
    let _guard = TARGET_CACHE_LOCK.lock().await;
    let http = client();
    let src = &bed.source_nacos[0];
    let (a, b) = two_target_nodes(&bed);
    let stoken = login(&http, src, &bed).await;
    let ta = login(&http, a, &bed).await;
    let tb = login(&http, b, &bed).await;
    let data_id = format!("bed-changed-{}", unique());
    let v1 = format!("version=1\nid={}\n", unique());
    let v2 = format!("version=2\nid={}\n", unique());

    // v1 everywhere: source publish, replication, full reload of both target nodes.
    publish(&http, src, Some(&stoken), &data_id, &v1).await;
    wait_db_row(&bed.target_db, &data_id, &v1).await;
    reload(&http, a, &ta).await;
    reload(&http, b, &tb).await;
    wait_served(&http, a, Some(&ta), &data_id, &v1).await;
    wait_served(&http, b, Some(&tb), &data_id, &v1).await;

    // v2 on the source reaches the target DB, but both target nodes keep serving v1.
    publish(&http, src, Some(&stoken), &data_id, &v2).await;
    wait_served(&http, src, Some(&stoken), &data_id, &v2).await;
    wait_db_row(&bed.target_db, &data_id, &v2).await;
    // Leave the cluster time to (not) react.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (node, token) in [(a, &ta), (b, &tb)] {
        let got = get_config(&http, node, Some(token), &data_id).await;
        assert_eq!(
            got,
            (200, v1.clone(), Some(md5_hex(&v1))),
            "{node} should still serve v1"
        );
    }

    // A full reload of node A only: A serves v2, B still v1.
    reload(&http, a, &ta).await;
    wait_served(&http, a, Some(&ta), &data_id, &v2).await;
    let got = get_config(&http, b, Some(&tb), &data_id).await;
    assert_eq!(
        got,
        (200, v1.clone(), Some(md5_hex(&v1))),
        "{b} should still serve v1"
    );
}

#[tokio::test]
async fn full_reload_on_one_target_node_loads_a_new_config_there_only() {
    let Some(bed) = bed() else { return };
    if target_dump_change_on() {
        eprintln!("skipping: target nodes run with dumpChangeOn=true");
        return;
    }
    let _guard = TARGET_CACHE_LOCK.lock().await;
    let http = client();
    let src = &bed.source_nacos[0];
    let (a, b) = two_target_nodes(&bed);
    let stoken = login(&http, src, &bed).await;
    let ta = login(&http, a, &bed).await;
    let tb = login(&http, b, &bed).await;
    let data_id = format!("bed-reload-{}", unique());
    let content = format!("reload.me={}\n", unique());

    publish(&http, src, Some(&stoken), &data_id, &content).await;
    wait_db_row(&bed.target_db, &data_id, &content).await;
    reload(&http, b, &tb).await;
    wait_served(&http, b, Some(&tb), &data_id, &content).await;
    let (status, body, _) = get_config(&http, a, Some(&ta), &data_id).await;
    assert_eq!(
        status, 404,
        "{a} was not reloaded but serves {data_id}: {body:?}"
    );
}

#[tokio::test]
async fn instance_registered_on_source_is_listed_there_and_not_on_target() {
    let Some(bed) = bed() else { return };
    let http = client();
    let src = &bed.source_nacos[0];
    let stoken = login(&http, src, &bed).await;
    let service = format!("bed-svc-{}", unique());
    let resp = with_token(
        http.post(format!("{src}/v1/ns/instance")).form(&[
            ("serviceName", service.as_str()),
            ("ip", "10.255.0.7"),
            ("port", "8080"),
            ("ephemeral", "false"),
        ]),
        Some(&stoken),
    )
    .send()
    .await
    .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert!(
        status.is_success() && body.trim() == "ok",
        "register: {status} {body}"
    );

    let list = |base: String, token: String, service: String| {
        let http = http.clone();
        async move {
            let v: serde_json::Value = with_token(
                http.get(format!("{base}/v1/ns/instance/list"))
                    .query(&[("serviceName", service.as_str())]),
                Some(&token),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            v["hosts"]
                .as_array()
                .map(|h| {
                    h.iter()
                        .filter_map(|i| Some(format!("{}:{}", i["ip"].as_str()?, i["port"])))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let hosts = list(src.clone(), stoken.clone(), service.clone()).await;
        if hosts == ["10.255.0.7:8080"] {
            break;
        }
        assert!(Instant::now() < deadline, "source lists {hosts:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for node in &bed.target_nacos {
        let token = login(&http, node, &bed).await;
        let hosts = list(node.clone(), token, service.clone()).await;
        assert!(hosts.is_empty(), "{node} lists {hosts:?} for {service}");
    }
}

#[tokio::test]
async fn namespace_created_on_source_reaches_the_target_nodes_through_the_db() {
    let Some(bed) = bed() else { return };
    let http = client();
    let src = &bed.source_nacos[0];
    let stoken = login(&http, src, &bed).await;
    let ns = format!("bed-ns-{}", unique());
    let resp = with_token(
        http.post(format!("{src}/v1/console/namespaces")).form(&[
            ("customNamespaceId", ns.as_str()),
            ("namespaceName", ns.as_str()),
            ("namespaceDesc", "created by tests/it/bed.rs"),
        ]),
        Some(&stoken),
    )
    .send()
    .await
    .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert!(
        status.is_success() && body.trim() == "true",
        "create namespace: {status} {body}"
    );

    for node in &bed.target_nacos {
        let token = login(&http, node, &bed).await;
        let deadline = Instant::now() + WAIT;
        loop {
            let v: serde_json::Value = with_token(
                http.get(format!("{node}/v1/console/namespaces")),
                Some(&token),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            let found = v["data"]
                .as_array()
                .is_some_and(|d| d.iter().any(|n| n["namespace"] == ns.as_str()));
            if found {
                break;
            }
            assert!(Instant::now() < deadline, "{node} does not list {ns}: {v}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test]
async fn rnacos_config_published_on_source_is_served_there_and_not_on_target() {
    let Some(bed) = bed() else { return };
    let http = client();
    let data_id = format!("bed-rnacos-{}", unique());
    let content = format!("r.nacos={}\n", unique());
    publish(&http, &bed.source_rnacos, None, &data_id, &content).await;
    wait_served(&http, &bed.source_rnacos, None, &data_id, &content).await;
    let (status, body, _) = get_config(&http, &bed.target_rnacos, None, &data_id).await;
    assert_eq!(status, 404, "r-nacos target serves {data_id}: {body:?}");
}
