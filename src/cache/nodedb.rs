//! Does a node read the database it was paired with? A sample of keys read through the node's
//! DB-backed detail view, compared with the configured DB, before any repair relies on that DB.
//!
//! `GET /v1/cs/configs?show=all` (`ConfigController.detailConfigInfo`, 1.x–2.x) and
//! `GET /v3/admin/cs/config` (3.x) read the row from the node's own database
//! (`findConfigAllInfo`), not from its cache: if they disagree with the configured DB, the node
//! is wired to another database, and its L2 findings and any reload would be about that one.

use super::plan::{node_db_verdict, sample_indices, DbSample, NodeDbVerdict};
use super::Expected;
use crate::nacos::NacosNode;

/// Keys sampled from each part (the node's stale keys, and a spread over the rest).
const SAMPLE_PER_PART: usize = 5;

/// What the node's own DB holds for one key: `(content md5, modifyTime ms)`, `None` if no row;
/// `None` outside when the node could not answer (left out of the judgment).
async fn node_row(node: &NacosNode, e: &Expected) -> Option<Option<(String, Option<i64>)>> {
    node.db_row(&e.key).await.ok()
}

/// Check one node against the configured DB on a sample of keys (`stale`: the node's flagged
/// keys, sampled first). Keys the node could not answer for are left out of the judgment.
pub async fn check(node: &NacosNode, expected: &[Expected], stale: &[usize]) -> NodeDbVerdict {
    // Only formal keys: the detail view reads `config_info`, not the variant tables.
    let present: Vec<bool> = expected
        .iter()
        .map(|e| !e.md5.is_empty() && e.key.variant.is_empty())
        .collect();
    let picks = sample_indices(&present, stale, SAMPLE_PER_PART);
    let rows = futures::future::join_all(picks.iter().map(|i| node_row(node, &expected[*i]))).await;
    let samples: Vec<DbSample> = picks
        .iter()
        .zip(rows)
        .filter_map(|(i, r)| {
            let r = r?;
            Some(DbSample {
                configured_md5: expected[*i].md5.clone(),
                configured_modified_ms: expected[*i].modified_ms,
                node_md5: r.as_ref().map(|(m, _)| m.clone()),
                node_modified_ms: r.and_then(|(_, t)| t),
            })
        })
        .collect();
    node_db_verdict(&samples)
}
