//! Incremental runs: the keys changed since the watermark, the snapshots narrowed to them, and
//! the watermark the next run starts from.

use super::context::RunContext;
use crate::diff::Scope;
use crate::finding::{Code, Finding, Layer};
use crate::model::{FormalKey, Side, SideSnapshot};
use crate::settings::Settings;
use std::collections::{BTreeMap, HashSet};

/// Formal config keys in source namespace terms.
pub(crate) type KeySet = HashSet<FormalKey>;

/// How an incremental-capable run goes, before anything is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Not asked for (`audit` without `--incremental`): a full run, no mode line.
    Plain,
    /// Only the keys changed since the watermark.
    Changed,
    /// `--incremental` with no state file yet.
    NoState,
    /// A scheduled full pass is due, or `--full`.
    FullDue,
    /// No DB on either side: no watermark to read changes from.
    NoDb,
}

impl Mode {
    /// The report's run-mode line for a full run.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Mode::Plain => "",
            Mode::Changed => "incremental",
            Mode::NoState => "full (no state file yet)",
            Mode::FullDue => "full (scheduled full pass, or --full)",
            Mode::NoDb => "full (an incremental run needs a database to take a watermark from)",
        }
    }
}

/// The run's mode from the flags, the state file's last full pass (`None`: no state file) and
/// whether a DB is configured.
pub(crate) fn mode(
    incremental: bool,
    full: bool,
    last_full_ms: Option<i64>,
    now_ms: i64,
    full_every_hours: u64,
    has_db: bool,
) -> Mode {
    match last_full_ms {
        Some(last) if !full && !full_due(last, now_ms, full_every_hours) => {
            if has_db {
                Mode::Changed
            } else {
                Mode::NoDb
            }
        }
        Some(_) => Mode::FullDue,
        None if incremental => Mode::NoState,
        None => Mode::Plain,
    }
}

/// Whether the scheduled full pass is due (`full_every_hours` = 0: never scheduled).
pub(crate) fn full_due(last_full_ms: i64, now: i64, every_hours: u64) -> bool {
    every_hours > 0
        && now - last_full_ms > i64::try_from(every_hours * 3_600_000).unwrap_or(i64::MAX)
}

/// Newest `gmt_modified` and history nid per side, read from the (unrestricted) DB snapshots.
pub(crate) fn watermarks_of(
    source: &SideSnapshot,
    target: &SideSnapshot,
) -> BTreeMap<String, crate::state::Watermark> {
    let mut out = BTreeMap::new();
    for (name, snap) in [("source", source), ("target", target)] {
        if let Some(db) = &snap.db {
            if db.errors.is_empty() {
                out.insert(
                    name.to_owned(),
                    crate::state::Watermark {
                        modified_ms: db
                            .configs
                            .iter()
                            .filter_map(|c| c.modified_ms)
                            .max()
                            .unwrap_or(0),
                        his_nid: db.max_his_nid.unwrap_or(0),
                    },
                );
            }
        }
    }
    out
}

/// Keys (in source namespace terms) changed on either DB since the watermark: rows modified at or
/// after `modified − skew`, and keys with a history entry after the last nid (deletions included).
/// A DB that cannot say is a `source-error`: its changes are unknown, so the run is incomplete.
pub(crate) async fn changed_keys(
    ctx: &RunContext,
    settings: &Settings,
    scope: &Scope,
    prior: &crate::state::State,
) -> (KeySet, Vec<Finding>) {
    let mut out = HashSet::new();
    let mut errors = Vec::new();
    for side in [Side::Source, Side::Target] {
        let name = side.as_str();
        let (Some(dsn), Some(handle)) =
            (&super::context::side_conf(settings, side).db, ctx.db(side))
        else {
            continue;
        };
        let wm = prior.sides.get(name).cloned().unwrap_or_default();
        let since = wm.modified_ms - i64::try_from(settings.skew_secs * 1000).unwrap_or(0);
        let read = async {
            let db = handle.as_ref().map_err(Clone::clone)?;
            let mut keys = db.modified_keys_since(since).await?;
            keys.extend(db.history_keys_since(wm.his_nid).await?);
            Ok::<_, crate::db::DbError>(keys)
        };
        match read.await {
            Ok(keys) => {
                for k in keys {
                    let ns = scope.source_ns(side, &k.namespace);
                    out.insert(k.formal().in_namespace(ns));
                }
            }
            Err(e) => {
                let mut f = Finding::new(Code::SourceError, Layer::L1, "", "", "");
                f.side = Some(side);
                f.node = Some(dsn.clone());
                f.detail = format!("{name}: keys changed since the watermark: {e}");
                errors.push(f);
            }
        }
    }
    (out, errors)
}

/// Keep only the changed keys' configs (and deletions) in a snapshot.
pub(crate) fn restrict_to(snap: &mut SideSnapshot, keys: &KeySet, scope: &Scope, side: Side) {
    let keep = |k: &crate::model::ConfigKey| {
        let ns = scope.source_ns(side, &k.namespace);
        keys.contains(&k.formal().in_namespace(ns))
    };
    if let Some(db) = &mut snap.db {
        db.configs.retain(|c| keep(&c.key));
        db.deleted.retain(|k| keep(k));
    }
    if let Some(api) = &mut snap.api {
        api.configs.retain(|c| keep(&c.key));
    }
}

#[cfg(test)]
mod tests {
    use super::{mode, Mode};

    #[test]
    fn the_run_mode_follows_the_flags_the_state_and_the_schedule() {
        let hour = 3_600_000;
        // (--incremental, --full, last full pass, now, full_every_hours, a DB configured) → mode
        let table = [
            (false, false, None, 10 * hour, 24, true, Mode::Plain),
            (true, false, None, 10 * hour, 24, true, Mode::NoState),
            (
                true,
                false,
                Some(9 * hour),
                10 * hour,
                24,
                true,
                Mode::Changed,
            ),
            (
                true,
                false,
                Some(9 * hour),
                10 * hour,
                24,
                false,
                Mode::NoDb,
            ),
            (
                true,
                true,
                Some(9 * hour),
                10 * hour,
                24,
                true,
                Mode::FullDue,
            ),
            (true, false, Some(0), 30 * hour, 24, true, Mode::FullDue),
            // 0 hours: a full pass is never scheduled.
            (true, false, Some(0), 300 * hour, 0, true, Mode::Changed),
        ];
        for (inc, full, last, now, every, db, want) in table {
            assert_eq!(
                mode(inc, full, last, now, every, db),
                want,
                "{inc} {full} {last:?}"
            );
        }
        assert_eq!(Mode::NoState.text(), "full (no state file yet)");
        assert_eq!(Mode::Plain.text(), "");
    }
}
