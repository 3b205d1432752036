//! Nacos HTTP client for one node: login and token refresh, version, namespaces, configs, services and instances.
//!
//! Uses the v1 Open API, which Nacos 1.4, 2.x and r-nacos all serve. Every request is bounded by a
//! per-node semaphore and a timeout, and retried with backoff on transient failures only. Tokens are
//! sent as the `accessToken` parameter (as the Nacos SDK does) and never appear in errors: reqwest
//! errors are stripped of their URL before they are shown.

use crate::model::{
    canonical_namespace, ConfigItem, ConfigKey, Instance, Namespace, Service, ServiceKey,
};
use crate::settings::Secret;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// Page size for config and service listings.
const PAGE_SIZE: usize = 500;

/// A failure talking to a node, with a message that names the node and never a secret.
#[derive(Debug, Clone)]
pub struct NodeError {
    /// Human message.
    pub message: String,
    /// Whether retrying could help.
    pub transient: bool,
    /// HTTP status, if a response came back.
    pub status: Option<u16>,
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Client for one node.
pub struct NacosNode {
    http: reqwest::Client,
    /// Base URL with context path, e.g. `http://127.0.0.1:8848/nacos`.
    pub base: String,
    username: Option<String>,
    password: Option<Secret>,
    token: Mutex<Option<(String, Instant)>>,
    permits: Arc<Semaphore>,
    retries: u32,
    /// Nacos 3.x: the v1 console and v2 APIs answer 410 Gone; configs, namespaces and services
    /// are read through the v3 admin API instead. Set by [`NacosNode::version`].
    v3: std::sync::atomic::AtomicBool,
}

/// Build the shared HTTP client.
pub fn http_client(timeout_secs: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs))
        .connect_timeout(Duration::from_secs(timeout_secs.min(5)))
        .pool_max_idle_per_host(16)
        .build()
        .unwrap_or_default()
}

fn describe(e: &reqwest::Error) -> (String, bool) {
    let transient = e.is_connect() || e.is_timeout() || e.is_request();
    let what = if e.is_connect() {
        "connection refused or unreachable"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "truncated or unreadable response body"
    } else {
        "request failed"
    };
    // `without_url` keeps the token in the query string out of every message.
    let detail = e.source_chain_text();
    (format!("{what}{detail}"), transient)
}

trait SourceChain {
    fn source_chain_text(&self) -> String;
}

impl SourceChain for reqwest::Error {
    fn source_chain_text(&self) -> String {
        let mut out = String::new();
        let mut cur = std::error::Error::source(self);
        let mut depth = 0;
        while let Some(e) = cur {
            let s = e.to_string();
            if !s.contains("accessToken") && !s.contains("password") {
                out.push_str(" (");
                out.push_str(&s);
                out.push(')');
            }
            cur = e.source();
            depth += 1;
            if depth > 3 {
                break;
            }
        }
        out
    }
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
        NacosNode {
            http,
            base: base.trim_end_matches('/').to_owned(),
            username,
            password,
            token: Mutex::new(None),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            retries,
            v3: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn err(&self, msg: impl std::fmt::Display, transient: bool, status: Option<u16>) -> NodeError {
        NodeError {
            message: format!("node {}: {msg}", self.base),
            transient,
            status,
        }
    }

    /// Log in if credentials are set and the token is missing or near expiry; returns the token.
    async fn token(&self, force: bool) -> Result<Option<String>, NodeError> {
        let (Some(user), Some(pass)) = (&self.username, &self.password) else {
            return Ok(None);
        };
        let mut guard = self.token.lock().await;
        if !force {
            if let Some((t, exp)) = guard.as_ref() {
                if Instant::now() < *exp {
                    return Ok(Some(t.clone()));
                }
            }
        }
        let url = format!("{}/v1/auth/login", self.base);
        let form = [("username", user.as_str()), ("password", pass.expose())];
        let mut attempt = 0;
        let resp = loop {
            match self.http.post(&url).form(&form).send().await {
                Ok(r) => break r,
                Err(e) => {
                    let (m, transient) = describe(&e);
                    if transient && attempt < self.retries {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(self.err(format!("login failed: {m}"), transient, None));
                }
            }
        };
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if status == 403 || status == 401 {
            return Err(self.err(
                format!("login as `{user}` rejected (HTTP {status}): wrong username or password"),
                false,
                Some(status),
            ));
        }
        if status == 500 && body.contains("API Compatibility") {
            // Nacos 3.x's v1 login shim turns the "user not found / wrong password" 403 into this.
            return Err(self.err(
                format!("login as `{user}` rejected (HTTP 500 from Nacos 3.x, its answer to a wrong username or password)"),
                false,
                Some(status),
            ));
        }
        if status != 200 {
            return Err(self.err(
                format!("login failed with HTTP {status}"),
                status >= 500,
                Some(status),
            ));
        }
        let v: Value = serde_json::from_str(&body).map_err(|_| {
            self.err(
                "login answered with something that is not JSON",
                false,
                Some(status),
            )
        })?;
        let Some(tok) = v.get("accessToken").and_then(Value::as_str) else {
            return Err(self.err("login answered without an accessToken", false, Some(status)));
        };
        let ttl = v.get("tokenTtl").and_then(Value::as_u64).unwrap_or(18_000);
        // Refresh well before expiry so a long audit never runs on a dead token.
        let exp = Instant::now() + Duration::from_secs(ttl.saturating_sub(60).max(30) * 9 / 10);
        *guard = Some((tok.to_owned(), exp));
        Ok(Some(tok.to_owned()))
    }

    /// Check credentials (a no-op without them).
    pub async fn login(&self) -> Result<(), NodeError> {
        self.token(false).await.map(|_| ())
    }

    /// One GET or POST with auth, bounded concurrency, retries on transient failures and one re-login on 403.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, String)],
        headers: &[(&str, &str)],
    ) -> Result<(u16, reqwest::header::HeaderMap, String), NodeError> {
        self.request_with_timeout(method, path, params, headers, None)
            .await
    }

    /// [`Self::request`] with a timeout of its own for calls known to be slow on big databases.
    pub async fn request_with_timeout(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, String)],
        headers: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<(u16, reqwest::header::HeaderMap, String), NodeError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.err("client shut down", false, None))?;
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        let mut relogged = false;
        loop {
            let token = self.token(false).await?;
            let mut all: Vec<(&str, String)> = params.to_vec();
            if let Some(t) = &token {
                all.push(("accessToken", t.clone()));
            }
            let mut req = if method == reqwest::Method::GET {
                self.http.get(&url).query(&all)
            } else {
                self.http.request(method.clone(), &url).form(&all)
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let hdrs = resp.headers().clone();
                    let body = match resp.text().await {
                        Ok(b) => b,
                        Err(e) => {
                            let (m, _) = describe(&e);
                            if attempt < self.retries {
                                attempt += 1;
                                tokio::time::sleep(backoff(attempt)).await;
                                continue;
                            }
                            return Err(self.err(format!("GET {path}: {m}"), true, Some(status)));
                        }
                    };
                    if status == 403 && token.is_some() && !relogged {
                        // Token may have expired or the server restarted with a new secret: log in again once.
                        relogged = true;
                        self.token(true).await?;
                        continue;
                    }
                    if matches!(status, 500 | 502 | 503 | 504) && attempt < self.retries {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Ok((status, hdrs, body));
                }
                Err(e) => {
                    let (m, transient) = describe(&e);
                    if transient && attempt < self.retries {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(self.err(format!("{path}: {m}"), transient, None));
                }
            }
        }
    }

    /// GET returning JSON; non-200 and non-JSON answers are errors naming the path.
    pub async fn get_json(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, NodeError> {
        let (status, _, body) = self
            .request(reqwest::Method::GET, path, params, &[])
            .await?;
        if status != 200 {
            let snippet: String = body.chars().take(200).collect();
            return Err(self.err(
                format!("GET {path} answered HTTP {status}: {snippet}"),
                status >= 500,
                Some(status),
            ));
        }
        serde_json::from_str(&body).map_err(|e| {
            self.err(
                format!("GET {path}: response is not valid JSON ({e}); truncated body?"),
                true,
                Some(status),
            )
        })
    }

    /// Server version from `/v1/console/server/state`, or from `/v3/admin/core/state` on Nacos
    /// 3.x (which answers the v1 path with 410 Gone, or 404 when it runs without its console);
    /// from then on this node is read through the v3 admin API. `unknown` if the server does not
    /// say (r-nacos has neither endpoint).
    pub async fn version(&self) -> Result<String, NodeError> {
        let (status, _, body) = self
            .request(reqwest::Method::GET, "/v1/console/server/state", &[], &[])
            .await?;
        let v: Value = match status {
            200 => serde_json::from_str(&body).unwrap_or(Value::Null),
            404 | 410 => {
                let (s3, _, b3) = self
                    .request(reqwest::Method::GET, "/v3/admin/core/state", &[], &[])
                    .await?;
                let v3: Value = serde_json::from_str(&b3).unwrap_or(Value::Null);
                if s3 == 200 && v3.get("code").and_then(Value::as_i64) == Some(0) {
                    self.v3.store(true, std::sync::atomic::Ordering::Relaxed);
                    v3.get("data").cloned().unwrap_or(Value::Null)
                } else if status == 404 {
                    return Ok("unknown".to_owned());
                } else {
                    return Err(self.err(
                        format!("GET /v1/console/server/state answered HTTP 410 and /v3/admin/core/state HTTP {s3}"),
                        s3 >= 500,
                        Some(s3),
                    ));
                }
            }
            _ => {
                return Err(self.err(
                    format!("GET /v1/console/server/state answered HTTP {status}"),
                    status >= 500,
                    Some(status),
                ))
            }
        };
        Ok(v.get("version")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned())
    }

    /// Whether this node is read through the v3 admin API (Nacos 3.x).
    #[must_use]
    pub fn is_v3(&self) -> bool {
        self.v3.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// GET a v3 admin endpoint and unwrap its `{"code": 0, "data": ...}` envelope.
    async fn v3_data(&self, path: &str, params: &[(&str, String)]) -> Result<Value, NodeError> {
        let (status, _, body) = self
            .request(reqwest::Method::GET, path, params, &[])
            .await?;
        self.envelope(&format!("GET {path}"), status, &body)
    }

    /// One call to an endpoint Nacos 3.x moved: the v1/v2 `path`, or `v3_path` on a node known
    /// to be 3.x or that answers `path` with 410 Gone (3.x switches the old admin APIs off). A 410
    /// marks the node as 3.x, so later calls go to v3 at once. Returns status, body, and whether
    /// the v3 path answered (its body is then the `{"code", "data"}` envelope; see [`Self::envelope`]).
    async fn request_moved(
        &self,
        method: reqwest::Method,
        path: &str,
        v3_path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String, bool), NodeError> {
        if !self.is_v3() {
            let (status, _, body) = self.request(method.clone(), path, &[], headers).await?;
            if status != 410 {
                return Ok((status, body, false));
            }
            self.v3.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let (status, _, body) = self.request(method, v3_path, &[], headers).await?;
        Ok((status, body, true))
    }

    /// The `data` of a v3 admin answer, or an error naming the path.
    fn envelope(&self, path: &str, status: u16, body: &str) -> Result<Value, NodeError> {
        let v: Value = serde_json::from_str(body).map_err(|e| {
            self.err(
                format!("{path}: response is not valid JSON ({e}); truncated body?"),
                true,
                Some(status),
            )
        })?;
        if status == 200 && v.get("code").and_then(Value::as_i64) == Some(0) {
            return Ok(v.get("data").cloned().unwrap_or(Value::Null));
        }
        let snippet: String = body.chars().take(200).collect();
        Err(self.err(
            format!("{path} answered HTTP {status}: {snippet}"),
            status >= 500,
            Some(status),
        ))
    }

    /// All namespaces; the default one is `public`.
    pub async fn namespaces(&self) -> Result<Vec<Namespace>, NodeError> {
        if self.is_v3() {
            let data = self.v3_data("/v3/admin/core/namespace/list", &[]).await?;
            // An answer of another shape must not read as "no namespaces".
            let list = data.as_array().ok_or_else(|| {
                self.err(
                    "GET /v3/admin/core/namespace/list: `data` is not a list",
                    false,
                    Some(200),
                )
            })?;
            return Ok(namespaces_of(list));
        }
        // The server counts each namespace's configs with a full scan of config_info (the Nacos
        // schema has no tenant index): with many namespaces and a big table this takes minutes.
        let (status, _, body) = self
            .request_with_timeout(
                reqwest::Method::GET,
                "/v1/console/namespaces",
                &[],
                &[],
                Some(Duration::from_secs(600)),
            )
            .await?;
        if status != 200 {
            let snippet: String = body.chars().take(200).collect();
            return Err(self.err(
                format!("GET /v1/console/namespaces answered HTTP {status}: {snippet}"),
                status >= 500,
                Some(status),
            ));
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| {
            self.err(
                format!("GET /v1/console/namespaces: response is not valid JSON ({e})"),
                true,
                Some(status),
            )
        })?;
        let list = v
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(namespaces_of(&list))
    }

    /// Every config of a namespace, paging until done: with content from the v1 listing, without
    /// it from the v3 admin listing (3.x), where [`Self::config_detail`] brings content, desc and
    /// tags, one request per config.
    ///
    /// The listing has no ORDER BY on the server, so rows can move between pages while they are
    /// written; duplicates are dropped and the total is checked against the server's count.
    pub async fn configs(&self, namespace: &str) -> Result<Vec<ConfigItem>, NodeError> {
        let v3 = self.is_v3();
        // v1 spells the default namespace as an empty tenant; v3 as `public`.
        let (path, ns_param, group_field) = if v3 {
            ("/v3/admin/cs/config/list", "namespaceId", "groupName")
        } else {
            ("/v1/cs/configs", "tenant", "group")
        };
        let tenant = if v3 {
            namespace.to_owned()
        } else {
            api_tenant(namespace)
        };
        let mut out: BTreeMap<(String, String), ConfigItem> = BTreeMap::new();
        let mut page = 1usize;
        let total = loop {
            let params = [
                ("search", "accurate".into()),
                ("dataId", String::new()),
                (group_field, String::new()),
                (ns_param, tenant.clone()),
                ("pageNo", page.to_string()),
                ("pageSize", PAGE_SIZE.to_string()),
            ];
            let v = if v3 {
                self.v3_data(path, &params).await?
            } else {
                self.get_json(path, &params).await?
            };
            let total = v.get("totalCount").and_then(Value::as_u64).unwrap_or(0);
            let items = v
                .get("pageItems")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = items.len();
            for it in items {
                let group = str_field(&it, group_field).to_owned();
                let data_id = str_field(&it, "dataId").to_owned();
                let content = it.get("content").and_then(Value::as_str).map(str::to_owned);
                out.insert(
                    (group.clone(), data_id.clone()),
                    ConfigItem {
                        key: ConfigKey {
                            namespace: canonical_namespace(namespace),
                            group,
                            data_id,
                            variant: String::new(),
                        },
                        md5: String::new(),
                        content,
                        r#type: str_field(&it, "type").to_owned(),
                        app: str_field(&it, "appName").to_owned(),
                        desc: String::new(),
                        tags: Vec::new(),
                        modified_ms: None,
                    },
                );
            }
            // Paged by count: 3.x's `pagesAvailable` is not to be trusted on every list.
            if n == 0 || n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= total {
                break total;
            }
            page += 1;
        };
        if (out.len() as u64) < total {
            return Err(self.err(
                format!("config listing of namespace `{namespace}` returned {} of {total} configs (changed while paging?)", out.len()),
                true,
                None,
            ));
        }
        Ok(out.into_values().collect())
    }

    /// One config through the v3 admin API: content, desc and tags. `Ok(false)` if it is gone.
    async fn config_detail_v3(&self, item: &mut ConfigItem) -> Result<bool, NodeError> {
        const PATH: &str = "/v3/admin/cs/config";
        let params = [
            ("dataId", item.key.data_id.clone()),
            ("groupName", item.key.group.clone()),
            ("namespaceId", item.key.namespace.clone()),
        ];
        let (status, _, body) = self
            .request(reqwest::Method::GET, PATH, &params, &[])
            .await?;
        if status == 404 {
            // Deleted between the listing and now.
            return Ok(false);
        }
        let d = self.envelope(&format!("GET {PATH}"), status, &body)?;
        item.content = d.get("content").and_then(Value::as_str).map(str::to_owned);
        item.desc = str_field(&d, "desc").to_owned();
        item.tags = tags_of(str_field(&d, "configTags"));
        Ok(true)
    }

    /// Fill desc and tags from `show=all` (DB-backed detail), and on 3.x content as well.
    /// Returns false if the server has no such view (or, on 3.x, the config is gone).
    pub async fn config_detail(&self, item: &mut ConfigItem) -> Result<bool, NodeError> {
        if self.is_v3() {
            return self.config_detail_v3(item).await;
        }
        let (status, _, body) = self
            .request(
                reqwest::Method::GET,
                "/v1/cs/configs",
                &[
                    ("show", "all".into()),
                    ("dataId", item.key.data_id.clone()),
                    ("group", item.key.group.clone()),
                    ("tenant", api_tenant(&item.key.namespace)),
                ],
                &[],
            )
            .await?;
        if status == 404 {
            return Ok(true);
        }
        if status != 200 {
            return Err(self.err(
                format!("GET /v1/cs/configs?show=all answered HTTP {status}"),
                status >= 500,
                Some(status),
            ));
        }
        let Ok(v) = serde_json::from_str::<Value>(&body) else {
            return Ok(false);
        };
        if v.get("dataId").is_none() {
            return Ok(false);
        }
        item.desc = str_field(&v, "desc").to_owned();
        item.tags = tags_of(str_field(&v, "configTags"));
        Ok(true)
    }

    /// `(group, name)` of every service in a namespace, all groups: the v1 catalog, or the v3
    /// admin list on 3.x (the same fields under other names).
    pub async fn service_names(&self, namespace: &str) -> Result<Vec<(String, String)>, NodeError> {
        let v3 = self.is_v3();
        let mut out = Vec::new();
        let mut page = 1usize;
        loop {
            let mut params = vec![
                ("namespaceId", namespace.to_owned()),
                ("pageNo", page.to_string()),
                ("pageSize", PAGE_SIZE.to_string()),
                ("groupNameParam", String::new()),
                ("serviceNameParam", String::new()),
            ];
            let (v, list_field, count_field) = if v3 {
                params.push(("ignoreEmptyService", "false".into()));
                let v = self.v3_data("/v3/admin/ns/service/list", &params).await?;
                (v, "pageItems", "totalCount")
            } else {
                params.push(("withInstances", "false".into()));
                params.push(("hasIpCount", "false".into()));
                let v = self.get_json("/v1/ns/catalog/services", &params).await?;
                (v, "serviceList", "count")
            };
            let list = v
                .get(list_field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let count = v.get(count_field).and_then(Value::as_u64).unwrap_or(0);
            let n = list.len();
            for s in list {
                let group = s
                    .get("groupName")
                    .and_then(Value::as_str)
                    .unwrap_or("DEFAULT_GROUP")
                    .to_owned();
                let mut name = str_field(&s, "name").to_owned();
                if let Some((_, n)) = name.split_once("@@") {
                    name = n.to_owned();
                }
                out.push((group, name));
            }
            // Paged by count: 3.1's `pagesAvailable` is off by one and more.
            if n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= count {
                break;
            }
            page += 1;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// A service and its instances through the v3 admin API (the instance list is the
    /// console's catalog: disabled instances included).
    async fn service_v3(
        &self,
        namespace: &str,
        group: &str,
        name: &str,
    ) -> Result<Service, NodeError> {
        let params = [
            ("namespaceId", namespace.to_owned()),
            ("serviceName", name.to_owned()),
            ("groupName", group.to_owned()),
        ];
        let v = self.v3_data("/v3/admin/ns/service", &params).await?;
        let (status, _, body) = self
            .request(
                reqwest::Method::GET,
                "/v3/admin/ns/instance/list",
                &[
                    ("namespaceId", namespace.to_owned()),
                    ("serviceName", name.to_owned()),
                    ("groupName", group.to_owned()),
                    ("healthyOnly", "false".into()),
                ],
                &[],
            )
            .await?;
        let list: Vec<Value> = match status {
            // A service with no instance record yet answers "not found".
            404 => Vec::new(),
            200 => serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
                .ok_or_else(|| {
                    self.err(
                        "GET /v3/admin/ns/instance/list: response is not a JSON list; truncated body?",
                        true,
                        Some(status),
                    )
                })?,
            _ => {
                let snippet: String = body.chars().take(200).collect();
                return Err(self.err(
                    format!("GET /v3/admin/ns/instance/list answered HTTP {status}: {snippet}"),
                    status >= 500,
                    Some(status),
                ));
            }
        };
        let instances = list.iter().map(|i| parse_instance(i, "")).collect();
        Ok(service_of(namespace, group, name, &v, instances))
    }

    /// A service's detail and every instance of every cluster (disabled ones included).
    pub async fn service(
        &self,
        namespace: &str,
        group: &str,
        name: &str,
    ) -> Result<Service, NodeError> {
        if self.is_v3() {
            return self.service_v3(namespace, group, name).await;
        }
        let grouped = format!("{group}@@{name}");
        let params = [
            ("namespaceId", namespace.to_owned()),
            ("serviceName", name.to_owned()),
            ("groupName", group.to_owned()),
        ];
        let (status, _, body) = self
            .request(reqwest::Method::GET, "/v1/ns/service", &params, &[])
            .await?;
        let v: Value = if status == 200 {
            serde_json::from_str(&body).map_err(|e| {
                self.err(
                    format!("GET /v1/ns/service: response is not valid JSON ({e})"),
                    true,
                    Some(status),
                )
            })?
        } else if body.contains("service not found") {
            // r-nacos lists services that were created implicitly by a registration but keeps no
            // service record for them: such a service has default metadata and no cluster list.
            Value::Null
        } else {
            let snippet: String = body.chars().take(200).collect();
            return Err(self.err(
                format!("GET /v1/ns/service answered HTTP {status}: {snippet}"),
                status >= 500,
                Some(status),
            ));
        };
        let mut clusters: Vec<String> = v
            .get("clusters")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if clusters.is_empty() {
            clusters.push(String::new());
        }
        let mut instances = Vec::new();
        for cluster in clusters {
            let mut page = 1usize;
            loop {
                let iv = self
                    .get_json(
                        "/v1/ns/catalog/instances",
                        &[
                            ("namespaceId", namespace.to_owned()),
                            ("serviceName", grouped.clone()),
                            ("groupName", group.to_owned()),
                            ("clusterName", cluster.clone()),
                            ("pageNo", page.to_string()),
                            ("pageSize", PAGE_SIZE.to_string()),
                        ],
                    )
                    .await?;
                let list = iv
                    .get("list")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let n = list.len();
                for i in &list {
                    instances.push(parse_instance(i, &cluster));
                }
                let count = iv.get("count").and_then(Value::as_u64).unwrap_or(0);
                if n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= count {
                    break;
                }
                page += 1;
            }
        }
        Ok(service_of(namespace, group, name, &v, instances))
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * (1 << attempt.min(5)))
}

/// The v1 API spells the default namespace as an empty tenant.
#[must_use]
pub fn api_tenant(namespace: &str) -> String {
    if namespace == "public" {
        String::new()
    } else {
        namespace.to_owned()
    }
}

/// The SDK connections of a `/v2/core/loader/current` answer, sorted by id.
fn connections_of(map: &serde_json::Map<String, Value>) -> Vec<ClientConnection> {
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
                    t => crate::model::canonical_namespace(t),
                },
                since: text("createTime"),
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// A service from its detail (v1 or v3: the same field names) and its instances, which are
/// sorted and deduplicated by (cluster, ip, port): pages can overlap while instances change.
fn service_of(
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

/// Members as `/v1/core/cluster/nodes` and `/v3/admin/core/cluster/node/list` list them.
fn members_of(list: &[Value]) -> Vec<Member> {
    list.iter()
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
        .collect()
}

/// Namespaces as `/v1/console/namespaces` and `/v3/admin/core/namespace/list` list them.
fn namespaces_of(list: &[Value]) -> Vec<Namespace> {
    let mut out: Vec<Namespace> = list
        .iter()
        .map(|n| Namespace {
            id: canonical_namespace(str_field(n, "namespace")),
            name: str_field(n, "namespaceShowName").to_owned(),
            desc: str_field(n, "namespaceDesc").to_owned(),
        })
        .collect();
    crate::model::normalise_namespaces(&mut out);
    out
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

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
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

fn parse_instance(i: &Value, cluster: &str) -> Instance {
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

/// Largest listener batch: servers reject more than 10 000 entries per request.
pub const LISTENER_BATCH: usize = 5_000;

/// A key that no one publishes, sent with a bogus md5 in
/// every listener batch so the server always has one difference to report and answers at once.
/// Without it a server with nothing to report may hold the request for the whole long-poll timeout
/// (r-nacos 0.8.8 ignores `Long-Pulling-Timeout-No-Hangup`).
const CANARY_DATA_ID: &str = "nacos-drift.probe-canary";

impl NacosNode {
    /// Cluster members, or `None` if the server has no members API (r-nacos).
    pub async fn members(&self) -> Result<Option<Vec<Member>>, NodeError> {
        let (status, body, v3) = self
            .request_moved(
                reqwest::Method::GET,
                "/v1/core/cluster/nodes",
                "/v3/admin/core/cluster/node/list",
                &[],
            )
            .await?;
        if v3 {
            let data = self.envelope("GET /v3/admin/core/cluster/node/list", status, &body)?;
            return Ok(Some(members_of(
                data.as_array().map_or(&[][..], Vec::as_slice),
            )));
        }
        if status == 404 || (status == 200 && body.trim().is_empty()) {
            return Ok(None);
        }
        if status != 200 {
            return Err(self.err(
                format!("GET /v1/core/cluster/nodes answered HTTP {status}"),
                status >= 500,
                Some(status),
            ));
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|_| self.err("cluster members answer is not JSON", false, Some(status)))?;
        let list = v
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(Some(members_of(&list)))
    }

    /// SDK connections held by this node, or `None` if the server does not list connections
    /// (Nacos 1.x, r-nacos: 404). Connections from other cluster members are left out.
    pub async fn client_connections(&self) -> Result<Option<Vec<ClientConnection>>, NodeError> {
        const PATH: &str = "/v2/core/loader/current";
        const V3_PATH: &str = "/v3/admin/core/loader/current";
        let (status, body, v3) = self
            .request_moved(reqwest::Method::GET, PATH, V3_PATH, &[])
            .await?;
        if status == 404 && !v3 {
            return Ok(None);
        }
        let map = if v3 {
            // Nacos 3.x: the same map, in the v3 admin envelope.
            self.envelope(&format!("GET {V3_PATH}"), status, &body)?
        } else if status == 200 {
            serde_json::from_str(&body).map_err(|e| {
                self.err(
                    format!("GET {PATH}: response is not valid JSON ({e}); truncated body?"),
                    true,
                    Some(status),
                )
            })?
        } else {
            let snippet: String = body.chars().take(200).collect();
            return Err(self.err(
                format!("GET {PATH} answered HTTP {status}: {snippet}"),
                status >= 500,
                Some(status),
            ));
        };
        let Some(map) = map.as_object() else {
            return Err(self.err(
                format!("GET {PATH}: expected a JSON object of connections"),
                false,
                Some(status),
            ));
        };
        Ok(Some(connections_of(map)))
    }

    /// The listener md5 probe: which of these `(namespace, group, dataId, md5)` entries the node's cache disagrees with.
    ///
    /// Returns the indices (into `keys`) that differ. An empty md5 means "should not exist": the node
    /// reports it only if it still caches the config.
    pub async fn probe(
        &self,
        keys: &[(String, String, String, String)],
    ) -> Result<Vec<usize>, NodeError> {
        let mut index: std::collections::HashMap<(String, String, String), usize> =
            std::collections::HashMap::with_capacity(keys.len());
        let mut body = String::with_capacity(keys.len() * 64 + 64);
        for (i, (ns, group, data_id, md5)) in keys.iter().enumerate() {
            let tenant = api_tenant(ns);
            index.insert((tenant.clone(), group.clone(), data_id.clone()), i);
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
        let (status, _, resp) = self
            .request(
                reqwest::Method::POST,
                "/v1/cs/configs/listener",
                &[("Listening-Configs", body)],
                &[
                    ("Long-Pulling-Timeout", "30000"),
                    ("Long-Pulling-Timeout-No-Hangup", "true"),
                ],
            )
            .await?;
        if status != 200 {
            let snippet: String = resp.chars().take(200).collect();
            return Err(self.err(
                format!("listener probe answered HTTP {status}: {snippet}"),
                status >= 500,
                Some(status),
            ));
        }
        let decoded = urlencoding::decode(resp.trim())
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| resp.clone());
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
            let k = (tenant.to_owned(), parts[1].to_owned(), parts[0].to_owned());
            if let Some(i) = index.get(&k) {
                out.push(*i);
            } else if tenant == "public" {
                // 3.x names the default namespace `public` in its answer.
                if let Some(i) =
                    index.get(&(String::new(), parts[1].to_owned(), parts[0].to_owned()))
                {
                    out.push(*i);
                }
            }
        }
        if !canary {
            return Err(self.err(
                "listener probe answer did not include the canary key: cannot trust it (not a Nacos listener?)",
                false,
                Some(status),
            ));
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Plain GET of one config from this node's cache.
    pub async fn served(
        &self,
        namespace: &str,
        group: &str,
        data_id: &str,
    ) -> Result<Served, NodeError> {
        let (status, headers, body) = self
            .request(
                reqwest::Method::GET,
                "/v1/cs/configs",
                &[
                    ("dataId", data_id.to_owned()),
                    ("group", group.to_owned()),
                    ("tenant", api_tenant(namespace)),
                ],
                &[],
            )
            .await?;
        if status != 200 && status != 404 {
            return Err(self.err(
                format!("GET /v1/cs/configs answered HTTP {status}"),
                status >= 500,
                Some(status),
            ));
        }
        let md5 = headers
            .get("Content-MD5")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                if status == 200 {
                    crate::model::md5_hex(&body)
                } else {
                    String::new()
                }
            });
        let last_modified_ms = headers
            .get("Last-Modified")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::cache::parse_http_date);
        Ok(Served {
            status,
            md5: if status == 404 { String::new() } else { md5 },
            last_modified_ms,
        })
    }

    /// Full reload of this node's cache from its DB (asynchronous on the server).
    pub async fn reload_all(&self, identity: Option<(&str, &str)>) -> Result<(), NodeError> {
        let headers: Vec<(&str, &str)> = identity.into_iter().collect();
        // 3.x: the v1 ops API is off by default; the v3 admin API replaces it.
        let (status, body, v3) = self
            .request_moved(
                reqwest::Method::POST,
                "/v1/cs/ops/localCache",
                "/v3/admin/cs/ops/localCache",
                &headers,
            )
            .await?;
        if status != 200 {
            return Err(self.err(
                format!(
                    "full reload{} answered HTTP {status}: {}",
                    if v3 { " (v3 admin)" } else { "" },
                    body.chars().take(200).collect::<String>()
                ),
                status >= 500,
                Some(status),
            ));
        }
        Ok(())
    }

    /// Incremental reload of one config through the HTTP `dataChange` endpoint (Nacos ≤ 2.2.0).
    pub async fn data_change(
        &self,
        namespace: &str,
        group: &str,
        data_id: &str,
        identity: Option<(&str, &str)>,
    ) -> Result<(), NodeError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            .to_string();
        let mut headers: Vec<(&str, &str)> = vec![("lastModified", now.as_str())];
        headers.extend(identity);
        let mut params = vec![("dataId", data_id.to_owned()), ("group", group.to_owned())];
        let tenant = api_tenant(namespace);
        if !tenant.is_empty() {
            params.push(("tenant", tenant));
        }
        let (status, _, body) = self
            .request(
                reqwest::Method::GET,
                "/v1/cs/communication/dataChange",
                &params,
                &headers,
            )
            .await?;
        if status != 200 {
            return Err(self.err(
                format!(
                    "dataChange answered HTTP {status}: {}",
                    body.chars().take(200).collect::<String>()
                ),
                status >= 500,
                Some(status),
            ));
        }
        Ok(())
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
        let c = connections_of(v.as_object().unwrap());
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].ip, "10.0.0.5");
        assert_eq!(c[0].app, "orders");
        assert_eq!(c[0].namespace, "", "no tenant: any namespace");
    }
}
