//! Pure parsers of node answers, one per endpoint and dialect: JSON text in, model values out.
//! Nothing here does I/O, so every shape can be tested on captured answers.

use super::dialect::Dialect;
use super::{ClientConnection, Member};
use crate::model::{
    canonical_namespace, ConfigItem, ConfigKey, Instance, Namespace, Service, ServiceKey,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// A key that no one publishes, sent with a bogus md5 in every listener batch so the server
/// always has one difference to report and answers at once. Without it a server with nothing to
/// report may hold the request for the whole long-poll timeout (r-nacos 0.8.8 ignores
/// `Long-Pulling-Timeout-No-Hangup`).
pub const CANARY_DATA_ID: &str = "nacos-drift.probe-canary";

/// The answer as JSON.
pub fn json(body: &str) -> Result<Value, String> {
    serde_json::from_str(body)
        .map_err(|e| format!("response is not valid JSON ({e}); truncated body?"))
}

/// The `data` of a v3 admin answer (`{"code": 0, "message": ..., "data": ...}`).
pub fn envelope(body: &str) -> Result<Value, String> {
    let v = json(body)?;
    if v.get("code").and_then(Value::as_i64) == Some(0) {
        return Ok(v.get("data").cloned().unwrap_or(Value::Null));
    }
    Err(format!(
        "answer is not a v3 success (`code` is not 0): {}",
        super::transport::snippet(body)
    ))
}

/// The answer of a dialect: v3 in its envelope, the others plain.
pub fn answer(dialect: Dialect, body: &str) -> Result<Value, String> {
    match dialect {
        Dialect::V3 => envelope(body),
        Dialect::V1 | Dialect::RNacos => json(body),
    }
}

/// Token and its time to live (seconds) from a login answer.
pub fn login(body: &str) -> Result<(String, u64), String> {
    let v: Value = serde_json::from_str(body)
        .map_err(|_| "login answered with something that is not JSON".to_owned())?;
    let Some(tok) = v.get("accessToken").and_then(Value::as_str) else {
        return Err("login answered without an accessToken".into());
    };
    let ttl = v.get("tokenTtl").and_then(Value::as_u64).unwrap_or(18_000);
    Ok((tok.to_owned(), ttl))
}

/// The version in a server state answer (v1 plain, v3 the envelope's `data`).
#[must_use]
pub fn state_version(state: &Value) -> String {
    state
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned()
}

pub(super) fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Namespaces of a namespace list answer (`data` of v1 `/v1/console/namespaces`, the v3 `data`).
pub fn namespaces(dialect: Dialect, answer: &Value) -> Result<Vec<Namespace>, String> {
    let list = match dialect {
        // An answer of another shape must not read as "no namespaces".
        Dialect::V3 => answer
            .as_array()
            .cloned()
            .ok_or_else(|| "`data` is not a list".to_owned())?,
        Dialect::V1 | Dialect::RNacos => answer
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    let mut out: Vec<Namespace> = list
        .iter()
        .map(|n| Namespace {
            id: canonical_namespace(str_field(n, "namespace")),
            name: str_field(n, "namespaceShowName").to_owned(),
            desc: str_field(n, "namespaceDesc").to_owned(),
        })
        .collect();
    crate::model::normalise_namespaces(&mut out);
    Ok(out)
}

/// One page of a listing: the server's total and this page's items.
#[derive(Debug)]
pub struct Page<T> {
    /// `totalCount` / `count` as the server gives it.
    pub total: u64,
    /// This page's items.
    pub items: Vec<T>,
}

/// A config list page: v1 items carry content, v3 items do not (the detail brings it).
pub fn config_page(
    dialect: Dialect,
    answer: &Value,
    namespace: &str,
) -> Result<Page<ConfigItem>, String> {
    let group_field = if dialect == Dialect::V3 {
        "groupName"
    } else {
        "group"
    };
    let total = answer
        .get("totalCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let items = answer
        .get("pageItems")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|it| ConfigItem {
            key: ConfigKey {
                namespace: canonical_namespace(namespace),
                group: str_field(it, group_field).to_owned(),
                data_id: str_field(it, "dataId").to_owned(),
                variant: String::new(),
            },
            md5: String::new(),
            content: it.get("content").and_then(Value::as_str).map(str::to_owned),
            r#type: str_field(it, "type").to_owned(),
            app: str_field(it, "appName").to_owned(),
            desc: String::new(),
            tags: Vec::new(),
            modified_ms: None,
        })
        .collect();
    Ok(Page { total, items })
}

/// Fill desc and tags (and on 3.x content) from a config detail answer. `Ok(false)`: the answer
/// is not a detail view (servers without `show=all` answer the plain content).
pub fn config_detail(dialect: Dialect, body: &str, item: &mut ConfigItem) -> Result<bool, String> {
    let d = match dialect {
        Dialect::V3 => envelope(body)?,
        Dialect::V1 | Dialect::RNacos => {
            let Ok(v) = serde_json::from_str::<Value>(body) else {
                return Ok(false);
            };
            if v.get("dataId").is_none() {
                return Ok(false);
            }
            v
        }
    };
    if dialect == Dialect::V3 {
        item.content = d.get("content").and_then(Value::as_str).map(str::to_owned);
    }
    item.desc = str_field(&d, "desc").to_owned();
    item.tags = tags_of(str_field(&d, "configTags"));
    Ok(true)
}

/// A service list page as `(group, name)` pairs: v1 `serviceList`/`count`, v3 `pageItems`/`totalCount`.
pub fn service_page(dialect: Dialect, answer: &Value) -> Result<Page<(String, String)>, String> {
    let (list_field, count_field) = if dialect == Dialect::V3 {
        ("pageItems", "totalCount")
    } else {
        ("serviceList", "count")
    };
    let total = answer.get(count_field).and_then(Value::as_u64).unwrap_or(0);
    let items = answer
        .get(list_field)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|s| {
            let group = s
                .get("groupName")
                .and_then(Value::as_str)
                .unwrap_or("DEFAULT_GROUP")
                .to_owned();
            let name = str_field(s, "name");
            let name = name.split_once("@@").map_or(name, |(_, n)| n).to_owned();
            (group, name)
        })
        .collect();
    Ok(Page { total, items })
}

/// Cluster names of a v1 service detail (empty: one unnamed cluster).
#[must_use]
pub fn service_clusters(detail: &Value) -> Vec<String> {
    detail
        .get("clusters")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An instance page of one cluster (v1 catalog: `list`/`count`) or all instances (v3: a list).
pub fn instance_page(
    dialect: Dialect,
    answer: &Value,
    cluster: &str,
) -> Result<Page<Instance>, String> {
    let (list, total) = match dialect {
        Dialect::V3 => {
            let list = answer
                .as_array()
                .ok_or_else(|| "response is not a JSON list; truncated body?".to_owned())?;
            (list.as_slice(), list.len() as u64)
        }
        Dialect::V1 | Dialect::RNacos => (
            answer
                .get("list")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice),
            answer.get("count").and_then(Value::as_u64).unwrap_or(0),
        ),
    };
    Ok(Page {
        total,
        items: list.iter().map(|i| instance(i, cluster)).collect(),
    })
}

/// Metadata may come as a JSON object or (r-nacos catalog) as a JSON string of one.
fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let obj = match v {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => {
            serde_json::from_str::<serde_json::Map<String, Value>>(s).unwrap_or_default()
        }
        _ => serde_json::Map::new(),
    };
    obj.into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, s)
        })
        .collect()
}

fn instance(i: &Value, cluster: &str) -> Instance {
    let cl = i
        .get("clusterName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(if cluster.is_empty() {
            "DEFAULT"
        } else {
            cluster
        });
    Instance {
        cluster: cl.to_owned(),
        ip: str_field(i, "ip").to_owned(),
        port: i
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        weight: i.get("weight").and_then(Value::as_f64).unwrap_or(1.0),
        healthy: i.get("healthy").and_then(Value::as_bool).unwrap_or(true),
        enabled: i.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        ephemeral: i.get("ephemeral").and_then(Value::as_bool).unwrap_or(true),
        metadata: string_map(i.get("metadata")),
    }
}

/// A service from its detail (v1 or v3: the same field names) and its instances, which are
/// sorted and deduplicated by (cluster, ip, port): pages can overlap while instances change.
#[must_use]
pub fn service(
    namespace: &str,
    group: &str,
    name: &str,
    detail: &Value,
    mut instances: Vec<Instance>,
) -> Service {
    instances.sort_by(|a, b| (&a.cluster, &a.ip, a.port).cmp(&(&b.cluster, &b.ip, b.port)));
    instances.dedup_by(|a, b| (&a.cluster, &a.ip, a.port) == (&b.cluster, &b.ip, b.port));
    Service {
        key: ServiceKey {
            namespace: canonical_namespace(namespace),
            group: group.to_owned(),
            name: name.to_owned(),
        },
        protect_threshold: detail
            .get("protectThreshold")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        metadata: string_map(detail.get("metadata")),
        selector: selector_of(detail.get("selector")),
        instances,
    }
}

/// Members as `/v1/core/cluster/nodes` (`data`) and `/v3/admin/core/cluster/node/list` list them.
pub fn members(dialect: Dialect, answer: &Value) -> Result<Vec<Member>, String> {
    let list = match dialect {
        Dialect::V3 => answer.as_array(),
        Dialect::V1 | Dialect::RNacos => answer.get("data").and_then(Value::as_array),
    }
    .map_or(&[][..], Vec::as_slice);
    Ok(list
        .iter()
        .map(|m| Member {
            address: m.get("address").and_then(Value::as_str).map_or_else(
                || {
                    format!(
                        "{}:{}",
                        str_field(m, "ip"),
                        m.get("port").and_then(Value::as_u64).unwrap_or(0)
                    )
                },
                str::to_owned,
            ),
            state: str_field(m, "state").to_owned(),
        })
        .collect())
}

/// The SDK connections of a `/v2/core/loader/current` answer (3.x: the same map in the
/// envelope), sorted by id; connections from other cluster members are left out.
pub fn connections(answer: &Value) -> Result<Vec<ClientConnection>, String> {
    let map = answer
        .as_object()
        .ok_or_else(|| "expected a JSON object of connections".to_owned())?;
    let mut out: Vec<ClientConnection> = map
        .iter()
        .filter_map(|(id, c)| {
            let meta = c.get("metaInfo").unwrap_or(c);
            let source = meta
                .get("labels")
                .or_else(|| c.get("labels"))
                .and_then(|l| l.get("source"))
                .and_then(Value::as_str);
            // Members connect to each other with source=cluster; SDKs say source=sdk.
            if source == Some("cluster") || meta.get("clusterSource") == Some(&Value::Bool(true)) {
                return None;
            }
            let text = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let app = text("appName");
            Some(ClientConnection {
                id: id.clone(),
                ip: text("clientIp"),
                app: if app.is_empty() { "-".into() } else { app },
                version: text("version"),
                namespace: match text("tenant").as_str() {
                    "" | "null" => String::new(),
                    t => canonical_namespace(t),
                },
                since: text("createTime"),
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The `Listening-Configs` body for `(namespace, group, dataId, md5)` entries, the canary last.
#[must_use]
pub fn listening_configs(keys: &[(String, String, String, String)]) -> String {
    let mut body = String::with_capacity(keys.len() * 64 + 64);
    for (ns, group, data_id, md5) in keys {
        let tenant = super::dialect::api_tenant(ns);
        body.push_str(data_id);
        body.push('\u{2}');
        body.push_str(group);
        body.push('\u{2}');
        body.push_str(md5);
        if !tenant.is_empty() {
            body.push('\u{2}');
            body.push_str(&tenant);
        }
        body.push('\u{1}');
    }
    body.push_str(CANARY_DATA_ID);
    body.push_str("\u{2}DEFAULT_GROUP\u{2}0\u{1}");
    body
}

/// The indices (into `keys`) a listener answer names as changed, sorted; an answer without the
/// canary cannot be trusted (not a Nacos listener, or cut short).
pub fn listener(
    keys: &[(String, String, String, String)],
    answer: &str,
) -> Result<Vec<usize>, String> {
    let index: std::collections::HashMap<(String, &str, &str), usize> = keys
        .iter()
        .enumerate()
        .map(|(i, (ns, g, d, _))| ((super::dialect::api_tenant(ns), g.as_str(), d.as_str()), i))
        .collect();
    let decoded = urlencoding::decode(answer.trim())
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| answer.to_owned());
    let mut out = Vec::new();
    let mut canary = false;
    for entry in decoded.split('\u{1}').filter(|e| !e.is_empty()) {
        let parts: Vec<&str> = entry.split('\u{2}').collect();
        if parts.len() < 2 {
            continue;
        }
        if parts[0] == CANARY_DATA_ID {
            canary = true;
            continue;
        }
        let tenant = parts.get(2).copied().unwrap_or("");
        if let Some(i) = index.get(&(tenant.to_owned(), parts[1], parts[0])) {
            out.push(*i);
        } else if tenant == "public" {
            // 3.x names the default namespace `public` in its answer.
            if let Some(i) = index.get(&(String::new(), parts[1], parts[0])) {
                out.push(*i);
            }
        }
    }
    if !canary {
        return Err(
            "answer did not include the canary key: cannot trust it (not a Nacos listener?)".into(),
        );
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `configTags` ("a,b") as a sorted list.
fn tags_of(s: &str) -> Vec<String> {
    let mut tags: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}

/// A service selector, "" for none (2.x sends `null` or `{"type": "none"}`; 3.x adds
/// `contextType: NONE`).
fn selector_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::Null) | None => String::new(),
        Some(s) => {
            let t = s.get("type").and_then(Value::as_str).unwrap_or("");
            if t.is_empty() || t == "none" {
                String::new()
            } else {
                s.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_out_cluster_members_and_map_the_namespace() {
        // Shape as Nacos 2.3.2 answers `/v2/core/loader/current` (trimmed).
        let v: Value = serde_json::from_str(
            r#"{
              "1795753780583_127.0.0.1_47856": {"metaInfo": {"connectType": "GRPC", "clientIp": "192.0.2.2",
                 "version": "Nacos-Java-Client:v2.3.2", "appName": "-", "tenant": null,
                 "labels": {"source": "cluster"}, "clusterSource": true}},
              "1795753780999_127.0.0.1_50000": {"metaInfo": {"connectType": "GRPC", "clientIp": "10.0.0.5",
                 "version": "Nacos-Java-Client:v2.3.2", "appName": "orders", "tenant": "",
                 "createTime": "2026-11-27T04:29:40.684+00:00", "labels": {"source": "sdk", "module": "naming"}}}
            }"#,
        )
        .unwrap();
        let c = connections(&v).unwrap();
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].ip, "10.0.0.5");
        assert_eq!(c[0].app, "orders");
        assert_eq!(c[0].namespace, "", "no tenant: any namespace");
    }

    #[test]
    fn the_listener_answer_maps_back_to_keys_and_needs_the_canary() {
        let keys = vec![
            (
                "public".to_owned(),
                "G".to_owned(),
                "a".to_owned(),
                "m1".to_owned(),
            ),
            (
                "prod".to_owned(),
                "G".to_owned(),
                "b".to_owned(),
                "m2".to_owned(),
            ),
        ];
        let body = listening_configs(&keys);
        assert!(body.starts_with("a\u{2}G\u{2}m1\u{1}b\u{2}G\u{2}m2\u{2}prod\u{1}"));
        // As 3.x answers: the default namespace named `public`, URL-encoded separators.
        let answer = format!("a%02G%02public%01b%02G%02prod%01{CANARY_DATA_ID}%02DEFAULT_GROUP%01");
        assert_eq!(listener(&keys, &answer).unwrap(), vec![0, 1]);
        assert!(listener(&keys, "a%02G%01").is_err());
    }
}
