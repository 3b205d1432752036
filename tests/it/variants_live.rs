//! Issue 13 against the real test bed: beta and tag variants are probed on every node as a client
//! their rule matches would see them, a node serving an old variant is named with the variant,
//! and `--fix` reloads just that variant on just that node.
//!
//! The releases are published on the Java Nacos 2.0.4 source through its open API (a `betaIps`
//! header, a `tag` parameter: `ConfigController.publishConfig`); they reach each target DB of the
//! matrix (2.3.2 and 2.2.3: replication, their beta/tag tables; 3.1: the bed's feed, gray rows
//! `beta` and `tag_blue`), and no target node is told. No client library is involved: the
//! "clients" are nacos-drift's own probes with `X-Forwarded-For` / `Vipserver-Tag` / `tag`, which
//! is what this feature is about.

use crate::bed::TARGET_CACHE_LOCK;
use crate::cache_live::repairs;
use crate::matrix_live::{node, pair_audit};
use crate::ops::{block, md5, sql_value, wait_until, Node, Run};
use crate::support::{bed, unique, Bed, MatrixPair};
use std::time::Duration;

const G: &str = "VARIANTS";

const BETA_IP: &str = "10.77.0.1";

/// Publish a config release on a 1.x/2.x node: `beta_ips` as the `betaIps` header, or `tag`.
fn publish_release(
    b: &Bed,
    ns: &str,
    data_id: &str,
    content: &str,
    beta_ips: Option<&str>,
    tag: Option<&str>,
) {
    let base = &b.source_nacos[0];
    block(async {
        nacos_drift::tls::install_provider();
        let c = reqwest::Client::new();
        let login: serde_json::Value = c
            .post(format!("{base}/v1/auth/login"))
            .form(&[("username", &b.username), ("password", &b.password)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["accessToken"].as_str().unwrap_or_default().to_owned();
        let mut form = vec![
            ("tenant", ns.to_owned()),
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

/// Wait until the target DB has this variant row (2.x table, or the 3.x gray row) with this md5.
fn replicated(p: &MatrixPair, ns: &str, variant: &str, want: &str) {
    let db = p.target.db.as_deref().unwrap();
    let at = match (p.target.version.starts_with('3'), variant) {
        (true, "beta") => "config_info_gray WHERE gray_name='beta' AND".to_owned(),
        (true, t) => format!("config_info_gray WHERE gray_name='tag_{}' AND", &t[4..]),
        (false, "beta") => "config_info_beta WHERE".to_owned(),
        (false, t) => format!("config_info_tag WHERE tag_id='{}' AND", &t[4..]),
    };
    let q = format!("SELECT MD5(content) FROM {at} tenant_id='{ns}' AND group_id='{G}'");
    assert!(
        wait_until(30, || sql_value(db, &q).as_deref() == Some(want)),
        "{}: {variant} of {ns} did not reach the target DB",
        p.label()
    );
}

/// Reload one key (one variant, "" = formal) on one target node through the cluster gRPC sync.
fn sync(b: &Bed, p: &MatrixPair, url: &str, ns: &str, variant: &str) {
    let addr = nacos_drift::nacos::grpc::cluster_grpc_addr(url).unwrap();
    let id = Some((b.identity_key.as_str(), b.identity_value.as_str()));
    block(async {
        let n = nacos_drift::nacos::grpc::GrpcNode::connect(
            &addr,
            &p.target.version,
            id,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        n.sync_variant("v.yaml", G, ns, variant, nacos_drift::nacos::grpc::now_ms())
            .await
            .unwrap();
    });
}

/// `(code, variant, node)` of every L2 finding.
fn variants(r: &Run) -> Vec<(String, String, String)> {
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

/// Over every pair with a Java target on a DB: the target's last node is given the formal config
/// only, the others every release too; the audit names the last node once per variant, and
/// `--fix` reloads them there: key by key over gRPC (2.3.2: `beta`/`tag`; 3.1: `grayName`), except
/// the tag on 2.2.3, whose cluster sync drops the tag (reported not repairable, with the remedy).
#[test]
fn a_node_serving_an_old_beta_or_tag_is_named_with_the_variant_and_fix_reloads_just_it() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let pairs = b.pairs();
    for p in pairs
        .iter()
        .filter(|p| p.target.java && p.target.db.is_some())
    {
        let ns = format!("variants-{}", unique());
        let src = node(&b, &p.source, &p.source.nacos[0]);
        src.create_namespace(&ns);
        let (formal, beta, blue) = ("v: formal\n", "v: beta\n", "v: blue\n");
        src.publish(&ns, G, "v.yaml", formal);
        publish_release(&b, &ns, "v.yaml", beta, Some(BETA_IP), None);
        publish_release(&b, &ns, "v.yaml", blue, None, Some("blue"));
        replicated(p, &ns, "beta", &md5(beta));
        replicated(p, &ns, "tag:blue", &md5(blue));
        let nodes: Vec<Node> = p
            .target
            .nacos
            .iter()
            .map(|u| node(&b, &p.target, u))
            .collect();
        let stale = p.target.nacos.last().unwrap().clone();
        let tag_sync = !p.target.version.starts_with("2.2");
        for (i, url) in p.target.nacos.iter().enumerate() {
            sync(&b, p, url, &ns, "");
            if *url != stale {
                sync(&b, p, url, &ns, "beta");
                assert!(tag_sync, "one node only on 2.2.3");
                sync(&b, p, url, &ns, "tag:blue");
            }
            assert!(
                wait_until(20, || nodes[i].get_config(&ns, G, "v.yaml").2
                    == md5(formal)),
                "{}: {url} did not load the formal config",
                p.label()
            );
        }
        std::thread::sleep(Duration::from_secs(1));

        let r = pair_audit(&b, p, &ns, &[], &[]);
        assert_eq!(r.code, 1, "{}: {}", p.label(), r.output);
        let found = variants(&r);
        // Asked for as a client at the beta IP, the stale node serves the formal content; asked
        // for tag `blue`, 2.x has none to serve (404), 3.x falls back to the formal config.
        let got: Vec<(&str, &str)> = found.iter().map(|f| (f.1.as_str(), f.2.as_str())).collect();
        assert_eq!(got.len(), 2, "{}: {found:?}\n{}", p.label(), r.output);
        assert!(
            got.contains(&("beta", stale.as_str())),
            "{}: {found:?}",
            p.label()
        );
        assert!(
            got.contains(&("tag:blue", stale.as_str())),
            "{}: {found:?}",
            p.label()
        );
        assert!(
            found.iter().any(|f| f.0 == "cache-stale" && f.1 == "beta"),
            "{}: {found:?}",
            p.label()
        );
        assert!(r.output.contains("v.yaml#beta"), "{}", r.output);

        let fixed = pair_audit(&b, p, &ns, &["--fix"], &[]);
        let reps = repairs(&fixed);
        let l2f: Vec<(String, String)> = fixed.json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["layer"] == "L2")
            .map(|f| {
                (
                    f["variant"].as_str().unwrap_or("").to_owned(),
                    f["repair"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        if tag_sync {
            assert_eq!(fixed.code, 0, "{}: {}", p.label(), fixed.output);
            assert_eq!(
                reps,
                vec![(stale.clone(), "grpc-sync".to_owned(), "applied".to_owned())],
                "{}: {}",
                p.label(),
                fixed.output
            );
            assert!(
                l2f.iter().all(|f| f.1 == "repaired"),
                "{}: {l2f:?}",
                p.label()
            );
            let again = pair_audit(&b, p, &ns, &[], &[]);
            assert_eq!(again.code, 0, "{}: {}", p.label(), again.output);
            assert!(variants(&again).is_empty(), "{}", again.output);
        } else {
            assert_eq!(fixed.code, 1, "{}: {}", p.label(), fixed.output);
            let beta_fix = l2f.iter().find(|f| f.0 == "beta").unwrap();
            assert_eq!(beta_fix.1, "repaired", "{}: {l2f:?}", p.label());
            let tag_fix = l2f.iter().find(|f| f.0 == "tag:blue").unwrap();
            assert!(
                tag_fix.1.contains("drops the tag"),
                "{}: {l2f:?}",
                p.label()
            );
            let again = pair_audit(&b, p, &ns, &[], &[]);
            let left: Vec<String> = variants(&again).into_iter().map(|f| f.1).collect();
            assert_eq!(left, vec!["tag:blue".to_owned()], "{}", again.output);
        }
    }
}
