//! Resolving a side's TLS settings (the TLS machinery itself is in `crate::tls`).

use crate::tls::{read_ca_file, SslMode};

/// A side's TLS settings: the Nacos CA file and verification switch, and the DB's `ssl-mode`
/// and CA file, which are carried in the DSN (`?ssl-mode=..&ssl-ca=..`, as the mysql client
/// names them) so that every connection made from it gets them. A setting beats the DSN's own.
pub(crate) fn side_settings(
    side_name: &str,
    side: &mut super::SideSettings,
    str_of: &dyn Fn(&str) -> Option<(String, String)>,
    bool_of: &dyn Fn(&str) -> Option<bool>,
    problems: &mut Vec<String>,
) {
    if let Some((file, at)) = str_of(&format!("{side_name}.nacos_ca_file")) {
        match read_ca_file(std::path::Path::new(&file)) {
            Ok(_) => side.nacos_ca_file = Some(std::path::PathBuf::from(file)),
            Err(e) => problems.push(format!("{at}: {side_name}.nacos_ca_file {e}")),
        }
    }
    side.nacos_tls_insecure_skip_verify =
        bool_of(&format!("{side_name}.nacos_tls_insecure_skip_verify")).unwrap_or(false);
    let mode = str_of(&format!("{side_name}.db_ssl_mode"));
    if let Some((m, at)) = &mode {
        if SslMode::parse(m).is_none() {
            problems.push(format!(
                "{at}: {side_name}.db_ssl_mode: unknown mode `{m}` (expected {})",
                SslMode::NAMES
            ));
        }
    }
    let ca = str_of(&format!("{side_name}.db_ca_file"));
    if let Some((file, at)) = &ca {
        if let Err(e) = read_ca_file(std::path::Path::new(file)) {
            problems.push(format!("{at}: {side_name}.db_ca_file {e}"));
        }
    }
    let Some(dsn) = side.db.as_mut() else { return };
    let Ok(mut url) = reqwest::Url::parse(dsn) else {
        return;
    };
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (names, given) in [
        (["ssl-mode", "ssl_mode"], mode.map(|m| m.0)),
        (["ssl-ca", "ssl_ca"], ca.map(|c| c.0)),
    ] {
        let Some(v) = given else { continue };
        pairs.retain(|(k, _)| !names.contains(&k.as_str()));
        pairs.push((names[0].to_owned(), v));
    }
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    *dsn = url.to_string();
}

/// The client config of every `https://` node of both sides, by its base URL (for the cluster
/// gRPC channel, which follows the node's scheme). A side whose config cannot be built has none
/// here: its HTTP client failed the same way already, and its gRPC channel then says so.
pub fn nacos_configs_by_node(
    settings: &super::Settings,
) -> std::collections::HashMap<String, std::sync::Arc<rustls::ClientConfig>> {
    let mut out = std::collections::HashMap::new();
    for side in [&settings.source, &settings.target] {
        if !side.uses_https() {
            continue;
        }
        let Ok(cfg) = crate::tls::nacos_client_config(
            side.nacos_ca_file.as_deref(),
            side.nacos_tls_insecure_skip_verify,
        ) else {
            continue;
        };
        let cfg = std::sync::Arc::new(cfg);
        for url in side.nacos.iter().filter(|u| u.starts_with("https://")) {
            out.insert(url.clone(), cfg.clone());
        }
    }
    out
}
