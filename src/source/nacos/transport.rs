//! Transport to one Nacos node: login and token refresh, the one retry loop, the one mapping of an
//! unexpected HTTP status to an error, and the cap on response bodies.
//!
//! Errors name the node and the endpoint and never carry a secret: reqwest errors are shown
//! without their URL.

use super::dialect::{Call, Dialect, Endpoint};
use crate::settings::Secret;
use reqwest::header::HeaderMap;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// Default cap on one response body: far above the largest legal answer (a 500-item config page
/// of 100 KiB configs is about 50 MiB) and far below what would hurt the machine.
pub const DEFAULT_MAX_BODY: usize = 64 << 20;

/// How many characters of an unexpected answer an error quotes.
const SNIPPET_CHARS: usize = 200;

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
    /// Body as text (lossy UTF-8).
    pub body: String,
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

/// One attempt that did not produce an answer.
struct Failure {
    what: String,
    transient: bool,
    status: Option<u16>,
}

/// What went wrong in a reqwest error, without its URL, and whether a retry could help.
fn describe(e: &reqwest::Error) -> Failure {
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
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * (1 << attempt.min(5)))
}

/// The beginning of an answer, for messages.
#[must_use]
pub fn snippet(body: &str) -> String {
    body.chars().take(SNIPPET_CHARS).collect()
}

/// The HTTP side of one node.
pub struct Transport {
    http: reqwest::Client,
    /// Base URL with context path, e.g. `http://127.0.0.1:8848/nacos`.
    pub base: String,
    username: Option<String>,
    password: Option<Secret>,
    token: Mutex<Option<(String, Instant)>>,
    permits: Semaphore,
    retries: u32,
    max_body: usize,
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
        Transport {
            http,
            base: base.trim_end_matches('/').to_owned(),
            username,
            password,
            token: Mutex::new(None),
            permits: Semaphore::new(concurrency.max(1)),
            retries,
            max_body: DEFAULT_MAX_BODY,
        }
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

    /// Log in if credentials are set and the token is missing or near expiry; returns the token.
    pub async fn token(&self, force: bool) -> Result<Option<String>, NodeError> {
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
        let call = Dialect::login(user, pass.expose());
        // Boxed: the retry loop asks for the token, and the login goes through the retry loop.
        let resp = Box::pin(self.run(&call, false)).await?;
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
            _ => return Err(self.status_error(&call, &resp)),
        }
        let (tok, ttl) = super::parse::login(&resp.body).map_err(|e| self.shape_error(&call, e))?;
        // Refresh well before expiry so a long audit never runs on a dead token.
        let exp = Instant::now() + Duration::from_secs(ttl.saturating_sub(60).max(30) * 9 / 10);
        *guard = Some((tok.clone(), exp));
        Ok(Some(tok))
    }

    /// One request with auth, bounded concurrency, retries on transient failures and one
    /// re-login on 403. Any status comes back as an answer; only no answer at all is an error.
    pub async fn send(&self, call: &Call) -> Result<Response, NodeError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.err("client shut down", false, None))?;
        self.run(call, true).await
    }

    /// The one retry loop. `auth`: add the token (and log in again once on 403).
    async fn run(&self, call: &Call, auth: bool) -> Result<Response, NodeError> {
        let mut attempt = 0;
        let mut relogged = false;
        loop {
            let token = if auth { self.token(false).await? } else { None };
            match self.attempt(call, token.as_deref()).await {
                Ok(resp) => {
                    if resp.status == 403 && token.is_some() && !relogged {
                        // The token may have expired or the server restarted with a new secret.
                        relogged = true;
                        self.token(true).await?;
                        continue;
                    }
                    let retry_status = call.endpoint != Endpoint::Login
                        && matches!(resp.status, 500 | 502 | 503 | 504);
                    if retry_status && attempt < self.retries {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(f) => {
                    if f.transient && attempt < self.retries {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(self.err(
                        format!("{}: {}", call.describe(), f.what),
                        f.transient,
                        f.status,
                    ));
                }
            }
        }
    }

    /// One request and its whole body, read in chunks up to the cap.
    async fn attempt(&self, call: &Call, token: Option<&str>) -> Result<Response, Failure> {
        let url = format!("{}{}", self.base, call.path);
        let mut params = call.params.clone();
        if let Some(t) = token {
            params.push(("accessToken", t.to_owned()));
        }
        let mut req = if call.method == reqwest::Method::GET {
            self.http.get(&url).query(&params)
        } else {
            self.http.request(call.method.clone(), &url).form(&params)
        };
        for (k, v) in &call.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(t) = call.timeout {
            req = req.timeout(t);
        }
        let mut resp = req.send().await.map_err(|e| describe(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = read_capped(&mut resp, self.max_body)
            .await
            .map_err(|f| Failure {
                status: Some(status),
                ..f
            })?;
        Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// The body in chunks, stopping at `cap` bytes: a longer answer is an error, not a big allocation.
async fn read_capped(resp: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, Failure> {
    let too_long = || Failure {
        what: format!("answer longer than the limit of {cap} bytes (audit.max_body_mib)"),
        transient: false,
        status: Some(200),
    };
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > cap))
    {
        return Err(too_long());
    }
    let mut out = Vec::new();
    // A body that broke off may come whole on a retry.
    let broken = |e: reqwest::Error| Failure {
        transient: true,
        ..describe(&e)
    };
    while let Some(chunk) = resp.chunk().await.map_err(broken)? {
        if out.len() + chunk.len() > cap {
            return Err(too_long());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
