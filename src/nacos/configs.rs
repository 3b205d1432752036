//! Reading a namespace's configs with the fewest requests the node's version allows, and saying
//! which config fields it could not give (they are then not compared).
//!
//! | server | content, type, appName | desc | tags |
//! |---|---|---|---|
//! | Nacos 1.4.2+ / 2.x | v2 export, one zip per namespace | the export's `.metadata.yml` | one `show=all` per config only |
//! | Nacos 3.x | v3 admin export, one zip per namespace | the same | one v3 detail per config only |
//! | Nacos before 1.4.2 | list pages of 500 | one `show=all` per config only | the same |
//! | r-nacos | list pages of 500 (no type, appName) | the list pages (`ConfigInfoDto.desc`) | kept by none |
//!
//! A Java Nacos namespace of more than [`EXPORT_MAX_ROWS`] configs cannot be exported whole (the
//! server cuts every query there): it is listed for its row ids, then exported by id in chunks.

use super::dialect::{Call, Dialect, ServerKind};
use super::{parse, NacosNode, NodeError};
use crate::model::ConfigItem;
use crate::settings::ConfigMeta;
use std::collections::BTreeMap;

/// The most rows one query of a Java Nacos server returns: its `JdbcTemplate` is built with
/// `setMaxRows(50000)` (`ExternalDataSourceServiceImpl#init`, and the embedded
/// `LocalDataSourceServiceImpl`, 1.4 to 3.x), so one export of a namespace holding more is cut
/// short without a word. Such a namespace is exported by row ids, a chunk at a time.
pub const EXPORT_MAX_ROWS: u64 = 50_000;

/// How long the `ids` of one export may be once encoded (`,` is sent as `%2C`): the server's
/// Tomcat refuses a request head over 8 KiB (Spring Boot's default `max-http-header-size`,
/// which Nacos's `application.properties` leaves as it is), and the path, the other
/// parameters and the headers need the rest.
const EXPORT_IDS_BYTES: usize = 5_000;

/// Export answers parsed at once, in the whole process. Parsing is CPU-bound, so more than the
/// two cores of a small machine gains nothing, and each parse holds its namespace's contents
/// and the metadata YAML's whole event list (`serde_norway` loads a document before
/// deserializing it): measured with heaptrack at 100,000 configs in 4 namespaces per side,
/// 8 parses at once were 280 MB of the run's 338 MB peak.
static EXPORT_PARSES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Row ids cut into chunks whose `ids` parameter stays within `budget` bytes encoded (each id
/// costs its digits and a `%2C`), never an empty chunk.
#[must_use]
pub fn id_chunks(ids: impl IntoIterator<Item = u64>, budget: usize) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    let mut used = 0;
    for id in ids {
        let cost = id.to_string().len() + 3;
        match out.last_mut() {
            Some(chunk) if used + cost <= budget => chunk.push(id),
            _ => {
                out.push(vec![id]);
                used = 0;
            }
        }
        used += cost;
    }
    out
}

/// How a node's configs are read for a given [`ConfigMeta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigPlan {
    /// One export per namespace (with its count before and after).
    Export,
    /// The list pages only.
    List,
    /// The list pages, then one detail request per config (desc and tags; content on 3.x).
    ListThenDetail,
}

/// The plan for a server and setting, and the config fields it leaves unread with why.
#[must_use]
pub fn plan(kind: ServerKind, meta: ConfigMeta) -> (ConfigPlan, Vec<(&'static str, String)>) {
    let no_bulk = "no bulk endpoint (audit.config_meta = \"per-config\" reads them with one request per config)";
    let off = "audit.config_meta = \"off\"".to_owned();
    match (kind, meta) {
        (ServerKind::RNacos, ConfigMeta::Off) => {
            (ConfigPlan::List, vec![("desc", off.clone()), ("tags", off)])
        }
        // r-nacos keeps no tags (`ConfigValue` in `config/core.rs` has none).
        (ServerKind::RNacos, _) => (
            ConfigPlan::List,
            vec![("tags", "r-nacos keeps no config tags".to_owned())],
        ),
        (_, ConfigMeta::PerConfig) => (ConfigPlan::ListThenDetail, Vec::new()),
        // 3.x lists configs without content: the export is the one bulk form that has it.
        (k, ConfigMeta::Off) if k.exports_configs() => (
            ConfigPlan::Export,
            vec![("desc", off.clone()), ("tags", off)],
        ),
        (_, ConfigMeta::Off) => (ConfigPlan::List, vec![("desc", off.clone()), ("tags", off)]),
        (k, ConfigMeta::Bulk) if k.exports_configs() => {
            (ConfigPlan::Export, vec![("tags", no_bulk.to_owned())])
        }
        (_, ConfigMeta::Bulk) => (
            ConfigPlan::List,
            vec![("desc", no_bulk.to_owned()), ("tags", no_bulk.to_owned())],
        ),
    }
}

impl NacosNode {
    /// The plan for this node (its version is asked first, once).
    pub async fn config_plan(
        &self,
        meta: ConfigMeta,
    ) -> Result<(ConfigPlan, Vec<(&'static str, String)>), NodeError> {
        Ok(plan(self.kind().await?.1, meta))
    }

    /// Whether [`Self::config_by_key`] can give a config's content again (not on r-nacos).
    pub async fn gives_config_by_key(&self) -> bool {
        matches!(self.kind().await, Ok((_, k)) if k.has_config_detail())
    }

    /// One config by key from the DB-backed detail view, `None` when the node has no such
    /// config (2.x answers an empty 200, 3.x a 404). Not on r-nacos, whose `show=all` is the plain
    /// content ([`ServerKind::has_config_detail`]): an error there.
    pub async fn config_by_key(
        &self,
        key: &crate::model::ConfigKey,
    ) -> Result<Option<ConfigItem>, NodeError> {
        let Some((d, call, body)) = self.detail_answer(key).await? else {
            return Ok(None);
        };
        parse::config_item(d, &body, key)
            .map(Some)
            .map_err(|e| self.transport.shape_error(&call, e))
    }

    /// The DB-backed detail answer for `key`, `None` when the node has no such config (2.x
    /// answers an empty 200, 3.x a 404). An error on a server without that view (r-nacos, whose
    /// `show=all` is the plain content: [`ServerKind::has_config_detail`]) and on any other status.
    pub(super) async fn detail_answer(
        &self,
        key: &crate::model::ConfigKey,
    ) -> Result<Option<(Dialect, Call, String)>, NodeError> {
        if !self.kind().await?.1.has_config_detail() {
            return Err(self.transport.err(
                "this server has no DB-backed config detail view",
                false,
                None,
            ));
        }
        let (d, call, resp) = self.call(|d| d.config_detail(key)).await?;
        if resp.status == 404 || (resp.status == 200 && resp.body.trim().is_empty()) {
            return Ok(None);
        }
        if resp.status != 200 {
            return Err(self.transport.status_error(&call, &resp));
        }
        Ok(Some((d, call, resp.body)))
    }

    /// How many configs a namespace holds, as its listing says.
    async fn config_count(&self, namespace: &str) -> Result<(u64, Call), NodeError> {
        let (d, call, resp) = self.call(|d| d.config_count(namespace)).await?;
        let p = self.read(d, &call, &resp, |v| {
            let p = parse::config_page(d, v, namespace)?;
            parse::check_page(p.total, p.items.len(), 1).map(|()| p)
        })?;
        Ok((p.total, call))
    }

    /// Every config of a namespace from one export: content, type, appName and desc. The
    /// export has no total of its own, so the listing's count is asked before and after it and
    /// all three must agree (a config written meanwhile is a read error, as when paging).
    ///
    /// A namespace over [`EXPORT_MAX_ROWS`] is listed for its row ids first and exported by
    /// those, a chunk at a time, and every listed config must come back exactly once. So is a
    /// namespace whose single export the server fails with a 5xx after the retries.
    pub async fn configs_exported(&self, namespace: &str) -> Result<Vec<ConfigItem>, NodeError> {
        let (before, _) = self.config_count(namespace).await?;
        let (items, call) = if before <= EXPORT_MAX_ROWS {
            match self
                .export(|d: Dialect| d.config_export(namespace), namespace)
                .await
            {
                Ok(read) => read,
                // Mostly Nacos cancelling the export's SELECT at its query timeout
                // (`QUERYTIMEOUT`, 3 s by default: `ExternalDataSourceServiceImpl#init`) on a busy
                // DB: `config_info` has no index led by `tenant_id`, so the export scans the
                // whole table in one statement. By id it is primary-key lookups, a chunk each.
                Err(e) if e.status.is_some_and(|s| s >= 500) => {
                    tracing::warn!("{e}; reading namespace `{namespace}` by row ids instead");
                    self.export_by_ids(namespace).await?
                }
                Err(e) => return Err(e),
            }
        } else {
            self.export_by_ids(namespace).await?
        };
        let (after, count_call) = self.config_count(namespace).await?;
        if before != after {
            return Err(self.transport.err(
                format!(
                    "{}: the count of namespace `{namespace}` went from {before} to {after} while it was exported (changed while reading)",
                    count_call.describe()
                ),
                true,
                None,
            ));
        }
        if items.len() as u64 != after {
            return Err(self.transport.err(
                format!(
                    "{} counts {after} config(s) in namespace `{namespace}`, but {} holds {} (a truncated or inconsistent answer)",
                    count_call.describe(),
                    call.describe(),
                    items.len()
                ),
                true,
                None,
            ));
        }
        Ok(items)
    }

    /// One export answer, read.
    async fn export(
        &self,
        make: impl Fn(Dialect) -> Call,
        namespace: &str,
    ) -> Result<(Vec<ConfigItem>, Call), NodeError> {
        let (_, call, resp) = self.call(make).await?;
        if resp.status != 200 {
            return Err(self.transport.status_error(&call, &resp));
        }
        // What the entries may inflate to: the body cap again per MiB of zip, at least 1 GiB.
        let limit = self.transport.max_body.saturating_mul(16).max(1 << 30);
        let bytes = resp.bytes;
        // Never closed, so acquiring cannot fail.
        let _parse = EXPORT_PARSES.acquire().await;
        let items = tokio::task::spawn_blocking({
            let ns = namespace.to_owned();
            move || parse::export_zip(&bytes, &ns, limit)
        })
        .await
        .map_err(|e| {
            self.transport
                .err(format!("export parser: {e}"), false, None)
        })?
        .map_err(|e| self.transport.shape_error(&call, e))?;
        Ok((items, call))
    }

    /// A namespace too big for one export: its listing's row ids, exported in chunks (a few at
    /// a time; the node's semaphore bounds them too). An id selects a row whatever its
    /// namespace, so each answer must hold exactly the listed keys of its chunk.
    async fn export_by_ids(&self, namespace: &str) -> Result<(Vec<ConfigItem>, Call), NodeError> {
        use futures::stream::{self, StreamExt};
        let listed = self.config_ids(namespace).await?;
        let key_of: BTreeMap<u64, &(String, String)> =
            listed.iter().map(|(k, id)| (*id, k)).collect();
        if key_of.len() != listed.len() {
            return Err(self.transport.err(
                format!("the listing of namespace `{namespace}` gives two configs one row id (an inconsistent answer)"),
                true,
                None,
            ));
        }
        let chunks = id_chunks(key_of.keys().copied(), EXPORT_IDS_BYTES);
        let answers: Vec<Result<_, NodeError>> = stream::iter(chunks)
            .map(|ids| async move {
                let (items, call) = self
                    .export(|d: Dialect| d.config_export_ids(namespace, &ids), namespace)
                    .await?;
                Ok::<_, NodeError>((ids, items, call))
            })
            .buffer_unordered(4)
            .collect()
            .await;
        let mut out: BTreeMap<(String, String), ConfigItem> = BTreeMap::new();
        let mut last = None;
        for a in answers {
            let (ids, items, call) = a?;
            let want: std::collections::BTreeSet<&(String, String)> =
                ids.iter().map(|id| key_of[id]).collect();
            let answered = items.len();
            for it in items {
                let k = (it.key.group.clone(), it.key.data_id.clone());
                if !want.contains(&k) {
                    return Err(self.transport.err(
                        format!(
                            "{} answered `{}/{}`, which is not one of the {} config(s) of namespace `{namespace}` it was asked for (changed while reading, or an inconsistent answer)",
                            call.describe(),
                            crate::nacos::parse::shape::snippet(&k.0),
                            crate::nacos::parse::shape::snippet(&k.1),
                            ids.len()
                        ),
                        true,
                        None,
                    ));
                }
                out.insert(k, it);
            }
            if answered != ids.len() {
                return Err(self.transport.err(
                    format!(
                        "{} holds {answered} config(s) of the {} of namespace `{namespace}` asked for by id (changed while reading, or a truncated answer)",
                        call.describe(),
                        ids.len()
                    ),
                    true,
                    None,
                ));
            }
            last = Some(call);
        }
        let call = last.ok_or_else(|| {
            self.transport.err(
                format!("namespace `{namespace}` was counted over {EXPORT_MAX_ROWS} configs but lists none"),
                true,
                None,
            )
        })?;
        Ok((out.into_values().collect(), call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_cut_into_chunks_that_fit_a_request_head() {
        assert!(id_chunks([], 100).is_empty());
        // "7%2C" costs 4, "10%2C" 5.
        assert_eq!(
            id_chunks([7, 8, 9, 10, 11], 13),
            vec![vec![7, 8, 9], vec![10, 11]]
        );
        // An id longer than the budget still gets a chunk of its own, never an empty one.
        assert_eq!(id_chunks([123_456, 1], 4), vec![vec![123_456], vec![1]]);
        // 100,000 snowflake ids of 19 digits: every chunk within the budget, none lost.
        let ids: Vec<u64> = (0..100_000)
            .map(|i| 1_101_145_786_600_656_896 + i)
            .collect();
        let chunks = id_chunks(ids.iter().copied(), EXPORT_IDS_BYTES);
        assert!(chunks.iter().all(|c| c.len() * 22 <= EXPORT_IDS_BYTES));
        assert_eq!(chunks.concat(), ids);
        assert_eq!(chunks.len(), 100_000usize.div_ceil(EXPORT_IDS_BYTES / 22));
    }

    #[test]
    fn each_server_is_read_with_its_fewest_requests() {
        let n2 = ServerKind::Nacos(2, 3, 2);
        let (p, unread) = plan(n2, ConfigMeta::Bulk);
        assert_eq!(p, ConfigPlan::Export);
        assert_eq!(unread.iter().map(|x| x.0).collect::<Vec<_>>(), ["tags"]);
        assert_eq!(
            plan(n2, ConfigMeta::PerConfig),
            (ConfigPlan::ListThenDetail, vec![])
        );
        let (p, unread) = plan(n2, ConfigMeta::Off);
        assert_eq!(p, ConfigPlan::Export);
        assert_eq!(unread.len(), 2);
        let (p, unread) = plan(ServerKind::Nacos(3, 1, 0), ConfigMeta::Off);
        assert_eq!((p, unread.len()), (ConfigPlan::Export, 2));
        let (p, unread) = plan(ServerKind::Nacos(1, 4, 1), ConfigMeta::Bulk);
        assert_eq!((p, unread.len()), (ConfigPlan::List, 2));
        assert_eq!(
            plan(ServerKind::Nacos(1, 4, 2), ConfigMeta::Bulk).0,
            ConfigPlan::Export
        );
        let (p, unread) = plan(ServerKind::RNacos, ConfigMeta::PerConfig);
        assert_eq!(p, ConfigPlan::List);
        assert_eq!(unread.iter().map(|x| x.0).collect::<Vec<_>>(), ["tags"]);
    }
}
