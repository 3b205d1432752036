//! JSON report: the versioned machine contract documented in the README ("JSON report").

use super::gates::Gates;
use super::Report;
use serde::Serialize;
use std::io::Write;

/// The report with every gate's verdict (computed from it, so never out of step with it).
#[derive(Serialize)]
struct WithGates<'a> {
    #[serde(flatten)]
    report: &'a Report,
    gates: Gates,
}

/// Write the report as pretty JSON.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let with = WithGates {
        report: r,
        gates: r.gates(),
    };
    serde_json::to_writer_pretty(&mut *out, &with)?;
    out.write_all(b"\n")
}
