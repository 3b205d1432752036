//! The report model: one sorted, serialisable record of a run, rendered by one module per format.

pub mod accept;
pub mod coverage;
pub mod csv;
pub use crate::escape;
pub mod gates;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod prometheus;
pub mod status;
pub mod text;

use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitStatus;
use crate::finding::{Code, Finding, Level};
use crate::settings::Format;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Largest record or `--since` report read, in bytes: anything larger is not ours.
pub const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

/// Version of the JSON report contract (see README, "JSON report").
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// What was read of one side.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SideInfo {
    /// Node URLs.
    pub nacos: Vec<String>,
    /// Server version reported by the nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// DB DSN without password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// Configs read from the DB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_configs: Option<usize>,
    /// How the DB computed content digests for L1 (`crc32+crc32c` or `md5`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_content_digest: Option<String>,
    /// Whether the DB connection was encrypted (TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_tls: Option<bool>,
    /// For `https://` nodes: whether their certificates were verified (false only with
    /// `nacos_tls_insecure_skip_verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// Configs read through the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_configs: Option<usize>,
    /// Services read through the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_services: Option<usize>,
    /// Instances read through the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_instances: Option<usize>,
}

/// Counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// All findings.
    pub total: usize,
    /// At `deny` level.
    pub deny: usize,
    /// At `warn` level.
    pub warn: usize,
    /// At `allow` level.
    pub allow: usize,
    /// At `deny` level and inside the gate: these decide exit 1.
    pub failing: usize,
    /// Findings per code.
    pub by_code: BTreeMap<String, usize>,
    /// Differences seen on the first pass that were gone at the settling re-check.
    pub settled: usize,
    /// Findings repaired by `--fix` and verified.
    pub repaired: usize,
    /// Findings not in the last run (absent with nothing to compare against).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<usize>,
    /// Findings also in the last run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub still: Option<usize>,
    /// Findings of the last run gone in this one (absent when this run is incomplete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<usize>,
    /// Findings accepted by the `--baseline` file (absent without a baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<usize>,
}

/// What this run's findings were compared with (`summary.new` / `still` / `resolved`).
#[derive(Debug, Clone, Serialize)]
pub struct SinceLast {
    /// Run id of the earlier run.
    pub run_id: String,
    /// `the last run's record` or `report PATH` (`--since`).
    pub against: String,
    /// Why some counts are absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What applying the baseline did (the JSON report's `baseline`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Applied {
    /// The file.
    pub path: String,
    /// Entries in the file.
    pub entries: usize,
    /// Entries past their expiry date (treated as absent).
    pub expired: usize,
    /// Findings accepted.
    pub accepted: usize,
    /// Entries that matched nothing (`baseline-stale` findings).
    pub stale: usize,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// JSON contract version.
    pub schema_version: u32,
    /// nacos-drift version.
    pub tool_version: String,
    /// Run id (also the default output folder name).
    pub run_id: String,
    /// `audit` or `diff`.
    pub mode: String,
    /// Whether every configured source was read; false means exit 3.
    pub complete: bool,
    /// Gate evaluated, if any.
    pub gate: Option<String>,
    /// Exit code of the run.
    pub exit_code: u8,
    /// Source side.
    pub source: SideInfo,
    /// Target side.
    pub target: SideInfo,
    /// Layers compared (`L1`, `L2`, `L3`).
    pub compared: Vec<String>,
    /// What could not be compared and why.
    pub not_compared: Vec<String>,
    /// Counts.
    pub summary: Summary,
    /// Findings, sorted by layer, code, namespace, group, name.
    pub findings: Vec<Finding>,
    /// `--incremental`: whether this run was full or incremental, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_mode: Option<String>,
    /// Cache repairs planned or applied (`--fix`).
    pub repairs: Vec<crate::cache::Repair>,
    /// Keys probed per node and nodes probed, per side (L2).
    pub probe: BTreeMap<String, ProbeInfo>,
    /// What the findings were compared with to mark them `new` or `still`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_last: Option<SinceLast>,
    /// The `--baseline` file applied, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Applied>,
}

/// What the L2 probe covered on one side.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeInfo {
    /// Nodes actually probed (a node that could not be is not counted).
    pub nodes: usize,
    /// Keys probed on each node.
    pub keys: usize,
    /// `full` or `incremental`.
    pub mode: String,
    /// Configured nodes that could not be probed (each has a source-error finding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_probed: Vec<String>,
}

impl Report {
    /// Build a report from findings; computes the summary and the exit code.
    #[must_use]
    pub fn new(
        mode: &str,
        run_id: String,
        gate: Option<String>,
        mut findings: Vec<Finding>,
    ) -> Self {
        findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let summary = summarize(&findings);
        let complete = !findings.iter().any(|f| f.code == Code::SourceError);
        let mut r = Report {
            schema_version: REPORT_SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            run_id,
            mode: mode.to_owned(),
            complete,
            gate,
            exit_code: 0,
            source: SideInfo::default(),
            target: SideInfo::default(),
            compared: Vec::new(),
            not_compared: Vec::new(),
            summary,
            findings,
            run_mode: None,
            repairs: Vec::new(),
            probe: BTreeMap::new(),
            since_last: None,
            baseline: None,
        };
        r.exit_code = r.status().code();
        r
    }

    /// Sort the findings again and recount the summary after findings were added or marked
    /// (the baseline); what other stages counted (settled, since the last run) is kept.
    pub fn recount(&mut self) {
        self.findings
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let fresh = summarize(&self.findings);
        let accepted = self.baseline.as_ref().map(|_| fresh.total_accepted());
        self.summary = Summary {
            settled: self.summary.settled,
            new: self.summary.new,
            still: self.summary.still,
            resolved: self.summary.resolved,
            accepted,
            ..fresh
        };
        self.exit_code = self.status().code();
    }

    /// `PASS`, `FAIL (drift)` or `INCOMPLETE`, from the exit code.
    #[must_use]
    pub fn verdict(&self) -> &'static str {
        match self.exit_code {
            0 => "PASS",
            1 => "FAIL (drift)",
            _ => "INCOMPLETE",
        }
    }

    /// The exit status the findings call for.
    #[must_use]
    pub fn status(&self) -> ExitStatus {
        let mut status = ExitStatus::Clean;
        if self.summary.failing > 0 {
            status = status.worst(ExitStatus::Drift);
        }
        if !self.complete {
            // Errors win over drift: an incomplete audit never exits 0 or 1.
            status = status.worst(ExitStatus::Incomplete);
        }
        if status == ExitStatus::Clean && self.selected_gate_unjudged().is_some() {
            // A gate that could not be judged never passes (see `gates`).
            status = ExitStatus::Incomplete;
        }
        status
    }

    /// Render one format into a byte buffer.
    pub fn render(&self, format: Format, out: &mut Vec<u8>) -> std::io::Result<()> {
        match format {
            Format::Text => text::write(self, out),
            Format::Json => json::write(self, out),
            Format::Csv => csv::write(self, out),
            Format::Markdown => markdown::write(self, out),
            Format::Junit => junit::write(self, out),
            Format::Html => html::write(self, out),
            Format::Prometheus => prometheus::write(self, out),
        }
    }

    /// Write every format into `dir`, each file written whole then renamed so none is half-written.
    pub fn write_all(&self, dir: &Path, formats: &[Format]) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::with_source(
                ErrorKind::Report,
                format!("creating report folder {}", dir.display()),
                e,
            )
        })?;
        crate::outdir::remove_stale(dir, formats).map_err(|e| {
            Error::with_source(
                ErrorKind::Report,
                format!("removing older reports from {}", dir.display()),
                e,
            )
        })?;
        for f in formats {
            let mut buf = Vec::new();
            self.render(*f, &mut buf).map_err(|e| {
                Error::with_source(ErrorKind::Report, format!("rendering {}", f.file_name()), e)
            })?;
            let path = dir.join(f.file_name());
            let tmp = dir.join(format!(".{}.tmp", f.file_name()));
            crate::outdir::write_atomic(&tmp, &path, &buf).map_err(|e| {
                Error::with_source(ErrorKind::Report, format!("writing {}", path.display()), e)
            })?;
        }
        Ok(())
    }
}

/// Counts of a sorted findings list (settled and since-last-run counts are filled by their stages).
fn summarize(findings: &[Finding]) -> Summary {
    let mut summary = Summary {
        total: findings.len(),
        ..Summary::default()
    };
    let mut accepted = 0;
    for f in findings {
        match f.level {
            Level::Deny => summary.deny += 1,
            Level::Warn => summary.warn += 1,
            Level::Allow => summary.allow += 1,
        }
        if f.failing() {
            summary.failing += 1;
        }
        if f.repaired() {
            summary.repaired += 1;
        }
        accepted += usize::from(f.accepted);
        *summary
            .by_code
            .entry(f.code.as_str().to_owned())
            .or_default() += 1;
    }
    // Only shown with a baseline: `recount` keeps it when one was applied.
    summary.accepted = (accepted > 0).then_some(accepted);
    summary
}

impl Summary {
    fn total_accepted(&self) -> usize {
        self.accepted.unwrap_or(0)
    }
}

/// `since last run (<run id>, <against>): N new, M still, K resolved[; note]`, when compared.
#[must_use]
pub fn since_line(r: &Report) -> Option<String> {
    let s = r.since_last.as_ref()?;
    Some(since_text(
        &s.run_id,
        &s.against,
        s.note.as_deref(),
        [r.summary.new, r.summary.still, r.summary.resolved],
    ))
}

/// The since-last-run line from its parts (a live report's or a saved one's); `?` for a count
/// that is not known.
#[must_use]
pub fn since_text(
    run_id: &str,
    against: &str,
    note: Option<&str>,
    [new, still, resolved]: [Option<usize>; 3],
) -> String {
    let n = |v: Option<usize>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    let mut line = format!(
        "since last run ({run_id}, {against}): {} new, {} still, {} resolved",
        n(new),
        n(still),
        n(resolved)
    );
    if let Some(note) = note {
        line.push_str("; ");
        line.push_str(note);
    }
    line
}

/// `baseline FILE: N accepted (never failing a gate), M stale entries, K expired`, with a baseline.
#[must_use]
pub fn baseline_line(r: &Report) -> Option<String> {
    let b = r.baseline.as_ref()?;
    Some(format!(
        "baseline {}: {} finding(s) accepted (never failing a gate), {} stale entr{}, {} expired of {}",
        b.path,
        b.accepted,
        b.stale,
        if b.stale == 1 { "y" } else { "ies" },
        b.expired,
        b.entries
    ))
}

/// One side in a line: nodes with version, DB, and what was read.
#[must_use]
pub fn side_summary(side: &SideInfo) -> String {
    let mut parts = Vec::new();
    if !side.nacos.is_empty() {
        let v = side
            .version
            .as_deref()
            .map(|v| format!(" (Nacos {v})"))
            .unwrap_or_default();
        parts.push(format!("nacos {}{v}", side.nacos.join(",")));
    }
    if let Some(db) = &side.db {
        parts.push(format!("db {db}"));
    }
    let mut counts = Vec::new();
    if let Some(n) = side.db_configs {
        counts.push(format!("{n} DB configs"));
    }
    if let Some(n) = side.api_configs {
        counts.push(format!("{n} API configs"));
    }
    if let Some(n) = side.api_services {
        counts.push(format!("{n} services"));
    }
    if let Some(n) = side.api_instances {
        counts.push(format!("{n} instances"));
    }
    if !counts.is_empty() {
        parts.push(counts.join(", "));
    }
    if parts.is_empty() {
        parts.push("(nothing configured)".to_owned());
    }
    parts.join("; ")
}

/// The `namespace/group/name[#variant][ instance][ @node]` label of a finding.
#[must_use]
pub fn location(f: &Finding) -> String {
    let mut s = if f.group.is_empty() && f.name.is_empty() {
        f.namespace.clone()
    } else {
        format!("{}/{}/{}", f.namespace, f.group, f.name)
    };
    if let Some(v) = &f.variant {
        s.push('#');
        s.push_str(v);
    }
    if let Some(i) = &f.instance {
        s.push(' ');
        s.push_str(i);
    }
    if let Some(n) = &f.node {
        s.push_str(" @");
        s.push_str(n);
    }
    s
}
