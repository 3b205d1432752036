//! The access token travels in a request header, never in a URL, and redirects are never followed.
//!
//! Live: a whole audit against the bed's Java nodes (2.0.4 source, 2.3.2 target cluster, 3.1),
//! checked against what those nodes log: their Tomcat access logs (`%h %t "%r" %s %b`, the
//! request line with its query) under the bed's node homes. Stand-in: a node that answers with
//! redirects, which must cost nothing but a `source-error`.

use crate::ops::{audit, cred_env, Node};
use crate::standin::{self, Reply};
use crate::support::{bed, unique};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The access log files of the Java node at `base` (`http://127.0.0.1:<port>/nacos`).
fn access_logs(home: &std::path::Path, base: &str) -> Vec<PathBuf> {
    let port = base
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap_or("");
    let mut out = Vec::new();
    for dir in [format!("nacos-{port}"), format!("nacos3-{port}")] {
        let logs = home.join(dir).join("logs");
        if let Ok(rd) = std::fs::read_dir(&logs) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("access_log") && name.ends_with(".log") {
                    out.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// Every access log of these nodes with its current length, to read only what comes after.
fn marks(home: &std::path::Path, bases: &[&str]) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for b in bases {
        let files = access_logs(home, b);
        assert!(
            !files.is_empty(),
            "no access log for {b} under {} (the bed writes nacos-<port>/logs/access_log*.log)",
            home.display()
        );
        for f in files {
            let len = std::fs::metadata(&f).map_or(0, |m| m.len());
            out.push((f, len));
        }
    }
    out
}

/// The request lines logged since the marks.
fn lines_since(marks: &[(PathBuf, u64)]) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut out = Vec::new();
    for (f, from) in marks {
        let mut file = std::fs::File::open(f).unwrap();
        file.seek(SeekFrom::Start(*from)).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        out.extend(text.lines().map(str::to_owned));
    }
    out
}

#[test]
fn no_request_of_an_audit_carries_the_token_or_the_password_in_its_url() {
    let Some(b) = bed() else { return };
    // A namespace of its own on every node, so that the audit's own requests can be told from
    // those of tests running at the same time (their helpers may put a token in a URL).
    let ns = format!("it-tok-{}", unique());
    let java: Vec<&str> = b
        .source_nacos
        .iter()
        .chain(&b.target_nacos)
        .map(String::as_str)
        .chain([b.nacos3.as_str()])
        .collect();
    for base in &java {
        let n = Node::login(base, &b.username, &b.password);
        n.create_namespace(&ns);
        n.publish(&ns, "TOK", "app.properties", "a=1\n");
    }
    let before = marks(&b.home, &java);
    let env = cred_env(&b.username, &b.password);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The cluster's data is read from its first node, so each Java node is the first of a side
    // once: 2.0.4 → 2.3.2 cluster (second node first) with the L2 probe and the decommission
    // check (SDK connections), then 2.3.2 (the other node) → 3.1 (v3 admin API).
    let target_nodes = b
        .target_nacos
        .iter()
        .rev()
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    let runs = [
        audit(
            &[
                "--namespace",
                &ns,
                "--settle",
                "0",
                "--gate",
                "decommission-ready",
                "--source-nacos",
                &b.source_nacos[0],
                "--target-nacos",
                &target_nodes,
            ],
            &env,
        ),
        audit(
            &[
                "--namespace",
                &ns,
                "--settle",
                "0",
                "--source-nacos",
                &b.target_nacos[0],
                "--target-nacos",
                &b.nacos3,
            ],
            &env,
        ),
    ];
    for r in &runs {
        assert_ne!(r.code, 3, "the audit must read every node: {}", r.output);
    }
    // Tomcat's access log is buffered and written every few seconds, in order: a marker request
    // to each node, once it shows up in the log, says every earlier request is there too.
    let marker = format!("marker-{}", unique());
    for base in &java {
        let url = format!("{base}/v1/console/health/readiness?{marker}");
        let _ = crate::ops::block(reqwest::get(url));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let lines = loop {
        let lines = lines_since(&before);
        let flushed = java.iter().all(|base| {
            let here = access_logs(&b.home, base);
            lines_since(
                &before
                    .iter()
                    .filter(|(f, _)| here.contains(f))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
            .iter()
            .any(|l| l.contains(&marker))
        });
        if flushed {
            break lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the access logs never showed the marker request"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    // The audit's own requests are the lines carrying its User-Agent (the bed logs
    // `%{User-Agent}i`; `transport::http_client_tls` sets `nacos-drift/<version>`). Applications'
    // official SDKs that other tests run meanwhile put credentials in URLs themselves (the Java
    // client's login query, the `nacos` npm client's config GETs, `nacos-sdk-python` 0.1's login):
    // those are theirs, and nothing of ours may look like them. The password is never in any of
    // our request lines (every login sends it in a form body); the bed's password is `nacos`, as
    // is the context path: look for the parameters.
    let ours_any: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"nacos-drift/"))
        .collect();
    assert!(
        !ours_any.is_empty(),
        "no access-log line carries nacos-drift's User-Agent: the bed must log %{{User-Agent}}i \
         (restart it with this checkout's tests/testbed/testbed)"
    );
    let leaked: Vec<&&String> = ours_any
        .iter()
        .filter(|l| {
            // `username=` empty is the auth lists' search filter (`/v1/auth/users?…&username=`,
            // `UserController`/`RoleController`), not a credential.
            let named_user = l
                .match_indices("username=")
                .any(|(i, m)| !matches!(l[i + m.len()..].chars().next(), Some('&' | ' ') | None));
            l.contains("password=")
                || named_user
                || l.contains("accessToken=")
                || l.contains("accessToken%3D")
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "credentials in request lines: {leaked:?}"
    );
    // The audit's own requests: those naming its namespace.
    let ours: Vec<&String> = lines.iter().filter(|l| l.contains(&ns)).collect();
    for base in &java {
        let port = base
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .unwrap();
        let here = access_logs(&b.home, base);
        let on_node = lines_since(
            &before
                .iter()
                .filter(|(f, _)| here.contains(f))
                .cloned()
                .collect::<Vec<_>>(),
        );
        assert!(
            on_node
                .iter()
                .any(|l| l.contains(&ns) && l.contains(" 200 ")),
            "no request of the audit reached {base} (port {port}) with HTTP 200: {on_node:?}"
        );
    }
    let with_token: Vec<&&String> = ours
        .iter()
        .filter(|l| l.contains("accessToken=") || l.contains("accessToken%3D"))
        .collect();
    assert!(
        with_token.is_empty(),
        "token in the URL of the audit's requests: {with_token:?}"
    );
}

#[test]
fn a_redirect_is_not_followed_and_is_a_source_error_naming_status_and_location() {
    // Where the redirect points: must never be contacted.
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    let trapped = Arc::new(AtomicUsize::new(0));
    let t = trapped.clone();
    std::thread::spawn(move || {
        for _ in trap.incoming() {
            t.fetch_add(1, Ordering::SeqCst);
        }
    });
    let token = format!("tok{}", unique());
    let location =
        format!("http://127.0.0.1:{trap_port}/stolen/state?accessToken={token}&x=1#frag");
    for login_too in [false, true] {
        let loc = location.clone();
        let node = standin::start(&token, move |r, _| {
            (login_too || !r.path.ends_with("/v1/auth/login")).then(|| {
                Reply::Http(
                    "302 Found",
                    vec![("Location".into(), loc.clone())],
                    Vec::new(),
                )
            })
        });
        let source = standin::start(&token, |_, _| None);
        let r = audit(
            &[
                "--namespace",
                standin::NAMESPACE,
                "--settle",
                "0",
                "--source-nacos",
                &source.base,
                "--target-nacos",
                &node.base,
            ],
            &[
                ("NACOS_DRIFT_SOURCE_NACOS_USERNAME", "nacos"),
                ("NACOS_DRIFT_SOURCE_NACOS_PASSWORD", "pw-never-in-urls"),
                ("NACOS_DRIFT_TARGET_NACOS_USERNAME", "nacos"),
                ("NACOS_DRIFT_TARGET_NACOS_PASSWORD", "pw-never-in-urls"),
            ],
        );
        assert_eq!(r.code, 3, "{}", r.output);
        assert_eq!(r.json["complete"], false, "{}", r.output);
        let shown = format!("http://127.0.0.1:{trap_port}/stolen/state");
        assert!(
            r.output.contains(&node.base)
                && r.output.contains("HTTP 302")
                && r.output.contains(&shown),
            "the error names the node, the status and where it pointed: {}",
            r.output
        );
        assert!(
            !r.output.contains(&token) && !r.output.contains("x=1") && !r.output.contains("frag"),
            "the Location is shown without its query: {}",
            r.output
        );
        assert_eq!(
            trapped.load(Ordering::SeqCst),
            0,
            "the redirect was followed"
        );
        for s in [&node, &source] {
            for req in s.requests.lock().unwrap().iter() {
                let line = req.head.lines().next().unwrap_or("");
                assert!(
                    !line.contains(&token) && !line.contains("accessToken"),
                    "token in a URL: {line}"
                );
                assert!(
                    !line.contains("pw-never-in-urls"),
                    "password in a URL: {line}"
                );
            }
        }
        // The healthy source was read with the token in a header.
        let heads = source.requests.lock().unwrap();
        assert!(
            heads
                .iter()
                .any(|r| r.head.contains(&format!("authorization: Bearer {token}"))),
            "{heads:?}"
        );
    }
}
