//! Users, roles and permissions through the auth API of Java Nacos, for sides without a
//! database: 1.x/2.x `/v1/auth/users`, `/v1/auth/roles`, `/v1/auth/permissions` (`UserController`,
//! `RoleController`, `PermissionController` of the default auth plugin); 3.x
//! `/v3/auth/user/list`, `/v3/auth/role/list`, `/v3/auth/permission/list` (`UserControllerV3`,
//! `RoleControllerV3`, `PermissionControllerV3`, paths from `AuthConstants.USER_PATH` etc.; 3.x
//! answers the v1 paths 410 Gone).
//!
//! Each list is paged (`pageNo`, `pageSize`, answered as `{totalCount, pageItems}`, in 3.x inside
//! `Result` as `{code: 0, data: {...}}`); 2.2+ serve the v1 listing only with `search=accurate`
//! (`@GetMapping(params = "search=accurate")`), which 2.0 ignores and 3.x takes as its default.
//! A user's answer carries its stored password hash: it is digested at once, like the DB does
//! (`db::auth`), and dropped. Listing needs an admin login (`@Secured(... READ)` on
//! `console/users` etc.): a 403 says so. r-nacos has no such API: see `auth_rnacos`.

use super::dialect::{Call, Endpoint};
use super::{NacosNode, NodeError, ServerKind};
use crate::accounts::{AuthTables, Permission, RoleBinding, User};
use serde_json::Value;

/// Which Nacos auth API a server serves.
#[derive(Debug, Clone, Copy)]
enum Api {
    /// 1.x/2.x `/v1/auth/*`, the page at the top of the answer.
    V1,
    /// 3.x `/v3/auth/*/list`, the page inside `Result`.
    V3,
}

impl Api {
    /// Users, roles and permissions listing paths.
    fn paths(self) -> [&'static str; 3] {
        match self {
            Api::V1 => ["/v1/auth/users", "/v1/auth/roles", "/v1/auth/permissions"],
            Api::V3 => [
                "/v3/auth/user/list",
                "/v3/auth/role/list",
                "/v3/auth/permission/list",
            ],
        }
    }
}

/// Page size asked for.
const PAGE: usize = 500;
/// The prefix digested with each hash: the same as the DB's `SHA2` (`db::auth`).
const DIGEST_PREFIX: &str = "nacos-drift users.password ";

pub(super) fn digest(hash: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("{DIGEST_PREFIX}{hash}")))
}

impl NacosNode {
    /// Users (password digests), roles and permissions; `Ok(Err(reason))` when this server has
    /// no Nacos auth API (r-nacos, or auth disabled / another auth plugin).
    pub async fn auth_tables(&self) -> Result<Result<AuthTables, String>, NodeError> {
        let kind = self.kind().await?.1;
        let api = match kind {
            ServerKind::Nacos(1 | 2, _, _) => Api::V1,
            ServerKind::Nacos(..) => Api::V3,
            ServerKind::RNacos => {
                return Ok(Err(
                    "r-nacos has no Nacos auth API (its console API is read where `rnacos_console` is set for the side)".into(),
                ));
            }
        };
        let [users_path, roles_path, permissions_path] = api.paths();
        let Some(users) = self.pages(api, users_path).await? else {
            return Ok(Err(format!(
                "no {users_path} on this server (auth disabled, or another auth plugin)"
            )));
        };
        // Served with the users by the same plugin: one missing is an answer not understood.
        let gone = |path: &str| {
            self.transport.err(
                format!("GET {path} is not served while {users_path} is"),
                false,
                None,
            )
        };
        let roles = self
            .pages(api, roles_path)
            .await?
            .ok_or_else(|| gone(roles_path))?;
        let permissions = self
            .pages(api, permissions_path)
            .await?
            .ok_or_else(|| gone(permissions_path))?;
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let bad = |path: &str| {
            self.transport.err(
                format!("GET {path}: an item without the expected fields"),
                false,
                Some(200),
            )
        };
        let mut out = AuthTables::default();
        for u in &users {
            out.users.push(User {
                username: text(u, "username").ok_or_else(|| bad(users_path))?,
                password_sha256: u.get("password").and_then(Value::as_str).map(digest),
            });
        }
        for r in &roles {
            out.roles.push(RoleBinding {
                username: text(r, "username").ok_or_else(|| bad(roles_path))?,
                role: text(r, "role").ok_or_else(|| bad(roles_path))?,
            });
        }
        for p in &permissions {
            out.permissions.push(Permission {
                role: text(p, "role").ok_or_else(|| bad(permissions_path))?,
                resource: text(p, "resource").ok_or_else(|| bad(permissions_path))?,
                action: text(p, "action").ok_or_else(|| bad(permissions_path))?,
            });
        }
        Ok(Ok(out))
    }

    /// Every item of one paged auth listing; what was read must add up to the server's count.
    /// `None` when the server does not serve it (404, 405, 410, 501).
    async fn pages(&self, api: Api, path: &'static str) -> Result<Option<Vec<Value>>, NodeError> {
        let mut out = Vec::new();
        let mut page = 1usize;
        loop {
            let call = Call {
                endpoint: Endpoint::AuthList,
                method: reqwest::Method::GET,
                path,
                params: vec![
                    ("search", "accurate".into()),
                    ("pageNo", page.to_string()),
                    ("pageSize", PAGE.to_string()),
                    ("username", String::new()),
                    ("role", String::new()),
                ],
                headers: Vec::new(),
                binary: false,
                timeout: None,
                queued: false,
            };
            let resp = self.transport.send(&call).await?;
            if resp.status == 403 || resp.status == 401 {
                return Err(self.transport.err(
                    format!(
                        "GET {path} answered HTTP {}: the login lacks admin rights (listing users, roles and permissions needs a user with ROLE_ADMIN: set nacos_username to one)",
                        resp.status
                    ),
                    false,
                    Some(resp.status),
                ));
            }
            if page == 1 && matches!(resp.status, 404 | 405 | 410 | 501) {
                return Ok(None);
            }
            if resp.status != 200 {
                return Err(self.transport.status_error(&call, &resp));
            }
            // The body holds password hashes: no part of it goes into a message.
            let v: Value = serde_json::from_str(&resp.body).map_err(|_| {
                self.transport.err(
                    format!("GET {path}: the answer is not JSON"),
                    false,
                    Some(200),
                )
            })?;
            let page_of = match api {
                Api::V1 => Some(&v),
                // `Result.success(page)`: any other code is a failure the server reports.
                Api::V3 => match v.get("code").and_then(Value::as_i64) {
                    Some(0) => v.get("data"),
                    Some(code) => {
                        return Err(self.transport.err(
                            format!("GET {path}: the server answered code {code}"),
                            false,
                            Some(200),
                        ))
                    }
                    None => None,
                },
            };
            let (Some(total), Some(items)) = (
                page_of
                    .and_then(|p| p.get("totalCount"))
                    .and_then(Value::as_u64),
                page_of
                    .and_then(|p| p.get("pageItems"))
                    .and_then(Value::as_array),
            ) else {
                return Err(self.transport.err(
                    format!("GET {path}: no totalCount/pageItems in the answer"),
                    false,
                    Some(200),
                ));
            };
            let n = items.len();
            out.extend(items.iter().cloned());
            let total = usize::try_from(total).unwrap_or(usize::MAX);
            if out.len() >= total || n == 0 {
                if out.len() != total {
                    return Err(self.transport.err(
                        format!(
                            "GET {path}: read {} item(s) where the server counts {total}",
                            out.len()
                        ),
                        true,
                        Some(200),
                    ));
                }
                return Ok(Some(out));
            }
            page += 1;
        }
    }
}

/// Read the accounts through the node the API capture used, into `snap` (a read failure is a
/// capture error of the API layer, never an empty list; a server without the API leaves
/// `snap.auth` empty, which the report names).
/// An r-nacos side with `rnacos_console` set is read through that console instead.
pub async fn capture(
    nodes: &[std::sync::Arc<NacosNode>],
    snap: &mut crate::model::ApiSnapshot,
    rnacos_console: Option<&str>,
) {
    let Some(node) = nodes.iter().find(|n| n.base == snap.origin) else {
        return;
    };
    if snap.errors.iter().any(|e| e.origin == snap.origin) {
        return;
    }
    let tables = match (rnacos_console, node.kind().await.map(|k| k.1)) {
        (Some(console), Ok(ServerKind::RNacos)) => node.rnacos_auth_tables(console).await.map(Ok),
        _ => node.auth_tables().await,
    };
    match tables {
        Ok(Ok(t)) => snap.auth = Some(t),
        Ok(Err(why)) => tracing::info!("{}: accounts not read: {why}", node.base),
        Err(e) => snap.errors.push(crate::model::CaptureError {
            origin: node.base.clone(),
            namespace: None,
            message: format!("reading users, roles and permissions: {}", e.message),
        }),
    }
}
