//! Issue 15 on the real bed: the live audit and cache tests run over every (source, target) pair
//! the bed announces in `TESTBED_PAIRS` (2.0.4 → 2.3.2, 2.0.4 → 3.1 on MariaDB, 2.0.4 → 2.2.3,
//! r-nacos → r-nacos), one test body for all pairs.
//!
//! The DB pairs' targets are fed from the source DB behind the nodes' backs (MariaDB replication;
//! for 3.1, replication plus the triggers of `tests/testbed/v3-feed.sql` standing in for DTS), so a
//! change published on the source reaches the target DB and no target node is told: the stale
//! caches that L2 finds and `--fix` repairs. Every test works in namespaces and groups of its own.

use crate::bed::TARGET_CACHE_LOCK;
use crate::cache_live::{l2, repairs, PER_KEY};
use crate::db_rows::RowsGuard;
use crate::ops::{audit, cred_env, md5, split_dsn, sql, sql_value, wait_until, Node, Run};
use crate::support::{bed, unique, Bed, MatrixPair, Side};

const G: &str = "MATRIX";

pub(crate) fn node(b: &Bed, side: &Side, url: &str) -> Node {
    if side.java {
        Node::login(url, &b.username, &b.password)
    } else {
        Node::login(url, "", "")
    }
}

/// The audit of one pair, restricted to `ns`, with the identity header and DB passwords.
pub(crate) fn pair_audit(
    b: &Bed,
    p: &MatrixPair,
    ns: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut args: Vec<String> = vec![
        "--namespace".into(),
        ns.into(),
        "--settle".into(),
        "0".into(),
        "--source-nacos".into(),
        p.source.nacos.join(","),
        "--target-nacos".into(),
        p.target.nacos.join(","),
    ];
    let mut e: Vec<(&str, String)> = Vec::new();
    if p.source.java || p.target.java {
        e.extend(cred_env(&b.username, &b.password));
    }
    for (side, db) in [("SOURCE", &p.source.db), ("TARGET", &p.target.db)] {
        if let Some(db) = db {
            let (dsn, pw) = split_dsn(db);
            args.extend([format!("--{}-db", side.to_lowercase()), dsn]);
            e.push((
                if side == "SOURCE" {
                    "NACOS_DRIFT_SOURCE_DB_PASSWORD"
                } else {
                    "NACOS_DRIFT_TARGET_DB_PASSWORD"
                },
                pw,
            ));
        }
    }
    if p.target.java {
        e.push((
            "NACOS_DRIFT_TARGET_NACOS_IDENTITY_KEY",
            b.identity_key.clone(),
        ));
        e.push((
            "NACOS_DRIFT_TARGET_NACOS_IDENTITY_VALUE",
            b.identity_value.clone(),
        ));
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut all: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(env);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    audit(&a, &all)
}

/// `(code, layer, group/dataId/variant)` of the findings about group `g`.
fn in_group(r: &Run, g: &str) -> Vec<(String, String, String)> {
    r.findings()
        .into_iter()
        .filter(|f| f.2.starts_with(&format!("{g}/")))
        .collect()
}

fn want(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = items
        .iter()
        .map(|(c, l, w)| ((*c).to_owned(), (*l).to_owned(), (*w).to_owned()))
        .collect();
    v.sort();
    v
}

/// The md5 of a row of the target DB (`None`: no row), formal or a variant table.
fn target_md5(db: &str, table: &str, ns: &str, data_id: &str) -> Option<String> {
    sql_value(
        db,
        &format!("SELECT md5 FROM {table} WHERE tenant_id='{ns}' AND group_id='{G}' AND data_id='{data_id}'"),
    )
}

/// Where a variant replicated from a 2.x source lands on this target: its own beta/tag tables on
/// 2.x, `config_info_gray` (beta as `beta`, tag as `tag_<tag>`) on 3.x.
fn is_v3(p: &MatrixPair) -> bool {
    p.target.version.starts_with('3')
}

/// L1 and L3 over every pair: a clean pair passes; a beta and a tag release made on the source
/// reach the target (as gray rows on 3.x) and still pass, with either in-DB digest; a target row
/// changed behind the nodes is reported at L1 and, where the API reads the DB, at L3.
#[test]
fn every_pair_is_clean_then_reports_a_changed_target_row_or_config() {
    let Some(b) = bed() else { return };
    for p in b.pairs() {
        let ns = format!("mx-{}", unique());
        let src = node(&b, &p.source, &p.source.nacos[0]);
        let tgt = node(&b, &p.target, &p.target.nacos[0]);
        src.create_namespace(&ns);
        src.publish(&ns, G, "app.properties", "a=1\n");
        let Some(tdb) = p.target.db.clone() else {
            // API-only pair (r-nacos): the target is written through its API.
            tgt.create_namespace(&ns);
            tgt.publish(&ns, G, "app.properties", "a=1\n");
            let r = pair_audit(&b, &p, &ns, &["--no-probe"], &[]);
            assert_eq!(r.code, 0, "{}: {}", p.label(), r.output);
            tgt.publish(&ns, G, "app.properties", "a=2\n");
            let r = pair_audit(&b, &p, &ns, &["--no-probe"], &[]);
            assert_eq!(
                in_group(&r, G),
                want(&[("config-content-differs", "L3", "MATRIX/app.properties/")]),
                "{}: {}",
                p.label(),
                r.output
            );
            continue;
        };
        let sdb = p.source.db.clone().expect("a DB pair's source has a DB");
        assert!(
            wait_until(30, || target_md5(
                &tdb,
                "config_info",
                &ns,
                "app.properties"
            )
            .is_some()),
            "{}: the config did not reach the target DB",
            p.label()
        );
        // A beta and a tag release on the source DB (the 2.0.4 API has no tag publish).
        sql(
            &sdb,
            &format!("INSERT INTO config_info_beta (data_id, group_id, tenant_id, app_name, content, beta_ips, md5, encrypted_data_key) VALUES ('app.properties', '{G}', '{ns}', '', 'a=1-beta\\n', '127.0.0.1', MD5('a=1-beta\\n'), '')"),
        );
        sql(
            &sdb,
            &format!("INSERT INTO config_info_tag (data_id, group_id, tenant_id, tag_id, app_name, content, md5) VALUES ('app.properties', '{G}', '{ns}', 'blue', '', 'a=1-blue\\n', MD5('a=1-blue\\n'))"),
        );
        let (beta_at, beta_table) = if is_v3(&p) {
            ("gray_name='beta'", "config_info_gray")
        } else {
            ("1=1", "config_info_beta")
        };
        let tag_at = if is_v3(&p) {
            "config_info_gray WHERE gray_name='tag_blue' AND"
        } else {
            "config_info_tag WHERE tag_id='blue' AND"
        };
        assert!(
            wait_until(30, || sql_value(
                &tdb,
                &format!("SELECT md5 FROM {tag_at} tenant_id='{ns}'")
            )
            .is_some()),
            "{}: the tag release did not reach the target DB",
            p.label()
        );
        for digest in ["auto", "md5"] {
            let r = pair_audit(
                &b,
                &p,
                &ns,
                &["--no-probe"],
                &[("NACOS_DRIFT_AUDIT_DB_DIGEST", digest)],
            );
            assert_eq!(r.code, 0, "{} ({digest}): {}", p.label(), r.output);
        }
        // Behind the nodes: the formal row and the beta release changed on the target DB.
        sql(
            &tdb,
            &format!("UPDATE config_info SET content='a=9\\n', md5=MD5('a=9\\n') WHERE tenant_id='{ns}' AND data_id='app.properties'"),
        );
        sql(
            &tdb,
            &format!("UPDATE {beta_table} SET content='a=9-beta\\n', md5=MD5('a=9-beta\\n') WHERE tenant_id='{ns}' AND data_id='app.properties' AND {beta_at}"),
        );
        for digest in ["auto", "md5"] {
            let r = pair_audit(
                &b,
                &p,
                &ns,
                &["--no-probe"],
                &[("NACOS_DRIFT_AUDIT_DB_DIGEST", digest)],
            );
            assert_eq!(
                in_group(&r, G),
                want(&[
                    ("config-content-differs", "L1", "MATRIX/app.properties/"),
                    ("config-content-differs", "L1", "MATRIX/app.properties/beta"),
                    ("config-content-differs", "L3", "MATRIX/app.properties/"),
                ]),
                "{} ({digest}): {}",
                p.label(),
                r.output
            );
        }
    }
}

/// Deletes a default-namespace key on both sides when dropped (also when the test fails): a
/// `public` row and a `''` row of one key that differ, both written by users, make every 3.x node
/// refuse to start on that DB (`ConfigMigrateService.namespaceMigratePreCheck`: "config_info
/// conflict count=1"), so the test must not leave one behind on the bed.
struct DefaultKeyCleanup<'a> {
    src: &'a Node,
    tgt: &'a Node,
    group: String,
    data_ids: &'a [&'a str],
}

impl Drop for DefaultKeyCleanup<'_> {
    fn drop(&mut self) {
        for d in self.data_ids {
            let _ = self.tgt.call(
                "DELETE",
                "/v3/admin/cs/config",
                &[
                    ("namespaceId", "public"),
                    ("groupName", &self.group),
                    ("dataId", d),
                ],
            );
            let _ = self.src.call(
                "DELETE",
                "/v1/cs/configs",
                &[("tenant", ""), ("group", &self.group), ("dataId", d)],
            );
        }
    }
}

/// Nacos 3.x keeps each default-namespace config twice (tenant `public`, what it serves, and a
/// `''` copy written by `nacos_namespace_migrate`): at L1 each key counts once. A config only in
/// the `''` slot (fed from a 2.x source while the 3.x nodes' change worker is off) is not served by
/// 3.x and is reported missing at L1 as at L3; one in both slots with the source's content passes;
/// a change fed from the source into the `''` slot only is one difference per layer, not two.
#[test]
fn nacos3_public_mirror_rows_count_once_at_l1() {
    let Some(b) = bed() else { return };
    for p in b.pairs().into_iter().filter(is_v3) {
        let g = format!("MXPUB-{}", unique());
        let tdb = p.target.db.clone().expect("the 3.x pair has a DB");
        let src = node(&b, &p.source, &p.source.nacos[0]);
        let tgt = node(&b, &p.target, &p.target.nacos[0]);
        let _cleanup = DefaultKeyCleanup {
            src: &src,
            tgt: &tgt,
            group: g.clone(),
            data_ids: &["both.yaml", "only-fed.yaml"],
        };
        // `both`: published on 3.x (its public row and its '' copy), then the same on the source
        // (fed into the '' slot). `only-fed`: published on the source only.
        tgt.publish("public", &g, "both.yaml", "y: 1\n");
        let rows = |data_id: &str| {
            sql_value(
                &tdb,
                &format!("SELECT GROUP_CONCAT(CONCAT('[', tenant_id, ']') ORDER BY tenant_id) FROM config_info WHERE group_id='{g}' AND data_id='{data_id}'"),
            )
            .unwrap_or_default()
        };
        assert!(
            wait_until(30, || rows("both.yaml") == "[],[public]"),
            "{}: 3.x wrote no '' copy: {}",
            p.label(),
            rows("both.yaml")
        );
        src.publish("", &g, "both.yaml", "y: 1\n");
        src.publish("", &g, "only-fed.yaml", "x: 1\n");
        assert!(
            wait_until(30, || rows("only-fed.yaml") == "[]"),
            "{}: rows {} / {}",
            p.label(),
            rows("only-fed.yaml"),
            rows("both.yaml")
        );
        let audit_public = || pair_audit(&b, &p, "public", &["--no-probe"], &[]);
        let r = audit_public();
        assert_eq!(
            in_group(&r, &g),
            want(&[
                ("config-missing", "L1", &format!("{g}/only-fed.yaml/")),
                ("config-missing", "L3", &format!("{g}/only-fed.yaml/")),
            ]),
            "{}: {}",
            p.label(),
            r.output
        );
        // Changed on the source: the feed updates the '' copy, the served public row stays old.
        // The two rows now differ and neither is 3.x's own copy: a 3.x node would not start on
        // this DB (`namespaceMigratePreCheck`), which is reported too.
        src.publish("", &g, "both.yaml", "y: 2\n");
        assert!(wait_until(30, || {
            sql_value(
            &tdb,
            &format!("SELECT md5 FROM config_info WHERE tenant_id='' AND group_id='{g}' AND data_id='both.yaml'")
        )
        .as_deref()
            == Some(md5("y: 2\n").as_str())
        }));
        for digest in ["auto", "md5"] {
            let r = pair_audit(
                &b,
                &p,
                "public",
                &["--no-probe"],
                &[("NACOS_DRIFT_AUDIT_DB_DIGEST", digest)],
            );
            assert_eq!(
                in_group(&r, &g),
                want(&[
                    ("config-content-differs", "L1", &format!("{g}/both.yaml/")),
                    ("config-content-differs", "L3", &format!("{g}/both.yaml/")),
                    ("config-missing", "L1", &format!("{g}/only-fed.yaml/")),
                    ("config-missing", "L3", &format!("{g}/only-fed.yaml/")),
                    (
                        "namespace-migrate-conflict",
                        "L1",
                        &format!("{g}/both.yaml/")
                    ),
                ]),
                "{} ({digest}): {}",
                p.label(),
                r.output
            );
        }
    }
}

/// L2 and both repairs over every pair with a target DB: configs fed into the target DB are
/// missing, then stale, on every target node; `--fix` per key (cluster gRPC with the identity
/// header on 2.2.1+, 3.x included) and `--fix --full` (whole-node reload: `/v1/cs/ops/localCache`,
/// `/v3/admin/cs/ops/localCache` on 3.x) repair them, verified by a fresh probe; no config row and
/// no history row of either DB changes (the repair invariant, [`RowsGuard`]).
#[test]
fn stale_target_nodes_are_found_and_repaired_per_key_and_whole_on_every_db_pair() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    for p in b.pairs().into_iter().filter(|p| p.target.db.is_some()) {
        let ns = format!("mx-{}", unique());
        let (sdb, tdb) = (p.source.db.clone().unwrap(), p.target.db.clone().unwrap());
        let src = node(&b, &p.source, &p.source.nacos[0]);
        src.create_namespace(&ns);
        src.publish(&ns, G, "k1.yaml", "k: 1\n");
        src.publish(&ns, G, "k2.yaml", "k: 2\n");
        for (d, c) in [("k1.yaml", "k: 1\n"), ("k2.yaml", "k: 2\n")] {
            assert!(
                wait_until(30, || target_md5(&tdb, "config_info", &ns, d).as_deref()
                    == Some(md5(c).as_str())),
                "{}: {d} did not reach the target DB",
                p.label()
            );
        }
        let l2_of = |r: &Run| -> Vec<(String, String, String)> {
            l2(r)
                .into_iter()
                .filter(|f| p.target.nacos.contains(&f.2))
                .collect()
        };
        let every_node = |code: &str, keys: &[&str]| {
            let mut v = Vec::new();
            for n in &p.target.nacos {
                for k in keys {
                    v.push((code.to_owned(), (*k).to_owned(), n.clone()));
                }
            }
            v.sort();
            v
        };
        let r = pair_audit(&b, &p, &ns, &[], &[]);
        assert_eq!(
            l2_of(&r),
            every_node("cache-missing", &["k1.yaml", "k2.yaml"]),
            "{}: {}",
            p.label(),
            r.output
        );
        let fix = |extra: &[&str], env: &[(&str, &str)]| {
            let guard = RowsGuard::new(&[&sdb, &tdb], &ns, &[G]);
            let r = pair_audit(&b, &p, &ns, extra, env);
            guard.assert_unchanged(&format!("{} audit {extra:?}", p.label()));
            r
        };
        let fixed = fix(&["--fix"], &[PER_KEY]);
        assert_eq!(fixed.code, 0, "{}: {}", p.label(), fixed.output);
        let reps = repairs(&fixed);
        assert_eq!(
            reps.len(),
            p.target.nacos.len(),
            "{}: {}",
            p.label(),
            fixed.output
        );
        for (n, mech, status) in &reps {
            assert!(p.target.nacos.contains(n), "{n}");
            assert_eq!(
                (mech.as_str(), status.as_str()),
                ("grpc-sync", "applied"),
                "{}: {}",
                p.label(),
                fixed.output
            );
        }
        let again = pair_audit(&b, &p, &ns, &[], &[]);
        assert_eq!(again.code, 0, "{}: {}", p.label(), again.output);

        // A change fed from the source: stale on every node; the whole-node reload repairs it.
        src.publish(&ns, G, "k1.yaml", "k: 11\n");
        assert!(wait_until(30, || target_md5(
            &tdb,
            "config_info",
            &ns,
            "k1.yaml"
        )
        .as_deref()
            == Some(md5("k: 11\n").as_str())));
        let r = pair_audit(&b, &p, &ns, &[], &[]);
        assert_eq!(
            l2_of(&r),
            every_node("cache-stale", &["k1.yaml"]),
            "{}: {}",
            p.label(),
            r.output
        );
        let fixed = fix(&["--fix", "--full"], &[]);
        assert_eq!(fixed.code, 0, "{}: {}", p.label(), fixed.output);
        for (n, mech, status) in &repairs(&fixed) {
            assert!(p.target.nacos.contains(n), "{n}");
            assert_eq!(
                (mech.as_str(), status.as_str()),
                ("full-reload", "applied"),
                "{}: {}",
                p.label(),
                fixed.output
            );
        }
        // The nodes serve the source's content now (the probe above verified it; so does a client).
        for url in &p.target.nacos {
            let n = node(&b, &p.target, url);
            assert!(
                wait_until(30, || n.get_config(&ns, G, "k1.yaml").2 == md5("k: 11\n")),
                "{}: {url} does not serve the repaired k1.yaml",
                p.label()
            );
        }
    }
}

/// The decommission check's connection list on every Java target version of the matrix (each is
/// audited as a source against itself, API only): a real Java SDK client connected to it is a
/// `client-connected` finding, and is gone once the client disconnects.
#[test]
fn every_java_target_lists_a_connected_sdk_client_for_decommission() {
    let Some(b) = bed() else { return };
    for p in b.pairs().into_iter().filter(|p| p.target.java) {
        let ns = format!("mx-{}", unique());
        let url = p.target.nacos[0].clone();
        node(&b, &p.target, &url).create_namespace(&ns);
        let itself = MatrixPair {
            source: Side {
                db: None,
                ..p.target.clone()
            },
            target: Side {
                db: None,
                ..p.target.clone()
            },
        };
        let run = || {
            pair_audit(
                &b,
                &itself,
                &ns,
                &["--no-probe", "--gate", "decommission-ready"],
                &[],
            )
        };
        let app = format!("app-{ns}");
        let mine = |r: &Run| {
            r.findings()
                .iter()
                .any(|f| f.0 == "client-connected" && f.2.starts_with(&format!("/{app}/ ")))
        };
        let client = crate::ops::SdkClient::connect(&url, &ns, &app);
        let r = run();
        assert!(mine(&r), "{}: {}", p.label(), r.output);
        assert_eq!(r.code, 1, "{}: {}", p.label(), r.output);
        drop(client);
        assert!(
            wait_until(30, || !mine(&run())),
            "{}: the client is still listed after it disconnected",
            p.label()
        );
    }
}

/// Every Java side of the matrix runs the version the bed announces, and the 3.1 side is a
/// two-member cluster with both members UP (read through the v3 admin API).
#[test]
fn matrix_sides_run_their_announced_versions() {
    let Some(b) = bed() else { return };
    for p in b.pairs() {
        for side in [&p.source, &p.target].into_iter().filter(|s| s.java) {
            for url in &side.nacos {
                let n = node(&b, side, url);
                let (path, key) = if n.v3 {
                    ("/v3/admin/core/state", "version")
                } else {
                    ("/v1/console/server/state", "version")
                };
                let (s, body) = n.call("GET", path, &[]);
                assert_eq!(s, 200, "{url}: {body}");
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let got = v[key].as_str().or(v["data"][key].as_str()).unwrap_or("");
                assert_eq!(got, side.version, "{}: {url}: {body}", p.label());
            }
            if side.version.starts_with('3') {
                let n = node(&b, side, &side.nacos[0]);
                let (s, body) = n.call("GET", "/v3/admin/core/cluster/node/list", &[]);
                assert_eq!(s, 200, "{body}");
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let members = v["data"].as_array().expect("members");
                assert_eq!(members.len(), side.nacos.len(), "{body}");
                assert!(members.iter().all(|m| m["state"] == "UP"), "{body}");
            }
        }
    }
}
