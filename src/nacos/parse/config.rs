//! Parsers of the config-side answers: namespaces, config list pages, config detail, the
//! listener probe and served configs.

use super::shape::{index, list, object, Shape};
use super::Page;
use crate::model::{canonical_namespace, ConfigItem, ConfigKey, Namespace, ProbeKey};
use crate::nacos::dialect::{api_tenant, Dialect};
use serde_json::Value;

/// A key that no one publishes, sent with a bogus md5 in every listener batch so the server
/// always has one difference to report and answers at once. Without it a server with nothing to
/// report may hold the request for the whole long-poll timeout (r-nacos 0.8.8 ignores
/// `Long-Pulling-Timeout-No-Hangup`).
pub const CANARY_DATA_ID: &str = "nacos-drift.probe-canary";

/// Namespaces of a namespace list answer: v1 `RestResult` `{"code": 200, "data": [...]}` (Nacos
/// `NamespaceController`, r-nacos `ConsoleResult`), v3 the envelope's `data` list.
pub fn namespaces(dialect: Dialect, answer: &Value) -> Shape<Vec<Namespace>> {
    let items = match dialect {
        Dialect::V3 => list(answer, "data")?,
        Dialect::V1 | Dialect::RNacos => {
            let o = object(answer, "")?;
            if o.has("code") && o.int("code")? != 200 {
                return Err(format!("`code` is {}, not 200", o.int("code")?));
            }
            o.list("data")?
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, n) in items.iter().enumerate() {
        let n = object(n, &index("data", i))?;
        out.push(Namespace {
            id: canonical_namespace(n.any_str("namespace")?),
            name: n.opt_str("namespaceShowName")?.to_owned(),
            desc: n.opt_str("namespaceDesc")?.to_owned(),
        });
    }
    // Nacos lists every namespace, the default one first (`NamespaceController#getNamespaces`,
    // 2.2+ `NamespaceOperationService#getNamespaceList`);
    // r-nacos only those the user may read (`query_namespace_list`), but never none.
    let has_default = out.iter().any(|n| n.id == "public");
    if dialect == Dialect::RNacos && out.is_empty() {
        return Err("the namespace list is empty".into());
    }
    if dialect != Dialect::RNacos && !has_default {
        return Err(format!(
            "the list of {} namespace(s) has no default namespace (Nacos always lists it)",
            out.len()
        ));
    }
    crate::model::normalise_namespaces(&mut out);
    Ok(out)
}

/// A config list page: v1 `Page<ConfigInfo>` (Nacos) or `ConfigSearchPage` (r-nacos), items
/// with content; v3 `Page<ConfigBasicInfo>` in the envelope, items without content (the detail
/// brings it). Every item must belong to the namespace asked for.
pub fn config_page(dialect: Dialect, answer: &Value, namespace: &str) -> Shape<Page<ConfigItem>> {
    let o = object(answer, if dialect == Dialect::V3 { "data" } else { "" })?;
    let total = o.count("totalCount")?;
    let items = o.list("pageItems")?;
    let (group_field, ns_field) = match dialect {
        Dialect::V3 => ("groupName", "namespaceId"),
        Dialect::V1 | Dialect::RNacos => ("group", "tenant"),
    };
    let want = canonical_namespace(namespace);
    let mut out = Vec::with_capacity(items.len());
    let mut without_desc = false;
    for (i, it) in items.iter().enumerate() {
        let it = object(it, &index(&o.at("pageItems"), i))?;
        // r-nacos lists desc with each config (`ConfigInfoDto.desc`, null when unset); Nacos
        // lists none (its `ConfigInfo` has no desc).
        let desc = if dialect == Dialect::RNacos {
            without_desc |= !it.has("desc");
            it.opt_str("desc")?.to_owned()
        } else {
            String::new()
        };
        let ns = it.opt_str(ns_field)?;
        if it.has(ns_field) && canonical_namespace(ns) != want {
            return Err(format!(
                "`{}` is `{ns}`, but namespace `{want}` was asked for",
                it.at(ns_field)
            ));
        }
        let content = match dialect {
            Dialect::V3 => None,
            Dialect::V1 | Dialect::RNacos => Some(it.any_str("content")?.to_owned()),
        };
        out.push(ConfigItem {
            key: ConfigKey {
                namespace: want.clone(),
                group: it.str(group_field)?.to_owned(),
                data_id: it.str("dataId")?.to_owned(),
                variant: String::new(),
            },
            md5: String::new(),
            content,
            r#type: it.opt_str("type")?.to_owned(),
            app: it.opt_str("appName")?.to_owned(),
            desc,
            tags: Vec::new(),
            modified_ms: None,
        });
    }
    Ok(Page {
        total,
        items: out,
        without_desc,
    })
}

/// The row id of each item of a config list page, in page order (`ConfigInfo.id` on v1,
/// `ConfigBasicInfo.id` on v3): what a config export takes as `ids`. r-nacos lists none.
pub fn config_ids(dialect: Dialect, answer: &Value) -> Shape<Vec<u64>> {
    let o = object(answer, if dialect == Dialect::V3 { "data" } else { "" })?;
    let items = o.list("pageItems")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        out.push(object(it, &index(&o.at("pageItems"), i))?.row_id("id")?);
    }
    Ok(out)
}

/// Fill desc and tags (and on 3.x content) from a config detail answer: v1 `ConfigAllInfo`
/// (`show=all`), v3 `ConfigDetailInfo` in the envelope. It must be the config asked for.
pub fn config_detail(dialect: Dialect, body: &str, item: &mut ConfigItem) -> Shape<()> {
    let v = super::answer(dialect, body)?;
    let d = object(&v, if dialect == Dialect::V3 { "data" } else { "" })?;
    let group_field = if dialect == Dialect::V3 {
        "groupName"
    } else {
        "group"
    };
    let (data_id, group) = (d.str("dataId")?, d.str(group_field)?);
    if data_id != item.key.data_id || group != item.key.group {
        return Err(format!(
            "the detail is of `{group}/{data_id}`, not of `{}/{}`",
            item.key.group, item.key.data_id
        ));
    }
    if dialect == Dialect::V3 {
        item.content = Some(d.any_str("content")?.to_owned());
    }
    item.desc = d.opt_str("desc")?.to_owned();
    item.tags = tags_of(d.opt_str("configTags")?);
    Ok(())
}

/// The object of a DB-backed detail answer (v1 top level, 3.x `data`), checked to be of `key`:
/// a node answering for another config is a wrong shape, not that config's row.
fn detail_of<'a>(
    dialect: Dialect,
    v: &'a serde_json::Value,
    key: &crate::model::ConfigKey,
) -> Shape<super::shape::Obj<'a>> {
    let d = object(v, if dialect == Dialect::V3 { "data" } else { "" })?;
    let group_field = if dialect == Dialect::V3 {
        "groupName"
    } else {
        "group"
    };
    let (data_id, group) = (d.str("dataId")?, d.str(group_field)?);
    if data_id != key.data_id || group != key.group {
        return Err(format!(
            "the detail is of `{group}/{data_id}`, not of `{}/{}`",
            key.group, key.data_id
        ));
    }
    Ok(d)
}

/// One config whole from its DB-backed detail view (v1 `show=all` → `ConfigAllInfo`, 3.x
/// `ConfigDetailInfo` in the envelope): content, type, appName, desc and tags, for the settling
/// re-check of a few keys. The md5 is left to be computed from the content.
pub fn config_item(
    dialect: Dialect,
    body: &str,
    key: &crate::model::ConfigKey,
) -> Shape<ConfigItem> {
    let v = super::answer(dialect, body)?;
    let d = detail_of(dialect, &v, key)?;
    Ok(ConfigItem {
        key: key.clone(),
        md5: String::new(),
        content: Some(d.any_str("content")?.to_owned()),
        r#type: d.opt_str("type")?.to_owned(),
        app: d.opt_str("appName")?.to_owned(),
        desc: d.opt_str("desc")?.to_owned(),
        tags: tags_of(d.opt_str("configTags")?),
        modified_ms: None,
    })
}

/// The row a DB-backed detail view shows for `key`: `(content, modifyTime ms)`. The node reads it
/// from its own database (`ConfigController.detailConfigInfo` / 3.x `ConfigAdminController`), so
/// it tells which database the node is wired to.
pub fn config_row(
    dialect: Dialect,
    body: &str,
    key: &crate::model::ConfigKey,
) -> Shape<(String, Option<i64>)> {
    let v = super::answer(dialect, body)?;
    let d = detail_of(dialect, &v, key)?;
    let content = d.any_str("content")?.to_owned();
    let modified = if d.has("modifyTime") {
        Some(d.int("modifyTime")?)
    } else {
        None
    };
    Ok((content, modified))
}

/// `configTags` ("a,b") as a sorted list.
fn tags_of(s: &str) -> Vec<String> {
    let mut tags: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}

/// The `Listening-Configs` body for the probe's entries, the canary last.
#[must_use]
pub fn listening_configs(keys: &[ProbeKey]) -> String {
    let mut body = String::with_capacity(keys.len() * 64 + 64);
    for ProbeKey { key, md5 } in keys {
        let tenant = api_tenant(&key.namespace);
        body.push_str(&key.data_id);
        body.push('\u{2}');
        body.push_str(&key.group);
        body.push('\u{2}');
        body.push_str(md5);
        if !tenant.is_empty() {
            body.push('\u{2}');
            body.push_str(&tenant);
        }
        body.push('\u{1}');
    }
    body.push_str(CANARY_DATA_ID);
    body.push_str("\u{2}DEFAULT_GROUP\u{2}0\u{1}");
    body
}

/// The indices (into `keys`) a listener answer names as changed, sorted. The answer is the
/// URL-encoded list `dataId%02group[%02tenant]%01...` (Nacos `MD5Util.compareMd5ResultString`);
/// one without the canary cannot be trusted (not a Nacos listener, or cut short), and neither
/// can one naming a key that was not asked about.
pub fn listener(keys: &[ProbeKey], answer: &str) -> Shape<Vec<usize>> {
    let index: std::collections::HashMap<(String, &str, &str), usize> = keys
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let k = &p.key;
            (
                (
                    api_tenant(&k.namespace),
                    k.group.as_str(),
                    k.data_id.as_str(),
                ),
                i,
            )
        })
        .collect();
    let decoded = urlencoding::decode(answer.trim())
        .map_err(|_| "the answer is not URL-encoded UTF-8".to_owned())?;
    let mut out = Vec::new();
    let mut canary = false;
    for entry in decoded.split('\u{1}').filter(|e| !e.is_empty()) {
        let parts: Vec<&str> = entry.split('\u{2}').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(format!(
                "`{}` is not a `dataId%02group[%02tenant]` entry",
                super::shape::snippet(entry)
            ));
        }
        if parts[0] == CANARY_DATA_ID {
            canary = true;
            continue;
        }
        let tenant = parts.get(2).copied().unwrap_or("");
        // 3.x names the default namespace `public` in its answer.
        let found = index
            .get(&(tenant.to_owned(), parts[1], parts[0]))
            .or_else(|| {
                (tenant == "public")
                    .then(|| index.get(&(String::new(), parts[1], parts[0])))
                    .flatten()
            });
        match found {
            Some(i) => out.push(*i),
            None => {
                return Err(format!(
                    "the answer names `{}`, which was not asked about",
                    super::shape::snippet(entry)
                ))
            }
        }
    }
    if !canary {
        return Err(
            "the answer does not include the canary key: cannot trust it (not a Nacos listener?)"
                .into(),
        );
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The md5 a node serves a config with: its `Content-MD5` header (Nacos and r-nacos send it; it
/// must be 32 hex digits) or the MD5 of the body.
pub fn served_md5(content_md5: Option<&str>, body: &str) -> Shape<String> {
    match content_md5 {
        Some(m) if m.len() == 32 && m.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(m.to_owned()),
        Some(m) => Err(format!(
            "`Content-MD5: {}` is not an MD5",
            super::shape::snippet(m)
        )),
        None => Ok(crate::model::md5_hex(body)),
    }
}
