//! Hostile nodes: every endpoint nacos-drift calls, answered in every wrong way a node can
//! answer, must end the audit as incomplete (exit 3) with the node and endpoint named, never as
//! a clean or empty read, in bounded time and memory.
//!
//! Both sides are stand-ins (no real server answers `{}` to a config listing on demand): a
//! healthy one and one that is healthy except for one endpoint. The baseline, both healthy,
//! audits clean, so each failure below is the fault's doing.

use crate::ops::audit;
use crate::standin::{self, Reply, Request, StandIn};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// An endpoint: how to recognise its requests, how messages name it, and which faults apply.
struct Endpoint {
    /// As the error names it (`GET /v1/cs/configs (config list)` contains `(config list)`).
    name: &'static str,
    matches: fn(&Request) -> bool,
    /// Any JSON shape is an error here (not so for served content, which may be anything).
    json: bool,
    /// Paged by a total: a total that disagrees with the items is an error.
    paged: bool,
    /// The source side is the hostile one (the SDK-connections check asks the source only).
    on_source: bool,
}

fn p(r: &Request) -> &str {
    r.path.strip_prefix("/nacos").unwrap_or(&r.path)
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        name: "login",
        matches: |r| p(r) == "/v1/auth/login",
        json: true,
        paged: false,
        on_source: false,
    },
    Endpoint {
        name: "server state",
        matches: |r| p(r) == "/v1/console/server/state",
        json: true,
        paged: false,
        on_source: false,
    },
    Endpoint {
        name: "namespace list",
        matches: |r| p(r) == "/v1/console/namespaces",
        json: true,
        paged: false,
        on_source: false,
    },
    Endpoint {
        name: "config list",
        matches: |r| p(r) == "/v1/cs/configs" && r.param_is("search", "accurate"),
        json: true,
        paged: true,
        on_source: false,
    },
    Endpoint {
        name: "config detail",
        matches: |r| p(r) == "/v1/cs/configs" && r.param_is("show", "all"),
        json: true,
        paged: false,
        on_source: false,
    },
    Endpoint {
        name: "service list",
        matches: |r| p(r) == "/v1/ns/catalog/services",
        json: true,
        paged: true,
        on_source: false,
    },
    Endpoint {
        name: "service detail",
        matches: |r| p(r) == "/v1/ns/service",
        json: true,
        paged: false,
        on_source: false,
    },
    Endpoint {
        name: "instance list",
        matches: |r| p(r) == "/v1/ns/catalog/instances",
        json: true,
        paged: true,
        on_source: false,
    },
    Endpoint {
        name: "cluster members",
        matches: |r| p(r) == "/v1/core/cluster/nodes",
        json: true,
        paged: false,
        on_source: false,
    },
    Endpoint {
        name: "listener probe",
        matches: |r| p(r) == "/v1/cs/configs/listener",
        json: true,
        paged: false,
        on_source: false,
    },
    Endpoint {
        name: "served config",
        matches: |r| {
            p(r) == "/v1/cs/configs"
                && !r.param_is("show", "all")
                && !r.param_is("search", "accurate")
        },
        json: false,
        paged: false,
        on_source: false,
    },
    Endpoint {
        name: "SDK connections",
        matches: |r| p(r) == "/v2/core/loader/current",
        json: true,
        paged: false,
        on_source: true,
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
}

const SHAPES: [&str; 6] = ["{}", "[]", "null", "0", "\"\"", r#"{"status":"ok"}"#];

fn faults_for(e: &Endpoint) -> Vec<Fault> {
    let mut out = Vec::new();
    if e.json {
        // `{}` is what a node with no SDK client connected answers (an empty map of
        // connections), so for that endpoint it is no wrong shape.
        let empty_map_ok = e.name == "SDK connections";
        out.extend(
            SHAPES
                .iter()
                .filter(|s| !(empty_map_ok && **s == "{}"))
                .map(|s| Fault::Shape(s)),
        );
        out.extend([Fault::Empty, Fault::Html]);
    } else {
        out.push(Fault::BadMd5);
    }
    out.extend([Fault::Redirect, Fault::OverCap, Fault::Truncated]);
    if e.paged {
        out.extend([Fault::ShortPage, Fault::LongPage]);
    }
    out
}

/// The healthy answer with its total (`totalCount` or `count`) replaced.
fn with_total(good: &Reply, total: u64) -> Reply {
    let Reply::Http(status, headers, body) = good else {
        return good.clone();
    };
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    for k in ["totalCount", "count"] {
        if v.get(k).is_some() {
            v[k] = total.into();
        }
    }
    Reply::Http(status, headers.clone(), serde_json::to_vec(&v).unwrap())
}

fn reply(f: Fault, good: &Reply) -> Reply {
    match f {
        Fault::Shape(s) => Reply::json(s),
        Fault::Empty => Reply::json(""),
        Fault::Html => Reply::text(
            "text/html;charset=UTF-8",
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>...</form></body></html>",
        ),
        Fault::Redirect => Reply::Http(
            "302 Found",
            vec![("Location".into(), "http://127.0.0.1:9/sso/login?next=%2Fnacos&t=1".into())],
            Vec::new(),
        ),
        Fault::OverCap => Reply::Endless,
        Fault::Truncated => match good {
            Reply::Http(_, _, body) => Reply::Truncated(body.clone()),
            other => other.clone(),
        },
        Fault::ShortPage => with_total(good, 5),
        Fault::LongPage => with_total(good, 0),
        Fault::BadMd5 => Reply::Http(
            "200 OK",
            vec![("Content-MD5".into(), "<script>".into())],
            b"x: 1".to_vec(),
        ),
    }
}

/// A listener answer that names the stand-in's config as changed, so that its served content is read.
fn flag_the_config(r: &Request) -> Option<Reply> {
    (p(r) == "/v1/cs/configs/listener").then(|| {
        Reply::text(
            "text/html;charset=UTF-8",
            &format!(
                "{}%02APP%02{}%01nacos-drift.probe-canary%02DEFAULT_GROUP%01",
                standin::DATA_ID,
                standin::NAMESPACE
            ),
        )
    })
}

fn pair(hostile: Option<(usize, Fault)>) -> (StandIn, StandIn, Option<usize>) {
    let on_source = hostile.is_some_and(|(e, _)| ENDPOINTS[e].on_source);
    let make = |me_hostile: bool| {
        standin::start("tok-hostile", move |r, good| {
            let (e, f) = hostile.filter(|_| me_hostile)?;
            let ep = &ENDPOINTS[e];
            if (ep.matches)(r) {
                return Some(reply(f, good));
            }
            if ep.name == "served config" {
                return flag_the_config(r);
            }
            None
        })
    };
    let source = make(on_source);
    let target = make(!on_source);
    (source, target, hostile.map(|(e, _)| e))
}

fn run(source: &StandIn, target: &StandIn) -> (crate::ops::Run, Duration) {
    let t0 = Instant::now();
    let r = audit(
        &[
            "--namespace",
            standin::NAMESPACE,
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
        ],
    );
    (r, t0.elapsed())
}

#[test]
fn two_healthy_stand_ins_audit_clean() {
    let (source, target, _) = pair(None);
    let (r, _) = run(&source, &target);
    assert_eq!(r.code, 0, "{}", r.output);
    // Every endpoint of the table was asked (served config only when a key is flagged).
    for e in ENDPOINTS.iter().filter(|e| e.name != "served config") {
        let asked = [&source, &target]
            .iter()
            .any(|s| s.requests.lock().unwrap().iter().any(|r| (e.matches)(r)));
        assert!(asked, "{} was never asked", e.name);
    }
}

#[test]
fn every_wrong_answer_of_every_endpoint_is_a_named_source_error() {
    let cases: Vec<(usize, Fault)> = ENDPOINTS
        .iter()
        .enumerate()
        .flat_map(|(i, e)| faults_for(e).into_iter().map(move |f| (i, f)))
        .collect();
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    // A few at a time: each case is one short nacos-drift run against two local stand-ins.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(e, f)) = cases.get(i) else { break };
                if let Err(why) = one_case(e, f) {
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

fn one_case(e: usize, f: Fault) -> Result<(), String> {
    let ep = &ENDPOINTS[e];
    let (source, target, _) = pair(Some((e, f)));
    let hostile = if ep.on_source { &source } else { &target };
    let (r, took) = run(&source, &target);
    let case = format!("{} / {f:?}", ep.name);
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
        let (_, target, _) = pair(Some((e, f)));
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
