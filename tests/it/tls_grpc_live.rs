//! Issue 10: the cluster gRPC repair channel over TLS, against a real TLS gRPC endpoint of the
//! bed.
//!
//! Nacos 2.3.2 serves no TLS on its cluster gRPC port (only `GrpcSdkServer` builds a protocol
//! negotiator; `GrpcClusterServer` gets one from 2.4.0), so the bed's HTTPS node 18868 accepts
//! TLS beside plain text on its SDK gRPC port (`nacos.remote.server.rpc.tls.*`, compatibility
//! on), where 2.2.1–2.4.2 also accept the cluster sync request. Its cluster port (19869) stays
//! plain: a TLS channel to it must say so, never fall back.

use crate::ops::{block, sql_value, wait_until, Node};
use crate::support::{unique, Bed};
use nacos_drift::nacos::grpc::{now_ms, GrpcNode};
use std::sync::Arc;
use std::time::Duration;

const GROUP: &str = "TLSGRPC";
const TIMEOUT: Duration = Duration::from_secs(10);

/// The bed with its TLS gRPC port (skipped with a printed line when it predates it, except
/// under CI=true).
fn bed() -> Option<Bed> {
    let b = crate::support::bed()?;
    if b.ca_file.is_empty() || b.target_grpc_tls.is_empty() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "the test bed has no TLS gRPC port (TESTBED_TARGET_GRPC_TLS): run tests/testbed/testbed restart-nacos 18868"
        );
        eprintln!(
            "skipping: the bed has no TLS gRPC port (tests/testbed/testbed restart-nacos 18868)"
        );
        return None;
    }
    Some(b)
}

fn identity(b: &Bed) -> Option<(&str, &str)> {
    (!b.identity_key.is_empty()).then_some((b.identity_key.as_str(), b.identity_value.as_str()))
}

/// The client config nacos-drift builds for a side's `https://` nodes.
fn tls(ca: Option<&str>) -> Arc<rustls::ClientConfig> {
    nacos_drift::tls::install_provider();
    Arc::new(nacos_drift::tls::nacos_client_config(ca.map(std::path::Path::new), false).unwrap())
}

fn connect(b: &Bed, addr: &str, ca: Option<&str>) -> Result<GrpcNode, String> {
    block(GrpcNode::connect_tls(
        addr,
        Some(tls(ca)),
        &b.target_version,
        identity(b),
        TIMEOUT,
    ))
}

#[test]
fn a_stale_config_is_reloaded_over_a_verified_tls_channel() {
    let _caches = crate::bed::TARGET_CACHE_LOCK.blocking_lock();
    let Some(b) = bed() else { return };
    let ns = format!("tls-grpc-{}", unique());
    let data_id = format!("tls-{}.properties", unique());
    let src = Node::login(&b.source_nacos[0], &b.username, &b.password);
    src.create_namespace(&ns);
    src.publish(&ns, GROUP, &data_id, "tls=1\n");
    let q = format!("SELECT md5 FROM config_info WHERE tenant_id='{ns}' AND data_id='{data_id}'");
    assert!(
        wait_until(30, || sql_value(&b.target_db, &q).is_some()),
        "replication did not bring {ns}/{data_id} to the target DB"
    );
    let base = |port: &str| {
        b.target_nacos
            .iter()
            .find(|u| u.contains(port))
            .unwrap()
            .clone()
    };
    let https_node = Node::login(&base(":18868/"), &b.username, &b.password);
    let other = Node::login(&base(":18858/"), &b.username, &b.password);
    // Replicated rows reach no node cache in the bed: both nodes are stale.
    assert_eq!(https_node.get_config(&ns, GROUP, &data_id).0, 404);

    let node = connect(&b, &b.target_grpc_tls, Some(&b.ca_file))
        .unwrap_or_else(|e| panic!("TLS gRPC to {}: {e}", b.target_grpc_tls));
    block(node.sync(&data_id, GROUP, &ns, now_ms())).unwrap();
    assert!(
        wait_until(10, || https_node.get_config(&ns, GROUP, &data_id).0 == 200),
        "the node did not reload {ns}/{data_id} after the TLS sync"
    );
    assert_eq!(
        other.get_config(&ns, GROUP, &data_id).0,
        404,
        "the other node must stay untouched"
    );
}

#[test]
fn tls_channel_failures_are_named_and_never_fall_back_to_plain_text() {
    let Some(b) = bed() else { return };
    // The system roots only: the bed's CA is unknown.
    let e = connect(&b, &b.target_grpc_tls, None).unwrap_err();
    assert!(
        e.contains(&b.target_grpc_tls) && e.contains("unknown certificate authority"),
        "{e}"
    );
    // The cluster gRPC port of the same node is plain text (Nacos 2.3.2).
    let (host, port) = b.target_grpc_tls.rsplit_once(':').unwrap();
    let cluster = format!("{host}:{}", port.parse::<u16>().unwrap() + 1);
    let e = connect(&b, &cluster, Some(&b.ca_file)).unwrap_err();
    assert!(
        e.contains(&cluster)
            && e.contains("the cluster gRPC port does not speak TLS")
            && e.contains("audit --fix --full"),
        "{e}"
    );
}
