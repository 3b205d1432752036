//! Capturing one side: reads its DB and/or its Nacos nodes concurrently into a `SideSnapshot`.
//!
//! Read failures do not stop the capture: they are recorded as `CaptureError`s and become
//! `source-error` findings, so a partial audit is reported as incomplete, never as clean.

use crate::model::{ApiSnapshot, CaptureError, DbSnapshot, DigestRow, Side, SideSnapshot};
use crate::nacos::{ConfigPlan, NacosNode};
use crate::settings::{Settings, SideSettings};
use crate::{db, nacos};
use futures::stream::{self, StreamExt};
use std::sync::Arc;

/// The run's pool for a side's DB, or the reason it could not be had, recorded as a capture error.
fn open_db<'a>(
    handle: &'a db::Handle,
    dsn: &str,
    errors: &mut Vec<CaptureError>,
) -> Option<&'a db::NacosDb> {
    match handle {
        Ok(db) => Some(db),
        Err(e) => {
            errors.push(CaptureError {
                origin: dsn.to_owned(),
                namespace: None,
                message: e.0.clone(),
            });
            None
        }
    }
}

/// One side's handles for a stage: its node clients and its DB pool (both built once per run).
#[derive(Clone, Copy)]
pub struct SideHandles<'a> {
    /// The side's node clients.
    pub nodes: &'a [Arc<NacosNode>],
    /// The side's DB pool (`None`: no DB configured, or this stage does not read it).
    pub db: Option<&'a db::Handle>,
    /// Read the side's accounts through the auth API (L1 cannot compare them).
    pub accounts_by_api: bool,
    /// Keep each config's MD5 and drop its content once read (an audit: content is fetched
    /// again for the few keys that differ); `false` keeps it (a snapshot file carries it).
    pub api_digests_only: bool,
}

/// Which namespaces (in this side's own ids) to read.
pub type NamespaceFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A DB tenant id → the source-space namespace it is compared as (for compact key hashes).
pub type NamespaceMapper = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// What a compact L1 scan needs besides the side: how its tenants map to source namespaces, and
/// the content digest both sides agreed on.
#[derive(Clone)]
pub struct Compact {
    /// Tenant id → source-space namespace.
    pub mapper: NamespaceMapper,
    /// In-DB content digest (the same on both sides).
    pub digest: db::ContentDigest,
    /// The audit's namespaces in this DB's own ids (None: all), so the servers digest only those.
    pub only: Option<Vec<String>>,
}

/// The content digest both DBs can compute: CRC32 + CRC32C when both have them and the settings
/// allow it, else MD5. A DB that cannot be reached here gets MD5; its capture reports the error.
pub async fn agree_digest(
    settings: &Settings,
    source: Option<&db::Handle>,
    target: Option<&db::Handle>,
) -> db::ContentDigest {
    use db::ContentDigest;
    if settings.db_digest == crate::settings::DbDigest::Md5 {
        return ContentDigest::Md5;
    }
    async fn probe(handle: Option<&db::Handle>) -> Option<bool> {
        handle?.as_ref().ok()?.supports_crc().await.ok()
    }
    let (a, b) = tokio::join!(probe(source), probe(target));
    if a == Some(true) && b == Some(true) {
        ContentDigest::Crc
    } else {
        ContentDigest::Md5
    }
}

/// Compact L1 scan: namespaces in full, config rows as digests only (see [`db::DigestRow`]).
async fn capture_db_compact(
    dsn: &str,
    handle: &db::Handle,
    wanted: NamespaceFilter,
    compact: Compact,
) -> DbSnapshot {
    let mut snap = DbSnapshot {
        origin: dsn.to_owned(),
        content_digest: Some(compact.digest.name().to_owned()),
        ..DbSnapshot::default()
    };
    let Compact {
        mapper,
        digest,
        only,
    } = compact;
    let Some(db) = open_db(handle, dsn, &mut snap.errors) else {
        return snap;
    };
    let result = async {
        let (tables, namespaces) = db.tables_and_namespaces().await?;
        let w = wanted.clone();
        let m = mapper.clone();
        let ns = move |tenant: &str| {
            let canon = crate::model::canonical_namespace(tenant);
            w(&canon).then(|| m(&canon))
        };
        let digests = db.digests(&tables, digest, only.as_deref(), &ns).await?;
        Ok::<_, db::DbError>((namespaces, tables, digests))
    }
    .await;
    snap.tls = db.encrypted();
    match result {
        Ok((namespaces, _tables, digests)) => {
            snap.namespaces = namespaces.into_iter().filter(|n| wanted(&n.id)).collect();
            snap.rows_scanned = Some(digests.len());
            snap.digests = digests;
        }
        Err(e) => snap.errors.push(CaptureError {
            origin: dsn.to_owned(),
            namespace: None,
            message: e.0,
        }),
    }
    db::auth::capture(db, &mut snap).await;
    snap
}

/// Narrow two compact DB snapshots to the rows whose digests differ, and read those rows in full.
///
/// Both sides' digests are sorted by key hash (rayon) and merged; equal rows are dropped without
/// ever holding their strings. What is left is compared exactly like a full scan.
pub async fn narrow_compact(
    source: &mut SideSnapshot,
    target: &mut SideSnapshot,
    source_db: Option<&db::Handle>,
    target_db: Option<&db::Handle>,
) {
    use rayon::slice::ParallelSliceMut;
    let (Some(s), Some(t)) = (source.db.as_mut(), target.db.as_mut()) else {
        return;
    };
    if s.rows_scanned.is_none()
        || t.rows_scanned.is_none()
        || !s.errors.is_empty()
        || !t.errors.is_empty()
    {
        return;
    }
    let (sd, td) = (
        std::mem::take(&mut s.digests),
        std::mem::take(&mut t.digests),
    );
    let (sd, td) = tokio::task::spawn_blocking(move || {
        let (mut sd, mut td) = (sd, td);
        rayon::join(
            || sd.par_sort_unstable_by_key(|r| r.key),
            || td.par_sort_unstable_by_key(|r| r.key),
        );
        (sd, td)
    })
    .await
    .unwrap_or_default();
    let (sids, tids) = differing_rows(&sd, &td);
    async fn fetch(
        handle: Option<&db::Handle>,
        ids: Vec<(u8, u64)>,
    ) -> Result<Vec<crate::model::ConfigItem>, db::DbError> {
        let db = match handle {
            Some(h) => h.as_ref().map_err(Clone::clone)?,
            None => return Err(db::DbError("no database configured".into())),
        };
        let mut conn = db.conn().await?;
        let tables = db.tables(&mut conn).await?;
        drop(conn);
        db.items_by_id(&tables, &ids).await
    }
    let (a, b) = tokio::join!(fetch(source_db, sids), fetch(target_db, tids));
    match a {
        Ok(items) => s.configs = items,
        Err(e) => s.errors.push(CaptureError {
            origin: s.origin.clone(),
            namespace: None,
            message: e.0,
        }),
    }
    match b {
        Ok(items) => t.configs = items,
        Err(e) => t.errors.push(CaptureError {
            origin: t.origin.clone(),
            namespace: None,
            message: e.0,
        }),
    }
}

/// `(table, id)` of a config row.
type RowId = (u8, u64);

/// The compact scan's merge: walking both sides' digests, sorted by key, the `(table, id)` rows
/// to read in full on each side: keys on one side only, and keys whose content or metadata
/// digest differs (both rows). Rows equal on both sides are never read again.
fn differing_rows(sd: &[DigestRow], td: &[DigestRow]) -> (Vec<RowId>, Vec<RowId>) {
    let (mut sids, mut tids) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < sd.len() || j < td.len() {
        match (sd.get(i), td.get(j)) {
            (Some(a), Some(b)) if a.key == b.key => {
                if a.content != b.content || a.meta != b.meta {
                    sids.push((a.table, a.id));
                    tids.push((b.table, b.id));
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.key < b.key => {
                sids.push((a.table, a.id));
                i += 1;
            }
            (Some(_), Some(b)) => {
                tids.push((b.table, b.id));
                j += 1;
            }
            (Some(a), None) => {
                sids.push((a.table, a.id));
                i += 1;
            }
            (None, Some(b)) => {
                tids.push((b.table, b.id));
                j += 1;
            }
            (None, None) => break,
        }
    }
    (sids, tids)
}

/// The settling re-check of L1: the rows (every variant) of just these `(namespace, group,
/// dataId)` keys, in this DB's own namespace ids, with the DB's namespaces; what the first pass
/// counted and kept for later layers (rows scanned, deleted keys, watermark) is carried over.
pub async fn reread_db(
    conf: &SideSettings,
    handle: Option<&db::Handle>,
    wanted: NamespaceFilter,
    keys: &[crate::model::FormalKey],
    first: &DbSnapshot,
) -> DbSnapshot {
    let mut snap = DbSnapshot {
        origin: first.origin.clone(),
        content_digest: first.content_digest.clone(),
        rows_scanned: first.rows_scanned,
        deleted: first.deleted.clone(),
        max_his_nid: first.max_his_nid,
        tls: first.tls,
        ..DbSnapshot::default()
    };
    let (Some(dsn), Some(handle)) = (&conf.db, handle) else {
        return snap;
    };
    let Some(db) = open_db(handle, dsn, &mut snap.errors) else {
        return snap;
    };
    let result = async {
        let (tables, namespaces) = db.tables_and_namespaces().await?;
        let ids = db.ids_by_keys(&tables, keys).await?;
        let items = db.items_by_id(&tables, &ids).await?;
        Ok::<_, db::DbError>((namespaces, items))
    }
    .await;
    snap.tls = db.encrypted();
    match result {
        Ok((namespaces, items)) => {
            snap.namespaces = namespaces.into_iter().filter(|n| wanted(&n.id)).collect();
            snap.configs = items;
        }
        Err(e) => snap.errors.push(CaptureError {
            origin: dsn.clone(),
            namespace: None,
            message: e.0,
        }),
    }
    db::auth::capture(db, &mut snap).await;
    snap
}

/// The node clients of both sides, built once per run and shared by every stage (capture,
/// settle re-check, probe, client check): each node logs in once and is asked its version once,
/// and a node found down in one stage is not asked again by the next.
pub struct Nodes {
    /// Source nodes.
    pub source: Vec<Arc<NacosNode>>,
    /// Target nodes.
    pub target: Vec<Arc<NacosNode>>,
}

impl Nodes {
    /// Build both sides' clients.
    #[must_use]
    pub fn new(settings: &Settings) -> Self {
        Nodes {
            source: nodes(&settings.source, settings),
            target: nodes(&settings.target, settings),
        }
    }

    /// One side's clients.
    #[must_use]
    pub fn side(&self, side: Side) -> &[Arc<NacosNode>] {
        match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        }
    }
}

/// Build the node clients of a side.
#[must_use]
pub fn nodes(side: &SideSettings, settings: &Settings) -> Vec<Arc<NacosNode>> {
    let http = nacos::transport::http_client_tls(
        settings.timeout_secs,
        side.nacos_ca_file.as_deref(),
        side.nacos_tls_insecure_skip_verify,
    )
    .unwrap_or_else(|e| {
        // The CA file was read when the settings were checked; if it changed since, the nodes
        // are still verified against the system roots.
        tracing::warn!("TLS: {e}; using the system roots only");
        nacos::http_client(settings.timeout_secs)
    });
    side.nacos
        .iter()
        .map(|u| {
            Arc::new(
                NacosNode::new(
                    http.clone(),
                    u,
                    side.nacos_username.clone(),
                    side.nacos_password.clone(),
                    settings.concurrency,
                    settings.retries,
                )
                .with_max_body(settings.max_body_bytes)
                .with_version(side.nacos_version.clone())
                .with_config_meta(settings.config_meta),
            )
        })
        .collect()
}

/// Capture a side from whatever it has configured: its DB, and its API through `nodes` (the
/// run's clients of this side).
///
/// `with_api` is false when the other side has no nodes: L3 cannot be compared then, and a full
/// API read (every config, one detail request each) would be wasted.
///
/// `also` names namespaces to scan even if the side does not list them (a namespace row lost on the
/// target still has its configs and services, which should not then be reported missing as well).
#[allow(clippy::too_many_arguments)] // why: each argument a different piece of the run.
pub async fn capture(
    side: Side,
    conf: &SideSettings,
    handles: SideHandles<'_>,
    wanted: NamespaceFilter,
    also: &[String],
    compact: Option<Compact>,
    with_api: bool,
) -> SideSnapshot {
    let nodes = handles.nodes;
    let db = async {
        match (&conf.db, handles.db, compact) {
            (Some(dsn), Some(h), Some(c)) => {
                Some(capture_db_compact(dsn, h, wanted.clone(), c).await)
            }
            (Some(dsn), Some(h), None) => Some(capture_db(dsn, h, wanted.clone()).await),
            _ => None,
        }
    };
    let api = async {
        if conf.nacos.is_empty() || !with_api {
            None
        } else {
            Some(capture_api(side, nodes, wanted.clone(), also, handles.api_digests_only).await)
        }
    };
    let (db, mut api) = tokio::join!(db, api);
    // Accounts through the API only where L1 cannot compare them (a side without a database).
    if let Some(a) = api.as_mut().filter(|_| handles.accounts_by_api) {
        nacos::auth_api::capture(nodes, a, conf.rnacos_console.as_deref()).await;
    }
    SideSnapshot {
        schema_version: crate::model::SNAPSHOT_SCHEMA_VERSION,
        side: Some(side),
        db,
        api,
    }
}

async fn capture_db(dsn: &str, handle: &db::Handle, wanted: NamespaceFilter) -> DbSnapshot {
    let mut snap = DbSnapshot {
        origin: dsn.to_owned(),
        content_digest: Some(db::ContentDigest::Md5.name().to_owned()),
        ..DbSnapshot::default()
    };
    let Some(db) = open_db(handle, dsn, &mut snap.errors) else {
        return snap;
    };
    let result = async {
        let (tables, namespaces) = db.tables_and_namespaces().await?;
        let configs = db.configs(&tables).await?;
        let deleted = if tables
            .iter()
            .any(|t| t.eq_ignore_ascii_case("his_config_info"))
        {
            db.deleted(0).await?
        } else {
            (Vec::new(), None)
        };
        Ok::<_, db::DbError>((namespaces, configs, deleted))
    }
    .await;
    snap.tls = db.encrypted();
    match result {
        Ok((namespaces, configs, (deleted, max_nid))) => {
            snap.namespaces = namespaces.into_iter().filter(|n| wanted(&n.id)).collect();
            snap.configs = configs
                .into_iter()
                .filter(|c| wanted(&c.key.namespace))
                .collect();
            snap.deleted = deleted
                .into_iter()
                .filter(|k| wanted(&k.namespace))
                .collect();
            snap.max_his_nid = max_nid;
        }
        Err(e) => snap.errors.push(CaptureError {
            origin: dsn.to_owned(),
            namespace: None,
            message: e.0,
        }),
    }
    db::auth::capture(db, &mut snap).await;
    snap
}

mod api;
pub use api::capture_api;
pub(crate) use api::{recheck_api, ApiRecheck};

#[cfg(test)]
mod tests {
    use super::{differing_rows, DigestRow};

    /// A digest row: key, content digest byte, meta hash, id (table 0 on the source, 1 on the
    /// target, so that the side a row came from shows in the answer).
    fn row(key: u128, content: u8, meta: u64, id: u64, table: u8) -> DigestRow {
        DigestRow {
            key,
            content: [content; 16],
            meta,
            id,
            table,
        }
    }

    #[test]
    fn the_compact_merge_reads_only_rows_that_differ_or_exist_on_one_side() {
        // (case, source rows as (key, content, meta, id), target rows, source ids read, target ids read)
        type Rows = &'static [(u128, u8, u64, u64)];
        type Case = (&'static str, Rows, Rows, &'static [u64], &'static [u64]);
        let table: [Case; 8] = [
            ("both empty", &[], &[], &[], &[]),
            (
                "equal rows are not read",
                &[(1, 7, 0, 10)],
                &[(1, 7, 0, 20)],
                &[],
                &[],
            ),
            (
                "content differs: both rows",
                &[(1, 7, 0, 10)],
                &[(1, 8, 0, 20)],
                &[10],
                &[20],
            ),
            (
                "metadata differs: both rows",
                &[(1, 7, 1, 10)],
                &[(1, 7, 2, 20)],
                &[10],
                &[20],
            ),
            ("source only", &[(1, 7, 0, 10)], &[], &[10], &[]),
            ("target only", &[], &[(1, 7, 0, 20)], &[], &[20]),
            (
                "interleaved keys",
                &[(1, 7, 0, 10), (3, 7, 0, 11), (5, 7, 0, 12)],
                &[(2, 7, 0, 20), (3, 7, 0, 21), (6, 7, 0, 22)],
                &[10, 12],
                &[20, 22],
            ),
            (
                "tails after the other side ends",
                &[(1, 7, 0, 10), (8, 7, 0, 11), (9, 7, 0, 12)],
                &[(1, 9, 0, 20)],
                &[10, 11, 12],
                &[20],
            ),
        ];
        for (case, s, t, want_s, want_t) in table {
            let sd: Vec<DigestRow> = s.iter().map(|&(k, c, m, id)| row(k, c, m, id, 0)).collect();
            let td: Vec<DigestRow> = t.iter().map(|&(k, c, m, id)| row(k, c, m, id, 1)).collect();
            let (sids, tids) = differing_rows(&sd, &td);
            let ids = |v: &[(u8, u64)], table: u8| -> Vec<u64> {
                assert!(v.iter().all(|(t, _)| *t == table), "{case}: wrong side");
                v.iter().map(|(_, id)| *id).collect()
            };
            assert_eq!(ids(&sids, 0), want_s, "{case}: source");
            assert_eq!(ids(&tids, 1), want_t, "{case}: target");
        }
    }
}
