//! Per-key cache reloads: the cluster gRPC sync hook and the rate-limited per-key loop.

use super::plan::Mechanism;
use super::Expected;
use crate::model::ConfigKey;
use crate::nacos::NacosNode;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future, for the gRPC hook.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A per-key cluster gRPC reload: ask the node at `base` (its HTTP base URL, running Nacos
/// `version`) to reload one key from its DB.
pub trait GrpcSync {
    /// Reload one key on one node.
    fn sync<'a>(
        &'a self,
        base: &'a str,
        version: &'a str,
        key: &'a ConfigKey,
        identity: Option<(&'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The cluster gRPC reload over one registered connection per node, opened on first use.
pub struct GrpcSyncer {
    nodes: tokio::sync::Mutex<std::collections::HashMap<String, Arc<crate::nacos::grpc::GrpcNode>>>,
    timeout: Duration,
    /// The rustls client config of each `https://` node, by its base URL: its channel is TLS.
    tls: std::collections::HashMap<String, Arc<rustls::ClientConfig>>,
}

impl GrpcSyncer {
    /// The syncer of a run: its timeout, and a TLS channel with its side's trust for each
    /// `https://` node.
    #[must_use]
    pub fn for_settings(settings: &crate::settings::Settings) -> Self {
        Self::new(
            Duration::from_secs(settings.timeout_secs),
            crate::settings::tls::nacos_configs_by_node(settings),
        )
    }

    /// A syncer whose every step is bounded by `timeout`; `tls` gives the rustls client config
    /// of each `https://` node by its base URL (the side's, as for its HTTPS API).
    #[must_use]
    pub fn new(
        timeout: Duration,
        tls: std::collections::HashMap<String, Arc<rustls::ClientConfig>>,
    ) -> Self {
        GrpcSyncer {
            nodes: tokio::sync::Mutex::new(std::collections::HashMap::new()),
            timeout,
            tls,
        }
    }
}

impl GrpcSync for GrpcSyncer {
    fn sync<'a>(
        &'a self,
        base: &'a str,
        version: &'a str,
        key: &'a ConfigKey,
        identity: Option<(&'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let node = {
                let mut nodes = self.nodes.lock().await;
                match nodes.get(base) {
                    Some(n) if n.is_alive().await => n.clone(),
                    _ => {
                        let addr = crate::nacos::grpc::cluster_grpc_addr(base)?;
                        // An `https://` node gets a TLS channel with its side's trust, never a
                        // plain one: the request makes the node act and carries the identity.
                        let tls = if base.starts_with("https://") {
                            Some(self.tls.get(base).cloned().ok_or_else(|| {
                                format!("Nacos gRPC {addr}: no TLS client configuration for {base}")
                            })?)
                        } else {
                            None
                        };
                        let n = Arc::new(
                            crate::nacos::grpc::GrpcNode::connect_tls(
                                &addr,
                                tls,
                                version,
                                identity,
                                self.timeout,
                            )
                            .await?,
                        );
                        nodes.insert(base.to_owned(), n.clone());
                        n
                    }
                }
            };
            node.sync_variant(
                &key.data_id,
                &key.group,
                &key.namespace,
                &key.variant,
                crate::clock::now_ms(),
            )
            .await
        })
    }
}

/// After this many failed keys in a row a node is given up on: it is down or refusing.
const GIVE_UP_AFTER: usize = 3;

/// Reload keys one by one with a per-key mechanism, rate-limited. Returns each key's result;
/// keys not attempted because the node kept failing carry that as their error.
#[allow(clippy::too_many_arguments)] // why: one node's repair context; a struct would only rename it.
pub async fn per_key(
    node: &NacosNode,
    version: &str,
    idx: &[usize],
    expected: &[Expected],
    mech: Mechanism,
    id: Option<(&str, &str)>,
    grpc: Option<&(dyn GrpcSync + Sync)>,
    pause: Duration,
) -> Vec<(usize, Result<(), String>)> {
    let mut out = Vec::with_capacity(idx.len());
    let mut failed_in_a_row = 0;
    for (n, i) in idx.iter().enumerate() {
        if failed_in_a_row >= GIVE_UP_AFTER {
            let why = format!(
                "not attempted: the node failed {GIVE_UP_AFTER} reloads in a row ({})",
                out.iter()
                    .rev()
                    .find_map(|(_, r): &(usize, Result<(), String>)| r.as_ref().err())
                    .cloned()
                    .unwrap_or_default()
            );
            out.extend(idx[n..].iter().map(|j| (*j, Err(why.clone()))));
            break;
        }
        let k = &expected[*i].key;
        let r = match mech {
            Mechanism::DataChange if k.variant.is_empty() => node
                .data_change(&k.namespace, &k.group, &k.data_id, id)
                .await
                .map_err(|e| e.message),
            Mechanism::DataChange => node.data_change_variant(k, id).await.map_err(|e| e.message),
            Mechanism::GrpcSync => match grpc {
                Some(g) => g.sync(&node.base, version, k, id).await,
                None => Err("gRPC sync not available".into()),
            },
            other => Err(format!("no per-key mechanism `{other}`")),
        };
        if r.is_err() {
            failed_in_a_row += 1;
        } else {
            failed_in_a_row = 0;
        }
        out.push((*i, r));
        tokio::time::sleep(pause).await;
    }
    out
}
