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
    let mut watch = vec![".git/HEAD".to_owned(), ".git/packed-refs".to_owned()];
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            watch.push(format!(".git/{r}"));
        }
    }
    for p in watch {
        if std::path::Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=src/build.rs");
}
