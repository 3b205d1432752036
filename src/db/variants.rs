//! The rules that pick who sees a beta, tag or gray variant: `config_info_beta.beta_ips` and
//! `config_info_gray.gray_rule`, so that L2 can ask each node for a variant as a client the rule
//! matches would (the digests themselves come from the scan, [`super::NacosDb::configs`]).
//!
//! A tag row needs no rule: a client sends the tag (`Vipserver-Tag`), and the tag is in the
//! variant's name. On a 3.x DB the gray names map back to `beta` / `tag:<t>` as in [`super::v3`].

use super::{canonical_namespace, tagged, v3, DbError, NacosDb};
use crate::model::ConfigKey;
use mysql_async::prelude::*;

/// `(tenant_id, group_id, data_id, name, rule)` of one rule row.
type RuleRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// How a variant's audience is written in the DB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleText {
    /// `config_info_beta.beta_ips` (comma-separated, as `ConfigCacheService.dumpBeta` splits it).
    BetaIps(String),
    /// `config_info_gray.gray_rule`: the JSON of `ConfigGrayPersistInfo` (`type`, `version`,
    /// `expr`, `priority`; `GrayRuleManager.deserializeConfigGrayPersistInfo`).
    Gray(String),
}

impl NacosDb {
    /// The rule of every beta and gray row (keys with their variant, canonical namespaces).
    pub async fn variant_rules(&self) -> Result<Vec<(ConfigKey, RuleText)>, DbError> {
        let mut conn = self.conn().await?;
        let tables = self.tables(&mut conn).await?;
        let tables = tables.as_slice();
        let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
        let is_v3 = v3::is_v3(tables);
        let mut out = Vec::new();
        let id = conn.id();
        if has("config_info_beta") {
            let sql = tagged(&format!(
                "SELECT tenant_id, group_id, data_id, 'beta', beta_ips FROM config_info_beta{}",
                v3::and_where("", tables)
            ));
            let rows: Vec<RuleRow> = self
                .bounded(id, "reading config_info_beta", conn.query(sql))
                .await?;
            out.extend(rows.into_iter().map(|r| {
                let (key, rule) = row_key(r, |_| "beta".to_owned());
                (key, RuleText::BetaIps(rule))
            }));
        }
        if has("config_info_gray") {
            let sql = tagged(&format!(
                "SELECT tenant_id, group_id, data_id, gray_name, gray_rule FROM config_info_gray{}",
                v3::and_where("", tables)
            ));
            let rows: Vec<RuleRow> = self
                .bounded(id, "reading config_info_gray", conn.query(sql))
                .await?;
            out.extend(rows.into_iter().map(|r| {
                let (key, rule) = row_key(r, |name| gray_variant(name, is_v3));
                (key, RuleText::Gray(rule))
            }));
        }
        Ok(out)
    }
}

fn row_key(
    (t, g, d, name, rule): RuleRow,
    variant: impl Fn(&str) -> String,
) -> (ConfigKey, String) {
    (
        ConfigKey {
            namespace: canonical_namespace(&t.unwrap_or_default()),
            group: g.unwrap_or_default(),
            data_id: d.unwrap_or_default(),
            variant: variant(&name.unwrap_or_default()),
        },
        rule.unwrap_or_default(),
    )
}

/// The variant name of a gray row, as [`v3::gray_variant`] spells it in SQL.
fn gray_variant(name: &str, is_v3: bool) -> String {
    if !is_v3 {
        return format!("gray:{name}");
    }
    match name.strip_prefix("tag_") {
        _ if name == "beta" => "beta".to_owned(),
        Some(t) => format!("tag:{t}"),
        None => format!("gray:{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_names_map_as_the_scan_maps_them() {
        assert_eq!(gray_variant("beta", true), "beta");
        assert_eq!(gray_variant("tag_blue", true), "tag:blue");
        assert_eq!(gray_variant("canary", true), "gray:canary");
        assert_eq!(gray_variant("beta", false), "gray:beta");
    }
}
