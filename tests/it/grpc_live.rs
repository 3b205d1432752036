//! The cluster gRPC sync (`capture::grpc`) against the real test bed: one call reloads one config on one node only.
//!
//! The target nodes never poll their DB in the bed, so a config published on the source reaches the
//! target DB by replication while both target nodes keep serving the old state: exactly the drift a
//! repair must fix, node by node.

use crate::db_rows::RowsGuard;
use crate::ops::{block, sql_value, wait_until, Node};
use crate::support::{bed, unique, Bed};
use md5::{Digest, Md5};
use nacos_drift::nacos::grpc::{cluster_grpc_addr, config_change_sync, now_ms, GrpcNode};
use std::time::{Duration, Instant};

const GROUP: &str = "GRPC";
const TIMEOUT: Duration = Duration::from_secs(10);

fn identity(bed: &Bed) -> Option<(&str, &str)> {
    (!bed.identity_key.is_empty())
        .then_some((bed.identity_key.as_str(), bed.identity_value.as_str()))
}

/// Sync one key on one node (by its HTTP base) over a fresh connection; no row may change.
fn sync(bed: &Bed, node: &Node, ns: &str, data_id: &str) {
    let guard = RowsGuard::new(&[&bed.target_db], ns, &[GROUP]);
    let addr = cluster_grpc_addr(&node.base).unwrap();
    block(config_change_sync(
        &addr,
        &bed.target_version,
        data_id,
        GROUP,
        ns,
        now_ms(),
        identity(bed),
        TIMEOUT,
    ))
    .unwrap_or_else(|e| panic!("sync {data_id} on {addr}: {e}"));
    guard.assert_unchanged(&format!("sync {data_id} on {addr}"));
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// MD5 of the row in the target DB, if it is there.
fn target_md5(bed: &Bed, ns: &str, data_id: &str) -> Option<String> {
    sql_value(
        &bed.target_db,
        &format!("SELECT md5 FROM config_info WHERE tenant_id='{ns}' AND group_id='{GROUP}' AND data_id='{data_id}'"),
    )
}

/// Source node, the two target nodes, and a fresh namespace already on the target DB.
fn setup(bed: &Bed) -> (String, Node, Node, Node) {
    assert!(bed.target_nacos.len() >= 2, "the bed has two target nodes");
    let ns = format!("grpc-{}", unique());
    let src = Node::login(&bed.source_nacos[0], &bed.username, &bed.password);
    let t1 = Node::login(&bed.target_nacos[0], &bed.username, &bed.password);
    let t2 = Node::login(&bed.target_nacos[1], &bed.username, &bed.password);
    src.create_namespace(&ns);
    (ns, src, t1, t2)
}

/// Publish on the source and wait until replication brought exactly this content to the target DB.
fn publish_replicated(bed: &Bed, src: &Node, ns: &str, data_id: &str, content: &str) {
    src.publish(ns, GROUP, data_id, content);
    let want = md5_hex(content.as_bytes());
    assert!(
        wait_until(30, || target_md5(bed, ns, data_id).as_deref()
            == Some(want.as_str())),
        "replication did not bring {ns}/{data_id} to the target DB"
    );
}

#[test]
fn sync_reloads_one_config_on_one_node_only() {
    // Staleness of other keys is asserted: no full reload may run meanwhile (see bed.rs).
    let _caches = crate::bed::TARGET_CACHE_LOCK.blocking_lock();
    let Some(bed) = bed() else { return };
    let (ns, src, t1, t2) = setup(&bed);
    let data_id = format!("app-{}.properties", unique());

    // v1: new config, both target nodes stale (404) although their DB has it.
    publish_replicated(&bed, &src, &ns, &data_id, "v=1\n");
    assert_eq!(t1.get_config(&ns, GROUP, &data_id).0, 404);
    assert_eq!(t2.get_config(&ns, GROUP, &data_id).0, 404);

    sync(&bed, &t1, &ns, &data_id);
    let md5_v1 = md5_hex(b"v=1\n");
    assert!(
        wait_until(10, || t1.get_config(&ns, GROUP, &data_id)
            == (200, "v=1\n".to_owned(), md5_v1.clone())),
        "node 1 did not reload v1: {:?}",
        t1.get_config(&ns, GROUP, &data_id)
    );
    assert_eq!(
        t2.get_config(&ns, GROUP, &data_id).0,
        404,
        "node 2 must stay untouched"
    );

    // v2: update, sync node 2 only.
    publish_replicated(&bed, &src, &ns, &data_id, "v=2\n");
    sync(&bed, &t2, &ns, &data_id);
    let md5_v2 = md5_hex(b"v=2\n");
    assert!(
        wait_until(10, || t2.get_config(&ns, GROUP, &data_id)
            == (200, "v=2\n".to_owned(), md5_v2.clone())),
        "node 2 did not reload v2: {:?}",
        t2.get_config(&ns, GROUP, &data_id)
    );
    assert_eq!(
        t1.get_config(&ns, GROUP, &data_id),
        (200, "v=1\n".to_owned(), md5_v1),
        "node 1 must keep v1"
    );

    // Deletion: delete on the source (replicated to the target DB), sync node 1: the row is gone, so
    // node 1 drops its entry. Deleting on the source rather than on the replica keeps replication healthy.
    src.delete_config(&ns, GROUP, &data_id);
    assert!(
        wait_until(30, || target_md5(&bed, &ns, &data_id).is_none()),
        "the delete did not replicate"
    );
    sync(&bed, &t1, &ns, &data_id);
    assert!(
        wait_until(10, || t1.get_config(&ns, GROUP, &data_id).0 == 404),
        "node 1 still serves the deleted config: {:?}",
        t1.get_config(&ns, GROUP, &data_id)
    );
    assert_eq!(
        t2.get_config(&ns, GROUP, &data_id).0,
        200,
        "node 2 keeps its (now stale) v2"
    );
}

#[test]
fn one_connection_syncs_many_keys() {
    // Staleness of other keys is asserted: no full reload may run meanwhile (see bed.rs).
    let _caches = crate::bed::TARGET_CACHE_LOCK.blocking_lock();
    let Some(bed) = bed() else { return };
    let (ns, src, t1, t2) = setup(&bed);
    let ids: Vec<String> = (0..5).map(|i| format!("many-{i}-{}", unique())).collect();
    for id in &ids {
        src.publish(&ns, GROUP, id, &format!("id={id}\n"));
    }
    let last = ids.last().unwrap();
    let want = md5_hex(format!("id={last}\n").as_bytes());
    assert!(wait_until(30, || target_md5(&bed, &ns, last).as_deref()
        == Some(want.as_str())));
    assert!(ids.iter().all(|id| target_md5(&bed, &ns, id).is_some()));

    let addr = cluster_grpc_addr(&t2.base).unwrap();
    let guard = RowsGuard::new(&[&bed.target_db], &ns, &[GROUP]);
    block(async {
        let node = GrpcNode::connect(&addr, &bed.target_version, identity(&bed), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(node.addr(), addr);
        for id in &ids {
            node.sync(id, GROUP, &ns, now_ms()).await.unwrap();
        }
        assert!(node.is_alive().await);
        assert_eq!(node.reconnects(), 0);
    });
    guard.assert_unchanged("five syncs on one connection");
    for id in &ids {
        assert!(
            wait_until(10, || t2.get_config(&ns, GROUP, id).1
                == format!("id={id}\n")),
            "node 2 did not reload {id}"
        );
        assert_eq!(
            t1.get_config(&ns, GROUP, id).0,
            404,
            "node 1 must stay untouched"
        );
    }
}

#[test]
fn sdk_port_and_older_server_accept_the_request() {
    // Staleness of other keys is asserted: no full reload may run meanwhile (see bed.rs).
    let _caches = crate::bed::TARGET_CACHE_LOCK.blocking_lock();
    let Some(bed) = bed() else { return };
    // 2.3.2 still accepts the request on the SDK port (HTTP + 1000); 2.4.3+ would not.
    if !before_2_4_3(&bed.target_version) {
        eprintln!(
            "skipping: target {} accepts the sync on the cluster port only",
            bed.target_version
        );
        return;
    }
    let (ns, src, t1, _) = setup(&bed);
    let data_id = format!("sdk-port-{}", unique());
    publish_replicated(&bed, &src, &ns, &data_id, "p=1\n");
    let sdk = cluster_grpc_addr(&t1.base).unwrap();
    let (host, port) = sdk.rsplit_once(':').unwrap();
    let sdk = format!("{host}:{}", port.parse::<u16>().unwrap() - 1);
    let guard = RowsGuard::new(&[&bed.target_db, &bed.source_db], &ns, &[GROUP]);
    block(config_change_sync(
        &sdk,
        &bed.target_version,
        &data_id,
        GROUP,
        &ns,
        now_ms(),
        identity(&bed),
        TIMEOUT,
    ))
    .unwrap();
    assert!(wait_until(10, || t1.get_config(&ns, GROUP, &data_id).1 == "p=1\n"));

    // The source node (2.0.4: no ability negotiation, no SetupAck) registers and answers too;
    // it just re-dumps a config it already serves.
    let src_addr = cluster_grpc_addr(&src.base).unwrap();
    block(config_change_sync(
        &src_addr,
        &bed.source_version,
        &data_id,
        GROUP,
        &ns,
        now_ms(),
        identity(&bed),
        TIMEOUT,
    ))
    .unwrap_or_else(|e| panic!("{} source: {e}", bed.source_version));
    assert_eq!(src.get_config(&ns, GROUP, &data_id).1, "p=1\n");
    guard.assert_unchanged("syncs on the SDK port and on the 2.0.4 source");
}

/// Whether a version string like "2.3.2" is older than 2.4.3 (unknown → assume newer).
fn before_2_4_3(version: &str) -> bool {
    let v: Vec<u32> = version.split('.').map_while(|p| p.parse().ok()).collect();
    v.len() >= 2 && v < vec![2, 4, 3]
}

#[test]
fn an_idle_connection_stays_registered() {
    // Staleness of other keys is asserted: no full reload may run meanwhile (see bed.rs).
    let _caches = crate::bed::TARGET_CACHE_LOCK.blocking_lock();
    let Some(bed) = bed() else { return };
    // Nodes probe connections idle for 20 s (ClientDetectionRequest) and may drop them even when
    // they answer; a repair may pause that long between keys, so the connection must survive it.
    let (ns, src, t1, _) = setup(&bed);
    let data_id = format!("idle-{}", unique());
    publish_replicated(&bed, &src, &ns, &data_id, "idle=1\n");
    let addr = cluster_grpc_addr(&t1.base).unwrap();
    let guard = RowsGuard::new(&[&bed.target_db], &ns, &[GROUP]);
    block(async {
        let node = GrpcNode::connect(&addr, &bed.target_version, identity(&bed), TIMEOUT)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        // Kept registered by its own health checks, not by a reconnect.
        assert!(node.is_alive().await, "{node:?}");
        assert_eq!(node.reconnects(), 0, "{node:?}");
        node.sync(&data_id, GROUP, &ns, now_ms()).await.unwrap();
    });
    assert!(wait_until(10, || t1.get_config(&ns, GROUP, &data_id).1 == "idle=1\n"));
    guard.assert_unchanged("a sync after 30 s idle");
}

#[test]
fn nothing_listening_fails_fast_naming_the_address() {
    // No bed needed: a port that was just free.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let t = Instant::now();
    let err = block(config_change_sync(
        &addr,
        "2.3.2",
        "d",
        "g",
        "",
        now_ms(),
        Some(("k", "secret-identity")),
        TIMEOUT,
    ))
    .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(err.contains(&addr), "{err}");
    assert!(!err.contains("secret-identity"), "{err}");
}

#[test]
fn a_non_grpc_port_is_an_error_not_a_hang() {
    let Some(bed) = bed() else { return };
    // The HTTP port speaks HTTP/1.1 only: the call must fail within the timeout, naming the address.
    let http = bed.target_nacos[0]
        .split("://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let t = Instant::now();
    let err = block(config_change_sync(
        &http,
        "2.3.2",
        "d",
        GROUP,
        "",
        now_ms(),
        None,
        Duration::from_secs(3),
    ))
    .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    assert!(err.contains(&http), "{err}");
}

/// The node's version as its v3 state API reports it.
fn nacos3_version(n3: &Node) -> String {
    let (s, b) = n3.call("GET", "/v3/admin/core/state", &[]);
    assert_eq!(s, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let version = v["data"]["version"]
        .as_str()
        .or_else(|| v["version"].as_str())
        .unwrap_or_else(|| panic!("no version in {b}"));
    version.to_owned()
}

/// Every history entry of one config on a 3.x node: `(id, opType, srcUser)`.
fn nacos3_history(n3: &Node, ns: &str, data_id: &str) -> Vec<(String, String, String)> {
    let (s, b) = n3.call(
        "GET",
        "/v3/admin/cs/history/list",
        &[
            ("namespaceId", ns),
            ("groupName", GROUP),
            ("dataId", data_id),
            ("pageNo", "1"),
            ("pageSize", "100"),
        ],
    );
    assert_eq!(s, 200, "history of {ns}/{data_id}: {b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let items = v["data"]["pageItems"]
        .as_array()
        .unwrap_or_else(|| panic!("history of {ns}/{data_id}: no pageItems in {b}"));
    items
        .iter()
        .map(|h| {
            (
                h["id"].to_string(),
                h["opType"].as_str().unwrap_or("").trim().to_owned(),
                h["srcUser"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The content a 3.x node's DB holds for one config (admin detail), `None` if it has none.
fn nacos3_row(n3: &Node, ns: &str, data_id: &str) -> Option<String> {
    let (s, b) = n3.call(
        "GET",
        "/v3/admin/cs/config",
        &[
            ("namespaceId", ns),
            ("groupName", GROUP),
            ("dataId", data_id),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_default();
    (s == 200)
        .then(|| v["data"]["content"].as_str().map(str::to_owned))
        .flatten()
}

/// Issue 8: a cluster sync on Nacos 3.x must not run `ConfigMigrateService.namespaceMigrate`
/// (which copies or removes rows between `''` and `public` when the request's `clientVersion`
/// is not that of a 3.x member). The node keeps its data in embedded Derby, so the proof is its
/// own config history: no entry added by the syncs, and every row still there.
#[test]
fn a_sync_on_nacos3_runs_no_migration_and_writes_nothing() {
    let Some(bed) = bed() else { return };
    let n3 = Node::login(&bed.nacos3, &bed.username, &bed.password);
    assert!(n3.v3, "{} is not a 3.x node", bed.nacos3);
    let version = nacos3_version(&n3);
    let data_id = format!("n3-{}.properties", unique());
    let ns = format!("grpc3-{}", unique());
    n3.create_namespace(&ns);
    // The default namespace is where a migration would write; a custom one for contrast.
    n3.publish("public", GROUP, &data_id, "n3=public\n");
    n3.publish(&ns, GROUP, &data_id, "n3=custom\n");
    assert!(wait_until(20, || n3.get_config("", GROUP, &data_id).1 == "n3=public\n"));
    let history = || {
        (
            nacos3_history(&n3, "public", &data_id),
            nacos3_history(&n3, &ns, &data_id),
        )
    };
    let before = history();
    assert!(!before.0.is_empty() && !before.1.is_empty(), "{before:?}");
    // 3.x writes no history for its migration (`CONFIG_MIGRATE_FLAG`), and on embedded Derby it
    // commits only the removals: the node's own record of the failed version check is the
    // direct proof that no migration ran.
    let digest = crate::support::nacos_log(&bed.nacos3, "remote-digest.log")
        .unwrap_or_else(|| panic!("no log folder found for {}", bed.nacos3));
    let version_errors = || {
        std::fs::read_to_string(&digest)
            .unwrap_or_default()
            .matches("checkCompatity error")
            .count()
    };
    let errors_before = version_errors();

    let addr = cluster_grpc_addr(&n3.base).unwrap();
    block(async {
        let node = GrpcNode::connect(&addr, &version, identity(&bed), TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{version} on {addr}: {e}"));
        // "" and "public" both name the default namespace; the tenant sent is the one 3.x uses.
        for namespace in ["", "public", ns.as_str()] {
            node.sync(&data_id, GROUP, namespace, now_ms())
                .await
                .unwrap_or_else(|e| panic!("sync {namespace:?}/{data_id}: {e}"));
        }
    });
    // The migration would run inside the request; the dump after it is asynchronous.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        version_errors(),
        errors_before,
        "{version} could not parse the clientVersion and ran ConfigMigrateService.namespaceMigrate ({})",
        digest.display()
    );
    assert_eq!(
        history(),
        before,
        "the syncs wrote config history on {version}"
    );
    assert_eq!(
        nacos3_row(&n3, "public", &data_id).as_deref(),
        Some("n3=public\n")
    );
    assert_eq!(
        nacos3_row(&n3, &ns, &data_id).as_deref(),
        Some("n3=custom\n")
    );
    assert_eq!(n3.get_config("", GROUP, &data_id).1, "n3=public\n");
    assert_eq!(n3.get_config(&ns, GROUP, &data_id).1, "n3=custom\n");
}
