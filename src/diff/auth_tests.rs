//! Unit tests of the auth comparison: each code, the password never shown, `--namespace` scoping
//! and `[namespace_map]` on permission resources.

use super::*;
use crate::accounts::{RoleBinding, User};
use crate::settings::Settings;

fn tables(
    users: &[(&str, &str)],
    roles: &[(&str, &str)],
    perms: &[(&str, &str, &str)],
) -> AuthTables {
    AuthTables {
        users: users
            .iter()
            .map(|(u, h)| User {
                username: (*u).into(),
                password_sha256: Some((*h).into()),
            })
            .collect(),
        roles: roles
            .iter()
            .map(|(u, r)| RoleBinding {
                username: (*u).into(),
                role: (*r).into(),
            })
            .collect(),
        permissions: perms
            .iter()
            .map(|(r, res, a)| Permission {
                role: (*r).into(),
                resource: (*res).into(),
                action: (*a).into(),
            })
            .collect(),
        permissions_not_read: None,
    }
}

fn codes(fs: &[Finding]) -> Vec<(String, String)> {
    let mut v: Vec<_> = fs
        .iter()
        .map(|f| (f.code.as_str().to_owned(), f.name.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn every_kind_of_account_drift() {
    let s = tables(
        &[("app", "h1"), ("ops", "h2"), ("gone", "h3")],
        &[("app", "R_APP"), ("ops", "R_OPS")],
        &[("R_APP", "prod:*:*", "rw"), ("R_OPS", "ops:*:*", "r")],
    );
    let t = tables(
        &[("app", "h1"), ("ops", "DIFFERENT"), ("new", "h4")],
        &[("app", "R_APP"), ("new", "R_NEW")],
        &[("R_APP", "prod:*:*", "rw"), ("R_NEW", "prod:*:*", "r")],
    );
    let scope = Scope::new(&Settings::default());
    let fs = compare(Some(&s), Some(&t), &scope, Layer::L1);
    assert_eq!(
        codes(&fs),
        [
            ("permission-extra", "R_NEW: prod:*:* r"),
            ("permission-missing", "R_OPS: ops:*:* r"),
            ("role-extra", "new → R_NEW"),
            ("role-missing", "ops → R_OPS"),
            ("user-extra", "new"),
            ("user-missing", "gone"),
            ("user-password-differs", "ops"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let text = format!("{fs:?}");
    assert!(
        !text.contains("DIFFERENT") && !text.contains("h2"),
        "{text}"
    );
    // A side without auth tables compares nothing (the report says so).
    assert!(compare(Some(&s), None, &scope, Layer::L1).is_empty());
    // Without hashes (the API) passwords are not compared.
    let mut no_hash = t.clone();
    for u in &mut no_hash.users {
        u.password_sha256 = None;
    }
    let fs = compare(Some(&s), Some(&no_hash), &scope, Layer::L3);
    assert!(fs.iter().all(|f| f.code != Code::UserPasswordDiffers));
}

#[test]
fn a_namespace_restricted_run_compares_what_concerns_its_namespaces() {
    let s = tables(
        &[("app", "h1"), ("other", "h2"), ("nacos", "a")],
        &[
            ("app", "R_APP"),
            ("other", "R_OTHER"),
            ("nacos", "ROLE_ADMIN"),
        ],
        &[("R_APP", "mine:*:*", "rw"), ("R_OTHER", "theirs:*:*", "rw")],
    );
    let t = tables(&[("nacos", "b")], &[("nacos", "ROLE_ADMIN")], &[]);
    let settings = Settings {
        namespaces: vec!["mine".into()],
        ..Settings::default()
    };
    let fs = compare(Some(&s), Some(&t), &Scope::new(&settings), Layer::L1);
    assert_eq!(
        codes(&fs),
        [
            ("permission-missing", "R_APP: mine:*:* rw"),
            ("role-missing", "app → R_APP"),
            ("user-missing", "app"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let perm = fs.iter().find(|f| f.code == Code::PermissionMissing);
    assert_eq!(perm.unwrap().namespace, "mine");
}

/// r-nacos has no permissions: none compared, and a restricted run compares users and roles
/// whole (there is nothing to scope them by).
#[test]
fn a_side_without_permissions_compares_users_and_roles_whole() {
    let mut s = tables(
        &[("app", "h1"), ("admin", "a")],
        &[("app", "DEVELOPER"), ("admin", "MANAGER")],
        &[],
    );
    let mut t = tables(&[("admin", "b")], &[("admin", "MANAGER")], &[]);
    for a in [&mut s, &mut t] {
        a.permissions_not_read = Some("r-nacos".into());
    }
    s.permissions.push(Permission {
        role: "X".into(),
        resource: "mine:*:*".into(),
        action: "rw".into(),
    });
    let settings = Settings {
        namespaces: vec!["mine".into()],
        ..Settings::default()
    };
    let fs = compare(Some(&s), Some(&t), &Scope::new(&settings), Layer::L3);
    assert_eq!(
        codes(&fs),
        [
            ("role-missing", "app → DEVELOPER"),
            ("user-missing", "app"),
            ("user-password-differs", "admin"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

#[test]
fn permissions_follow_the_namespace_map() {
    let s = tables(&[], &[], &[("R", "old:*:*", "rw")]);
    let t = tables(&[], &[], &[("R", "new:*:*", "rw")]);
    let mut settings = Settings::default();
    settings.namespace_map.insert("old".into(), "new".into());
    let fs = compare(Some(&s), Some(&t), &Scope::new(&settings), Layer::L1);
    assert!(fs.is_empty(), "{fs:?}");
}
