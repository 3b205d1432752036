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
    crate::outdir::write_atomic(&tmp, path, &bytes).map_err(|e| {
        Error::with_source(
            ErrorKind::Report,
            format!("writing state file {}", path.display()),
            e,
        )
    })
}

/// An exclusive run lock: `<state>.lock`, holding the owner's PID, kept locked (`flock`) by the
/// owner while it runs and removed when it ends.
///
/// The kernel releases the `flock` of a process that dies, so a crashed or killed run never blocks
/// the next one; the PID is there to name the holder and for locks left by runs that held none.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    _file: std::fs::File,
    /// Set when a stale lock was taken over: whose it was and why it was stale.
    pub took_over: Option<String>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held: a run waiting on this file sees it gone and opens a new one.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a PID found in a lock file is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Process {
    /// No such process (or a zombie).
    Gone,
    /// A nacos-drift process (or one whose program cannot be read: it may be).
    NacosDrift,
    /// Some other program (after a reboot or PID wrap, the PID names something else).
    Other(String),
}

/// Who a lock file says holds the lock, and whether that still stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A live nacos-drift process other than this one: the lock stands.
    Live(u32),
    /// Nobody (or this very process): the lock may be taken; the text says whose it was.
    Stale(Option<String>),
}

/// The decision on a lock file's content, given what its PID is now.
#[must_use]
pub fn judge(content: &str, me: u32, probe: impl Fn(u32) -> Process) -> Holder {
    let Ok(pid) = content.trim().parse::<u32>() else {
        return Holder::Stale(
            (!content.trim().is_empty()).then(|| "an unreadable lock file".to_owned()),
        );
    };
    if pid == me {
        return Holder::Stale(None);
    }
    match probe(pid) {
        Process::Gone => Holder::Stale(Some(format!("process {pid}, which is no longer running"))),
        Process::Other(name) => Holder::Stale(Some(format!(
            "process {pid}, which is `{name}`, not nacos-drift (the PID was reused)"
        ))),
        Process::NacosDrift => Holder::Live(pid),
    }
}

/// What process `pid` is now, from `/proc`.
#[must_use]
pub fn probe(pid: u32) -> Process {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
        return Process::Gone;
    };
    // `pid (comm) S ...`: the state follows the last `)`.
    if stat
        .rsplit(')')
        .next()
        .map(str::trim_start)
        .is_some_and(|s| s.starts_with('Z'))
    {
        return Process::Gone;
    }
    let program = std::fs::read_link(dir.join("exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| {
            let cmd = std::fs::read(dir.join("cmdline")).ok()?;
            let argv0 = cmd.split(|b| *b == 0).next()?;
            let argv0 = String::from_utf8_lossy(argv0).into_owned();
            Some(argv0.rsplit('/').next().unwrap_or(&argv0).to_owned())
        });
    match program {
        // The release binary, or a test build of the crate (`nacos_drift-<hash>`).
        Some(p) if p.starts_with("nacos-drift") || p.starts_with("nacos_drift") => {
            Process::NacosDrift
        }
        Some(p) if !p.is_empty() => Process::Other(p),
        // Unreadable: it may be ours; never take over a lock that may be live.
        _ => Process::NacosDrift,
    }
}

/// Take the lock next to the state file (`<state>.lock`); another live run holding it is an
/// error naming its PID.
pub fn lock(state_path: &Path) -> Result<Lock> {
    use std::io::{Read, Seek, Write};
    let path = PathBuf::from(format!("{}.lock", state_path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::with_source(ErrorKind::Report, format!("creating {}", dir.display()), e)
        })?;
    }
    let io = |what: &str, e: std::io::Error| {
        Error::with_source(
            ErrorKind::Report,
            format!("{what} lock {}", path.display()),
            e,
        )
    };
    let me = std::process::id();
    let held = |pid: u32| {
        Error::new(
            ErrorKind::Source,
            format!(
                "another nacos-drift run (pid {pid}) holds {}; not starting a second one",
                path.display()
            ),
        )
    };
    // A live PID read from a held lock that is not (yet) a nacos-drift one: the holder may
    // still be replacing a stale PID with its own.
    let mut seen = None;
    for _ in 0..50 {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("opening", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes its PID right after locking: give it that moment.
                let mut content = String::new();
                let _ = file.read_to_string(&mut content);
                match content.trim().parse::<u32>() {
                    Ok(pid) if pid == me || probe(pid) == Process::NacosDrift => {
                        return Err(held(pid))
                    }
                    Ok(pid) if probe(pid) != Process::Gone => seen = Some(pid),
                    _ => {}
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("locking", e)),
        }
        // The holder before us may have removed the file after we opened it: lock the file
        // that is at the path now.
        let same = match (file.metadata(), std::fs::metadata(&path)) {
            (Ok(a), Ok(b)) => {
                use std::os::unix::fs::MetadataExt;
                a.dev() == b.dev() && a.ino() == b.ino()
            }
            _ => false,
        };
        if !same {
            continue;
        }
        let mut content = String::new();
        file.read_to_string(&mut content)
            .map_err(|e| io("reading", e))?;
        let took_over = match judge(&content, me, probe) {
            // A live nacos-drift that does not hold the flock (a run of an older build).
            Holder::Live(pid) => return Err(held(pid)),
            Holder::Stale(prev) => prev,
        };
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.to_string().as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| io("writing", e))?;
        return Ok(Lock {
            path,
            _file: file,
            took_over,
        });
    }
    Err(match seen {
        Some(pid) => held(pid),
        None => Error::new(
            ErrorKind::Source,
            format!(
                "another nacos-drift run holds {} (its PID could not be read); not starting a second one",
                path.display()
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_stands_only_for_a_live_nacos_drift_process() {
        let probe = |pid: u32| match pid {
            10 => Process::Gone,
            11 => Process::Other("sleep".into()),
            _ => Process::NacosDrift,
        };
        assert_eq!(judge("12\n", 99, probe), Holder::Live(12));
        let Holder::Stale(Some(why)) = judge("10", 99, probe) else {
            panic!("a dead PID must be taken over")
        };
        assert!(
            why.contains("process 10") && why.contains("no longer running"),
            "{why}"
        );
        let Holder::Stale(Some(why)) = judge("11", 99, probe) else {
            panic!("a PID that is not nacos-drift must be taken over")
        };
        assert!(why.contains("`sleep`"), "{why}");
        // Our own PID (left by an earlier process that had it), an empty or a broken file.
        assert_eq!(judge("99", 99, probe), Holder::Stale(None));
        assert_eq!(judge("", 99, probe), Holder::Stale(None));
        assert!(matches!(judge("x1", 99, probe), Holder::Stale(Some(_))));
    }

    #[test]
    fn this_process_is_seen_as_nacos_drift_and_a_missing_pid_as_gone() {
        // Unit tests run in the crate's own test binary, `nacos_drift-<hash>`.
        assert_eq!(probe(std::process::id()), Process::NacosDrift);
        assert_eq!(probe(u32::MAX - 1), Process::Gone);
    }

    #[test]
    fn a_held_lock_refuses_a_second_taker_and_is_removed_when_dropped() {
        let dir = std::env::temp_dir().join(format!("nd-lock-{}", std::process::id()));
        let state = dir.join("state.json");
        let l = lock(&state).unwrap();
        assert!(l.took_over.is_none());
        let path = dir.join("state.json.lock");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        // The flock is per open file: a second open in this process conflicts like another run.
        let e = lock(&state).unwrap_err();
        assert!(
            e.msg.contains(&format!("pid {}", std::process::id())),
            "{}",
            e.msg
        );
        drop(l);
        assert!(!path.exists());
        // A lock file left by a PID that does not exist is taken over.
        std::fs::write(&path, "4294967294").unwrap();
        let l = lock(&state).unwrap();
        assert!(l.took_over.as_deref().unwrap().contains("4294967294"));
        drop(l);
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
