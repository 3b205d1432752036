//! Test-side helpers that change the real servers: publish/delete configs, register instances, write DB rows.
//!
//! These stand for what people and apps do during a migration; nacos-drift itself never writes any of it.

#![allow(dead_code)] // why: each test module uses a different subset.

use std::collections::HashMap;

/// A blocking wrapper over an async call, for synchronous tests.
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// One Nacos node seen from a test.
#[derive(Clone)]
pub struct Node {
    pub base: String,
    token: Option<String>,
    /// Nacos 3.x: writes and catalog reads go through the v3 admin API.
    pub v3: bool,
}

/// The token in headers, never in the URL (the bed's access logs record request lines): Java
/// Nacos 2.0.4 reads only `Authorization: Bearer` from headers (`NacosAuthManager.resolveToken`),
/// 2.2+ and 3.x read it and an `accessToken` header (`NacosAuthPluginService.resolveToken` over
/// `HttpIdentityContextBuilder`'s headers), r-nacos reads both (`openapi/middle/auth_middle.rs`).
pub fn with_token(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req
            .header("Authorization", format!("Bearer {t}"))
            .header("accessToken", t),
        None => req,
    }
}

impl Node {
    /// Log in (if credentials are given) and return the node.
    pub fn login(base: &str, user: &str, pass: &str) -> Node {
        let mut n = Node {
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            v3: false,
        };
        if !user.is_empty() {
            let (status, body) = n.call(
                "POST",
                "/v1/auth/login",
                &[("username", user), ("password", pass)],
            );
            assert_eq!(status, 200, "login on {base}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            n.token = v["accessToken"].as_str().map(str::to_owned);
        }
        let (s, b) = n.call("GET", "/v3/admin/core/state", &[]);
        n.v3 = s == 200 && b.contains("\"code\":0");
        n
    }

    /// A raw call; returns status and body.
    pub fn call(&self, method: &str, path: &str, params: &[(&str, &str)]) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let all: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        block(async {
            nacos_drift::tls::install_provider();
            let c = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap();
            let req = match method {
                "GET" => c.get(&url).query(&all),
                "DELETE" => c.delete(&url).query(&all),
                "PUT" => c.put(&url).query(&all),
                _ => c.post(&url).form(&all),
            };
            let r = with_token(req, self.token.as_deref())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        })
    }

    fn ok(&self, method: &str, path: &str, params: &[(&str, &str)]) -> String {
        let (s, b) = self.call(method, path, params);
        assert_eq!(
            s, 200,
            "{method} {}{path} {params:?}: HTTP {s}: {b}",
            self.base
        );
        b
    }

    /// Create a namespace.
    pub fn create_namespace(&self, id: &str) {
        if self.v3 {
            self.ok(
                "POST",
                "/v3/admin/core/namespace",
                &[
                    ("namespaceId", id),
                    ("namespaceName", id),
                    ("namespaceDesc", id),
                ],
            );
            return;
        }
        self.ok(
            "POST",
            "/v1/console/namespaces",
            &[
                ("customNamespaceId", id),
                ("namespaceName", id),
                ("namespaceDesc", id),
            ],
        );
    }

    /// Publish (create or update) a config.
    pub fn publish(&self, ns: &str, group: &str, data_id: &str, content: &str) {
        if self.v3 {
            self.ok(
                "POST",
                "/v3/admin/cs/config",
                &[
                    ("namespaceId", ns),
                    ("groupName", group),
                    ("dataId", data_id),
                    ("content", content),
                    ("type", "text"),
                ],
            );
            return;
        }
        self.ok(
            "POST",
            "/v1/cs/configs",
            &[
                ("tenant", ns),
                ("group", group),
                ("dataId", data_id),
                ("content", content),
                ("type", "text"),
            ],
        );
    }

    /// Delete a config.
    pub fn delete_config(&self, ns: &str, group: &str, data_id: &str) {
        if self.v3 {
            self.ok(
                "DELETE",
                "/v3/admin/cs/config",
                &[
                    ("namespaceId", ns),
                    ("groupName", group),
                    ("dataId", data_id),
                ],
            );
            return;
        }
        self.ok(
            "DELETE",
            "/v1/cs/configs",
            &[("tenant", ns), ("group", group), ("dataId", data_id)],
        );
    }

    /// GET a config from this node's cache: (status, content, Content-MD5).
    pub fn get_config(&self, ns: &str, group: &str, data_id: &str) -> (u16, String, String) {
        let url = format!("{}/v1/cs/configs", self.base);
        let q = vec![
            ("tenant", ns.to_owned()),
            ("group", group.to_owned()),
            ("dataId", data_id.to_owned()),
        ];
        block(async {
            nacos_drift::tls::install_provider();
            let r = with_token(
                reqwest::Client::new().get(&url).query(&q),
                self.token.as_deref(),
            )
            .send()
            .await
            .unwrap();
            let s = r.status().as_u16();
            let md5 = r
                .headers()
                .get("Content-MD5")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (s, r.text().await.unwrap_or_default(), md5)
        })
    }

    /// Register a persistent instance (no heartbeats needed), and wait until the node lists it
    /// with these values (persistent instances are committed through Raft, asynchronously).
    pub fn register(
        &self,
        ns: &str,
        group: &str,
        service: &str,
        port: u16,
        extra: &[(&str, &str)],
    ) {
        self.instance_call("POST", ns, group, service, port, extra);
    }

    /// Update an instance (weight, enabled, metadata ...) and wait until the node lists the change.
    pub fn update_instance(
        &self,
        ns: &str,
        group: &str,
        service: &str,
        port: u16,
        extra: &[(&str, &str)],
    ) {
        self.instance_call("PUT", ns, group, service, port, extra);
    }

    fn instance_call(
        &self,
        method: &str,
        ns: &str,
        group: &str,
        service: &str,
        port: u16,
        extra: &[(&str, &str)],
    ) {
        let port_s = port.to_string();
        let mut p = vec![
            ("namespaceId", ns),
            ("groupName", group),
            ("serviceName", service),
            ("ip", "127.0.0.1"),
            ("port", port_s.as_str()),
            ("ephemeral", "false"),
        ];
        p.extend_from_slice(extra);
        let path = if self.v3 {
            "/v3/admin/ns/instance"
        } else {
            "/v1/ns/instance"
        };
        // Right after start-up, or after a disruptive test paused a member, the naming Raft group
        // may still be electing its leader ("Could not find leader : naming_persistent_service_v2").
        let mut answer = self.call(method, path, &p);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while answer.0 == 500
            && answer.1.to_lowercase().contains("leader")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(500));
            answer = self.call(method, path, &p);
        }
        assert_eq!(
            answer.0, 200,
            "{method} {}{path} {p:?}: HTTP {}: {}",
            self.base, answer.0, answer.1
        );
        let matches = |i: &serde_json::Value| {
            i["port"] == port
                && i["ephemeral"] == false
                && extra.iter().all(|(k, v)| match *k {
                    "weight" => i["weight"].as_f64() == v.parse::<f64>().ok(),
                    "enabled" => i["enabled"].as_bool() == v.parse::<bool>().ok(),
                    "metadata" => {
                        serde_json::from_str::<serde_json::Value>(v).ok().as_ref()
                            == Some(&i["metadata"])
                    }
                    _ => true,
                })
        };
        assert!(
            wait_until(30, || self
                .catalog_instances(ns, group, service)
                .iter()
                .any(matches)),
            "{} did not list {method} of 127.0.0.1:{port} {extra:?}",
            self.base
        );
    }

    /// Number of instances the node lists for a service (all clusters, enabled only).
    pub fn instance_count(&self, ns: &str, group: &str, service: &str) -> usize {
        if self.v3 {
            return self
                .catalog_instances(ns, group, service)
                .iter()
                .filter(|i| i["enabled"] == true)
                .count();
        }
        let name = format!("{group}@@{service}");
        let (s, b) = self.call(
            "GET",
            "/v1/ns/instance/list",
            &[("namespaceId", ns), ("serviceName", &name)],
        );
        if s != 200 {
            return 0;
        }
        let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_default();
        v["hosts"].as_array().map_or(0, Vec::len)
    }
}

impl Node {
    /// The instances the catalog API lists for one cluster of a service (disabled ones included).
    pub fn catalog_instances(
        &self,
        ns: &str,
        group: &str,
        service: &str,
    ) -> Vec<serde_json::Value> {
        if self.v3 {
            let (s, b) = self.call(
                "GET",
                "/v3/admin/ns/instance/list",
                &[
                    ("namespaceId", ns),
                    ("serviceName", service),
                    ("groupName", group),
                    ("healthyOnly", "false"),
                ],
            );
            if s != 200 {
                return Vec::new();
            }
            let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_default();
            return v["data"].as_array().cloned().unwrap_or_default();
        }
        let name = format!("{group}@@{service}");
        let (s, b) = self.call(
            "GET",
            "/v1/ns/catalog/instances",
            &[
                ("namespaceId", ns),
                ("serviceName", &name),
                ("groupName", group),
                ("clusterName", "DEFAULT"),
                ("pageNo", "1"),
                ("pageSize", "100"),
            ],
        );
        if s != 200 {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_default();
        v["list"].as_array().cloned().unwrap_or_default()
    }
}

/// A TCP listener kept open so that Nacos's TCP health check sees a persistent instance as healthy.
pub fn live_port() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

/// Run SQL on a test-bed database (DSN with password, as `testbed env` prints it).
pub fn sql(dsn: &str, stmt: &str) {
    let dsn = dsn.to_owned();
    let stmt = stmt.to_owned();
    block(async move {
        use mysql_async::prelude::*;
        let pool = mysql_async::Pool::new(dsn.as_str());
        let mut c = pool.get_conn().await.unwrap();
        c.query_drop(stmt).await.unwrap();
        drop(c);
        pool.disconnect().await.unwrap();
    });
}

/// One value of a query, if any row.
pub fn sql_value(dsn: &str, stmt: &str) -> Option<String> {
    let dsn = dsn.to_owned();
    let stmt = stmt.to_owned();
    block(async move {
        use mysql_async::prelude::*;
        let pool = mysql_async::Pool::new(dsn.as_str());
        let mut c = pool.get_conn().await.unwrap();
        let v: Option<Option<String>> = c.query_first(stmt).await.unwrap();
        drop(c);
        pool.disconnect().await.unwrap();
        v.flatten()
    })
}

/// Wait until `f` is true, up to `secs`; returns whether it became true.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    f()
}

/// Parsed JSON report of a run plus its exit code and combined output.
pub struct Run {
    pub code: i32,
    pub json: serde_json::Value,
    pub output: String,
}

impl Run {
    /// `(code, layer, namespace/group/name[ instance])` of every finding, sorted.
    pub fn findings(&self) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = self.json["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        let mut loc = format!(
                            "{}/{}/{}",
                            f["group"].as_str().unwrap_or(""),
                            f["name"].as_str().unwrap_or(""),
                            f["variant"].as_str().unwrap_or("")
                        );
                        if let Some(i) = f["instance"].as_str() {
                            loc.push(' ');
                            loc.push_str(i.split('@').next().unwrap_or(i));
                        }
                        (
                            f["code"].as_str().unwrap_or("").to_owned(),
                            f["layer"].as_str().unwrap_or("").to_owned(),
                            loc,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Distinct codes found.
    pub fn codes(&self) -> Vec<String> {
        let mut c: Vec<String> = self.findings().into_iter().map(|f| f.0).collect();
        c.dedup();
        c
    }
}

/// Run `nacos-drift audit` with these args and env, JSON into a temp dir.
pub fn audit(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = crate::support::tempdir("audit");
    let mut all: Vec<&str> = vec!["audit", "--format", "json", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = crate::support::run(&all, env);
    let output = crate::support::text(&o);
    let json = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    Run {
        code: o.status.code().unwrap_or(-1),
        json,
        output,
    }
}

/// [`audit`], calling `at` once, while the audit waits, when its log shows a line containing
/// `marker` (so a test acts on an event of the run, not after a guessed delay).
pub fn audit_at_log_line(
    args: &[&str],
    env: &[(&str, &str)],
    marker: &str,
    at: impl FnOnce(),
) -> Run {
    use std::io::BufRead;
    let out = crate::support::tempdir("audit");
    let mut cmd = std::process::Command::new(crate::support::bin());
    cmd.args(["audit", "--format", "json", "--out", out.to_str().unwrap()])
        .args(args)
        .current_dir(crate::support::root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("NACOS_DRIFT_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("NACOS_DRIFT_LOG", "nacos_drift=info");
    let mut child = cmd.spawn().expect("running nacos-drift");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut s).ok();
        s
    });
    let mut err = String::new();
    let mut at = Some(at);
    for line in std::io::BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if line.contains(marker) {
            if let Some(f) = at.take() {
                f();
            }
        }
        err.push_str(&line);
        err.push('\n');
    }
    let status = child.wait().unwrap();
    let output = format!("{}{err}", reader.join().unwrap());
    assert!(at.is_none(), "the audit never logged `{marker}`:\n{output}");
    let json = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    Run {
        code: status.code().unwrap_or(-1),
        json,
        output,
    }
}

/// Credentials env for both sides.
pub fn cred_env(user: &str, pass: &str) -> HashMap<&'static str, String> {
    let mut m = HashMap::new();
    m.insert("NACOS_DRIFT_SOURCE_NACOS_USERNAME", user.to_owned());
    m.insert("NACOS_DRIFT_SOURCE_NACOS_PASSWORD", pass.to_owned());
    m.insert("NACOS_DRIFT_TARGET_NACOS_USERNAME", user.to_owned());
    m.insert("NACOS_DRIFT_TARGET_NACOS_PASSWORD", pass.to_owned());
    m
}

/// Split a DSN with password into (DSN without password, password).
pub fn split_dsn(dsn: &str) -> (String, String) {
    let rest = dsn.strip_prefix("mysql://").unwrap();
    let (auth, host) = rest.rsplit_once('@').unwrap();
    let (user, pw) = auth.split_once(':').unwrap_or((auth, ""));
    (format!("mysql://{user}@{host}"), pw.to_owned())
}

/// Lowercase hex MD5 of a string, as Nacos computes it.
pub fn md5(s: &str) -> String {
    nacos_drift::model::md5_hex(s)
}

/// A real application client: the official Nacos Java SDK, connected to one node over gRPC
/// (`tests/testbed/testbed sdk-client`) until dropped.
pub struct SdkClient {
    child: std::process::Child,
}

impl SdkClient {
    /// Connect to the node at `base` (`http://host:port/nacos`) as app `app`; waits until the
    /// connection is up.
    pub fn connect(base: &str, namespace: &str, app: &str) -> SdkClient {
        use std::io::BufRead;
        let addr = base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let mut child =
            std::process::Command::new(crate::support::root().join("tests/testbed/testbed"))
                .args(["sdk-client", &addr, namespace, app])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("starting the SDK client");
        let out = child.stdout.take().unwrap();
        let line = std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("connected"));
        assert_eq!(
            line.as_deref(),
            Some("connected UP"),
            "the SDK client did not connect to {addr}"
        );
        SdkClient { child }
    }
}

impl Drop for SdkClient {
    fn drop(&mut self) {
        // Closing stdin makes the client shut down cleanly (the server drops the connection).
        drop(self.child.stdin.take());
        let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
