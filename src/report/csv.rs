//! CSV report: one row per finding, fixed header.

use super::Report;
use std::io::Write;

/// Column names, in order.
pub const HEADER: [&str; 18] = [
    "code",
    "level",
    "layer",
    "in_gate",
    "side",
    "namespace",
    "group",
    "name",
    "variant",
    "instance",
    "node",
    "fields",
    "source_digest",
    "target_digest",
    "expected_md5",
    "served_md5",
    "repair",
    "detail",
];

/// Write one row per finding.
pub fn write(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(HEADER)?;
    for f in &r.findings {
        w.write_record([
            f.code.as_str(),
            f.level.as_str(),
            f.layer.as_str(),
            if f.in_gate { "true" } else { "false" },
            f.side.as_deref().unwrap_or(""),
            &f.namespace,
            &f.group,
            &f.name,
            f.variant.as_deref().unwrap_or(""),
            f.instance.as_deref().unwrap_or(""),
            f.node.as_deref().unwrap_or(""),
            &f.fields.join(";"),
            f.source_digest.as_deref().unwrap_or(""),
            f.target_digest.as_deref().unwrap_or(""),
            f.expected_md5.as_deref().unwrap_or(""),
            f.served_md5.as_deref().unwrap_or(""),
            f.repair.as_deref().unwrap_or(""),
            &f.detail,
        ])?;
    }
    w.flush()?;
    Ok(())
}
