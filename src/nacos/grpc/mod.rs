//! Nacos 2.x cluster gRPC client, used to make ONE node reload ONE config from its database.
//!
//! Nacos nodes tell each other about a publish with `ConfigChangeClusterSyncRequest` (2.2.1+ has no
//! HTTP equivalent any more). The receiving node reads that one row from its DB and dumps it into
//! its cache, or drops the cache entry if the row is gone. That is exactly the repair a stale
//! target node needs, without restarting it and without touching the other nodes.
//!
//! Wire protocol (Nacos `nacos_grpc_service.proto`): every message is a `Payload` whose metadata
//! `type` is the Java simple class name and whose `body.value` is the Jackson JSON of the object.
//! A unary request is only served on a *registered* connection: registration is a
//! `ConnectionSetupRequest` sent on a bidi stream over the same HTTP/2 connection. One tonic
//! `Channel` is one HTTP/2 connection, so the bidi stream and the unary calls share it.
//!
//! Ports: the cluster gRPC port is the HTTP port + 1001. 2.4.3+ accepts the sync request only
//! there; 2.2.1–2.4.2 also accept the SDK port (HTTP + 1000).
//!
//! TLS: a node given as `https://` is reached in TLS (rustls, ALPN `h2`) with its side's trust,
//! never in plain text. Nacos serves the cluster port in TLS only from 2.4.0 with
//! `nacos.remote.peer.rpc.tls.enableTls` (`ClusterDefaultTlsProtocolNegotiatorBuilder`); in
//! 2.3.x only `GrpcSdkServer` has a protocol negotiator, so there the channel fails, named.
//!
//! The request must look exactly like one from a cluster member of the node's own version: a
//! repair may only make a node re-read its DB, never write it. Nacos 3.x's
//! `ConfigChangeClusterSyncRequestHandler.checkNamespaceCompatible` parses the connection's
//! `clientVersion`; anything it cannot read as `Nacos-Server:v<x.y.z>` ≥ 3.0.0 makes it run
//! `ConfigMigrateService.namespaceMigrate`, which copies or deletes rows between the `''` and
//! `public` namespaces in the DB. See [`cluster_client_version`] and [`sync_body`].

mod connect;
mod proto;

use connect::{chain, connect_failure, local_ip_towards, tls_connector};
pub use connect::{cluster_grpc_addr, CLUSTER_PORT_OFFSET};

pub use proto::{
    cluster_client_version, sync_body, sync_body_variant, sync_tenant, Any, Metadata, Payload,
};
use proto::{codec, internal_request, is_success, request_id, response_message};

use futures::channel::{mpsc, oneshot};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

/// gRPC path of the unary service (the proto has no package).
const UNARY_PATH: &str = "/Request/request";
/// gRPC path of the bidi stream service.
const BI_STREAM_PATH: &str = "/BiRequestStream/requestBiStream";
/// Nacos `NacosException.UN_REGISTER`: the connection is not (yet) registered.
const UN_REGISTER: i64 = 301;

/// How often an open connection sends a `HealthCheckRequest`, like the Java client does.
///
/// Why: a node probes connections idle for 20 s with a `ClientDetectionRequest`, and its check
/// (`NacosRuntimeConnectionEjector`, 2.3–3.x) races with a fast answer: it may count it too
/// late and unregister the connection anyway. Requests refresh the node's "last active" time,
/// so a connection that is never idle that long is never probed.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// One registered HTTP/2 connection plus the tasks that keep it registered.
struct Conn {
    grpc: tonic::client::Grpc<Channel>,
    /// False once the bidi stream has ended, the node asked us to reconnect, or it answered
    /// "unregistered": the node no longer serves unary requests on this connection.
    alive: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
    keep_alive: tokio::task::JoinHandle<()>,
    /// Held so the bidi stream stays open while unary calls are made.
    _stream: mpsc::UnboundedSender<Payload>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The reader holds a sender clone; aborting it ends the request stream too, and the
        // last Channel clone going away closes the HTTP/2 connection (the node unregisters it).
        self.reader.abort();
        self.keep_alive.abort();
    }
}

impl Conn {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed) && !self.reader.is_finished()
    }

    /// Connect to `addr` and register the connection; errors do not name the address (the
    /// caller does).
    async fn open(
        addr: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
        client_ip: &str,
        client_version: &str,
        timeout: Duration,
    ) -> Result<Conn, String> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad address: {e}"))?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        let connect = async {
            match tls {
                None => endpoint.connect().await,
                Some(cfg) => {
                    endpoint
                        .connect_with_connector(tls_connector(cfg, addr))
                        .await
                }
            }
        };
        let channel = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| format!("connect timed out after {timeout:?}"))?
            .map_err(|e| connect_failure(&chain(&e), tls.is_some()))?;
        let grpc = tonic::client::Grpc::new(channel);

        // Works on an unregistered connection; proves it is a Nacos 2.x gRPC port and tells
        // whether the node will confirm registration (2.3+ "ability negotiation").
        let check = unary(
            &grpc,
            internal_request("ServerCheckRequest", client_ip),
            timeout,
        )
        .await
        .map_err(|e| match tls.is_some().then(|| connect_failure(&e, true)) {
            Some(named) if named.starts_with("TLS") => named,
            _ => format!("server check: {e}"),
        })?;
        if check.kind() != "ServerCheckResponse" {
            return Err(format!(
                "server check: unexpected {} {}",
                check.kind(),
                response_message(&check.json())
            ));
        }
        let negotiates = check.json()["supportAbilityNegotiation"].as_bool() == Some(true);

        let (tx, rx) = mpsc::unbounded::<Payload>();
        let (ack_tx, ack_rx) = oneshot::channel::<()>();
        let alive = Arc::new(AtomicBool::new(true));
        let reader = tokio::spawn(read_bi_stream(
            grpc.clone(),
            rx,
            tx.clone(),
            ack_tx,
            alive.clone(),
            client_ip.to_owned(),
        ));
        let keep_alive = tokio::spawn(keep_alive(
            grpc.clone(),
            alive.clone(),
            client_ip.to_owned(),
        ));
        let conn = Conn {
            grpc,
            alive,
            reader,
            keep_alive,
            _stream: tx.clone(),
        };
        // What the Java cluster client sends: label source=cluster (so the node never rejects
        // it as an SDK connection while starting, nor counts it as one), an ability table
        // (non-null → 2.3+ answers with SetupAckRequest once registered; older nodes ignore it).
        let setup = json!({
            "headers": {},
            "requestId": request_id(),
            "clientVersion": client_version,
            "tenant": "",
            "labels": {"source": "cluster"},
            "abilityTable": {},
            "module": "internal",
        });
        tx.unbounded_send(Payload::new(
            "ConnectionSetupRequest",
            client_ip,
            HashMap::new(),
            &setup,
        ))
        .map_err(|_| "bi stream closed before setup".to_owned())?;
        if negotiates {
            // Registration is confirmed by the SetupAckRequest; if it does not come, the unary
            // retry on "unregistered" in `sync` still covers it.
            let _ = tokio::time::timeout(timeout.min(Duration::from_secs(3)), ack_rx).await;
        } else {
            // Older nodes confirm nothing; the Java client just waits 100 ms too.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !conn.is_alive() {
            return Err("the node closed the bi stream during registration".into());
        }
        Ok(conn)
    }
}

/// Sends a health check every `KEEP_ALIVE`; marks the connection dead if the node has
/// unregistered it, so the next sync reconnects at once instead of retrying.
async fn keep_alive(grpc: tonic::client::Grpc<Channel>, alive: Arc<AtomicBool>, client_ip: String) {
    loop {
        tokio::time::sleep(KEEP_ALIVE).await;
        if !alive.load(Ordering::Relaxed) {
            return;
        }
        let check = internal_request("HealthCheckRequest", &client_ip);
        if let Ok(p) = unary(&grpc, check, KEEP_ALIVE).await {
            if p.json()["errorCode"].as_i64() == Some(UN_REGISTER) {
                alive.store(false, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Why one attempt of a sync failed.
enum Attempt {
    /// The connection is not registered (any more): worth one reconnect.
    Unregistered(String),
    /// Anything else: reported as is.
    Failed(String),
}

/// A cluster connection to one node, for many syncs (a repair may reload hundreds of keys).
///
/// Requests may run concurrently. If the node drops the registration (restart, connection
/// reset, idle ejection), the next sync opens and registers a new connection once.
pub struct GrpcNode {
    addr: String,
    /// The rustls config of a TLS channel (the node was given as `https://`); `None`: plain.
    tls: Option<Arc<rustls::ClientConfig>>,
    client_ip: String,
    /// The node's version, `major.minor.patch`: decides `clientVersion`, tenant and `grayName`.
    version: (u32, u32, u32),
    identity: Option<(String, String)>,
    timeout: Duration,
    conn: tokio::sync::Mutex<Arc<Conn>>,
    reconnects: AtomicU64,
}

impl std::fmt::Debug for GrpcNode {
    // Hand-written so the identity value (a shared secret) is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcNode")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .field("version", &self.version)
            .field("reconnects", &self.reconnects())
            .finish_non_exhaustive()
    }
}

impl GrpcNode {
    /// Open one HTTP/2 connection to `grpc_addr` (`host:port`, normally HTTP port + 1001) and
    /// register it as a cluster connection of a member of `server_version` (the node's own
    /// version, as its state API reports it). `timeout` bounds each step (connect, each call).
    pub async fn connect(
        grpc_addr: &str,
        server_version: &str,
        identity: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<GrpcNode, String> {
        Self::connect_tls(grpc_addr, None, server_version, identity, timeout).await
    }

    /// [`GrpcNode::connect`] over TLS with `tls` (the side's rustls client config, as for its
    /// `https://` nodes); `None` is plain text.
    pub async fn connect_tls(
        grpc_addr: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        server_version: &str,
        identity: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<GrpcNode, String> {
        let addr = grpc_addr
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let version = crate::version::semver(server_version).ok_or_else(|| {
            format!("Nacos gRPC {addr}: server version `{server_version}` is not major.minor.patch, so no cluster member's request can be imitated")
        })?;
        let client_ip = local_ip_towards(&addr);
        let conn = Conn::open(
            &addr,
            tls.as_ref(),
            &client_ip,
            &cluster_client_version(version),
            timeout,
        )
        .await
        .map_err(|e| format!("Nacos gRPC {addr}: {e}"))?;
        Ok(GrpcNode {
            addr,
            tls,
            client_ip,
            version,
            identity: identity.map(|(k, v)| (k.to_owned(), v.to_owned())),
            timeout,
            conn: tokio::sync::Mutex::new(Arc::new(conn)),
            reconnects: AtomicU64::new(0),
        })
    }

    /// The `host:port` this connection goes to.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How many times a dropped registration was replaced by a new connection.
    #[must_use]
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Whether the current connection is still registered on the node.
    pub async fn is_alive(&self) -> bool {
        self.conn.lock().await.is_alive()
    }

    /// The current connection, replaced first if it is dead or is the one that just failed
    /// (`failed`; compared by pointer so concurrent syncs reconnect only once).
    async fn current(&self, failed: Option<&Arc<Conn>>) -> Result<Arc<Conn>, String> {
        let mut cur = self.conn.lock().await;
        if !cur.is_alive() || failed.is_some_and(|f| Arc::ptr_eq(f, &cur)) {
            let client_version = cluster_client_version(self.version);
            let fresh = Conn::open(
                &self.addr,
                self.tls.as_ref(),
                &self.client_ip,
                &client_version,
                self.timeout,
            )
            .await
            .map_err(|e| format!("reconnect: {e}"))?;
            *cur = Arc::new(fresh);
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        Ok(cur.clone())
    }

    /// Ask the node to re-dump one formal config from its DB. `namespace` is the namespace id
    /// (`public` or "" for the default one; the tenant the node's version expects is sent). Ok
    /// means the node accepted the request; its dump then runs asynchronously (normally within
    /// milliseconds).
    pub async fn sync(
        &self,
        data_id: &str,
        group: &str,
        namespace: &str,
        last_modified_ms: i64,
    ) -> Result<(), String> {
        self.sync_variant(data_id, group, namespace, "", last_modified_ms)
            .await
    }

    /// [`GrpcNode::sync`] of one variant (`beta`, `tag:<t>`, `gray:<g>`; "" is the formal config),
    /// named as [`sync_body_variant`] says.
    pub async fn sync_variant(
        &self,
        data_id: &str,
        group: &str,
        namespace: &str,
        variant: &str,
        last_modified_ms: i64,
    ) -> Result<(), String> {
        let err = |what: &str| {
            let v = if variant.is_empty() {
                String::new()
            } else {
                format!("#{variant}")
            };
            format!(
                "Nacos gRPC {}: sync {namespace}/{group}/{data_id}{v}: {what}",
                self.addr
            )
        };
        let body = sync_body_variant(
            self.version,
            data_id,
            group,
            namespace,
            variant,
            last_modified_ms,
        );
        // The identity goes in the metadata headers, where the Java client puts request headers;
        // 3.x checks it there (RemoteRequestAuthFilter), earlier versions ignore it.
        let headers: HashMap<String, String> = self.identity.iter().cloned().collect();
        let payload = Payload::new(
            "ConfigChangeClusterSyncRequest",
            &self.client_ip,
            headers,
            &body,
        );
        let mut conn = self.current(None).await.map_err(|e| err(&e))?;
        match self.attempt(&conn, &payload).await {
            Ok(()) => Ok(()),
            Err(Attempt::Failed(e)) => Err(err(&e)),
            Err(Attempt::Unregistered(_)) => {
                conn = self.current(Some(&conn)).await.map_err(|e| err(&e))?;
                match self.attempt(&conn, &payload).await {
                    Ok(()) => Ok(()),
                    Err(Attempt::Failed(e) | Attempt::Unregistered(e)) => Err(err(&e)),
                }
            }
        }
    }

    /// One sync on one connection, retrying briefly while its registration settles.
    async fn attempt(&self, conn: &Conn, payload: &Payload) -> Result<(), Attempt> {
        let deadline = Instant::now() + self.timeout;
        // Registration is asynchronous on the node: right after setup a call may still see
        // "Connection is unregistered." for a few milliseconds.
        let settle = Instant::now() + self.timeout.min(Duration::from_secs(2));
        loop {
            if !conn.is_alive() {
                return Err(Attempt::Unregistered(
                    "connection no longer registered (bi stream closed)".into(),
                ));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let resp = unary(&conn.grpc, payload.clone(), remaining)
                .await
                .map_err(Attempt::Failed)?;
            let v = resp.json();
            if is_success(&resp, &v) {
                return Ok(());
            }
            let message = format!("{} {}", resp.kind(), response_message(&v));
            if v["errorCode"].as_i64() != Some(UN_REGISTER) {
                return Err(Attempt::Failed(message));
            }
            if Instant::now() + Duration::from_millis(100) >= settle {
                conn.alive.store(false, Ordering::Relaxed);
                return Err(Attempt::Unregistered(message));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One unary call, bounded by `timeout`.
async fn unary(
    grpc: &tonic::client::Grpc<Channel>,
    payload: Payload,
    timeout: Duration,
) -> Result<Payload, String> {
    let mut grpc = grpc.clone();
    let call = async move {
        grpc.ready()
            .await
            .map_err(|e| format!("connection not ready: {}", chain(&e)))?;
        grpc.unary(
            tonic::Request::new(payload),
            PathAndQuery::from_static(UNARY_PATH),
            codec(),
        )
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("gRPC status {:?}: {}", s.code(), s.message()))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// Runs the bidi stream: sends what `rx` yields, answers what the node pushes.
///
/// The call is awaited here rather than in `connect` because grpc-java sends the response
/// headers only with its first message, which nodes before 2.3 may never send.
async fn read_bi_stream(
    mut grpc: tonic::client::Grpc<Channel>,
    rx: mpsc::UnboundedReceiver<Payload>,
    tx: mpsc::UnboundedSender<Payload>,
    ack: oneshot::Sender<()>,
    alive: Arc<AtomicBool>,
    client_ip: String,
) {
    let mut ack = Some(ack);
    let stream = async {
        grpc.ready().await.ok()?;
        grpc.streaming(
            tonic::Request::new(rx),
            PathAndQuery::from_static(BI_STREAM_PATH),
            codec(),
        )
        .await
        .ok()
    }
    .await;
    if let Some(resp) = stream {
        let mut inbound = resp.into_inner();
        while let Ok(Some(p)) = inbound.message().await {
            let id = p.json()["requestId"].clone();
            let reply = |kind: &str| {
                let body = json!({"resultCode": 200, "errorCode": 0, "requestId": id});
                let _ = tx.unbounded_send(Payload::new(kind, &client_ip, HashMap::new(), &body));
            };
            match p.kind() {
                "SetupAckRequest" => {
                    // Sent without expecting an answer, once the connection is registered.
                    if let Some(a) = ack.take() {
                        let _ = a.send(());
                    }
                }
                // Sent after 20 s without activity; unanswered, the node drops the connection.
                "ClientDetectionRequest" => reply("ClientDetectionResponse"),
                "ConnectResetRequest" => {
                    // The node wants this client elsewhere: it will unregister us.
                    reply("ConnectResetResponse");
                    break;
                }
                // Anything else (config pushes etc.) is not for a cluster client; ignore it.
                _ => {}
            }
        }
    }
    alive.store(false, Ordering::Relaxed);
}

/// Ask one node to re-dump one config from its DB (Nacos ≥ 2.2.1 cluster gRPC sync).
///
/// `grpc_addr` is `host:port`, normally the node's HTTP port + 1001 (+ 1000 is also accepted
/// before 2.4.3); `server_version` the node's version. `namespace` is the namespace id
/// (`public` or "" for the default one). `identity` is the server identity header key/value
/// (needed on 3.x, harmless before). `timeout` bounds each step.
/// The error message names the node address, never the identity.
#[allow(clippy::too_many_arguments)] // why: a one-shot call; every argument is one fact of the request.
pub async fn config_change_sync(
    grpc_addr: &str,
    server_version: &str,
    data_id: &str,
    group: &str,
    namespace: &str,
    last_modified_ms: i64,
    identity: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<(), String> {
    let node = GrpcNode::connect(grpc_addr, server_version, identity, timeout).await?;
    node.sync(data_id, group, namespace, last_modified_ms).await
}

/// Milliseconds since the Unix epoch, for `last_modified_ms`.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
