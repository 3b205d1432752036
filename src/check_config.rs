//! `audit --check-config`: the resolved settings in words, for a dry validation that contacts nothing.

use crate::settings::{Settings, SideSettings};
use std::fmt::Write;

/// What one side is set to, without any secret (the DSN has its password taken out by `settings`).
fn side(name: &str, s: &SideSettings, out: &mut String) {
    let nodes = if s.nacos.is_empty() {
        "none".to_owned()
    } else {
        s.nacos.join(", ")
    };
    let _ = writeln!(out, "{name}: nacos nodes: {nodes}");
    let _ = writeln!(
        out,
        "{name}: nacos login: {}",
        match (&s.nacos_username, s.nacos_password.is_some()) {
            (Some(u), true) => format!("{u} (password set)"),
            (Some(u), false) => format!("{u} (no password)"),
            (None, _) => "none".to_owned(),
        }
    );
    if s.uses_https() {
        // Only with `https://` nodes: the demo-like runs without TLS print what they always did.
        let trust = if s.nacos_tls_insecure_skip_verify {
            "CERTIFICATE VERIFICATION OFF (nacos_tls_insecure_skip_verify)".to_owned()
        } else {
            match &s.nacos_ca_file {
                Some(f) => format!("verified against the system roots and {}", f.display()),
                None => "verified against the system roots".to_owned(),
            }
        };
        let _ = writeln!(out, "{name}: nacos TLS: {trust}");
    }
    let _ = writeln!(
        out,
        "{name}: database: {}{}",
        s.db.as_deref().unwrap_or("none"),
        if s.db.is_some() && s.db_password.is_some() {
            " (password set)"
        } else {
            ""
        }
    );
}

/// The settings a run would use, one line per fact.
#[must_use]
pub fn describe(settings: &Settings) -> String {
    let mut out = String::from("configuration OK\n");
    side("source", &settings.source, &mut out);
    side("target", &settings.target, &mut out);
    let ns = if settings.namespaces.is_empty() {
        "all".to_owned()
    } else {
        settings.namespaces.join(", ")
    };
    let _ = writeln!(out, "namespaces: {ns}");
    let _ = writeln!(
        out,
        "gate: {}",
        settings.gate.map_or_else(
            || "none (every finding counts)".to_owned(),
            |g| g.name().to_owned()
        )
    );
    let files: Vec<&str> = settings.formats.iter().map(|f| f.file_name()).collect();
    let _ = writeln!(out, "report files: {}", files.join(", "));
    let _ = writeln!(
        out,
        "out: {}",
        settings.out.as_ref().map_or_else(
            || "reports/<run-id>".to_owned(),
            |p| p.display().to_string()
        )
    );
    let _ = writeln!(out, "probe: {}", if settings.probe { "on" } else { "off" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nacos_tls_trust_is_said_only_for_https_nodes() {
        let mut s = Settings::default();
        s.source.nacos = vec!["http://s:8848/nacos".into()];
        s.target.nacos = vec!["https://t:8848/nacos".into()];
        s.target.nacos_ca_file = Some("/etc/ca.pem".into());
        let text = describe(&s);
        assert!(!text.contains("source: nacos TLS"), "{text}");
        assert!(
            text.contains("target: nacos TLS: verified against the system roots and /etc/ca.pem\n"),
            "{text}"
        );
        s.target.nacos_tls_insecure_skip_verify = true;
        assert!(
            describe(&s).contains("target: nacos TLS: CERTIFICATE VERIFICATION OFF"),
            "{text}"
        );
    }
}
