//! Capacity quotas compared at L1 (`tenant_capacity`, `group_capacity`): a quota set on the
//! source and not on the target, or set differently, changes what the target lets applications
//! publish (level `warn` by default: nothing breaks until a limit is reached).
//!
//! Namespace quotas follow `--namespace` and `[namespace_map]`; group quotas are cluster-wide and
//! compared only in a run that is not restricted to namespaces.

use super::Scope;
use crate::accounts::{Quota, Quotas};
use crate::finding::{Code, Finding, Layer};
use std::collections::BTreeMap;

/// Compare two sides' quotas; nothing when either side has none (the report says why).
#[must_use]
pub fn compare(source: Option<&Quotas>, target: Option<&Quotas>, scope: &Scope) -> Vec<Finding> {
    let (Some(s), Some(t)) = (source, target) else {
        return Vec::new();
    };
    let tenants = |q: &[Quota], target: bool| -> BTreeMap<String, Quota> {
        q.iter()
            .map(|x| {
                let id = if target {
                    scope.to_source(&x.id)
                } else {
                    x.id.clone()
                };
                (id, x.clone())
            })
            .filter(|(id, _)| scope.namespace_in_scope(id))
            .collect()
    };
    let mut out = one_kind(
        &tenants(&s.tenants, false),
        &tenants(&t.tenants, true),
        "tenant_capacity",
        true,
    );
    if !scope.restricted() {
        let groups = |q: &[Quota]| -> BTreeMap<String, Quota> {
            q.iter().map(|x| (x.id.clone(), x.clone())).collect()
        };
        out.extend(one_kind(
            &groups(&s.groups),
            &groups(&t.groups),
            "group_capacity",
            false,
        ));
    }
    out
}

fn one_kind(
    s: &BTreeMap<String, Quota>,
    t: &BTreeMap<String, Quota>,
    table: &str,
    per_namespace: bool,
) -> Vec<Finding> {
    let finding = |code: Code, id: &str| {
        // A namespace quota is shown under its namespace; a group quota under its group.
        if per_namespace {
            Finding::new(code, Layer::L1, id, "*", table)
        } else {
            Finding::new(code, Layer::L1, "*", id, table)
        }
    };
    let mut out = Vec::new();
    for (id, sq) in s {
        match t.get(id) {
            None => {
                let mut f = finding(Code::CapacityMissing, id);
                f.detail = format!(
                    "{table} row on the source only ({}): the target applies its defaults",
                    limits_text(sq)
                );
                out.push(f);
            }
            Some(tq) => {
                let diffs: Vec<String> = sq
                    .limits()
                    .iter()
                    .zip(tq.limits())
                    .filter(|(a, b)| a.1 != b.1)
                    .map(|(a, b)| format!("{}: {} → {}", a.0, a.1, b.1))
                    .collect();
                if !diffs.is_empty() {
                    let mut f = finding(Code::CapacityDiffers, id);
                    f.fields = diffs
                        .iter()
                        .map(|d| d.split(':').next().unwrap_or(d).to_owned())
                        .collect();
                    f.detail = diffs.join("; ");
                    out.push(f);
                }
            }
        }
    }
    for (id, tq) in t.iter().filter(|(id, _)| !s.contains_key(*id)) {
        let mut f = finding(Code::CapacityDiffers, id);
        f.fields = vec!["row".into()];
        f.detail = format!(
            "{table} row on the target only ({}): the source applies its defaults",
            limits_text(tq)
        );
        out.push(f);
    }
    out
}

fn limits_text(q: &Quota) -> String {
    q.limits()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
