//! The decommission check: SDK clients still connected to the source's nodes.
//!
//! Turning off a source that clients still use breaks them, so `--gate decommission-ready` also
//! asks every source node for its SDK connections. Only Nacos ≥ 2.0 lists them; for servers that
//! do not (1.x, r-nacos) the report says the check could not be made instead of passing it.

use crate::capture::NamespaceFilter;
use crate::finding::{Code, Finding, Layer};
use crate::nacos::{ClientConnection, NacosNode};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the check found on one side's nodes.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `client-connected` findings, and `source-error` for nodes that could not be asked.
    pub findings: Vec<Finding>,
    /// Nodes that cannot list connections, as `not_compared` lines.
    pub not_checked: Vec<String>,
}

/// Ask every node for its SDK connections; connections set up for a namespace outside `wanted`
/// are left out, and those that name none are kept (they may serve any namespace). One finding per (node, namespace, app, client IP), with its connection count.
pub async fn check(nodes: &[Arc<NacosNode>], wanted: &NamespaceFilter) -> Outcome {
    let answers = futures::future::join_all(
        nodes
            .iter()
            .map(|n| async move { (n.base.clone(), n.client_connections().await) }),
    )
    .await;
    let mut out = Outcome::default();
    for (node, answer) in answers {
        match answer {
            Ok(Some(conns)) => {
                out.findings.extend(findings_of(
                    &node,
                    conns
                        .into_iter()
                        .filter(|c| c.namespace.is_empty() || wanted(&c.namespace)),
                ));
            }
            Ok(None) => out.not_checked.push(format!(
                "connected clients on {node}: the server does not list client connections \
                 (Nacos 1.x or r-nacos), so clients still using it cannot be ruled out"
            )),
            Err(e) => {
                let mut f = Finding::new(Code::SourceError, Layer::L3, "", "", "");
                f.side = Some(crate::model::Side::Source);
                f.node = Some(node.clone());
                f.detail = format!("source: listing connected clients: {e}");
                out.findings.push(f);
            }
        }
    }
    out
}

/// Group one node's connections by (namespace, app, IP): an app holds one connection per
/// module (config, naming), which is one client to move, not two.
fn findings_of(node: &str, conns: impl Iterator<Item = ClientConnection>) -> Vec<Finding> {
    let mut groups: BTreeMap<(String, String, String), Vec<ClientConnection>> = BTreeMap::new();
    for c in conns {
        groups
            .entry((c.namespace.clone(), c.app.clone(), c.ip.clone()))
            .or_default()
            .push(c);
    }
    groups
        .into_iter()
        .map(|((namespace, app, ip), cs)| {
            let mut f = Finding::new(Code::ClientConnected, Layer::L3, &namespace, "", &app);
            f.instance = Some(ip.clone());
            f.node = Some(node.to_owned());
            f.side = Some(crate::model::Side::Source);
            let versions: Vec<&str> = {
                let mut v: Vec<&str> = cs.iter().map(|c| c.version.as_str()).collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            let since = cs.iter().map(|c| c.since.as_str()).min().unwrap_or("");
            f.detail = format!(
                "{} SDK connection(s) from {ip} (app {app}, {}) to this source node, the oldest since {since}: \
                 this client still uses the source",
                cs.len(),
                versions.join(", ")
            );
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, ip: &str, app: &str, ns: &str) -> ClientConnection {
        ClientConnection {
            id: id.into(),
            ip: ip.into(),
            app: app.into(),
            version: "Nacos-Java-Client:v2.3.2".into(),
            namespace: ns.into(),
            since: format!("2026-11-27T0{id}:00:00Z"),
        }
    }

    #[test]
    fn one_finding_per_client_not_per_module_connection() {
        let f = findings_of(
            "http://n1:8848/nacos",
            vec![
                conn("1", "10.0.0.5", "orders", "prod"),
                conn("2", "10.0.0.5", "orders", "prod"),
                conn("3", "10.0.0.6", "orders", "prod"),
            ]
            .into_iter(),
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].instance.as_deref(), Some("10.0.0.5"));
        assert!(f[0].detail.starts_with("2 SDK connection(s) from 10.0.0.5"));
        assert!(f[0].detail.contains("since 2026-11-27T01:00:00Z"));
        assert_eq!(f[1].code, Code::ClientConnected);
        assert_eq!(f[1].side, Some(crate::model::Side::Source));
    }
}
