//! Asking a node for a beta, tag or gray variant as a client its rule matches would, and reloading
//! one variant from the node's DB (see `cache::variants` for which node versions allow what).
//!
//! The caller's IP is read from `X-Forwarded-For` first (`RequestUtil.getRemoteIp`, 2.x and 3.x),
//! so a beta variant is asked for with that header; a tag with `Vipserver-Tag` on the listener
//! (`MD5Util.compareMd5`, `NacosMd5Comparator`) and the `tag` parameter on the GET
//! (`ConfigServletInner.doGetConfig`).

use super::dialect::{Call, Dialect};
use super::{NacosNode, NodeError, Served};

/// How a node is asked for one key: as a plain client (the formal config), or as a client the
/// variant's rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Via {
    /// No header: the formal config (for a caller outside every beta IP list and gray rule).
    #[default]
    Formal,
    /// `X-Forwarded-For: <ip>`, an IP of the beta list.
    ClientIp(String),
    /// `Vipserver-Tag: <tag>` on the listener, `tag=<tag>` on the GET.
    Tag(String),
}

impl Via {
    fn on_listener(&self, mut call: Call) -> Call {
        match self {
            Via::Formal => {}
            Via::ClientIp(ip) => call.headers.push(("X-Forwarded-For".into(), ip.clone())),
            Via::Tag(t) => call.headers.push(("Vipserver-Tag".into(), t.clone())),
        }
        call
    }

    fn on_get(&self, mut call: Call) -> Call {
        match self {
            Via::Tag(t) => call.params.push(("tag", t.clone())),
            other => call = other.on_listener(call),
        }
        call
    }
}

impl NacosNode {
    /// [`NacosNode::probe`] as a client `via` picks: every key of `keys` is compared with the md5
    /// the node serves that client.
    pub async fn probe_via(
        &self,
        keys: &[crate::model::ProbeKey],
        via: &Via,
    ) -> Result<Vec<usize>, NodeError> {
        if *via == Via::Formal {
            return self.probe(keys).await;
        }
        let call = via.on_listener(Dialect::listener(super::parse::listening_configs(keys)));
        let resp = self.transport.send(&call).await?;
        if resp.status != 200 {
            return Err(self.transport.status_error(&call, &resp));
        }
        super::parse::listener(keys, &resp.body).map_err(|e| self.transport.shape_error(&call, e))
    }

    /// [`NacosNode::served`] as a client `via` picks.
    pub async fn served_via(
        &self,
        namespace: &str,
        group: &str,
        data_id: &str,
        via: &Via,
    ) -> Result<Served, NodeError> {
        if *via == Via::Formal {
            return self.served(namespace, group, data_id).await;
        }
        let call = via.on_get(Dialect::served(namespace, group, data_id));
        self.read_served(&call).await
    }

    /// Reload one variant through the HTTP `dataChange` endpoint (Nacos ≤ 2.2.0): header
    /// `isBeta: true` for the beta, parameter `tag` for a tag
    /// (`CommunicationController.notifyConfigInfo`).
    pub async fn data_change_variant(
        &self,
        key: &crate::model::ConfigKey,
        identity: Option<(&str, &str)>,
    ) -> Result<(), NodeError> {
        let now = u128::try_from(crate::clock::now_ms()).unwrap_or(0);
        let mut call = Dialect::data_change(&key.namespace, &key.group, &key.data_id, now);
        match key.variant.split_once(':') {
            None if key.variant == "beta" => call.headers.push(("isBeta".into(), "true".into())),
            Some(("tag", t)) => call.params.push(("tag", t.to_owned())),
            _ => {
                return Err(NodeError {
                    message: format!(
                        "{}: no dataChange form for variant `{}`",
                        self.base, key.variant
                    ),
                    transient: false,
                    status: None,
                })
            }
        }
        call.headers
            .extend(identity.map(|(k, v)| (k.to_owned(), v.to_owned())));
        let resp = self.transport.send(&call).await?;
        if resp.status != 200 {
            return Err(self.transport.status_error(&call, &resp));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_is_asked_for_with_the_header_or_parameter_its_rule_matches() {
        let listener = || Dialect::listener(String::new());
        let get = || Dialect::served("ns", "G", "d");
        let ip = Via::ClientIp("10.1.2.3".into());
        let tag = Via::Tag("blue".into());
        assert!(ip
            .on_listener(listener())
            .headers
            .contains(&("X-Forwarded-For".into(), "10.1.2.3".into())));
        assert!(ip
            .on_get(get())
            .headers
            .contains(&("X-Forwarded-For".into(), "10.1.2.3".into())));
        assert!(tag
            .on_listener(listener())
            .headers
            .contains(&("Vipserver-Tag".into(), "blue".into())));
        let g = tag.on_get(get());
        assert!(g.params.contains(&("tag", "blue".into())));
        assert!(!g.headers.iter().any(|(k, _)| k == "Vipserver-Tag"));
        assert_eq!(
            Via::Formal.on_listener(listener()).headers,
            listener().headers
        );
    }
}
