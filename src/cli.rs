//! Command-line types (clap derive) and nothing else: turned into `Settings` in `settings.rs`.

use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::PathBuf;

/// `--version`: the crate version and the commit the binary was built from (set by `src/build.rs`).
#[cfg(not(debug_assertions))]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BUILD_GIT_COMMIT"),
    ")"
);
/// `--version` of a debug build says so: its timings and memory are not the product's (the
/// benchmarks read this).
#[cfg(debug_assertions)]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BUILD_GIT_COMMIT"),
    ", debug build)"
);

/// Audit and repair drift between a source and a target Nacos cluster during a live migration.
///
/// Exit codes: 0 clean, 1 drift at deny level, 2 usage/config error, 3 incomplete audit.
#[derive(Debug, Parser)]
#[command(name = "nacos-drift", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot both sides, diff them, write reports, gate by exit code.
    Audit(AuditArgs),
    /// Capture one side to a JSON snapshot file.
    Snapshot(SnapshotArgs),
    /// Compare two snapshot files offline (A = source, B = target): same findings and reports as `audit`.
    Diff(DiffArgs),
    /// Print a shell completion script (e.g. `nacos-drift completions bash > /etc/bash_completion.d/nacos-drift`).
    Completions(CompletionsArgs),
    /// Print the man page (roff) built from the same definitions as `--help`.
    Man,
    /// Write an accepted-drift file (for `audit --baseline`): one entry per finding of a report
    /// (`--from`) or of an audit run now.
    Baseline(BaselineArgs),
    /// Show the newest report's migration steps and since-last-run counts (reads no server);
    /// exits with that report's exit code.
    Status(StatusArgs),
}

/// `baseline` arguments.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The accepted-drift file to write (TOML).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Take the findings of this JSON report instead of running an audit (the sides are then not read).
    #[arg(long, value_name = "REPORT.json")]
    pub from: Option<PathBuf>,
    /// Why these findings are accepted (written into every new entry; with --force, entries of the old file that still match keep their own).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Last day (UTC) the new entries accept, `YYYY-MM-DD`; later they are treated as absent.
    #[arg(long, value_name = "DATE")]
    pub expires: Option<String>,
    /// Regenerate an existing file: entries that still match a finding keep their reason and expiry; entries that match nothing or expired are dropped.
    #[arg(long)]
    pub force: bool,
    /// Skip the L2 node-cache probe (when running the audit).
    #[arg(long)]
    pub no_probe: bool,
    /// Sides (when running the audit).
    #[command(flatten)]
    pub sides: SidesArgs,
}

/// `status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// This report.json instead of the newest in the reports folder.
    #[arg(long, value_name = "PATH", conflicts_with = "reports")]
    pub report: Option<PathBuf>,
    /// Reports folder whose newest `*/report.json` (or `report.json`) is shown [default: reports].
    #[arg(long, value_name = "DIR")]
    pub reports: Option<PathBuf>,
}

/// `completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Write the completion script for `shell` (generated from these clap definitions).
///
/// # Errors
/// When `out` cannot be written (a closed pipe is an error here, not a panic).
pub fn write_completions(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    // Generated into memory first: clap_complete panics when its writer fails.
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "nacos-drift", &mut buf);
    out.write_all(&buf)
}

/// Write the man page (roff) of the whole command (generated from these clap definitions).
///
/// # Errors
/// When `out` cannot be written.
pub fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Where the two sides are (all optional here; they may come from the config file or environment).
#[derive(Debug, Args, Default, Clone)]
pub struct SidesArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Source Nacos node base URLs, with context path (`http://host:8848/nacos`), comma-separated.
    #[arg(long, value_name = "URL[,URL...]")]
    pub source_nacos: Option<String>,
    /// Target Nacos node base URLs, comma-separated.
    #[arg(long, value_name = "URL[,URL...]")]
    pub target_nacos: Option<String>,
    /// Source database DSN `mysql://user@host:port/db` (put the password in NACOS_DRIFT_SOURCE_DB_PASSWORD).
    #[arg(long, value_name = "DSN")]
    pub source_db: Option<String>,
    /// Target database DSN.
    #[arg(long, value_name = "DSN")]
    pub target_db: Option<String>,
    /// PEM bundle of extra CAs trusted for the source's `https://` nodes (beside the system roots).
    #[arg(long, value_name = "FILE")]
    pub source_nacos_ca_file: Option<PathBuf>,
    /// PEM bundle of extra CAs trusted for the target's `https://` nodes.
    #[arg(long, value_name = "FILE")]
    pub target_nacos_ca_file: Option<PathBuf>,
    /// Check no certificate of the source's `https://` nodes (warned on every run, recorded in the report).
    #[arg(long)]
    pub source_nacos_tls_insecure_skip_verify: bool,
    /// Check no certificate of the target's `https://` nodes (warned on every run, recorded in the report).
    #[arg(long)]
    pub target_nacos_tls_insecure_skip_verify: bool,
    /// Source DB TLS: disabled, preferred (default), required, verify_ca or verify_identity.
    #[arg(long, value_name = "MODE")]
    pub source_db_ssl_mode: Option<String>,
    /// Target DB TLS: disabled, preferred (default), required, verify_ca or verify_identity.
    #[arg(long, value_name = "MODE")]
    pub target_db_ssl_mode: Option<String>,
    /// PEM CA bundle for the source DB's certificate (verify_ca, verify_identity).
    #[arg(long, value_name = "FILE")]
    pub source_db_ca_file: Option<PathBuf>,
    /// PEM CA bundle for the target DB's certificate (verify_ca, verify_identity).
    #[arg(long, value_name = "FILE")]
    pub target_db_ca_file: Option<PathBuf>,
    /// Restrict to these source namespaces (repeatable; default all). `public` is the default namespace.
    #[arg(long = "namespace", value_name = "ID")]
    pub namespaces: Vec<String>,
    /// Per-request timeout in seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Whole-run deadline in seconds: past it the run stops, writes what it has (incomplete) and exits 3.
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<u64>,
    /// Concurrent requests per node.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u64>,
}

/// Report options shared by `audit` and `diff`.
#[derive(Debug, Args, Default, Clone)]
pub struct ReportArgs {
    /// Gate to evaluate: db-synced, caches-fresh, dual-registered, cutover-ready, decommission-ready (default: every finding counts).
    #[arg(long, value_name = "NAME")]
    pub gate: Option<String>,
    /// Report format, repeatable: text, json, csv, markdown, junit, html, prometheus.
    #[arg(long = "format", value_name = "FORMAT")]
    pub formats: Vec<String>,
    /// Output directory (default `reports/<run-id>/`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Show secret values in diffs instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
    /// Mark findings `new`/`still` (and count `resolved`) against this earlier JSON report,
    /// instead of the last run's record in the state folder.
    #[arg(long, value_name = "REPORT.json")]
    pub since: Option<PathBuf>,
    /// Accepted-drift file (written by `nacos-drift baseline`): matching findings are reported as
    /// accepted and never fail a gate; entries that match nothing are `baseline-stale`.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
}

/// `audit` arguments.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Sides.
    #[command(flatten)]
    pub sides: SidesArgs,
    /// Reports.
    #[command(flatten)]
    pub report: ReportArgs,
    /// Seconds to wait before re-checking differences, so replication lag is not reported as drift.
    #[arg(long, value_name = "SECS")]
    pub settle: Option<u64>,
    /// Repair stale node caches on the target (planned, rate-limited, verified by a fresh probe).
    #[arg(long)]
    pub fix: bool,
    /// With --fix: print the repair plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Full pass: reload stale nodes whole with --fix, and audit every key even with --incremental.
    #[arg(long)]
    pub full: bool,
    /// With --fix: also repair the source's node caches.
    #[arg(long)]
    pub fix_source: bool,
    /// Audit only keys changed since the last run's watermark (kept in the state file).
    #[arg(long)]
    pub incremental: bool,
    /// State file for --incremental (default `.nacos-drift/state.json`).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Skip the L2 node-cache probe.
    #[arg(long)]
    pub no_probe: bool,
    /// Also run L4: the clients listening to each node and the md5 each holds (setting `audit.l4`).
    #[arg(long)]
    pub l4: bool,
    /// Resolve and validate flags, environment and config file, print the settings, contact nothing.
    #[arg(long)]
    pub check_config: bool,
}

/// `snapshot` arguments.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Sides.
    #[command(flatten)]
    pub sides: SidesArgs,
    /// Which side to capture: source or target.
    #[arg(long, value_name = "SIDE")]
    pub side: String,
    /// Output file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// `diff` arguments.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Source snapshot file.
    pub source: PathBuf,
    /// Target snapshot file.
    pub target: PathBuf,
    /// TOML config file (for ignore rules, namespace map, levels).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Restrict to these source namespaces.
    #[arg(long = "namespace", value_name = "ID")]
    pub namespaces: Vec<String>,
    /// Reports.
    #[command(flatten)]
    pub report: ReportArgs,
}
