//! Namespace pairing: which source namespace is compared with which target namespace, after
//! `[namespace_map]`, and the checks that what the configuration names exists at all.
//!
//! The pairing is a one-to-one relation, decided from the map alone (before anything is read):
//! - a mapped source namespace `A` (`"A" = "B"`) is compared with target `B` only;
//! - an unmapped source namespace is compared with the target namespace of the same id, unless
//!   that id is the image of a mapping (then it is *displaced*: compared with nothing, so all it
//!   holds is reported missing);
//! - a target namespace whose id is a mapped-away source id and the image of no mapping is an
//!   *orphan*: no source namespace pairs with it, and it is left out of the comparison.
//!
//! Without this, target `A` was compared with source `A` as well as target `B`, so a config missing
//! from `B` but present in `A` passed.

use crate::finding::{Code, Finding, Layer};
use crate::model::{canonical_namespace, SideSnapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

pub use crate::settings::pairing::{Pairing, ORPHAN_PREFIX};

/// Whether a side holds a namespace, as far as what was read can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Listed, or something was read in it.
    Yes,
    /// Every part of the side was read without error and none has it.
    No,
    /// Part of the side could not be read (that is already a `source-error`), or nothing was read.
    Unknown,
}

/// Whether `ns` (this side's own id) exists on a side: in a namespace listing, or holding a
/// config, a deleted key, a service or (compact L1 scans) a scanned row.
#[must_use]
pub fn presence(snap: &SideSnapshot, ns: &str) -> Presence {
    let ns = canonical_namespace(ns);
    let is = |id: &str| canonical_namespace(id) == ns;
    let mut clean_parts = 0;
    let mut parts = 0;
    if let Some(db) = &snap.db {
        parts += 1;
        if db.namespaces.iter().any(|n| is(&n.id))
            || db.configs.iter().any(|c| is(&c.key.namespace))
            || db.deleted.iter().any(|k| is(&k.namespace))
            || db.namespaces_with_rows.contains(&ns)
        {
            return Presence::Yes;
        }
        clean_parts += usize::from(db.errors.is_empty());
    }
    if let Some(api) = &snap.api {
        parts += 1;
        if api.namespaces.iter().any(|n| is(&n.id))
            || api.configs.iter().any(|c| is(&c.key.namespace))
            || api.services.iter().any(|s| is(&s.key.namespace))
        {
            return Presence::Yes;
        }
        clean_parts += usize::from(api.errors.is_empty());
    }
    if parts > 0 && clean_parts == parts {
        Presence::No
    } else {
        Presence::Unknown
    }
}

/// Namespaces a DB scan met rows in, noted while it maps each tenant (once per tenant and
/// table, so the lock costs nothing measurable).
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<BTreeSet<String>>>);

impl Seen {
    /// Note a tenant id met in a scan.
    pub fn note(&self, ns: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.insert(canonical_namespace(ns));
        }
    }

    /// Keep in the side's DB snapshot which namespaces had rows: those noted, and those of the
    /// rows and deleted keys it holds (before a compact scan narrows them to differing rows).
    pub fn record(&self, snap: &mut SideSnapshot) {
        let Some(db) = &mut snap.db else { return };
        let mut all = self.0.lock().map(|s| s.clone()).unwrap_or_default();
        all.extend(
            db.configs
                .iter()
                .map(|c| canonical_namespace(&c.key.namespace)),
        );
        all.extend(db.deleted.iter().map(|k| canonical_namespace(&k.namespace)));
        db.namespaces_with_rows = all;
    }
}

/// What the run was asked to audit, for [`check_named`].
pub struct Named<'a> {
    /// The audited source namespaces (`--namespace` / `audit.namespaces`), empty = all.
    pub namespaces: &'a [String],
    /// Where they were given (`flag --namespace`, `file:line`, ...).
    pub namespaces_at: &'a str,
    /// The pairing.
    pub pairing: &'a Pairing,
    /// Where each mapping was written (source id → `file:line`).
    pub map_at: &'a BTreeMap<String, String>,
}

/// Findings for what the configuration names but the sides do not have: a `--namespace` on
/// neither side, a `[namespace_map]` source id the source does not have. Both are `source-error`
/// findings (exit 3): the namespaces are only known once read, so this is no usage error, and an
/// audit of something that is not there must not pass. A mapped target id the target lacks is
/// drift, reported by the comparison as `namespace-missing`.
///
/// `in_scope` says whether a source namespace is audited (ignore globs); `layer` is the layer the
/// findings are filed under (L3 when the APIs were compared, else L1).
#[must_use]
pub fn check_named(
    named: &Named<'_>,
    source: &SideSnapshot,
    target: &SideSnapshot,
    in_scope: &dyn Fn(&str) -> bool,
    layer: Layer,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let error = |ns: &str, detail: String| {
        let mut f = Finding::new(Code::SourceError, layer, ns, "", "");
        f.detail = detail;
        f
    };
    for n in named.namespaces {
        let n = canonical_namespace(n);
        let on_target = named
            .pairing
            .target_of(&n)
            .map_or(Presence::No, |t| presence(target, &t));
        if presence(source, &n) == Presence::No && on_target == Presence::No {
            let t = named.pairing.target_of(&n);
            let looked = match t {
                Some(t) if t != n => format!("nor `{t}` (its mapped id) on the target"),
                Some(_) => "nor on the target".to_owned(),
                None => "and nothing on the target pairs with it".to_owned(),
            };
            out.push(error(
                &n,
                format!(
                    "{}: namespace `{n}` is not on the source {looked}: nothing was audited for it (a typo?)",
                    named.namespaces_at
                ),
            ));
        }
    }
    for (s, t) in named.pairing.entries() {
        let audited = (named.namespaces.is_empty()
            || named
                .namespaces
                .iter()
                .any(|n| canonical_namespace(n) == *s))
            && in_scope(s);
        if !audited || s == t {
            continue;
        }
        if presence(source, s) == Presence::No {
            let at = named
                .map_at
                .get(s)
                .map_or_else(String::new, |a| format!("{a}: "));
            out.push(error(
                s,
                format!(
                    "{at}[namespace_map] \"{s}\" = \"{t}\": the source has no namespace `{s}` (a typo, or a namespace already removed?), so what target `{t}` holds is compared with nothing"
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{ApiSnapshot, ConfigItem, ConfigKey, Namespace};

    /// (map entries, namespace id, expected partner).
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<&'a str>);

    fn pairing(entries: &[(&str, &str)]) -> Pairing {
        let m: BTreeMap<String, String> = entries
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        Pairing::new(&m).unwrap()
    }

    /// (map, source id, expected target partner).
    #[test]
    fn source_partners_table() {
        let cases: &[Case] = &[
            (&[], "A", Some("A")),
            (&[], "", Some("public")),
            (&[("A", "B")], "A", Some("B")),
            // B's own id on the target is the image of A: B is displaced.
            (&[("A", "B")], "B", None),
            (&[("A", "B")], "C", Some("C")),
            (&[("A", "A")], "A", Some("A")),
            // Chains and swaps.
            (&[("A", "B"), ("B", "C")], "B", Some("C")),
            (&[("A", "B"), ("B", "C")], "C", None),
            (&[("A", "B"), ("B", "A")], "B", Some("A")),
            // The default namespace, in any spelling.
            (&[("", "prod")], "public", Some("prod")),
            (&[("old", "public")], "public", None),
            (&[("old", "")], "old", Some("public")),
        ];
        for (map, s, want) in cases {
            let p = pairing(map);
            assert_eq!(
                p.target_of(s).as_deref(),
                *want,
                "map {map:?}, source `{s}`"
            );
        }
    }

    /// (map, target id, expected source partner).
    #[test]
    fn target_partners_table() {
        let cases: &[Case] = &[
            (&[], "A", Some("A")),
            (&[("A", "B")], "B", Some("A")),
            // A is mapped away and nothing maps to A: target A is an orphan, never compared with source A.
            (&[("A", "B")], "A", None),
            (&[("A", "C")], "A", None),
            (&[("A", "B"), ("B", "A")], "A", Some("B")),
            (&[("A", "B"), ("B", "C")], "A", None),
            (&[("A", "B"), ("B", "C")], "C", Some("B")),
            (&[("Z", "A")], "A", Some("Z")),
            (&[("A", "A")], "A", Some("A")),
            (&[("old", "")], "public", Some("old")),
        ];
        for (map, t, want) in cases {
            let p = pairing(map);
            assert_eq!(
                p.source_of(t).as_deref(),
                *want,
                "map {map:?}, target `{t}`"
            );
        }
    }

    /// The pairing is one-to-one: `target_of(s) == Some(t)` exactly when `source_of(t) == Some(s)`.
    #[test]
    fn pairing_is_a_bijection_on_paired_ids() {
        let ids = ["A", "B", "C", "Z", "public"];
        let maps: &[&[(&str, &str)]] = &[
            &[],
            &[("A", "B")],
            &[("A", "C")],
            &[("Z", "A")],
            &[("A", "B"), ("B", "C")],
            &[("A", "B"), ("B", "A")],
            &[("public", "A"), ("A", "public")],
        ];
        for map in maps {
            let p = pairing(map);
            for s in ids {
                for t in ids {
                    assert_eq!(
                        p.target_of(s).as_deref() == Some(t),
                        p.source_of(t).as_deref() == Some(s),
                        "map {map:?}: {s} / {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn ambiguous_maps_are_configuration_errors() {
        let m: BTreeMap<String, String> = [("A", "X"), ("B", "X")]
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        let e = Pairing::new(&m).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("`A` and `B` are both mapped to target namespace `X`"));
        // "" and "public" are one namespace: mapping both is mapping one twice.
        let e = Pairing::new([
            (&String::new(), &"X".to_owned()),
            (&"public".to_owned(), &"Y".to_owned()),
        ])
        .unwrap_err();
        assert!(e[0].contains("mapped twice"), "{e:?}");
    }

    #[test]
    fn orphans_and_keys() {
        let p = pairing(&[("A", "B"), ("B", "C"), ("X", "X")]);
        assert_eq!(p.orphans(), vec![("A".to_owned(), "B".to_owned())]);
        assert_eq!(p.source_key("B"), "A");
        assert!(p.source_key("A").starts_with(ORPHAN_PREFIX));
        assert!(p.displaced_note("C").unwrap().contains("\"B\" = \"C\""));
        assert!(p.displaced_note("A").is_none());
    }

    /// An API snapshot of these namespaces and `(namespace, data id)` configs (group `G`); also
    /// used by `report::coverage`'s tests.
    pub(crate) fn api(namespaces: &[&str], configs: &[(&str, &str)]) -> SideSnapshot {
        SideSnapshot {
            schema_version: 1,
            api: Some(ApiSnapshot {
                namespaces: namespaces
                    .iter()
                    .map(|n| Namespace {
                        id: (*n).to_owned(),
                        name: String::new(),
                        desc: String::new(),
                    })
                    .collect(),
                configs: configs
                    .iter()
                    .map(|(n, id)| ConfigItem {
                        key: ConfigKey {
                            namespace: (*n).to_owned(),
                            group: "G".into(),
                            data_id: (*id).to_owned(),
                            variant: String::new(),
                        },
                        md5: String::new(),
                        content: None,
                        r#type: String::new(),
                        app: String::new(),
                        desc: String::new(),
                        tags: vec![],
                        modified_ms: None,
                    })
                    .collect(),
                ..ApiSnapshot::default()
            }),
            ..SideSnapshot::default()
        }
    }

    #[test]
    fn presence_needs_a_clean_read_to_say_no() {
        let s = api(&["public", "prod"], &[("cfg-only", "d")]);
        assert_eq!(presence(&s, "prod"), Presence::Yes);
        assert_eq!(presence(&s, ""), Presence::Yes);
        assert_eq!(presence(&s, "cfg-only"), Presence::Yes);
        assert_eq!(presence(&s, "prdo"), Presence::No);
        let mut broken = s.clone();
        broken
            .api
            .as_mut()
            .unwrap()
            .errors
            .push(crate::model::CaptureError {
                origin: "n".into(),
                namespace: None,
                message: "down".into(),
            });
        assert_eq!(presence(&broken, "prdo"), Presence::Unknown);
        assert_eq!(
            presence(&SideSnapshot::default(), "prdo"),
            Presence::Unknown
        );
    }

    /// Keys of the findings of comparing two API snapshots under a map: (code, namespace, name).
    fn compare_with_map(
        src: &SideSnapshot,
        tgt: &SideSnapshot,
        map: &[(&str, &str)],
    ) -> Vec<(Code, String, String)> {
        let settings = crate::settings::Settings {
            namespace_map: map
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
            ..crate::settings::Settings::default()
        };
        let scope = super::super::Scope::new(&settings);
        super::super::compare(src, tgt, &scope, None)
            .into_iter()
            .map(|f| (f.code, f.namespace, f.name))
            .collect()
    }

    /// The cases: a mapped namespace is compared with its image only.
    #[test]
    fn mapped_namespaces_are_compared_with_their_image_only() {
        let k = |c: Code, ns: &str, n: &str| (c, ns.to_owned(), n.to_owned());
        // Source A = {x, y}; target B = {x}, target A = {x, y}; A → B: y is missing from B,
        // and target A (which holds y) must not hide it.
        let src = api(&["public", "A"], &[("A", "x"), ("A", "y")]);
        let tgt = api(&["public", "A", "B"], &[("B", "x"), ("A", "x"), ("A", "y")]);
        let f = compare_with_map(&src, &tgt, &[("A", "B")]);
        assert_eq!(f, vec![k(Code::ConfigMissing, "A", "y")]);
        // A → C, with C not on the target: A is not compared with target A.
        let f = compare_with_map(&src, &tgt, &[("A", "C")]);
        assert!(f.contains(&k(Code::NamespaceMissing, "A", "")), "{f:?}");
        assert!(f.contains(&k(Code::ConfigMissing, "A", "x")), "{f:?}");
        assert!(f.contains(&k(Code::ConfigMissing, "A", "y")), "{f:?}");
        // Z → A, with Z not on the source: source A pairs with nothing (all missing), target A
        // is compared as Z (all extra), never with source A.
        let f = compare_with_map(&src, &tgt, &[("Z", "A")]);
        assert!(f.contains(&k(Code::ConfigMissing, "A", "x")), "{f:?}");
        assert!(f.contains(&k(Code::ConfigMissing, "A", "y")), "{f:?}");
        assert!(f.contains(&k(Code::ConfigExtra, "Z", "x")), "{f:?}");
        assert!(f.contains(&k(Code::NamespaceMissing, "A", "")), "{f:?}");
        // Without a map, A is compared with A: nothing missing there.
        let f = compare_with_map(&src, &tgt, &[]);
        assert!(!f.iter().any(|x| x.0 == Code::ConfigMissing), "{f:?}");
    }

    #[test]
    fn named_namespaces_and_map_sources_must_exist() {
        let src = api(&["public", "A", "prod"], &[]);
        let tgt = api(&["public", "B", "prod"], &[]);
        let map_at: BTreeMap<String, String> = [("Z".to_owned(), "c.toml:3".to_owned())]
            .into_iter()
            .collect();
        let check = |ns: &[&str], map: &[(&str, &str)]| {
            let ns: Vec<String> = ns.iter().map(|s| (*s).to_owned()).collect();
            let p = pairing(map);
            check_named(
                &Named {
                    namespaces: &ns,
                    namespaces_at: "flag --namespace",
                    pairing: &p,
                    map_at: &map_at,
                },
                &src,
                &tgt,
                &|_| true,
                Layer::L3,
            )
        };
        // A typo exists on neither side.
        let f = check(&["prdo"], &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, Code::SourceError);
        assert!(
            f[0].detail.contains("flag --namespace: namespace `prdo`"),
            "{}",
            f[0].detail
        );
        // Existing on one side only is drift, not a typo.
        assert!(check(&["prod", "A", "B"], &[]).is_empty());
        // A mapped namespace found under its mapped id on the target.
        assert!(check(&["A"], &[("A", "B")]).is_empty());
        // A map from a source namespace that does not exist.
        let f = check(&[], &[("Z", "A")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].detail
                .starts_with("c.toml:3: [namespace_map] \"Z\" = \"A\""),
            "{}",
            f[0].detail
        );
        // ... but only when that namespace is audited at all.
        assert!(check(&["prod"], &[("Z", "A")]).is_empty());
        // A map to a target id the target lacks is drift (namespace-missing), not an error here.
        assert!(check(&[], &[("A", "C")]).is_empty());
    }
}
