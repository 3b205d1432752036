//! What a run audits: the namespace filter, the source ↔ target namespace pairing, and the
//! ignore globs, compiled once from the settings.

use super::namespaces;
use crate::model::{canonical_namespace, Side};
use crate::settings::Settings;
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::{BTreeMap, BTreeSet};

/// Compiled scope rules: namespace filter, namespace pairing and ignore globs.
pub struct Scope {
    namespaces: Vec<String>,
    pairing: namespaces::Pairing,
    ignore_ns: GlobSet,
    ignore_group: GlobSet,
    ignore_data_id: GlobSet,
    ignore_service: GlobSet,
    ignore_meta: BTreeSet<String>,
    show_secrets: bool,
}

fn globset(globs: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        // Globs were validated when the settings were resolved.
        if let Ok(g) = Glob::new(g) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

impl Scope {
    /// Compile the scope of a run.
    #[must_use]
    pub fn new(s: &Settings) -> Self {
        Scope {
            namespaces: s.namespaces.clone(),
            // The map was checked when the settings were resolved (an ambiguous one is exit 2).
            pairing: namespaces::Pairing::new(&s.namespace_map).unwrap_or_default(),
            ignore_ns: globset(&s.ignore.namespaces),
            ignore_group: globset(&s.ignore.groups),
            ignore_data_id: globset(&s.ignore.data_ids),
            ignore_service: globset(&s.ignore.services),
            ignore_meta: s.ignore.metadata_keys.iter().cloned().collect(),
            show_secrets: s.show_secrets,
        }
    }

    /// The target namespace id a source namespace is compared with. A displaced source namespace
    /// (see [`namespaces`]) pairs with none: its own id is returned, for reading only; no target
    /// key ever maps back to it.
    #[must_use]
    pub fn to_target(&self, source_ns: &str) -> String {
        let ns = canonical_namespace(source_ns);
        self.pairing.target_of(&ns).unwrap_or(ns)
    }

    /// The key of a target namespace in source terms: the source namespace it pairs with, or for
    /// an orphan a key that is never in scope (so an orphan is neither read nor compared).
    #[must_use]
    pub fn to_source(&self, target_ns: &str) -> String {
        self.pairing.source_key(target_ns)
    }

    /// A namespace id read on `side`, in source terms (the terms every key is compared in): the
    /// target's mapped back through the pairing, the source's canonical (`''` is `public`).
    #[must_use]
    pub fn source_ns(&self, side: Side, ns: &str) -> String {
        match side {
            Side::Source => canonical_namespace(ns),
            Side::Target => self.to_source(ns),
        }
    }

    /// The resolved namespace pairing.
    #[must_use]
    pub fn pairing(&self) -> &namespaces::Pairing {
        &self.pairing
    }

    /// Whether a namespace (in source terms) is audited at all.
    #[must_use]
    pub fn namespace_in_scope(&self, source_ns: &str) -> bool {
        !source_ns.starts_with(namespaces::ORPHAN_PREFIX)
            && (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == source_ns))
            && !self.ignore_ns.is_match(source_ns)
    }

    /// Where a source namespace's items were looked for on the target, for the details of
    /// `*-missing` findings: its mapped id, or why it pairs with nothing.
    pub(super) fn looked_for(&self, source_ns: &str) -> String {
        if let Some(note) = self.pairing.displaced_note(source_ns) {
            return format!(" ({note})");
        }
        let t = self.to_target(source_ns);
        if t == source_ns {
            String::new()
        } else {
            format!(" (looked for in target namespace `{t}`)")
        }
    }

    /// Whether a config key (source namespace terms) is audited.
    #[must_use]
    pub fn config_in_scope(&self, source_ns: &str, group: &str, data_id: &str) -> bool {
        self.namespace_in_scope(source_ns)
            && !self.ignore_group.is_match(group)
            && !self.ignore_data_id.is_match(data_id)
    }

    /// Whether a service (source namespace terms) is audited.
    #[must_use]
    pub fn service_in_scope(&self, source_ns: &str, group: &str, name: &str) -> bool {
        self.namespace_in_scope(source_ns)
            && !self.ignore_group.is_match(group)
            && !self.ignore_service.is_match(name)
    }

    /// Whether diffs show secret values.
    #[must_use]
    pub fn show_secrets(&self) -> bool {
        self.show_secrets
    }

    pub(super) fn meta_without_ignored(
        &self,
        m: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        m.iter()
            .filter(|(k, _)| !self.ignore_meta.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
