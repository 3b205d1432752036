//! URLs of node requests: paths joined to the node's base URL as path segments, and URLs shown
//! in messages without userinfo, query or fragment (they may hold secrets, or a node's own text).

use reqwest::Url;

/// `scheme://host:port/path` of a URL: userinfo, query and fragment left out (they may hold
/// secrets, and a node's own answer is not to be echoed whole).
#[must_use]
pub fn without_secrets(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Where a redirect pointed, resolved against the request URL, without userinfo, query or fragment.
#[must_use]
pub fn redirect_target(location: Option<&str>, request: &Url) -> String {
    match location.map(|l| request.join(l)) {
        Some(Ok(u)) => without_secrets(&u),
        Some(Err(_)) => "an unreadable Location".to_owned(),
        None => "no Location".to_owned(),
    }
}

/// `base` + `path` with a URL type: the path is appended to the base's path segments, so a
/// base with anything after its path (`?x`, `#y`) cannot swallow it.
pub fn join(base: &Url, path: &str) -> Url {
    let mut u = base.clone();
    u.set_query(None);
    u.set_fragment(None);
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop_if_empty()
            .extend(path.split('/').filter(|s| !s.is_empty()));
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_below_the_base_path_whatever_follows_it() {
        let base = Url::parse("http://127.0.0.1:8848/nacos").unwrap();
        assert_eq!(
            join(&base, "/v1/cs/configs").as_str(),
            "http://127.0.0.1:8848/nacos/v1/cs/configs"
        );
        let odd = Url::parse("http://h:1/nacos/?accessToken=X#frag").unwrap();
        assert_eq!(
            join(&odd, "/v1/auth/login").as_str(),
            "http://h:1/nacos/v1/auth/login"
        );
        let root = Url::parse("http://h:1").unwrap();
        assert_eq!(
            join(&root, "/v1/ns/service").as_str(),
            "http://h:1/v1/ns/service"
        );
    }

    #[test]
    fn a_redirect_is_named_without_query_userinfo_or_fragment() {
        let req = Url::parse("http://n:8848/nacos/v1/console/server/state").unwrap();
        assert_eq!(
            redirect_target(Some("https://u:pw@evil.example/x?accessToken=T#f"), &req),
            "https://evil.example/x"
        );
        assert_eq!(
            redirect_target(Some("/login?next=/nacos"), &req),
            "http://n:8848/login"
        );
        assert_eq!(redirect_target(None, &req), "no Location");
        assert_eq!(
            redirect_target(Some("http://[::1"), &req),
            "an unreadable Location"
        );
    }
}
