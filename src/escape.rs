//! Visible rendering of the characters a terminal, a viewer or a parser would act on, for every
//! text that a cluster returned (names, metadata, content, error bodies) before it is printed.
//!
//! Each report format then applies its own escaping on top (HTML, XML, Markdown, Prometheus);
//! this module only makes sure no control character, line separator or bidi override reaches a
//! screen or a file raw: a newline in a dataId cannot start a forged finding line, an ESC cannot
//! drive the terminal, a U+202E cannot reverse what the reader sees.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is rendered as an escape rather than as itself.
///
/// Control characters (C0, DEL, C1), Unicode line and paragraph separators, bidi embeddings,
/// overrides, isolates and marks, the BOM, interlinear annotations and the two noncharacters XML
/// 1.0 forbids. Printable non-ASCII text (CJK, accents, emoji, joiners) is left as it is.
#[must_use]
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{FFFE}'
                | '\u{FFFF}'
        )
}

fn push_escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` on one line with every [`needs_escape`] character shown as `\n`, `\r`, `\t`, `\x1b`,
/// `\u{202e}`, ...; borrowed when there is nothing to escape.
#[must_use]
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`visible`], but `\n` stays a line break: for multi-line texts (diffs, bodies) whose
/// lines are laid out by the caller. Every other control character, `\r` included, is escaped.
#[must_use]
pub fn visible_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c != '\n' && needs_escape(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Print one line on stderr, made [`visible`] (a line break in it is shown as `\n`); a closed
/// stderr is ignored.
pub fn eprintln_visible(msg: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{}", visible(msg));
}

/// Log sink for `tracing_subscriber::fmt` (`with_writer(escape::LogWriter)`): each event, which
/// the formatter writes whole in one `write_all`, goes to stderr with control characters shown
/// visibly, its final line break kept. Use with `with_ansi(false)`: colour codes would be escaped too.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (&*text, ""),
        };
        let line = format!("{}{end}", visible(body));
        std::io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_shown_escaped() {
        assert_eq!(
            visible("a\nb\rc\td\x1b[2Je\u{7f}\u{85}\u{202e}f\u{2028}"),
            "a\\nb\\rc\\td\\x1b[2Je\\x7f\\u{85}\\u{202e}f\\u{2028}"
        );
        assert!(matches!(visible("plain é 配置 🚀"), Cow::Borrowed(_)));
        assert_eq!(visible_lines("a\r\nb\x1b"), "a\\r\nb\\x1b");
    }
}
