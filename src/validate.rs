//! Checks of what the settings name, done before anything is read (a mistake here is exit 2):
//! node URLs and DSNs (parsed with URL types, never echoed with credentials), output and state
//! folders, and the names of `NACOS_DRIFT_*` environment variables. Also the masking of URLs and
//! DSNs wherever they are shown.

use reqwest::Url;
use std::path::{Path, PathBuf};

/// The mask put in place of a credential, query or fragment in anything shown.
pub const MASK: &str = "****";

/// A URL as text with its userinfo, query and fragment replaced by `****`, without parsing it
/// (it may not parse: this is what error messages show). Without `://`, everything before the
/// last `@` of the part before the first `/` is taken as userinfo, so `admin:pw@host/x` hides `pw`.
#[must_use]
pub fn mask_url(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    // Query and fragment first: an `@` inside them is not userinfo.
    let cut = rest.find(['?', '#']).unwrap_or(rest.len());
    let (head, tail) = rest.split_at(cut);
    // Userinfo: up to the last `@` of the head (a password may hold `/`, so look past slashes
    // when a scheme says where the authority starts; without one, only before the first `/`).
    let at = if scheme.is_empty() {
        head.split('/').next().unwrap_or("").rfind('@')
    } else {
        head.rfind('@')
    };
    let head = match at {
        Some(i) => format!("{MASK}@{}", &head[i + 1..]),
        None => head.to_owned(),
    };
    let mut out = format!("{scheme}{head}");
    match (tail.find('?'), tail.find('#')) {
        (Some(q), Some(f)) if q < f => out.push_str(&format!("?{MASK}#{MASK}")),
        (Some(_), None) => out.push_str(&format!("?{MASK}")),
        (_, Some(_)) => out.push_str(&format!("#{MASK}")),
        (None, None) => {}
    }
    out
}

/// Query parameters whose value is a password, in DSNs.
fn is_password_param(k: &str) -> bool {
    matches!(
        k.to_ascii_lowercase().as_str(),
        "password" | "pass" | "passwd" | "pwd"
    )
}

/// A DSN for display: the password (in userinfo or a `password=` parameter) replaced by `****`,
/// everything else kept. A DSN that does not parse is masked like [`mask_url`].
#[must_use]
pub fn mask_dsn(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return mask_url(raw);
    };
    if url.password().is_some() && url.set_password(Some(MASK)).is_err() {
        return mask_url(raw);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_password_param(&k) {
                    MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if url.fragment().is_some() {
        url.set_fragment(Some(MASK));
    }
    url.to_string().replace("%2A%2A%2A%2A", MASK)
}

/// An origin for display (a report's side, a finding's node): DSNs keep their parameters but
/// not their password; node URLs lose userinfo, query and fragment.
#[must_use]
pub fn mask_origin(raw: &str) -> String {
    if raw.starts_with("mysql://") {
        mask_dsn(raw)
    } else {
        mask_url(raw)
    }
}

/// Check a node base URL (scheme + host + port + path, nothing else) and return it normalised,
/// without a trailing slash. The error shows the URL masked by [`mask_url`].
pub fn node_url(raw: &str) -> Result<String, String> {
    base_url(raw, true)
}

/// A console's base URL (r-nacos's console port): checked as [`node_url`], but served at the
/// root, so no context path is needed.
pub fn console_url(raw: &str) -> Result<String, String> {
    base_url(raw, false)
}

fn base_url(raw: &str, needs_path: bool) -> Result<String, String> {
    let shown = mask_url(raw);
    let url = Url::parse(raw.trim()).map_err(|e| {
        format!("`{shown}` is not a valid URL ({e}); expected http://host:port/context-path")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{shown}` is not an http:// or https:// URL (expected http://host:port/context-path)"
        ));
    }
    let mut wrong = Vec::new();
    if !url.username().is_empty() || url.password().is_some() {
        wrong.push(
            "user:password@ (credentials go in NACOS_DRIFT_<SIDE>_NACOS_USERNAME and _PASSWORD)",
        );
    }
    if url.query().is_some() {
        wrong.push("the ?query (a token or parameter in a node URL would travel in every request)");
    }
    if url.fragment().is_some() {
        wrong.push("the #fragment");
    }
    if !wrong.is_empty() {
        return Err(format!(
            "`{shown}`: a node URL is scheme, host, port and path only; remove {}",
            wrong.join(", ")
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{shown}` has no host"));
    }
    if needs_path && url.path() == "/" {
        return Err(format!(
            "`{shown}` has no context path (e.g. `{}/nacos`)",
            shown.trim_end_matches('/')
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A DSN split into the DSN without its password and the password, checked the way the MySQL
/// driver will read it (host, port, IPv6 literal, parameters), so a mistake is a configuration
/// error now and not a failed read later. The password may be in the userinfo or a `password=`
/// parameter; it is taken out of the DSN either way.
pub fn split_dsn(raw: &str) -> Result<(String, Option<String>), String> {
    let shown = mask_dsn(raw);
    let form = "mysql://user@host:port/database";
    let mut url = Url::parse(raw.trim())
        .map_err(|e| format!("`{shown}` is not a valid DSN ({e}); expected {form}"))?;
    if url.scheme() != "mysql" {
        return Err(format!("`{shown}`: expected a DSN of the form {form}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{shown}`: the DSN has no host"));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    match segments.len() {
        1 => {}
        0 => return Err(format!("`{shown}`: the DSN has no database name ({form})")),
        _ => {
            return Err(format!(
                "`{shown}`: the DSN path must be the database name alone ({form})"
            ))
        }
    }
    if url.fragment().is_some() {
        return Err(format!("`{shown}`: a DSN has no #fragment"));
    }
    let decode = |s: &str| {
        urlencoding::decode(s)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| s.to_owned())
    };
    let mut password = url.password().map(decode);
    let (pw_params, rest): (Vec<_>, Vec<_>) = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .partition(|(k, _)| is_password_param(k));
    if !pw_params.is_empty() {
        if password.is_some() || pw_params.len() > 1 {
            return Err(format!(
                "`{shown}`: the DSN gives its password more than once"
            ));
        }
        password = pw_params.into_iter().next().map(|(_, v)| v);
    }
    if url.set_password(None).is_err() {
        return Err(format!("`{shown}`: the DSN's password cannot be taken out"));
    }
    if rest.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(rest);
    }
    let clean = url.to_string();
    // The mysql client's TLS parameters are read by nacos-drift itself (see `crate::tls`).
    let (plain, mode, ca) = take_tls_params(&clean).map_err(|e| format!("`{shown}`: {e}"))?;
    if let Some(m) = mode {
        if crate::tls::SslMode::parse(&m).is_none() {
            return Err(format!(
                "`{shown}`: unknown ssl-mode `{m}` (expected {})",
                crate::tls::SslMode::NAMES
            ));
        }
    }
    if let Some(ca) = ca {
        crate::tls::read_ca_file(Path::new(&ca)).map_err(|e| format!("`{shown}`: ssl-ca {e}"))?;
    }
    mysql_async::Opts::from_url(&plain).map_err(|e| format!("`{shown}`: {e}"))?;
    Ok((clean, password))
}

/// A DSN without its TLS parameters (`ssl-mode`, `ssl-ca`), and their values.
pub fn take_tls_params(dsn: &str) -> Result<(String, Option<String>, Option<String>), String> {
    let mut url = Url::parse(dsn).map_err(|e| e.to_string())?;
    let (tls, rest): (Vec<_>, Vec<_>) = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .partition(|(k, _)| crate::tls::is_tls_param(k));
    let mut mode = None;
    let mut ca = None;
    for (k, v) in tls {
        let slot = if k.ends_with("mode") {
            &mut mode
        } else {
            &mut ca
        };
        if slot.replace(v).is_some() {
            return Err(format!("the DSN gives `{k}` more than once"));
        }
    }
    if rest.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok((url.to_string(), mode, ca))
}

/// The nearest existing folder at or above `path` (`.` for a relative path with none).
fn nearest_existing(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    loop {
        if p.exists() {
            return p;
        }
        if !p.pop() || p.as_os_str().is_empty() {
            return PathBuf::from(".");
        }
    }
}

/// Whether a folder can be written, found by creating (and removing) a probe file: permission
/// bits do not tell (root, ACLs, read-only mounts).
fn probe_write(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".nacos-drift-probe-{}.tmp", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot write in `{}`: {e}", dir.display())),
    }
}

/// A folder the run will create (if needed) and write into: it must be a folder, or creatable
/// under a writable folder. `what` names it in the message (`--out`, `audit.state`).
pub fn writable_dir(path: &Path, what: &str) -> Result<(), String> {
    if path.exists() && !path.is_dir() {
        return Err(format!(
            "{what} `{}` is a file, not a folder",
            path.display()
        ));
    }
    let base = nearest_existing(path);
    if !base.is_dir() {
        return Err(format!(
            "{what} `{}` cannot be created: `{}` is a file, not a folder",
            path.display(),
            base.display()
        ));
    }
    probe_write(&base).map_err(|e| format!("{what} `{}`: {e}", path.display()))
}

/// The folder of the incremental state file, which also holds its lock (`<state>.lock`): a
/// configuration error (exit 2, nothing audited) when it cannot be created or written.
pub fn state_folder(state: &Path) -> crate::error::Result<()> {
    let config = |msg: String| crate::error::Error::new(crate::error::ErrorKind::Config, msg);
    if state.is_dir() {
        return Err(config(format!(
            "audit.state `{}` is a folder; it names the state file",
            state.display()
        )));
    }
    let parent = state
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    writable_dir(parent, "the folder of audit.state (state file and lock)").map_err(config)
}

/// `NACOS_DRIFT_*` variables read outside the `[section] key` table: the secrets (values, not
/// files) and the process-level switches. A new variable read anywhere must be listed here, or
/// setting it is refused as a typo.
pub const OTHER_ENV: &[&str] = &[
    "NACOS_DRIFT_SOURCE_NACOS_PASSWORD",
    "NACOS_DRIFT_SOURCE_DB_PASSWORD",
    "NACOS_DRIFT_SOURCE_NACOS_IDENTITY_VALUE",
    "NACOS_DRIFT_TARGET_NACOS_PASSWORD",
    "NACOS_DRIFT_TARGET_DB_PASSWORD",
    "NACOS_DRIFT_TARGET_NACOS_IDENTITY_VALUE",
    // src/main.rs: log filter.
    "NACOS_DRIFT_LOG",
    // src/app.rs: pins the run id (golden tests, CI).
    "NACOS_DRIFT_RUN_ID",
];

/// One problem per `NACOS_DRIFT_*` name in `names` that is not in `known`, naming the variable
/// (never its value) and the closest known name.
#[must_use]
pub fn unknown_env(names: &[String], known: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        if !n.starts_with("NACOS_DRIFT_") || known.iter().any(|k| k == n) {
            continue;
        }
        let best = known
            .iter()
            .map(|k| (edit_distance(k, n), k))
            .min()
            .filter(|(d, _)| *d <= 3)
            .map(|(_, k)| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        out.push(format!(
            "environment variable {n}: unknown setting{best}; a misspelt variable would leave its setting unset"
        ));
    }
    out
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, Ok(normalised) or Err(part of the message)); no message may hold the secrets.
    #[test]
    fn node_urls_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "http://10.0.0.1:8848/nacos",
                Ok("http://10.0.0.1:8848/nacos"),
            ),
            (
                "http://10.0.0.1:8848/nacos/",
                Ok("http://10.0.0.1:8848/nacos"),
            ),
            ("HTTP://H:8848/nacos", Ok("http://h:8848/nacos")),
            ("https://[::1]:8848/nacos", Ok("https://[::1]:8848/nacos")),
            ("http://h:99999/nacos", Err("invalid port number")),
            ("http://[::zz]:8848/nacos", Err("invalid IPv6 address")),
            ("http://[::1:8848/nacos", Err("is not a valid URL")),
            ("http://h:8848", Err("has no context path")),
            (
                "ftp://admin:s3cr@host/x",
                Err("`ftp://****@host/x` is not an http"),
            ),
            (
                "HTTP://admin:s3cr@h:8848/nacos",
                Err("`HTTP://****@h:8848/nacos`: a node URL is"),
            ),
            ("admin:s3cr@host/x", Err("`****@host/x`")),
            ("10.0.0.1:8848/nacos", Err("is not a valid URL")),
            (
                "http://h:8848/nacos?accessToken=t0k3n",
                Err("`http://h:8848/nacos?****`: a node URL is scheme"),
            ),
            (
                "http://h:8848/nacos#t0k3n",
                Err("`http://h:8848/nacos#****`"),
            ),
            ("http://u:p/s3cr@h:8848/nacos", Err("****@h:8848/nacos")),
            ("http://user@h:8848/nacos", Err("remove user:password@")),
        ];
        for (raw, want) in cases {
            let got = node_url(raw);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{raw}"),
                (Err(w), Err(g)) => {
                    assert!(g.contains(w), "{raw}: `{g}` lacks `{w}`");
                    assert!(
                        !g.contains("s3cr") && !g.contains("t0k3n"),
                        "{raw}: leaked in `{g}`"
                    );
                }
                _ => panic!("{raw}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn dsns_table() {
        let ok: &[(&str, &str, Option<&str>)] = &[
            (
                "mysql://nacos@127.0.0.1:3306/nacos",
                "mysql://nacos@127.0.0.1:3306/nacos",
                None,
            ),
            (
                "mysql://nacos:s%40cret@127.0.0.1:3306/nacos",
                "mysql://nacos@127.0.0.1:3306/nacos",
                Some("s@cret"),
            ),
            (
                "mysql://nacos@127.0.0.1/nacos?password=pw",
                "mysql://nacos@127.0.0.1/nacos",
                Some("pw"),
            ),
            (
                "mysql://nacos:pw@h:3306/nacos?ssl-mode=VERIFY_CA&prefer_socket=false",
                "mysql://nacos@h:3306/nacos?ssl-mode=VERIFY_CA&prefer_socket=false",
                Some("pw"),
            ),
            (
                "mysql://nacos@[::1]:3306/nacos?prefer_socket=false",
                "mysql://nacos@[::1]:3306/nacos?prefer_socket=false",
                None,
            ),
        ];
        for (raw, clean, pw) in ok {
            let (c, p) = split_dsn(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(c, *clean, "{raw}");
            assert_eq!(p.as_deref(), *pw, "{raw}");
        }
        let bad: &[(&str, &str)] = &[
            ("postgres://u@h/db", "expected a DSN"),
            ("mysql://u:pw@h:99999/nacos", "invalid port number"),
            ("mysql://u:pw@[::zz]:3306/nacos", "invalid IPv6 address"),
            (
                "mysql://u:pw@h:3306/nacos?colour=red",
                "Unknown connection URL parameter `colour'",
            ),
            ("mysql://u:pw@h:3306/", "no database name"),
            (
                "mysql://u:pw@h:3306/nacos?ssl-mode=on",
                "unknown ssl-mode `on`",
            ),
            (
                "mysql://u:pw@h/nacos?ssl-ca=/nonexistent/ca.pem",
                "ssl-ca `/nonexistent/ca.pem`",
            ),
            (
                "mysql://u:pw@h/nacos?ssl-mode=required&ssl_mode=disabled",
                "more than once",
            ),
            ("mysql://u:pw@h:3306/a/b", "database name alone"),
            ("mysql://u:pw@h:3306/nacos?password=pw2", "more than once"),
            ("mysql://u@h/nacos?password=pw#x", "no #fragment"),
        ];
        for (raw, want) in bad {
            let e = split_dsn(raw).unwrap_err();
            assert!(e.contains(want), "{raw}: `{e}` lacks `{want}`");
            assert!(!e.contains("pw"), "{raw}: password in `{e}`");
        }
    }

    #[test]
    fn tls_parameters_are_taken_out_of_a_dsn() {
        let (plain, mode, ca) = take_tls_params(
            "mysql://u@h:3306/nacos?ssl-mode=REQUIRED&ssl-ca=%2Fca.pem&prefer_socket=false",
        )
        .unwrap();
        assert_eq!(plain, "mysql://u@h:3306/nacos?prefer_socket=false");
        assert_eq!(mode.as_deref(), Some("REQUIRED"));
        assert_eq!(ca.as_deref(), Some("/ca.pem"));
        let (plain, mode, ca) = take_tls_params("mysql://u@h:3306/nacos").unwrap();
        assert_eq!(
            (plain.as_str(), mode, ca),
            ("mysql://u@h:3306/nacos", None, None)
        );
    }

    #[test]
    fn shown_dsns_and_urls_are_masked() {
        assert_eq!(
            mask_dsn("mysql://u:pw@h:3306/nacos?password=pw2&prefer_socket=false"),
            "mysql://u:****@h:3306/nacos?password=****&prefer_socket=false"
        );
        assert_eq!(mask_dsn("mysql://u@h/nacos"), "mysql://u@h/nacos");
        assert_eq!(mask_origin("mysql://u:pw@h/n"), "mysql://u:****@h/n");
        assert_eq!(
            mask_origin("http://a:b@h/n?t=1#f"),
            "http://****@h/n?****#****"
        );
        assert_eq!(mask_url("http://h/n#f?x"), "http://h/n#****");
    }

    #[test]
    fn unknown_environment_names_are_named_with_a_suggestion() {
        let known = vec![
            "NACOS_DRIFT_SOURCE_NACOS_PASSWORD".to_owned(),
            "NACOS_DRIFT_LOG".to_owned(),
        ];
        let names = vec![
            "NACOS_DRIFT_SOURCE_NACOS_PASWORD".to_owned(),
            "NACOS_DRIFT_LOG".to_owned(),
            "NACOS_DRIFT_WHATEVER_ELSE_ENTIRELY".to_owned(),
            "PATH".to_owned(),
        ];
        let p = unknown_env(&names, &known);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains(
            "NACOS_DRIFT_SOURCE_NACOS_PASWORD: unknown setting (did you mean NACOS_DRIFT_SOURCE_NACOS_PASSWORD?)"
        ));
        assert!(!p[1].contains("did you mean"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn folders_must_be_folders() {
        let dir = std::env::temp_dir().join(format!("nd-validate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a-file");
        std::fs::write(&file, "x").unwrap();
        assert!(writable_dir(&dir, "--out").is_ok());
        assert!(writable_dir(&dir.join("new/deeper"), "--out").is_ok());
        let e = writable_dir(&file, "--out").unwrap_err();
        assert!(e.contains("is a file, not a folder"), "{e}");
        let e = writable_dir(&file.join("sub"), "--out").unwrap_err();
        assert!(e.contains("cannot be created"), "{e}");
        assert!(!dir
            .join(format!(".nacos-drift-probe-{}.tmp", std::process::id()))
            .exists());
    }
}
