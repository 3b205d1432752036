//! `nacos-drift snapshot`: capture one side (DB and/or API) to a JSON snapshot file.

use crate::cancel::Stopper;
use crate::capture;
use crate::cli::SnapshotArgs;
use crate::diff::{self, Scope};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitStatus;
use crate::finding::Layer;
use crate::model::Side;
use crate::report::escape::eprintln_visible as eprintln_safe;
use crate::run::context::{filters, runtime, RunContext};
use crate::settings::{self, Inputs};
use std::path::Path;
use std::sync::Arc;

/// `nacos-drift snapshot`: capture one side to a JSON file.
pub(crate) fn run(a: &SnapshotArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<ExitStatus> {
    let settings = settings::resolve(&Inputs {
        sides: Some(&a.sides),
        report: None,
        config: a.sides.config.as_deref(),
        namespaces: &[],
        settle: None,
        state: None,
        no_probe: false,
        env,
    })?;
    let side = match a.side.as_str() {
        "source" => Side::Source,
        "target" => Side::Target,
        other => {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("--side must be `source` or `target`, not `{other}`"),
            ))
        }
    };
    let conf = if side == Side::Source {
        &settings.source
    } else {
        &settings.target
    };
    if conf.nacos.is_empty() && conf.db.is_none() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "nothing to snapshot: the {side} has no Nacos nodes and no database configured"
            ),
        ));
    }
    let scope = Arc::new(Scope::new(&settings));
    let (sf, tf) = filters(&scope);
    let rt = runtime()?;
    let stop = Stopper::new(settings.deadline_secs);
    // This side's node clients and DB pool, built once and closed below.
    let ctx = RunContext::for_side(&settings, side, stop.deadline());
    let captured = stop.run(
        &rt,
        &format!("reading the {side}"),
        Layer::L1,
        capture::capture(
            side,
            conf,
            ctx.side(side),
            if side == Side::Source { sf } else { tf },
            &settings.namespaces,
            None,
            true,
        ),
    );
    rt.block_on(ctx.close_dbs());
    rt.shutdown_background();
    crate::progress::clear();
    let mut snap = captured.map_err(|s| {
        Error::new(
            ErrorKind::Source,
            format!("snapshot not written: {} while {}", s.why, s.during),
        )
    })?;
    if let Some(api) = &mut snap.api {
        diff::hash_contents(&mut api.configs);
    }
    let errors = snap
        .db
        .iter()
        .flat_map(|d| d.errors.iter())
        .chain(snap.api.iter().flat_map(|a| a.errors.iter()))
        .count();
    let json = serde_json::to_vec_pretty(&snap)
        .map_err(|e| Error::with_source(ErrorKind::Report, "serialising the snapshot", e))?;
    write_atomic(&a.output, &json)?;
    for e in snap
        .db
        .iter()
        .flat_map(|d| d.errors.iter())
        .chain(snap.api.iter().flat_map(|a| a.errors.iter()))
    {
        eprintln_safe(&format!("error: {}", e.message));
    }
    eprintln_safe(&format!(
        "snapshot of the {side} written to {}",
        a.output.display()
    ));
    Ok(if errors > 0 {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Clean
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::outdir::write_atomic(&path.with_extension("tmp"), path, bytes).map_err(|e| {
        Error::with_source(ErrorKind::Report, format!("writing {}", path.display()), e)
    })
}
