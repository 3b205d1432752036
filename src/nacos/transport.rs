//! Transport to one Nacos node: login and token refresh, the one retry loop, the one mapping of an
//! unexpected HTTP status to an error, and the cap on response bodies.
//!
//! Errors name the node and the endpoint and never carry a secret: reqwest errors are shown
//! without their URL.
//!
//! The access token travels in the `Authorization` header only, never in a URL, and redirects
//! are never followed (a redirect would carry the request, and a `Referer` naming it, elsewhere):
//! a 3xx answer is an error naming the status and where it pointed, without its query.

use super::dialect::{Call, Dialect, Endpoint};
use super::parse::shape::snippet;
use super::urls::{join, redirect_target, without_secrets};
use crate::secret::Secret;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION};
use reqwest::Url;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

use crate::settings::DEFAULT_MAX_BODY;

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

/// One answer: status, headers and the whole body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body as text (lossy UTF-8); empty for a binary call.
    pub body: String,
    /// Body as bytes, for a binary call ([`Call::binary`]); empty otherwise.
    pub bytes: Vec<u8>,
}

/// Build the shared HTTP client (system roots only).
pub fn http_client(timeout_secs: u64) -> reqwest::Client {
    http_client_tls(timeout_secs, None, false).unwrap_or_default()
}

/// Build a side's shared HTTP client: `https://` nodes are verified against the system roots
/// plus `ca_file`, or not at all with `insecure` (rustls, see [`crate::tls`]).
pub fn http_client_tls(
    timeout_secs: u64,
    ca_file: Option<&std::path::Path>,
    insecure: bool,
) -> Result<reqwest::Client, String> {
    crate::tls::install_provider();
    let tls = crate::tls::nacos_client_config(ca_file, insecure)?;
    reqwest::Client::builder()
        // Names the tool in the servers' access logs, so an operator (and the bed's token test)
        // can tell nacos-drift's requests from the applications' SDKs.
        .user_agent(concat!("nacos-drift/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(timeout_secs))
        .connect_timeout(Duration::from_secs(timeout_secs.min(5)))
        .pool_max_idle_per_host(16)
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| e.to_string())
}

/// One attempt that did not produce an answer.
struct Failure {
    what: String,
    transient: bool,
    status: Option<u16>,
    /// The node did not answer at all (refused, unreachable, timed out): once the retries are
    /// spent, it is down for the rest of the run.
    down: bool,
    /// It timed out (a timeout costs a whole `--timeout`, so it is retried once at most).
    timed_out: bool,
}

/// What went wrong in a reqwest error, without its URL, and whether a retry could help.
fn describe(e: &reqwest::Error) -> Failure {
    // A certificate problem is not a network one: said as such, and not retried (it will not
    // change within the run), but the node is not asked again either.
    if let Some(what) = crate::tls::name_failure(e) {
        return Failure {
            what,
            transient: false,
            status: None,
            down: true,
            timed_out: false,
        };
    }
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
    let mut detail = String::new();
    let mut cur = std::error::Error::source(e);
    let mut depth = 0;
    while let Some(inner) = cur {
        let s = inner.to_string();
        if !s.contains("accessToken") && !s.contains("password") {
            detail.push_str(" (");
            detail.push_str(&s);
            detail.push(')');
        }
        cur = inner.source();
        depth += 1;
        if depth > 3 {
            break;
        }
    }
    Failure {
        what: format!("{what}{detail}"),
        transient,
        status: e.status().map(|s| s.as_u16()),
        down: e.is_connect() || e.is_timeout(),
        timed_out: e.is_timeout(),
    }
}

/// Whether an answer says a naming resource does not exist: Nacos answers "service not found"
/// (`ServiceOperatorV2Impl.queryService`, `InstanceOperatorClientImpl`), "service G@@N is not
/// found!" and "cluster C is not found!" (`CatalogServiceV2Impl`) with a 500 on the v1 API, and
/// r-nacos "service not found" (its `openapi/naming/service.rs`). That is the node's answer about
/// its data at that moment, not a failure: asking again only costs the backoff.
#[must_use]
pub fn says_not_found(status: u16, body: &str) -> bool {
    status >= 400 && (body.contains("service not found") || body.contains(" is not found!"))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * (1 << attempt.min(5)))
}

/// A login's token as the headers to send, and when to log in again.
#[derive(Clone)]
struct Token {
    auth: Auth,
    expires: Instant,
}

/// The headers that carry a token: `Authorization`, and for a node that did not answer its login
/// with a Bearer header also `accessToken` (see [`Transport::token`]).
#[derive(Clone)]
pub struct Auth {
    authorization: HeaderValue,
    access_token: Option<HeaderValue>,
}

/// The HTTP side of one node.
pub struct Transport {
    pub(super) http: reqwest::Client,
    /// Base URL with context path as configured, e.g. `http://127.0.0.1:8848/nacos`, for messages.
    pub base: String,
    /// The same, parsed (or why it could not be).
    base_url: Result<Url, String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Secret>,
    token: Mutex<Option<Token>>,
    /// Why the node is down, once it is: it failed to answer (after the retries) or to log in,
    /// and no later stage of the run asks it again.
    down: std::sync::OnceLock<NodeError>,
    permits: Semaphore,
    /// Bounds the calls the server queues ([`super::dialect::SEARCH_QUEUE`]).
    queue_permits: Semaphore,
    pub(super) retries: u32,
    pub(super) max_body: usize,
    /// Requests sent so far (every attempt), for the progress line's rate.
    sent: std::sync::atomic::AtomicU64,
}

impl Transport {
    /// The transport to the node at `base`.
    #[must_use]
    pub fn new(
        http: reqwest::Client,
        base: &str,
        username: Option<String>,
        password: Option<Secret>,
        concurrency: usize,
        retries: u32,
    ) -> Self {
        let trimmed = base.trim_end_matches('/');
        let base_url = Url::parse(trimmed).map_err(|e| format!("not a valid URL ({e})"));
        // Settings reject a node URL with userinfo, query or fragment; should one come through
        // anyway, messages show it without them.
        let base = match &base_url {
            Ok(u)
                if !u.username().is_empty()
                    || u.password().is_some()
                    || u.query().is_some()
                    || u.fragment().is_some() =>
            {
                without_secrets(u).trim_end_matches('/').to_owned()
            }
            _ => trimmed.to_owned(),
        };
        Transport {
            http,
            base,
            base_url,
            username,
            password,
            token: Mutex::new(None),
            down: std::sync::OnceLock::new(),
            permits: Semaphore::new(concurrency.max(1)),
            queue_permits: Semaphore::new(super::dialect::SEARCH_QUEUE),
            retries,
            max_body: DEFAULT_MAX_BODY,
            sent: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Requests sent to this node so far (every attempt, login included).
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// An error naming this node.
    pub fn err(
        &self,
        msg: impl std::fmt::Display,
        transient: bool,
        status: Option<u16>,
    ) -> NodeError {
        NodeError {
            message: format!("node {}: {msg}", self.base),
            transient,
            status,
        }
    }

    /// The one mapping of an unexpected status to an error: endpoint, status and the start of the answer.
    #[must_use]
    pub fn status_error(&self, call: &Call, resp: &Response) -> NodeError {
        self.err(
            format!(
                "{} answered HTTP {}: {}",
                call.describe(),
                resp.status,
                snippet(&resp.body)
            ),
            resp.status >= 500,
            Some(resp.status),
        )
    }

    /// An answer of a shape the endpoint does not have.
    #[must_use]
    pub fn shape_error(&self, call: &Call, what: impl std::fmt::Display) -> NodeError {
        self.err(format!("{}: {what}", call.describe()), false, Some(200))
    }

    /// The error of a node that is down, for every request after the one that found it down.
    fn check_down(&self) -> Result<(), NodeError> {
        match self.down.get() {
            Some(e) => Err(NodeError {
                message: format!(
                    "{} (failed earlier in this run; not asked again)",
                    e.message
                ),
                ..e.clone()
            }),
            None => Ok(()),
        }
    }

    /// Mark the node down with this error (the first one wins) and return it.
    fn mark_down(&self, e: NodeError) -> NodeError {
        let _ = self.down.set(e.clone());
        e
    }

    /// Whether the node is down for the rest of the run.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.down.get().is_some()
    }

    /// Log in if credentials are set and the token is missing or near expiry; returns the
    /// headers to send it in. A failed login marks the node down: it is not tried again.
    pub async fn token(&self, force: bool) -> Result<Option<Auth>, NodeError> {
        let (Some(user), Some(pass)) = (&self.username, &self.password) else {
            return Ok(None);
        };
        let mut guard = self.token.lock().await;
        // Whoever held the lock before may have found the node down.
        self.check_down()?;
        if !force {
            if let Some(t) = guard.as_ref() {
                if Instant::now() < t.expires {
                    return Ok(Some(t.auth.clone()));
                }
            }
        }
        let call = Dialect::login(user, pass.expose());
        match self.login(&call, user).await {
            Ok(auth) => {
                *guard = Some(auth.clone());
                Ok(Some(auth.auth))
            }
            Err(e) => Err(self.mark_down(e)),
        }
    }

    /// One login: the token and when to renew it.
    async fn login(&self, call: &Call, user: &str) -> Result<Token, NodeError> {
        // Boxed: the retry loop asks for the token, and the login goes through the retry loop.
        let resp = Box::pin(self.run(call, false)).await?;
        let rejected = |why: &str| {
            self.err(
                format!(
                    "login as `{user}` rejected (HTTP {}{why}): wrong username or password",
                    resp.status
                ),
                false,
                Some(resp.status),
            )
        };
        match resp.status {
            401 | 403 => return Err(rejected("")),
            // Nacos 3.x's v1 login shim turns the "user not found / wrong password" 403 into this.
            500 if resp.body.contains("API Compatibility") => {
                return Err(rejected(
                    " from Nacos 3.x, its answer to a wrong username or password",
                ))
            }
            200 => {}
            _ => return Err(self.status_error(call, &resp)),
        }
        let (value, ttl) =
            super::parse::login(&resp.body).map_err(|e| self.shape_error(call, e))?;
        // Nacos answers its login with `Authorization: Bearer <token>` as well
        // (`UserController#login`, 1.4 to 3.x) and reads the token back from that header
        // (1.4/2.0 `NacosAuthManager#resolveToken`; 2.1+ `NacosAuthPluginService#resolveToken`
        // through `HttpIdentityContextBuilder`, which reads headers). r-nacos sends no such
        // header and, up to 0.8.5, takes the whole `Authorization` value as the token
        // (`openapi/middle/auth_middle.rs`); 0.8.8 strips a `Bearer ` prefix if there is one.
        // So: Bearer where the node answered with it; otherwise the bare token, and the same in
        // an `accessToken` header, which r-nacos 0.8.8 and Nacos 2.1+ (identity names of
        // `NacosAuthPluginService`) read too. Every version also reads an `accessToken` query
        // parameter; it is never used here, as URLs end up in logs.
        let bearer = resp
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer "));
        let auth = auth_headers(&value, bearer)
            .ok_or_else(|| self.shape_error(call, "the accessToken cannot be sent in a header"))?;
        Ok(Token {
            auth,
            // Refresh well before expiry so a long audit never runs on a dead token.
            expires: Instant::now() + Duration::from_secs(ttl.saturating_sub(60).max(30) * 9 / 10),
        })
    }

    /// One request with auth, bounded concurrency, retries on transient failures and one
    /// re-login on 403. Any status comes back as an answer; only no answer at all is an error.
    ///
    /// A node that is down (see [`Self::is_down`]) is not asked: its error comes back at once.
    pub async fn send(&self, call: &Call) -> Result<Response, NodeError> {
        self.check_down()?;
        // The queue's permit first, so a queued call waiting for it holds no general one.
        let _queued = if call.queued {
            Some(
                self.queue_permits
                    .acquire()
                    .await
                    .map_err(|_| self.err("client shut down", false, None))?,
            )
        } else {
            None
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.err("client shut down", false, None))?;
        self.run(call, true).await
    }

    /// The one retry loop. `auth`: add the token (and log in again once on 403).
    ///
    /// Transient failures are retried `retries` times with backoff, but a timeout once at most:
    /// each costs a whole timeout, and a node that let two requests time out is taken as down.
    /// A node that did not answer at all once the retries are spent is down for the run.
    async fn run(&self, call: &Call, auth: bool) -> Result<Response, NodeError> {
        let mut attempt = 0;
        let mut timeouts = 0;
        let mut relogged = false;
        loop {
            // Another request may have found the node down while this one waited.
            self.check_down()?;
            let token = if auth { self.token(false).await? } else { None };
            match self.attempt(call, token.as_ref()).await {
                Ok(resp) => {
                    if resp.status == 403 && token.is_some() && !relogged {
                        // The token may have expired or the server restarted with a new secret.
                        relogged = true;
                        self.token(true).await?;
                        continue;
                    }
                    let retry_status = call.endpoint != Endpoint::Login
                        && matches!(resp.status, 500 | 502 | 503 | 504)
                        && !says_not_found(resp.status, &resp.body);
                    if retry_status && attempt < self.retries {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(f) => {
                    timeouts += usize::from(f.timed_out);
                    if f.transient && attempt < self.retries && timeouts < 2 {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    let e = self.err(
                        format!("{}: {}", call.describe(), f.what),
                        f.transient,
                        f.status,
                    );
                    return Err(if f.down { self.mark_down(e) } else { e });
                }
            }
        }
    }

    /// One request and its whole body, read in chunks up to the cap.
    async fn attempt(&self, call: &Call, token: Option<&Auth>) -> Result<Response, Failure> {
        let base = self.base_url.as_ref().map_err(|e| Failure {
            what: e.clone(),
            transient: false,
            status: None,
            down: true,
            timed_out: false,
        })?;
        let url = join(base, call.path);
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The endpoint only: never the URL, whose query may name what is read.
        tracing::debug!(node = %self.base, "nacos request {}", call.describe());
        let mut req = if call.method == reqwest::Method::GET {
            self.http.get(url.clone()).query(&call.params)
        } else {
            self.http
                .request(call.method.clone(), url.clone())
                .form(&call.params)
        };
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, t.authorization.clone());
            if let Some(a) = &t.access_token {
                req = req.header("accessToken", a.clone());
            }
        }
        for (k, v) in &call.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(t) = call.timeout {
            req = req.timeout(t);
        }
        let mut resp = req.send().await.map_err(|e| describe(&e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let to = redirect_target(
                resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
                &url,
            );
            return Err(Failure {
                what: format!(
                    "answered with a redirect (HTTP {status}) to {to}; redirects are not followed"
                ),
                transient: false,
                status: Some(status),
                down: false,
                timed_out: false,
            });
        }
        let headers = resp.headers().clone();
        let body = read_capped(&mut resp, self.max_body)
            .await
            .map_err(|f| Failure {
                status: Some(status),
                ..f
            })?;
        // A binary answer that is not a 200 is an error message: kept as text for it.
        if call.binary && status == 200 {
            return Ok(Response {
                status,
                headers,
                body: String::new(),
                bytes: body,
            });
        }
        Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            bytes: Vec::new(),
        })
    }
}

/// The headers for a token, marked sensitive so that no log prints them; `None` if the token
/// holds characters a header cannot.
fn auth_headers(token: &str, bearer: bool) -> Option<Auth> {
    let sensitive = |text: &str| {
        let mut v = HeaderValue::from_str(text).ok()?;
        v.set_sensitive(true);
        Some(v)
    };
    Some(if bearer {
        Auth {
            authorization: sensitive(&format!("Bearer {token}"))?,
            access_token: None,
        }
    } else {
        Auth {
            authorization: sensitive(token)?,
            access_token: Some(sensitive(token)?),
        }
    })
}

/// The body in chunks, stopping at `cap` bytes: a longer answer is an error, not a big allocation.
async fn read_capped(resp: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, Failure> {
    let too_long = || Failure {
        what: format!("answer longer than the limit of {cap} bytes (audit.max_body_mib)"),
        transient: false,
        status: Some(200),
        down: false,
        timed_out: false,
    };
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > cap))
    {
        return Err(too_long());
    }
    let mut out = Vec::new();
    // A body that broke off may come whole on a retry.
    let broken = |e: reqwest::Error| {
        let f = describe(&e);
        Failure {
            transient: true,
            // A body that broke off came from a node that answers: not down, unless it timed out.
            down: f.timed_out,
            ..f
        }
    };
    while let Some(chunk) = resp.chunk().await.map_err(broken)? {
        if out.len() + chunk.len() > cap {
            return Err(too_long());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_naming_not_found_answer_is_final_and_a_timeout_is_not() {
        for body in [
            "caused: service not found, namespace: prod, serviceName: APP@@orders;",
            "service not found,namespace_id:prod,service_name:APP@@orders",
            "caused: service APP@@orders is not found!;",
            "caused: cluster  is not found!;",
        ] {
            assert!(says_not_found(500, body), "{body}");
        }
        assert!(!says_not_found(200, "service not found"));
        assert!(!says_not_found(
            500,
            "caused: PreparedStatementCallback; Statement cancelled due to timeout or client request"
        ));
        assert!(!says_not_found(
            503,
            "server is DOWN now, please try again later!"
        ));
    }

    #[test]
    fn a_base_with_secrets_is_shown_without_them() {
        let t = Transport::new(
            http_client(1),
            "http://admin:pw@h:1/nacos?accessToken=X",
            None,
            None,
            1,
            0,
        );
        assert_eq!(t.base, "http://h:1/nacos");
        let t = Transport::new(http_client(1), "http://h:1/nacos/", None, None, 1, 0);
        assert_eq!(t.base, "http://h:1/nacos");
    }

    #[test]
    fn the_token_goes_back_the_way_the_node_reads_it() {
        let a = auth_headers("abc", true).unwrap();
        assert_eq!(a.authorization.to_str().unwrap(), "Bearer abc");
        assert!(a.authorization.is_sensitive());
        assert!(a.access_token.is_none());
        let a = auth_headers("abc", false).unwrap();
        assert_eq!(a.authorization.to_str().unwrap(), "abc");
        assert_eq!(a.access_token.unwrap().to_str().unwrap(), "abc");
        assert!(auth_headers("a\nb", true).is_none());
    }
}
