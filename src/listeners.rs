//! Layer L4: what the applications hold. For every node of a side, which clients listen to which
//! configs and the md5 each holds (`client-stale`), and on the source, which clients still listen
//! there at all (`client-on-source`, for `decommission-ready`).
//!
//! The servers keep, per node, the md5 each listening client sent with its last poll (long
//! polling, `LongPollingService`) or listen request (gRPC, `ConfigChangeListenContext`); see
//! [`crate::nacos::listeners`] for the queries. They are asked per client IP (the IPs the node's
//! connection list names and the IPs of the instances registered in scope: cost independent of
//! the number of configs) and, while the configs in scope are at most `audit.l4_per_config_max`,
//! also per config, which finds long-polling clients whose IP nothing else names. Nothing here
//! writes anything: clients are not ours to change, and the findings name the remedy.

use crate::cancel::{Stopped, Stopper};
use crate::capture::Nodes;
use crate::diff::Scope;
use crate::finding::{Code, Finding, Layer};
use crate::model::{ConfigKey, ProbeKey, Side, SideSnapshot};
use crate::nacos::{NacosNode, NodeError, LISTENER_BATCH};
use crate::settings::Settings;
use futures::stream::{self, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// `(client IP, config)` → the md5 that client holds, on one node.
pub type Held = BTreeMap<(String, ConfigKey), String>;

/// What L4 found on the sides it ran on.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `client-stale`, `client-on-source`, and `source-error` for nodes that could not be asked.
    pub findings: Vec<Finding>,
    /// The `compared` line.
    pub compared: String,
    /// Nodes or parts that could not be looked at, as `not compared` lines.
    pub not_compared: Vec<String>,
    /// Requests made (listener queries, md5 probes, served reads), for the benchmark.
    pub requests: usize,
}

/// What one side's L4 run reads from and reports.
pub struct SideInput<'a> {
    /// Which side.
    pub side: Side,
    /// Its nodes.
    pub nodes: &'a [Arc<NacosNode>],
    /// The side's snapshot (instances for client IPs, configs for per-config queries).
    pub snap: &'a SideSnapshot,
    /// What each node should serve, by key in this side's namespace terms.
    pub expected: HashMap<ConfigKey, String>,
    /// Report `client-on-source` (the source side).
    pub on_source: bool,
}

/// Settings of a run.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// Per-config queries only up to this many configs in scope.
    pub per_config_max: u64,
    /// Requests in flight per node.
    pub concurrency: usize,
    /// Re-check stale clients after this long (0 = no re-check).
    pub settle_secs: u64,
}

/// Run L4 on the given sides.
pub async fn audit(sides: &[SideInput<'_>], scope: &Scope, opts: Opts) -> Outcome {
    let mut out = Outcome::default();
    let mut how = BTreeSet::new();
    // Who listens to what on each side, in source namespace terms (for dual subscriptions).
    let mut listening: BTreeMap<Side, BTreeSet<(String, ConfigKey)>> = BTreeMap::new();
    for s in sides {
        let keys = config_keys(s, scope);
        let per_config = u64::try_from(keys.len()).unwrap_or(u64::MAX) <= opts.per_config_max;
        how.insert(if per_config {
            "per client IP and per config"
        } else {
            "per client IP"
        });
        if !per_config {
            out.not_compared.push(format!(
                "L4 on the {}: {} configs in scope exceed audit.l4_per_config_max ({}), so nodes \
                 were asked per client IP only: a long-polling client whose IP is neither an SDK \
                 connection nor a registered instance is not seen",
                s.side,
                keys.len(),
                opts.per_config_max
            ));
        }
        let ips = instance_ips(s.snap, scope, s.side);
        let reads = futures::future::join_all(s.nodes.iter().map(|n| {
            let keys = if per_config { &keys[..] } else { &[][..] };
            read_node(n, &ips, keys, opts.concurrency)
        }))
        .await;
        for (node, read) in s.nodes.iter().zip(reads) {
            out.requests += read.requests;
            match read.held {
                Err(e) => out.findings.push(error(s.side, &node.base, &e)),
                Ok(None) => out.not_compared.push(format!(
                    "L4 on {}: the server (r-nacos) has no listener query, so the clients \
                     listening to it cannot be seen",
                    node.base
                )),
                Ok(Some(held)) => {
                    let held = in_scope(held, scope, s.side);
                    listening
                        .entry(s.side)
                        .or_default()
                        .extend(held.keys().map(|(ip, k)| {
                            let mut k = k.clone();
                            k.namespace = source_ns(&k.namespace, scope, s.side);
                            (ip.clone(), k)
                        }));
                    if s.on_source {
                        out.findings.extend(on_source(&node.base, &held));
                    }
                    match stale(node, &held, &s.expected, scope, s.side, opts).await {
                        Ok((fs, n)) => {
                            out.requests += n;
                            out.findings.extend(fs);
                        }
                        Err(e) => out.findings.push(error(s.side, &node.base, &e)),
                    }
                }
            }
        }
    }
    if let (Some(src), Some(tgt)) = (listening.get(&Side::Source), listening.get(&Side::Target)) {
        out.findings.extend(dual_subscribed(src, tgt));
    }
    out.compared = format!(
        "L4 (clients listening to each node, asked {})",
        how.into_iter().collect::<Vec<_>>().join(", ")
    );
    out
}

/// Every formal config of the side in scope, in its own namespace terms.
fn config_keys(s: &SideInput<'_>, scope: &Scope) -> Vec<ConfigKey> {
    let mut keys: BTreeSet<ConfigKey> = s.expected.keys().cloned().collect();
    if let Some(api) = &s.snap.api {
        keys.extend(
            api.configs
                .iter()
                .filter(|c| c.key.variant.is_empty())
                .map(|c| c.key.clone()),
        );
    }
    keys.into_iter()
        .filter(|k| key_in_scope(k, scope, s.side))
        .collect()
}

fn source_ns(ns: &str, scope: &Scope, side: Side) -> String {
    if side == Side::Target {
        scope.to_source(ns)
    } else {
        crate::model::canonical_namespace(ns)
    }
}

fn key_in_scope(k: &ConfigKey, scope: &Scope, side: Side) -> bool {
    scope.config_in_scope(&source_ns(&k.namespace, scope, side), &k.group, &k.data_id)
}

/// The IPs of the instances registered in scope on this side: applications that register are
/// the clients most likely to listen, whatever protocol they poll with.
fn instance_ips(snap: &SideSnapshot, scope: &Scope, side: Side) -> BTreeSet<String> {
    let Some(api) = &snap.api else {
        return BTreeSet::new();
    };
    api.services
        .iter()
        .filter(|s| {
            scope.service_in_scope(
                &source_ns(&s.key.namespace, scope, side),
                &s.key.group,
                &s.key.name,
            )
        })
        .flat_map(|s| s.instances.iter().map(|i| i.ip.clone()))
        .collect()
}

struct NodeRead {
    held: Result<Option<Held>, NodeError>,
    requests: usize,
}

/// Ask one node who listens: per client IP (connections and instances), then per config.
async fn read_node(
    node: &Arc<NacosNode>,
    instance_ips: &BTreeSet<String>,
    keys: &[ConfigKey],
    concurrency: usize,
) -> NodeRead {
    let mut requests = 0;
    let r = async {
        if !node.lists_listeners().await? {
            return Ok(None);
        }
        let mut ips = instance_ips.clone();
        requests += 1;
        if let Some(conns) = node.client_connections().await? {
            ips.extend(conns.into_iter().map(|c| c.ip));
        }
        let mut held = Held::new();
        let by_ip: Vec<_> = stream::iter(ips.iter())
            .map(|ip| async move { (ip, node.listeners_by_ip(ip).await) })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        requests += by_ip.len();
        for (ip, r) in by_ip {
            for (key, md5) in r?.unwrap_or_default() {
                held.insert((ip.clone(), key), md5);
            }
        }
        let by_key: Vec<_> = stream::iter(keys.iter())
            .map(|k| async move { (k, node.listeners_of(k).await) })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        requests += by_key.len();
        for (key, r) in by_key {
            for (ip, md5) in r?.unwrap_or_default() {
                held.insert((ip, key.clone()), md5);
            }
        }
        Ok(Some(held))
    }
    .await;
    NodeRead { held: r, requests }
}

/// Only what is in scope: another team's clients on the same node are not this audit's business.
fn in_scope(held: Held, scope: &Scope, side: Side) -> Held {
    held.into_iter()
        .filter(|((_, k), _)| key_in_scope(k, scope, side))
        .collect()
}

/// One `client-on-source` per (client IP, namespace) on a source node.
fn on_source(node: &str, held: &Held) -> Vec<Finding> {
    let mut groups: BTreeMap<(&str, &str), Vec<&ConfigKey>> = BTreeMap::new();
    for (ip, k) in held.keys() {
        groups.entry((ip, &k.namespace)).or_default().push(k);
    }
    groups
        .into_iter()
        .map(|((ip, ns), keys)| {
            let mut f = Finding::new(Code::ClientOnSource, Layer::L4, ns, "", "");
            f.instance = Some(ip.to_owned());
            f.node = Some(node.to_owned());
            f.side = Some(Side::Source);
            let sample: Vec<String> = keys
                .iter()
                .take(3)
                .map(|k| format!("{}/{}", k.group, k.data_id))
                .collect();
            f.detail = format!(
                "client {ip} still listens to {} config(s) of namespace {ns} on this source node \
                 (e.g. {}): move it to the target (its configuration, then a restart) before \
                 turning the source off",
                keys.len(),
                sample.join(", ")
            );
            f
        })
        .collect()
}

/// One `client-dual-subscribed` (information) per client IP and namespace (source terms; the
/// report is scoped by namespace) that listens to the same config on both sides (`source`, `target`: `(client IP, config)` in source namespace terms): expected
/// while an application moves, and worth knowing before the source is turned off.
#[must_use]
pub fn dual_subscribed(
    source: &BTreeSet<(String, ConfigKey)>,
    target: &BTreeSet<(String, ConfigKey)>,
) -> Vec<Finding> {
    let mut by_ip: BTreeMap<(&str, &str), Vec<&ConfigKey>> = BTreeMap::new();
    for (ip, k) in source.intersection(target) {
        by_ip.entry((ip, &k.namespace)).or_default().push(k);
    }
    by_ip
        .into_iter()
        .map(|((ip, ns), keys)| {
            let mut f = Finding::new(Code::ClientDualSubscribed, Layer::L4, ns, "", "");
            f.instance = Some(ip.to_owned());
            let sample: Vec<String> = keys.iter().take(3).map(|k| k.display()).collect();
            f.detail = format!(
                "client {ip} listens to {} config(s) on both the source and the target (e.g. {}): \
                 a dual subscription, as an application being moved has; information only, it \
                 fails no gate (while it listens on the source, `client-on-source` says so there)",
                keys.len(),
                sample.join(", ")
            );
            f
        })
        .collect()
}

/// Which held md5s the node disagrees with (the listener md5 probe, thousands per request), and
/// the md5 it serves for those keys.
async fn served_for(
    node: &NacosNode,
    entries: &[(&(String, ConfigKey), &String)],
) -> Result<(HashMap<ConfigKey, String>, usize), NodeError> {
    let mut requests = 0;
    let mut differ: BTreeSet<ConfigKey> = BTreeSet::new();
    for chunk in entries.chunks(LISTENER_BATCH) {
        let probe: Vec<ProbeKey> = chunk
            .iter()
            .map(|((_, k), md5)| ProbeKey {
                key: k.formal(),
                md5: (*md5).clone(),
            })
            .collect();
        requests += 1;
        for i in node.probe(&probe).await? {
            differ.insert(chunk[i].0 .1.clone());
        }
    }
    let mut served = HashMap::new();
    for k in differ {
        requests += 1;
        let s = node.served(&k.namespace, &k.group, &k.data_id).await?;
        served.insert(k, s.md5);
    }
    Ok((served, requests))
}

/// `client-stale` on one node: a held md5 other than the one the node serves, or than the one it
/// should serve (its DB row's, as L2 expects); re-checked after the settle window.
async fn stale(
    node: &NacosNode,
    held: &Held,
    expected: &HashMap<ConfigKey, String>,
    scope: &Scope,
    side: Side,
    opts: Opts,
) -> Result<(Vec<Finding>, usize), NodeError> {
    let entries: Vec<_> = held.iter().collect();
    let (served, mut requests) = served_for(node, &entries).await?;
    let mut found = judge(held, &served, expected);
    if !found.is_empty() && opts.settle_secs > 0 {
        // A long-polling client answered "changed" re-reads at once, a gRPC client on its
        // notification: a difference seen once may be a poll in flight.
        tokio::time::sleep(std::time::Duration::from_secs(opts.settle_secs)).await;
        let mut again = Held::new();
        let keys: BTreeSet<&ConfigKey> = found.iter().map(|s| &s.key).collect();
        for k in keys {
            requests += 1;
            for (ip, md5) in node.listeners_of(k).await?.unwrap_or_default() {
                again.insert((ip, k.clone()), md5);
            }
        }
        let entries: Vec<_> = again.iter().collect();
        let (served2, n) = served_for(node, &entries).await?;
        requests += n;
        let second = judge(&again, &served2, expected);
        found.retain(|s| second.contains(s));
    }
    let fs = found
        .into_iter()
        .map(|s| s.finding(&node.base, side, scope))
        .collect();
    Ok((fs, requests))
}

/// One client holding a config it should not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// Client IP.
    pub ip: String,
    /// The config, in its side's namespace terms.
    pub key: ConfigKey,
    /// The md5 the client holds.
    pub held: String,
    /// The md5 the node serves.
    pub served: String,
    /// The md5 the node should serve, when known.
    pub expected: Option<String>,
}

/// The clients whose held md5 differs from what the node serves (`served`: only the keys the
/// node disagreed about; any other key it serves as held) or should serve (`expected`).
#[must_use]
pub fn judge(
    held: &Held,
    served: &HashMap<ConfigKey, String>,
    expected: &HashMap<ConfigKey, String>,
) -> Vec<Stale> {
    held.iter()
        .filter_map(|((ip, k), md5)| {
            let serves = served.get(k).unwrap_or(md5);
            let should = expected.get(k);
            (serves != md5 || should.is_some_and(|e| e != md5)).then(|| Stale {
                ip: ip.clone(),
                key: k.clone(),
                held: md5.clone(),
                served: serves.clone(),
                expected: should.cloned(),
            })
        })
        .collect()
}

impl Stale {
    /// The finding, with the remedy: nothing of a client is ours to change.
    fn finding(self, node: &str, side: Side, scope: &Scope) -> Finding {
        let ns = source_ns(&self.key.namespace, scope, side);
        let mut f = Finding::new(
            Code::ClientStale,
            Layer::L4,
            &ns,
            &self.key.group,
            &self.key.data_id,
        );
        f.instance = Some(self.ip.clone());
        f.node = Some(node.to_owned());
        f.side = Some(side);
        f.served_md5 = Some(self.served.clone());
        f.expected_md5.clone_from(&self.expected);
        f.held_md5 = Some(self.held.clone());
        let show = |m: &str| if m.is_empty() { "none" } else { m }.to_owned();
        let node_fresh = self.expected.as_ref().is_none_or(|e| *e == self.served);
        let remedy = if node_fresh {
            "the node serves the right content: the client's next poll (or a restart) picks it up; \
             if it does not, the client cannot read it (permissions, a failing listener)"
        } else {
            "the node itself is stale (see cache-stale): `--fix` repairs the node first, then the \
             client's next poll picks the content up"
        };
        f.detail = format!(
            "client {} holds md5 {} on this node, which serves {}{}: {remedy}; nacos-drift never \
             changes a client",
            self.ip,
            show(&self.held),
            show(&self.served),
            self.expected
                .as_deref()
                .filter(|e| *e != self.served)
                .map(|e| format!(" (and should serve {})", show(e)))
                .unwrap_or_default()
        );
        f
    }
}

fn error(side: Side, node: &str, e: &NodeError) -> Finding {
    let mut f = Finding::new(Code::SourceError, Layer::L4, "", "", "");
    f.side = Some(side);
    f.node = Some(node.to_owned());
    f.detail = format!("{side}: reading the clients listening to the node: {e}");
    f
}

/// The sides L4 runs on for this audit: both with `audit.l4`, the source alone for
/// `decommission-ready` (clients still on the source); `None` when it does not run.
#[must_use]
pub fn sides_wanted(l4: bool, decommission: bool) -> Option<Vec<Side>> {
    if l4 {
        Some(vec![Side::Source, Side::Target])
    } else if decommission {
        Some(vec![Side::Source])
    } else {
        None
    }
}

/// The L4 stage of an audit: on the sides [`sides_wanted`] names, with each side's L2
/// expectations; `None` when L4 does not run.
#[allow(clippy::too_many_arguments)] // why: one call site in run.rs, each a different piece of the run.
pub(crate) fn stage(
    l4: bool,
    settings: &Settings,
    scope: &Scope,
    rt: &tokio::runtime::Runtime,
    stop: &Stopper,
    nodes: &Nodes,
    source: &SideSnapshot,
    target: &SideSnapshot,
) -> Result<Option<Outcome>, Stopped> {
    let decommission = settings.gate == Some(crate::settings::Gate::DecommissionReady);
    let Some(sides) = sides_wanted(l4 || settings.l4, decommission) else {
        return Ok(None);
    };
    let reference = crate::cache::expect::source_reference(source, scope);
    let inputs: Vec<SideInput<'_>> = sides
        .into_iter()
        .filter(|s| !nodes.side(*s).is_empty())
        .map(|side| {
            let snap = if side == Side::Source { source } else { target };
            let (expected, _) =
                crate::cache::expect::expected_for(snap, scope, side, reference.as_ref());
            SideInput {
                side,
                nodes: nodes.side(side),
                snap,
                expected: expected.into_iter().map(|e| (e.key, e.md5)).collect(),
                on_source: side == Side::Source,
            }
        })
        .collect();
    if inputs.is_empty() {
        return Ok(None);
    }
    let opts = Opts {
        per_config_max: settings.l4_per_config_max,
        concurrency: settings.concurrency,
        settle_secs: settings.settle_secs,
    };
    let during = "reading the clients listening to each node (L4)";
    let out = stop.run(rt, during, Layer::L4, audit(&inputs, scope, opts))?;
    // For the benchmarks (`tests/bench/l4`): what L4 cost in requests.
    tracing::info!("L4: {} request(s)", out.requests);
    Ok(Some(out))
}

#[cfg(test)]
#[path = "listeners_tests.rs"]
mod tests;
