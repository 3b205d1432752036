//! Users, user → role bindings and role → resource permissions compared (L1 from the DBs, L3
//! through `/v1/auth/*` where a side has no DB).
//!
//! These are cluster-wide. A run restricted with `--namespace` compares what concerns its
//! namespaces only: the permissions on them (a resource is `<namespace id>:<group>:<what>`, Nacos
//! `PermissionInfo`), the roles holding such a permission, and the users bound to those roles.
//! A password is compared by a digest of its stored hash and never shown.

use super::Scope;
use crate::accounts::{AuthTables, Permission};
use crate::finding::{Code, Finding, Layer};
use crate::model::canonical_namespace;
use std::collections::{BTreeMap, BTreeSet};

/// Namespace shown for cluster-wide items (users, roles).
pub const CLUSTER: &str = "*";

/// The namespace a permission's resource names (source terms for the source side), or `*` when
/// it names none.
fn resource_ns(resource: &str, target: bool, scope: &Scope) -> String {
    match resource.split_once(':') {
        Some((ns, _)) if ns != "*" => {
            let ns = canonical_namespace(ns);
            if target {
                scope.to_source(&ns)
            } else {
                ns
            }
        }
        _ => CLUSTER.to_owned(),
    }
}

/// A permission in source terms: `(namespace, role, resource with the source namespace, action)`.
type PermKey = (String, String, String, String);

fn perm_key(p: &Permission, target: bool, scope: &Scope) -> PermKey {
    let ns = resource_ns(&p.resource, target, scope);
    let resource = match p.resource.split_once(':') {
        Some((raw, rest)) if target && ns != CLUSTER && canonical_namespace(raw) != ns => {
            // The target's namespace id mapped back (`[namespace_map]`): the same grant.
            let shown = if ns == "public" && raw.is_empty() {
                ""
            } else {
                &ns
            };
            format!("{shown}:{rest}")
        }
        _ => p.resource.clone(),
    };
    (ns, p.role.clone(), resource, p.action.clone())
}

/// Compare two sides' auth tables; nothing when either side has none (the report says why).
#[must_use]
pub fn compare(
    source: Option<&AuthTables>,
    target: Option<&AuthTables>,
    scope: &Scope,
    layer: Layer,
) -> Vec<Finding> {
    let (Some(s), Some(t)) = (source, target) else {
        return Vec::new();
    };
    let perms = |a: &AuthTables, target: bool| -> BTreeSet<PermKey> {
        a.permissions
            .iter()
            .map(|p| perm_key(p, target, scope))
            .filter(|(ns, ..)| {
                if ns == CLUSTER {
                    !scope.restricted()
                } else {
                    scope.namespace_in_scope(ns)
                }
            })
            .collect()
    };
    // A side without permissions (r-nacos): none compared, and nothing to scope users by, so a
    // restricted run compares users and roles whole (the report says so).
    let scoped =
        scope.restricted() && s.permissions_not_read.is_none() && t.permissions_not_read.is_none();
    let (sp, tp) = if s.permissions_not_read.is_none() && t.permissions_not_read.is_none() {
        (perms(s, false), perms(t, true))
    } else {
        (BTreeSet::new(), BTreeSet::new())
    };
    // Restricted: only the roles holding a permission on an audited namespace, on either side.
    let roles_in: Option<BTreeSet<&str>> = scoped.then(|| {
        sp.iter()
            .chain(tp.iter())
            .map(|(_, role, ..)| role.as_str())
            .collect()
    });
    let role_ok = |r: &str| roles_in.as_ref().is_none_or(|set| set.contains(r));
    let bindings = |a: &'_ AuthTables| -> BTreeSet<(String, String)> {
        a.roles
            .iter()
            .filter(|b| role_ok(&b.role))
            .map(|b| (b.username.clone(), b.role.clone()))
            .collect()
    };
    let (sr, tr) = (bindings(s), bindings(t));
    let users_in: Option<BTreeSet<&str>> = scoped.then(|| {
        sr.iter()
            .chain(tr.iter())
            .map(|(u, _)| u.as_str())
            .collect()
    });
    let users = |a: &'_ AuthTables| -> BTreeMap<String, Option<String>> {
        a.users
            .iter()
            .filter(|u| {
                users_in
                    .as_ref()
                    .is_none_or(|set| set.contains(u.username.as_str()))
            })
            .map(|u| (u.username.clone(), u.password_sha256.clone()))
            .collect()
    };
    let (su, tu) = (users(s), users(t));
    let mut out = Vec::new();
    let mk = |code: Code, ns: &str, kind: &str, name: &str, detail: String| {
        let mut f = Finding::new(code, layer, ns, kind, name);
        f.detail = detail;
        f
    };
    for (u, sh) in &su {
        match tu.get(u) {
            None => out.push(mk(
                Code::UserMissing,
                CLUSTER,
                "users",
                u,
                "user exists on the source only: an application logging in with it fails on the target".into(),
            )),
            Some(th) => {
                if let (Some(a), Some(b)) = (sh, th) {
                    if a != b {
                        let mut f = mk(
                            Code::UserPasswordDiffers,
                            CLUSTER,
                            "users",
                            u,
                            "the stored password hashes differ (neither is shown): the source's password does not log in on the target".into(),
                        );
                        f.fields = vec!["password".into()];
                        out.push(f);
                    }
                }
            }
        }
    }
    for u in tu.keys().filter(|u| !su.contains_key(*u)) {
        out.push(mk(
            Code::UserExtra,
            CLUSTER,
            "users",
            u,
            "user exists on the target only".into(),
        ));
    }
    let role_name = |(u, r): &(String, String)| format!("{u} → {r}");
    for b in sr.difference(&tr) {
        out.push(mk(
            Code::RoleMissing,
            CLUSTER,
            "roles",
            &role_name(b),
            format!("user `{}` has role `{}` on the source only", b.0, b.1),
        ));
    }
    for b in tr.difference(&sr) {
        out.push(mk(
            Code::RoleExtra,
            CLUSTER,
            "roles",
            &role_name(b),
            format!("user `{}` has role `{}` on the target only", b.0, b.1),
        ));
    }
    let perm_name = |(_, role, res, action): &PermKey| format!("{role}: {res} {action}");
    for p in sp.difference(&tp) {
        out.push(mk(
            Code::PermissionMissing,
            &p.0,
            "permissions",
            &perm_name(p),
            format!(
                "role `{}` may `{}` on `{}` on the source only{}",
                p.1,
                p.3,
                p.2,
                target_resource_note(p, scope)
            ),
        ));
    }
    for p in tp.difference(&sp) {
        out.push(mk(
            Code::PermissionExtra,
            &p.0,
            "permissions",
            &perm_name(p),
            format!(
                "role `{}` may `{}` on `{}` on the target only",
                p.1, p.3, p.2
            ),
        ));
    }
    out
}

/// Where a mapped namespace's grant was looked for on the target.
fn target_resource_note((ns, ..): &PermKey, scope: &Scope) -> String {
    if ns == CLUSTER {
        return String::new();
    }
    let t = scope.to_target(ns);
    if &t == ns {
        String::new()
    } else {
        format!(" (looked for on the target namespace `{t}`)")
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
