//! Beta, tag and gray variants at L2: what each node should serve for them, how to ask a node for
//! the variant (as a client its rule matches), and how a stale variant can be reloaded.
//!
//! A node picks the variant by the caller: the listener and the config GET compare against the
//! beta md5 when the caller's IP (`RequestUtil.getRemoteIp`: `X-Forwarded-For`, then
//! `X-Real-IP`, then the socket) is in the beta IP list, and against a tag md5 when the
//! `Vipserver-Tag` header (the GET also takes a `tag` parameter) names a tag the node holds
//! (`ConfigCacheService.getContentMd5`, 2.0–2.4; `MD5Util.compareMd5`). In 2.5+/3.x every variant
//! is a gray rule matched against the labels `ClientIp` and `Vipserver-Tag`: only the `beta`
//! (IP list) and `tag` rule types ship (`BetaGrayRule`, `TagGrayRule`); another type matches on
//! labels nacos-drift cannot send, and is left out (named under "not compared").
//!
//! A full reload never reloads variants (`DumpService.dumpAll` queues `DumpAllTask`, formal
//! configs only, in every version read): they are reloaded one key at a time.

use super::plan::{semver, trust, Mechanism, Trust};
use super::Expected;
use crate::db::RuleText;
use crate::diff::Scope;
use crate::model::{ConfigKey, Side, SideSnapshot};
pub use crate::nacos::variants::Via;
use std::collections::HashMap;

/// How a variant was asked for, for finding details.
#[must_use]
pub fn asked_as(via: &Via) -> String {
    match via {
        Via::Formal => "a plain client".to_owned(),
        Via::ClientIp(ip) => format!("a client at beta IP {ip}"),
        Via::Tag(t) => format!("a client with tag {t}"),
    }
}

/// Source md5 per variant key, in target namespace terms.
pub type Reference = HashMap<ConfigKey, String>;

/// The source DB's md5 of every variant row, keyed in target namespace terms; `None` when the
/// source has no DB read whole (variants are read from the DB only).
#[must_use]
pub fn source_reference(source: &SideSnapshot, scope: &Scope) -> Option<Reference> {
    let db = source.db.as_ref()?;
    if !db.errors.is_empty() || db.rows_scanned.is_some() {
        return None;
    }
    Some(
        db.configs
            .iter()
            .filter(|c| !c.key.variant.is_empty())
            .map(|c| {
                let mut k = c.key.clone();
                k.namespace = scope.to_target(&k.namespace);
                (k, c.md5.clone())
            })
            .collect(),
    )
}

/// The first address of a beta IP list a client could be: the list is split on `,` and matched
/// exactly (`ConfigCacheService.dumpBeta`, `BetaGrayRule.parse`), and the forwarded address is
/// trimmed (`RequestUtil.getRemoteIp`), so an entry with blanks around it matches no client.
fn first_ip(ips: &str) -> Option<String> {
    ips.split(',')
        .find(|ip| !ip.is_empty() && ip.trim() == *ip)
        .map(str::to_owned)
}

/// How to ask a node for this variant, or why it cannot be asked.
///
/// # Errors
/// The reason, for the "not compared" line.
pub fn via_of(variant: &str, rule: Option<&RuleText>) -> Result<Via, String> {
    let from_gray = |json: &str| -> Result<Via, String> {
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|_| "its gray_rule is not the JSON of a gray rule".to_owned())?;
        let expr = v["expr"].as_str().unwrap_or_default();
        match v["type"].as_str().unwrap_or_default() {
            "beta" => first_ip(expr)
                .map(Via::ClientIp)
                .ok_or_else(|| "its beta rule lists no usable IP".to_owned()),
            "tag" if !expr.is_empty() => Ok(Via::Tag(expr.to_owned())),
            t => Err(format!(
                "its gray rule type `{t}` matches labels nacos-drift cannot send (only `beta` and `tag` rules ship with Nacos)"
            )),
        }
    };
    match (variant.split_once(':'), rule) {
        (_, Some(RuleText::Gray(json))) => from_gray(json),
        (None, Some(RuleText::BetaIps(ips))) if variant == "beta" => first_ip(ips)
            .map(Via::ClientIp)
            .ok_or_else(|| "its beta_ips lists no usable IP".to_owned()),
        (Some(("tag", t)), None) if !t.is_empty() => Ok(Via::Tag(t.to_owned())),
        _ => Err("its rule was not found in the DB".to_owned()),
    }
}

/// What each node of a side should serve for its variants (from its DB: the scanned rows and
/// their rules), and a reason per variant key left out. Empty when the side has no DB.
#[must_use]
pub fn expected_variants(
    snap: &SideSnapshot,
    scope: &Scope,
    side: Side,
    reference: Option<&Reference>,
    rules: &[(ConfigKey, RuleText)],
) -> (Vec<Expected>, Vec<(ConfigKey, String)>) {
    let Some(db) = snap.db.as_ref().filter(|d| d.errors.is_empty()) else {
        return (Vec::new(), Vec::new());
    };
    let rules: HashMap<&ConfigKey, &RuleText> = rules.iter().map(|(k, r)| (k, r)).collect();
    let (mut out, mut left) = (Vec::new(), Vec::new());
    for c in db.configs.iter().filter(|c| !c.key.variant.is_empty()) {
        let ns = scope.source_ns(side, &c.key.namespace);
        if !scope.config_in_scope(&ns, &c.key.group, &c.key.data_id) {
            continue;
        }
        match via_of(&c.key.variant, rules.get(&c.key).copied()) {
            Ok(via) => out.push(Expected {
                key: c.key.clone(),
                md5: c.md5.clone(),
                modified_ms: c.modified_ms,
                trust: if side == Side::Source {
                    Trust::Trusted
                } else {
                    trust(
                        &c.md5,
                        reference.map(|r| r.get(&c.key).map_or("", String::as_str)),
                    )
                },
                via,
            }),
            Err(why) => left.push((c.key.clone(), why)),
        }
    }
    (out, left)
}

/// How far L2 reached a side's variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cover {
    /// The side's nodes were not probed.
    NotProbed,
    /// Probed, with the variants (and their rules) read from the side's DB.
    FromDb,
    /// Probed without a DB: variants are read from a DB only.
    NoDb,
}

/// Variant keys named one by one in "not compared" before the rest are counted.
const NAMED: usize = 10;

/// The "not compared" lines of the variants: a probed side without a DB, and each variant key
/// left out (`left`, with why); `rows` counts a side's variant rows in scope.
#[must_use]
pub fn notes(covers: [(Side, Cover, usize); 2], left: &[(Side, ConfigKey, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (side, cover, rows) in covers {
        match cover {
            Cover::NoDb => out.push(format!(
                "beta/tag/gray variants on the {side}: what each node serves for them is not compared \
                 (nacos-drift reads variants and their rules from a side's database, and the {side} has none \
                 configured; r-nacos has no variants)"
            )),
            Cover::NotProbed if rows > 0 => out.push(format!(
                "beta/tag/gray variants on the {side} ({rows} row(s) in scope): what each node serves \
                 for them is not compared (its nodes were not probed); they are compared at L1 only"
            )),
            _ => {}
        }
    }
    for (side, k, why) in left.iter().take(NAMED) {
        out.push(format!(
            "variant {} on the {side}: what each node serves is not compared at L2: {why}",
            k.display()
        ));
    }
    if left.len() > NAMED {
        out.push(format!(
            "... and {} more variant(s) not compared at L2",
            left.len() - NAMED
        ));
    }
    out
}

/// How one variant key is reloaded on a node of `version`, or why it cannot be.
///
/// # Errors
/// Why no per-key reload reaches this variant on this version, with the remedy.
pub fn mechanism(version: &str, variant: &str, grpc: bool) -> Result<Mechanism, String> {
    let Some(v) = semver(version) else {
        return Err(format!(
            "server `{version}` offers no known cache reload (r-nacos serves configs from its own store)"
        ));
    };
    let tag = variant.starts_with("tag:");
    if v < (2, 2, 1) {
        // `CommunicationController.notifyConfigInfo`: header `isBeta: true`, or parameter `tag`.
        return Ok(Mechanism::DataChange);
    }
    if !grpc {
        return Err(format!("Nacos {version} reloads a variant only through the cluster gRPC sync, which is not available here (a full reload dumps formal configs only): restart the node"));
    }
    if tag && v < (2, 3, 0) {
        // 2.2.x `ConfigChangeClusterSyncRequestHandler.handle` dumps the beta or the formal
        // config and drops the request's tag.
        return Err(format!("Nacos {version}'s cluster sync drops the tag (ConfigChangeClusterSyncRequestHandler), and a full reload dumps formal configs only: restart the node, or publish the tag release again"));
    }
    Ok(Mechanism::GrpcSync)
}

#[cfg(test)]
#[path = "variants_tests.rs"]
mod tests;
