//! Users and their roles through r-nacos's console API, for an r-nacos side (r-nacos serves no
//! Nacos `/v1/auth/*`): `POST /rnacos/api/console/v2/login/login` then
//! `GET /rnacos/api/console/v2/user/list` (`src/console/api.rs` `console_api_config_v2`,
//! `console/v2/user_api.rs` `get_user_page_list`), on the console port (`RNACOS_HTTP_CONSOLE_PORT`,
//! set as the side's `rnacos_console`).
//!
//! The login form takes the password base64-encoded when no captcha token is sent
//! (`console/login_api.rs` `decode_password`); a server with the captcha on
//! (`RNACOS_CONSOLE_ENABLE_CAPTCHA`, its default) refuses any scripted login, which is said. The
//! session token comes back in the answer and goes in a `Token` header (`console/middle/
//! login_middle.rs`). The list answers `{success, data: {totalCount, list}}`, each user a
//! `UserDto` with its `passwordHash` (digested at once, like the DB's, then dropped) and `roles`
//! (`"0"` manager, `"1"` developer, `"2"` visitor: `user/permission.rs` `USER_ROLE_*`). Listing
//! users needs the manager role (`UserRole::match_url_by_roles`): a refusal says so.
//!
//! r-nacos has no role → resource permissions: its per-user namespace white/black lists
//! (`namespacePrivilege`) are another model, not compared (the report says so).

use super::dialect::{Call, Endpoint};
use super::transport::Transport;
use super::{NacosNode, NodeError};
use crate::accounts::{AuthTables, RoleBinding, User};
use serde_json::Value;

/// Users asked for per page.
const PAGE: usize = 500;
/// Why permissions are not compared on an r-nacos side.
pub const NO_PERMISSIONS: &str =
    "r-nacos has no role → resource permissions (its per-user namespace privileges are not compared)";

/// A role code shown by its name.
fn role_name(code: &str) -> String {
    match code {
        "0" => "MANAGER".to_owned(),
        "1" => "DEVELOPER".to_owned(),
        "2" => "VISITOR".to_owned(),
        other => other.to_owned(),
    }
}

/// Standard base64 with padding (what `crypto_utils::decode_base64` takes): the console login
/// form's password.
#[must_use]
pub fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(A[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

impl NacosNode {
    /// Users (password digests) and user → role bindings of an r-nacos side, read through its
    /// console at `console` with this node's credentials.
    pub async fn rnacos_auth_tables(&self, console: &str) -> Result<AuthTables, NodeError> {
        // The same HTTP client (TLS, timeouts), no login of its own: the console has another.
        let mut t = Transport::new(
            self.transport.http.clone(),
            console,
            None,
            None,
            1,
            self.transport.retries,
        );
        t.max_body = self.transport.max_body;
        let (Some(user), Some(pass)) = (&self.transport.username, &self.transport.password) else {
            return Err(t.err(
                "reading r-nacos accounts needs a console login: set nacos_username and the password for this side",
                false,
                None,
            ));
        };
        let token = login(&t, user, pass.expose()).await?;
        let mut out = AuthTables {
            permissions_not_read: Some(NO_PERMISSIONS.to_owned()),
            ..AuthTables::default()
        };
        let path = "/rnacos/api/console/v2/user/list";
        let bad = |what: &str| t.err(format!("GET {path}: {what}"), false, Some(200));
        let mut read = 0usize;
        let mut page = 1usize;
        loop {
            let call = Call {
                endpoint: Endpoint::AuthList,
                method: reqwest::Method::GET,
                path,
                params: vec![("pageNo", page.to_string()), ("pageSize", PAGE.to_string())],
                headers: vec![("Token".to_owned(), token.clone())],
                binary: false,
                timeout: None,
                queued: false,
            };
            let resp = t.send(&call).await?;
            if resp.status != 200 {
                return Err(t.status_error(&call, &resp));
            }
            // The body holds password hashes: no part of it goes into a message.
            let v: Value =
                serde_json::from_str(&resp.body).map_err(|_| bad("the answer is not JSON"))?;
            let data = ok_data(&t, path, &v)?;
            let (Some(total), Some(items)) = (
                data.get("totalCount").and_then(Value::as_u64),
                data.get("list").and_then(Value::as_array),
            ) else {
                return Err(bad("no totalCount/list in the answer"));
            };
            for u in items {
                let name = u
                    .get("username")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("a user without a username"))?;
                let roles = match u.get("roles") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(r)) => r
                        .iter()
                        .map(|x| x.as_str().map(role_name))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| bad("a role that is not a string"))?,
                    Some(_) => return Err(bad("roles that are not a list")),
                };
                out.users.push(User {
                    username: name.to_owned(),
                    password_sha256: u
                        .get("passwordHash")
                        .and_then(Value::as_str)
                        .map(super::auth_api::digest),
                });
                out.roles.extend(roles.into_iter().map(|role| RoleBinding {
                    username: name.to_owned(),
                    role,
                }));
            }
            read += items.len();
            let total = usize::try_from(total).unwrap_or(usize::MAX);
            if read >= total || items.is_empty() {
                if read != total {
                    return Err(t.err(
                        format!("GET {path}: read {read} user(s) where the server counts {total}"),
                        true,
                        Some(200),
                    ));
                }
                return Ok(out);
            }
            page += 1;
        }
    }
}

/// `data` of a successful `ApiResult`; a refusal named (no login, no manager role).
fn ok_data<'a>(t: &Transport, path: &str, v: &'a Value) -> Result<&'a Value, NodeError> {
    if v.get("success").and_then(Value::as_bool) == Some(true) {
        return v
            .get("data")
            .ok_or_else(|| t.err(format!("{path}: no data in the answer"), false, Some(200)));
    }
    let code = v.get("code").and_then(Value::as_str).unwrap_or("");
    let why = match code {
        "NO_PERMISSION" => "the login lacks the r-nacos manager role (listing users needs it: set nacos_username to a manager)".to_owned(),
        "CAPTCHA_CHECK_ERROR" => "the console asks for a captcha, which no script can answer: start r-nacos with RNACOS_CONSOLE_ENABLE_CAPTCHA=false to compare its accounts".to_owned(),
        "USER_CHECK_ERROR" => "the console refused the login (wrong username or password)".to_owned(),
        "" => "an answer that is neither a success nor an error".to_owned(),
        other => format!(
            "the console answered error `{}`",
            crate::escape::visible(&super::parse::shape::snippet(other))
        ),
    };
    Err(t.err(format!("{path}: {why}"), false, Some(200)))
}

/// Log in to the console; its session token.
async fn login(t: &Transport, user: &str, pass: &str) -> Result<String, NodeError> {
    let path = "/rnacos/api/console/v2/login/login";
    let call = Call {
        endpoint: Endpoint::AuthList,
        method: reqwest::Method::POST,
        path,
        params: vec![("username", user.to_owned()), ("password", base64(pass))],
        headers: Vec::new(),
        binary: false,
        timeout: None,
        queued: false,
    };
    let resp = t.send(&call).await?;
    if resp.status != 200 {
        return Err(t.status_error(&call, &resp));
    }
    // The body holds the session token: no part of it goes into a message.
    let v: Value = serde_json::from_str(&resp.body).map_err(|_| {
        t.err(
            format!("POST {path}: the answer is not JSON"),
            false,
            Some(200),
        )
    })?;
    ok_data(t, path, &v)?
        .get("token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            t.err(
                format!("POST {path}: no token in the answer"),
                false,
                Some(200),
            )
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_pads_like_the_standard() {
        for (plain, enc) in [
            ("", ""),
            ("a", "YQ=="),
            ("ab", "YWI="),
            ("abc", "YWJj"),
            ("admin", "YWRtaW4="),
            ("nacos-drift", "bmFjb3MtZHJpZnQ="),
        ] {
            assert_eq!(super::base64(plain), enc);
        }
    }

    #[test]
    fn role_codes_are_named() {
        assert_eq!(super::role_name("0"), "MANAGER");
        assert_eq!(super::role_name("2"), "VISITOR");
        assert_eq!(super::role_name("x"), "x");
    }
}
