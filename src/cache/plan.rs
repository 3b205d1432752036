//! The pure decisions of the L2 layer: how a difference is classified, whether a key may be
//! repaired, which mechanism a node gets, when a reload cannot take, and whether a node reads the
//! database it was paired with. No I/O here: `cache::audit_side` gathers the facts and asks.

use crate::finding::Code;
pub use crate::version::semver;
use serde::Serialize;

/// How a node is repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// The node re-dumps every config from its DB (`ops/localCache`).
    FullReload,
    /// HTTP `communication/dataChange`, one key at a time (Nacos ≤ 2.2.0).
    DataChange,
    /// Cluster gRPC `ConfigChangeClusterSyncRequest`, one key at a time (Nacos ≥ 2.2.1).
    GrpcSync,
    /// Nothing can be done on this node.
    None,
}

impl Mechanism {
    /// The kebab-case name used in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::FullReload => "full-reload",
            Mechanism::DataChange => "data-change",
            Mechanism::GrpcSync => "grpc-sync",
            Mechanism::None => "none",
        }
    }

    /// Whether it reloads one key at a time.
    #[must_use]
    pub fn per_key(self) -> bool {
        matches!(self, Mechanism::DataChange | Mechanism::GrpcSync)
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a repair action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepairStatus {
    /// `--dry-run`: what would be done.
    Planned,
    /// Sent to the node (verification tells whether it took).
    Applied,
    /// The node refused or could not be reached.
    Failed,
    /// Deliberately not done (no mechanism, or the rows are not trusted).
    Skipped,
    /// The run stopped (deadline or signal) while this repair was being sent or verified: some
    /// or all of it may have reached the node, and nothing of it was verified.
    Interrupted,
}

impl RepairStatus {
    /// The lowercase name used in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RepairStatus::Planned => "planned",
            RepairStatus::Applied => "applied",
            RepairStatus::Failed => "failed",
            RepairStatus::Skipped => "skipped",
            RepairStatus::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RepairStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of one L2 finding under `--fix`; rendered into the finding's `repair` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Verified fresh after the repair.
    Repaired,
    /// Still stale when verification gave up.
    StillStale(Mechanism),
    /// `--dry-run`.
    Planned(Mechanism),
    /// Deliberately left alone, with the reason.
    NotRepairable(String),
    /// The repair (or its verification) failed, with the reason.
    Failed(String),
    /// A source node without `--fix-source`.
    SourceUntouched,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Repaired => f.write_str("repaired"),
            Outcome::StillStale(m) => write!(f, "still stale after {m}"),
            Outcome::Planned(m) => write!(f, "planned: {m}"),
            Outcome::NotRepairable(why) => write!(f, "not repairable: {why}"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::SourceUntouched => {
                f.write_str("not repaired: the source is never touched without --fix-source")
            }
        }
    }
}

/// Whether a target DB row may be loaded into node caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// The row agrees with the source (or the side is the source itself).
    #[default]
    Trusted,
    /// The row differs from the source's (content, or present on one side only).
    Disagrees,
    /// The source could not be read, so the row cannot be confirmed.
    Unconfirmed,
}

impl Trust {
    /// Why a key of this trust is not repaired (`None` when it may be).
    #[must_use]
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Trust::Trusted => None,
            Trust::Disagrees => {
                Some("the target DB disagrees with the source (fix the DB sync first)")
            }
            Trust::Unconfirmed => Some(
                "the source could not be read to confirm the target DB row (nothing unconfirmed is loaded into caches)",
            ),
        }
    }
}

/// Trust of one target row: `target_md5` is what the node would reload ("" = no row), `source`
/// the source's md5 for the same key (`None` = the source could not be read, `Some("")` = the
/// source has no such config). Comparing content md5s is what L1 does for formal rows.
#[must_use]
pub fn trust(target_md5: &str, source: Option<&str>) -> Trust {
    match source {
        None => Trust::Unconfirmed,
        Some(s) if s == target_md5 => Trust::Trusted,
        Some(_) => Trust::Disagrees,
    }
}

/// The per-key reload mechanism a node version supports (see the README's repair table; 2.2.1
/// dropped the HTTP `dataChange` path in favour of the cluster gRPC sync).
#[must_use]
pub fn incremental_mechanism(version: &str, grpc_available: bool) -> (Mechanism, String) {
    match semver(version) {
        Some(v) if v < (2, 2, 1) => (
            Mechanism::DataChange,
            format!("Nacos {version} ≤ 2.2.0: HTTP dataChange with a fresh lastModified"),
        ),
        Some(_) if grpc_available => (
            Mechanism::GrpcSync,
            format!("Nacos {version} ≥ 2.2.1: cluster gRPC ConfigChangeClusterSyncRequest"),
        ),
        Some(_) => (
            Mechanism::FullReload,
            format!("Nacos {version} ≥ 2.2.1 has no HTTP per-key reload; the gRPC sync is not available, so the node is reloaded whole"),
        ),
        None => (
            Mechanism::None,
            format!("server `{version}` offers no known cache reload (r-nacos serves configs from its own store)"),
        ),
    }
}

/// The facts a node's repair plan depends on.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// Node version.
    pub version: &'a str,
    /// Whether the cluster gRPC sync can be used.
    pub grpc: bool,
    /// Stale keys to repair on this node.
    pub stale: usize,
    /// Stale keys refused (untrusted rows): a whole-node reload would load them too.
    pub refused: usize,
    /// How many keys the node serves in all, when the probe covered all of them; `None` when the
    /// probe saw a subset (`--namespace`, ignore globs, an incremental run).
    pub served: Option<usize>,
    /// `--full`: reload whole.
    pub full: bool,
    /// `fix.full_threshold_pct`.
    pub threshold_pct: u64,
}

/// A node's repair plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// What to do.
    pub mechanism: Mechanism,
    /// Why, for the report.
    pub why: String,
}

/// Per-key reloads, or the whole node when too much of it is stale (or `--full`). The share is
/// counted over every key the node serves, so it is only known when the probe covered them all;
/// a subset (one namespace of many) never reloads the whole node unless `--full` asks. A node
/// with refused keys is never reloaded whole: the dump would load those rows as well.
#[must_use]
pub fn plan_node(p: &PlanInput<'_>) -> NodePlan {
    let (mech, why) = incremental_mechanism(p.version, p.grpc);
    if mech == Mechanism::None {
        return NodePlan {
            mechanism: mech,
            why,
        };
    }
    let whole_blocked = p.refused > 0;
    let blocked = |why: String| {
        if mech.per_key() {
            NodePlan {
                mechanism: mech,
                why: format!("{why}; per key instead"),
            }
        } else {
            NodePlan {
                mechanism: Mechanism::None,
                why: format!("{why}, and Nacos {} has no per-key reload here", p.version),
            }
        }
    };
    let refused_note = || {
        format!(
            "a whole-node reload would also load {} key(s) whose target DB row is not trusted",
            p.refused
        )
    };
    if p.full {
        return if whole_blocked {
            blocked(format!(
                "--full asks for a full reload, but {}",
                refused_note()
            ))
        } else {
            NodePlan {
                mechanism: Mechanism::FullReload,
                why: "--full asks for a full reload".into(),
            }
        };
    }
    if let Some(total) = p.served {
        let share = p.stale as u64 * 100 / (total.max(1) as u64);
        if share > p.threshold_pct && mech != Mechanism::FullReload {
            let why = format!(
                "{share}% of the node's {total} key(s) stale > threshold {}%",
                p.threshold_pct
            );
            return if whole_blocked {
                blocked(format!("{why}, but {}", refused_note()))
            } else {
                NodePlan {
                    mechanism: Mechanism::FullReload,
                    why,
                }
            };
        }
    }
    if mech == Mechanism::FullReload && whole_blocked {
        return NodePlan {
            mechanism: Mechanism::None,
            why: format!("{why}, but {}", refused_note()),
        };
    }
    NodePlan {
        mechanism: mech,
        why,
    }
}

/// What the node answered when asked for a key it disagrees about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedView {
    /// HTTP status of `GET /v1/cs/configs` (200 or 404).
    Status(u16),
    /// The read failed.
    Unreadable,
}

/// The L2 code and detail of a key the listener probe flagged: extra (serves a deleted config),
/// missing (serves nothing), or stale (serves other content).
#[must_use]
pub fn classify(expected_md5: &str, served: ServedView) -> (Code, &'static str) {
    match served {
        ServedView::Unreadable => (
            Code::CacheStale,
            "node disagrees with its DB (could not read what it serves)",
        ),
        ServedView::Status(_) if expected_md5.is_empty() => (
            Code::CacheExtra,
            "node still serves a config whose DB row is gone",
        ),
        ServedView::Status(404) => (
            Code::CacheMissing,
            "node does not serve a config its DB has",
        ),
        ServedView::Status(_) => (
            Code::CacheStale,
            "node serves other content than its DB holds",
        ),
    }
}

/// The facts of a key still stale after a reload.
#[derive(Debug, Clone, Copy)]
pub struct TrapInput<'a> {
    /// Node version.
    pub version: &'a str,
    /// Status of the node's answer for the key.
    pub served_status: u16,
    /// The node's `Last-Modified` for the key, ms.
    pub node_modified_ms: Option<i64>,
    /// The DB row's `gmt_modified`, ms.
    pub db_modified_ms: Option<i64>,
    /// Whether the key should not exist (its row is gone).
    pub deleted: bool,
}

/// A timestamp trap: the node's cached copy is newer than the DB row, and Nacos ≥ 2.1 ignores a
/// dump older than what it holds (`ConfigCacheService.dumpWithMd5`: `lastModifiedOutDated` → skip),
/// so no reload can ever bring the row in.
#[must_use]
pub fn is_timestamp_trap(t: &TrapInput<'_>) -> bool {
    t.served_status == 200
        && !t.deleted
        && matches!((t.node_modified_ms, t.db_modified_ms), (Some(n), Some(d)) if n > d)
        && semver(t.version).is_some_and(|v| v >= (2, 1, 0))
}

/// One sampled key: what the configured DB holds and what the node reads from its own DB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSample {
    /// Content md5 in the configured DB (as the audit read it).
    pub configured_md5: String,
    /// `gmt_modified` of that row, ms.
    pub configured_modified_ms: Option<i64>,
    /// Content md5 the node's DB-backed detail answered (`None` = no such row there).
    pub node_md5: Option<String>,
    /// The node's row modification time, ms, when it said.
    pub node_modified_ms: Option<i64>,
}

/// Whether a node reads the database it was paired with, judged on a sample of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeDbVerdict {
    /// The node's DB agrees with the configured DB on the sample (or nothing could be judged).
    Agrees,
    /// At least half of the judged sample differs.
    Mismatch {
        /// Keys whose row differs.
        differing: usize,
        /// Keys judged.
        judged: usize,
    },
}

/// A row that changed after the audit read it (the node's copy is newer) proves nothing and is
/// not judged. Otherwise a node whose DB differs on at least half of the judged keys is not
/// reading the configured DB; fewer is written off as writes racing the audit.
#[must_use]
pub fn node_db_verdict(samples: &[DbSample]) -> NodeDbVerdict {
    let mut judged = 0;
    let mut differing = 0;
    for s in samples {
        let newer =
            matches!((s.node_modified_ms, s.configured_modified_ms), (Some(n), Some(c)) if n > c);
        if newer {
            continue;
        }
        judged += 1;
        if s.node_md5.as_deref() != Some(s.configured_md5.as_str()) {
            differing += 1;
        }
    }
    if differing > 0 && differing * 2 >= judged {
        NodeDbVerdict::Mismatch { differing, judged }
    } else {
        NodeDbVerdict::Agrees
    }
}

/// Which keys to sample for the node ↔ DB check: up to `per_part` of the node's stale keys (the
/// ones a repair would reload) and up to `per_part` spread evenly over the rest, rows only
/// (`present[i]` false = a deleted key, which proves nothing about which DB is read).
#[must_use]
pub fn sample_indices(present: &[bool], stale: &[usize], per_part: usize) -> Vec<usize> {
    let mut out: Vec<usize> = stale
        .iter()
        .copied()
        .filter(|i| present.get(*i).copied().unwrap_or(false))
        .take(per_part)
        .collect();
    let rest: Vec<usize> = (0..present.len())
        .filter(|i| present[*i] && !out.contains(i))
        .collect();
    if !rest.is_empty() && per_part > 0 {
        let step = rest.len().div_ceil(per_part).max(1);
        out.extend(rest.iter().step_by(step).take(per_part));
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
