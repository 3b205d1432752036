//! Merging file, environment and flags into `Settings`, collecting every problem at once.

use super::load::*;
use super::*;
use crate::error::{Error, ErrorKind, Result};
use std::path::Path;

/// Inputs to [`resolve`], so that tests can inject the environment.
pub struct Inputs<'a> {
    /// Side flags, if the subcommand has them.
    pub sides: Option<&'a SidesArgs>,
    /// Report flags, if the subcommand has them.
    pub report: Option<&'a ReportArgs>,
    /// Config file path.
    pub config: Option<&'a Path>,
    /// `--namespace` flags (for `diff`, which has no side flags).
    pub namespaces: &'a [String],
    /// `--settle`.
    pub settle: Option<u64>,
    /// `--state`.
    pub state: Option<&'a Path>,
    /// `--no-probe`.
    pub no_probe: bool,
    /// Environment lookup.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Merge file, environment and flags into [`Settings`], collecting every problem.
pub fn resolve(inp: &Inputs<'_>) -> Result<Settings> {
    let mut set = RawSet::default();
    if let Some(p) = inp.config {
        load_file(p, &mut set);
    }
    load_env(inp.env, &mut set);
    if let Some(s) = inp.sides {
        if let Some(v) = &s.source_nacos {
            put(
                &mut set,
                "source.nacos",
                Raw::List(split_list(v)),
                "--source-nacos",
            );
        }
        if let Some(v) = &s.target_nacos {
            put(
                &mut set,
                "target.nacos",
                Raw::List(split_list(v)),
                "--target-nacos",
            );
        }
        if let Some(v) = &s.source_db {
            put(&mut set, "source.db", Raw::Str(v.clone()), "--source-db");
        }
        if let Some(v) = &s.target_db {
            put(&mut set, "target.db", Raw::Str(v.clone()), "--target-db");
        }
        tls_flags(s, &mut set);
        if !s.namespaces.is_empty() {
            put(
                &mut set,
                "audit.namespaces",
                Raw::List(s.namespaces.clone()),
                "--namespace",
            );
        }
        if let Some(v) = s.timeout {
            put(
                &mut set,
                "audit.timeout_secs",
                Raw::Int(i64::try_from(v).unwrap_or(i64::MAX)),
                "--timeout",
            );
        }
        if let Some(v) = s.deadline {
            put(
                &mut set,
                "audit.deadline_secs",
                Raw::Int(i64::try_from(v).unwrap_or(i64::MAX)),
                "--deadline",
            );
        }
        if let Some(v) = s.concurrency {
            put(
                &mut set,
                "audit.concurrency",
                Raw::Int(i64::try_from(v).unwrap_or(i64::MAX)),
                "--concurrency",
            );
        }
    }
    if !inp.namespaces.is_empty() {
        put(
            &mut set,
            "audit.namespaces",
            Raw::List(inp.namespaces.to_vec()),
            "--namespace",
        );
    }
    if let Some(p) = inp.state {
        put(
            &mut set,
            "audit.state",
            Raw::Str(p.display().to_string()),
            "--state",
        );
    }
    if inp.no_probe {
        put(&mut set, "audit.probe", Raw::Bool(false), "--no-probe");
    }
    if let Some(v) = inp.settle {
        put(
            &mut set,
            "audit.settle_secs",
            Raw::Int(i64::try_from(v).unwrap_or(i64::MAX)),
            "--settle",
        );
    }
    if let Some(r) = inp.report {
        if let Some(g) = &r.gate {
            put(&mut set, "audit.gate", Raw::Str(g.clone()), "--gate");
        }
        if !r.formats.is_empty() {
            put(
                &mut set,
                "audit.formats",
                Raw::List(r.formats.clone()),
                "--format",
            );
        }
        if let Some(o) = &r.out {
            put(
                &mut set,
                "audit.out",
                Raw::Str(o.display().to_string()),
                "--out",
            );
        }
        if let Some(b) = &r.baseline {
            put(
                &mut set,
                "audit.baseline",
                Raw::Str(b.display().to_string()),
                "--baseline",
            );
        }
        if r.show_secrets {
            put(
                &mut set,
                "audit.show_secrets",
                Raw::Bool(true),
                "--show-secrets",
            );
        }
    }
    let mut problems = std::mem::take(&mut set.problems);
    let process_env: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    problems.extend(crate::validate::unknown_env(&process_env, &known_env()));
    let mut settings = build(&set, inp.env, &mut problems);
    // Only the path here: the commands read it (`cmd::check_since`) before anything is compared,
    // since the report it names is a type of the layers above settings.
    settings.since = inp.report.and_then(|r| r.since.clone());
    if inp.report.is_some() {
        // Reports are written at the end: a folder that cannot take them is found now, before
        // anything is audited.
        let (dir, what) = match (&settings.out, set.values.get("audit.out")) {
            (Some(o), Some((_, at))) => (o.clone(), format!("{at}: audit.out")),
            _ => (
                PathBuf::from("reports"),
                "the default report folder".to_owned(),
            ),
        };
        if let Err(e) = crate::validate::writable_dir(&dir, &what) {
            problems.push(e);
        }
    }
    for w in &settings.warnings {
        let _ = writeln!(std::io::stderr(), "warning: {w}");
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        let mut msg = format!(
            "invalid configuration ({} problem{}):",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for p in &problems {
            let _ = write!(msg, "\n  - {p}");
        }
        Err(Error::new(ErrorKind::Config, msg))
    }
}

/// The TLS flags of both sides (`--source-nacos-ca-file`, `--target-db-ssl-mode`, ...), under
/// the same keys as the file's and the environment's.
fn tls_flags(s: &SidesArgs, set: &mut RawSet) {
    for (side, ca, skip, mode, db_ca) in [
        (
            "source",
            &s.source_nacos_ca_file,
            s.source_nacos_tls_insecure_skip_verify,
            &s.source_db_ssl_mode,
            &s.source_db_ca_file,
        ),
        (
            "target",
            &s.target_nacos_ca_file,
            s.target_nacos_tls_insecure_skip_verify,
            &s.target_db_ssl_mode,
            &s.target_db_ca_file,
        ),
    ] {
        let flag = |key: &str| format!("--{side}-{}", key.replace('_', "-"));
        let key = |k: &str| format!("{side}.{k}");
        for (k, v) in [("nacos_ca_file", ca), ("db_ca_file", db_ca)] {
            if let Some(p) = v {
                put(set, &key(k), Raw::Str(p.display().to_string()), &flag(k));
            }
        }
        if let Some(m) = mode {
            put(
                set,
                &key("db_ssl_mode"),
                Raw::Str(m.clone()),
                &flag("db_ssl_mode"),
            );
        }
        if skip {
            let k = "nacos_tls_insecure_skip_verify";
            put(set, &key(k), Raw::Bool(true), &flag(k));
        }
    }
}

pub(super) fn build(
    set: &RawSet,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Settings {
    let mut s = Settings::default();
    let mut argv_passwords: Vec<String> = Vec::new();
    let get = |k: &str| set.values.get(k);
    let str_of = |k: &str| match get(k) {
        Some((Raw::Str(v), at)) => Some((v.clone(), at.clone())),
        _ => None,
    };
    let list_of = |k: &str| match get(k) {
        Some((Raw::List(v), at)) => Some((v.clone(), at.clone())),
        _ => None,
    };
    let int_of = |k: &str| match get(k) {
        Some((Raw::Int(v), at)) => Some((*v, at.clone())),
        _ => None,
    };
    let bool_of = |k: &str| match get(k) {
        Some((Raw::Bool(v), _)) => Some(*v),
        _ => None,
    };

    for (side_name, side) in [("source", &mut s.source), ("target", &mut s.target)] {
        if let Some((urls, at)) = list_of(&format!("{side_name}.nacos")) {
            for u in urls {
                match crate::validate::node_url(&u) {
                    Ok(u) => side.nacos.push(u),
                    Err(e) => problems.push(format!("{at}: {side_name}.nacos: {e}")),
                }
            }
        }
        side.nacos_username = env(&env_name(side_name, "nacos_username"))
            .or_else(|| str_of(&format!("{side_name}.nacos_username")).map(|v| v.0));
        // A secret from its `*_file` setting, when the environment does not hold it.
        let secret_file = |key: &str, problems: &mut Vec<String>| {
            let (file, at) = str_of(&format!("{side_name}.{key}"))?;
            Secret::read_file(&file)
                .map_err(|e| problems.push(format!("{at}: {side_name}.{key} `{file}`: {e}")))
                .ok()
        };
        side.nacos_password = env(&env_name(side_name, "nacos_password"))
            .map(Secret::new)
            .or_else(|| secret_file("nacos_password_file", problems));
        if let Some((dsn, at)) = str_of(&format!("{side_name}.db")) {
            match crate::validate::split_dsn(&dsn) {
                Ok((clean, pw)) => {
                    if pw.is_some() {
                        if let Some(flag) = at.strip_prefix("flag ") {
                            argv_passwords.push(format!(
                                "{flag} (use NACOS_DRIFT_{}_DB_PASSWORD)",
                                side_name.to_uppercase()
                            ));
                        }
                    }
                    side.db = Some(clean);
                    side.db_password = pw.map(Secret::new);
                }
                Err(e) => problems.push(format!("{at}: {side_name}.db: {e}")),
            }
        }
        if let Some((v, at)) = str_of(&format!("{side_name}.nacos_version")) {
            match crate::version::ServerKind::parse(&v) {
                Some(_) => side.nacos_version = Some(v.trim().to_owned()),
                None => problems.push(format!(
                    "{at}: {side_name}.nacos_version: `{v}` is not a server version (e.g. 2.3.2, 3.1.0 or r-nacos)"
                )),
            }
        }
        if let Some((u, at)) = str_of(&format!("{side_name}.rnacos_console")) {
            match crate::validate::console_url(&u) {
                Ok(u) => side.rnacos_console = Some(u),
                Err(e) => problems.push(format!("{at}: {side_name}.rnacos_console: {e}")),
            }
        }
        super::tls::side_settings(side_name, side, &str_of, &bool_of, problems);
        side.identity_key = env(&env_name(side_name, "nacos_identity_key"))
            .or_else(|| str_of(&format!("{side_name}.nacos_identity_key")).map(|v| v.0));
        side.identity_value = env(&env_name(side_name, "nacos_identity_value"))
            .map(Secret::new)
            .or_else(|| secret_file("nacos_identity_value_file", problems));
        if let Some(pw) = env(&env_name(side_name, "db_password")) {
            side.db_password = Some(Secret::new(pw));
        } else if side.db_password.is_none() {
            side.db_password = secret_file("db_password_file", problems);
        }
    }

    for (name, side) in [("source", &s.source), ("target", &s.target)] {
        if side.nacos_tls_insecure_skip_verify {
            s.warnings.push(format!(
                "TLS CERTIFICATE VERIFICATION IS OFF for the {name} Nacos nodes ({name}.nacos_tls_insecure_skip_verify = true): anyone on the network path can impersonate them"
            ));
        }
    }
    if !argv_passwords.is_empty() {
        // Said once, without the value: the command line of every process is readable by every
        // local user (`ps`, /proc/<pid>/cmdline), for as long as the run lasts.
        s.warnings.push(format!(
            "a database password is on the command line in {}: every local user can read it (ps, /proc/<pid>/cmdline)",
            argv_passwords.join(" and ")
        ));
    }
    if let Some((ns, at)) = list_of("audit.namespaces") {
        s.namespaces = ns
            .iter()
            .map(|n| crate::model::canonical_namespace(n))
            .collect();
        s.namespaces_at = if at.starts_with("flag ") || at.starts_with("environment ") {
            at
        } else {
            format!("{at}: audit.namespaces")
        };
    }
    if let Some((g, at)) = str_of("audit.gate") {
        match Gate::parse(&g) {
            Some(g) => s.gate = Some(g),
            None => problems.push(format!(
                "{at}: unknown gate `{g}` (expected one of: {})",
                Gate::NAMES.join(", ")
            )),
        }
    }
    if let Some((fs, at)) = list_of("audit.formats") {
        s.formats.clear();
        for f in fs {
            match Format::parse(&f) {
                Some(f) if !s.formats.contains(&f) => s.formats.push(f),
                Some(_) => {}
                None => problems.push(format!(
                    "{at}: unknown format `{f}` (expected text, json, csv, markdown, junit, html or prometheus)"
                )),
            }
        }
    }
    if let Some((o, _)) = str_of("audit.out") {
        s.out = Some(PathBuf::from(o));
    }
    if let Some((p, at)) = str_of("audit.baseline") {
        // Read now: a malformed baseline is a configuration error (exit 2), named by file and line.
        match crate::baseline::load(std::path::Path::new(&p)) {
            Ok(b) => s.baseline = Some(b),
            Err(e) => problems.push(format!("{at}: audit.baseline: {e}")),
        }
    }
    if let Some(b) = bool_of("audit.show_secrets") {
        s.show_secrets = b;
    }
    if let Some(b) = bool_of("audit.probe") {
        s.probe = b;
    }
    if let Some(b) = bool_of("audit.l4") {
        s.l4 = b;
    }
    if let Some(b) = bool_of("fix.allow_untrusted_rows") {
        s.fix.allow_untrusted_rows = b;
    }
    if let Some((p, _)) = str_of("audit.state") {
        s.state = PathBuf::from(p);
    }
    if let Some((d, at)) = str_of("audit.db_digest") {
        match d.as_str() {
            "auto" => s.db_digest = DbDigest::Auto,
            "md5" => s.db_digest = DbDigest::Md5,
            _ => problems.push(format!(
                "{at}: unknown `audit.db_digest` `{d}` (expected auto or md5)"
            )),
        }
    }
    if let Some((m, at)) = str_of("audit.config_meta") {
        match m.as_str() {
            "bulk" => s.config_meta = ConfigMeta::Bulk,
            "per-config" => s.config_meta = ConfigMeta::PerConfig,
            "off" => s.config_meta = ConfigMeta::Off,
            _ => problems.push(format!(
                "{at}: unknown `audit.config_meta` `{m}` (expected bulk, per-config or off)"
            )),
        }
    }
    let mut int_setting = |key: &str, min: i64, max: i64| -> Option<u64> {
        let (v, at) = int_of(key)?;
        if v < min || v > max {
            problems.push(format!(
                "{at}: `{key}` must be between {min} and {max}, found {v}"
            ));
            return None;
        }
        u64::try_from(v).ok()
    };
    if let Some(v) = int_setting("audit.l4_per_config_max", 0, 1_000_000) {
        s.l4_per_config_max = v;
    }
    if let Some(v) = int_setting("audit.settle_secs", 0, 3600) {
        s.settle_secs = v;
    }
    if let Some(v) = int_setting("audit.timeout_secs", 1, 3600) {
        s.timeout_secs = v;
    }
    if let Some(v) = int_setting("audit.deadline_secs", 1, 7 * 86_400) {
        s.deadline_secs = v;
    }
    if let Some(v) = int_setting("audit.concurrency", 1, 256) {
        s.concurrency = usize::try_from(v).unwrap_or(8);
    }
    if let Some(v) = int_setting("audit.retries", 0, 10) {
        s.retries = u32::try_from(v).unwrap_or(2);
    }
    if let Some(v) = int_setting("audit.full_every_hours", 0, 24 * 365) {
        s.full_every_hours = v;
    }
    if let Some(v) = int_setting("audit.skew_secs", 0, 86_400) {
        s.skew_secs = v;
    }
    if let Some(v) = int_setting("fix.full_threshold_pct", 0, 100) {
        s.fix.full_threshold_pct = v;
    }
    if let Some(v) = int_setting("fix.rate_per_sec", 1, 10_000) {
        s.fix.rate_per_sec = v;
    }
    if let Some(v) = int_setting("fix.verify_secs", 0, 3600) {
        s.fix.verify_secs = v;
    }
    if let Some(v) = int_setting("audit.max_body_mib", 1, 4096) {
        s.max_body_bytes = usize::try_from(v << 20).unwrap_or(usize::MAX);
    }

    for (key, target) in [
        ("ignore.namespaces", &mut s.ignore.namespaces),
        ("ignore.groups", &mut s.ignore.groups),
        ("ignore.data_ids", &mut s.ignore.data_ids),
        ("ignore.services", &mut s.ignore.services),
    ] {
        if let Some((globs, at)) = list_of(key) {
            for g in globs {
                if let Err(e) = globset::Glob::new(&g) {
                    problems.push(format!("{at}: `{key}`: invalid glob `{g}`: {e}"));
                } else {
                    target.push(g);
                }
            }
        }
    }
    if bool_of("ignore.default_metadata_keys") == Some(false) {
        s.ignore.metadata_keys.clear();
    }
    if let Some((keys, _)) = list_of("ignore.metadata_keys") {
        s.ignore.metadata_keys.extend(keys);
    }
    if let Some((Raw::Map(entries), file)) = get("namespace_map._") {
        let pairs: Vec<(String, String)> = entries
            .iter()
            .map(|(k, v, _)| (k.clone(), v.clone()))
            .collect();
        match super::pairing::Pairing::new(pairs.iter().map(|(k, v)| (k, v))) {
            Ok(p) => s.namespace_map = p.entries().clone(),
            Err(clashes) => {
                for c in clashes {
                    problems.push(format!("{file}: [namespace_map]: {c}"));
                }
            }
        }
        for (k, _, at) in entries {
            s.namespace_map_at
                .insert(crate::model::canonical_namespace(k), at.clone());
        }
    }
    if let Some((Raw::Map(entries), _)) = get("levels._") {
        for (k, v, at) in entries {
            match (Code::parse(k), Level::parse(v)) {
                (Some(c), Some(l)) => {
                    s.levels.insert(c, l);
                }
                (None, _) => problems.push(format!("{at}: `levels`: unknown finding code `{k}`")),
                (_, None) => problems.push(format!(
                    "{at}: `levels.{k}`: unknown level `{v}` (expected allow, warn or deny)"
                )),
            }
        }
    }
    s
}
