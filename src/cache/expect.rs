//! What each node of a side should serve, and whether each target row may be loaded into caches
//! (it agrees with the source): the L2 expectations, built from the captured snapshots.

use super::{Expected, Trust};
use crate::diff::Scope;
use crate::model::{FormalKey, Side, SideSnapshot};
use std::collections::HashMap;

/// Source md5 per formal config key, in target namespace terms.
pub type Reference = HashMap<FormalKey, String>;

/// The source's content md5 of every formal config, keyed in target namespace terms: from the
/// source DB when it was read whole, else from the source API; `None` when the source could not
/// be read. A target row is only loaded into caches when it agrees with this.
pub fn source_reference(source: &SideSnapshot, scope: &Scope) -> Option<Reference> {
    let configs = match (&source.db, &source.api) {
        (Some(db), _) if db.errors.is_empty() && db.rows_scanned.is_none() => &db.configs,
        (_, Some(api)) if api.errors.is_empty() => &api.configs,
        _ => return None,
    };
    Some(
        configs
            .iter()
            .filter(|c| c.key.variant.is_empty())
            .map(|c| {
                let md5 = match (&c.content, c.md5.is_empty()) {
                    (Some(content), true) => crate::model::md5_hex(content),
                    _ => c.md5.clone(),
                };
                (
                    c.key
                        .formal()
                        .in_namespace(scope.to_target(&c.key.namespace)),
                    md5,
                )
            })
            .collect(),
    )
}

/// What each node of a side should serve: its DB's rows (formal configs) and deleted keys, or the
/// API's content without a DB; with the DB's name when it comes from one. Target rows are
/// trusted only when they agree with the source (`reference`).
pub fn expected_for(
    snap: &SideSnapshot,
    scope: &Scope,
    side: Side,
    reference: Option<&Reference>,
) -> (Vec<Expected>, Option<String>) {
    let in_scope = |k: &crate::model::ConfigKey| {
        let ns = scope.source_ns(side, &k.namespace);
        scope.config_in_scope(&ns, &k.group, &k.data_id)
    };
    let (configs, deleted, db) = match (&snap.db, &snap.api) {
        (Some(db), _) if db.errors.is_empty() => {
            (&db.configs, db.deleted.as_slice(), Some(db.origin.clone()))
        }
        (_, Some(api)) => (&api.configs, &[][..], None),
        (Some(db), None) => (&db.configs, db.deleted.as_slice(), Some(db.origin.clone())),
        (None, None) => return (Vec::new(), None),
    };
    let trust = |k: &crate::model::ConfigKey, md5: &str| {
        if side == Side::Source {
            return Trust::Trusted;
        }
        let source_md5 = reference.map(|r| r.get(&k.formal()).map_or("", String::as_str));
        super::plan::trust(md5, source_md5)
    };
    let mut out: Vec<Expected> = configs
        .iter()
        .filter(|c| c.key.variant.is_empty() && in_scope(&c.key))
        .map(|c| Expected {
            key: c.key.clone(),
            md5: c.md5.clone(),
            modified_ms: c.modified_ms,
            trust: trust(&c.key, &c.md5),
            via: super::Via::Formal,
        })
        .collect();
    out.extend(deleted.iter().filter(|k| in_scope(k)).map(|k| Expected {
        key: k.clone(),
        md5: String::new(),
        modified_ms: None,
        trust: trust(k, ""),
        via: super::Via::Formal,
    }));
    (out, db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use serde_json::json;

    fn snap(db: Option<serde_json::Value>, api: Option<serde_json::Value>) -> SideSnapshot {
        serde_json::from_value(json!({"schema_version": 1, "db": db, "api": api})).unwrap()
    }

    fn row(ns: &str, id: &str, md5: &str) -> serde_json::Value {
        json!({"namespace": ns, "group": "G", "data_id": id, "md5": md5})
    }

    fn trust_of(expected: &[Expected], id: &str) -> Trust {
        expected.iter().find(|e| e.key.data_id == id).unwrap().trust
    }

    #[test]
    fn target_rows_are_trusted_only_when_they_agree_with_the_source() {
        let mut settings = Settings::default();
        settings
            .namespace_map
            .insert("prod".into(), "prod-new".into());
        let scope = Scope::new(&settings);
        let source_db = json!({"origin": "s", "namespaces": [], "configs": [
            row("prod", "same", "a"), row("prod", "tampered", "b"), row("prod", "gone-on-target", "c"),
        ]});
        let target_db = json!({"origin": "t", "namespaces": [], "configs": [
            row("prod-new", "same", "a"), row("prod-new", "tampered", "x"), row("prod-new", "extra", "d"),
        ], "deleted": [{"namespace": "prod-new", "group": "G", "data_id": "gone-on-target"}]});
        let source = snap(Some(source_db.clone()), None);
        let target = snap(Some(target_db.clone()), None);
        let reference = source_reference(&source, &scope);
        let (expected, db) = expected_for(&target, &scope, Side::Target, reference.as_ref());
        assert_eq!(db.as_deref(), Some("t"));
        let cases = [
            ("same", Trust::Trusted),
            ("tampered", Trust::Disagrees),
            ("extra", Trust::Disagrees),
            ("gone-on-target", Trust::Disagrees),
        ];
        for (id, want) in cases {
            assert_eq!(trust_of(&expected, id), want, "{id}");
        }
        // Without a source DB, the source API's content is the reference (md5 of the content).
        let api = json!({"origin": "n", "version": "2.0.4", "namespaces": [], "services": [], "configs": [
            {"namespace": "prod", "group": "G", "data_id": "same", "content": "hello"},
        ]});
        let hello = crate::model::md5_hex("hello");
        let target = snap(
            Some(
                json!({"origin": "t", "namespaces": [], "configs": [row("prod-new", "same", &hello)]}),
            ),
            None,
        );
        let reference = source_reference(&snap(None, Some(api)), &scope);
        let (expected, _) = expected_for(&target, &scope, Side::Target, reference.as_ref());
        assert_eq!(trust_of(&expected, "same"), Trust::Trusted);
        // A source that could not be read confirms nothing; the source side trusts its own DB.
        let mut unread = source_db;
        unread["errors"] = json!([{"origin": "s", "message": "down"}]);
        let reference = source_reference(&snap(Some(unread), None), &scope);
        assert!(reference.is_none());
        let (expected, _) = expected_for(&snap(Some(target_db), None), &scope, Side::Target, None);
        assert!(expected.iter().all(|e| e.trust == Trust::Unconfirmed));
        let (expected, _) = expected_for(&source, &scope, Side::Source, None);
        assert!(expected.iter().all(|e| e.trust == Trust::Trusted));
    }
}
