//! Where the secrets inside one line are: inline `key=value` pairs, URLs with credentials,
//! bearer tokens, XML elements and attributes, one-line PEM keys (byte spans; `mask` replaces
//! them).

use super::keys::is_secret_key;

/// A value span to replace, in bytes of the line, with the key whose masks it counts under.
pub(super) type Span = (usize, usize, String);

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// End of a bare (unquoted) value inside a line.
fn bare_end(line: &str, from: usize) -> usize {
    line[from..]
        .find(|c: char| c.is_whitespace() || ",;&}])\"'<\\".contains(c))
        .map_or(line.len(), |e| from + e)
}

/// Pairs inside a line from `from` on: `key=value`, `"key": value`, `{key: value}`, `\"key\":\"value\"`,
/// `Authorization: Bearer x` in a quoted header; the value is quoted (its inside) or bare.
pub(super) fn inline_spans(line: &str, from: usize, spans: &mut Vec<Span>) {
    let b = line.as_bytes();
    let mut i = from;
    while i < b.len() {
        if !is_key_char(b[i]) || (i > 0 && is_key_char(b[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_key_char(b[i]) {
            i += 1;
        }
        let key = &line[start..i];
        let before = line[..start].trim_end_matches([' ', '\t']);
        let mut j = i;
        // A quoted key closes with the quote that opened it (`"k"`, `'k'`, `\"k\"`).
        let quoted = ["\\\"", "\"", "'"]
            .into_iter()
            .find(|q| line[..start].ends_with(q) && line[j..].starts_with(q));
        j += quoted.map_or(0, str::len);
        j += line[j..].len() - line[j..].trim_start_matches([' ', '\t']).len();
        let sep = b.get(j).copied();
        let ok = match sep {
            Some(b'=') => !line[j..].starts_with("=="),
            Some(b':') => {
                quoted.is_some()
                    || (line[j + 1..].starts_with(' ')
                        && (before.is_empty() || before.ends_with(['{', ',', '"', '\'', '('])))
            }
            _ => false,
        };
        if !ok || !is_secret_key(key) {
            continue;
        }
        j += 1;
        j += line[j..].len() - line[j..].trim_start_matches([' ', '\t']).len();
        let rest = &line[j..];
        let (vs, ve) = if rest.starts_with("\\\"") {
            let s = j + 2;
            (s, line[s..].find("\\\"").map_or(line.len(), |e| s + e))
        } else if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let s = j + 1;
            (s, closing_quote(line, s, q))
        } else if rest.starts_with(['{', '[']) || rest.is_empty() {
            continue;
        } else {
            // `Bearer x`, `Basic x`: the scheme stays, the credential goes.
            let word_end = bare_end(line, j);
            let scheme = &line[j..word_end];
            let s = if ["bearer", "basic", "token", "digest", "negotiate"]
                .contains(&scheme.to_ascii_lowercase().as_str())
                && line[word_end..].starts_with(' ')
            {
                word_end + 1
            } else {
                j
            };
            (s, bare_end(line, s))
        };
        if ve > vs {
            spans.push((vs, ve, key.to_owned()));
        }
        i = ve.max(i);
    }
}

/// Index of the quote `q` closing a string that starts at `from` (backslash escapes skipped).
fn closing_quote(line: &str, from: usize, q: char) -> usize {
    let mut esc = false;
    for (k, c) in line[from..].char_indices() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == q {
            return from + k;
        }
    }
    line.len()
}

/// Passwords in URLs (`scheme://user:pass@host`, JDBC included, and Oracle's `thin:user/pass@`),
/// and the credential after `Bearer ` anywhere.
pub(super) fn url_and_bearer_spans(line: &str, spans: &mut Vec<Span>) {
    for (p, _) in line.match_indices("://") {
        let auth_start = p + 3;
        let auth_end = line[auth_start..]
            .find(|c: char| c.is_whitespace() || "/?#\"'<>".contains(c))
            .map_or(line.len(), |e| auth_start + e);
        let authority = &line[auth_start..auth_end];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                if colon + 1 < at {
                    spans.push((
                        auth_start + colon + 1,
                        auth_start + at,
                        "url-password".into(),
                    ));
                }
            }
        }
    }
    for (p, m) in line.match_indices(":thin:") {
        let s = p + m.len();
        // `user/pass@` is short: a bounded look keeps `:thin::thin:…` from costing a pass each.
        let end = line[s..]
            .char_indices()
            .take(256)
            .find(|(_, c)| c.is_whitespace() || "\"'<>@".contains(*c))
            .map_or(line.len().min(s + 256), |(e, c)| {
                s + e + usize::from(c == '@')
            });
        let end = (s..=end)
            .rev()
            .find(|&e| line.is_char_boundary(e))
            .unwrap_or(s);
        if let (Some(slash), Some(at)) = (line[s..end].find('/'), line[s..end].find('@')) {
            if slash + 1 < at {
                spans.push((s + slash + 1, s + at, "url-password".into()));
            }
        }
    }
    let lower = line.to_ascii_lowercase();
    for (p, m) in lower.match_indices("bearer ") {
        if p > 0 && lower.as_bytes()[p - 1].is_ascii_alphanumeric() {
            continue;
        }
        let s = p + m.len();
        let e = line[s..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/=".contains(c)))
            .map_or(line.len(), |e| s + e);
        if e > s {
            spans.push((s, e, "bearer".into()));
        }
    }
}

/// XML: the text of an element whose tag is secret (`<password>x</password>`, CDATA included),
/// and the `value` attribute and text of one whose `name`/`key` attribute is
/// (`<property name="db.password" value="x"/>`, `<entry key="token">x</entry>`).
pub(super) fn xml_spans(line: &str, spans: &mut Vec<Span>) {
    // Each tag is read once and the scan goes on after its `>`, so hostile input (`<a<a<a…`)
    // costs one pass over the line, not one per `<`.
    let mut from = 0;
    while let Some(lt) = line[from..].find('<').map(|p| from + p) {
        from = lt + 1;
        let name_end = line[from..]
            .find(|c: char| !(c.is_alphanumeric() || "_.-:".contains(c)))
            .map_or(line.len(), |e| from + e);
        let tag = &line[from..name_end];
        if tag.is_empty() {
            continue;
        }
        let Some(gt) = line[name_end..].find('>').map(|p| name_end + p) else {
            return;
        };
        let attrs = &line[name_end..gt];
        // A `<` before the `>`: this was no tag; the last one may start a real one.
        if let Some(inner) = attrs.rfind('<') {
            from = name_end + inner;
            continue;
        }
        from = gt + 1;
        let mut named = None;
        let mut value_attr = None;
        for (k, _) in attrs.match_indices("=\"") {
            let attr = attrs[..k].rsplit([' ', '\t']).next().unwrap_or("");
            let vs = name_end + k + 2;
            let ve = line[vs..gt].find('"').map_or(gt, |e| vs + e);
            match attr {
                "name" | "key" | "id" if is_secret_key(&line[vs..ve]) => {
                    named = Some(line[vs..ve].to_owned());
                }
                "value" => value_attr = Some((vs, ve)),
                _ => {}
            }
        }
        let secret = named.clone().or_else(|| {
            is_secret_key(tag.rsplit(':').next().unwrap_or(tag)).then(|| tag.to_owned())
        });
        let Some(key) = secret else { continue };
        if let (Some(_), Some((vs, ve))) = (&named, value_attr) {
            if ve > vs {
                spans.push((vs, ve, key.clone()));
            }
        }
        if attrs.ends_with('/') {
            continue;
        }
        let text_start = gt + 1;
        let (vs, ve) = if line[text_start..].starts_with("<![CDATA[") {
            let s = text_start + 9;
            let e = line[s..].find("]]>").map_or(line.len(), |e| s + e);
            from = e;
            (s, e)
        } else {
            // The text runs to the next tag, which must be the closing one.
            let e = line[text_start..]
                .find('<')
                .map_or(line.len(), |e| text_start + e);
            if e < line.len() && !line[e..].starts_with("</") {
                continue;
            }
            (text_start, e)
        };
        if !line[vs..ve].trim().is_empty() {
            spans.push((vs, ve, key));
        }
    }
}

/// A PEM private key's BEGIN marker (`-----BEGIN RSA PRIVATE KEY-----`, OpenSSH, PGP, encrypted):
/// the byte index just after it.
pub(super) fn pem_begin(line: &str) -> Option<usize> {
    let b = line.find("-----BEGIN ")?;
    let close = line[b + 11..].find("-----")? + b + 11;
    line[b..close].contains("PRIVATE KEY").then_some(close + 5)
}
