//! The repair invariant, checked from outside: a repair reloads caches and never writes a database.
//!
//! [`RowsGuard`] digests every row of the config tables (`config_info`, the beta/tag/gray tables
//! that exist, `his_config_info` and `config_tags_relation`) that a repair in a test's namespace
//! could touch, before and after, and fails on any difference. "Could touch" is the test's
//! namespace plus the test's groups in the default namespace (`''` and `public`): that is where
//! Nacos 3.x's `ConfigMigrateService.namespaceMigrate` copies and removes rows when a cluster sync
//! request looks foreign. A whole-table `CHECKSUM TABLE` would be simpler but cannot work on the
//! shared bed, where other tests write their own namespaces at the same time.

#![allow(dead_code)] // why: each test module uses a different subset.

use std::collections::BTreeMap;

const TABLES: [&str; 6] = [
    "config_info",
    "config_info_beta",
    "config_info_tag",
    "config_info_gray",
    "his_config_info",
    "config_tags_relation",
];

/// `table#id` → MD5 of every column of the row, for the rows in scope.
pub fn config_rows(dsn: &str, ns: &str, groups: &[&str]) -> BTreeMap<String, String> {
    let dsn = dsn.to_owned();
    let ns = ns.replace('\'', "''");
    let groups: Vec<String> = groups
        .iter()
        .map(|g| format!("'{}'", g.replace('\'', "''")))
        .collect();
    crate::ops::block(async move {
        use mysql_async::prelude::*;
        let pool = mysql_async::Pool::new(dsn.as_str());
        let mut c = pool.get_conn().await.unwrap();
        let mut out = BTreeMap::new();
        for table in TABLES {
            let cols: Vec<String> = c
                .exec(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
                    (table,),
                )
                .await
                .unwrap();
            if cols.is_empty() {
                continue;
            }
            let id = if cols.iter().any(|c| c == "nid") {
                "nid"
            } else {
                "id"
            };
            let all = cols
                .iter()
                .map(|c| format!("COALESCE(`{c}`, '<null>')"))
                .collect::<Vec<_>>()
                .join(", ");
            let in_default = if groups.is_empty() {
                String::new()
            } else {
                format!(
                    " OR (tenant_id IN ('', 'public') AND group_id IN ({}))",
                    groups.join(", ")
                )
            };
            let q = format!(
                "SELECT CONCAT('{table}#', `{id}`), MD5(CONCAT_WS(0x1f, {all})) FROM {table} WHERE tenant_id = '{ns}'{in_default}"
            );
            let rows: Vec<(String, String)> = c.query(q).await.unwrap();
            out.extend(rows);
        }
        drop(c);
        pool.disconnect().await.unwrap();
        out
    })
}

/// Rows in scope of one or more databases, taken before a repair; [`RowsGuard::assert_unchanged`]
/// after it.
pub struct RowsGuard {
    scopes: Vec<(String, String, Vec<String>)>,
    before: Vec<BTreeMap<String, String>>,
}

impl RowsGuard {
    /// Digest the rows of `ns` (and of `groups` in the default namespace) in each DB.
    pub fn new(dsns: &[&str], ns: &str, groups: &[&str]) -> RowsGuard {
        let scopes: Vec<(String, String, Vec<String>)> = dsns
            .iter()
            .map(|d| {
                (
                    (*d).to_owned(),
                    ns.to_owned(),
                    groups.iter().map(|g| (*g).to_owned()).collect(),
                )
            })
            .collect();
        let before = scopes.iter().map(Self::take).collect();
        RowsGuard { scopes, before }
    }

    fn take((dsn, ns, groups): &(String, String, Vec<String>)) -> BTreeMap<String, String> {
        let g: Vec<&str> = groups.iter().map(String::as_str).collect();
        config_rows(dsn, ns, &g)
    }

    /// Panic naming every row added, removed or changed since [`RowsGuard::new`].
    pub fn assert_unchanged(&self, what: &str) {
        for (scope, before) in self.scopes.iter().zip(&self.before) {
            let after = Self::take(scope);
            let mut diffs = Vec::new();
            for (k, v) in before {
                match after.get(k) {
                    None => diffs.push(format!("removed {k}")),
                    Some(w) if w != v => diffs.push(format!("changed {k}")),
                    Some(_) => {}
                }
            }
            diffs.extend(
                after
                    .keys()
                    .filter(|k| !before.contains_key(*k))
                    .map(|k| format!("added {k}")),
            );
            let dsn = scope.0.rsplit_once('@').map_or("db", |(_, h)| h);
            assert!(
                diffs.is_empty(),
                "{what} wrote the database {dsn} (namespace {}): {diffs:?}",
                scope.1
            );
            assert!(
                !before.is_empty(),
                "{what}: no row in scope in {dsn}: the guard would prove nothing"
            );
        }
    }
}
