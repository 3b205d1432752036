//! Faults a real server cannot be made to show on demand: a 500, a truncated body, a hang.
//!
//! A small HTTP stand-in plays the *target* node; the source is the bed's real r-nacos. The
//! stand-in answers login, version, namespaces and services like a 2.x node and injects the
//! fault into the config listing only, so each test shows what the audit does with that fault:
//! retried when transient, never counted as clean, always named with the node.

use crate::ops::{audit, Node};
use crate::support::{bed, unique};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// Every config listing answers 500.
    Always500,
    /// The first config listing answers 500, the next ones are fine.
    Once500,
    /// The config listing answers 200 with a body cut in the middle.
    Truncated,
    /// The config listing never answers.
    Hang,
}

/// The stand-in node: its base URL and how often the config listing was asked for.
struct FakeNode {
    base: String,
    listings: Arc<AtomicUsize>,
}

fn respond(mut s: &TcpStream, status: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn serve(mut s: TcpStream, namespace: &str, fault: Fault, listings: &AtomicUsize) {
    // The request head is enough: nothing here needs a body.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let target = head.split_whitespace().nth(1).unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/nacos/v1/auth/login" => {
            respond(&s, "200 OK", r#"{"accessToken":"fake","tokenTtl":18000}"#)
        }
        "/nacos/v1/console/server/state" => respond(&s, "200 OK", r#"{"version":"2.3.2"}"#),
        "/nacos/v1/console/namespaces" => respond(
            &s,
            "200 OK",
            &format!(
                r#"{{"code":200,"data":[{{"namespace":"","namespaceShowName":"public"}},{{"namespace":"{namespace}","namespaceShowName":"{namespace}"}}]}}"#
            ),
        ),
        "/nacos/v1/ns/catalog/services" => respond(&s, "200 OK", r#"{"count":0,"serviceList":[]}"#),
        "/nacos/v1/cs/configs" => {
            let n = listings.fetch_add(1, Ordering::SeqCst);
            let ok = r#"{"totalCount":0,"pageNumber":1,"pagesAvailable":0,"pageItems":[]}"#;
            match fault {
                Fault::Always500 => {
                    respond(&s, "500 Internal Server Error", r#"{"message":"boom"}"#)
                }
                Fault::Once500 if n == 0 => {
                    respond(&s, "500 Internal Server Error", r#"{"message":"boom"}"#);
                }
                Fault::Once500 => respond(&s, "200 OK", ok),
                Fault::Truncated => {
                    // Claims the whole body, sends half of it, then closes.
                    let body = r#"{"totalCount":1,"pageNumber":1,"pagesAvailable":1,"pageItems":[{"dataId":"a.yaml","group":"APP","content":"x"}]}"#;
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        body.len(),
                        &body[..body.len() / 2]
                    );
                }
                Fault::Hang => std::thread::sleep(std::time::Duration::from_secs(120)),
            }
        }
        _ => respond(&s, "404 Not Found", "{}"),
    }
}

fn fake_node(namespace: &str, fault: Fault) -> FakeNode {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/nacos", l.local_addr().unwrap());
    let listings = Arc::new(AtomicUsize::new(0));
    let (ns, count) = (namespace.to_owned(), listings.clone());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let (ns, count) = (ns.clone(), count.clone());
            // One thread per connection, so a hanging answer holds up nothing else.
            std::thread::spawn(move || serve(s, &ns, fault, &count));
        }
    });
    FakeNode { base, listings }
}

/// A fresh namespace on the real r-nacos source, and the stand-in target listing the same one.
fn run(fault: Fault, extra: &[&str]) -> Option<(crate::ops::Run, FakeNode)> {
    let b = bed()?;
    let ns = format!("it-{}", unique());
    Node::login(&b.source_rnacos, "", "").create_namespace(&ns);
    let fake = fake_node(&ns, fault);
    let mut args = vec![
        "--namespace",
        ns.as_str(),
        "--settle",
        "0",
        "--no-probe",
        "--source-nacos",
        b.source_rnacos.as_str(),
        "--target-nacos",
        fake.base.as_str(),
    ];
    args.extend_from_slice(extra);
    // The fake serves list pages, not the export zip a 2.x node answers by default.
    let env = [
        ("NACOS_DRIFT_TARGET_NACOS_USERNAME", "nacos"),
        ("NACOS_DRIFT_TARGET_NACOS_PASSWORD", "fake-secret-pw"),
        ("NACOS_DRIFT_AUDIT_CONFIG_META", "per-config"),
    ];
    Some((audit(&args, &env), fake))
}

#[test]
fn a_lasting_500_is_retried_then_reported_as_a_source_error() {
    let Some((r, fake)) = run(Fault::Always500, &[]) else {
        return;
    };
    assert_eq!(r.code, 3, "{}", r.output);
    assert_eq!(r.json["complete"], false);
    assert!(
        r.output.contains(&fake.base) && r.output.contains("HTTP 500"),
        "{}",
        r.output
    );
    // audit.retries defaults to 2: the first try and two retries.
    assert_eq!(fake.listings.load(Ordering::SeqCst), 3);
    assert!(!r.output.contains("fake-secret-pw"));
}

#[test]
fn a_transient_500_is_retried_and_the_audit_completes() {
    let Some((r, fake)) = run(Fault::Once500, &[]) else {
        return;
    };
    assert_eq!(r.json["complete"], true, "{}", r.output);
    assert_eq!(r.code, 0, "{}", r.output);
    assert_eq!(fake.listings.load(Ordering::SeqCst), 2);
}

#[test]
fn a_truncated_body_is_an_error_not_an_empty_listing() {
    let Some((r, fake)) = run(Fault::Truncated, &[]) else {
        return;
    };
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output.contains(&fake.base) && r.output.contains("truncated"),
        "{}",
        r.output
    );
}

#[test]
fn a_hanging_node_times_out_and_is_reported() {
    let Some((r, fake)) = run(Fault::Hang, &["--timeout", "2"]) else {
        return;
    };
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output.contains(&fake.base) && r.output.contains("timed out"),
        "{}",
        r.output
    );
}

/// A node that accepts connections and never answers (like a paused process) costs one timeout
/// and one retry, once per run: it is down for every later stage (settle re-check, probe, client
/// check), and its login is not tried again.
#[test]
fn a_hanging_node_costs_two_timeouts_once_per_run() {
    use crate::standin::{self, Reply};
    const TIMEOUT: u64 = 4;
    let healthy = standin::start("tok", |_, _| None);
    let hanging = standin::start("tok", |_, _| Some(Reply::Hang));
    // The target serves other content for the config, so that the settle re-check runs.
    let target = standin::start("tok", |r, good| {
        let Reply::Http(s, h, body) = good else {
            return None;
        };
        (r.path.ends_with("/v1/cs/configs") && r.param_is("search", "accurate")).then(|| {
            let body = String::from_utf8_lossy(body).replace("x: 1", "x: 2");
            Reply::Http(s, h.clone(), body.into_bytes())
        })
    });
    let sources = format!("{},{}", healthy.base, hanging.base);
    let t0 = std::time::Instant::now();
    let r = audit(
        &[
            "--namespace",
            standin::NAMESPACE,
            "--settle",
            "1",
            "--timeout",
            &TIMEOUT.to_string(),
            "--gate",
            "decommission-ready",
            "--source-nacos",
            &sources,
            "--target-nacos",
            &target.base,
        ],
        &[
            ("NACOS_DRIFT_SOURCE_NACOS_USERNAME", "nacos"),
            ("NACOS_DRIFT_SOURCE_NACOS_PASSWORD", "pw"),
            ("NACOS_DRIFT_TARGET_NACOS_USERNAME", "nacos"),
            ("NACOS_DRIFT_TARGET_NACOS_PASSWORD", "pw"),
            // The target's other content is written into its list pages, not into an export
            // zip: read configs from the list pages.
            ("NACOS_DRIFT_AUDIT_CONFIG_META", "per-config"),
        ],
    );
    let took = t0.elapsed();
    assert_eq!(r.code, 3, "{}", r.output);
    assert!(
        r.output.contains(&hanging.base) && r.output.contains("timed out"),
        "{}",
        r.output
    );
    // Every stage ran: the content drift was confirmed by the re-check, the healthy nodes probed.
    assert!(r.output.contains("config-content-differs"), "{}", r.output);
    // The login and one retry; no later stage connected again.
    let tries = hanging.connections.load(Ordering::SeqCst);
    assert!(
        tries <= 2,
        "the hanging node was asked {tries} times: {}",
        r.output
    );
    // Two timeouts, plus the rest of a small audit on a loaded machine.
    assert!(
        took < std::time::Duration::from_secs(2 * TIMEOUT + 15),
        "took {took:?}: {}",
        r.output
    );
}
