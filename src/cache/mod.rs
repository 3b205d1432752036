//! Layer L2: probe every node's config cache against its own DB (or its cluster's API content), and repair stale caches.
//!
//! Nacos serves configs from each node's own dump, not from the DB, so a node can serve old content
//! long after its DB row changed (`DumpService`, `ConfigCacheService`). The probe sends the
//! expected md5 of every key to each node through the listener API, thousands per request, and
//! the node answers with the keys it disagrees with. Repairs are planned first (`plan`), only
//! from rows that agree with the source, rate-limited, applied per node with the mechanism its
//! version supports, and verified by a fresh probe. A repair makes a node re-read its own DB; it
//! never writes one.

pub mod expect;
pub mod nodedb;
pub mod plan;
mod sync;
pub mod variants;

pub use plan::{Mechanism, Outcome, RepairStatus, Trust};
pub use sync::{BoxFuture, GrpcSync, GrpcSyncer};
pub use variants::Via;

use crate::finding::{Code, Finding, Layer};
use crate::model::{ConfigKey, ProbeKey, Side};
use crate::nacos::{NacosNode, NodeError, LISTENER_BATCH};
use crate::settings::FixOptions;
use futures::stream::{self, StreamExt};
use plan::{NodeDbVerdict, ServedView};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the probe expects a node to serve for one key (`md5` empty = the config should not exist).
#[derive(Debug, Clone)]
pub struct Expected {
    /// Key, with its variant (`beta`, `tag:<t>`, `gray:<g>`) or none for the formal config.
    pub key: ConfigKey,
    /// Expected md5, empty if the config was deleted.
    pub md5: String,
    /// DB `gmt_modified` in ms, when known (for the timestamp-trap check).
    pub modified_ms: Option<i64>,
    /// Whether this row may be loaded into caches (it agrees with the source).
    pub trust: Trust,
    /// How the node is asked for it (a variant: as a client its rule matches).
    pub via: Via,
}

/// Server identity header for node-to-node endpoints.
pub type Identity = Option<(String, crate::secret::Secret)>;

/// One planned or applied repair action on one node.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// `source` or `target`.
    pub side: Side,
    /// Node URL.
    pub node: String,
    /// Node version.
    pub version: String,
    /// How.
    pub mechanism: Mechanism,
    /// Keys concerned.
    pub keys: usize,
    /// Where it stands.
    pub status: RepairStatus,
    /// Why this mechanism, or what failed.
    pub detail: String,
    /// Keys verified fresh after the repair.
    pub repaired: usize,
    /// Keys still stale after the repair.
    pub still_stale: usize,
}

/// What the probe covers and where the expectations come from.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeScope<'a> {
    /// The expectations cover every key the nodes serve (no `--namespace`, no ignore glob, not
    /// incremental): only then is a node's stale share known.
    pub whole: bool,
    /// The expectations come from this side's configured DB (named here): nodes are then
    /// checked to be reading it.
    pub db: Option<&'a str>,
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
    /// Nodes actually probed (answered the probe, and read the configured DB).
    pub nodes: usize,
    /// Configured nodes that were not probed (each named in a source-error).
    pub not_probed: Vec<String>,
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

struct NodeState {
    node: Arc<NacosNode>,
    version: String,
    stale: Vec<usize>,
}

/// Probe one node for all expected keys, in concurrent batches; `vias[i]` says how key `i` is
/// asked for (one batch never mixes two ways: the headers are per request).
async fn probe_all(
    node: &NacosNode,
    keys: &[ProbeKey],
    vias: &[&Via],
) -> Result<Vec<usize>, NodeError> {
    let mut groups: BTreeMap<&Via, Vec<usize>> = BTreeMap::new();
    for (i, v) in vias.iter().enumerate() {
        groups.entry(*v).or_default().push(i);
    }
    let batches: Vec<(&Via, Vec<usize>)> = groups
        .into_iter()
        .flat_map(|(via, idx)| {
            idx.chunks(LISTENER_BATCH)
                .map(|c| (via, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    let results: Vec<Result<Vec<usize>, NodeError>> = stream::iter(batches)
        .map(|(via, idx)| async move {
            let chunk: Vec<ProbeKey> = idx.iter().map(|i| keys[*i].clone()).collect();
            node.probe_via(&chunk, via)
                .await
                .map(|v| v.into_iter().map(|j| idx[j]).collect::<Vec<_>>())
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

/// How each expected key is asked for, by index.
fn vias_of(expected: &[Expected]) -> Vec<&Via> {
    expected.iter().map(|e| &e.via).collect()
}

/// What a node serves for one expected key, asked for as its variant's clients would.
async fn served_of(node: &NacosNode, e: &Expected) -> Result<crate::nacos::Served, NodeError> {
    node.served_via(&e.key.namespace, &e.key.group, &e.key.data_id, &e.via)
        .await
}

fn probe_keys(expected: &[Expected]) -> Vec<ProbeKey> {
    expected
        .iter()
        .map(|e| ProbeKey {
            key: e.key.formal(),
            md5: e.md5.clone(),
        })
        .collect()
}

/// One side's L2 run: its nodes, expectations and repair settings.
pub struct SideRun<'a> {
    /// Which side.
    pub side: Side,
    /// Its configured nodes.
    pub nodes: &'a [Arc<NacosNode>],
    /// What each node should serve.
    pub expected: &'a [Expected],
    /// Server identity for node-to-node endpoints.
    pub identity: &'a Identity,
    /// Repair settings.
    pub opts: &'a FixOptions,
    /// Per-key gRPC reloads, when available.
    pub grpc: Option<&'a (dyn GrpcSync + Sync)>,
    /// What the probe covers.
    pub scope: ProbeScope<'a>,
    /// Every repair as it is about to be sent, kept outside the side's future: when the run is
    /// stopped mid-repair that future is dropped, and the report must still say what may have
    /// reached the nodes (see `run::probe`).
    pub journal: &'a std::sync::Mutex<Vec<Repair>>,
}

impl SideRun<'_> {
    fn node_error(&self, node: &str, msg: &str) -> Finding {
        let mut f = Finding::new(Code::SourceError, Layer::L2, "", "", "");
        f.side = Some(self.side);
        f.node = Some(node.to_owned());
        f.detail = format!("{}: {msg}", self.side);
        f
    }

    fn member_finding(&self, node: &str, detail: String) -> Finding {
        let mut f = Finding::new(Code::NodeNotMember, Layer::L2, "", "", "");
        f.side = Some(self.side);
        f.node = Some(node.to_owned());
        f.detail = detail;
        f
    }

    /// Membership: every configured node must be a member, and every member configured and UP.
    async fn check_members(&self, first: &NacosNode, out: &mut CacheOutcome) {
        match first.members().await {
            Ok(Some(members)) => {
                let configured: Vec<String> =
                    self.nodes.iter().map(|n| host_port(&n.base)).collect();
                let listed = members
                    .iter()
                    .map(|m| m.address.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                for n in self.nodes {
                    let hp = host_port(&n.base);
                    if !members.iter().any(|m| m.address == hp) {
                        out.findings.push(self.member_finding(
                            &n.base,
                            format!("configured node {hp} is not a member of its cluster (members: {listed})"),
                        ));
                    }
                }
                for m in &members {
                    if !configured.contains(&m.address) {
                        out.findings.push(self.member_finding(&m.address, format!("cluster member {} (state {}) is not in the configured node list: its cache is not audited", m.address, m.state)));
                    } else if m.state != "UP" {
                        out.findings.push(self.member_finding(
                            &m.address,
                            format!(
                                "cluster member {} is {} according to {}",
                                m.address, m.state, first.base
                            ),
                        ));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => out.findings.push(self.node_error(
                &first.base,
                &format!("cannot list cluster members: {}", e.message),
            )),
        }
    }

    /// Log in, read versions and probe every node; returns the nodes actually probed.
    async fn probe_nodes(&self, keys: &[ProbeKey], out: &mut CacheOutcome) -> Vec<NodeState> {
        let vias = vias_of(self.expected);
        // A node an earlier stage found down was reported there: it is only listed as not probed
        // here, so each down node is named once per run.
        let (down, up): (Vec<_>, Vec<_>) = self.nodes.iter().partition(|n| n.is_down());
        out.not_probed.extend(down.iter().map(|n| n.base.clone()));
        let versions = futures::future::join_all(up.iter().map(|n| async move {
            n.login().await?;
            n.version().await
        }))
        .await;
        let mut live: Vec<NodeState> = Vec::new();
        for (n, v) in up.into_iter().zip(versions) {
            match v {
                Ok(version) => live.push(NodeState {
                    node: n.clone(),
                    version,
                    stale: Vec::new(),
                }),
                Err(e) => {
                    out.findings.push(self.node_error(&n.base, &e.message));
                    out.not_probed.push(n.base.clone());
                }
            }
        }
        if let Some(first) = live.first() {
            self.check_members(&first.node.clone(), out).await;
        }
        let probes =
            futures::future::join_all(live.iter().map(|s| probe_all(&s.node, keys, &vias))).await;
        let mut probed = Vec::new();
        for (mut s, r) in live.into_iter().zip(probes) {
            match r {
                Ok(stale) => {
                    s.stale = stale;
                    probed.push(s);
                }
                Err(e) => {
                    out.findings.push(self.node_error(&s.node.base, &e.message));
                    out.not_probed.push(s.node.base.clone());
                }
            }
        }
        // Probe the flagged keys once more: a node in the middle of a reload can flag a key for an
        // instant. Only keys flagged twice are reported (and repaired).
        for s in &mut probed {
            if s.stale.is_empty() {
                continue;
            }
            let subset: Vec<ProbeKey> = s.stale.iter().map(|i| keys[*i].clone()).collect();
            let sub_vias: Vec<&Via> = s.stale.iter().map(|i| vias[*i]).collect();
            if let Ok(again) = probe_all(&s.node, &subset, &sub_vias).await {
                s.stale = again.into_iter().map(|j| s.stale[j]).collect();
            }
        }
        probed
    }

    /// Drop (and report) nodes that do not read the configured DB: their findings would be about
    /// another database, and a reload would load that one.
    async fn check_node_dbs(&self, live: Vec<NodeState>, out: &mut CacheOutcome) -> Vec<NodeState> {
        let Some(db) = self.scope.db else {
            return live;
        };
        let verdicts = futures::future::join_all(live.iter().map(|s| async {
            // A node that agrees on every key reads this DB (or an identical one): nothing to ask.
            if s.stale.is_empty() {
                NodeDbVerdict::Agrees
            } else {
                nodedb::check(&s.node, self.expected, &s.stale).await
            }
        }))
        .await;
        let mut kept = Vec::new();
        for (s, v) in live.into_iter().zip(verdicts) {
            match v {
                NodeDbVerdict::Agrees => kept.push(s),
                NodeDbVerdict::Mismatch { differing, judged } => {
                    out.findings.push(self.node_error(&s.node.base, &format!(
                        "node-db-mismatch: the node does not read the configured database {db}: its own DB view differs on {differing} of {judged} sampled key(s); its cache was not audited and nothing was repaired on it (pair each side's nodes with their own database)"
                    )));
                    out.not_probed.push(s.node.base.clone());
                }
            }
        }
        kept
    }
}

/// Check members, probe every node, and (with `fix`) repair and verify.
pub async fn audit_side(run: &SideRun<'_>) -> CacheOutcome {
    let expected = run.expected;
    let mut out = CacheOutcome {
        probed: expected.len(),
        ..CacheOutcome::default()
    };
    let keys = probe_keys(expected);
    let sent_before: u64 = run.nodes.iter().map(|n| n.sent()).sum();
    let live = run.probe_nodes(&keys, &mut out).await;
    let live = run.check_node_dbs(live, &mut out).await;
    out.nodes = live.len();

    // Classify each difference: stale (serves other content), missing (serves nothing), extra (serves a deleted config).
    let mut stale_findings: BTreeMap<(String, usize), Finding> = BTreeMap::new();
    for s in &live {
        let served = stream::iter(s.stale.iter().copied())
            .map(|i| {
                let node = s.node.clone();
                async move { (i, served_of(&node, &expected[i]).await) }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        for (i, r) in served {
            let e = &expected[i];
            let view = r
                .as_ref()
                .map_or(ServedView::Unreadable, |sv| ServedView::Status(sv.status));
            let (code, detail) = plan::classify(&e.md5, view);
            let mut f = Finding::new(
                code,
                Layer::L2,
                &e.key.namespace,
                &e.key.group,
                &e.key.data_id,
            );
            f.side = Some(run.side);
            f.node = Some(s.node.base.clone());
            f.expected_md5 = Some(e.md5.clone());
            f.detail = detail.to_owned();
            if !e.key.variant.is_empty() {
                f.variant = Some(e.key.variant.clone());
                f.detail = format!(
                    "{detail} (variant {}, asked for as {})",
                    e.key.variant,
                    variants::asked_as(&e.via)
                );
            }
            match r {
                Ok(sv) => f.served_md5 = Some(sv.md5),
                Err(err) => {
                    f.detail = format!("{detail}: {}", err.message);
                    // Not read is not classified: the audit is incomplete.
                    out.findings
                        .push(run.node_error(&s.node.base, &err.message));
                }
            }
            stale_findings.insert((s.node.base.clone(), i), f);
        }
    }

    if run.opts.fix {
        let touch = run.side == Side::Target || run.opts.fix_source;
        if touch {
            repair::repair_side(run, &live, &keys, &mut stale_findings, &mut out).await;
        } else {
            for f in stale_findings.values_mut() {
                f.repair = Some(Outcome::SourceUntouched.to_string());
            }
        }
    }
    out.findings.extend(stale_findings.into_values());
    // For the benchmarks (`tests/bench/l4`): what L2 cost in requests.
    let sent: u64 = run.nodes.iter().map(|n| n.sent()).sum();
    tracing::info!(
        "L2 {}: {} request(s) to {} node(s), {} key(s) each",
        run.side,
        sent.saturating_sub(sent_before),
        run.nodes.len(),
        expected.len()
    );
    out
}

mod repair;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_defaults_to_80() {
        assert_eq!(host_port("http://10.0.0.1:8848/nacos"), "10.0.0.1:8848");
        assert_eq!(host_port("http://nacos/nacos"), "nacos:80");
    }
}
