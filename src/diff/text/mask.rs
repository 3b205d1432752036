//! Secret masking of config content, line by line with a little lookahead (see `diff::text`).

use super::keys::is_secret_key;
use super::spans::{inline_spans, pem_begin, url_and_bearer_spans, xml_spans, Span};
use std::collections::HashMap;

/// Distinct values of the same key get distinct masks (`****`, `****(2)`, ...), so a diff still
/// shows that a secret changed without showing it.
#[derive(Default)]
pub(super) struct Masker {
    seen: HashMap<String, Vec<String>>,
}

impl Masker {
    pub(super) fn mask(&mut self, key: &str, value: &str) -> String {
        let values = self.seen.entry(key.to_ascii_lowercase()).or_default();
        let n = match values.iter().position(|v| v == value) {
            Some(n) => n + 1,
            None => {
                values.push(value.to_owned());
                values.len()
            }
        };
        if n == 1 {
            "****".to_owned()
        } else {
            format!("****({n})")
        }
    }
}

/// A `key <sep> value` line: where the key and the separator are, and where the value starts.
struct KeyLine<'a> {
    key: &'a str,
    /// Column of the key: a block under it is indented deeper.
    col: usize,
    /// Byte index of the separator (`=`, `:` or the tab).
    sep: usize,
    sep_char: char,
    value_start: usize,
}

/// The key at the start of a line, after indentation, comment markers (`#`, `//`, `;`, `!`: a
/// commented-out secret is still one), YAML list dashes and `export `/`set `.
fn key_line(line: &str) -> Option<KeyLine<'_>> {
    let mut i = line.len() - line.trim_start().len();
    loop {
        let rest = &line[i..];
        let skip = ["#", "//", ";", "!", "- ", "export ", "set "]
            .iter()
            .find(|p| rest.starts_with(**p))
            .map_or(0, |p| p.len());
        if skip == 0 {
            break;
        }
        i += skip;
        i += line[i..].len() - line[i..].trim_start().len();
    }
    let col = i;
    let rest = &line[i..];
    let (key, after) = if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = rest[1..].find(q)? + 1;
        (&rest[1..end], i + end + 1)
    } else {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == ':')
            .unwrap_or(rest.len());
        (&rest[..end], i + end)
    };
    // Flow maps, arrays, tables and markup are read pair by pair, not as one key.
    if key.is_empty() || (col == i && rest.starts_with(['{', '[', '<'])) {
        return None;
    }
    let gap = &line[after..];
    let trimmed = gap.trim_start_matches([' ', '\t']);
    let at = after + gap.len() - trimmed.len();
    let (sep, sep_char) = match trimmed.chars().next() {
        Some(c @ ('=' | ':')) => (at, c),
        Some(_) if gap[..at - after].contains('\t') => (after + gap.find('\t')?, '\t'),
        _ => return None,
    };
    // `:=` (make, Go) is one separator.
    let mut v = sep + 1;
    if sep_char == ':' && line[v..].starts_with('=') {
        v += 1;
    }
    v += line[v..].len() - line[v..].trim_start_matches([' ', '\t']).len();
    Some(KeyLine {
        key,
        col,
        sep,
        sep_char,
        value_start: v,
    })
}

/// Leading spaces and tabs of a line.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// A YAML block scalar indicator (`|`, `>-`, `|2+`), possibly followed by a comment.
fn is_block_indicator(v: &str) -> bool {
    let mut v = v.split(" #").next().unwrap_or("").trim_end();
    // A tag or an anchor may come first (`!vault |`, `&pw |`).
    while let Some((_, rest)) = v.split_once(' ').filter(|(f, _)| f.starts_with(['!', '&'])) {
        v = rest.trim_start();
    }
    let mut c = v.chars();
    matches!(c.next(), Some('|' | '>')) && c.all(|x| matches!(x, '+' | '-' | '1'..='9'))
}

/// Replace spans (sorted, overlaps dropped) by their masks.
fn apply(line: &str, mut spans: Vec<Span>, m: &mut Masker) -> String {
    spans.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for (s, e, key) in spans {
        if s < at {
            continue;
        }
        out.push_str(&line[at..s]);
        out.push_str(&m.mask(&key, &line[s..e]));
        at = e;
    }
    out.push_str(&line[at..]);
    out
}

/// Mask what is inside one line from byte `from` on: inline pairs, URLs, bearer tokens, XML,
/// one-line PEM keys.
fn mask_inside(line: &str, from: usize, m: &mut Masker) -> String {
    let mut spans = Vec::new();
    inline_spans(line, from, &mut spans);
    url_and_bearer_spans(line, &mut spans);
    xml_spans(line, &mut spans);
    if let Some(b) = pem_begin(line) {
        if let Some(e) = line[b..].find("-----END ") {
            spans.push((b, b + e, "private key".into()));
        }
    }
    apply(line, spans, m)
}

/// The whole value of a secret key line masked: `key: ****`, `"key": "****",`, `key\t****`.
fn mask_value(line: &str, kl: &KeyLine<'_>, m: &mut Masker) -> String {
    let raw = line[kl.value_start..].trim_end();
    let comma = if raw.ends_with(',') { "," } else { "" };
    let value = raw.strip_suffix(',').unwrap_or(raw);
    let quote = ['"', '\'']
        .into_iter()
        .find(|q| value.len() >= 2 && value.starts_with(*q) && value.ends_with(*q));
    let mask = m.mask(kl.key, value);
    let shown = match quote {
        Some(q) => format!("{q}{mask}{q}"),
        None => mask,
    };
    let space = if kl.sep_char == '\t' { "" } else { " " };
    format!(
        "{}{space}{shown}{comma}",
        &line[..kl.sep + kl.sep_char.len_utf8()]
    )
}

/// The lines of a text: `(line without its ending, ending)`.
type Lines<'a> = [(&'a str, &'a str)];

/// Push one line standing for `lines[from..to]`: their indentation, one mask, the last ending.
fn collapse(
    out: &mut String,
    lines: &Lines<'_>,
    from: usize,
    to: usize,
    key: &str,
    m: &mut Masker,
) {
    if from >= to {
        return;
    }
    let body: Vec<&str> = lines[from..to].iter().map(|l| l.0).collect();
    let first = body.iter().find(|l| !l.trim().is_empty()).unwrap_or(&"");
    out.push_str(&first[..indent(first)]);
    out.push_str(&m.mask(key, &body.join("\n")));
    out.push_str(lines[to - 1].1);
}

/// End (exclusive) of the lines indented deeper than `col` after `i`, trailing blank lines left out.
fn deeper_until(lines: &Lines<'_>, i: usize, col: usize) -> usize {
    let mut end = i + 1;
    let mut k = i + 1;
    while k < lines.len() {
        let l = lines[k].0;
        if l.trim().is_empty() {
            k += 1;
            continue;
        }
        if indent(l) <= col {
            break;
        }
        k += 1;
        end = k;
    }
    end
}

pub(super) fn mask_text_with(text: &str, m: &mut Masker) -> String {
    let lines: Vec<(&str, &str)> = text
        .split_inclusive('\n')
        .map(|l| {
            let body = l.trim_end_matches(['\n', '\r']);
            (body, &l[body.len()..])
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Inside a list under a secret key: `(column of the key, key)`.
    let mut secret_list: Option<(usize, &str)> = None;
    while i < lines.len() {
        let (line, end) = lines[i];
        if let Some((col, key)) = secret_list {
            if !line.trim().is_empty() && indent(line) <= col {
                secret_list = None;
            } else if let Some(item) = line.trim_start().strip_prefix("- ") {
                if !item.trim().is_empty() && key_line(item).is_none() {
                    out.push_str(&line[..line.len() - item.len()]);
                    out.push_str(&m.mask(key, item));
                    out.push_str(end);
                    i += 1;
                    continue;
                }
            }
        }
        if let Some(b) = pem_begin(line) {
            if !line[b..].contains("-----END ") {
                out.push_str(line);
                out.push_str(end);
                let stop = (i + 1..lines.len())
                    .find(|&k| lines[k].0.contains("-----END "))
                    .unwrap_or(lines.len());
                collapse(&mut out, &lines, i + 1, stop, "private key", m);
                i = stop;
                continue;
            }
        }
        let Some(kl) = key_line(line).filter(|k| is_secret_key(k.key)) else {
            let from = key_line(line).map_or(0, |k| k.value_start);
            out.push_str(&mask_inside(line, from, m));
            out.push_str(end);
            i += 1;
            continue;
        };
        let value = line[kl.value_start..].trim_end();
        let next = i + 1;
        if value.is_empty() && kl.sep_char != ':' {
            out.push_str(line);
            out.push_str(end);
            i = next;
            continue;
        }
        // YAML: the value is the block indented under the key (`key: |`, or `key:` then lines).
        if kl.sep_char == ':' && (value.is_empty() || is_block_indicator(value)) {
            out.push_str(line);
            out.push_str(end);
            let stop = deeper_until(&lines, i, kl.col);
            let first = lines[next..stop].iter().find(|l| !l.0.trim().is_empty());
            let item = |l: &str| {
                let t = l.trim_start();
                t.starts_with("- ") || t == "-"
            };
            match first {
                // A mapping under a secret key is masked key by key, by the lines that follow.
                Some(l) if value.is_empty() && key_line(l.0).is_some() && !item(l.0) => {}
                // A list under it: its bare items are the secrets.
                Some(l) if value.is_empty() && item(l.0) => secret_list = Some((kl.col, kl.key)),
                _ => {
                    collapse(&mut out, &lines, next, stop, kl.key, m);
                    i = stop.max(next);
                    continue;
                }
            }
            i = next;
            continue;
        }
        if let Some(delim) = ["\"\"\"", "'''"]
            .into_iter()
            .find(|d| value.starts_with(d) && !value[3..].contains(d))
        {
            // A TOML multi-line string: everything up to its closing delimiter is the value.
            let stop = (next..lines.len())
                .find(|&k| lines[k].0.contains(delim))
                .unwrap_or(lines.len() - 1);
            let whole: Vec<&str> = lines[i..=stop].iter().map(|l| l.0).collect();
            out.push_str(&line[..kl.value_start]);
            out.push_str(&format!(
                "{delim}{}{delim}",
                m.mask(kl.key, &whole.join("\n"))
            ));
            out.push_str(lines[stop].1);
            i = stop + 1;
            continue;
        }
        // An object or array opened here goes on below: its own lines say what is secret.
        if matches!(value.trim_end_matches(','), "{" | "[" | "{}" | "[]") {
            out.push_str(line);
            out.push_str(end);
            i = next;
            continue;
        }
        if value.starts_with('{') && value.trim_end_matches(',').ends_with('}') {
            out.push_str(&mask_inside(line, kl.value_start, m));
            out.push_str(end);
            i = next;
            continue;
        }
        out.push_str(&mask_value(line, &kl, m));
        // A properties value ending in an odd number of backslashes goes on on the next line.
        let mut k = i;
        while kl.sep_char != ':'
            && k + 1 < lines.len()
            && (lines[k].0.len() - lines[k].0.trim_end_matches('\\').len()) % 2 == 1
        {
            k += 1;
        }
        out.push_str(lines[k].1);
        i = k + 1;
    }
    out
}

/// Mask the secret values of one line (see the module documentation).
#[must_use]
pub fn mask_line(line: &str) -> String {
    mask_text(line)
}

/// Mask every secret value of a text, keeping its line endings; a masked block (YAML block
/// scalar, PEM body, TOML multi-line string) becomes one line.
#[must_use]
pub fn mask_text(text: &str) -> String {
    mask_text_with(text, &mut Masker::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::text::unified;

    #[test]
    fn secret_values_are_masked() {
        assert_eq!(mask_line("db.password=hunter2"), "db.password= ****");
        assert_eq!(mask_line("  apiKey: abc"), "  apiKey: ****");
        assert_eq!(mask_line("\"token\": \"abc\","), "\"token\": \"****\",");
        assert_eq!(mask_line("timeout=30"), "timeout=30");
        assert_eq!(mask_line("monkey=1"), "monkey=1");
        assert_eq!(mask_line("jwt.key=abc"), "jwt.key= ****");
    }

    /// `(label, text with « » around each secret)` of a corpus file (see its first lines).
    fn corpus(file: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in file.lines() {
            if let Some(label) = line.strip_prefix("%%% ") {
                out.push((label.to_owned(), String::new()));
            } else if let Some((_, text)) = out.last_mut() {
                text.push_str(line);
                text.push('\n');
            }
        }
        out
    }

    #[test]
    fn fixtures_secret_snippets_are_masked() {
        let snippets = corpus(include_str!("../../../fixtures/masking/secrets.txt"));
        assert!(snippets.len() >= 40, "{} snippets", snippets.len());
        for (label, marked) in &snippets {
            let input = marked.replace(['«', '»'], "");
            let secrets: Vec<&str> = marked
                .split('«')
                .skip(1)
                .map(|s| s.split('»').next().unwrap())
                .collect();
            assert!(!secrets.is_empty(), "{label}: no «secret» marked");
            let masked = mask_text(&input);
            let diff = unified("", &input, false);
            for s in &secrets {
                assert!(
                    !masked.contains(s) && !diff.contains(s),
                    "{label}: `{s}` shown in\n{masked}"
                );
            }
            assert!(masked.contains("****"), "{label}");
        }
    }

    #[test]
    fn hostile_long_lines_are_masked_in_one_pass() {
        // Each of these would cost a pass over the line per repetition if scanned naively.
        let n = 20_000;
        let tags = format!("{}<password>pw-xml-long</password>", "<a".repeat(n));
        assert!(!mask_text(&tags).contains("pw-xml-long"));
        let nested = "<password>".repeat(n) + "pw-nested</password>";
        assert!(!mask_text(&nested).contains("pw-nested"));
        let thin = ":thin:".repeat(n) + "scott/pw-thin@db";
        assert!(!mask_text(&thin).contains("pw-thin"));
        let quotes = "x ".to_owned() + &"\"password\": \"a".repeat(n);
        assert!(!mask_text(&quotes).contains("\"a"));
    }

    #[test]
    fn fixtures_lookalikes_are_left_alone() {
        let snippets = corpus(include_str!("../../../fixtures/masking/lookalikes.txt"));
        assert!(snippets.len() >= 20, "{} snippets", snippets.len());
        for (label, input) in &snippets {
            assert_eq!(&mask_text(input), input, "{label}");
        }
    }
}
