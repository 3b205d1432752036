//! Hostile nodes: every endpoint nacos-drift calls, answered in every wrong way a node can
//! answer, must end the audit as incomplete (exit 3) with the node and endpoint named, never as
//! a clean or empty read, in bounded time and memory.
//!
//! Both sides are stand-ins (no real server answers `{}` to a config listing on demand): a
//! healthy one and one that is healthy except for one endpoint. The baseline, both healthy,
//! audits clean, so each failure below is the fault's doing.

use crate::ops::audit;
use crate::standin::{self, Flavour, Reply, Request, StandIn};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// An endpoint: how to recognise its requests, how messages name it, and which faults apply.
struct Endpoint {
    /// As the error names it (`GET /v1/cs/configs (config list)` contains `(config list)`).
    name: &'static str,
    /// Its requests to a 2.x node.
    matches: fn(&Request) -> bool,
    /// Its requests to a 3.x node.
    v3: fn(&Request) -> bool,
    /// Any JSON shape is an error here (not so for served content, which may be anything).
    json: bool,
    /// Paged by a total: a total that disagrees with the items is an error.
    paged: bool,
    /// The same on 3.x (which lists instances without paging).
    paged_v3: bool,
    /// The source side is the hostile one (the SDK-connections check asks the source only).
    on_source: bool,
    /// `audit.config_meta` under which it is asked (the config detail only per config).
    config_meta: &'static str,
}

/// Whether nacos-drift asks this endpoint of a node of this flavour at all.
fn asked_on(e: &Endpoint, flavour: Flavour) -> bool {
    !(flavour == Flavour::V3 && e.name == "instance list")
}

fn p(r: &Request) -> &str {
    r.path.strip_prefix("/nacos").unwrap_or(&r.path)
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        name: "login",
        matches: |r| p(r) == "/v1/auth/login",
        v3: |r| p(r) == "/v1/auth/login",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "server state",
        matches: |r| p(r) == "/v1/console/server/state",
        v3: |r| p(r) == "/v3/admin/core/state",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "namespace list",
        matches: |r| p(r) == "/v1/console/namespaces",
        v3: |r| p(r) == "/v3/admin/core/namespace/list",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "config list",
        matches: |r| p(r) == "/v1/cs/configs" && r.param_is("search", "accurate"),
        v3: |r| p(r) == "/v3/admin/cs/config/list",
        json: true,
        paged: true,
        paged_v3: true,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "config detail",
        matches: |r| p(r) == "/v1/cs/configs" && r.param_is("show", "all"),
        v3: |r| p(r) == "/v3/admin/cs/config",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "per-config",
    },
    Endpoint {
        name: "config export",
        matches: |r| p(r) == "/v1/cs/configs" && r.param_is("exportV2", "true"),
        v3: |r| p(r) == "/v3/admin/cs/config/export",
        // Any JSON where a zip belongs is an error as well.
        json: true,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "service list",
        matches: |r| p(r) == "/v1/ns/catalog/services",
        v3: |r| p(r) == "/v3/admin/ns/service/list",
        json: true,
        paged: true,
        paged_v3: true,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "service detail",
        matches: |r| p(r) == "/v1/ns/service",
        v3: |r| p(r) == "/v3/admin/ns/service",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "instance list",
        matches: |r| p(r) == "/v1/ns/catalog/instances",
        // 3.x: the instances come with the service list pages (`withInstances=true`).
        v3: |_| false,
        json: true,
        paged: true,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "cluster members",
        matches: |r| p(r) == "/v1/core/cluster/nodes",
        v3: |r| p(r) == "/v3/admin/core/cluster/node/list",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "listener probe",
        matches: |r| p(r) == "/v1/cs/configs/listener",
        v3: |r| p(r) == "/v1/cs/configs/listener",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "served config",
        matches: |r| {
            p(r) == "/v1/cs/configs"
                && !r.param_is("show", "all")
                && !r.param_is("search", "accurate")
                && !r.param_is("exportV2", "true")
        },
        v3: |r| p(r) == "/v1/cs/configs",
        json: false,
        paged: false,
        paged_v3: false,
        on_source: false,
        config_meta: "bulk",
    },
    Endpoint {
        name: "SDK connections",
        matches: |r| p(r) == "/v2/core/loader/current",
        v3: |r| p(r) == "/v3/admin/core/loader/current",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: true,
        config_meta: "bulk",
    },
    // L4 (read on the source for decommission-ready): per client IP and per config.
    Endpoint {
        name: "listening clients",
        matches: |r| {
            p(r) == "/v1/cs/communication/watcherConfigs"
                || p(r) == "/v1/cs/communication/configWatchers"
        },
        v3: |r| p(r) == "/v3/admin/cs/listener" || p(r) == "/v3/admin/cs/config/listener",
        json: true,
        paged: false,
        paged_v3: false,
        on_source: true,
        config_meta: "bulk",
    },
];

/// The wrong answers.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// 200 with this JSON.
    Shape(&'static str),
    /// 200 with nothing.
    Empty,
    /// 200 with a login page.
    Html,
    /// 302 elsewhere.
    Redirect,
    /// 200 with a body that never ends (the cap is 1 MiB in these runs).
    OverCap,
    /// 200 claiming a whole body and sending half of it.
    Truncated,
    /// A page whose total says more items than there are.
    ShortPage,
    /// A page with more items than its total says.
    LongPage,
    /// Served content with a `Content-MD5` that is no MD5.
    BadMd5,
    /// 3.x: a right envelope (`code` 0) around this wrong `data`.
    Enveloped(&'static str),
    /// A well-formed export that holds no config while the listing counts one.
    EmptyExport,
    /// A well-formed export whose metadata names a config it does not hold.
    ExportWithoutEntry,
}

const SHAPES: [&str; 6] = ["{}", "[]", "null", "0", "\"\"", r#"{"status":"ok"}"#];

fn faults_for(e: &Endpoint, flavour: Flavour) -> Vec<Fault> {
    let mut out = Vec::new();
    if !asked_on(e, flavour) {
        return out;
    }
    // What some endpoints rightly answer: `{}` is the connections map of a node no SDK client
    // is connected to; on 3.x, `[]` the instance list of a service without instances.
    let legit = |shape: &str| {
        (e.name == "SDK connections" && shape == "{}")
            || (flavour == Flavour::V3 && e.name == "instance list" && shape == "[]")
    };
    if e.json {
        out.extend(
            SHAPES
                .iter()
                .filter(|s| !(e.name == "SDK connections" && **s == "{}"))
                .map(|s| Fault::Shape(s)),
        );
        out.extend([Fault::Empty, Fault::Html]);
        let enveloped = flavour == Flavour::V3
            && !matches!(e.name, "login" | "listener probe" | "served config");
        if enveloped {
            out.extend(
                SHAPES
                    .iter()
                    .filter(|s| !legit(s))
                    .map(|s| Fault::Enveloped(s)),
            );
        }
    } else {
        out.push(Fault::BadMd5);
    }
    out.extend([Fault::Redirect, Fault::OverCap, Fault::Truncated]);
    let paged = match flavour {
        Flavour::V2 => e.paged,
        Flavour::V3 => e.paged_v3,
    };
    if paged {
        out.extend([Fault::ShortPage, Fault::LongPage]);
    }
    if e.name == "config export" {
        out.extend([Fault::EmptyExport, Fault::ExportWithoutEntry]);
    }
    out
}

/// The healthy answer with its total (`totalCount` or `count`, at the top or in the 3.x
/// envelope's `data`) replaced.
fn with_total(good: &Reply, total: u64) -> Reply {
    let Reply::Http(status, headers, body) = good else {
        return good.clone();
    };
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    for k in ["totalCount", "count"] {
        if v.get(k).is_some() {
            v[k] = total.into();
        }
        if v["data"].get(k).is_some() {
            v["data"][k] = total.into();
        }
    }
    Reply::Http(status, headers.clone(), serde_json::to_vec(&v).unwrap())
}

fn reply(f: Fault, good: &Reply) -> Reply {
    match f {
        Fault::Shape(s) => Reply::json(s),
        Fault::Enveloped(s) => Reply::json(&format!(
            r#"{{"code":0,"message":"success","data":{s}}}"#
        )),
        Fault::Empty => Reply::json(""),
        Fault::Html => Reply::text(
            "text/html;charset=UTF-8",
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>...</form></body></html>",
        ),
        Fault::Redirect => Reply::Http(
            "302 Found",
            vec![(
                "Location".into(),
                "http://127.0.0.1:9/sso/login?next=%2Fnacos&t=1".into(),
            )],
            Vec::new(),
        ),
        Fault::OverCap => Reply::Endless,
        Fault::Truncated => match good {
            Reply::Http(_, _, body) => Reply::Truncated(body.clone()),
            other => other.clone(),
        },
        Fault::ShortPage => with_total(good, 5),
        Fault::LongPage => with_total(good, 0),
        Fault::EmptyExport => standin::export_zip(&[]),
        Fault::ExportWithoutEntry => standin::export_zip_raw(
            &[("APP/other.yaml", "x: 1")],
            "metadata:\n- dataId: app.yaml\n  group: APP\n",
        ),
        Fault::BadMd5 => Reply::Http(
            "200 OK",
            vec![("Content-MD5".into(), "<script>".into())],
            b"x: 1".to_vec(),
        ),
    }
}

fn namespace(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::V2 => standin::NAMESPACE,
        Flavour::V3 => standin::NAMESPACE_V3,
    }
}

/// A listener answer that names the stand-in's config as changed, so that its served content is read.
fn flag_the_config(r: &Request, flavour: Flavour) -> Option<Reply> {
    (p(r) == "/v1/cs/configs/listener").then(|| {
        Reply::text(
            "text/html;charset=UTF-8",
            &format!(
                "{}%02APP%02{}%01nacos-drift.probe-canary%02DEFAULT_GROUP%01",
                standin::DATA_ID,
                namespace(flavour)
            ),
        )
    })
}

/// One hostile case: flavour, endpoint (index into [`ENDPOINTS`]) and fault.
type Case = (Flavour, usize, Fault);

fn pair(flavour: Flavour, hostile: Option<(usize, Fault)>) -> (StandIn, StandIn) {
    let on_source = hostile.is_some_and(|(e, _)| ENDPOINTS[e].on_source);
    let make = |me_hostile: bool| {
        standin::start_as(flavour, "tok-hostile", move |r, good| {
            let (e, f) = hostile.filter(|_| me_hostile)?;
            let ep = &ENDPOINTS[e];
            let hit = match flavour {
                Flavour::V2 => (ep.matches)(r),
                Flavour::V3 => (ep.v3)(r),
            };
            // The served config is the plain GET: not the 2.x listing or detail on the same path.
            let served_only = ep.name != "served config"
                || (!r.param_is("show", "all")
                    && !r.param_is("search", "accurate")
                    && !r.param_is("exportV2", "true"));
            if hit && served_only {
                return Some(reply(f, good));
            }
            if ep.name == "served config" {
                return flag_the_config(r, flavour);
            }
            None
        })
    };
    (make(on_source), make(!on_source))
}

fn run(
    flavour: Flavour,
    source: &StandIn,
    target: &StandIn,
    config_meta: &str,
) -> (crate::ops::Run, Duration) {
    let t0 = Instant::now();
    let r = audit(
        &[
            "--namespace",
            namespace(flavour),
            "--settle",
            "0",
            "--timeout",
            "5",
            "--gate",
            "decommission-ready",
            "--source-nacos",
            &source.base,
            "--target-nacos",
            &target.base,
        ],
        &[
            ("NACOS_DRIFT_SOURCE_NACOS_USERNAME", "nacos"),
            ("NACOS_DRIFT_SOURCE_NACOS_PASSWORD", "pw"),
            ("NACOS_DRIFT_TARGET_NACOS_USERNAME", "nacos"),
            ("NACOS_DRIFT_TARGET_NACOS_PASSWORD", "pw"),
            ("NACOS_DRIFT_AUDIT_MAX_BODY_MIB", "1"),
            ("NACOS_DRIFT_AUDIT_CONFIG_META", config_meta),
        ],
    );
    (r, t0.elapsed())
}

#[test]
fn two_healthy_stand_ins_audit_clean() {
    for flavour in [Flavour::V2, Flavour::V3] {
        let (source, target) = pair(flavour, None);
        for meta in ["bulk", "per-config"] {
            let (r, _) = run(flavour, &source, &target, meta);
            assert_eq!(r.code, 0, "{flavour:?} {meta}: {}", r.output);
        }
        // Every endpoint of the table was asked (served config only when a key is flagged).
        for e in ENDPOINTS
            .iter()
            .filter(|e| e.name != "served config" && asked_on(e, flavour))
        {
            let asked = [&source, &target].iter().any(|s| {
                s.requests.lock().unwrap().iter().any(|r| match flavour {
                    Flavour::V2 => (e.matches)(r),
                    Flavour::V3 => (e.v3)(r),
                })
            });
            assert!(asked, "{flavour:?}: {} was never asked", e.name);
        }
    }
}

#[test]
fn every_wrong_answer_of_every_endpoint_is_a_named_source_error() {
    let cases: Vec<Case> = [Flavour::V2, Flavour::V3]
        .into_iter()
        .flat_map(|fl| {
            ENDPOINTS
                .iter()
                .enumerate()
                .flat_map(move |(i, e)| faults_for(e, fl).into_iter().map(move |f| (fl, i, f)))
        })
        .collect();
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    // A few at a time: each case is one short nacos-drift run against two local stand-ins.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&case) = cases.get(i) else { break };
                if let Err(why) = one_case(case) {
                    failures.lock().unwrap().push(why);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn one_case((flavour, e, f): Case) -> Result<(), String> {
    let ep = &ENDPOINTS[e];
    let (source, target) = pair(flavour, Some((e, f)));
    let hostile = if ep.on_source { &source } else { &target };
    let (r, took) = run(flavour, &source, &target, ep.config_meta);
    let case = format!("{flavour:?} {} / {f:?}", ep.name);
    let named = format!("({})", ep.name);
    let problems: Vec<&str> = [
        (r.code != 3, "exit is not 3"),
        (
            r.json["complete"] != false,
            "the report is not marked incomplete",
        ),
        (!r.output.contains(&hostile.base), "the node is not named"),
        (!r.output.contains(&named), "the endpoint is not named"),
        (took > Duration::from_secs(60), "took over 60 s"),
        (
            hostile.streamed.load(Ordering::Relaxed) > 64 << 20,
            "read far past the 1 MiB cap",
        ),
    ]
    .into_iter()
    .filter_map(|(bad, why)| bad.then_some(why))
    .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{case}: {} (exit {}, {took:?}):\n{}",
            problems.join(", "),
            r.code,
            r.output
        ))
    }
}

#[test]
fn a_snapshot_of_a_hostile_node_is_incomplete() {
    for (e, f) in [
        (2, Fault::Shape("{}")),
        (3, Fault::Shape("[]")),
        (1, Fault::Html),
    ] {
        let (_, target) = pair(Flavour::V2, Some((e, f)));
        let out = crate::support::tempdir("hostile-snap").join("snap.json");
        let o = crate::support::run(
            &[
                "snapshot",
                "--side",
                "target",
                "--namespace",
                standin::NAMESPACE,
                "--target-nacos",
                &target.base,
                "-o",
                out.to_str().unwrap(),
            ],
            &[
                ("NACOS_DRIFT_TARGET_NACOS_USERNAME", "nacos"),
                ("NACOS_DRIFT_TARGET_NACOS_PASSWORD", "pw"),
            ],
        );
        let text = crate::support::text(&o);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{} / {f:?}: {text}",
            ENDPOINTS[e].name
        );
        assert!(
            text.contains(&target.base) && text.contains(&format!("({})", ENDPOINTS[e].name)),
            "{text}"
        );
    }
}

#[test]
fn an_unknown_server_version_is_a_source_error_unless_pinned() {
    let future = |r: &Request, _: &Reply| {
        (p(r) == "/v1/console/server/state").then(|| Reply::json(r#"{"version":"4.0.0"}"#))
    };
    let (source, target) = (standin::start("tok", future), standin::start("tok", future));
    let args = [
        "--namespace",
        standin::NAMESPACE,
        "--settle",
        "0",
        "--source-nacos",
        &source.base,
        "--target-nacos",
        &target.base,
    ];
    let creds = [
        ("NACOS_DRIFT_SOURCE_NACOS_USERNAME", "nacos"),
        ("NACOS_DRIFT_SOURCE_NACOS_PASSWORD", "pw"),
        ("NACOS_DRIFT_TARGET_NACOS_USERNAME", "nacos"),
        ("NACOS_DRIFT_TARGET_NACOS_PASSWORD", "pw"),
    ];
    let r = audit(&args, &creds);
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output.contains("`4.0.0`")
            && r.output.contains("(server state)")
            && r.output.contains("nacos_version"),
        "{}",
        r.output
    );
    // Pinned (the stand-ins speak the 2.x API whatever they say): read, and the state is not asked.
    let asked = source.count("/v1/console/server/state");
    let mut pinned = creds.to_vec();
    pinned.extend([
        ("NACOS_DRIFT_SOURCE_NACOS_VERSION", "2.3.2"),
        ("NACOS_DRIFT_TARGET_NACOS_VERSION", "2.3.2"),
    ]);
    let r = audit(&args, &pinned);
    assert_eq!(r.code, 0, "{}", r.output);
    assert_eq!(source.count("/v1/console/server/state"), asked);
    // A pin that names no version nacos-drift knows is a configuration error.
    let mut bad = creds.to_vec();
    bad.push(("NACOS_DRIFT_TARGET_NACOS_VERSION", "4.0.0"));
    let r = audit(&args, &bad);
    assert_eq!(r.code, 2, "{}", r.output);
    assert!(r.output.contains("target.nacos_version"), "{}", r.output);
}
