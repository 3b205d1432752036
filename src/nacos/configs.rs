//! Reading a namespace's configs with the fewest requests the node's version allows, and saying
//! which config fields it could not give (they are then not compared).
//!
//! | server | content, type, appName | desc | tags |
//! |---|---|---|---|
//! | Nacos 1.4.2+ / 2.x | v2 export, one zip per namespace | the export's `.metadata.yml` | one `show=all` per config only |
//! | Nacos 3.x | v3 admin export, one zip per namespace | the same | one v3 detail per config only |
//! | Nacos before 1.4.2 | list pages of 500 | one `show=all` per config only | the same |
//! | r-nacos | list pages of 500 (no type, appName) | the list pages (`ConfigInfoDto.desc`) | kept by none |

use super::dialect::{Call, Dialect, ServerKind};
use super::{parse, NacosNode, NodeError};
use crate::model::ConfigItem;
use crate::settings::ConfigMeta;

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

    /// One config by key from the DB-backed detail view, `None` when the node has no such
    /// config (2.x answers an empty 200, 3.x a 404). Not on r-nacos, whose `show=all` is the plain
    /// content ([`ServerKind::has_config_detail`]): an error there.
    pub async fn config_by_key(
        &self,
        key: &crate::model::ConfigKey,
    ) -> Result<Option<ConfigItem>, NodeError> {
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
        parse::config_item(d, &resp.body, key)
            .map(Some)
            .map_err(|e| self.transport.shape_error(&call, e))
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
    pub async fn configs_exported(&self, namespace: &str) -> Result<Vec<ConfigItem>, NodeError> {
        let (before, _) = self.config_count(namespace).await?;
        let (_, call, resp) = self.call(|d: Dialect| d.config_export(namespace)).await?;
        if resp.status != 200 {
            return Err(self.transport.status_error(&call, &resp));
        }
        // What the entries may inflate to: the body cap again per MiB of zip, at least 1 GiB.
        let limit = self.transport.max_body.saturating_mul(16).max(1 << 30);
        let bytes = resp.bytes;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
