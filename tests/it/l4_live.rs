//! Issue 13 against the real test bed: L4, what the applications hold, seen through real
//! applications on official client libraries (installed by `tests/testbed/apps/setup`), started
//! and stopped by each test:
//! - the Node.js app on the `nacos` npm package (HTTP long polling, the 1.x protocol);
//! - the Python app on `nacos-sdk-python` 0.1.16 (its v1 `NacosClient`, HTTP long polling);
//! - the Java app on `com.alibaba.nacos:nacos-client` (gRPC), one naming client per cluster, as the
//!   migration's dual-registration agent does.
//!
//! Each test uses its own `l4-` namespace and scopes its audits to it: other helpers' clients
//! may be connected to the same nodes.

use crate::bed::TARGET_CACHE_LOCK;
use crate::cache_live::{Env, G};
use crate::ops::{audit, cred_env, md5, wait_until, Node, Run};
use crate::support::{bed, root, unique, Bed};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Install the apps once per test binary (idempotent: a no-op once installed).
fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let s = Command::new(root().join("tests/testbed/apps/setup"))
            .status()
            .expect("running tests/testbed/apps/setup");
        assert!(s.success(), "tests/testbed/apps/setup failed");
    });
}

/// `host:port` of a node URL.
fn addr(base: &str) -> String {
    base.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// A real application process; stdin closed (a clean shutdown) and reaped when dropped.
struct App {
    child: Child,
    lines: Receiver<String>,
    what: &'static str,
    /// The last lines the app wrote to stderr, for a failure's message.
    stderr: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

/// Lines of an app's output kept for a failure's message.
const KEPT_LINES: usize = 20;

impl App {
    fn start(mut cmd: Command, what: &'static str, bed: &Bed) -> App {
        setup();
        cmd.env("NACOS_USERNAME", &bed.username)
            .env("NACOS_PASSWORD", &bed.password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let (err, kept) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let mut k = kept.lock().unwrap();
                if k.len() == KEPT_LINES {
                    k.pop_front();
                }
                k.push_back(l);
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        App {
            child,
            lines,
            what,
            stderr,
        }
    }

    /// The Node.js app on the `nacos` npm package, long polling `data_ids` on one node.
    fn node(bed: &Bed, base: &str, ns: &str, data_ids: &[&str]) -> App {
        let mut c = Command::new("node");
        // The `nacos` npm client wraps its worker in `cluster-client`: every process on the host
        // with the same client name (`DiamondClient@<host>`) follows the leader on
        // NODE_CLUSTER_CLIENT_PORT (default 7777) and polls through it, so a second app (or
        // another test's) would listen on the first one's node. A free port of its own each.
        let (l, port) = crate::ops::live_port();
        drop(l);
        c.arg(root().join("tests/testbed/apps/node/app.js"))
            .env("NODE_CLUSTER_CLIENT_PORT", port.to_string())
            .env("APP_SERVER", addr(base))
            .env("APP_NAMESPACE", ns)
            .env("APP_GROUP", G)
            .env("APP_DATA_IDS", data_ids.join(","));
        let mut app = App::start(c, "the Node.js app (nacos npm, HTTP long polling)", bed);
        app.wait_for(|l| l.contains("\"event\":\"ready\""));
        app
    }

    /// The Python app on `nacos-sdk-python` 0.1.16 (HTTP long polling), on one node.
    fn python(bed: &Bed, base: &str, ns: &str, data_ids: &[&str]) -> App {
        let mut c = Command::new(root().join("tests/testbed/apps/python/.venv/bin/python"));
        c.arg(root().join("tests/testbed/apps/python/app.py"))
            .env("APP_SERVER", addr(base))
            .env("APP_NAMESPACE", ns)
            .env("APP_GROUP", G)
            .env("APP_DATA_IDS", data_ids.join(","));
        let mut app = App::start(
            c,
            "the Python app (nacos-sdk-python, HTTP long polling)",
            bed,
        );
        app.wait_for(|l| l.contains("\"event\": \"ready\""));
        app
    }

    /// The Java app on nacos-client: the same ephemeral instance registered in the source and
    /// the target, one naming client per cluster.
    fn java_dual(bed: &Bed, ns: &str, service: &str) -> App {
        let cp = std::fs::read_to_string(root().join("tests/testbed/apps/.cp-java.txt"))
            .expect("the nacos-client classpath (tests/testbed/apps/setup)");
        let logs = std::env::temp_dir().join("nacos-drift-l4-java");
        let mut c = Command::new("java");
        c.arg("-cp")
            .arg(cp.trim())
            .arg(format!("-DJM.LOG.PATH={}", logs.display()))
            .arg(root().join("tests/testbed/apps/java/DualApp.java"))
            .env("APP_SOURCE", addr(&bed.source_nacos[0]))
            .env("APP_TARGET", addr(&bed.target_nacos[0]))
            .env("APP_NAMESPACE", ns)
            .env("APP_GROUP", G)
            .env("APP_SERVICE", service)
            .env("APP_IP", "127.0.0.1")
            .env("APP_PORT", "18080");
        let mut app = App::start(c, "the Java app (nacos-client, gRPC)", bed);
        app.wait_for(|l| l == "ready");
        app
    }

    /// The Java app on nacos-client as a config client only (gRPC), listening on one node.
    fn java_config(bed: &Bed, base: &str, ns: &str, data_ids: &[&str]) -> App {
        let cp = std::fs::read_to_string(root().join("tests/testbed/apps/.cp-java.txt"))
            .expect("the nacos-client classpath (tests/testbed/apps/setup)");
        let logs = std::env::temp_dir().join("nacos-drift-l4-java");
        let mut c = Command::new("java");
        c.arg("-cp")
            .arg(cp.trim())
            .arg(format!("-DJM.LOG.PATH={}", logs.display()))
            .arg(root().join("tests/testbed/apps/java/DualApp.java"))
            .env("APP_CONFIG_SERVER", addr(base))
            .env("APP_NAMESPACE", ns)
            .env("APP_GROUP", G)
            .env("APP_DATA_IDS", data_ids.join(","));
        let mut app = App::start(c, "the Java app (nacos-client, gRPC)", bed);
        app.wait_for(|l| l == "ready");
        app
    }

    /// Wait (60 s at most) for a line the predicate accepts; returns it. A failure shows the
    /// app's last lines on stdout and stderr (a real client's own account of why).
    fn wait_for(&mut self, want: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(60);
        let mut seen = std::collections::VecDeque::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if want(&l) => return l,
                Ok(l) => {
                    if seen.len() == KEPT_LINES {
                        seen.pop_front();
                    }
                    seen.push_back(l);
                }
                Err(_) => break,
            }
        }
        let err: Vec<String> = self.stderr.lock().unwrap().iter().cloned().collect();
        panic!(
            "{} did not print the awaited line; its last stdout lines:\n{}\nits last stderr lines:\n{}",
            self.what,
            Vec::from(seen).join("\n"),
            err.join("\n")
        );
    }

    fn send(&mut self, cmd: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh `l4-` namespace with the bed's nodes (the L2 test environment, own prefix).
fn env(b: Bed) -> Env {
    let ns = format!("l4-{}", unique());
    let src = Node::login(&b.source_nacos[0], &b.username, &b.password);
    let tgt = b
        .target_nacos
        .iter()
        .map(|u| Node::login(u, &b.username, &b.password))
        .collect();
    src.create_namespace(&ns);
    Env {
        bed: b,
        ns,
        src,
        tgt,
    }
}

/// An API-only audit of the namespace (no DBs, no L2 probe), with extra flags and env.
fn api_audit(e: &Env, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec![
        "--namespace",
        &e.ns,
        "--settle",
        "0",
        "--no-probe",
        "--source-nacos",
        &e.bed.source_nacos[0],
    ];
    let targets = e.bed.target_nacos.join(",");
    args.extend(["--target-nacos", &targets]);
    args.extend_from_slice(extra);
    let creds = cred_env(&e.bed.username, &e.bed.password);
    let mut all: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(env);
    audit(&args, &all)
}

/// The findings of one code: `(node, instance, name, held, served, expected, detail)`.
fn of_code(r: &Run, code: &str) -> Vec<serde_json::Value> {
    r.json["findings"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter(|f| f["code"] == code)
        .cloned()
        .collect()
}

fn lines(r: &Run, key: &str) -> String {
    r.json[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// A long-polling client (the Node.js app on the `nacos` npm package) left on the source fails
/// `decommission-ready` with `client-on-source`, which the SDK connection list cannot show (it
/// lists gRPC clients only), and the gate passes once the app is stopped.
#[test]
fn a_long_polling_client_left_on_the_source_fails_decommission_until_stopped() {
    let Some(b) = bed() else { return };
    let e = env(b);
    e.src.publish(&e.ns, G, "app.properties", "a=1\n");
    e.replicated("app.properties", Some(&md5("a=1\n")));
    let gate = ["--gate", "decommission-ready"];
    // Another test's Java naming client on the source names no namespace, so it counts in every
    // namespace (`client-connected`) until it leaves: wait for a clean start.
    let _ = wait_until(60, || api_audit(&e, &gate, &[]).code == 0);
    let clean = api_audit(&e, &gate, &[]);
    assert_eq!(clean.code, 0, "no client yet: {}", clean.output);
    assert!(
        lines(&clean, "compared").contains("L4 (clients listening to each node"),
        "{}",
        clean.output
    );

    let app = App::node(&e.bed, &e.bed.source_nacos[0], &e.ns, &["app.properties"]);
    let r = api_audit(&e, &gate, &[]);
    assert_eq!(
        r.code, 1,
        "the Node.js app listens on the source: {}",
        r.output
    );
    let f = of_code(&r, "client-on-source");
    assert_eq!(f.len(), 1, "{}", r.output);
    assert_eq!(f[0]["layer"], "L4");
    assert_eq!(f[0]["namespace"], e.ns.as_str());
    assert_eq!(
        f[0]["instance"], "127.0.0.1",
        "the long-polling client's address"
    );
    assert_eq!(f[0]["node"], e.bed.source_nacos[0].as_str());
    assert!(
        f[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{G}/app.properties")),
        "{f:?}"
    );
    // The SDK connection list does not show it: only L4 does.
    assert!(of_code(&r, "client-connected").is_empty(), "{}", r.output);
    // Without per-config queries (more configs than audit.l4_per_config_max) a long-polling
    // client whose IP nothing names is not seen, and the report says so.
    let r0 = api_audit(&e, &gate, &[("NACOS_DRIFT_AUDIT_L4_PER_CONFIG_MAX", "0")]);
    assert!(
        lines(&r0, "not_compared").contains("per client IP only"),
        "{}",
        r0.output
    );

    drop(app);
    // The node drops a long-polling client when its held request times out (about 30 s).
    assert!(
        wait_until(60, || api_audit(&e, &gate, &[]).code == 0),
        "decommission-ready still fails after the Node.js app stopped"
    );
}

/// Asked per client IP only (`audit.l4_per_config_max = 0`, as above 200 configs), a
/// long-polling client (the Python app on `nacos-sdk-python`) is still found on the source when
/// its IP is a registered instance's: `client-on-source` until the app stops.
#[test]
fn a_python_long_polling_client_is_found_per_client_ip() {
    let Some(b) = bed() else { return };
    let e = env(b);
    e.src.publish(&e.ns, G, "py.properties", "p=1\n");
    e.replicated("py.properties", Some(&md5("p=1\n")));
    // The same persistent instance on both sides: nothing else is only on the source.
    let svc = format!("py-{}", e.ns);
    e.src.register(&e.ns, G, &svc, 18081, &[]);
    e.tgt[0].register(&e.ns, G, &svc, 18081, &[]);
    let gate = ["--gate", "decommission-ready"];
    let per_ip = [("NACOS_DRIFT_AUDIT_L4_PER_CONFIG_MAX", "0")];
    let _ = wait_until(60, || api_audit(&e, &gate, &per_ip).code == 0);
    let clean = api_audit(&e, &gate, &per_ip);
    assert_eq!(clean.code, 0, "no client yet: {}", clean.output);

    let app = App::python(&e.bed, &e.bed.source_nacos[0], &e.ns, &["py.properties"]);
    let r = api_audit(&e, &gate, &per_ip);
    assert_eq!(
        r.code, 1,
        "the Python app listens on the source: {}",
        r.output
    );
    let f = of_code(&r, "client-on-source");
    assert_eq!(f.len(), 1, "{}", r.output);
    assert_eq!(f[0]["instance"], "127.0.0.1");
    assert!(
        f[0]["detail"].as_str().unwrap().contains("py.properties"),
        "{f:?}"
    );
    drop(app);
    assert!(
        wait_until(60, || api_audit(&e, &gate, &per_ip).code == 0),
        "decommission-ready still fails after the Python app stopped"
    );
}

/// A client that holds an old md5 because its node is stale is `client-stale`, naming held,
/// served and expected md5s and the remedy; `--fix` repairs the node (never the client), the
/// node's notification makes the client read the config again, and the next audit is clean.
/// Two real clients, one per target node: the Node.js app on the `nacos` npm package (HTTP long
/// polling, seen under its remote address) and the Java app on nacos-client (gRPC, seen under
/// the `clientIp` it declares, found through the node's connection list).
#[test]
fn a_client_of_a_stale_node_is_client_stale_until_the_node_is_repaired() {
    let Some(b) = bed() else { return };
    let _caches = TARGET_CACHE_LOCK.blocking_lock();
    let e = env(b);
    let (v1, v2) = ("feature=off\n", "feature=on\n");
    e.src.publish(&e.ns, G, "flags.properties", v1);
    e.replicated("flags.properties", Some(&md5(v1)));
    for n in &e.tgt {
        e.refresh(n, &[("flags.properties", &md5(v1))]);
    }
    let node = e.bed.target_nacos[0].clone();
    let mut app = App::node(&e.bed, &node, &e.ns, &["flags.properties"]);
    let other = e.bed.target_nacos[1].clone();
    let mut java = App::java_config(&e.bed, &other, &e.ns, &["flags.properties"]);
    let l4 = ["--l4"];
    let clean = e.audit(&l4, &[]);
    assert_eq!(clean.code, 0, "fresh node, fresh client: {}", clean.output);

    // The source changes; the target DB follows; the target nodes are not told.
    e.src.publish(&e.ns, G, "flags.properties", v2);
    e.replicated("flags.properties", Some(&md5(v2)));
    let r = e.audit(&l4, &[]);
    assert_eq!(r.code, 1, "{}", r.output);
    let mut f = of_code(&r, "client-stale");
    assert_eq!(f.len(), 2, "one client on each node: {}", r.output);
    // The gRPC client, on the other node.
    let grpc = f.remove(f.iter().position(|x| x["node"] == other.as_str()).unwrap());
    assert_eq!(grpc["held_md5"], md5(v1).as_str(), "{grpc:?}");
    assert_eq!(grpc["expected_md5"], md5(v2).as_str(), "{grpc:?}");
    assert_eq!(f[0]["node"], node.as_str());
    assert_eq!(f[0]["side"], "target");
    assert_eq!(f[0]["instance"], "127.0.0.1");
    assert_eq!(f[0]["name"], "flags.properties");
    assert_eq!(f[0]["held_md5"], md5(v1).as_str());
    assert_eq!(f[0]["served_md5"], md5(v1).as_str());
    assert_eq!(f[0]["expected_md5"], md5(v2).as_str());
    let detail = f[0]["detail"].as_str().unwrap();
    assert!(detail.contains("repairs the node first"), "{detail}");
    // md5s only: the content itself is never printed.
    assert!(!r.output.contains("feature=o"), "{}", r.output);

    let fixed = e.audit(&["--l4", "--fix"], &[]);
    assert_ne!(fixed.code, 3, "{}", fixed.output);
    app.wait_for(|l| l.contains(&md5(v2)));
    java.wait_for(|l| l.contains(&md5(v2)));
    assert!(
        wait_until(30, || e.audit(&l4, &[]).code == 0),
        "the client still holds the old md5 after the node was repaired"
    );
}

/// The dual-registration agent, done by a real client: the Java app on nacos-client with one
/// naming client per cluster registers the same ephemeral instance in the source and the target.
/// `dual-registered` passes; closing its target registration (shutting that naming client down)
/// fails the gate with exactly that `instance-missing`; registering again passes.
#[test]
fn a_dual_registered_java_app_passes_until_its_target_registration_closes() {
    let Some(b) = bed() else { return };
    let e = env(b);
    let service = format!("svc-{}", e.ns);
    let mut app = App::java_dual(&e.bed, &e.ns, &service);
    let gate = ["--gate", "dual-registered"];
    assert!(
        wait_until(30, || api_audit(&e, &gate, &[]).code == 0),
        "the Java app registered on both sides, yet dual-registered fails: {}",
        api_audit(&e, &gate, &[]).output
    );

    app.send("stop target");
    app.wait_for(|l| l == "stopped target");
    let failing = |r: &Run| -> Vec<(String, String, String)> {
        r.json["findings"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .filter(|f| f["in_gate"] == true && f["level"] == "deny")
            .map(|f| {
                (
                    f["code"].as_str().unwrap_or("").to_owned(),
                    f["name"].as_str().unwrap_or("").to_owned(),
                    f["instance"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    assert!(
        wait_until(30, || api_audit(&e, &gate, &[]).code == 1),
        "the target registration closed, yet dual-registered passes"
    );
    let r = api_audit(&e, &gate, &[]);
    let f = failing(&r);
    assert_eq!(f.len(), 1, "{}", r.output);
    assert_eq!(f[0].0, "instance-missing", "{}", r.output);
    assert_eq!(f[0].1, service);
    assert!(f[0].2.starts_with("127.0.0.1:18080"), "{f:?}");

    app.send("start target");
    app.wait_for(|l| l == "registered target");
    assert!(
        wait_until(30, || api_audit(&e, &gate, &[]).code == 0),
        "registered again, yet dual-registered fails"
    );
}

/// On a Nacos 3.x source, L4 reads the v3 admin listener queries of the node itself
/// (`aggregation=false`): a gRPC config client (the Java app on nacos-client) listening on the 3.1
/// node is `client-on-source`, under the `clientIp` its connection declares; once it stops, the
/// gate passes.
#[test]
fn a_grpc_client_on_a_nacos3_source_is_client_on_source() {
    let Some(b) = bed() else { return };
    let ns = format!("l4-{}", unique());
    let n3 = Node::login(&b.nacos3, &b.username, &b.password);
    n3.create_namespace(&ns);
    n3.publish(&ns, G, "n3.properties", "x=1\n");
    // The same node on both sides: nothing differs, so only a client can fail the gate.
    let run = || {
        let creds = cred_env(&b.username, &b.password);
        let env: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
        audit(
            &[
                "--namespace",
                &ns,
                "--settle",
                "0",
                "--no-probe",
                "--gate",
                "decommission-ready",
                "--source-nacos",
                &b.nacos3,
                "--target-nacos",
                &b.nacos3,
            ],
            &env,
        )
    };
    let app = App::java_config(&b, &b.nacos3, &ns, &["n3.properties"]);
    let r = run();
    let f = of_code(&r, "client-on-source");
    assert_eq!(f.len(), 1, "{}", r.output);
    assert_eq!(f[0]["node"], b.nacos3.as_str());
    assert!(
        f[0]["detail"].as_str().unwrap().contains("n3.properties"),
        "{f:?}"
    );
    assert_eq!(r.code, 1, "{}", r.output);
    drop(app);
    assert!(
        wait_until(30, || run().code == 0),
        "decommission-ready still fails after the Java app stopped"
    );
}

/// A client listening to the same config on both sides (two Node.js apps on the `nacos` npm
/// package, HTTP long polling, both from 127.0.0.1: one on the source node, one on a target node)
/// is one `client-dual-subscribed` finding, information only: level `allow`, counted by no gate;
/// it is gone once the target app stops.
#[test]
fn a_client_listening_on_both_sides_is_one_information_finding() {
    let Some(b) = bed() else { return };
    let e = env(b);
    e.src.publish(&e.ns, G, "dual.properties", "d=1\n");
    e.replicated("dual.properties", Some(&md5("d=1\n")));
    // The target node serves the config once told (a node lists listeners of configs it has).
    {
        let _caches = TARGET_CACHE_LOCK.blocking_lock();
        e.refresh(&e.tgt[0], &[("dual.properties", &md5("d=1\n"))]);
    }
    let on_source = App::node(&e.bed, &e.bed.source_nacos[0], &e.ns, &["dual.properties"]);
    let on_target = App::node(&e.bed, &e.bed.target_nacos[0], &e.ns, &["dual.properties"]);
    let gate = ["--l4", "--gate", "dual-registered"];
    let r = api_audit(&e, &gate, &[]);
    let f = of_code(&r, "client-dual-subscribed");
    assert_eq!(f.len(), 1, "{}", r.output);
    assert_eq!(f[0]["layer"], "L4");
    assert_eq!(f[0]["level"], "allow");
    assert_eq!(f[0]["instance"], "127.0.0.1");
    assert!(
        f[0]["detail"].as_str().unwrap().contains("1 config(s)"),
        "{f:?}"
    );
    // No gate counts it: the source app is `client-on-source` (decommission), nothing more.
    for (gate, res) in r.json["gates"].as_object().unwrap() {
        assert!(
            res["by_code"].get("client-dual-subscribed").is_none(),
            "{gate}: {}",
            r.output
        );
    }
    assert_eq!(
        r.code, 0,
        "dual-registered is not failed by it: {}",
        r.output
    );
    drop(on_source);
    drop(on_target);
    // The node drops a long-polling client when its held request times out (about 30 s).
    assert!(
        wait_until(60, || of_code(
            &api_audit(&e, &gate, &[]),
            "client-dual-subscribed"
        )
        .is_empty()),
        "still reported after both apps stopped"
    );
}
