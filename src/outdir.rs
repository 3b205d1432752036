//! The report folder: files written whole (a temporary file renamed, removed again when the write
//! fails), and report files of formats not written this run removed, so none looks current.

use crate::settings::Format;
use std::path::Path;

/// Write `bytes` to `tmp`, then rename it to `path`; on failure the temporary file is removed,
/// so a full disk or a read-only folder leaves nothing half-written behind.
pub fn write_atomic(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let r = std::fs::write(tmp, bytes).and_then(|()| std::fs::rename(tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    r
}

/// Remove from `dir` the report files of every format not in `formats` (only the file names
/// nacos-drift itself writes, and their temporary files): a folder reused with fewer formats
/// must not keep an older `report.json` beside this run's `report.txt`, looking current.
pub fn remove_stale(dir: &Path, formats: &[Format]) -> std::io::Result<()> {
    for f in Format::ALL {
        let names = [f.file_name().to_owned(), format!(".{}.tmp", f.file_name())];
        for (i, name) in names.iter().enumerate() {
            // This run's own temporary files are replaced anyway; its reports are rewritten.
            if i == 0 && formats.contains(&f) {
                continue;
            }
            match std::fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_reports_of_other_formats_go() {
        let dir = std::env::temp_dir().join(format!("nd-outdir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in [
            "report.json",
            "report.txt",
            "metrics.prom",
            ".report.html.tmp",
            "notes.md",
            "other.prom",
        ] {
            std::fs::write(dir.join(n), "old").unwrap();
        }
        remove_stale(&dir, &[Format::Text]).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["notes.md", "other.prom", "report.txt"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("nd-outdir-fail-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("report.json")).unwrap();
        // The rename fails: the target is a non-empty folder.
        std::fs::write(dir.join("report.json/keep"), "x").unwrap();
        let tmp = dir.join(".report.json.tmp");
        assert!(write_atomic(&tmp, &dir.join("report.json"), b"{}").is_err());
        assert!(!tmp.exists());
    }
}
