//! `nacos-drift status`: the migration at a glance from the newest report on disk (or a given
//! one): its step table and since-last-run counts, without touching any server, exiting with that
//! report's exit code.

use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitStatus;
use crate::report::escape::visible;
use crate::report::gates::Gates;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `status` reads of a JSON report (see README, "JSON report").
#[derive(Debug, Deserialize)]
struct Saved {
    run_id: String,
    mode: String,
    complete: bool,
    gate: Option<String>,
    exit_code: u8,
    summary: SavedSummary,
    #[serde(default)]
    gates: Option<Gates>,
    #[serde(default)]
    since_last: Option<SavedSince>,
}

#[derive(Debug, Deserialize)]
struct SavedSummary {
    total: usize,
    failing: usize,
    #[serde(default)]
    new: Option<usize>,
    #[serde(default)]
    still: Option<usize>,
    #[serde(default)]
    resolved: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct SavedSince {
    run_id: String,
    against: String,
    #[serde(default)]
    note: Option<String>,
}

/// The newest `report.json` in `dir`: `dir/report.json` or `dir/*/report.json`, by modification
/// time (run folders are named by run id, which need not sort by time).
pub fn newest(dir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::with_source(
            ErrorKind::Usage,
            format!("reading the reports folder {}", dir.display()),
            e,
        )
    })?;
    let mut candidates = vec![dir.join("report.json")];
    candidates.extend(
        entries
            .filter_map(std::result::Result::ok)
            .map(|e| e.path().join("report.json")),
    );
    candidates
        .into_iter()
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((m.modified().ok()?, p))
        })
        .max()
        .map(|(_, p)| p)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!(
                    "no report.json in {} or its subfolders: run `nacos-drift audit --format json` first",
                    dir.display()
                ),
            )
        })
}

/// Print the status of `report` (or of the newest report in `reports`, default `reports/`).
pub fn run(report: Option<&Path>, reports: Option<&Path>) -> Result<ExitStatus> {
    let path = match report {
        Some(p) => p.to_path_buf(),
        None => newest(reports.unwrap_or(Path::new("reports")))?,
    };
    let mut out = Vec::new();
    let status = render(&path, &mut out)?;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&out);
    let _ = stdout.flush();
    Ok(status)
}

/// Render the status of the report at `path` into `out`; returns the report's exit status.
pub fn render(path: &Path, out: &mut Vec<u8>) -> Result<ExitStatus> {
    let bad = |msg: String| Error::new(ErrorKind::Usage, format!("{}: {msg}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.len() > super::MAX_READ_BYTES {
        return Err(bad(format!("{} bytes: too large for a report", meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let r: Saved = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not a nacos-drift JSON report: {e}")))?;
    let status = match r.exit_code {
        0 => ExitStatus::Clean,
        1 => ExitStatus::Drift,
        3 => ExitStatus::Incomplete,
        n => return Err(bad(format!("exit code {n} is not one a report records"))),
    };
    let verdict = match status {
        ExitStatus::Clean => "PASS",
        ExitStatus::Drift => "FAIL (drift)",
        _ => "INCOMPLETE",
    };
    let w = |out: &mut Vec<u8>, s: String| {
        let _ = writeln!(out, "{s}");
    };
    w(
        out,
        format!("report: {}", visible(&path.display().to_string())),
    );
    w(
        out,
        format!(
            "run {} — {} — gate: {} — {verdict} (exit {}){}",
            visible(&r.run_id),
            visible(&r.mode),
            visible(r.gate.as_deref().unwrap_or("all findings")),
            r.exit_code,
            if r.complete { "" } else { " — INCOMPLETE" }
        ),
    );
    match &r.gates {
        Some(g) => {
            let _ = crate::report::text::steps(g, r.gate.as_deref(), out);
        }
        None => w(
            out,
            "  steps: this report has no step table (written by an older nacos-drift)".into(),
        ),
    }
    w(
        out,
        format!(
            "  findings: {} ({} failing the gate)",
            r.summary.total, r.summary.failing
        ),
    );
    match &r.since_last {
        Some(s) => {
            let line = crate::report::since_text(
                &s.run_id,
                &s.against,
                s.note.as_deref(),
                [r.summary.new, r.summary.still, r.summary.resolved],
            );
            w(out, format!("  {}", visible(&line)));
        }
        None => w(out, "  since last run: nothing to compare with".into()),
    }
    Ok(status)
}
