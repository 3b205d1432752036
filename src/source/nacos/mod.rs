//! Nacos HTTP client for one node: version, namespaces, configs, services and instances, members,
//! SDK connections, the listener probe and served configs (the cache repairs are in [`write`]).
//!
//! Split by concern: [`transport`] sends (login, retries, errors, body cap), [`dialect`] spells
//! each request for Nacos 1.x/2.x (v1), Nacos 3.x (v3 admin) or r-nacos, and [`parse`] reads the
//! answers. This file strings them together.

pub mod dialect;
pub mod parse;
pub mod transport;
mod write;

use crate::model::{ConfigItem, Namespace, Service};
use crate::settings::Secret;
use dialect::{Call, Dialect, PAGE_SIZE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use transport::{Response, Transport};

pub use dialect::api_tenant;
pub use transport::{http_client, NodeError};

/// Largest listener batch: servers reject more than 10 000 entries per request.
pub const LISTENER_BATCH: usize = 5_000;

/// A member of a cluster as the members API lists it.
#[derive(Debug, Clone)]
pub struct Member {
    /// `ip:port`.
    pub address: String,
    /// `UP`, `DOWN`, `SUSPICIOUS`, ...
    pub state: String,
}

/// What a node serves for one config from its own cache (plain GET).
#[derive(Debug, Clone)]
pub struct Served {
    /// HTTP status (404 = the node has no such config).
    pub status: u16,
    /// `Content-MD5` header, or the MD5 of the body if the header is absent.
    pub md5: String,
    /// `Last-Modified` in epoch ms, when the node sends it.
    pub last_modified_ms: Option<i64>,
}

/// An SDK client connection as a node lists it (`GET /v2/core/loader/current`, Nacos ≥ 2.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConnection {
    /// Connection id (`<millis>_<client ip>_<client port>`).
    pub id: String,
    /// Client IP as the client reported it.
    pub ip: String,
    /// `appName` of the client (`-` when it set none).
    pub app: String,
    /// Client version, e.g. `Nacos-Java-Client:v2.3.2`.
    pub version: String,
    /// Namespace the connection was set up for, or "" when it names none (the Java SDK's naming
    /// client names none: one connection may serve any namespace).
    pub namespace: String,
    /// Connection time as the server prints it.
    pub since: String,
}

/// Client for one node.
pub struct NacosNode {
    /// Base URL with context path, e.g. `http://127.0.0.1:8848/nacos`.
    pub base: String,
    transport: Transport,
    /// The dialect the node is read through ([`Dialect`] as a number); v1 until
    /// [`NacosNode::version`] or a 410 Gone says otherwise.
    dialect: AtomicU8,
}

impl NacosNode {
    /// A client for the node at `base`.
    #[must_use]
    pub fn new(
        http: reqwest::Client,
        base: &str,
        username: Option<String>,
        password: Option<Secret>,
        concurrency: usize,
        retries: u32,
    ) -> Self {
        let transport = Transport::new(http, base, username, password, concurrency, retries);
        NacosNode {
            base: transport.base.clone(),
            transport,
            dialect: AtomicU8::new(0),
        }
    }

    /// The dialect this node is read through.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self.dialect.load(Ordering::Relaxed) {
            1 => Dialect::V3,
            2 => Dialect::RNacos,
            _ => Dialect::V1,
        }
    }

    fn set_dialect(&self, d: Dialect) {
        let n = match d {
            Dialect::V1 => 0,
            Dialect::V3 => 1,
            Dialect::RNacos => 2,
        };
        self.dialect.store(n, Ordering::Relaxed);
    }

    /// Whether this node is read through the v3 admin API (Nacos 3.x).
    #[must_use]
    pub fn is_v3(&self) -> bool {
        self.dialect() == Dialect::V3
    }

    /// Check credentials (a no-op without them).
    pub async fn login(&self) -> Result<(), NodeError> {
        self.transport.token(false).await.map(|_| ())
    }

    /// One call as this node's dialect spells it. A v1 call answered with 410 Gone (Nacos 3.x
    /// switches the old admin APIs off) marks the node as 3.x and is sent again as v3, so later
    /// calls go to v3 at once.
    async fn call(
        &self,
        build: impl Fn(Dialect) -> Call,
    ) -> Result<(Dialect, Call, Response), NodeError> {
        let d = self.dialect();
        let call = build(d);
        let resp = self.transport.send(&call).await?;
        if d == Dialect::V1 && resp.status == 410 {
            self.set_dialect(Dialect::V3);
            let call = build(Dialect::V3);
            let resp = self.transport.send(&call).await?;
            return Ok((Dialect::V3, call, resp));
        }
        Ok((d, call, resp))
    }

    /// The JSON of a 200 answer; anything else is an error naming the node and endpoint.
    fn decode(&self, d: Dialect, call: &Call, resp: &Response) -> Result<Value, NodeError> {
        if resp.status != 200 {
            return Err(self.transport.status_error(call, resp));
        }
        parse::answer(d, &resp.body).map_err(|e| self.transport.shape_error(call, e))
    }

    /// Server version from `/v1/console/server/state`, or from `/v3/admin/core/state` on Nacos
    /// 3.x (which answers the v1 path with 410 Gone, or 404 when it runs without its console);
    /// from then on this node is read through the v3 admin API. `unknown` if the server does not
    /// say (r-nacos has neither endpoint).
    pub async fn version(&self) -> Result<String, NodeError> {
        let call = Dialect::V1.state();
        let resp = self.transport.send(&call).await?;
        match resp.status {
            200 => Ok(parse::state_version(
                &parse::json(&resp.body).unwrap_or(Value::Null),
            )),
            404 | 410 => {
                let call3 = Dialect::V3.state();
                let r3 = self.transport.send(&call3).await?;
                if r3.status == 200 {
                    if let Ok(data) = parse::envelope(&r3.body) {
                        self.set_dialect(Dialect::V3);
                        return Ok(parse::state_version(&data));
                    }
                }
                if resp.status == 404 {
                    return Ok("unknown".to_owned());
                }
                Err(self.transport.err(
                    format!(
                        "{} answered HTTP 410 and {} HTTP {}",
                        call.describe(),
                        call3.describe(),
                        r3.status
                    ),
                    r3.status >= 500,
                    Some(r3.status),
                ))
            }
            _ => Err(self.transport.status_error(&call, &resp)),
        }
    }

    /// All namespaces; the default one is `public`.
    pub async fn namespaces(&self) -> Result<Vec<Namespace>, NodeError> {
        let (d, call, resp) = self.call(Dialect::namespaces).await?;
        let v = self.decode(d, &call, &resp)?;
        parse::namespaces(d, &v).map_err(|e| self.transport.shape_error(&call, e))
    }

    /// Every config of a namespace, paging until done: with content from the v1 listing, without
    /// it from the v3 admin listing (3.x), where [`Self::config_detail`] brings content, desc and
    /// tags, one request per config.
    ///
    /// The listing has no ORDER BY on the server, so rows can move between pages while they are
    /// written; duplicates are dropped and the total is checked against the server's count.
    pub async fn configs(&self, namespace: &str) -> Result<Vec<ConfigItem>, NodeError> {
        let mut out: BTreeMap<(String, String), ConfigItem> = BTreeMap::new();
        let mut page = 1usize;
        let total = loop {
            let (d, call, resp) = self.call(|d| d.config_page(namespace, page)).await?;
            let v = self.decode(d, &call, &resp)?;
            let p = parse::config_page(d, &v, namespace)
                .map_err(|e| self.transport.shape_error(&call, e))?;
            let n = p.items.len();
            for it in p.items {
                out.insert((it.key.group.clone(), it.key.data_id.clone()), it);
            }
            // Paged by count: 3.x's `pagesAvailable` is not to be trusted on every list.
            if n == 0 || n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= p.total {
                break p.total;
            }
            page += 1;
        };
        if (out.len() as u64) < total {
            return Err(self.transport.err(
                format!("config listing of namespace `{namespace}` returned {} of {total} configs (changed while paging?)", out.len()),
                true,
                None,
            ));
        }
        Ok(out.into_values().collect())
    }

    /// Fill desc and tags from the DB-backed detail view, and on 3.x content as well.
    /// Returns false if the server has no such view (or, on 3.x, the config is gone).
    pub async fn config_detail(&self, item: &mut ConfigItem) -> Result<bool, NodeError> {
        let (d, call, resp) = self.call(|d| d.config_detail(&item.key)).await?;
        match resp.status {
            // v3: deleted between the listing and now. v1: no detail to add.
            404 => return Ok(d != Dialect::V3),
            200 => {}
            _ => return Err(self.transport.status_error(&call, &resp)),
        }
        parse::config_detail(d, &resp.body, item).map_err(|e| self.transport.shape_error(&call, e))
    }

    /// `(group, name)` of every service in a namespace, all groups: the v1 catalog, or the v3
    /// admin list on 3.x (the same fields under other names).
    pub async fn service_names(&self, namespace: &str) -> Result<Vec<(String, String)>, NodeError> {
        let mut out = Vec::new();
        let mut page = 1usize;
        loop {
            let (d, call, resp) = self.call(|d| d.service_page(namespace, page)).await?;
            let v = self.decode(d, &call, &resp)?;
            let p = parse::service_page(d, &v).map_err(|e| self.transport.shape_error(&call, e))?;
            let n = p.items.len();
            out.extend(p.items);
            // Paged by count: 3.1's `pagesAvailable` is off by one and more.
            if n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= p.total {
                break;
            }
            page += 1;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// A service's detail and every instance of every cluster (disabled ones included).
    pub async fn service(
        &self,
        namespace: &str,
        group: &str,
        name: &str,
    ) -> Result<Service, NodeError> {
        let (d, call, resp) = self
            .call(|d| d.service_detail(namespace, group, name))
            .await?;
        let detail =
            if resp.status != 200 && d != Dialect::V3 && resp.body.contains("service not found") {
                // r-nacos lists services that were created implicitly by a registration but keeps no
                // service record for them: such a service has default metadata and no cluster list.
                Value::Null
            } else {
                self.decode(d, &call, &resp)?
            };
        let mut clusters = if d == Dialect::V3 {
            Vec::new()
        } else {
            parse::service_clusters(&detail)
        };
        if clusters.is_empty() {
            clusters.push(String::new());
        }
        let mut instances = Vec::new();
        for cluster in clusters {
            let mut page = 1usize;
            loop {
                let (d, call, resp) = self
                    .call(|d| d.instances(namespace, group, name, &cluster, page))
                    .await?;
                if d == Dialect::V3 && resp.status == 404 {
                    // A service with no instance record yet answers "not found".
                    break;
                }
                let v = self.decode(d, &call, &resp)?;
                let p = parse::instance_page(d, &v, &cluster)
                    .map_err(|e| self.transport.shape_error(&call, e))?;
                let n = p.items.len();
                instances.extend(p.items);
                if d == Dialect::V3 || n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= p.total {
                    break;
                }
                page += 1;
            }
        }
        Ok(parse::service(namespace, group, name, &detail, instances))
    }

    /// Cluster members, or `None` if the server has no members API (r-nacos).
    pub async fn members(&self) -> Result<Option<Vec<Member>>, NodeError> {
        let (d, call, resp) = self.call(Dialect::members).await?;
        if d != Dialect::V3
            && (resp.status == 404 || (resp.status == 200 && resp.body.trim().is_empty()))
        {
            return Ok(None);
        }
        let v = self.decode(d, &call, &resp)?;
        parse::members(d, &v)
            .map(Some)
            .map_err(|e| self.transport.shape_error(&call, e))
    }

    /// SDK connections held by this node, or `None` if the server does not list connections
    /// (Nacos 1.x, r-nacos: 404). Connections from other cluster members are left out.
    pub async fn client_connections(&self) -> Result<Option<Vec<ClientConnection>>, NodeError> {
        let (d, call, resp) = self.call(Dialect::connections).await?;
        if resp.status == 404 && d != Dialect::V3 {
            return Ok(None);
        }
        let v = self.decode(d, &call, &resp)?;
        parse::connections(&v)
            .map(Some)
            .map_err(|e| self.transport.shape_error(&call, e))
    }

    /// The listener md5 probe: which of these `(namespace, group, dataId, md5)` entries the node's cache disagrees with.
    ///
    /// Returns the indices (into `keys`) that differ. An empty md5 means "should not exist": the node
    /// reports it only if it still caches the config.
    pub async fn probe(
        &self,
        keys: &[(String, String, String, String)],
    ) -> Result<Vec<usize>, NodeError> {
        let call = Dialect::listener(parse::listening_configs(keys));
        let resp = self.transport.send(&call).await?;
        if resp.status != 200 {
            return Err(self.transport.status_error(&call, &resp));
        }
        parse::listener(keys, &resp.body).map_err(|e| self.transport.shape_error(&call, e))
    }

    /// Plain GET of one config from this node's cache.
    pub async fn served(
        &self,
        namespace: &str,
        group: &str,
        data_id: &str,
    ) -> Result<Served, NodeError> {
        let call = Dialect::served(namespace, group, data_id);
        let resp = self.transport.send(&call).await?;
        if resp.status != 200 && resp.status != 404 {
            return Err(self.transport.status_error(&call, &resp));
        }
        let header = |k: &str| resp.headers.get(k).and_then(|v| v.to_str().ok());
        let md5 = match (resp.status, header("Content-MD5")) {
            (404, _) => String::new(),
            (_, Some(m)) => m.to_owned(),
            (_, None) => crate::model::md5_hex(&resp.body),
        };
        Ok(Served {
            status: resp.status,
            md5,
            last_modified_ms: header("Last-Modified").and_then(crate::cache::parse_http_date),
        })
    }
}
