//! L4 reads: which clients listen to which configs on one node, and the md5 each client holds.
//!
//! Nacos 1.x/2.x: the node-local queries of `CommunicationController` (`GET
//! /v1/cs/communication/watcherConfigs?ip=` and `configWatchers?dataId&group&tenant`), which merge
//! the long-polling clients (`LongPollingService.getCollectSubscribleInfo*`: the md5 each client
//! polled with) and the gRPC clients (`ConfigChangeListenContext.getListenKeyMd5`: the md5 of its
//! last `ConfigBatchListenRequest`). The public `GET /v1/cs/listener` and `/v1/cs/configs/listener`
//! ask every member through `ConfigSubService` and merge the answers, which loses the node, so
//! they are not used. Nacos 3.x: `GET /v3/admin/cs/listener` and `/v3/admin/cs/config/listener`
//! with `aggregation=false` (`ListenerControllerV3`, `ConfigControllerV3#getListeners`: this node
//! only; the v1 inner paths answer 410 there). r-nacos has no listener query at all.

use super::dialect::{api_tenant, Call, Dialect, Endpoint};
use super::parse::shape::{object, Shape};
use super::{NacosNode, NodeError};
use crate::model::ConfigKey;
use serde_json::Value;

/// `(config, md5 held)` for every config one client IP listens to on a node.
pub type ByIp = Vec<(ConfigKey, String)>;

/// `(client IP, md5 held)` for every client listening to one config on a node.
pub type ByConfig = Vec<(String, String)>;

impl Dialect {
    /// The node-local query of what one client IP listens to, `None` where there is none.
    fn listeners_by_ip(self, ip: &str) -> Option<Call> {
        match self {
            Dialect::V1 => Some(
                Call::get(Endpoint::Listeners, "/v1/cs/communication/watcherConfigs")
                    .param("ip", ip),
            ),
            Dialect::V3 => Some(
                Call::get(Endpoint::Listeners, "/v3/admin/cs/listener")
                    .param("ip", ip)
                    .param("all", "true")
                    .param("aggregation", "false"),
            ),
            Dialect::RNacos => None,
        }
    }

    /// The node-local query of who listens to one config, `None` where there is none.
    fn listeners_of(self, key: &ConfigKey) -> Option<Call> {
        match self {
            Dialect::V1 => Some(
                Call::get(Endpoint::Listeners, "/v1/cs/communication/configWatchers")
                    .param("dataId", key.data_id.clone())
                    .param("group", key.group.clone())
                    .param("tenant", api_tenant(&key.namespace)),
            ),
            Dialect::V3 => Some(
                Call::get(Endpoint::Listeners, "/v3/admin/cs/config/listener")
                    .param("dataId", key.data_id.clone())
                    .param("groupName", key.group.clone())
                    .param("namespaceId", key.namespace.clone())
                    .param("aggregation", "false"),
            ),
            Dialect::RNacos => None,
        }
    }
}

impl NacosNode {
    /// Whether this node can say who listens to what (every Nacos; not r-nacos).
    pub async fn lists_listeners(&self) -> Result<bool, NodeError> {
        Ok(self.kind().await?.1.dialect() != Dialect::RNacos)
    }

    /// What one client IP (as the node records it: the remote address of a long-polling client,
    /// the `clientIp` a gRPC client declared) listens to on this node, with the md5s it holds;
    /// `None` where the server has no such query.
    pub async fn listeners_by_ip(&self, ip: &str) -> Result<Option<ByIp>, NodeError> {
        let d = self.kind().await?.1.dialect();
        let Some(call) = d.listeners_by_ip(ip) else {
            return Ok(None);
        };
        let resp = self.transport.send(&call).await?;
        let v = self.decode(d, &call, &resp)?;
        let read = || -> Shape<ByIp> {
            status_map(d, &v)?
                .into_iter()
                .map(|(k, md5)| Ok((group_key(&k)?, md5)))
                .collect()
        };
        read()
            .map(Some)
            .map_err(|e| self.transport.shape_error(&call, e))
    }

    /// Who listens to one config on this node, with the md5 each client holds; `None` where the
    /// server has no such query.
    pub async fn listeners_of(&self, key: &ConfigKey) -> Result<Option<ByConfig>, NodeError> {
        let d = self.kind().await?.1.dialect();
        let Some(call) = d.listeners_of(key) else {
            return Ok(None);
        };
        let resp = self.transport.send(&call).await?;
        let v = self.decode(d, &call, &resp)?;
        status_map(d, &v)
            .map(Some)
            .map_err(|e| self.transport.shape_error(&call, e))
    }
}

/// The string → string map of a listener answer: `lisentersGroupkeyStatus` (sic, v1
/// `SampleResult`) or `listenersStatus` (v3 `ConfigListenerInfo`); null or absent is empty.
fn status_map(d: Dialect, v: &Value) -> Shape<Vec<(String, String)>> {
    let field = if d == Dialect::V3 {
        "listenersStatus"
    } else {
        "lisentersGroupkeyStatus"
    };
    let o = object(v, "")?;
    let Some(m) = o.get(field) else {
        if o.has(field) {
            return Ok(Vec::new());
        }
        return Err(format!("`{field}` is missing"));
    };
    let m = object(m, field)?;
    let mut out = Vec::new();
    for (k, val) in m.iter() {
        match val {
            Value::String(s) => out.push((k.clone(), s.clone())),
            Value::Null => out.push((k.clone(), String::new())),
            _ => return Err(format!("`{}` is not a string", o.at(field))),
        }
    }
    Ok(out)
}

/// A group key as the server spells it (`GroupKey2.getKey`: `dataId+group[+tenant]`, each part
/// with `%` → `%25` and `+` → `%2B`); no tenant is the default namespace.
pub fn group_key(k: &str) -> Shape<ConfigKey> {
    let parts: Vec<&str> = k.split('+').collect();
    let dec = |s: &str| s.replace("%2B", "+").replace("%25", "%");
    let bad = || {
        format!(
            "group key `{}` is not dataId+group[+tenant]",
            k.escape_debug()
        )
    };
    if !(2..=3).contains(&parts.len()) || parts[0].is_empty() || parts[1].is_empty() {
        return Err(bad());
    }
    let tenant = parts.get(2).map(|t| dec(t)).unwrap_or_default();
    Ok(ConfigKey {
        namespace: crate::model::canonical_namespace(&tenant),
        group: dec(parts[1]),
        data_id: dec(parts[0]),
        variant: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_decode_as_the_server_encodes_them() {
        let k = group_key("a%2Bb%25c+G+ns-1").unwrap();
        assert_eq!(
            (k.namespace.as_str(), k.group.as_str(), k.data_id.as_str()),
            ("ns-1", "G", "a+b%c")
        );
        assert_eq!(group_key("d+G").unwrap().namespace, "public");
        assert!(group_key("only-one").is_err());
        assert!(group_key("a+b+c+d").is_err());
        assert!(group_key("+G").is_err());
    }

    #[test]
    fn listener_answers_are_read_strictly() {
        let v1 = serde_json::json!({"lisentersGroupkeyStatus": {"d+G": "abc"}});
        assert_eq!(
            status_map(Dialect::V1, &v1).unwrap(),
            vec![("d+G".to_owned(), "abc".to_owned())]
        );
        let v3 = serde_json::json!({"queryType": "ip", "listenersStatus": {}});
        assert!(status_map(Dialect::V3, &v3).unwrap().is_empty());
        assert!(status_map(Dialect::V1, &serde_json::json!({})).is_err());
        assert!(status_map(
            Dialect::V1,
            &serde_json::json!({"lisentersGroupkeyStatus": {"d+G": 1}})
        )
        .is_err());
        assert!(status_map(Dialect::V1, &serde_json::json!([])).is_err());
        let null = serde_json::json!({"lisentersGroupkeyStatus": null});
        assert!(status_map(Dialect::V1, &null).unwrap().is_empty());
    }
}
