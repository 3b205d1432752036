//! JSON report: the versioned machine contract documented in the README ("JSON report").

use super::Report;
use std::io::Write;

/// Write the report as pretty JSON.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    out.write_all(b"\n")
}
