//! Nacos HTTP client for one node: version, namespaces, configs, services and instances, members,
//! SDK connections, the listener probe and served configs (the cache repairs are in [`write`]).
//!
//! Split by concern: [`transport`] sends (login, retries, errors, body cap), [`dialect`] spells
//! each request for Nacos 1.x/2.x (v1), Nacos 3.x (v3 admin) or r-nacos, and [`parse`] reads the
//! answers. This file strings them together.

pub mod auth_api;
pub mod auth_rnacos;
mod configs;
pub mod dialect;
pub mod grpc;
pub mod listeners;
pub mod parse;
mod services;
pub mod transport;
pub mod urls;
pub mod variants;
mod write;

use crate::model::{ConfigItem, Namespace, Service};
use crate::secret::Secret;
use dialect::{Call, Dialect, PAGE_SIZE};
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::sync::OnceCell;
use transport::{Response, Transport};

pub use configs::{plan as config_plan, ConfigPlan};
pub use dialect::{api_tenant, ServerKind};
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
    /// The version the user pinned for this side, if any.
    pinned: Option<String>,
    /// The server's version and kind, once known: asked once per node and run.
    kind: OnceCell<(String, ServerKind)>,
    /// How config desc and tags are read (`audit.config_meta`).
    pub config_meta: crate::settings::ConfigMeta,
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
            pinned: None,
            kind: OnceCell::new(),
            config_meta: crate::settings::ConfigMeta::default(),
        }
    }

    /// The same with a cap on response bodies (bytes).
    #[must_use]
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.transport.max_body = bytes;
        self
    }

    /// The same with the server version pinned by the user (`source.nacos_version`): it is then
    /// not read from the node.
    #[must_use]
    pub fn with_version(mut self, pinned: Option<String>) -> Self {
        self.pinned = pinned;
        self
    }

    /// The same reading config desc and tags as `audit.config_meta` says.
    #[must_use]
    pub fn with_config_meta(mut self, meta: crate::settings::ConfigMeta) -> Self {
        self.config_meta = meta;
        self
    }

    /// The dialect this node is read through (v1 until its version is known).
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.kind.get().map_or(Dialect::V1, |(_, k)| k.dialect())
    }

    /// Whether this node is read through the v3 admin API (Nacos 3.x).
    #[must_use]
    pub fn is_v3(&self) -> bool {
        self.dialect() == Dialect::V3
    }

    /// Whether the node failed (refused, timed out, login failed) earlier in this run: it is then
    /// not asked again, and every call returns that failure at once.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.transport.is_down()
    }

    /// Requests sent to this node so far in the run (every attempt).
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.transport.sent()
    }

    /// Check credentials (a no-op without them).
    pub async fn login(&self) -> Result<(), NodeError> {
        self.transport.token(false).await.map(|_| ())
    }

    /// The server's version (as it says it, or as pinned) and kind, asked once.
    async fn kind(&self) -> Result<&(String, ServerKind), NodeError> {
        self.kind.get_or_try_init(|| self.detect()).await
    }

    /// Server version: pinned, or from `/v1/console/server/state` (Nacos 1.x/2.x), or from
    /// `/v3/admin/core/state` on Nacos 3.x (which answers the v1 path with 410 Gone, or 404 when
    /// it runs without its console); r-nacos has neither and is told by its health path. From
    /// then on the node is read in the dialect of that version. A server that is none of these,
    /// or names a version this tool does not know, is an error unless the version is pinned.
    pub async fn version(&self) -> Result<String, NodeError> {
        self.kind().await.map(|(v, _)| v.clone())
    }

    async fn detect(&self) -> Result<(String, ServerKind), NodeError> {
        if let Some(pin) = &self.pinned {
            let kind = ServerKind::parse(pin).ok_or_else(|| {
                self.transport.err(
                    format!("pinned version `{pin}` is not one nacos-drift knows"),
                    false,
                    None,
                )
            })?;
            return Ok((pin.clone(), kind));
        }
        let pin_hint =
            "; if it is Nacos 1.4-3.x or r-nacos, pin its version (`nacos_version` of its side)";
        let call = Dialect::V1.state();
        let resp = self.transport.send(&call).await?;
        match resp.status {
            200 => {
                let v =
                    parse::json(&resp.body).map_err(|e| self.transport.shape_error(&call, e))?;
                let (version, kind) = parse::state(&v)
                    .map_err(|e| self.transport.shape_error(&call, format!("{e}{pin_hint}")))?;
                return Ok((version, kind));
            }
            404 | 410 => {}
            _ => return Err(self.transport.status_error(&call, &resp)),
        }
        let call3 = Dialect::V3.state();
        let r3 = self.transport.send(&call3).await?;
        if r3.status == 200 {
            let data =
                parse::envelope(&r3.body).map_err(|e| self.transport.shape_error(&call3, e))?;
            let (version, kind) = parse::state(&data)
                .map_err(|e| self.transport.shape_error(&call3, format!("{e}{pin_hint}")))?;
            if kind.dialect() != Dialect::V3 {
                return Err(self.transport.shape_error(
                    &call3,
                    format!(
                        "the v3 state API names version `{version}`, which has no v3 API{pin_hint}"
                    ),
                ));
            }
            return Ok((version, kind));
        }
        let health = Dialect::rnacos_health();
        let rh = self.transport.send(&health).await?;
        if resp.status == 404 && r3.status == 404 && parse::is_rnacos_health(rh.status, &rh.body) {
            return Ok(("r-nacos".to_owned(), ServerKind::RNacos));
        }
        Err(self.transport.err(
            format!(
                "cannot tell what server this is: {} answered HTTP {}, {} HTTP {}, {} HTTP {}{pin_hint}",
                call.describe(),
                resp.status,
                call3.describe(),
                r3.status,
                health.describe(),
                rh.status
            ),
            false,
            Some(resp.status),
        ))
    }

    /// One call as this node's dialect spells it (its version is asked first, once).
    async fn call(
        &self,
        build: impl Fn(Dialect) -> Call,
    ) -> Result<(Dialect, Call, Response), NodeError> {
        let d = self.kind().await?.1.dialect();
        let call = build(d);
        let resp = self.transport.send(&call).await?;
        Ok((d, call, resp))
    }

    /// The JSON of a 200 answer; anything else is an error naming the node and endpoint.
    fn decode(&self, d: Dialect, call: &Call, resp: &Response) -> Result<Value, NodeError> {
        if resp.status != 200 {
            return Err(self.transport.status_error(call, resp));
        }
        parse::answer(d, &resp.body).map_err(|e| self.transport.shape_error(call, e))
    }

    /// A 200 answer read by one of the parsers.
    fn read<T>(
        &self,
        d: Dialect,
        call: &Call,
        resp: &Response,
        parse: impl FnOnce(&Value) -> parse::shape::Shape<T>,
    ) -> Result<T, NodeError> {
        let v = self.decode(d, call, resp)?;
        parse(&v).map_err(|e| self.transport.shape_error(call, e))
    }

    /// All namespaces; the default one is `public`.
    pub async fn namespaces(&self) -> Result<Vec<Namespace>, NodeError> {
        let (d, call, resp) = self.call(Dialect::namespaces).await?;
        self.read(d, &call, &resp, |v| parse::namespaces(d, v))
    }

    /// Every config of a namespace from its list pages: with content from the v1 listing,
    /// without it from the v3 admin listing (3.x), where [`Self::config_detail`] brings content,
    /// desc and tags, one request per config. Also whether some item came without a desc field
    /// (r-nacos lists desc; see [`parse::Page::without_desc`]).
    ///
    /// The first page gives the total; the other pages are then asked for concurrently (the
    /// node's semaphore bounds them). The listing has no ORDER BY on the server, so rows can
    /// move between pages while they are written: duplicates are dropped, and what was read
    /// must add up to the server's count.
    pub async fn configs(&self, namespace: &str) -> Result<(Vec<ConfigItem>, bool), NodeError> {
        let (out, without_desc) = self.config_listing(namespace, false, |it, _| it).await?;
        Ok((out.into_values().collect(), without_desc))
    }

    /// Every config key of a namespace with its row id, from its list pages (what the pages
    /// carry besides is dropped page by page). Not on r-nacos, which lists no ids.
    pub async fn config_ids(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<(String, String), u64>, NodeError> {
        Ok(self.config_listing(namespace, true, |_, id| id).await?.0)
    }

    /// The list pages of a namespace, each item kept as `keep` makes it (with its row id when
    /// `with_ids`, else 0), by (group, data id).
    async fn config_listing<T>(
        &self,
        namespace: &str,
        with_ids: bool,
        keep: impl Fn(ConfigItem, u64) -> T + Copy,
    ) -> Result<(BTreeMap<(String, String), T>, bool), NodeError> {
        use futures::stream::{self, StreamExt};
        let page_of = |page: usize| async move {
            let (d, call, resp) = self.call(|d| d.config_page(namespace, page)).await?;
            let (p, ids) = self.read(d, &call, &resp, |v| {
                let p = parse::config_page(d, v, namespace)?;
                parse::check_page(p.total, p.items.len(), PAGE_SIZE)?;
                let ids = if with_ids {
                    parse::config_ids(d, v)?
                } else {
                    vec![0; p.items.len()]
                };
                Ok((p, ids))
            })?;
            let kept: Vec<_> = p
                .items
                .into_iter()
                .zip(ids)
                .map(|(it, id)| ((it.key.group.clone(), it.key.data_id.clone()), keep(it, id)))
                .collect();
            Ok::<_, NodeError>((p.total, p.without_desc, kept, call))
        };
        let (total, first_without_desc, first, call) = page_of(1).await?;
        // Paged by the count asked for: 3.x's `pagesAvailable` is not to be trusted on every list.
        let pages = if first.len() < PAGE_SIZE {
            1
        } else {
            usize::try_from(total.div_ceil(PAGE_SIZE as u64)).unwrap_or(usize::MAX)
        };
        let rest: Vec<Result<_, NodeError>> = stream::iter(2..=pages)
            .map(page_of)
            .buffer_unordered(8)
            .collect()
            .await;
        let mut out: BTreeMap<(String, String), T> = BTreeMap::new();
        let mut without_desc = false;
        let first = Ok((total, first_without_desc, first, call.clone()));
        for p in std::iter::once(first).chain(rest) {
            let (page_total, page_without_desc, items, _) = p?;
            if page_total != total {
                return Err(self.transport.err(
                    format!(
                        "{}: the pages of namespace `{namespace}` give totals {total} and {page_total} (changed while paging, or an inconsistent answer)",
                        call.describe(),
                    ),
                    true,
                    None,
                ));
            }
            without_desc |= page_without_desc;
            out.extend(items);
        }
        self.check_total(&call, &format!("namespace `{namespace}`"), out.len(), total)?;
        Ok((out, without_desc))
    }

    /// What a listing read must add up to the total the server gave.
    fn check_total(
        &self,
        call: &Call,
        what: &str,
        got: usize,
        total: u64,
    ) -> Result<(), NodeError> {
        if got as u64 == total {
            return Ok(());
        }
        Err(self.transport.err(
            format!(
                "{}: the listing of {what} gave {got} distinct item(s), but its total says {total} (changed while paging, or a truncated or inconsistent answer)",
                call.describe()
            ),
            true,
            None,
        ))
    }

    /// Fill desc and tags from the DB-backed detail view, and on 3.x content as well.
    /// Returns false if the server has no such view (r-nacos) or, on 3.x, the config is gone.
    pub async fn config_detail(&self, item: &mut ConfigItem) -> Result<bool, NodeError> {
        if !self.kind().await?.1.has_config_detail() {
            return Ok(false);
        }
        let (d, call, resp) = self.call(|d| d.config_detail(&item.key)).await?;
        match resp.status {
            // Deleted between the listing and now: on 3.x the content goes with it; on v1 the
            // listing's content stays.
            404 => return Ok(d != Dialect::V3),
            200 => {}
            _ => return Err(self.transport.status_error(&call, &resp)),
        }
        parse::config_detail(d, &resp.body, item)
            .map_err(|e| self.transport.shape_error(&call, e))?;
        Ok(true)
    }

    /// What the node's own database holds for `key` through its DB-backed detail view:
    /// `Some((content md5, modifyTime ms))`, `None` when it has no such row. An error also when
    /// the server has no such view (r-nacos).
    pub async fn db_row(
        &self,
        key: &crate::model::ConfigKey,
    ) -> Result<Option<(String, Option<i64>)>, NodeError> {
        let Some((d, call, body)) = self.detail_answer(key).await? else {
            return Ok(None);
        };
        let (content, modified) =
            parse::config_row(d, &body, key).map_err(|e| self.transport.shape_error(&call, e))?;
        Ok(Some((crate::model::md5_hex(&content), modified)))
    }

    /// `(group, name)` of every service in a namespace, all groups: the v1 catalog, or the v3
    /// admin list on 3.x (the same fields under other names).
    pub async fn service_names(&self, namespace: &str) -> Result<Vec<(String, String)>, NodeError> {
        let mut out = Vec::new();
        let mut page = 1usize;
        let (total, call) = loop {
            let (d, call, resp) = self.call(|d| d.service_page(namespace, page)).await?;
            let p = self.read(d, &call, &resp, |v| {
                let p = parse::service_page(d, v)?;
                parse::check_page(p.total, p.items.len(), PAGE_SIZE).map(|()| p)
            })?;
            let n = p.items.len();
            out.extend(p.items);
            // Paged by count: 3.1's `pagesAvailable` is off by one and more.
            if n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= p.total {
                break (p.total, call);
            }
            page += 1;
        };
        out.sort();
        out.dedup();
        self.check_total(
            &call,
            &format!("services of namespace `{namespace}`"),
            out.len(),
            total,
        )?;
        Ok(out)
    }

    /// A service's detail and every instance of every cluster (disabled ones included).
    ///
    /// `None` when the node answers that the service does not exist (removed since it was
    /// listed, e.g. by Nacos 2.x's empty-service cleaner): the caller lists again to tell a
    /// service that is gone from a node that lists what it cannot show.
    pub async fn service(
        &self,
        namespace: &str,
        group: &str,
        name: &str,
    ) -> Result<Option<Service>, NodeError> {
        let (d, call, resp) = self
            .call(|d| d.service_detail(namespace, group, name))
            .await?;
        // A listed service whose detail is "not found" is never taken as defaults: r-nacos
        // answered that for every service outside `DEFAULT_GROUP` while it was asked by the bare
        // name, and taking defaults then compared nothing of them (see `service_detail`).
        if transport::says_not_found(resp.status, &resp.body) {
            return Ok(None);
        }
        let detail = self.read(d, &call, &resp, |v| parse::service_detail(d, v, name))?;
        let mut clusters = detail.clusters.clone();
        if clusters.is_empty() {
            clusters.push(String::new());
        }
        let mut instances = Vec::new();
        for cluster in clusters {
            let mut page = 1usize;
            let mut got = 0usize;
            let (total, call) = loop {
                let (d, call, resp) = self
                    .call(|d| d.instances(namespace, group, name, &cluster, page))
                    .await?;
                if d == Dialect::V3 && resp.status == 404 {
                    // A service with no instance record yet answers "not found".
                    break (0, call);
                }
                if d == Dialect::V1
                    && cluster.is_empty()
                    && resp.status == 500
                    && resp.body.contains("cluster  is not found!")
                {
                    // A service whose last ephemeral instance left has no cluster at all, and
                    // Nacos 2.x refuses the cluster it does not have (`CatalogServiceV2Impl.
                    // listInstances`: "cluster <name> is not found!"): it has no instances.
                    break (0, call);
                }
                if resp.body.contains("service ")
                    && transport::says_not_found(resp.status, &resp.body)
                {
                    // Removed between its detail and its instances (`CatalogServiceV2Impl.
                    // listInstances`: "service <group>@@<name> is not found!").
                    return Ok(None);
                }
                let p = self.read(d, &call, &resp, |v| {
                    let p = parse::instance_page(d, v, &cluster)?;
                    let size = if d == Dialect::V3 {
                        usize::MAX
                    } else {
                        PAGE_SIZE
                    };
                    parse::check_page(p.total, p.items.len(), size).map(|()| p)
                })?;
                let n = p.items.len();
                got += n;
                instances.extend(p.items);
                if d == Dialect::V3 || n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= p.total {
                    break (p.total, call);
                }
                page += 1;
            };
            let what = format!("instances of `{group}@@{name}` cluster `{cluster}`");
            self.check_total(&call, &what, got, total)?;
        }
        Ok(Some(parse::service(
            namespace, group, name, detail, instances,
        )))
    }

    /// Cluster members, or `None` if the server has no members API (r-nacos).
    pub async fn members(&self) -> Result<Option<Vec<Member>>, NodeError> {
        if !self.kind().await?.1.lists_members() {
            return Ok(None);
        }
        let (d, call, resp) = self.call(Dialect::members).await?;
        self.read(d, &call, &resp, |v| parse::members(d, v))
            .map(Some)
    }

    /// SDK connections held by this node, or `None` if the server does not list connections
    /// (Nacos 1.x, r-nacos). Connections from other cluster members are left out.
    pub async fn client_connections(&self) -> Result<Option<Vec<ClientConnection>>, NodeError> {
        if !self.kind().await?.1.lists_connections() {
            return Ok(None);
        }
        let (d, call, resp) = self.call(Dialect::connections).await?;
        self.read(d, &call, &resp, parse::connections).map(Some)
    }

    /// The listener md5 probe: which of these entries the node's cache disagrees with.
    ///
    /// Returns the indices (into `keys`) that differ. An empty md5 means "should not exist": the node
    /// reports it only if it still caches the config.
    pub async fn probe(&self, keys: &[crate::model::ProbeKey]) -> Result<Vec<usize>, NodeError> {
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
        self.read_served(&Dialect::served(namespace, group, data_id))
            .await
    }

    /// Send a config GET and read what the node serves (a 404 is "nothing").
    async fn read_served(&self, call: &Call) -> Result<Served, NodeError> {
        let resp = self.transport.send(call).await?;
        if resp.status != 200 && resp.status != 404 {
            return Err(self.transport.status_error(call, &resp));
        }
        let header = |k: &str| resp.headers.get(k).and_then(|v| v.to_str().ok());
        let md5 = if resp.status == 404 {
            String::new()
        } else {
            parse::served_md5(header("Content-MD5"), &resp.body)
                .map_err(|e| self.transport.shape_error(call, e))?
        };
        Ok(Served {
            status: resp.status,
            md5,
            last_modified_ms: header("Last-Modified").and_then(crate::clock::parse_http_date),
        })
    }
}
