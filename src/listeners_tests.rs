//! Unit tests of L4's judgement: which held md5s are stale, and one `client-on-source` per client.

use super::*;

fn key(ns: &str, d: &str) -> ConfigKey {
    ConfigKey {
        namespace: ns.into(),
        group: "G".into(),
        data_id: d.into(),
        variant: String::new(),
    }
}

fn held(entries: &[(&str, &str, &str)]) -> Held {
    entries
        .iter()
        .map(|(ip, d, md5)| (((*ip).to_owned(), key("ns", d)), (*md5).to_owned()))
        .collect()
}

#[test]
fn a_client_is_stale_against_what_its_node_serves_or_should_serve() {
    let h = held(&[
        ("10.0.0.1", "fresh", "m1"),
        ("10.0.0.1", "node-stale", "old"),
        ("10.0.0.2", "client-behind", "old"),
        ("10.0.0.3", "unknown", "x"),
    ]);
    // The node disagreed with the held md5 of `client-behind` only (it serves m2 there).
    let served: HashMap<ConfigKey, String> = [(key("ns", "client-behind"), "m2".to_owned())]
        .into_iter()
        .collect();
    let expected: HashMap<ConfigKey, String> = [
        (key("ns", "fresh"), "m1".to_owned()),
        (key("ns", "node-stale"), "new".to_owned()),
        (key("ns", "client-behind"), "m2".to_owned()),
    ]
    .into_iter()
    .collect();
    let s = judge(&h, &served, &expected);
    let names: Vec<(&str, &str, &str, Option<&str>)> = s
        .iter()
        .map(|s| {
            (
                s.key.data_id.as_str(),
                s.held.as_str(),
                s.served.as_str(),
                s.expected.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("node-stale", "old", "old", Some("new")),
            ("client-behind", "old", "m2", Some("m2")),
        ]
    );
}

#[test]
fn stale_findings_name_held_served_and_the_remedy() {
    let scope = Scope::new(&crate::settings::Settings::default());
    let behind = Stale {
        ip: "10.0.0.2".into(),
        key: key("ns", "d"),
        held: "old".into(),
        served: "m2".into(),
        expected: Some("m2".into()),
    };
    let f = behind
        .clone()
        .finding("http://n1:8848/nacos", Side::Target, &scope);
    assert_eq!((f.code, f.layer), (Code::ClientStale, Layer::L4));
    assert_eq!(f.held_md5.as_deref(), Some("old"));
    assert_eq!(f.served_md5.as_deref(), Some("m2"));
    assert_eq!(f.instance.as_deref(), Some("10.0.0.2"));
    assert!(f.detail.contains("next poll"), "{}", f.detail);
    let node_stale = Stale {
        served: "old".into(),
        expected: Some("new".into()),
        ..behind
    };
    let f = node_stale.finding("http://n1:8848/nacos", Side::Target, &scope);
    assert!(f.detail.contains("should serve new"), "{}", f.detail);
    assert!(
        f.detail.contains("`--fix` repairs the node first"),
        "{}",
        f.detail
    );
}

#[test]
fn one_client_on_source_per_client_and_namespace() {
    let mut h = held(&[
        ("10.0.0.1", "a", "m"),
        ("10.0.0.1", "b", "m"),
        ("10.0.0.2", "a", "m"),
    ]);
    h.insert(("10.0.0.1".into(), key("other", "c")), "m".into());
    let f = on_source("http://s1:8848/nacos", &h);
    let ids: Vec<(&str, Option<&str>)> = f
        .iter()
        .map(|f| (f.namespace.as_str(), f.instance.as_deref()))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("ns", Some("10.0.0.1")),
            ("other", Some("10.0.0.1")),
            ("ns", Some("10.0.0.2"))
        ]
    );
    assert!(
        f[0].detail.contains("2 config(s) of namespace ns"),
        "{}",
        f[0].detail
    );
    assert!(f
        .iter()
        .all(|f| f.code == Code::ClientOnSource && f.side == Some(Side::Source)));
}

#[test]
fn l4_runs_on_both_sides_when_asked_and_on_the_source_for_decommission() {
    assert_eq!(sides_wanted(false, false), None);
    assert_eq!(sides_wanted(false, true), Some(vec![Side::Source]));
    assert_eq!(
        sides_wanted(true, true),
        Some(vec![Side::Source, Side::Target])
    );
}

#[test]
fn a_client_listening_on_both_sides_is_one_information_finding() {
    let k = |ns: &str, d: &str| key(ns, d);
    let set = |v: &[(&str, ConfigKey)]| -> BTreeSet<(String, ConfigKey)> {
        v.iter()
            .map(|(ip, k)| ((*ip).to_owned(), k.clone()))
            .collect()
    };
    let source = set(&[
        ("10.0.0.1", k("ns", "a")),
        ("10.0.0.1", k("ns", "b")),
        ("10.0.0.2", k("ns", "a")),
        ("10.0.0.3", k("ns", "a")),
    ]);
    let target = set(&[
        ("10.0.0.1", k("ns", "a")),
        ("10.0.0.1", k("ns", "b")),
        ("10.0.0.2", k("ns", "c")),
        ("10.0.0.4", k("ns", "a")),
    ]);
    let fs = dual_subscribed(&source, &target);
    assert_eq!(fs.len(), 1, "{fs:?}");
    let f = &fs[0];
    assert_eq!(f.code, Code::ClientDualSubscribed);
    assert_eq!(f.instance.as_deref(), Some("10.0.0.1"));
    assert!(f.detail.contains("2 config(s)"), "{}", f.detail);
    assert_eq!(
        Code::ClientDualSubscribed.default_level(),
        crate::finding::Level::Allow
    );
    assert!(dual_subscribed(&source, &BTreeSet::new()).is_empty());
}
