//! Incremental-run state: the watermark file and the lock that keeps two runs from overlapping.
//!
//! The watermark is, per side, the newest `config_info.gmt_modified` and `his_config_info.nid`
//! seen by the last complete run. The next incremental run audits keys whose row changed at or
//! after `gmt_modified − skew` or that have a history entry after `nid` (which covers deletions
//! made through Nacos). Rows written behind Nacos's back with an old timestamp are only caught by
//! the periodic full pass, which is why one runs every `full_every_hours`.

use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the state file format.
pub const STATE_SCHEMA_VERSION: u32 = 1;

/// Per-side watermark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Newest `gmt_modified` (epoch ms) seen.
    pub modified_ms: i64,
    /// Newest `his_config_info.nid` seen.
    pub his_nid: u64,
}

/// The state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub schema_version: u32,
    /// When the last complete full pass finished (epoch ms).
    pub last_full_ms: i64,
    /// `source` / `target` → watermark.
    pub sides: BTreeMap<String, Watermark>,
}

/// Read the state file; a missing file is `None`, a broken one an error naming the file.
pub fn load(path: &Path) -> Result<Option<State>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::with_source(
                ErrorKind::Usage,
                format!("reading state file {}", path.display()),
                e,
            ))
        }
    };
    let st: State = serde_json::from_str(&text).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!(
                "{}:{}:{}: invalid state file ({e}); delete it to start again with a full run",
                path.display(),
                e.line(),
                e.column()
            ),
        )
    })?;
    if st.schema_version != STATE_SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "{}: unsupported state schema_version {}",
                path.display(),
                st.schema_version
            ),
        ));
    }
    Ok(Some(st))
}

/// Write the state file whole (temp file + rename), so a crash never leaves half a watermark.
pub fn save(path: &Path, st: &State) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::with_source(ErrorKind::Report, format!("creating {}", dir.display()), e)
        })?;
    }
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(st)
        .map_err(|e| Error::with_source(ErrorKind::Report, "serialising state", e))?;
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Report,
                format!("writing state file {}", path.display()),
                e,
            )
        })
}

/// An exclusive run lock: a file holding the owner's PID, removed on drop.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    /// Set when a stale lock of a dead process was taken over.
    pub took_over: Option<u32>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Take the lock next to the state file (`<state>.lock`).
pub fn lock(state_path: &Path) -> Result<Lock> {
    let path = PathBuf::from(format!("{}.lock", state_path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::with_source(ErrorKind::Report, format!("creating {}", dir.display()), e)
        })?;
    }
    let me = std::process::id();
    let mut took_over = None;
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(me.to_string().as_bytes()).map_err(|e| {
                    Error::with_source(
                        ErrorKind::Report,
                        format!("writing lock {}", path.display()),
                        e,
                    )
                })?;
                return Ok(Lock { path, took_over });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner: Option<u32> = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                match owner {
                    Some(pid) if pid != me && pid_alive(pid) => {
                        return Err(Error::new(
                            ErrorKind::Source,
                            format!("another nacos-drift run (pid {pid}) holds {}; not starting a second one", path.display()),
                        ));
                    }
                    _ => {
                        // The owner is gone (crashed or killed): take the lock over.
                        took_over = owner.or(Some(0));
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            Err(e) => {
                return Err(Error::with_source(
                    ErrorKind::Report,
                    format!("creating lock {}", path.display()),
                    e,
                ))
            }
        }
    }
    Err(Error::new(
        ErrorKind::Source,
        format!("could not take the lock {}", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_excludes_a_live_owner_and_takes_over_a_dead_one() {
        let dir = std::env::temp_dir().join(format!("nd-lock-{}", std::process::id()));
        let state = dir.join("state.json");
        let l = lock(&state).unwrap();
        assert!(l.took_over.is_none());
        drop(l);
        // A lock left by a PID that does not exist is taken over.
        std::fs::write(dir.join("state.json.lock"), "999999999").unwrap();
        let l = lock(&state).unwrap();
        assert_eq!(l.took_over, Some(999_999_999));
        // Our own live PID in someone else's lock file: refused (simulate with PID 1, always alive).
        drop(l);
        std::fs::write(dir.join("state.json.lock"), "1").unwrap();
        assert!(lock(&state).unwrap_err().msg.contains("pid 1"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn state_round_trips_and_broken_files_are_named() {
        let dir = std::env::temp_dir().join(format!("nd-state-{}", std::process::id()));
        let p = dir.join("s.json");
        assert!(load(&p).unwrap().is_none());
        let mut st = State {
            schema_version: STATE_SCHEMA_VERSION,
            last_full_ms: 5,
            ..State::default()
        };
        st.sides.insert(
            "target".into(),
            Watermark {
                modified_ms: 7,
                his_nid: 9,
            },
        );
        save(&p, &st).unwrap();
        assert_eq!(load(&p).unwrap(), Some(st));
        std::fs::write(&p, "{").unwrap();
        assert!(load(&p).unwrap_err().msg.contains("s.json:1:"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
