//! Nacos 3.x schema specifics of the DB reader: gray rows named like the 2.x beta/tag rows they replace, and the default namespace read where 3.x serves it from.
//!
//! A 3.x database keeps every gray release in `config_info_gray` and has no beta/tag tables
//! (upstream 3.x `mysql-schema.sql`). A beta release is the gray row `beta`, a tag release the gray
//! row `tag_<tag>`: the names 3.x gives them itself when it migrates 2.x tables
//! (`ConfigMigrateService.checkMigrateBeta` / `checkMigrateTag`, `BetaGrayRule.TYPE_BETA`,
//! `TagGrayRule.TYPE_TAG`), so they are compared as `beta` and `tag:<tag>` with a 2.x side.
//!
//! The default namespace is `public` in 3.x: a blank tenant is read as `public`
//! (`NamespaceUtil.processNamespaceParameter`), and in its namespace-compatible mode (on by
//! default, `nacos.config.namespace.compatible.mode`) 3.x keeps a copy of every `public` row under
//! tenant `''` for 2.x servers reading the same DB, written by user `nacos_namespace_migrate`
//! (`ConfigMigrateService.publishConfigMigrate`, `doCheckNamespaceMigrate`). So on a 3.x DB the
//! `public` rows are what the cluster serves, and the `''` rows are copies: read only the former,
//! each key once. A `''` row with no `public` row beside it is not served by 3.x, and is reported
//! as missing, as the cluster's API reports it.
//!
//! A DB that still has `config_info_beta` (a 2.5 server, or 3.x upgraded in place: it then reads
//! both) is read as a 2.x one.

/// The user 3.x writes its own `''` copies of `public` rows as (`ConfigMigrateService.
/// NAMESPACE_MIGRATE_SRC_USER`): rows of this user never count as a conflict.
const MIGRATE_USER: &str = "nacos_namespace_migrate";

/// At most this many conflicting keys are listed per table (each is a finding).
const CONFLICTS_MAX: usize = 1000;

impl super::NacosDb {
    /// Keys of the default namespace whose `public` row and `''` row differ (md5), neither
    /// written by 3.x's own migration: the rows `ConfigMigrateService.namespaceMigratePreCheck`
    /// counts (`ConfigMigrateMapper.getConfigConflictCount` / `getConfigGrayConflictCount`, the
    /// same conditions), and while any exists a 3.x node in its namespace-compatible mode (the
    /// default) refuses to start on this DB. Asked of a DB that has `config_info_gray` (3.x, or
    /// 2.5+ a 3.x node may be upgraded onto); empty for others.
    pub async fn namespace_conflicts(
        &self,
        tables: &[String],
    ) -> Result<Vec<crate::model::ConfigKey>, super::DbError> {
        use mysql_async::prelude::Queryable;
        let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
        if !has("config_info_gray") {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let id = conn.id();
        let mut out = Vec::new();
        for (table, gray) in [("config_info", false), ("config_info_gray", true)] {
            // Gray rows named as the scan names them on this DB (`gray_variant`; its bare
            // `gray_name` is ci1's in the select list).
            let (name, same) = if gray {
                (gray_variant(tables), " AND ci2.gray_name = ci1.gray_name")
            } else {
                ("''", "")
            };
            let sql = super::tagged(&format!(
                "SELECT ci1.group_id, ci1.data_id, {name} FROM {table} ci1 \
                 WHERE ci1.tenant_id = 'public' AND (ci1.src_user <> '{MIGRATE_USER}' OR ci1.src_user IS NULL) \
                 AND EXISTS (SELECT 1 FROM {table} ci2 WHERE ci2.data_id = ci1.data_id \
                 AND ci2.group_id = ci1.group_id{same} AND ci2.md5 <> ci1.md5 AND ci2.tenant_id = '' \
                 AND (ci2.src_user <> '{MIGRATE_USER}' OR ci2.src_user IS NULL)) \
                 ORDER BY ci1.group_id, ci1.data_id LIMIT {CONFLICTS_MAX}"
            ));
            let what = format!("checking {table} for `public`/'' conflicts");
            let rows: Vec<(Option<String>, Option<String>, Option<String>)> =
                self.bounded(id, &what, conn.query(sql)).await?;
            out.extend(rows.into_iter().map(|(g, d, v)| crate::model::ConfigKey {
                namespace: "public".into(),
                group: g.unwrap_or_default(),
                data_id: d.unwrap_or_default(),
                variant: v.unwrap_or_default(),
            }));
        }
        Ok(out)
    }
}

/// Whether these tables are the 3.x schema: `config_info_gray` without the 2.x beta/tag tables.
pub fn is_v3(tables: &[String]) -> bool {
    let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
    has("config_info_gray") && !has("config_info_beta") && !has("config_info_tag")
}

/// The select-list expression of a `config_info_gray` row's variant.
pub fn gray_variant(tables: &[String]) -> &'static str {
    if is_v3(tables) {
        "CASE WHEN gray_name = 'beta' THEN 'beta' \
         WHEN gray_name LIKE 'tag\\_%' THEN CONCAT('tag:', SUBSTRING(gray_name, 5)) \
         ELSE CONCAT('gray:', gray_name) END"
    } else {
        "CONCAT('gray:', gray_name)"
    }
}

/// `where` (empty, or ` WHERE …`) with the 3.x condition added: no `''` copies of the default namespace.
pub fn and_where(where_: &str, tables: &[String]) -> String {
    if !is_v3(tables) {
        return where_.to_owned();
    }
    let cond = "IFNULL(tenant_id, '') <> ''";
    if where_.trim().is_empty() {
        format!(" WHERE {cond}")
    } else {
        format!("{where_} AND {cond}")
    }
}

/// The tenant ids under which the default namespace's rows are read.
pub fn default_tenants(tables: &[String]) -> &'static [&'static str] {
    if is_v3(tables) {
        &["public"]
    } else {
        &["", "public"]
    }
}

/// On a 3.x DB, the gray row holding a variant: `(gray_name)`; `None` for the formal config.
pub fn gray_name(variant: &str) -> Option<String> {
    match variant.split_once(':') {
        None if variant.is_empty() => None,
        None => Some(variant.to_owned()),
        Some(("tag", t)) => Some(format!("tag_{t}")),
        Some((_, g)) => Some(g.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_a_db_without_beta_and_tag_tables_is_read_the_3x_way() {
        let v3 = t(&["config_info", "config_info_gray", "his_config_info"]);
        let v25 = t(&[
            "config_info",
            "config_info_beta",
            "config_info_tag",
            "config_info_gray",
        ]);
        let v23 = t(&["config_info", "config_info_beta", "config_info_tag"]);
        assert!(is_v3(&v3));
        assert!(!is_v3(&v25) && !is_v3(&v23));
        assert_eq!(and_where("", &v23), "");
        assert_eq!(and_where(" WHERE id = 1", &v25), " WHERE id = 1");
        assert_eq!(and_where("", &v3), " WHERE IFNULL(tenant_id, '') <> ''");
        assert_eq!(
            and_where(" WHERE tenant_id IN ('', 'public')", &v3),
            " WHERE tenant_id IN ('', 'public') AND IFNULL(tenant_id, '') <> ''"
        );
        assert_eq!(default_tenants(&v3), &["public"]);
        assert_eq!(default_tenants(&v23), &["", "public"]);
        assert!(gray_variant(&v3).contains("'tag:'"));
        assert_eq!(gray_variant(&v25), "CONCAT('gray:', gray_name)");
    }

    #[test]
    fn variants_map_to_the_gray_names_3x_migrates_them_to() {
        assert_eq!(gray_name(""), None);
        assert_eq!(gray_name("beta").as_deref(), Some("beta"));
        assert_eq!(gray_name("tag:blue").as_deref(), Some("tag_blue"));
        assert_eq!(gray_name("gray:canary").as_deref(), Some("canary"));
    }
}
