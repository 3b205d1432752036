//! Unified diffs of config content, with the values of secret-looking keys masked.

use similar::TextDiff;

/// Words that make a key secret-looking (matched case-insensitively inside the key).
const SECRET_WORDS: [&str; 10] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "credential",
    "privatekey",
    "apikey",
    "accesskey",
    "auth",
];

/// Cap on diff lines kept per finding, so one huge config cannot flood a report.
const MAX_DIFF_LINES: usize = 200;

/// Whether a key name looks like it holds a secret.
#[must_use]
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    let k = lower.replace(['-', '_', '.'], "");
    // `key` alone is too broad as a substring (`monkey`, `keyboard`): it must be a whole segment.
    SECRET_WORDS.iter().any(|w| k.contains(w))
        || lower.split(['-', '_', '.']).any(|seg| seg == "key")
}

/// Where the secret value of a line is: `(separator index, key, value)`, if the key is secret-looking.
fn secret_span(line: &str) -> Option<(usize, &str, &str)> {
    let i = line
        .char_indices()
        .find(|(_, c)| *c == '=' || *c == ':')
        .map(|(i, _)| i)?;
    let key = line[..i].trim().trim_matches(['"', '\'', '-', ' ']);
    if key.is_empty() || key.contains(char::is_whitespace) || !is_secret_key(key) {
        return None;
    }
    let value = line[i + 1..].trim().trim_end_matches(',');
    if value.is_empty() || matches!(value, "|" | ">" | "{" | "[") {
        return None;
    }
    Some((i, key, value))
}

/// Mask the value on a `key = value`, `key: value` or `"key": "value"` line if the key is secret-looking.
#[must_use]
pub fn mask_line(line: &str) -> String {
    mask_line_with(line, &mut std::collections::HashMap::new())
}

/// Mask a line; distinct values of the same key get distinct masks (`****`, `****(2)`, ...)
/// so a diff still shows that a secret changed without showing it.
fn mask_line_with(line: &str, seen: &mut std::collections::HashMap<String, Vec<String>>) -> String {
    let Some((i, key, value)) = secret_span(line) else {
        return line.to_owned();
    };
    let values = seen.entry(key.to_owned()).or_default();
    let n = match values.iter().position(|v| v == value) {
        Some(n) => n + 1,
        None => {
            values.push(value.to_owned());
            values.len()
        }
    };
    let mask = if n == 1 {
        "****".to_owned()
    } else {
        format!("****({n})")
    };
    let trailing_comma = if line.trim_end().ends_with(',') {
        ","
    } else {
        ""
    };
    format!("{}{} {mask}{trailing_comma}", &line[..i], &line[i..=i])
}

/// Mask every line of a text, keeping its line endings.
#[must_use]
pub fn mask_text(text: &str) -> String {
    mask_text_with(text, &mut std::collections::HashMap::new())
}

fn mask_text_with(text: &str, seen: &mut std::collections::HashMap<String, Vec<String>>) -> String {
    text.split_inclusive('\n')
        .map(|l| {
            let body = l.trim_end_matches(['\n', '\r']);
            format!("{}{}", mask_line_with(body, seen), &l[body.len()..])
        })
        .collect()
}

/// Unified diff from the source content to the target content, masked unless `show_secrets`.
#[must_use]
pub fn unified(source: &str, target: &str, show_secrets: bool) -> String {
    let (s, t);
    let (source, target) = if show_secrets {
        (source, target)
    } else {
        let mut seen = std::collections::HashMap::new();
        s = mask_text_with(source, &mut seen);
        t = mask_text_with(target, &mut seen);
        (s.as_str(), t.as_str())
    };
    let diff = TextDiff::from_lines(source, target);
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
    fn secret_values_are_masked() {
        assert_eq!(mask_line("db.password=hunter2"), "db.password= ****");
        assert_eq!(mask_line("  apiKey: abc"), "  apiKey: ****");
        assert_eq!(mask_line("\"token\": \"abc\","), "\"token\": ****,");
        assert_eq!(mask_line("timeout=30"), "timeout=30");
        assert_eq!(mask_line("monkey=1"), "monkey=1");
        assert_eq!(mask_line("jwt.key=abc"), "jwt.key= ****");
    }

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
    }
}
