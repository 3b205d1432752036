//! Parsers of the naming and core answers: service list pages, service detail, instances,
//! cluster members and SDK connections.

use super::shape::{index, list, object, Obj, Shape};
use super::Page;
use crate::model::{canonical_namespace, Instance, Service, ServiceKey};
use crate::nacos::dialect::Dialect;
use crate::nacos::{ClientConnection, Member};
use serde_json::Value;
use std::collections::BTreeMap;

/// A service list page as `(group, name)` pairs: v1 `{"count", "serviceList"}` (Nacos
/// `CatalogController#listDetail`, r-nacos `OpsServiceOptQueryListResponse`), v3
/// `Page<ServiceView>` in the envelope.
pub fn service_page(dialect: Dialect, answer: &Value) -> Shape<Page<(String, String)>> {
    let (o, list_field, count_field) = match dialect {
        Dialect::V3 => (object(answer, "data")?, "pageItems", "totalCount"),
        Dialect::V1 | Dialect::RNacos => (object(answer, "")?, "serviceList", "count"),
    };
    let total = o.count(count_field)?;
    let mut items = Vec::new();
    for (i, s) in o.list(list_field)?.iter().enumerate() {
        let s = object(s, &index(&o.at(list_field), i))?;
        let name = s.str("name")?;
        let name = name.split_once("@@").map_or(name, |(_, n)| n);
        let group = match s.opt_str("groupName")? {
            "" => "DEFAULT_GROUP",
            g => g,
        };
        items.push((group.to_owned(), name.to_owned()));
    }
    Ok(Page {
        total,
        items,
        without_desc: false,
    })
}

/// A service as a list page with instances gives it: `(group, name)` and its instances.
pub type Listed = ((String, String), Vec<Instance>);

/// A v3 service list page read with `withInstances=true` (`ServiceControllerV3#list` →
/// `CatalogServiceV2Impl#pageListServiceDetail`): per service its group, name and every instance
/// of every cluster (`clusterMap.<cluster>.hosts`, from the same `ServiceStorage.getData` as
/// `/v3/admin/ns/instance/list`, which without `clusterName` answers the `DEFAULT` cluster only).
/// It leaves out protect threshold, selector and cluster metadata: those stay with the detail.
pub fn service_page_with_instances(answer: &Value) -> Shape<Page<Listed>> {
    let o = object(answer, "data")?;
    let total = o.count("totalCount")?;
    let mut items = Vec::new();
    for (i, s) in o.list("pageItems")?.iter().enumerate() {
        let s = object(s, &index(&o.at("pageItems"), i))?;
        let name = s.str("serviceName")?;
        let name = name.split_once("@@").map_or(name, |(_, n)| n);
        let group = match s.opt_str("groupName")? {
            "" => "DEFAULT_GROUP",
            g => g,
        };
        let mut instances = Vec::new();
        // A service without instances has an empty (or null) cluster map.
        if s.get("clusterMap").is_some() {
            let clusters = s.object("clusterMap")?;
            for (cluster, c) in clusters.iter() {
                let at = clusters.at(cluster);
                let c = object(c, &at)?;
                if c.get("hosts").is_none() {
                    continue;
                }
                for (j, h) in c.list("hosts")?.iter().enumerate() {
                    instances.push(instance(&object(h, &index(&c.at("hosts"), j))?, cluster)?);
                }
            }
        }
        items.push(((group.to_owned(), name.to_owned()), instances));
    }
    Ok(Page {
        total,
        items,
        without_desc: false,
    })
}

/// What a service detail says besides its instances.
#[derive(Debug, Default)]
pub struct ServiceDetail {
    /// Protect threshold.
    pub protect_threshold: f64,
    /// Service metadata.
    pub metadata: BTreeMap<String, String>,
    /// Selector, "" for none.
    pub selector: String,
    /// Cluster names (v1; empty on 3.x, whose instance list is not per cluster).
    pub clusters: Vec<String>,
}

/// A service detail: v1 (Nacos `ServiceController#detail`, r-nacos `ServiceInfoVo`) with
/// `name` and `clusters`, v3 `ServiceDetailInfo` in the envelope with `serviceName`. It must be
/// the service asked for.
pub fn service_detail(dialect: Dialect, answer: &Value, name: &str) -> Shape<ServiceDetail> {
    let (o, name_field) = match dialect {
        Dialect::V3 => (object(answer, "data")?, "serviceName"),
        Dialect::V1 | Dialect::RNacos => (object(answer, "")?, "name"),
    };
    let got = o.str(name_field)?;
    if got.split_once("@@").map_or(got, |(_, n)| n) != name {
        return Err(format!(
            "`{}` is `{}`, not the service `{name}` asked for",
            o.at(name_field),
            super::super::transport::snippet(got)
        ));
    }
    let protect_threshold = match o.raw("protectThreshold") {
        Some(v) => v.as_f64().ok_or_else(|| {
            format!(
                "`{}` is {}, not a number",
                o.at("protectThreshold"),
                super::shape::kind(v)
            )
        })?,
        None => return Err(format!("`{}` is missing", o.at("protectThreshold"))),
    };
    let mut clusters = Vec::new();
    if dialect != Dialect::V3 {
        for (i, c) in o.list("clusters")?.iter().enumerate() {
            clusters.push(
                object(c, &index(&o.at("clusters"), i))?
                    .str("name")?
                    .to_owned(),
            );
        }
    }
    Ok(ServiceDetail {
        protect_threshold,
        metadata: o.string_map("metadata")?,
        selector: selector_of(&o)?,
        clusters,
    })
}

/// A service selector, "" for none (2.x sends `null` or `{"type": "none"}`; 3.x adds
/// `contextType: NONE`; r-nacos an object of strings, often empty).
fn selector_of(o: &Obj<'_>) -> Shape<String> {
    match o.get("selector") {
        None => Ok(String::new()),
        Some(s @ Value::Object(m)) => {
            let t = m.get("type").and_then(Value::as_str).unwrap_or("");
            Ok(if t.is_empty() || t == "none" {
                String::new()
            } else {
                s.to_string()
            })
        }
        Some(other) => Err(format!(
            "`{}` is {}, not an object",
            o.at("selector"),
            super::shape::kind(other)
        )),
    }
}

/// An instance page of one cluster (v1 catalog `{"count", "list"}`: Nacos
/// `CatalogController#instanceList`, r-nacos `OpsQueryServiceInstanceListResponse`) or every
/// instance at once (v3: the envelope's `data` list).
pub fn instance_page(dialect: Dialect, answer: &Value, cluster: &str) -> Shape<Page<Instance>> {
    let (items, total, path) = match dialect {
        Dialect::V3 => {
            let l = list(answer, "data")?;
            (l, l.len() as u64, "data".to_owned())
        }
        Dialect::V1 | Dialect::RNacos => {
            let o = object(answer, "")?;
            (o.list("list")?, o.count("count")?, "list".to_owned())
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        out.push(instance(&object(it, &index(&path, i))?, cluster)?);
    }
    Ok(Page {
        total,
        items: out,
        without_desc: false,
    })
}

fn instance(i: &Obj<'_>, cluster: &str) -> Shape<Instance> {
    let port = i.count("port")?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("`{}` is {port}, not a port", i.at("port")))?;
    let cl = match i.opt_str("clusterName")? {
        "" if cluster.is_empty() => "DEFAULT",
        "" => cluster,
        c => c,
    };
    Ok(Instance {
        cluster: cl.to_owned(),
        ip: i.str("ip")?.to_owned(),
        port,
        weight: i.opt_number("weight", 1.0)?,
        healthy: i.opt_bool("healthy", true)?,
        enabled: i.opt_bool("enabled", true)?,
        ephemeral: i.opt_bool("ephemeral", true)?,
        metadata: i.string_map("metadata")?,
    })
}

/// A service from its detail and its instances, which are sorted and deduplicated by
/// (cluster, ip, port): pages can overlap while instances change.
#[must_use]
pub fn service(
    namespace: &str,
    group: &str,
    name: &str,
    detail: ServiceDetail,
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
        protect_threshold: detail.protect_threshold,
        metadata: detail.metadata,
        selector: detail.selector,
        instances,
    }
}

/// Members as `/v1/core/cluster/nodes` (`RestResult`: `{"code": 200, "data": [Member]}`) and
/// `/v3/admin/core/cluster/node/list` (`NacosMember` list in the envelope) list them. A node is
/// a member of its own cluster, so an empty list is not a members list.
pub fn members(dialect: Dialect, answer: &Value) -> Shape<Vec<Member>> {
    let items = match dialect {
        Dialect::V3 => list(answer, "data")?,
        Dialect::V1 | Dialect::RNacos => {
            let o = object(answer, "")?;
            if o.has("code") && o.int("code")? != 200 {
                return Err(format!("`code` is {}, not 200", o.int("code")?));
            }
            o.list("data")?
        }
    };
    if items.is_empty() {
        return Err("the member list is empty (a node is a member of its own cluster)".into());
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let m = object(m, &index("data", i))?;
        let address = match m.opt_str("address")? {
            "" => format!("{}:{}", m.str("ip")?, m.count("port")?),
            a => a.to_owned(),
        };
        out.push(Member {
            address,
            state: m.str("state")?.to_owned(),
        });
    }
    Ok(out)
}

/// The SDK connections of a `/v2/core/loader/current` answer (Nacos `ServerLoaderController`:
/// a map of connection id to `Connection` with its `metaInfo`; 3.x the same map in the
/// envelope), sorted by id; connections from other cluster members are left out.
pub fn connections(answer: &Value) -> Shape<Vec<ClientConnection>> {
    let map = object(answer, "")?;
    let mut out = Vec::with_capacity(map.len());
    for (id, c) in map.iter() {
        let meta = object(c, id)?.object("metaInfo")?;
        let labels = match meta.get("labels") {
            Some(_) => Some(meta.object("labels")?),
            None => None,
        };
        let source = match &labels {
            Some(l) => l.opt_str("source")?,
            None => "",
        };
        // Members connect to each other with source=cluster; SDKs say source=sdk.
        if source == "cluster" || meta.opt_bool("clusterSource", false)? {
            continue;
        }
        let app = meta.opt_str("appName")?;
        out.push(ClientConnection {
            id: id.clone(),
            ip: meta.str("clientIp")?.to_owned(),
            app: if app.is_empty() {
                "-".into()
            } else {
                app.to_owned()
            },
            version: meta.opt_str("version")?.to_owned(),
            namespace: match meta.opt_str("tenant")? {
                "" | "null" => String::new(),
                t => canonical_namespace(t),
            },
            // Jackson writes the `Date` as text or as epoch ms, depending on the server's setup.
            since: match meta.get("createTime") {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(other) => {
                    return Err(format!(
                        "`{}` is {}, not a time",
                        meta.at("createTime"),
                        super::shape::kind(other)
                    ))
                }
            },
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
