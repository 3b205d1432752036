//! Resolved settings: the config file, the environment and the flags merged by one precedence rule (flag > env > file > default).
//!
//! The config file is TOML and strict: unknown sections and keys are rejected, and every problem is
//! reported at once with file, line and key. Secrets are read from the environment or from files,
//! never from argv.

use crate::cli::{ReportArgs, SidesArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::finding::{Code, Layer, Level};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A secret string: never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    #[must_use]
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The value, for the one place that sends it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Connection settings of one side.
#[derive(Debug, Clone, Default)]
pub struct SideSettings {
    /// Node base URLs, with context path, no trailing slash.
    pub nacos: Vec<String>,
    /// Nacos username.
    pub nacos_username: Option<String>,
    /// Nacos password.
    pub nacos_password: Option<Secret>,
    /// DB DSN without the password.
    pub db: Option<String>,
    /// DB password (from the DSN, the environment or a file).
    pub db_password: Option<Secret>,
    /// Server identity header name, for node-to-node endpoints used by repairs.
    pub identity_key: Option<String>,
    /// Server identity header value.
    pub identity_value: Option<Secret>,
    /// The nodes' server version, when the user pins it (`2.3.2`, `3.1.0`, `r-nacos`): then it is
    /// not read from the nodes, and a server that does not say its version can still be audited.
    pub nacos_version: Option<String>,
    /// Extra CA certificates (PEM) trusted for this side's `https://` nodes, beside the system's.
    pub nacos_ca_file: Option<PathBuf>,
    /// No certificate check on this side's `https://` nodes (warned about on every run).
    pub nacos_tls_insecure_skip_verify: bool,
}

impl SideSettings {
    /// Whether any of this side's nodes is reached over HTTPS.
    pub fn uses_https(&self) -> bool {
        self.nacos.iter().any(|u| u.starts_with("https://"))
    }
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// Terminal summary.
    Text,
    /// Versioned JSON.
    Json,
    /// One row per finding.
    Csv,
    /// Markdown for CI summaries.
    Markdown,
    /// JUnit XML for CI test panes.
    Junit,
    /// Self-contained HTML.
    Html,
    /// Prometheus text-format metrics.
    Prometheus,
}

impl Format {
    /// Every format, in the order reports are written.
    pub const ALL: [Format; 7] = [
        Format::Text,
        Format::Json,
        Format::Csv,
        Format::Markdown,
        Format::Junit,
        Format::Html,
        Format::Prometheus,
    ];

    fn parse(s: &str) -> Option<Format> {
        match s {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "markdown" | "md" => Some(Format::Markdown),
            "junit" => Some(Format::Junit),
            "html" => Some(Format::Html),
            "prometheus" | "prom" => Some(Format::Prometheus),
            _ => None,
        }
    }
    /// File name of the report in the output directory.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Text => "report.txt",
            Format::Json => "report.json",
            Format::Csv => "report.csv",
            Format::Markdown => "report.md",
            Format::Junit => "report.junit.xml",
            Format::Html => "report.html",
            Format::Prometheus => "metrics.prom",
        }
    }
}

/// Named sets of codes that must be clean before a migration step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// L1: the target DB equals the source DB.
    DbSynced,
    /// L2: every target node serves what its DB holds.
    CachesFresh,
    /// No source instance or service missing from the target.
    DualRegistered,
    /// All of the above plus configs and namespaces equal through the API.
    CutoverReady,
    /// Nothing left only on the source.
    DecommissionReady,
}

impl Gate {
    /// Every gate name.
    pub const NAMES: [&'static str; 5] = [
        "db-synced",
        "caches-fresh",
        "dual-registered",
        "cutover-ready",
        "decommission-ready",
    ];

    fn parse(s: &str) -> Option<Gate> {
        match s {
            "db-synced" => Some(Gate::DbSynced),
            "caches-fresh" => Some(Gate::CachesFresh),
            "dual-registered" => Some(Gate::DualRegistered),
            "cutover-ready" => Some(Gate::CutoverReady),
            "decommission-ready" => Some(Gate::DecommissionReady),
            _ => None,
        }
    }

    /// The gate's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Gate::DbSynced => "db-synced",
            Gate::CachesFresh => "caches-fresh",
            Gate::DualRegistered => "dual-registered",
            Gate::CutoverReady => "cutover-ready",
            Gate::DecommissionReady => "decommission-ready",
        }
    }

    /// Whether a finding with this code, layer and side counts for the gate.
    #[must_use]
    pub fn includes(self, code: Code, layer: Layer, side: Option<&str>) -> bool {
        use Code::*;
        if code == SourceError {
            return true;
        }
        match self {
            Gate::DbSynced => layer == Layer::L1,
            Gate::CachesFresh => layer == Layer::L2 && side != Some("source"),
            Gate::DualRegistered => matches!(code, ServiceMissing | InstanceMissing),
            Gate::CutoverReady => {
                Gate::DbSynced.includes(code, layer, side)
                    || Gate::CachesFresh.includes(code, layer, side)
                    || Gate::DualRegistered.includes(code, layer, side)
                    || (layer == Layer::L3
                        && matches!(
                            code,
                            NamespaceMissing
                                | ConfigMissing
                                | ConfigContentDiffers
                                | ConfigMetaDiffers
                                | InstanceDiffers
                                | ServiceMetaDiffers
                        ))
            }
            Gate::DecommissionReady => {
                matches!(
                    code,
                    NamespaceMissing
                        | ConfigMissing
                        | ServiceMissing
                        | InstanceMissing
                        | ClientConnected
                )
            }
        }
    }
}

/// Ignore rules.
#[derive(Debug, Clone, Default)]
pub struct IgnoreSettings {
    /// Namespace id globs.
    pub namespaces: Vec<String>,
    /// Group globs.
    pub groups: Vec<String>,
    /// dataId globs.
    pub data_ids: Vec<String>,
    /// Service name globs.
    pub services: Vec<String>,
    /// Metadata keys ignored when comparing services and instances.
    pub metadata_keys: Vec<String>,
}

/// Metadata keys that sync tools and dual-registration agents add on one side only.
pub const DEFAULT_IGNORED_METADATA_KEYS: [&str; 6] = [
    "nacos.cluster.name",
    "syncSource",
    "sourceClusterId",
    "destClusterId",
    "sync.instance.tag",
    "preserved.register.source",
];

/// Everything a run needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Source connection.
    pub source: SideSettings,
    /// Target connection.
    pub target: SideSettings,
    /// Source namespaces to audit (empty = all).
    pub namespaces: Vec<String>,
    /// Where `namespaces` was given (`flag --namespace`, `file:line`, an environment variable).
    pub namespaces_at: String,
    /// Gate, if any.
    pub gate: Option<Gate>,
    /// Formats to write.
    pub formats: Vec<Format>,
    /// Output dir, if set (otherwise `reports/<run-id>`).
    pub out: Option<PathBuf>,
    /// Show secrets in diffs.
    pub show_secrets: bool,
    /// `--since REPORT.json`: mark findings new/still against that report instead of the record.
    pub since: Option<PathBuf>,
    /// Settling re-check delay, seconds (0 = no re-check).
    pub settle_secs: u64,
    /// Per-request timeout, seconds.
    pub timeout_secs: u64,
    /// Whole-run deadline, seconds: past it the run stops and reports what it has (exit 3).
    pub deadline_secs: u64,
    /// Concurrent requests per node.
    pub concurrency: usize,
    /// Retries on transient errors.
    pub retries: u32,
    /// Source namespace id → target namespace id (after `''` → `public`).
    pub namespace_map: BTreeMap<String, String>,
    /// Where each `[namespace_map]` entry was written (source id → `file:line`).
    pub namespace_map_at: BTreeMap<String, String>,
    /// Ignore rules.
    pub ignore: IgnoreSettings,
    /// Level per code, overriding the defaults.
    pub levels: BTreeMap<Code, Level>,
    /// Run the L2 probe.
    pub probe: bool,
    /// State file for incremental runs.
    pub state: PathBuf,
    /// An incremental run turns into a full one when the last full pass is older than this.
    pub full_every_hours: u64,
    /// Clock-skew margin subtracted from the watermark.
    pub skew_secs: u64,
    /// Repair settings.
    pub fix: crate::cache::FixOptions,
    /// How the L1 scan digests content inside the DBs.
    pub db_digest: DbDigest,
    /// Warnings met while resolving (already printed on stderr).
    pub warnings: Vec<String>,
    /// Largest response body read from a node, in bytes.
    pub max_body_bytes: usize,
}

/// `audit.db_digest`: which in-DB content digest the L1 scan may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DbDigest {
    /// `CRC32(content)` + `CRC32C(content)` when both servers have them (MariaDB 10.8+), else `MD5(content)`.
    #[default]
    Auto,
    /// Always `MD5(content)`.
    Md5,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: SideSettings::default(),
            target: SideSettings::default(),
            namespaces: Vec::new(),
            namespaces_at: String::new(),
            gate: None,
            formats: vec![Format::Text, Format::Json],
            out: None,
            show_secrets: false,
            since: None,
            settle_secs: 3,
            timeout_secs: 10,
            deadline_secs: 1800,
            concurrency: 8,
            retries: 2,
            namespace_map: BTreeMap::new(),
            namespace_map_at: BTreeMap::new(),
            ignore: IgnoreSettings {
                metadata_keys: DEFAULT_IGNORED_METADATA_KEYS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                ..IgnoreSettings::default()
            },
            levels: BTreeMap::new(),
            probe: true,
            state: PathBuf::from(".nacos-drift/state.json"),
            full_every_hours: 24,
            skew_secs: 60,
            fix: crate::cache::FixOptions {
                full_threshold_pct: 20,
                rate_per_sec: 20,
                verify_secs: 30,
                ..crate::cache::FixOptions::default()
            },
            db_digest: DbDigest::Auto,
            warnings: Vec::new(),
            max_body_bytes: crate::source::nacos::transport::DEFAULT_MAX_BODY,
        }
    }
}

impl Settings {
    /// The level of a code: as configured in `[levels]`, else `deny` (every drift kind fails a gate by default).
    #[must_use]
    pub fn level_of(&self, code: Code) -> Level {
        self.levels.get(&code).copied().unwrap_or(Level::Deny)
    }

    /// A live audit must have at least one layer that can compare something: L1 needs a DB on
    /// both sides, L3 nodes on both sides, L2 the probe and nodes on some side. Otherwise the run
    /// is refused before anything is read (exit 2): a run that compares nothing cannot pass.
    pub fn check_comparable(&self) -> Result<()> {
        let nothing = |s: &SideSettings| s.nacos.is_empty() && s.db.is_none();
        if nothing(&self.source) || nothing(&self.target) {
            return Err(Error::new(
                ErrorKind::Usage,
                "nothing to compare: give each side Nacos nodes and/or a database \
                 (--source-nacos/--source-db and --target-nacos/--target-db, or a [source]/[target] section in --config)",
            ));
        }
        let l1 = self.source.db.is_some() && self.target.db.is_some();
        let l3 = !self.source.nacos.is_empty() && !self.target.nacos.is_empty();
        let l2 = self.probe && (!self.source.nacos.is_empty() || !self.target.nacos.is_empty());
        if l1 || l2 || l3 {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Usage,
            "nothing to compare: no layer can run with these sides (L1 needs a database on both sides, \
             L3 Nacos nodes on both sides, L2 the probe and Nacos nodes); a run that compares nothing cannot pass",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Raw values with their origin, so that problems can name the file and line or the variable.

#[derive(Debug, Clone)]
enum Raw {
    Str(String),
    List(Vec<String>),
    Bool(bool),
    Int(i64),
    Map(Vec<(String, String, String)>), // key, value, location
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    List,
    Bool,
    Int,
}

/// Known keys: (section, key, kind). `nacos` accepts a string or a list.
const KEYS: &[(&str, &str, Kind)] = &[
    ("source", "nacos", Kind::List),
    ("source", "nacos_username", Kind::Str),
    ("source", "nacos_password_file", Kind::Str),
    ("source", "db", Kind::Str),
    ("source", "db_password_file", Kind::Str),
    ("source", "nacos_identity_key", Kind::Str),
    ("source", "nacos_identity_value_file", Kind::Str),
    ("source", "nacos_version", Kind::Str),
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
    ("target", "nacos_ca_file", Kind::Str),
    ("target", "nacos_tls_insecure_skip_verify", Kind::Bool),
    ("target", "db_ssl_mode", Kind::Str),
    ("target", "db_ca_file", Kind::Str),
    ("audit", "namespaces", Kind::List),
    ("audit", "gate", Kind::Str),
    ("audit", "formats", Kind::List),
    ("audit", "out", Kind::Str),
    ("audit", "show_secrets", Kind::Bool),
    ("audit", "settle_secs", Kind::Int),
    ("audit", "timeout_secs", Kind::Int),
    ("audit", "deadline_secs", Kind::Int),
    ("audit", "concurrency", Kind::Int),
    ("audit", "retries", Kind::Int),
    ("audit", "probe", Kind::Bool),
    ("audit", "state", Kind::Str),
    ("audit", "full_every_hours", Kind::Int),
    ("audit", "skew_secs", Kind::Int),
    ("audit", "db_digest", Kind::Str),
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
const MAP_SECTIONS: &[&str] = &["namespace_map", "levels"];

/// Merged raw values: `section.key` → (value, where it came from).
#[derive(Debug, Default)]
struct RawSet {
    values: BTreeMap<String, (Raw, String)>,
    problems: Vec<String>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

fn load_file(path: &Path, set: &mut RawSet) {
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

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Str => "a string",
        Kind::List => "a list of strings",
        Kind::Bool => "a boolean",
        Kind::Int => "an integer",
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every `NACOS_DRIFT_*` variable nacos-drift reads: one per known key, plus
/// [`crate::validate::OTHER_ENV`].
fn known_env() -> Vec<String> {
    KEYS.iter()
        .map(|(section, key, _)| env_name(section, key))
        .chain(crate::validate::OTHER_ENV.iter().map(|s| (*s).to_owned()))
        .collect()
}

/// `NACOS_DRIFT_<SECTION>_<KEY>` for every known key.
fn env_name(section: &str, key: &str) -> String {
    format!(
        "NACOS_DRIFT_{}_{}",
        section.to_uppercase(),
        key.to_uppercase()
    )
}

fn load_env(env: &dyn Fn(&str) -> Option<String>, set: &mut RawSet) {
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

fn put(set: &mut RawSet, key: &str, raw: Raw, flag: &str) {
    set.values
        .insert(key.to_owned(), (raw, format!("flag {flag}")));
}

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
    if let Some(p) = inp.report.and_then(|r| r.since.as_ref()) {
        // Read now, before anything is audited: a wrong path is a usage error, not a late surprise.
        match crate::history::load_report(p) {
            Ok(_) => settings.since = Some(p.clone()),
            Err(e) => problems.push(format!("--since {e}")),
        }
    }
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

fn build(
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
        side.nacos_password = env(&env_name(side_name, "nacos_password")).map(Secret::new);
        if side.nacos_password.is_none() {
            if let Some((file, at)) = str_of(&format!("{side_name}.nacos_password_file")) {
                match std::fs::read_to_string(&file) {
                    Ok(p) => {
                        side.nacos_password =
                            Some(Secret::new(p.trim_end_matches(['\n', '\r']).to_owned()))
                    }
                    Err(e) => problems.push(format!(
                        "{at}: {side_name}.nacos_password_file `{file}`: {e}"
                    )),
                }
            }
        }
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
            match crate::source::nacos::ServerKind::parse(&v) {
                Some(_) => side.nacos_version = Some(v.trim().to_owned()),
                None => problems.push(format!(
                    "{at}: {side_name}.nacos_version: `{v}` is not a server version (e.g. 2.3.2, 3.1.0 or r-nacos)"
                )),
            }
        }
        crate::tls::side_settings(side_name, side, &str_of, &bool_of, problems);
        side.identity_key = env(&env_name(side_name, "nacos_identity_key"))
            .or_else(|| str_of(&format!("{side_name}.nacos_identity_key")).map(|v| v.0));
        side.identity_value = env(&env_name(side_name, "nacos_identity_value")).map(Secret::new);
        if side.identity_value.is_none() {
            if let Some((file, at)) = str_of(&format!("{side_name}.nacos_identity_value_file")) {
                match std::fs::read_to_string(&file) {
                    Ok(p) => {
                        side.identity_value =
                            Some(Secret::new(p.trim_end_matches(['\n', '\r']).to_owned()))
                    }
                    Err(e) => problems.push(format!(
                        "{at}: {side_name}.nacos_identity_value_file `{file}`: {e}"
                    )),
                }
            }
        }
        if let Some(pw) = env(&env_name(side_name, "db_password")) {
            side.db_password = Some(Secret::new(pw));
        } else if side.db_password.is_none() {
            if let Some((file, at)) = str_of(&format!("{side_name}.db_password_file")) {
                match std::fs::read_to_string(&file) {
                    Ok(p) => {
                        side.db_password =
                            Some(Secret::new(p.trim_end_matches(['\n', '\r']).to_owned()))
                    }
                    Err(e) => {
                        problems.push(format!("{at}: {side_name}.db_password_file `{file}`: {e}"))
                    }
                }
            }
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
    if let Some(b) = bool_of("audit.show_secrets") {
        s.show_secrets = b;
    }
    if let Some(b) = bool_of("audit.probe") {
        s.probe = b;
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
        match crate::diff::namespaces::Pairing::new(pairs.iter().map(|(k, v)| (k, v))) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn tls_settings_go_into_the_dsn_and_skipping_verification_is_warned() {
        let dir = std::env::temp_dir().join(format!("nd-settings-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[target]\ndb = \"mysql://u@h:3306/nacos?ssl-mode=required\"\nnacos = \"https://h:8848/nacos\"\nnacos_tls_insecure_skip_verify = true\n",
        )
        .unwrap();
        let env =
            |k: &str| (k == "NACOS_DRIFT_TARGET_DB_SSL_MODE").then(|| "verify_identity".to_owned());
        let inputs = |env: &dyn Fn(&str) -> Option<String>| {
            resolve(&Inputs {
                sides: None,
                report: None,
                config: Some(&file),
                namespaces: &[],
                settle: None,
                state: None,
                no_probe: false,
                env,
            })
        };
        let s = inputs(&env).unwrap();
        assert_eq!(
            s.target.db.as_deref(),
            Some("mysql://u@h:3306/nacos?ssl-mode=verify_identity")
        );
        assert!(s.target.nacos_tls_insecure_skip_verify && s.target.uses_https());
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("TLS CERTIFICATE VERIFICATION IS OFF for the target")),
            "{:?}",
            s.warnings
        );
        let bad = |k: &str| (k == "NACOS_DRIFT_TARGET_DB_SSL_MODE").then(|| "on".to_owned());
        let e = inputs(&bad).unwrap_err().chain();
        assert!(e.contains("target.db_ssl_mode: unknown mode `on`"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = std::env::temp_dir().join(format!("nd-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[audit]\ngate = \"db-synced\"\nsettle_secs = 7\nconcurrency = 3\n",
        )
        .unwrap();
        let env = |k: &str| (k == "NACOS_DRIFT_AUDIT_SETTLE_SECS").then(|| "9".to_owned());
        let report = ReportArgs {
            gate: Some("caches-fresh".into()),
            ..ReportArgs::default()
        };
        let s = resolve(&Inputs {
            sides: None,
            report: Some(&report),
            config: Some(&file),
            namespaces: &[],
            settle: None,
            state: None,
            no_probe: false,
            env: &env,
        })
        .unwrap();
        assert_eq!(s.gate, Some(Gate::CachesFresh));
        assert_eq!(s.settle_secs, 9);
        assert_eq!(s.concurrency, 3);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let dir = std::env::temp_dir().join(format!("nd-settings-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(
            &file,
            "[source]\nnacos = \"ftp://x\"\ncolour = \"red\"\n\n[audit]\ngate = \"nope\"\nsettle_secs = \"x\"\ndb_digest = \"sha1\"\n\n[levels]\nconfig-missing = \"fatal\"\n",
        )
        .unwrap();
        let err = resolve(&Inputs {
            sides: None,
            report: None,
            config: Some(&file),
            namespaces: &[],
            settle: None,
            state: None,
            no_probe: false,
            env: &no_env,
        })
        .unwrap_err();
        let m = err.msg;
        assert!(m.contains("bad.toml:2: source.nacos"), "{m}");
        assert!(m.contains("bad.toml:3: unknown key `source.colour`"), "{m}");
        assert!(m.contains("bad.toml:6: unknown gate `nope`"), "{m}");
        assert!(
            m.contains("bad.toml:7: `audit.settle_secs` must be an integer"),
            "{m}"
        );
        assert!(
            m.contains("bad.toml:8: unknown `audit.db_digest` `sha1` (expected auto or md5)"),
            "{m}"
        );
        assert!(
            m.contains("bad.toml:11: `levels.config-missing`: unknown level"),
            "{m}"
        );
        assert!(m.contains("6 problems"), "{m}");
    }
}
