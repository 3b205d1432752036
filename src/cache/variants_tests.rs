use super::*;
use crate::settings::Settings;
use serde_json::json;

fn gray(kind: &str, expr: &str) -> RuleText {
    RuleText::Gray(
        json!({"type": kind, "version": "1.0.0", "expr": expr, "priority": 1}).to_string(),
    )
}

#[test]
fn a_variant_is_asked_for_as_a_client_its_rule_matches() {
    let ip = |s: &str| Ok(Via::ClientIp(s.into()));
    let beta = |ips: &str| RuleText::BetaIps(ips.into());
    // 2.x beta table: the first usable address of beta_ips (entries are matched exactly).
    assert_eq!(
        via_of("beta", Some(&beta("10.0.0.1,10.0.0.2"))),
        ip("10.0.0.1")
    );
    assert_eq!(
        via_of("beta", Some(&beta(" 10.0.0.1,10.0.0.2"))),
        ip("10.0.0.2")
    );
    assert!(via_of("beta", Some(&beta(""))).is_err());
    assert!(via_of("beta", None).is_err());
    // 2.x tag table: the tag is in the name.
    assert_eq!(via_of("tag:blue", None), Ok(Via::Tag("blue".into())));
    // 3.x gray rows: the rule's type says which label it matches.
    assert_eq!(
        via_of("beta", Some(&gray("beta", "1.2.3.4"))),
        ip("1.2.3.4")
    );
    assert_eq!(
        via_of("tag:blue", Some(&gray("tag", "blue"))),
        Ok(Via::Tag("blue".into()))
    );
    assert_eq!(
        via_of("gray:c", Some(&gray("beta", "1.2.3.4"))),
        ip("1.2.3.4")
    );
    let other = via_of("gray:c", Some(&gray("percentage", "10"))).unwrap_err();
    assert!(other.contains("percentage"), "{other}");
    assert!(via_of("gray:c", Some(&RuleText::Gray("{".into()))).is_err());
}

#[test]
fn variants_are_reloaded_key_by_key_where_the_version_can() {
    assert_eq!(mechanism("2.0.4", "beta", true), Ok(Mechanism::DataChange));
    assert_eq!(
        mechanism("2.0.4", "tag:t", false),
        Ok(Mechanism::DataChange)
    );
    assert_eq!(mechanism("2.2.3", "beta", true), Ok(Mechanism::GrpcSync));
    let tag22 = mechanism("2.2.3", "tag:t", true).unwrap_err();
    assert!(tag22.contains("drops the tag"), "{tag22}");
    assert_eq!(mechanism("2.3.2", "tag:t", true), Ok(Mechanism::GrpcSync));
    assert_eq!(
        mechanism("3.1.0-bugfix", "gray:c", true),
        Ok(Mechanism::GrpcSync)
    );
    assert!(mechanism("2.3.2", "beta", false).is_err());
    assert!(mechanism("rnacos", "beta", true).is_err());
}

#[test]
fn variant_expectations_come_from_the_db_and_are_trusted_when_the_source_agrees() {
    let scope = Scope::new(&Settings::default());
    let row = |variant: &str, md5: &str| json!({"namespace": "ns", "group": "G", "data_id": "d", "variant": variant, "md5": md5});
    let db = |rows: Vec<serde_json::Value>| -> SideSnapshot {
        serde_json::from_value(json!({"schema_version": 1,
            "db": {"origin": "t", "namespaces": [], "configs": rows}}))
        .unwrap()
    };
    let source = db(vec![row("", "f"), row("beta", "b"), row("tag:t", "t1")]);
    let target = db(vec![
        row("", "f"),
        row("beta", "b"),
        row("tag:t", "t2"),
        row("gray:c", "c"),
    ]);
    let key = |variant: &str| ConfigKey {
        namespace: "ns".into(),
        group: "G".into(),
        data_id: "d".into(),
        variant: variant.into(),
    };
    let rules = vec![
        (key("beta"), RuleText::BetaIps("10.0.0.9".into())),
        (key("gray:c"), gray("weird", "x")),
    ];
    let reference = source_reference(&source, &scope);
    let (exp, left) = expected_variants(&target, &scope, Side::Target, reference.as_ref(), &rules);
    let got: Vec<(&str, &Via, Trust)> = exp
        .iter()
        .map(|e| (e.key.variant.as_str(), &e.via, e.trust))
        .collect();
    assert_eq!(
        got,
        vec![
            ("beta", &Via::ClientIp("10.0.0.9".into()), Trust::Trusted),
            ("tag:t", &Via::Tag("t".into()), Trust::Disagrees),
        ]
    );
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, key("gray:c"));
    // Without a DB there is nothing to expect; the notes say so per side.
    let api_only = SideSnapshot::default();
    assert!(
        expected_variants(&api_only, &scope, Side::Target, None, &rules)
            .0
            .is_empty()
    );
    let lines = notes(
        [
            (Side::Source, Cover::NoDb, 0),
            (Side::Target, Cover::FromDb, 4),
        ],
        &[(Side::Target, key("gray:c"), "why".into())],
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("on the source") && lines[0].contains("not compared"));
    assert!(lines[1].contains("ns/G/d#gray:c") && lines[1].ends_with("why"));
    let not_probed = notes(
        [
            (Side::Source, Cover::NotProbed, 3),
            (Side::Target, Cover::NotProbed, 0),
        ],
        &[],
    );
    assert_eq!(not_probed.len(), 1);
    assert!(not_probed[0].contains("3 row(s)"));
}
