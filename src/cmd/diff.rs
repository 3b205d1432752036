//! `nacos-drift diff`: two snapshot files compared offline (A = source, B = target).

use crate::cli::DiffArgs;
use crate::diff::{self, Scope};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitStatus;
use crate::model::{Side, SideSnapshot, SNAPSHOT_SCHEMA_VERSION};
use crate::report::escape::eprintln_visible as eprintln_safe;
use crate::run::finish::{capture_errors, emit, finish};
use crate::settings::{self, Inputs};
use std::path::Path;

/// Read and check a snapshot file.
pub fn load_snapshot(path: &Path) -> Result<SideSnapshot> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::with_source(
            ErrorKind::Usage,
            format!("reading snapshot {}", path.display()),
            e,
        )
    })?;
    let snap: SideSnapshot = serde_json::from_str(&text).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!(
                "{}:{}:{}: invalid snapshot: {e}",
                path.display(),
                e.line(),
                e.column()
            ),
        )
    })?;
    if snap.schema_version != SNAPSHOT_SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("{}: snapshot schema_version {} is not supported (expected {SNAPSHOT_SCHEMA_VERSION})", path.display(), snap.schema_version),
        ));
    }
    snap.check_unique_keys()
        .map_err(|e| Error::new(ErrorKind::Usage, format!("{}: {e}", path.display())))?;
    Ok(snap)
}

/// `nacos-drift diff`: compare two snapshot files offline, same findings and reports as `audit`.
pub(crate) fn run(a: &DiffArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<ExitStatus> {
    let settings = settings::resolve(&Inputs {
        sides: None,
        report: Some(&a.report),
        config: a.config.as_deref(),
        namespaces: &a.namespaces,
        settle: None,
        state: None,
        no_probe: false,
        env,
    })?;
    super::check_since(&settings)?;
    let mut source = load_snapshot(&a.source)?;
    let mut target = load_snapshot(&a.target)?;
    let warning = crate::model::check_sides(
        source.side,
        &a.source.display().to_string(),
        target.side,
        &a.target.display().to_string(),
    )
    .map_err(|e| Error::new(ErrorKind::Usage, e))?;
    if let Some(w) = warning {
        eprintln_safe(&format!("warning: {w}"));
    }
    for snap in [&mut source, &mut target] {
        if let Some(api) = &mut snap.api {
            diff::hash_contents(&mut api.configs);
        }
        if let Some(db) = &mut snap.db {
            diff::hash_contents(&mut db.configs);
        }
    }
    let scope = Scope::new(&settings);
    let mut findings = diff::compare(&source, &target, &scope, None);
    crate::run::settle::drop_unread(&mut findings, &source, &target, &scope);
    findings.extend(capture_errors(&source, Side::Source));
    findings.extend(capture_errors(&target, Side::Target));
    let mut report = finish(&settings, "diff", findings, &source, &target);
    crate::report::coverage::apply(&mut report, &settings, &scope, &source, &target);
    emit(&report, &settings)
}
