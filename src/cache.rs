//! Layer L2: probe every node's config cache against its own DB (or its cluster's API content), and repair stale caches.
//!
//! Nacos serves configs from each node's own dump, not from the DB, so a node can serve old content
//! long after its DB row changed (see nacos-internals §1–§2). The probe sends the expected md5 of
//! every key to each node through the listener API, thousands per request, and the node answers
//! with the keys it disagrees with. Repairs are planned first, rate-limited, applied per node with
//! the mechanism its version supports, and verified by a fresh probe.

use crate::finding::{Code, Finding, Layer};
use crate::model::{ConfigKey, Side};
use crate::source::nacos::{NacosNode, NodeError, LISTENER_BATCH};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the probe expects a node to serve for one key (`md5` empty = the config should not exist).
#[derive(Debug, Clone)]
pub struct Expected {
    /// Key (formal configs only: the listener compares formal md5s for callers outside beta lists).
    pub key: ConfigKey,
    /// Expected md5, empty if the config was deleted.
    pub md5: String,
    /// DB `gmt_modified` in ms, when known (for the timestamp-trap check).
    pub modified_ms: Option<i64>,
}

/// How to repair.
#[derive(Debug, Clone, Default)]
pub struct FixOptions {
    /// Repair at all.
    pub fix: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Full reload of every stale node, whatever its stale share.
    pub full: bool,
    /// Repairs may touch the source side too.
    pub fix_source: bool,
    /// Stale share (percent of probed keys) above which a node gets a full reload instead of per-key reloads (100 = never).
    pub full_threshold_pct: u64,
    /// Most repair requests per second per node.
    pub rate_per_sec: u64,
    /// How long to wait for a reload to show before calling a key still stale.
    pub verify_secs: u64,
}

/// Server identity header for node-to-node endpoints.
pub type Identity = Option<(String, crate::settings::Secret)>;

/// One planned or applied repair action on one node.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// `source` or `target`.
    pub side: String,
    /// Node URL.
    pub node: String,
    /// Node version.
    pub version: String,
    /// `full-reload`, `data-change`, `grpc-sync` or `none`.
    pub mechanism: String,
    /// Keys concerned.
    pub keys: usize,
    /// `planned`, `applied`, `failed` or `skipped`.
    pub status: String,
    /// Why this mechanism, or what failed.
    pub detail: String,
    /// Keys verified fresh after the repair.
    pub repaired: usize,
    /// Keys still stale after the repair.
    pub still_stale: usize,
}

/// Result of the cache layer for one side.
#[derive(Debug, Default)]
pub struct CacheOutcome {
    /// L2 findings (and node errors as source-error).
    pub findings: Vec<Finding>,
    /// Repairs planned or applied.
    pub repairs: Vec<Repair>,
    /// Keys probed per node.
    pub probed: usize,
    /// Nodes probed.
    pub nodes: usize,
}

fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let hp = rest.split('/').next().unwrap_or(rest);
    if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:80")
    }
}

/// Parse an RFC 7231 HTTP date (`Fri, 27 Nov 2026 02:22:08 GMT`) to epoch ms.
#[must_use]
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]) * 1000)
}

/// Parse `major.minor.patch` (anything else: None).
fn semver(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// The per-key reload mechanism a node version supports (see nacos-internals §2.6).
#[must_use]
pub fn incremental_mechanism(version: &str, grpc_available: bool) -> (&'static str, String) {
    match semver(version) {
        Some(v) if v < (2, 2, 1) => ("data-change", format!("Nacos {version} ≤ 2.2.0: HTTP dataChange with a fresh lastModified")),
        Some(_) if grpc_available => ("grpc-sync", format!("Nacos {version} ≥ 2.2.1: cluster gRPC ConfigChangeClusterSyncRequest")),
        Some(_) => ("full-reload", format!("Nacos {version} ≥ 2.2.1 has no HTTP per-key reload; the gRPC sync is not available, so the node is reloaded whole")),
        None => ("none", format!("server `{version}` offers no known cache reload (r-nacos serves configs from its own store)")),
    }
}

/// `(namespace, group, dataId, expected md5)` as the listener probe takes it.
type ProbeKey = (String, String, String, String);

struct NodeState {
    node: Arc<NacosNode>,
    version: String,
    stale: Vec<usize>,
}

/// Probe one node for all expected keys, in concurrent batches.
async fn probe_all(node: &NacosNode, keys: &[ProbeKey]) -> Result<Vec<usize>, NodeError> {
    let batches: Vec<(usize, &[ProbeKey])> = keys
        .chunks(LISTENER_BATCH)
        .enumerate()
        .map(|(i, c)| (i * LISTENER_BATCH, c))
        .collect();
    let results: Vec<Result<Vec<usize>, NodeError>> = stream::iter(batches)
        .map(|(offset, chunk)| async move {
            node.probe(chunk)
                .await
                .map(|v| v.into_iter().map(|i| i + offset).collect::<Vec<_>>())
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    out.sort_unstable();
    Ok(out)
}

fn probe_keys(expected: &[Expected]) -> Vec<ProbeKey> {
    expected
        .iter()
        .map(|e| {
            (
                e.key.namespace.clone(),
                e.key.group.clone(),
                e.key.data_id.clone(),
                e.md5.clone(),
            )
        })
        .collect()
}

/// Check members, probe every node, and (with `fix`) repair and verify.
#[allow(clippy::too_many_lines)] // why: one linear story (members → probe → plan → apply → verify) reads best in one place.
pub async fn audit_side(
    side: Side,
    nodes: &[Arc<NacosNode>],
    expected: &[Expected],
    identity: &Identity,
    opts: &FixOptions,
    grpc: Option<&(dyn GrpcSync + Sync)>,
) -> CacheOutcome {
    let mut out = CacheOutcome {
        probed: expected.len(),
        nodes: nodes.len(),
        ..CacheOutcome::default()
    };
    let side_s = side.as_str().to_owned();
    let node_error = |node: &str, msg: String| {
        let mut f = Finding::new(Code::SourceError, Layer::L2, "", "", "");
        f.side = Some(side.as_str().to_owned());
        f.node = Some(node.to_owned());
        f.detail = format!("{side}: {msg}");
        f
    };

    // Versions (and credentials) of every node.
    let versions = futures::future::join_all(nodes.iter().map(|n| async move {
        n.login().await?;
        n.version().await
    }))
    .await;
    let mut live: Vec<NodeState> = Vec::new();
    for (n, v) in nodes.iter().zip(versions) {
        match v {
            Ok(version) => live.push(NodeState {
                node: n.clone(),
                version,
                stale: Vec::new(),
            }),
            Err(e) => out.findings.push(node_error(&n.base, e.message)),
        }
    }

    // Membership: every configured node must be a member, and every member must be configured and UP.
    if let Some(first) = live.first() {
        match first.node.members().await {
            Ok(Some(members)) => {
                let configured: Vec<String> = nodes.iter().map(|n| host_port(&n.base)).collect();
                for n in nodes {
                    let hp = host_port(&n.base);
                    if !members.iter().any(|m| m.address == hp) {
                        let mut f = Finding::new(Code::NodeNotMember, Layer::L2, "", "", "");
                        f.side = Some(side_s.clone());
                        f.node = Some(n.base.clone());
                        f.detail = format!(
                            "configured node {hp} is not a member of its cluster (members: {})",
                            members
                                .iter()
                                .map(|m| m.address.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        out.findings.push(f);
                    }
                }
                for m in &members {
                    if !configured.contains(&m.address) {
                        let mut f = Finding::new(Code::NodeNotMember, Layer::L2, "", "", "");
                        f.side = Some(side_s.clone());
                        f.node = Some(m.address.clone());
                        f.detail = format!("cluster member {} (state {}) is not in the configured node list: its cache is not audited", m.address, m.state);
                        out.findings.push(f);
                    } else if m.state != "UP" {
                        let mut f = Finding::new(Code::NodeNotMember, Layer::L2, "", "", "");
                        f.side = Some(side_s.clone());
                        f.node = Some(m.address.clone());
                        f.detail = format!(
                            "cluster member {} is {} according to {}",
                            m.address, m.state, first.node.base
                        );
                        out.findings.push(f);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => out.findings.push(node_error(
                &first.node.base,
                format!("cannot list cluster members: {}", e.message),
            )),
        }
    }

    // Probe every live node.
    let keys = probe_keys(expected);
    let probes = futures::future::join_all(live.iter().map(|s| {
        let keys = &keys;
        async move { probe_all(&s.node, keys).await }
    }))
    .await;
    let mut failed = Vec::new();
    for (i, r) in probes.into_iter().enumerate() {
        match r {
            Ok(stale) => live[i].stale = stale,
            Err(e) => {
                out.findings.push(node_error(&live[i].node.base, e.message));
                failed.push(i);
            }
        }
    }
    for i in failed.into_iter().rev() {
        live.remove(i);
    }
    // Probe the flagged keys once more: a node in the middle of a reload can flag a key for an
    // instant. Only keys flagged twice are reported (and repaired).
    for s in &mut live {
        if s.stale.is_empty() {
            continue;
        }
        let subset: Vec<ProbeKey> = s.stale.iter().map(|i| keys[*i].clone()).collect();
        if let Ok(again) = probe_all(&s.node, &subset).await {
            s.stale = again.into_iter().map(|j| s.stale[j]).collect();
        }
    }

    // Classify each difference: stale (serves other content), missing (serves nothing), extra (serves a deleted config).
    let mut stale_findings: BTreeMap<(String, usize), Finding> = BTreeMap::new();
    for s in &live {
        let served = stream::iter(s.stale.iter().copied())
            .map(|i| {
                let node = s.node.clone();
                let k = expected[i].key.clone();
                async move { (i, node.served(&k.namespace, &k.group, &k.data_id).await) }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        for (i, r) in served {
            let e = &expected[i];
            let mut f = Finding::new(
                Code::CacheStale,
                Layer::L2,
                &e.key.namespace,
                &e.key.group,
                &e.key.data_id,
            );
            f.side = Some(side_s.clone());
            f.node = Some(s.node.base.clone());
            f.expected_md5 = Some(e.md5.clone());
            match r {
                Ok(sv) => {
                    f.served_md5 = Some(sv.md5.clone());
                    if e.md5.is_empty() {
                        f.code = Code::CacheExtra;
                        f.detail = "node still serves a config whose DB row is gone".into();
                    } else if sv.status == 404 {
                        f.code = Code::CacheMissing;
                        f.detail = "node does not serve a config its DB has".into();
                    } else {
                        f.detail = "node serves other content than its DB holds".into();
                    }
                }
                Err(err) => {
                    f.detail = format!(
                        "node disagrees with its DB (could not read what it serves: {})",
                        err.message
                    );
                    // Not read is not classified: the audit is incomplete.
                    out.findings.push(node_error(&s.node.base, err.message));
                }
            }
            stale_findings.insert((s.node.base.clone(), i), f);
        }
    }

    let touch = opts.fix && (side == Side::Target || opts.fix_source);
    if opts.fix && !touch && !stale_findings.is_empty() {
        for f in stale_findings.values_mut() {
            f.repair =
                Some("not repaired: the source is never touched without --fix-source".into());
        }
    }
    if touch {
        let stale_nodes: Vec<&NodeState> = live.iter().filter(|s| !s.stale.is_empty()).collect();
        // Plan.
        let mut plans: Vec<(usize, &'static str, String)> = Vec::new();
        for (n, s) in stale_nodes.iter().enumerate() {
            let share = s.stale.len() as u64 * 100 / (expected.len().max(1) as u64);
            let (mech, why) = incremental_mechanism(&s.version, grpc.is_some());
            let (mech, why) = if mech == "none" {
                (mech, why)
            } else if opts.full {
                ("full-reload", "--full asks for a full reload".to_owned())
            } else if share > opts.full_threshold_pct {
                (
                    "full-reload",
                    format!(
                        "{share}% of probed keys stale > threshold {}%",
                        opts.full_threshold_pct
                    ),
                )
            } else {
                (mech, why)
            };
            plans.push((n, mech, why));
        }
        for (n, mech, why) in &plans {
            let s = stale_nodes[*n];
            let mut r = Repair {
                side: side_s.clone(),
                node: s.node.base.clone(),
                version: s.version.clone(),
                mechanism: (*mech).to_owned(),
                keys: s.stale.len(),
                status: "planned".into(),
                detail: why.clone(),
                repaired: 0,
                still_stale: 0,
            };
            if opts.dry_run || *mech == "none" {
                if *mech == "none" {
                    r.status = "skipped".into();
                }
                for i in &s.stale {
                    if let Some(f) = stale_findings.get_mut(&(s.node.base.clone(), *i)) {
                        f.repair = Some(if *mech == "none" {
                            format!("not repairable: {why}")
                        } else {
                            format!("planned: {mech}")
                        });
                    }
                }
                out.repairs.push(r);
                continue;
            }
            let id = identity.as_ref().map(|(k, v)| (k.as_str(), v.expose()));
            let pause = Duration::from_millis(1000 / opts.rate_per_sec.max(1));
            let applied: Result<(), String> = match *mech {
                "full-reload" => {
                    let res = s.node.reload_all(id).await.map_err(|e| e.message);
                    // A full dump never removes deleted configs (nacos-internals §2.1): drop those per key where possible.
                    let deleted: Vec<usize> = s
                        .stale
                        .iter()
                        .copied()
                        .filter(|i| expected[*i].md5.is_empty())
                        .collect();
                    if res.is_ok() && !deleted.is_empty() {
                        let (m2, _) = incremental_mechanism(&s.version, grpc.is_some());
                        per_key(s, &deleted, expected, m2, id, grpc, pause)
                            .await
                            .ok();
                    }
                    res
                }
                other => per_key(s, &s.stale, expected, other, id, grpc, pause).await,
            };
            match applied {
                Ok(()) => r.status = "applied".into(),
                Err(e) => {
                    r.status = "failed".into();
                    r.detail = format!("{}; failed: {e}", r.detail);
                    out.findings
                        .push(node_error(&s.node.base, format!("repair failed: {e}")));
                }
            }
            out.repairs.push(r);
        }

        // Verify: re-probe the stale keys on each repaired node until fresh or out of time (reloads are asynchronous).
        if !opts.dry_run {
            let deadline = Instant::now() + Duration::from_secs(opts.verify_secs);
            for r in out.repairs.iter_mut().filter(|r| r.status == "applied") {
                let Some(s) = live.iter().find(|s| s.node.base == r.node) else {
                    continue;
                };
                let subset: Vec<ProbeKey> = s.stale.iter().map(|i| keys[*i].clone()).collect();
                let mut still: Vec<usize> = s.stale.clone();
                loop {
                    match probe_all(&s.node, &subset).await {
                        Ok(idx) => still = idx.into_iter().map(|j| s.stale[j]).collect(),
                        Err(e) => {
                            r.detail =
                                format!("{}; verification probe failed: {}", r.detail, e.message);
                            break;
                        }
                    }
                    if still.is_empty() || Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                r.repaired = s.stale.len() - still.len();
                r.still_stale = still.len();
                for i in &s.stale {
                    let Some(f) = stale_findings.get_mut(&(s.node.base.clone(), *i)) else {
                        continue;
                    };
                    if still.contains(i) {
                        f.repair = Some(format!("still stale after {}", r.mechanism));
                        // A node whose cached timestamp is newer than the DB row ignores every reload (nacos-internals §2.3).
                        if let (Ok(sv), Some(db_ms)) = (
                            s.node.served(&f.namespace, &f.group, &f.name).await,
                            expected[*i].modified_ms,
                        ) {
                            f.served_md5 = Some(sv.md5.clone());
                            if sv.status == 200
                                && sv.last_modified_ms.is_some_and(|node_ms| node_ms > db_ms)
                                && !expected[*i].md5.is_empty()
                                && semver(&s.version).is_some_and(|v| v >= (2, 1, 0))
                            {
                                f.code = Code::CacheTimestampTrap;
                                f.detail = format!(
                                    "a reload did not take: the node's cached copy (Last-Modified {}) is newer than the DB row's gmt_modified ({}), and Nacos ≥ 2.1 ignores older dumps. Remedy: set gmt_modified = NOW() on the row, then reload (or restart the node)",
                                    sv.last_modified_ms.unwrap_or(0) / 1000,
                                    db_ms / 1000
                                );
                            }
                        }
                    } else {
                        f.repair = Some("repaired".into());
                    }
                }
            }
        }
    }
    out.findings.extend(stale_findings.into_values());
    out
}

/// Reload keys one by one with a per-key mechanism, rate-limited.
async fn per_key(
    s: &NodeState,
    idx: &[usize],
    expected: &[Expected],
    mech: &str,
    id: Option<(&str, &str)>,
    grpc: Option<&(dyn GrpcSync + Sync)>,
    pause: Duration,
) -> Result<(), String> {
    let mut errors = Vec::new();
    for i in idx {
        let k = &expected[*i].key;
        let r = match mech {
            "data-change" => s
                .node
                .data_change(&k.namespace, &k.group, &k.data_id, id)
                .await
                .map_err(|e| e.message),
            "grpc-sync" => match grpc {
                Some(g) => g.sync(&s.node.base, k, id).await,
                None => Err("gRPC sync not available".into()),
            },
            other => Err(format!("no per-key mechanism `{other}`")),
        };
        if let Err(e) = r {
            errors.push(format!("{}: {e}", k.display()));
            if errors.len() >= 3 {
                break;
            }
        }
        tokio::time::sleep(pause).await;
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// A boxed future, for the gRPC hook.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A per-key cluster gRPC reload: ask the node at `base` (its HTTP base URL) to reload one key from its DB.
pub trait GrpcSync {
    /// Reload one key on one node.
    fn sync<'a>(
        &'a self,
        base: &'a str,
        key: &'a ConfigKey,
        identity: Option<(&'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The cluster gRPC reload over one registered connection per node, opened on first use.
pub struct GrpcSyncer {
    nodes:
        tokio::sync::Mutex<std::collections::HashMap<String, Arc<crate::source::grpc::GrpcNode>>>,
    timeout: Duration,
}

impl GrpcSyncer {
    /// A syncer whose every step is bounded by `timeout`.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        GrpcSyncer {
            nodes: tokio::sync::Mutex::new(std::collections::HashMap::new()),
            timeout,
        }
    }
}

impl GrpcSync for GrpcSyncer {
    fn sync<'a>(
        &'a self,
        base: &'a str,
        key: &'a ConfigKey,
        identity: Option<(&'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let node = {
                let mut nodes = self.nodes.lock().await;
                match nodes.get(base) {
                    Some(n) if n.is_alive().await => n.clone(),
                    _ => {
                        let addr = crate::source::grpc::cluster_grpc_addr(base)?;
                        let n = Arc::new(
                            crate::source::grpc::GrpcNode::connect(&addr, identity, self.timeout)
                                .await?,
                        );
                        nodes.insert(base.to_owned(), n.clone());
                        n
                    }
                }
            };
            let tenant = crate::source::nacos::api_tenant(&key.namespace);
            node.sync(
                &key.data_id,
                &key.group,
                &tenant,
                crate::source::grpc::now_ms(),
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), Some(1000));
        assert_eq!(
            parse_http_date("Fri, 27 Nov 2026 02:22:08 GMT"),
            Some(1_795_746_128_000)
        );
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn mechanism_follows_the_version() {
        assert_eq!(incremental_mechanism("1.4.8", false).0, "data-change");
        assert_eq!(incremental_mechanism("2.2.0", true).0, "data-change");
        assert_eq!(incremental_mechanism("2.2.1", true).0, "grpc-sync");
        assert_eq!(incremental_mechanism("2.3.2", false).0, "full-reload");
        assert_eq!(incremental_mechanism("unknown", true).0, "none");
    }
}
