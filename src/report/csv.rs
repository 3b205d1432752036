//! CSV report: one row per finding, fixed header.
//!
//! Cells keep their text (quoted where CSV needs it), except that a cell a spreadsheet would
//! run as a formula gets a leading `'` (OWASP, "CSV Injection").

use super::Report;
use std::borrow::Cow;
use std::io::Write;

/// The first characters that make Excel, LibreOffice or Google Sheets read a cell as a formula
/// (OWASP: `=`, `+`, `-`, `@`, tab, carriage return), and their full-width forms, which
/// East-Asian spreadsheet locales accept as the same.
const FORMULA_STARTS: [char; 10] = [
    '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// A cell safe to open in a spreadsheet: one starting with a formula character gets a leading
/// `'`, which spreadsheets take as "text" and do not show.
#[must_use]
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    // Leading spaces are skipped: some importers trim them and then see the formula.
    if cell.trim_start_matches(' ').starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

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
        let cells = [
            f.code.as_str(),
            f.level.as_str(),
            f.layer.as_str(),
            if f.in_gate { "true" } else { "false" },
            f.side.map_or("", crate::model::Side::as_str),
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
        ];
        w.write_record(cells.iter().map(|c| neutralise(c).into_owned()))?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for c in [
            "=cmd|' /C calc'!A0",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "\u{FF1D}1+1",
            " =x",
        ] {
            assert_eq!(neutralise(c), format!("'{c}"));
        }
        for c in ["ops", "", "a=b", "x =y", "'quoted"] {
            assert_eq!(neutralise(c), c);
        }
    }
}
