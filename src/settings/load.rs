//! Raw setting values read from the config file and the environment, each with where it came from.

use super::*;
use std::path::Path;
// ---------------------------------------------------------------------------------------------
// Raw values with their origin, so that problems can name the file and line or the variable.

#[derive(Debug, Clone)]
pub(super) enum Raw {
    Str(String),
    List(Vec<String>),
    Bool(bool),
    Int(i64),
    Map(Vec<(String, String, String)>), // key, value, location
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    List,
    Bool,
    Int,
}

/// Known keys: (section, key, kind). `nacos` accepts a string or a list.
pub(super) const KEYS: &[(&str, &str, Kind)] = &[
    ("source", "nacos", Kind::List),
    ("source", "nacos_username", Kind::Str),
    ("source", "nacos_password_file", Kind::Str),
    ("source", "db", Kind::Str),
    ("source", "db_password_file", Kind::Str),
    ("source", "nacos_identity_key", Kind::Str),
    ("source", "nacos_identity_value_file", Kind::Str),
    ("source", "nacos_version", Kind::Str),
    ("source", "rnacos_console", Kind::Str),
    ("source", "nacos_ca_file", Kind::Str),
    ("source", "nacos_tls_insecure_skip_verify", Kind::Bool),
    ("source", "db_ssl_mode", Kind::Str),
    ("source", "db_ca_file", Kind::Str),
    ("target", "nacos", Kind::List),
    ("target", "nacos_username", Kind::Str),
    ("target", "nacos_password_file", Kind::Str),
    ("target", "db", Kind::Str),
    ("target", "db_password_file", Kind::Str),
    ("target", "nacos_identity_key", Kind::Str),
    ("target", "nacos_identity_value_file", Kind::Str),
    ("target", "nacos_version", Kind::Str),
    ("target", "rnacos_console", Kind::Str),
    ("target", "nacos_ca_file", Kind::Str),
    ("target", "nacos_tls_insecure_skip_verify", Kind::Bool),
    ("target", "db_ssl_mode", Kind::Str),
    ("target", "db_ca_file", Kind::Str),
    ("audit", "namespaces", Kind::List),
    ("audit", "gate", Kind::Str),
    ("audit", "formats", Kind::List),
    ("audit", "out", Kind::Str),
    ("audit", "show_secrets", Kind::Bool),
    ("audit", "baseline", Kind::Str),
    ("audit", "settle_secs", Kind::Int),
    ("audit", "timeout_secs", Kind::Int),
    ("audit", "deadline_secs", Kind::Int),
    ("audit", "concurrency", Kind::Int),
    ("audit", "retries", Kind::Int),
    ("audit", "probe", Kind::Bool),
    ("audit", "l4", Kind::Bool),
    ("audit", "l4_per_config_max", Kind::Int),
    ("audit", "state", Kind::Str),
    ("audit", "full_every_hours", Kind::Int),
    ("audit", "skew_secs", Kind::Int),
    ("audit", "db_digest", Kind::Str),
    ("audit", "config_meta", Kind::Str),
    ("audit", "max_body_mib", Kind::Int),
    ("fix", "full_threshold_pct", Kind::Int),
    ("fix", "rate_per_sec", Kind::Int),
    ("fix", "verify_secs", Kind::Int),
    ("fix", "allow_untrusted_rows", Kind::Bool),
    ("ignore", "namespaces", Kind::List),
    ("ignore", "groups", Kind::List),
    ("ignore", "data_ids", Kind::List),
    ("ignore", "services", Kind::List),
    ("ignore", "metadata_keys", Kind::List),
    ("ignore", "default_metadata_keys", Kind::Bool),
];

/// Free-form tables: every key allowed, values strings.
pub(super) const MAP_SECTIONS: &[&str] = &["namespace_map", "levels"];

/// Merged raw values: `section.key` → (value, where it came from).
#[derive(Debug, Default)]
pub(super) struct RawSet {
    pub(super) values: BTreeMap<String, (Raw, String)>,
    pub(super) problems: Vec<String>,
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

pub(super) fn load_file(path: &Path, set: &mut RawSet) {
    use toml::de::{DeTable, DeValue};
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            set.problems
                .push(format!("{shown}: cannot read config file: {e}"));
            return;
        }
    };
    let doc = match DeTable::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            let line = e.span().map_or(0, |s| line_of(&text, s.start));
            set.problems.push(format!(
                "{shown}:{line}: TOML syntax error: {}",
                e.message()
            ));
            return;
        }
    };
    let loc = |span: std::ops::Range<usize>| format!("{shown}:{}", line_of(&text, span.start));
    for (section, value) in doc.get_ref() {
        let sname = section.get_ref().as_ref();
        let Some(table) = value.get_ref().as_table() else {
            set.problems.push(format!(
                "{}: `{sname}` must be a table ([{sname}])",
                loc(section.span())
            ));
            continue;
        };
        let known_section =
            KEYS.iter().any(|(s, _, _)| *s == sname) || MAP_SECTIONS.contains(&sname);
        if !known_section {
            set.problems.push(format!(
                "{}: unknown section `[{sname}]` (expected one of: source, target, audit, fix, ignore, namespace_map, levels)",
                loc(section.span())
            ));
            continue;
        }
        if MAP_SECTIONS.contains(&sname) {
            let mut entries = Vec::new();
            for (k, v) in table {
                match v.get_ref().as_str() {
                    Some(s) => entries.push((k.get_ref().to_string(), s.to_owned(), loc(k.span()))),
                    None => set.problems.push(format!(
                        "{}: `{sname}.{}` must be a string, found {}",
                        loc(k.span()),
                        k.get_ref(),
                        v.get_ref().type_str()
                    )),
                }
            }
            set.values
                .insert(format!("{sname}._"), (Raw::Map(entries), shown.clone()));
            continue;
        }
        for (k, v) in table {
            let kname = k.get_ref().as_ref();
            let at = loc(k.span());
            let Some((_, _, kind)) = KEYS.iter().find(|(s, key, _)| *s == sname && *key == kname)
            else {
                let known: Vec<&str> = KEYS
                    .iter()
                    .filter(|(s, _, _)| *s == sname)
                    .map(|(_, k, _)| *k)
                    .collect();
                set.problems.push(format!(
                    "{at}: unknown key `{sname}.{kname}` (known keys: {})",
                    known.join(", ")
                ));
                continue;
            };
            let raw = match (kind, v.get_ref()) {
                (Kind::Str, DeValue::String(s)) => Some(Raw::Str(s.to_string())),
                (Kind::List, DeValue::String(s)) => Some(Raw::List(split_list(s))),
                (Kind::List, DeValue::Array(a)) => {
                    let mut out = Vec::new();
                    let mut ok = true;
                    for item in a.iter() {
                        match item.get_ref().as_str() {
                            Some(s) => out.push(s.to_owned()),
                            None => ok = false,
                        }
                    }
                    ok.then_some(Raw::List(out))
                }
                (Kind::Bool, DeValue::Boolean(b)) => Some(Raw::Bool(*b)),
                (Kind::Int, DeValue::Integer(i)) => i64::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .map(Raw::Int),
                _ => None,
            };
            match raw {
                Some(r) => {
                    set.values.insert(format!("{sname}.{kname}"), (r, at));
                }
                None => set.problems.push(format!(
                    "{at}: `{sname}.{kname}` must be {}, found {}",
                    kind_name(*kind),
                    v.get_ref().type_str()
                )),
            }
        }
    }
}

pub(super) fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Str => "a string",
        Kind::List => "a list of strings",
        Kind::Bool => "a boolean",
        Kind::Int => "an integer",
    }
}

pub(super) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every `NACOS_DRIFT_*` variable nacos-drift reads: one per known key, plus
/// [`crate::validate::OTHER_ENV`].
pub(super) fn known_env() -> Vec<String> {
    KEYS.iter()
        .map(|(section, key, _)| env_name(section, key))
        .chain(crate::validate::OTHER_ENV.iter().map(|s| (*s).to_owned()))
        .collect()
}

/// `NACOS_DRIFT_<SECTION>_<KEY>` for every known key.
pub(super) fn env_name(section: &str, key: &str) -> String {
    format!(
        "NACOS_DRIFT_{}_{}",
        section.to_uppercase(),
        key.to_uppercase()
    )
}

pub(super) fn load_env(env: &dyn Fn(&str) -> Option<String>, set: &mut RawSet) {
    for (section, key, kind) in KEYS {
        let name = env_name(section, key);
        let Some(v) = env(&name) else { continue };
        let raw = match kind {
            Kind::Str => Some(Raw::Str(v.clone())),
            Kind::List => Some(Raw::List(split_list(&v))),
            Kind::Bool => match v.as_str() {
                "1" | "true" | "yes" => Some(Raw::Bool(true)),
                "0" | "false" | "no" | "" => Some(Raw::Bool(false)),
                _ => None,
            },
            Kind::Int => v.trim().parse().ok().map(Raw::Int),
        };
        match raw {
            Some(r) => {
                set.values.insert(
                    format!("{section}.{key}"),
                    (r, format!("environment variable {name}")),
                );
            }
            None => set.problems.push(format!(
                "environment variable {name}: must be {}",
                kind_name(*kind)
            )),
        }
    }
}

pub(super) fn put(set: &mut RawSet, key: &str, raw: Raw, flag: &str) {
    set.values
        .insert(key.to_owned(), (raw, format!("flag {flag}")));
}
