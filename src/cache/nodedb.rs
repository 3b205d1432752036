//! Does a node read the database it was paired with? A sample of keys read through the node's
//! DB-backed detail view, compared with the configured DB, before any repair relies on that DB.
//!
//! `GET /v1/cs/configs?show=all` (`ConfigController.detailConfigInfo`, 1.x–2.x) and
//! `GET /v3/admin/cs/config` (3.x) read the row from the node's own database
//! (`findConfigAllInfo`), not from its cache: if they disagree with the configured DB, the node
//! is wired to another database, and its L2 findings and any reload would be about that one.

use super::plan::{node_db_verdict, sample_indices, DbSample, NodeDbVerdict};
use super::Expected;
use crate::source::nacos::{api_tenant, NacosNode};
use serde_json::Value;

/// Keys sampled from each part (the node's stale keys, and a spread over the rest).
const SAMPLE_PER_PART: usize = 5;

/// What the node's own DB holds for one key: `(content md5, modifyTime ms)`, `None` if no row.
async fn node_row(node: &NacosNode, e: &Expected) -> Option<Option<(String, Option<i64>)>> {
    let k = &e.key;
    let (path, params) = if node.is_v3() {
        (
            "/v3/admin/cs/config",
            vec![
                ("dataId", k.data_id.clone()),
                ("groupName", k.group.clone()),
                ("namespaceId", k.namespace.clone()),
            ],
        )
    } else {
        (
            "/v1/cs/configs",
            vec![
                ("show", "all".to_owned()),
                ("dataId", k.data_id.clone()),
                ("group", k.group.clone()),
                ("tenant", api_tenant(&k.namespace)),
            ],
        )
    };
    let (status, _, body) = node
        .request(reqwest::Method::GET, path, &params, &[])
        .await
        .ok()?;
    if status == 404 {
        return Some(None);
    }
    if status != 200 {
        return None;
    }
    // 2.x answers a missing row with an empty 200.
    if body.trim().is_empty() {
        return Some(None);
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    let row = if node.is_v3() { v.get("data")? } else { &v };
    if row.is_null() {
        return Some(None);
    }
    let content = row.get("content")?.as_str()?;
    let modified = row.get("modifyTime").and_then(Value::as_i64);
    Some(Some((crate::model::md5_hex(content), modified)))
}

/// Check one node against the configured DB on a sample of keys (`stale`: the node's flagged
/// keys, sampled first). Keys the node could not answer for are left out of the judgment.
pub async fn check(node: &NacosNode, expected: &[Expected], stale: &[usize]) -> NodeDbVerdict {
    let present: Vec<bool> = expected.iter().map(|e| !e.md5.is_empty()).collect();
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
