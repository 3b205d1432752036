//! The `[fix]` settings: how `audit --fix` repairs stale node caches.

/// How to repair.
#[derive(Debug, Clone, Default)]
pub struct FixOptions {
    /// Repair at all.
    pub fix: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Full reload of every stale node, whatever its stale share.
    pub full: bool,
    /// Repairs may touch the source side too.
    pub fix_source: bool,
    /// Stale share (percent of the keys a node serves) above which a node gets a full reload instead of per-key reloads (100 = never).
    pub full_threshold_pct: u64,
    /// Most repair requests per second per node.
    pub rate_per_sec: u64,
    /// How long to wait for a reload to show before calling a key still stale.
    pub verify_secs: u64,
    /// `fix.allow_untrusted_rows`: reload caches even from target rows that disagree with the source.
    pub allow_untrusted_rows: bool,
}
