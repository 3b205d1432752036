//! Unified diffs of config content, with secret values masked.
//!
//! Masking reads the formats configs come in, line by line with a little lookahead: `key=value`,
//! `key: value`, `key<TAB>value` (properties, YAML, TOML, INI, env files, `export KEY=…`, commented
//! out or not), YAML block scalars and values on the next line, TOML multi-line strings,
//! properties continuation lines, pairs inside one line (single-line JSON, flow maps, inline tables,
//! query strings, connection strings, command-line flags, `Authorization: Bearer …` headers), XML
//! elements and `name`/`key` + `value` attributes, the password of any `scheme://user:pass@host`
//! URL (JDBC included) and PEM private key bodies. Whether a key is secret is decided by its last
//! word (`dbPassword` yes, `passwordPolicy` no): see [`is_secret_key`]. The corpus in
//! `fixtures/masking/` shows what is masked and what is not.

mod keys;
mod mask;
mod spans;

pub use keys::is_secret_key;
pub use mask::{mask_line, mask_text};
use mask::{mask_text_with, Masker};
use similar::TextDiff;

/// Cap on diff lines kept per finding, so one huge config cannot flood a report.
const MAX_DIFF_LINES: usize = 200;

/// Lines split at `\n` only, without it.
fn lines_of(t: &str) -> Vec<&str> {
    t.split_inclusive('\n')
        .map(|l| l.strip_suffix('\n').unwrap_or(l))
        .collect()
}

/// Unified diff from the source content to the target content, masked unless `show_secrets`.
#[must_use]
pub fn unified(source: &str, target: &str, show_secrets: bool) -> String {
    let (s, t);
    let (source, target) = if show_secrets {
        (source, target)
    } else {
        let mut m = Masker::default();
        s = mask_text_with(source, &mut m);
        t = mask_text_with(target, &mut m);
        (s.as_str(), t.as_str())
    };
    // Lines end at `\n` only: a bare `\r` inside a line (which `from_lines` would take as an end)
    // stays in its line and is shown, escaped, by the reports.
    let (old, new) = (lines_of(source), lines_of(target));
    let diff = TextDiff::from_slices(&old, &new);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header("source", "target")
        .to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.len() > MAX_DIFF_LINES {
        let more = lines.len() - MAX_DIFF_LINES;
        lines.truncate(MAX_DIFF_LINES);
        return format!("{}\n... {more} more diff lines", lines.join("\n"));
    }
    if lines.is_empty() && source != target {
        // Same lines, different bytes: trailing newline or line endings.
        return "(contents differ only in line endings or the final newline)".to_owned();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_never_shows_masked_values() {
        let d = unified("a=1\npassword=oldpw\n", "a=2\npassword=newpw\n", false);
        assert!(!d.contains("oldpw") && !d.contains("newpw"), "{d}");
        assert!(d.contains("-a=1") && d.contains("+a=2"), "{d}");
        // A changed secret still shows as changed, with distinct masks.
        assert!(
            d.contains("-password= ****") && d.contains("+password= ****(2)"),
            "{d}"
        );
        let shown = unified("password=old\n", "password=new\n", true);
        assert!(shown.contains("old") && shown.contains("new"));
        // A bare CR is inside a line, not an end of one.
        assert_eq!(
            unified("a\rb\n", "a\rc\n", false),
            "--- source\n+++ target\n@@ -1 +1 @@\n-a\rb\n+a\rc"
        );
    }
}
