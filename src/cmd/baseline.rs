//! `nacos-drift baseline`: write an accepted-drift file from a JSON report or from an audit run.

use crate::cli::{AuditArgs, BaselineArgs, ReportArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitStatus;
use crate::finding::Finding;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The part of a JSON report a baseline is made from.
#[derive(Deserialize)]
struct Saved {
    run_id: String,
    complete: bool,
    findings: Vec<Finding>,
}

fn read_report(path: &Path) -> Result<Saved> {
    let text = std::fs::read(path).map_err(|e| {
        Error::with_source(
            ErrorKind::Usage,
            format!("reading report {}", path.display()),
            e,
        )
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!(
                "{}:{}: not a nacos-drift JSON report: {e}",
                path.display(),
                e.line()
            ),
        )
    })
}

/// A folder of our own for the audit's JSON report, removed afterwards.
fn scratch_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "nacos-drift-baseline-{}-{nanos}",
        std::process::id()
    ))
}

/// Run `baseline`: exit 0 when the file is written from a complete report, 3 when the report
/// was incomplete (the file is still written: it accepts what was read).
pub(crate) fn run(a: &BaselineArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<ExitStatus> {
    if a.out.exists() && !a.force {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "{} exists: pass --force to regenerate it (entries that still match keep their reason and expiry)",
                a.out.display()
            ),
        ));
    }
    let (saved, from) = match &a.from {
        Some(p) => (read_report(p)?, format!("report {}", p.display())),
        None => {
            let dir = scratch_dir();
            let audit = AuditArgs {
                sides: a.sides.clone(),
                report: ReportArgs {
                    formats: vec!["json".into()],
                    out: Some(dir.clone()),
                    ..ReportArgs::default()
                },
                settle: None,
                fix: false,
                dry_run: false,
                full: false,
                fix_source: false,
                incremental: false,
                state: None,
                no_probe: a.no_probe,
                check_config: false,
                l4: false,
            };
            let ran = crate::cmd::audit::run(&audit, env);
            let saved = ran.and_then(|_| read_report(&dir.join("report.json")));
            let _ = std::fs::remove_dir_all(&dir);
            let saved = saved?;
            let from = format!("audit run {}", saved.run_id);
            (saved, from)
        }
    };
    // The file being regenerated: its entries that still match lend their reason and expiry.
    let previous = if a.out.exists() {
        match crate::baseline::load(&a.out) {
            Ok(b) => Some(b),
            Err(e) => {
                crate::report::escape::eprintln_visible(&format!(
                    "warning: {} is not a baseline nacos-drift can read, so no reason or expiry is carried over from it: {e}",
                    a.out.display()
                ));
                None
            }
        }
    } else {
        None
    };
    let (text, carried) = crate::baseline::render(
        &saved.findings,
        a.reason.as_deref(),
        a.expires.as_deref(),
        &from,
        previous.as_ref().map(|b| (b, crate::baseline::today())),
    )?;
    let tmp = a.out.with_extension("toml.tmp");
    crate::outdir::write_atomic(&tmp, &a.out, text.as_bytes()).map_err(|e| {
        Error::with_source(ErrorKind::Report, format!("writing {}", a.out.display()), e)
    })?;
    let n = crate::baseline::parse(&a.out.display().to_string(), &text)
        .map(|b| b.entries.len())
        .unwrap_or(0);
    let what = if previous.is_some() {
        format!(
            ": {} kept with their reason and expiry, {} added, {} dropped",
            carried.kept, carried.added, carried.dropped
        )
    } else {
        String::new()
    };
    crate::report::escape::eprintln_visible(&format!(
        "baseline written to {} ({n} entr{}{what})",
        a.out.display(),
        if n == 1 { "y" } else { "ies" }
    ));
    if saved.complete {
        Ok(ExitStatus::Clean)
    } else {
        crate::report::escape::eprintln_visible(
            "warning: the report is incomplete (some source could not be read): the baseline accepts only what was read",
        );
        Ok(ExitStatus::Incomplete)
    }
}
