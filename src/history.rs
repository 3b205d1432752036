//! Since the last run: a compact record of each audit's findings (digests of their identities,
//! one file per configuration in the state folder) and the `new` / `still` / `resolved` marks the
//! next run draws from it, or from an earlier report given with `--since`.
//!
//! The record holds digests only (no names: nothing a cluster returned is written to the state
//! folder) and at most [`MAX_IDS`] of them, so its size is bounded whatever the drift.

use crate::finding::Finding;
use crate::report::{Report, SinceLast, MAX_READ_BYTES};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Version of the record file's layout.
pub const RECORD_VERSION: u32 = 1;
/// Most finding digests one record holds (32 hex characters each: about 2 MB at most).
pub const MAX_IDS: usize = 50_000;
/// Records of other configurations untouched this long are removed when a record is saved, so
/// a folder used with changing `--namespace` lists does not grow without end.
pub const STALE_RECORD_DAYS: u64 = 30;

/// One run's findings, as kept in the state folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Layout version ([`RECORD_VERSION`]).
    pub version: u32,
    /// The configuration key this record belongs to (also in the file name).
    pub config: String,
    /// Run id of the run that wrote it.
    pub run_id: String,
    /// More findings than [`MAX_IDS`]: the record is partial and cannot tell what is new.
    pub truncated: bool,
    /// Sorted digests of the findings' identities.
    pub findings: Vec<String>,
}

/// A finding's identity digest: what the record keeps.
#[must_use]
pub fn digest(f: &Finding) -> String {
    hex::encode(&Sha256::digest(f.identity().as_bytes())[..16])
}

/// The key of a configuration: which sides, databases and namespaces were audited. Two
/// configurations never share a record; DSNs are masked first so no password reaches the hash.
#[must_use]
pub fn config_key(settings: &Settings) -> String {
    let mut h = Sha256::new();
    for side in [&settings.source, &settings.target] {
        for n in &side.nacos {
            h.update(crate::validate::mask_url(n).as_bytes());
            h.update([0]);
        }
        h.update([1]);
        if let Some(db) = &side.db {
            h.update(crate::validate::mask_dsn(db).as_bytes());
        }
        h.update([2]);
    }
    for ns in &settings.namespaces {
        h.update(ns.as_bytes());
        h.update([0]);
    }
    h.update([3]);
    for (from, to) in &settings.namespace_map {
        h.update(format!("{from}\u{0}{to}\u{0}").as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// Where the record of `settings`' configuration lives: beside the incremental state file.
#[must_use]
pub fn record_path(settings: &Settings) -> PathBuf {
    let dir = settings
        .state
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!("findings-{}.json", config_key(settings)))
}

/// The record of a report.
#[must_use]
pub fn record_of(report: &Report, config: &str) -> Record {
    let ids: BTreeSet<String> = report.findings.iter().map(digest).collect();
    let truncated = ids.len() > MAX_IDS;
    Record {
        version: RECORD_VERSION,
        config: config.to_owned(),
        run_id: report.run_id.clone(),
        truncated,
        findings: ids.into_iter().take(MAX_IDS).collect(),
    }
}

fn read_bounded(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_READ_BYTES {
        return Err(format!(
            "{}: {} bytes, more than the {MAX_READ_BYTES} a record or report may have",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Read a record: `Ok(None)` when there is none yet, `Err` when it cannot be used.
pub fn load_record(path: &Path) -> std::result::Result<Option<Record>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_bounded(path)?;
    let r: Record = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a findings record: {e}", path.display()))?;
    if r.version != RECORD_VERSION {
        return Err(format!(
            "{}: record version {}, this nacos-drift reads {RECORD_VERSION}",
            path.display(),
            r.version
        ));
    }
    Ok(Some(r))
}

/// The findings of an earlier JSON report (`--since`), as a record.
pub fn load_report(path: &Path) -> std::result::Result<Record, String> {
    #[derive(Deserialize)]
    struct Earlier {
        run_id: String,
        findings: Vec<Finding>,
    }
    let bytes = read_bounded(path)?;
    let e: Earlier = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a nacos-drift JSON report: {e}", path.display()))?;
    let ids: BTreeSet<String> = e.findings.iter().map(digest).collect();
    Ok(Record {
        version: RECORD_VERSION,
        config: String::new(),
        run_id: e.run_id,
        truncated: false,
        findings: ids.into_iter().collect(),
    })
}

/// Mark each finding `new` or `still` against `earlier`, and count what was resolved. An
/// incomplete run cannot tell what was resolved (what it did not read may still be there), so
/// it counts none; a truncated record cannot tell what is new, so nothing is marked.
pub fn compare(report: &mut Report, earlier: &Record, against: &str) {
    if earlier.truncated {
        report.since_last = Some(SinceLast {
            run_id: earlier.run_id.clone(),
            against: against.to_owned(),
            note: Some(format!(
                "the earlier record was cut at {MAX_IDS} findings: new and resolved are not known"
            )),
        });
        return;
    }
    let before: BTreeSet<&str> = earlier.findings.iter().map(String::as_str).collect();
    let mut now = BTreeSet::new();
    let (mut new, mut still) = (0, 0);
    for f in &mut report.findings {
        let id = digest(f);
        if before.contains(id.as_str()) {
            still += 1;
            f.since_last = Some("still".into());
        } else {
            new += 1;
            f.since_last = Some("new".into());
        }
        now.insert(id);
    }
    report.summary.new = Some(new);
    report.summary.still = Some(still);
    let note = if report.complete {
        report.summary.resolved = Some(before.iter().filter(|id| !now.contains(**id)).count());
        None
    } else {
        Some("the run is incomplete: what it did not read is not counted as resolved".to_owned())
    };
    report.since_last = Some(SinceLast {
        run_id: earlier.run_id.clone(),
        against: against.to_owned(),
        note,
    });
}

/// Before the reports are written: compare with `--since`'s report, or (audits only) with the
/// configuration's record. A record that cannot be read is a warning: the audit still stands.
pub fn annotate(report: &mut Report, settings: &Settings) -> crate::error::Result<()> {
    if let Some(p) = &settings.since {
        let earlier = load_report(p).map_err(|e| {
            crate::error::Error::new(crate::error::ErrorKind::Usage, format!("--since {e}"))
        })?;
        compare(report, &earlier, &format!("report {}", p.display()));
        return Ok(());
    }
    if report.mode != "audit" {
        return Ok(());
    }
    let path = record_path(settings);
    match load_record(&path) {
        Ok(Some(r)) => compare(report, &r, "the last run's record"),
        Ok(None) => {}
        Err(e) => crate::report::escape::eprintln_visible(&format!(
            "warning: since-last-run record not used ({e}); this run starts a new one"
        )),
    }
    Ok(())
}

/// After the reports are written: a complete audit's findings replace the configuration's record
/// (an incomplete one's do not: the next run compares with the last complete one).
pub fn save(report: &Report, settings: &Settings) {
    if report.mode != "audit" || !report.complete {
        return;
    }
    let path = record_path(settings);
    let rec = record_of(report, &config_key(settings));
    let result = serde_json::to_vec(&rec)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.tmp");
            crate::outdir::write_atomic(&tmp, &path, &bytes)
        });
    if let Err(e) = result {
        crate::report::escape::eprintln_visible(&format!(
            "warning: could not keep the since-last-run record {}: {e}",
            path.display()
        ));
    }
    if let Some(dir) = path.parent() {
        prune(
            dir,
            std::time::Duration::from_secs(STALE_RECORD_DAYS * 86_400),
        );
    }
}

/// Whether `name` is a record file name this module writes (`findings-<16 hex>.json`).
fn is_record_name(name: &str) -> bool {
    name.strip_prefix("findings-")
        .and_then(|r| r.strip_suffix(".json"))
        .is_some_and(|k| k.len() == 16 && k.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Remove records (only files named like ours) not written for longer than `older_than`.
fn prune(dir: &Path, older_than: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(std::result::Result::ok) {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if old && is_record_name(&e.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
