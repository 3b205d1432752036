//! The parsers on answers captured from the bed's real servers (`fixtures/answers/`), and on
//! answers of every other shape.

use super::*;
use crate::nacos::dialect::Dialect;

#[test]
fn connections_leave_out_cluster_members_and_map_the_namespace() {
    // Shape as Nacos 2.3.2 answers `/v2/core/loader/current` (trimmed).
    let v: Value = serde_json::from_str(
        r#"{
          "1795753780583_127.0.0.1_47856": {"metaInfo": {"connectType": "GRPC", "clientIp": "192.0.2.2",
             "version": "Nacos-Java-Client:v2.3.2", "appName": "-", "tenant": null,
             "labels": {"source": "cluster"}, "clusterSource": true}},
          "1795753780999_127.0.0.1_50000": {"metaInfo": {"connectType": "GRPC", "clientIp": "10.0.0.5",
             "version": "Nacos-Java-Client:v2.3.2", "appName": "orders", "tenant": "",
             "createTime": "2026-11-27T04:29:40.684+00:00", "labels": {"source": "sdk", "module": "naming"}}}
        }"#,
    )
    .unwrap();
    let c = connections(&v).unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].ip, "10.0.0.5");
    assert_eq!(c[0].app, "orders");
    assert_eq!(c[0].namespace, "", "no tenant: any namespace");
}

#[test]
fn the_listener_answer_maps_back_to_keys_and_needs_the_canary() {
    let keys = vec![
        probe_key("public", "G", "a", "m1"),
        probe_key("prod", "G", "b", "m2"),
    ];
    let body = listening_configs(&keys);
    assert!(body.starts_with("a\u{2}G\u{2}m1\u{1}b\u{2}G\u{2}m2\u{2}prod\u{1}"));
    // As 3.x answers: the default namespace named `public`, URL-encoded separators.
    let answer = format!("a%02G%02public%01b%02G%02prod%01{CANARY_DATA_ID}%02DEFAULT_GROUP%01");
    assert_eq!(listener(&keys, &answer).unwrap(), vec![0, 1]);
    assert!(listener(&keys, "a%02G%01").is_err());
    let stranger = format!("zz%02G%01{CANARY_DATA_ID}%02DEFAULT_GROUP%01");
    assert!(listener(&keys, &stranger)
        .unwrap_err()
        .contains("not asked about"));
    let _ = Dialect::V1;
}

/// Every parser, fed a whole answer body the way the client feeds it.
type Parser = Box<dyn Fn(&str) -> Shape<()>>;

fn parsers(d: Dialect) -> Vec<(&'static str, Parser)> {
    let v = move |b: &str| answer(d, b);
    vec![
        (
            "namespaces",
            Box::new(move |b| namespaces(d, &v(b)?).map(drop)),
        ),
        (
            "config list",
            Box::new(move |b| config_page(d, &v(b)?, "ns").map(drop)),
        ),
        (
            "config detail",
            Box::new(move |b| {
                let mut item = crate::model::ConfigItem {
                    key: crate::model::ConfigKey {
                        namespace: "ns".into(),
                        group: "G".into(),
                        data_id: "d".into(),
                        variant: String::new(),
                    },
                    md5: String::new(),
                    content: None,
                    r#type: String::new(),
                    app: String::new(),
                    desc: String::new(),
                    tags: Vec::new(),
                    modified_ms: None,
                };
                config_detail(d, b, &mut item)
            }),
        ),
        (
            "service list",
            Box::new(move |b| service_page(d, &v(b)?).map(drop)),
        ),
        (
            "service list with instances",
            Box::new(move |b| service_page_with_instances(&v(b)?).map(drop)),
        ),
        (
            "service detail",
            Box::new(move |b| service_detail(d, &v(b)?, "svc").map(drop)),
        ),
        (
            "instance list",
            Box::new(move |b| instance_page(d, &v(b)?, "DEFAULT").map(drop)),
        ),
        ("members", Box::new(move |b| members(d, &v(b)?).map(drop))),
    ]
}

const WRONG: [&str; 8] = [
    "{}",
    "[]",
    "null",
    "0",
    "\"\"",
    r#"{"status":"ok"}"#,
    "",
    "<html><body>login</body></html>",
];

#[test]
fn no_parser_reads_a_wrong_shape_as_an_empty_answer() {
    for d in [Dialect::V1, Dialect::V3, Dialect::RNacos] {
        for (name, parse) in parsers(d) {
            for body in WRONG {
                assert!(parse(body).is_err(), "{d:?} {name} accepted `{body}`");
                // 3.x lists the instances of a service as a bare list: `[]` is a service
                // without instances, a right shape.
                let empty_list_ok = name == "instance list" && body == "[]";
                if d == Dialect::V3 && !body.is_empty() && !body.starts_with('<') && !empty_list_ok
                {
                    // The envelope is right, what is in it is not.
                    let wrapped = format!(r#"{{"code":0,"message":"success","data":{body}}}"#);
                    assert!(
                        parse(&wrapped).is_err(),
                        "{d:?} {name} accepted `{wrapped}`"
                    );
                }
            }
        }
    }
    for body in WRONG {
        assert!(login(body).is_err(), "login accepted `{body}`");
        assert!(
            json(body).and_then(|v| state(&v)).is_err(),
            "state accepted `{body}`"
        );
        assert!(listener(&[], body).is_err(), "listener accepted `{body}`");
        if body != "{}" {
            // `{}` is the map of a node with no SDK connection.
            assert!(
                json(body).and_then(|v| connections(&v)).is_err(),
                "connections accepted `{body}`"
            );
        }
    }
}

#[test]
fn a_v3_answer_with_another_code_is_an_error() {
    let e = envelope(r#"{"code":30000,"message":"no permission","data":null}"#).unwrap_err();
    assert!(e.contains("30000") && e.contains("no permission"), "{e}");
    assert!(envelope(r#"{"code":0,"message":"success"}"#).is_err());
}

#[test]
fn pages_are_checked_against_their_size_and_total() {
    assert!(check_page(3, 3, 500).is_ok());
    assert!(check_page(1, 2, 500)
        .unwrap_err()
        .contains("more than the total"));
    assert!(check_page(9000, 501, 500)
        .unwrap_err()
        .contains("more than the 500"));
    assert!(check_page(MAX_LISTED + 1, 0, 500).is_err());
}

#[test]
fn served_md5_is_the_header_or_the_body_digest() {
    assert_eq!(
        served_md5(Some("0f7cc8b6fe16e5e2bd5c3ff6b5eb3d4c"), "x").unwrap(),
        "0f7cc8b6fe16e5e2bd5c3ff6b5eb3d4c"
    );
    assert_eq!(served_md5(None, "").unwrap(), crate::model::md5_hex(""));
    assert!(served_md5(Some("<script>"), "x").is_err());
}

#[test]
fn a_listing_item_of_another_namespace_is_an_error() {
    let v: Value = serde_json::from_str(
        r#"{"totalCount":1,"pageItems":[{"dataId":"d","group":"G","content":"x","tenant":"other"}]}"#,
    )
    .unwrap();
    let e = config_page(Dialect::V1, &v, "ns").unwrap_err();
    assert!(
        e.contains("pageItems[0].tenant") && e.contains("other"),
        "{e}"
    );
    assert_eq!(
        config_page(Dialect::V1, &v, "other").unwrap().items.len(),
        1
    );
}

/// Answers captured from one of the bed's servers by `fixtures/answers/capture.sh`.
struct Captured {
    server: &'static str,
    dialect: Dialect,
    version: &'static str,
    login: &'static str,
    /// The state answer (r-nacos has none: it is told by its health answer).
    state: Option<&'static str>,
    namespaces: &'static str,
    config_list: &'static str,
    config_detail: Option<&'static str>,
    service_list: &'static str,
    service_detail: &'static str,
    instance_list: &'static str,
    members: Option<&'static str>,
    connections: Option<&'static str>,
    listener: &'static str,
    served_headers: &'static str,
    served_body: &'static str,
}

macro_rules! answer_file {
    ($server:literal, $file:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/answers/",
            $server,
            "/",
            $file
        ))
    };
}

macro_rules! nacos {
    ($server:literal, $dialect:expr, $version:literal) => {
        Captured {
            server: $server,
            dialect: $dialect,
            version: $version,
            login: answer_file!($server, "login.json"),
            state: Some(answer_file!($server, "state.json")),
            namespaces: answer_file!($server, "namespaces.json"),
            config_list: answer_file!($server, "config-list.json"),
            config_detail: Some(answer_file!($server, "config-detail.json")),
            service_list: answer_file!($server, "service-list.json"),
            service_detail: answer_file!($server, "service-detail.json"),
            instance_list: answer_file!($server, "instance-list.json"),
            members: Some(answer_file!($server, "members.json")),
            connections: Some(answer_file!($server, "connections.json")),
            listener: answer_file!($server, "listener.txt"),
            served_headers: answer_file!($server, "served.headers"),
            served_body: answer_file!($server, "served.body"),
        }
    };
}

fn captured() -> Vec<Captured> {
    vec![
        nacos!("nacos-2.0.4", Dialect::V1, "2.0.4"),
        nacos!("nacos-2.3.2", Dialect::V1, "2.3.2"),
        nacos!("nacos-3.1", Dialect::V3, "3.1.0-bugfix"),
        Captured {
            server: "r-nacos-0.8.8",
            dialect: Dialect::RNacos,
            version: "r-nacos",
            login: answer_file!("r-nacos-0.8.8", "login.json"),
            state: None,
            namespaces: answer_file!("r-nacos-0.8.8", "namespaces.json"),
            config_list: answer_file!("r-nacos-0.8.8", "config-list.json"),
            config_detail: None,
            service_list: answer_file!("r-nacos-0.8.8", "service-list.json"),
            service_detail: answer_file!("r-nacos-0.8.8", "service-detail.json"),
            instance_list: answer_file!("r-nacos-0.8.8", "instance-list.json"),
            members: None,
            connections: None,
            listener: answer_file!("r-nacos-0.8.8", "listener.txt"),
            served_headers: answer_file!("r-nacos-0.8.8", "served.headers"),
            served_body: answer_file!("r-nacos-0.8.8", "served.body"),
        },
    ]
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn real_answers_of_every_endpoint_parse_to_what_the_server_holds() {
    use crate::model::{ConfigItem, ConfigKey};
    for c in captured() {
        let d = c.dialect;
        let at = c.server;
        assert!(login(c.login).unwrap().1 >= 3600, "{at}");
        match c.state {
            Some(s) => {
                let (version, kind) = state(&answer(d, s).unwrap()).unwrap();
                assert_eq!(version, c.version, "{at}");
                assert_eq!(kind.dialect(), d, "{at}");
            }
            None => assert!(is_rnacos_health(
                200,
                answer_file!("r-nacos-0.8.8", "health.txt")
            )),
        }

        let ns = namespaces(d, &answer(d, c.namespaces).unwrap()).unwrap();
        let ids: Vec<&str> = ns.iter().map(|n| n.id.as_str()).collect();
        assert!(
            ids.contains(&"public") && ids.contains(&"fixture-ns"),
            "{at}: {ids:?}"
        );

        let page = config_page(d, &answer(d, c.config_list).unwrap(), "fixture-ns").unwrap();
        assert_eq!((page.total, page.items.len()), (1, 1), "{at}");
        // The row ids an export by id takes: Nacos writes them as strings of digits.
        if d != Dialect::RNacos {
            let ids = config_ids(d, &answer(d, c.config_list).unwrap()).unwrap();
            assert_eq!(ids.len(), 1, "{at}");
            assert!(ids[0] > 0, "{at}");
        }
        let mut item = page.items.into_iter().next().unwrap();
        assert_eq!(
            (item.key.group.as_str(), item.key.data_id.as_str()),
            ("APP", "app.yaml"),
            "{at}"
        );
        if d != Dialect::RNacos {
            // r-nacos keeps no app name.
            assert_eq!(item.app, "orders", "{at}");
        }
        // r-nacos lists desc with each config (`ConfigInfoDto.desc`); Nacos lists none.
        let listed_desc = if d == Dialect::RNacos { "the app" } else { "" };
        assert_eq!(
            (item.desc.as_str(), page.without_desc),
            (listed_desc, false),
            "{at}"
        );
        assert_eq!(
            item.content.is_some(),
            d != Dialect::V3,
            "{at}: v3 lists no content"
        );
        if let Some(detail) = c.config_detail {
            config_detail(d, detail, &mut item).unwrap();
            assert_eq!(item.content.as_deref(), Some("x: 1\n"), "{at}");
            assert_eq!(
                (item.desc.as_str(), item.tags.clone()),
                ("the app", vec!["a".to_owned(), "b".to_owned()]),
                "{at}"
            );
            // The detail of another config is not this one's.
            let mut other = ConfigItem {
                key: ConfigKey {
                    data_id: "other.yaml".into(),
                    ..item.key.clone()
                },
                ..item.clone()
            };
            assert!(config_detail(d, detail, &mut other).is_err(), "{at}");
        }

        let services = service_page(d, &answer(d, c.service_list).unwrap()).unwrap();
        assert_eq!(
            services.items,
            vec![("DEFAULT_GROUP".to_owned(), "orders".to_owned())],
            "{at}"
        );
        let detail = service_detail(d, &answer(d, c.service_detail).unwrap(), "orders").unwrap();
        if d != Dialect::RNacos {
            // r-nacos made the service implicitly, on the instance's registration.
            assert_eq!(detail.protect_threshold, 0.5, "{at}");
            let team = detail.metadata.get("team").map(String::as_str);
            assert_eq!(team, Some("core"), "{at}");
        }
        assert_eq!(
            detail.selector, "",
            "{at}: a `none` selector is no selector"
        );
        assert!(service_detail(d, &answer(d, c.service_detail).unwrap(), "payments").is_err());
        let inst = instance_page(d, &answer(d, c.instance_list).unwrap(), "DEFAULT").unwrap();
        assert_eq!(inst.total, 1, "{at}");
        let i = &inst.items[0];
        assert_eq!(
            (i.ip.as_str(), i.port, i.ephemeral, i.cluster.as_str()),
            ("10.0.0.1", 8080, false, "DEFAULT"),
            "{at}"
        );
        assert_eq!(
            i.metadata.get("zone").map(String::as_str),
            Some("a"),
            "{at}"
        );

        if let Some(m) = c.members {
            let m = members(d, &answer(d, m).unwrap()).unwrap();
            assert!(
                m.iter()
                    .all(|m| m.state == "UP" && m.address.starts_with("127.0.0.1:")),
                "{at}: {m:?}"
            );
        }
        if let Some(conns) = c.connections {
            // The bed's target members hold cluster connections to each other: never SDK clients.
            assert!(
                connections(&answer(d, conns).unwrap()).unwrap().is_empty(),
                "{at}"
            );
        }
        let keys = vec![probe_key("fixture-ns", "APP", "app.yaml", "wrongmd5")];
        assert_eq!(listener(&keys, c.listener).unwrap(), vec![0], "{at}");
        let md5 = served_md5(header(c.served_headers, "Content-MD5"), c.served_body).unwrap();
        assert_eq!(md5, crate::model::md5_hex("x: 1\n"), "{at}");
    }
}

#[test]
fn an_r_nacos_list_without_desc_says_so() {
    let v = json(r#"{"totalCount":1,"pageNumber":1,"pagesAvailable":1,"pageItems":[{"tenant":"ns","group":"G","dataId":"d","content":"x","md5":"m"}]}"#).unwrap();
    let p = config_page(Dialect::RNacos, &v, "ns").unwrap();
    assert!(p.without_desc);
    let v = json(r#"{"totalCount":1,"pageNumber":1,"pagesAvailable":1,"pageItems":[{"tenant":"ns","group":"G","dataId":"d","content":"x","md5":"m","desc":null}]}"#).unwrap();
    let p = config_page(Dialect::RNacos, &v, "ns").unwrap();
    assert!(!p.without_desc);
    assert_eq!(p.items[0].desc, "");
}

#[test]
fn a_v3_service_page_with_instances_carries_every_cluster() {
    // As Nacos 3.1 answers `/v3/admin/ns/service/list?withInstances=true` (trimmed): the
    // `C2` host is one `/v3/admin/ns/instance/list` leaves out without `clusterName`.
    let body = r#"{"code":0,"message":"success","data":{"totalCount":2,"pageNumber":1,
      "pagesAvailable":1,"pageItems":[
      {"serviceName":"s1","groupName":"G","clusterMap":{
        "DEFAULT":{"clusterName":null,"healthChecker":null,"metadata":null,"hosts":[
          {"ip":"127.0.0.9","port":9,"weight":2.0,"healthy":true,"enabled":false,"ephemeral":false,
           "clusterName":"DEFAULT","serviceName":"G@@s1","metadata":{"a":"b"}}]},
        "C2":{"hosts":[{"ip":"127.0.0.8","port":9,"weight":1.0,"healthy":true,"enabled":true,
           "ephemeral":false,"clusterName":"C2","serviceName":"G@@s1","metadata":{}}]}},
       "metadata":{"m":"1"},"protectThreshold":0.0,"selector":null},
      {"serviceName":"empty","groupName":"G","clusterMap":{},"metadata":null}]}}"#;
    let p = service_page_with_instances(&answer(Dialect::V3, body).unwrap()).unwrap();
    assert_eq!(p.total, 2);
    let ((g, n), inst) = &p.items[0];
    assert_eq!((g.as_str(), n.as_str()), ("G", "s1"));
    let mut got: Vec<_> = inst
        .iter()
        .map(|i| {
            (
                i.cluster.as_str(),
                i.ip.as_str(),
                i.weight,
                i.enabled,
                i.ephemeral,
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(
        got,
        [
            ("C2", "127.0.0.8", 1.0, true, false),
            ("DEFAULT", "127.0.0.9", 2.0, false, false)
        ]
    );
    assert_eq!(
        inst.iter()
            .find(|i| i.cluster == "DEFAULT")
            .unwrap()
            .metadata["a"],
        "b"
    );
    assert!(p.items[1].1.is_empty());
    // A host in the wrong shape is an error, not a service without that instance.
    let bad = body.replace(r#""port":9,"weight":1.0"#, r#""port":"x","weight":1.0"#);
    assert!(service_page_with_instances(&answer(Dialect::V3, &bad).unwrap()).is_err());
}

fn probe_key(namespace: &str, group: &str, data_id: &str, md5: &str) -> crate::model::ProbeKey {
    crate::model::ProbeKey {
        key: crate::model::FormalKey::new(namespace, group, data_id),
        md5: md5.to_owned(),
    }
}

#[test]
fn a_config_row_id_is_digits_or_a_count_and_nothing_else() {
    let page = |id: &str| -> serde_json::Value {
        serde_json::from_str(&format!(
            r#"{{"totalCount":1,"pageItems":[{{"dataId":"a","group":"G","id":{id}}}]}}"#
        ))
        .unwrap()
    };
    assert_eq!(config_ids(Dialect::V1, &page(r#""42""#)).unwrap(), [42]);
    assert_eq!(config_ids(Dialect::V1, &page("42")).unwrap(), [42]);
    for bad in [
        r#""""#,
        r#""-1""#,
        r#""4 2""#,
        r#""1e3""#,
        "-1",
        "1.5",
        "null",
        r#""99999999999999999999""#,
    ] {
        let e = config_ids(Dialect::V1, &page(bad)).unwrap_err();
        assert!(e.contains("pageItems[0].id"), "{bad}: {e}");
    }
}
