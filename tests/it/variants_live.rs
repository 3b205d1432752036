//! Issue 13 against the real test bed: beta and tag variants are probed on every node as a client
//! their rule matches would see them, a node serving an old variant is named with the variant,
//! and `--fix` reloads just that variant on just that node.
//!
//! The releases are published on the Java Nacos 2.0.4 source through its open API (a `betaIps`
//! header, a `tag` parameter: `ConfigController.publishConfig`); they replicate to the target DB,
//! and no target node (Java Nacos 2.3.2, incremental dump worker off) is told. No client library
//! is involved: the "clients" are nacos-drift's own probes with `X-Forwarded-For` /
//! `Vipserver-Tag`, which is what this feature is about.

use crate::bed::TARGET_CACHE_LOCK;
use crate::cache_live::{l2, repairs, Env, G};
use crate::ops::{block, md5, sql_value, wait_until, Node};
use crate::support::{bed, unique};
use std::time::Duration;

const BETA_IP: &str = "10.77.0.1";

/// Publish a config release on a 1.x/2.x node: `beta_ips` as the `betaIps` header, or `tag`.
fn publish_release(
    e: &Env,
    data_id: &str,
    content: &str,
    beta_ips: Option<&str>,
    tag: Option<&str>,
) {
    let base = &e.bed.source_nacos[0];
    block(async {
        nacos_drift::tls::install_provider();
        let c = reqwest::Client::new();
        let login: serde_json::Value = c
            .post(format!("{base}/v1/auth/login"))
            .form(&[("username", &e.bed.username), ("password", &e.bed.password)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["accessToken"].as_str().unwrap_or_default().to_owned();
        let mut form = vec![
            ("tenant", e.ns.clone()),
            ("group", G.to_owned()),
            ("dataId", data_id.to_owned()),
            ("content", content.to_owned()),
            ("accessToken", token),
        ];
        if let Some(t) = tag {
            form.push(("tag", t.to_owned()));
        }
        let mut req = c.post(format!("{base}/v1/cs/configs")).form(&form);
        if let Some(ips) = beta_ips {
            req = req.header("betaIps", ips);
        }
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        assert_eq!(
            s,
            200,
            "publish release: {}",
            r.text().await.unwrap_or_default()
        );
    });
}

/// Wait until the target DB has this variant row with this content md5.
fn replicated(e: &Env, table: &str, data_id: &str, want: &str) {
    let q = format!(
        "SELECT MD5(content) FROM {table} WHERE tenant_id='{}' AND group_id='{G}' AND data_id='{data_id}'",
        e.ns
    );
    assert!(
        wait_until(30, || sql_value(&e.bed.target_db, &q).as_deref()
            == Some(want)),
        "{table} row of {data_id} did not reach the target DB"
    );
}

/// Reload one key (one variant, "" = formal) on one target node through the cluster gRPC sync.
fn sync(e: &Env, node: &Node, data_id: &str, variant: &str) {
    let addr = nacos_drift::nacos::grpc::cluster_grpc_addr(&node.base).unwrap();
    block(async {
        let n = nacos_drift::nacos::grpc::GrpcNode::connect(
            &addr,
            &e.bed.target_version,
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        n.sync_variant(
            data_id,
            G,
            &e.ns,
            variant,
            nacos_drift::nacos::grpc::now_ms(),
        )
        .await
        .unwrap();
    });
}

/// `(code, variant, node)` of every L2 finding.
fn variants(r: &crate::ops::Run) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = r.json["findings"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter(|f| f["layer"] == "L2")
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_owned(),
                f["variant"].as_str().unwrap_or("").to_owned(),
                f["node"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_node_serving_an_old_beta_or_tag_is_named_with_the_variant_and_fix_reloads_just_it() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let mut e = Env::new(b);
    // Our own namespace, named after this branch's feature.
    e.ns = format!("variants-{}", unique());
    e.src.create_namespace(&e.ns);
    let (formal, beta, blue) = ("v: formal\n", "v: beta\n", "v: blue\n");
    e.src.publish(&e.ns, G, "v.yaml", formal);
    e.replicated("v.yaml", Some(&md5(formal)));
    publish_release(&e, "v.yaml", beta, Some(BETA_IP), None);
    publish_release(&e, "v.yaml", blue, None, Some("blue"));
    replicated(&e, "config_info_beta", "v.yaml", &md5(beta));
    replicated(&e, "config_info_tag", "v.yaml", &md5(blue));
    let (a, b) = (&e.tgt[0], &e.tgt[1]);
    // Both target nodes get the formal config; node A also both releases. Node B serves no
    // release, so a client at the beta IP or with tag `blue` gets the formal content from it.
    for n in [a, b] {
        sync(&e, n, "v.yaml", "");
    }
    sync(&e, a, "v.yaml", "beta");
    sync(&e, a, "v.yaml", "tag:blue");
    assert!(wait_until(20, || {
        a.get_config(&e.ns, G, "v.yaml").2 == md5(formal)
            && b.get_config(&e.ns, G, "v.yaml").2 == md5(formal)
    }));
    std::thread::sleep(Duration::from_secs(1));

    let r = e.audit(&[], &[]);
    assert_eq!(r.code, 1, "{}", r.output);
    let nb = e.bed.target_nacos[1].clone();
    let found = variants(&r);
    // Asked for as a client at the beta IP, node B serves the formal content (stale); asked
    // for tag `blue`, it has none (`ConfigServletInner.doGetConfig`: 404 for an unknown tag).
    assert_eq!(
        found,
        vec![
            ("cache-missing".to_owned(), "tag:blue".to_owned(), nb.clone()),
            ("cache-stale".to_owned(), "beta".to_owned(), nb.clone()),
        ],
        "{}",
        r.output
    );
    assert!(r.output.contains("v.yaml#beta"), "{}", r.output);

    let r = e.audit(&["--fix"], &[]);
    assert_eq!(r.code, 0, "{}", r.output);
    let reps = repairs(&r);
    assert_eq!(
        reps,
        vec![(nb.clone(), "grpc-sync".to_owned(), "applied".to_owned())],
        "{}",
        r.output
    );
    assert!(
        r.json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["layer"] == "L2")
            .all(|f| f["repair"] == "repaired"),
        "{}",
        r.output
    );

    let r = e.audit(&[], &[]);
    assert_eq!(r.code, 0, "{}", r.output);
    assert!(l2(&r).is_empty(), "{}", r.output);
}
