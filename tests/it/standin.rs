//! A stand-in Nacos node for faults a real server cannot be made to show on demand.
//!
//! It answers every endpoint nacos-drift calls the way a healthy Nacos 2.3.2 node does, with one
//! namespace holding one config and one service with one instance, unless a test's `fault`
//! function returns something else for a request. It records every request head and counts
//! connections (every answer closes its connection, so one connection is one request).

#![allow(dead_code)] // why: each test module uses a different subset.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Path without the query.
    pub path: String,
    /// The whole head (request line and headers).
    pub head: String,
    /// The body (forms).
    pub body: String,
}

impl Request {
    /// Whether a query or form parameter has this value.
    pub fn param_is(&self, k: &str, v: &str) -> bool {
        let q = self.target.split_once('?').map_or("", |(_, q)| q);
        [q, self.body.as_str()].iter().any(|s| {
            s.split('&')
                .any(|kv| kv.split_once('=') == Some((k, v)) || (v.is_empty() && kv == k))
        })
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status line text (e.g. `200 OK`), extra headers, body.
    Http(&'static str, Vec<(String, String)>, Vec<u8>),
    /// Claims a body of this length, sends the first half, closes.
    Truncated(Vec<u8>),
    /// A 200 answer whose body never ends (until the client goes away).
    Endless,
    /// Accepts and never answers.
    Hang,
    /// These bytes as they are (a real node's whole answer: [`forward`]).
    Raw(Vec<u8>),
}

impl Reply {
    /// A 200 JSON answer.
    pub fn json(body: &str) -> Reply {
        Reply::Http("200 OK", Vec::new(), body.as_bytes().to_vec())
    }
    /// A 200 answer of any text with this content type.
    pub fn text(content_type: &str, body: &str) -> Reply {
        Reply::Http(
            "200 OK",
            vec![("Content-Type".into(), content_type.into())],
            body.as_bytes().to_vec(),
        )
    }
}

/// What the stand-in holds.
pub const NAMESPACE: &str = "standin-ns";
/// The one config's dataId.
pub const DATA_ID: &str = "app.yaml";
/// The one service.
pub const SERVICE: &str = "orders";

/// A running stand-in node.
pub struct StandIn {
    /// Base URL with the `/nacos` context path.
    pub base: String,
    /// Every request head, in order.
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// Body bytes written by endless answers.
    pub streamed: Arc<AtomicUsize>,
}

impl StandIn {
    /// Requests whose path is this (below `/nacos`).
    pub fn count(&self, path: &str) -> usize {
        let full = format!("/nacos{path}");
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == full)
            .count()
    }
}

type Fault = dyn Fn(&Request, &Reply) -> Option<Reply> + Send + Sync;

/// Which server the stand-in plays when healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Nacos 2.3.2 (v1 API), namespace [`NAMESPACE`].
    V2,
    /// Nacos 3.1 (v3 admin API), answering what the bed's 3.1 node answered
    /// (`fixtures/answers/nacos-3.1/`), namespace [`NAMESPACE_V3`].
    V3,
}

/// The namespace of the 3.x flavour (that of the captured answers).
pub const NAMESPACE_V3: &str = "fixture-ns";

/// Start a 2.3.2 stand-in; `fault` may replace the healthy answer (its second argument) to any request.
pub fn start(
    token: &str,
    fault: impl Fn(&Request, &Reply) -> Option<Reply> + Send + Sync + 'static,
) -> StandIn {
    start_as(Flavour::V2, token, fault)
}

/// Start a stand-in of this flavour.
pub fn start_as(
    flavour: Flavour,
    token: &str,
    fault: impl Fn(&Request, &Reply) -> Option<Reply> + Send + Sync + 'static,
) -> StandIn {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = StandIn {
        base: format!("http://127.0.0.1:{port}/nacos"),
        requests: Arc::default(),
        connections: Arc::default(),
        streamed: Arc::default(),
    };
    let (requests, connections, streamed) = (
        s.requests.clone(),
        s.connections.clone(),
        s.streamed.clone(),
    );
    let fault: Arc<Fault> = Arc::new(fault);
    let token = token.to_owned();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            connections.fetch_add(1, Ordering::SeqCst);
            let (requests, streamed, fault, token) = (
                requests.clone(),
                streamed.clone(),
                fault.clone(),
                token.clone(),
            );
            // One thread per connection, so a hanging answer holds up nothing else.
            std::thread::spawn(move || {
                let Some(req) = read_request(&c) else { return };
                requests.lock().unwrap().push(req.clone());
                let good = match flavour {
                    Flavour::V2 => healthy(&req, port, &token),
                    Flavour::V3 => healthy_v3(&req, port, &token),
                };
                let reply = fault(&req, &good).unwrap_or(good);
                write_reply(c, reply, &streamed);
            });
        }
    });
    s
}

fn read_request(mut s: &TcpStream) -> Option<Request> {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let target = words.next().unwrap_or("").to_owned();
    let path = target.split('?').next().unwrap_or("").to_owned();
    Some(Request {
        method,
        target,
        path,
        head,
        body: String::from_utf8_lossy(&buf[end.min(buf.len())..]).into_owned(),
    })
}

fn write_reply(mut s: TcpStream, reply: Reply, streamed: &AtomicUsize) {
    match reply {
        Reply::Http(status, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                head.push_str("Content-Type: application/json;charset=UTF-8\r\n");
            }
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
        Reply::Truncated(body) => {
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body[..body.len() / 2]);
        }
        Reply::Endless => {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[",
            );
            let chunk = vec![b' '; 64 * 1024];
            while s.write_all(&chunk).is_ok() {
                streamed.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        }
        Reply::Hang => std::thread::sleep(Duration::from_secs(600)),
        Reply::Raw(bytes) => {
            let _ = s.write_all(&bytes);
        }
    }
    let _ = s.flush();
}

/// `req` asked of a real node at `upstream` (`host:port`) and its whole answer, for a stand-in
/// that faults some requests of a real server and passes the others on. Sent as HTTP/1.0, so
/// the node answers unchunked and closes (the answer is then passed on as it came).
pub fn forward(req: &Request, upstream: &str) -> Reply {
    let mut head = String::new();
    for (i, line) in req.head.split("\r\n").enumerate() {
        if i == 0 {
            head.push_str(&format!("{} {} HTTP/1.0\r\n", req.method, req.target));
        } else if !line.is_empty() && !line.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(line);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut s = TcpStream::connect(upstream).expect("upstream node");
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(req.body.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    Reply::Raw(answer)
}

/// The listener's answer to a probe: the canary, and no other key (every md5 matches).
fn listener_answer(req: &Request) -> String {
    let decoded = urlencoding::decode(req.body.split_once('=').map_or("", |(_, v)| v))
        .map(|c| c.replace('+', " "))
        .unwrap_or_default();
    decoded
        .split('\u{1}')
        .filter(|e| e.starts_with("nacos-drift.probe-canary"))
        .map(|e| {
            let parts: Vec<&str> = e.split('\u{2}').collect();
            format!("{}%02{}%01", parts[0], parts.get(1).unwrap_or(&""))
        })
        .collect()
}

/// A config export as Nacos builds it (`ZipUtils.zip`: one `group/dataId` entry per config,
/// then `.metadata.yml`; the layout of `fixtures/answers/export/`): `(group, dataId, content,
/// metadata lines)`.
pub fn export_zip(configs: &[(&str, &str, &str, &str)]) -> Reply {
    let mut meta = String::from("metadata:");
    if configs.is_empty() {
        meta.push_str(" []");
    }
    meta.push('\n');
    let mut entries = Vec::new();
    for (group, data_id, content, lines) in configs {
        entries.push((format!("{group}/{data_id}"), *content));
        meta.push_str(&format!("- dataId: {data_id}\n  group: {group}\n{lines}"));
    }
    let entries: Vec<(&str, &str)> = entries.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    export_zip_raw(&entries, &meta)
}

/// A zip of these `(name, content)` entries and this `.metadata.yml`, as a 200 answer.
pub fn export_zip_raw(entries: &[(&str, &str)], metadata: &str) -> Reply {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, content) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(content.as_bytes()).unwrap();
    }
    w.start_file(".metadata.yml", opts).unwrap();
    w.write_all(metadata.as_bytes()).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    Reply::Http(
        "200 OK",
        vec![("Content-Type".into(), "application/octet-stream".into())],
        bytes,
    )
}

/// What a healthy Nacos 2.3.2 node answers (shapes as captured from the bed's 2.3.2 nodes).
pub fn healthy(req: &Request, port: u16, token: &str) -> Reply {
    let ns = NAMESPACE;
    let p = req.path.strip_prefix("/nacos").unwrap_or(&req.path);
    match (req.method.as_str(), p) {
        ("POST", "/v1/auth/login") => Reply::Http(
            "200 OK",
            vec![("Authorization".into(), format!("Bearer {token}"))],
            format!(r#"{{"accessToken":"{token}","tokenTtl":18000,"globalAdmin":true,"username":"nacos"}}"#)
                .into_bytes(),
        ),
        ("GET", "/v1/console/server/state") => Reply::json(
            r#"{"standalone_mode":"cluster","function_mode":null,"version":"2.3.2","auth_enabled":"true","login_page_enabled":"true","auth_system_type":"nacos","console_ui_enabled":"true","startup_mode":"cluster"}"#,
        ),
        ("GET", "/v1/console/namespaces") => Reply::json(&format!(
            r#"{{"code":200,"message":null,"data":[{{"namespace":"","namespaceShowName":"public","namespaceDesc":null,"quota":200,"configCount":0,"type":0}},{{"namespace":"{ns}","namespaceShowName":"{ns}","namespaceDesc":"{ns}","quota":200,"configCount":1,"type":2}}]}}"#
        )),
        ("GET", "/v1/cs/configs") if req.param_is("exportV2", "true") => {
            if req.param_is("tenant", ns) {
                export_zip(&[("APP", DATA_ID, "x: 1", "  appName: ''\n  type: yaml\n")])
            } else {
                export_zip(&[])
            }
        }
        ("GET", "/v1/cs/configs") if req.param_is("show", "all") => Reply::json(&format!(
            r#"{{"id":"7","dataId":"{DATA_ID}","group":"APP","content":"x: 1","md5":"c4c1a2e8e5b1e3f5c6b1f2e3a4b5c6d7","encryptedDataKey":"","tenant":"{ns}","appName":"","type":"yaml","createTime":1764300000000,"modifyTime":1764300000000,"createUser":null,"createIp":"127.0.0.1","desc":null,"use":null,"effect":null,"schema":null,"configTags":null}}"#
        )),
        ("GET", "/v1/cs/configs") if req.param_is("search", "accurate") => {
            let items = if req.param_is("tenant", ns) {
                format!(
                    r#"[{{"id":"7","dataId":"{DATA_ID}","group":"APP","content":"x: 1","md5":null,"encryptedDataKey":null,"tenant":"{ns}","appName":"","type":"yaml"}}]"#
                )
            } else {
                "[]".to_owned()
            };
            let n = usize::from(items != "[]");
            Reply::json(&format!(
                r#"{{"totalCount":{n},"pageNumber":1,"pagesAvailable":{n},"pageItems":{items}}}"#
            ))
        }
        ("GET", "/v1/cs/configs") => Reply::Http(
            "200 OK",
            vec![
                ("Content-Type".into(), "text/plain;charset=UTF-8".into()),
                ("Content-MD5".into(), "0f7cc8b6fe16e5e2bd5c3ff6b5eb3d4c".into()),
            ],
            b"x: 1".to_vec(),
        ),
        ("GET", "/v1/ns/catalog/services") => {
            let list = if req.param_is("namespaceId", ns) {
                format!(
                    r#"[{{"name":"{SERVICE}","groupName":"DEFAULT_GROUP","clusterCount":1,"ipCount":1,"healthyInstanceCount":1,"triggerFlag":"false"}}]"#
                )
            } else {
                "[]".to_owned()
            };
            let n = usize::from(list != "[]");
            Reply::json(&format!(r#"{{"count":{n},"serviceList":{list}}}"#))
        }
        ("GET", "/v1/ns/service") => Reply::json(&format!(
            r#"{{"namespaceId":"{ns}","groupName":"DEFAULT_GROUP","name":"{SERVICE}","protectThreshold":0.0,"metadata":{{}},"selector":{{"type":"none","contextType":"NONE"}},"clusters":[{{"name":"DEFAULT","healthChecker":{{"type":"TCP"}},"metadata":{{}}}}]}}"#
        )),
        ("GET", "/v1/ns/catalog/instances") => Reply::json(&format!(
            r#"{{"count":1,"list":[{{"ip":"10.0.0.1","port":8080,"weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT","serviceName":"DEFAULT_GROUP@@{SERVICE}","metadata":{{}},"instanceHeartBeatInterval":5000,"instanceHeartBeatTimeOut":15000,"ipDeleteTimeout":30000,"instanceIdGenerator":"simple"}}]}}"#
        )),
        ("GET", "/v1/core/cluster/nodes") => Reply::json(&format!(
            r#"{{"code":200,"message":null,"data":[{{"ip":"127.0.0.1","port":{port},"state":"UP","extendInfo":{{"lastRefreshTime":1764300000000,"version":"2.3.2"}},"address":"127.0.0.1:{port}","failAccessCnt":0,"abilities":{{}},"grpcReportEnabled":true}}]}}"#
        )),
        ("POST", "/v1/cs/configs/listener") => {
            Reply::text("text/html;charset=UTF-8", &listener_answer(req))
        }
        ("GET", "/v2/core/loader/current") => Reply::json("{}"),
        // L4: nobody listens (`CommunicationController`, node-local).
        ("GET", "/v1/cs/communication/watcherConfigs" | "/v1/cs/communication/configWatchers") => {
            Reply::json(r#"{"lisentersGroupkeyStatus":{}}"#)
        }
        _ => Reply::Http("404 Not Found", Vec::new(), b"{}".to_vec()),
    }
}

/// What a healthy Nacos 3.1 node answers: the answers captured from the bed's 3.1 node.
pub fn healthy_v3(req: &Request, port: u16, token: &str) -> Reply {
    macro_rules! captured {
        ($f:literal) => {
            include_str!(concat!("../../fixtures/answers/nacos-3.1/", $f))
        };
    }
    let p = req.path.strip_prefix("/nacos").unwrap_or(&req.path);
    match (req.method.as_str(), p) {
        ("POST", "/v1/auth/login") | ("POST", "/v1/cs/configs/listener") => {
            healthy(req, port, token)
        }
        // 3.x without its console: the v1 state path is gone.
        ("GET", "/v1/console/server/state") => {
            Reply::Http("404 Not Found", Vec::new(), b"{}".to_vec())
        }
        ("GET", "/v3/admin/core/state") => Reply::json(captured!("state.json")),
        ("GET", "/v3/admin/core/namespace/list") => Reply::json(captured!("namespaces.json")),
        ("GET", "/v3/admin/cs/config/list") if req.param_is("namespaceId", NAMESPACE_V3) => {
            Reply::json(captured!("config-list.json"))
        }
        ("GET", "/v3/admin/cs/config/list") => Reply::json(
            r#"{"code":0,"message":"success","data":{"totalCount":0,"pageNumber":1,"pagesAvailable":0,"pageItems":[]}}"#,
        ),
        ("GET", "/v3/admin/cs/config") => Reply::json(captured!("config-detail.json")),
        // The export of the config that `config-detail.json` shows.
        ("GET", "/v3/admin/cs/config/export") if req.param_is("namespaceId", NAMESPACE_V3) => {
            export_zip(&[(
                "APP",
                "app.yaml",
                "x: 1\n",
                "  appName: orders\n  desc: the app\n  type: yaml\n",
            )])
        }
        ("GET", "/v3/admin/cs/config/export") => export_zip(&[]),
        ("GET", "/v1/cs/configs") => Reply::Http(
            "200 OK",
            vec![
                ("Content-Type".into(), "text/plain;charset=UTF-8".into()),
                (
                    "Content-MD5".into(),
                    "78a3bb7b0c5aa64f491058ea8199e4c9".into(),
                ),
            ],
            captured!("served.body").as_bytes().to_vec(),
        ),
        ("GET", "/v3/admin/ns/service/list")
            if req.param_is("namespaceId", NAMESPACE_V3)
                && req.param_is("withInstances", "true") =>
        {
            Reply::json(captured!("service-list-with-instances.json"))
        }
        ("GET", "/v3/admin/ns/service/list") if req.param_is("namespaceId", NAMESPACE_V3) => {
            Reply::json(captured!("service-list.json"))
        }
        ("GET", "/v3/admin/ns/service/list") => Reply::json(
            r#"{"code":0,"message":"success","data":{"totalCount":0,"pageNumber":1,"pagesAvailable":0,"pageItems":[]}}"#,
        ),
        ("GET", "/v3/admin/ns/service") => Reply::json(captured!("service-detail.json")),
        ("GET", "/v3/admin/ns/instance/list") => Reply::json(captured!("instance-list.json")),
        ("GET", "/v3/admin/core/cluster/node/list") => {
            Reply::json(&captured!("members.json").replace("18878", &port.to_string()))
        }
        ("GET", "/v3/admin/core/loader/current") => Reply::json(captured!("connections.json")),
        // L4: nobody listens (as the bed's 3.1 node answers with `aggregation=false`).
        ("GET", "/v3/admin/cs/listener" | "/v3/admin/cs/config/listener") => Reply::json(
            r#"{"code":0,"message":"success","data":{"queryType":"ip","listenersStatus":{}}}"#,
        ),
        _ => Reply::Http("404 Not Found", Vec::new(), b"{}".to_vec()),
    }
}
