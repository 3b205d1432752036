//! The deployment examples in `fixtures/deploy/` name only flags and settings that exist: each
//! `nacos-drift audit` command they contain is run with `--check-config` (no server contacted).

use crate::support::{root, run, tempdir, text};

/// A command found in an example file: its arguments after `nacos-drift`.
struct Found {
    file: String,
    args: Vec<String>,
}

/// Every `nacos-drift audit ...` command in a file: shell lines (cron, CI scripts) and the
/// Kubernetes `args: [...]` flow list (written as JSON so a JSON parser reads it).
fn commands(file: &str) -> Vec<Found> {
    let text = std::fs::read_to_string(root().join("fixtures/deploy").join(file)).unwrap();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if let Some(at) = line.find("nacos-drift audit ") {
            // These examples quote nothing: whitespace splitting is the shell's splitting here.
            let args = line[at + "nacos-drift ".len()..]
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            out.push(Found {
                file: file.to_owned(),
                args,
            });
        } else if let Some(list) = line.trim().strip_prefix("args: ") {
            let args: Vec<String> = serde_json::from_str(list)
                .unwrap_or_else(|e| panic!("{file}: args is not a JSON list: {e}"));
            out.push(Found {
                file: file.to_owned(),
                args,
            });
        }
    }
    out
}

/// The `NACOS_DRIFT_*` variables an example sets.
fn env_names(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("fixtures/deploy").join(file)).unwrap();
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("NACOS_DRIFT_"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Point the paths of a production host at this checkout and a temp dir; keep every flag.
fn localise(args: &[String], tmp: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        out.push(a.clone());
        let local = match a.as_str() {
            "--config" => Some(root().join("fixtures/deploy/nacos-drift.toml")),
            "--out" => Some(tmp.join("out")),
            "--state" => Some(tmp.join("state.json")),
            _ => None,
        };
        if let Some(p) = local {
            it.next().expect("flag without a value");
            out.push(p.display().to_string());
        }
    }
    out.push("--check-config".into());
    out
}

#[test]
fn deployment_examples_name_only_existing_flags_and_settings() {
    let files = [
        "cron.txt",
        "cronjob.yaml",
        "github-actions.yml",
        "gitlab-ci.yml",
    ];
    let mut checked = 0;
    for file in files {
        let found = commands(file);
        assert!(
            !found.is_empty(),
            "{file}: no nacos-drift audit command found"
        );
        let env: Vec<(String, String)> = env_names(file)
            .into_iter()
            .map(|n| (n, "not-a-real-password".to_owned()))
            .collect();
        let env_ref: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for f in found {
            let tmp = tempdir("deploy");
            let args = localise(&f.args, &tmp);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = run(&argv, &env_ref);
            let t = text(&o);
            assert_eq!(o.status.code(), Some(0), "{}: {argv:?}\n{t}", f.file);
            assert!(t.contains("configuration OK"), "{}: {t}", f.file);
            assert!(
                !t.contains("not-a-real-password"),
                "{}: a secret echoed: {t}",
                f.file
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} commands checked");
}

#[test]
fn check_config_rejects_what_does_not_exist_and_contacts_nothing() {
    // The check can fail: an unknown flag is a usage error (exit 2) ...
    let o = run(
        &[
            "audit",
            "--config",
            "fixtures/deploy/nacos-drift.toml",
            "--no-such-flag",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // ... and a valid command answers at once although no node or DB of the example exists.
    let o = run(
        &[
            "audit",
            "--config",
            "fixtures/deploy/nacos-drift.toml",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("source: nacos nodes: http://nacos-0.nacos.svc:8848/nacos"),
        "{t}"
    );
}

#[test]
fn completions_man_page_and_version_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell], &[]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        // Every subcommand and a flag of `audit` are offered.
        for word in ["audit", "snapshot", "diff", "gate", "check-config"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let o = run(&["man"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let man = String::from_utf8_lossy(&o.stdout);
    assert!(
        man.starts_with(".ie") || man.contains(".TH nacos-drift 1"),
        "{man}"
    );
    assert!(man.contains("audit"), "{man}");
    let o = run(&["--version"], &[]);
    let v = String::from_utf8_lossy(&o.stdout);
    // `nacos-drift 0.1.0 (<commit>)`: the commit is the checkout's HEAD, abbreviated.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .expect("git");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(
        v.starts_with(&format!("nacos-drift {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    if !head.is_empty() {
        assert!(v.contains(&head), "version {v} does not name HEAD {head}");
    }
}
