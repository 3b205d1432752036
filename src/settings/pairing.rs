//! Namespace pairing resolved from `[namespace_map]`: which source namespace is compared with
//! which target namespace (the rules are in `crate::diff::namespaces`, which uses it).

use crate::model::canonical_namespace;
use std::collections::BTreeMap;

/// Prefix of the source-space key given to orphan target namespaces: a control character, which
/// Nacos never accepts in a namespace id (`NamespaceController` checks custom ids against
/// `^[\w-]+$`), so such a key never equals a source namespace and is never in scope.
pub const ORPHAN_PREFIX: char = '\u{0}';

/// The resolved one-to-one pairing of source and target namespace ids.
#[derive(Debug, Clone, Default)]
pub struct Pairing {
    map: BTreeMap<String, String>,
    reverse: BTreeMap<String, String>,
}

impl Pairing {
    /// Resolve `[namespace_map]` entries (`source id → target id`, any spelling of the default
    /// namespace). Two source ids mapped to one target id make the pairing ambiguous: that is a
    /// configuration error, returned as one message per clash.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Pairing, Vec<String>> {
        let mut map = BTreeMap::new();
        let mut reverse: BTreeMap<String, String> = BTreeMap::new();
        let mut problems = Vec::new();
        for (s, t) in entries {
            let (s, t) = (canonical_namespace(s), canonical_namespace(t));
            if let Some(prev) = map.get(&s) {
                if *prev != t {
                    problems.push(format!(
                        "source namespace `{s}` is mapped twice (to `{prev}` and to `{t}`)"
                    ));
                }
                continue;
            }
            if let Some(other) = reverse.get(&t) {
                problems.push(format!(
                    "source namespaces `{other}` and `{s}` are both mapped to target namespace `{t}`: each target namespace can pair with one source namespace only"
                ));
                continue;
            }
            reverse.insert(t.clone(), s.clone());
            map.insert(s, t);
        }
        if problems.is_empty() {
            Ok(Pairing { map, reverse })
        } else {
            Err(problems)
        }
    }

    /// The target namespace a source namespace is compared with; `None` when it is displaced (its
    /// own id on the target is the image of another source namespace's mapping).
    #[must_use]
    pub fn target_of(&self, source_ns: &str) -> Option<String> {
        let s = canonical_namespace(source_ns);
        if let Some(t) = self.map.get(&s) {
            return Some(t.clone());
        }
        if self.reverse.contains_key(&s) {
            return None;
        }
        Some(s)
    }

    /// The source namespace a target namespace is compared with; `None` for an orphan (its id is
    /// a source id mapped elsewhere, and no mapping leads to it).
    #[must_use]
    pub fn source_of(&self, target_ns: &str) -> Option<String> {
        let t = canonical_namespace(target_ns);
        if let Some(s) = self.reverse.get(&t) {
            return Some(s.clone());
        }
        if self.map.contains_key(&t) {
            return None;
        }
        Some(t)
    }

    /// The key a target namespace has in source terms: its paired source id, or for an orphan a
    /// key that equals no source id (see [`ORPHAN_PREFIX`]).
    #[must_use]
    pub fn source_key(&self, target_ns: &str) -> String {
        self.source_of(target_ns)
            .unwrap_or_else(|| format!("{ORPHAN_PREFIX}{}", canonical_namespace(target_ns)))
    }

    /// Why a source namespace has no partner, for finding details (`None` if it has one).
    #[must_use]
    pub fn displaced_note(&self, source_ns: &str) -> Option<String> {
        let s = canonical_namespace(source_ns);
        if self.target_of(&s).is_some() {
            return None;
        }
        let by = self.reverse.get(&s).cloned().unwrap_or_default();
        Some(format!(
            "source namespace `{s}` pairs with no target namespace: target `{s}` is compared with source `{by}` ([namespace_map] \"{by}\" = \"{s}\"); map `{s}` too, or ignore it"
        ))
    }

    /// Target namespaces left out of the comparison: (orphan target id, where its source id maps).
    #[must_use]
    pub fn orphans(&self) -> Vec<(String, String)> {
        self.map
            .iter()
            .filter(|(s, t)| s != t && !self.reverse.contains_key(*s))
            .map(|(s, t)| (s.clone(), t.clone()))
            .collect()
    }

    /// The mappings, source id → target id, canonical.
    #[must_use]
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.map
    }
}
