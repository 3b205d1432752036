//! Build script: records the commit the binary is built from, for `nacos-drift --version`.

use std::process::Command;

fn main() {
    // A build outside a git checkout (a crate tarball) says so instead of failing.
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown commit".to_owned());
    // Not a NACOS_DRIFT_* name: cargo also exports it to `cargo run`/`cargo test`, and every
    // NACOS_DRIFT_* variable is a setting (an unknown one is refused).
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it points at (a commit).
    // Paths come from git, so a linked worktree (where `.git` is a file) is watched too.
    let git_path = |p: &str| {
        Command::new("git")
            .args(["rev-parse", "--git-path", p])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    };
    let mut watch: Vec<String> = ["HEAD", "packed-refs"]
        .iter()
        .filter_map(|p| git_path(p))
        .collect();
    if let Some(head) = git_path("HEAD").and_then(|h| std::fs::read_to_string(h).ok()) {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            watch.extend(git_path(r));
        }
    }
    for p in watch {
        if std::path::Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=src/build.rs");
}
