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
use std::path::PathBuf;

pub use crate::secret::Secret;
pub use fix::FixOptions;

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
    /// r-nacos only: its console's base URL (`RNACOS_HTTP_CONSOLE_PORT`), where its users are
    /// read (r-nacos serves no Nacos auth API).
    pub rnacos_console: Option<String>,
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
    pub fn includes(self, code: Code, layer: Layer, side: Option<crate::model::Side>) -> bool {
        use Code::*;
        if code == SourceError {
            return true;
        }
        match self {
            Gate::DbSynced => layer == Layer::L1,
            Gate::CachesFresh => layer == Layer::L2 && side != Some(crate::model::Side::Source),
            Gate::DualRegistered => matches!(code, ServiceMissing | InstanceMissing),
            Gate::CutoverReady => {
                Gate::DbSynced.includes(code, layer, side)
                    || Gate::CachesFresh.includes(code, layer, side)
                    || Gate::DualRegistered.includes(code, layer, side)
                    // Applications on the target holding old configs (L4).
                    || (code == ClientStale && side == Some(crate::model::Side::Target))
                    || (layer == Layer::L3
                        && matches!(
                            code,
                            NamespaceMissing
                                | ConfigMissing
                                | ConfigContentDiffers
                                | ConfigMetaDiffers
                                | InstanceDiffers
                                | ServiceMetaDiffers
                                // A synced copy of a dead instance: target consumers call it.
                                | InstanceOrphaned
                        ))
                    // An application whose account, role or permission is missing (or whose
                    // password differs) on the target cannot log in after cutover, whichever
                    // layer saw it.
                    || matches!(
                        code,
                        UserMissing | UserPasswordDiffers | RoleMissing | PermissionMissing
                    )
            }
            Gate::DecommissionReady => {
                matches!(
                    code,
                    NamespaceMissing
                        | ConfigMissing
                        | ServiceMissing
                        | InstanceMissing
                        | ClientConnected
                        | ClientOnSource
                        | UserMissing
                        | RoleMissing
                        | PermissionMissing
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

/// Metadata keys that sync tools and dual-registration agents add on one side only: nacos-sync's
/// (`syncSource`, `sourceClusterId`, `destClusterId`, `sync.instance.tag`; MSE Sync is built on
/// it) and Polaris sync's `__sync__` (which tool writes which: `diff/sync.rs`).
pub const DEFAULT_IGNORED_METADATA_KEYS: [&str; 7] = [
    "nacos.cluster.name",
    "syncSource",
    "sourceClusterId",
    "destClusterId",
    "sync.instance.tag",
    "preserved.register.source",
    "__sync__",
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
    /// `--baseline`: accepted findings, read and checked while resolving.
    pub baseline: Option<crate::baseline::Baseline>,
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
    /// Run L4 (the clients listening to each node) on both sides; `decommission-ready` always
    /// runs it on the source.
    pub l4: bool,
    /// L4 asks each node per config (which finds clients of unknown IP) only up to this many
    /// configs in scope; above it, per client IP only.
    pub l4_per_config_max: u64,
    /// State file for incremental runs.
    pub state: PathBuf,
    /// An incremental run turns into a full one when the last full pass is older than this.
    pub full_every_hours: u64,
    /// Clock-skew margin subtracted from the watermark.
    pub skew_secs: u64,
    /// Repair settings.
    pub fix: FixOptions,
    /// How the L1 scan digests content inside the DBs.
    pub db_digest: DbDigest,
    /// Warnings met while resolving (already printed on stderr).
    pub warnings: Vec<String>,
    /// Largest response body read from a node, in bytes.
    pub max_body_bytes: usize,
    /// How the API reads config desc and tags.
    pub config_meta: ConfigMeta,
}

/// `audit.config_meta`: how the API read (L3) gets config desc and tags, which no list page
/// carries on Java Nacos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConfigMeta {
    /// What bulk answers carry: desc from the namespace export (Nacos 1.4.2+, 3.x) or the list
    /// (r-nacos); tags, which no bulk answer carries, are not compared and the report says so.
    #[default]
    Bulk,
    /// One detail request per config for desc and tags (slow: a request per config).
    PerConfig,
    /// Neither desc nor tags.
    Off,
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
            baseline: None,
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
            l4: false,
            l4_per_config_max: 200,
            state: PathBuf::from(".nacos-drift/state.json"),
            full_every_hours: 24,
            skew_secs: 60,
            fix: FixOptions {
                full_threshold_pct: 20,
                rate_per_sec: 20,
                verify_secs: 30,
                ..FixOptions::default()
            },
            db_digest: DbDigest::Auto,
            warnings: Vec::new(),
            max_body_bytes: crate::nacos::transport::DEFAULT_MAX_BODY,
            config_meta: ConfigMeta::Bulk,
        }
    }
}

impl Settings {
    /// The level of a code: as configured in `[levels]`, else its default (`deny` for every
    /// drift kind but the advisory ones, see [`Code::default_level`]).
    #[must_use]
    pub fn level_of(&self, code: Code) -> Level {
        self.levels
            .get(&code)
            .copied()
            .unwrap_or_else(|| code.default_level())
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

mod fix;
mod load;
mod resolve;
#[cfg(test)]
mod tests;
mod tls;

pub use resolve::{resolve, Inputs};
