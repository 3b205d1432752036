//! Accepted drift: a TOML file of findings someone looked at and accepted (`--baseline`), and the
//! `baseline` subcommand that writes one from a report or a run.
//!
//! A matching finding stays in every report and count, marked `accepted`, and never fails a
//! gate; an entry that matches nothing is a `baseline-stale` finding (the drift is gone, the entry
//! can go); an entry past its `expires` date is treated as absent. `source-error` is never
//! acceptable: an audit that could not read something is incomplete whatever a file says.

use crate::error::{Error, ErrorKind, Result};
use crate::finding::{Code, Finding, Layer};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Keys an `[[accept]]` entry may have.
const KEYS: [&str; 11] = [
    "code",
    "layer",
    "namespace",
    "group",
    "name",
    "variant",
    "instance",
    "node",
    "reason",
    "expires",
    "detail",
];

/// One accepted finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Code.
    pub code: Code,
    /// Layer, when the entry names one (absent: any layer).
    pub layer: Option<Layer>,
    /// Namespace (source id).
    pub namespace: String,
    /// Group.
    pub group: String,
    /// dataId or service name (or user, role, quota key).
    pub name: String,
    /// Config variant.
    pub variant: Option<String>,
    /// Instance.
    pub instance: Option<String>,
    /// Node.
    pub node: Option<String>,
    /// Why it is accepted.
    pub reason: Option<String>,
    /// Last day (UTC) the entry accepts, as days since 1970-01-01, and as written.
    pub expires: Option<(i64, String)>,
    /// `file:line` of the entry.
    pub at: String,
}

impl Entry {
    /// Whether this entry accepts `f`.
    #[must_use]
    pub fn matches(&self, f: &Finding) -> bool {
        self.code == f.code
            && self.layer.is_none_or(|l| l == f.layer)
            && self.namespace == f.namespace
            && self.group == f.group
            && self.name == f.name
            && self.variant == f.variant
            && self.instance == f.instance
            && self.node == f.node
    }

    /// Whether the entry no longer accepts anything on day `today` (days since 1970-01-01).
    #[must_use]
    pub fn expired(&self, today: i64) -> bool {
        self.expires.as_ref().is_some_and(|(d, _)| today > *d)
    }
}

/// A loaded baseline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// The file, as given.
    pub path: String,
    /// Its entries, in file order.
    pub entries: Vec<Entry>,
}

/// Days since 1970-01-01 of a proleptic Gregorian date, `None` when it is no date.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let last = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d == 0 || d > last {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    days_from_civil(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// Today (UTC) as days since 1970-01-01.
#[must_use]
pub fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(0)
}

/// Read and check a baseline file; every problem is reported at once with file and line.
///
/// # Errors
/// A file that cannot be read or holds anything but well-formed `[[accept]]` entries (exit 2).
pub fn load(path: &Path) -> Result<Baseline> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            format!("{shown}: cannot read baseline file"),
            e,
        )
    })?;
    parse(&shown, &text).map_err(|problems| {
        Error::new(
            ErrorKind::Config,
            format!("invalid baseline file:\n  {}", problems.join("\n  ")),
        )
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Parse baseline text; `Err` lists every problem as `file:line: …`.
pub fn parse(shown: &str, text: &str) -> std::result::Result<Baseline, Vec<String>> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        vec![format!(
            "{shown}:{line}: TOML syntax error: {}",
            e.message()
        )]
    })?;
    let loc = |span: std::ops::Range<usize>| format!("{shown}:{}", line_of(text, span.start));
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    for (k, v) in doc.get_ref() {
        if k.get_ref() != "accept" {
            problems.push(format!(
                "{}: unknown key `{}` (a baseline holds only [[accept]] entries)",
                loc(k.span()),
                k.get_ref()
            ));
            continue;
        }
        let Some(arr) = v.get_ref().as_array() else {
            problems.push(format!(
                "{}: `accept` must be an array of tables ([[accept]])",
                loc(k.span())
            ));
            continue;
        };
        for item in arr {
            let at = loc(item.span());
            let Some(t) = item.get_ref().as_table() else {
                problems.push(format!("{at}: an `accept` entry must be a table"));
                continue;
            };
            let mut strings = std::collections::BTreeMap::new();
            let mut expires = None;
            let mut ok = true;
            for (ek, ev) in t {
                let name = ek.get_ref().as_ref();
                let kat = loc(ek.span());
                if !KEYS.contains(&name) {
                    problems.push(format!(
                        "{kat}: unknown key `{name}` (known keys: {})",
                        KEYS.join(", ")
                    ));
                    ok = false;
                    continue;
                }
                let s = match ev.get_ref() {
                    DeValue::String(s) => s.to_string(),
                    // An unquoted `expires = 2026-12-31` is a TOML date.
                    DeValue::Datetime(d) if name == "expires" => d.to_string(),
                    other => {
                        problems.push(format!(
                            "{kat}: `{name}` must be a string, found {}",
                            other.type_str()
                        ));
                        ok = false;
                        continue;
                    }
                };
                if name == "expires" {
                    match parse_date(&s) {
                        Some(d) => expires = Some((d, s)),
                        None => {
                            problems.push(format!(
                                "{kat}: `expires` must be a date YYYY-MM-DD, found `{s}`"
                            ));
                            ok = false;
                        }
                    }
                    continue;
                }
                strings.insert(name.to_owned(), s);
            }
            let code = match strings.get("code").map(|c| (c, Code::parse(c))) {
                None => {
                    problems.push(format!("{at}: entry has no `code`"));
                    None
                }
                Some((c, None)) => {
                    problems.push(format!("{at}: unknown finding code `{c}`"));
                    None
                }
                Some((c, Some(Code::SourceError | Code::BaselineStale))) => {
                    problems.push(format!(
                        "{at}: `{c}` cannot be accepted (a read failure leaves the audit incomplete; a stale entry is removed, not accepted)"
                    ));
                    None
                }
                Some((_, Some(code))) => Some(code),
            };
            let layer = match strings.get("layer").map(String::as_str) {
                None => Some(None),
                Some("L1") => Some(Some(Layer::L1)),
                Some("L2") => Some(Some(Layer::L2)),
                Some("L3") => Some(Some(Layer::L3)),
                Some(other) => {
                    problems.push(format!(
                        "{at}: unknown layer `{other}` (expected L1, L2 or L3)"
                    ));
                    None
                }
            };
            let (Some(code), Some(layer), true) = (code, layer, ok) else {
                continue;
            };
            let get = |k: &str| strings.get(k).cloned();
            entries.push(Entry {
                code,
                layer,
                namespace: get("namespace").unwrap_or_default(),
                group: get("group").unwrap_or_default(),
                name: get("name").unwrap_or_default(),
                variant: get("variant"),
                instance: get("instance"),
                node: get("node"),
                reason: get("reason"),
                expires,
                at,
            });
        }
    }
    if problems.is_empty() {
        Ok(Baseline {
            path: shown.to_owned(),
            entries,
        })
    } else {
        Err(problems)
    }
}

/// The `baseline-stale` finding of an entry that matched nothing.
#[must_use]
pub fn stale_finding(e: &Entry) -> Finding {
    let mut f = Finding::new(
        Code::BaselineStale,
        e.layer.unwrap_or(Layer::L3),
        &e.namespace,
        &e.group,
        &e.name,
    );
    f.variant.clone_from(&e.variant);
    f.instance.clone_from(&e.instance);
    f.node.clone_from(&e.node);
    f.detail = format!(
        "baseline entry {} (`{}`) matched no finding of this run: the drift it accepted is gone, the entry can be removed",
        e.at, e.code
    );
    f
}

/// One `[[accept]]` entry as written.
#[derive(Serialize)]
struct Out<'a> {
    code: &'a str,
    layer: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    group: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<&'a str>,
}

#[derive(Serialize)]
struct OutFile<'a> {
    accept: Vec<Out<'a>>,
}

/// What regenerating a baseline over an existing file did with that file's entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    /// New entries whose finding an unexpired entry of the old file matched: its reason and
    /// expiry kept.
    pub kept: usize,
    /// New entries no old entry matched (they get `--reason` / `--expires`).
    pub added: usize,
    /// Old entries that matched no finding, or had expired.
    pub dropped: usize,
}

/// The baseline text for `findings`: one entry per finding, except read failures and stale
/// entries (neither can be accepted); duplicates written once. An entry of `previous` (the file
/// being regenerated) that still matches a finding and has not expired on day `today` lends it
/// its reason and expiry; other entries get `reason` and `expires`.
///
/// # Errors
/// When `expires` is not a `YYYY-MM-DD` date, or the text cannot be serialised.
pub fn render(
    findings: &[Finding],
    reason: Option<&str>,
    expires: Option<&str>,
    from: &str,
    previous: Option<(&Baseline, i64)>,
) -> Result<(String, Carried)> {
    if let Some(d) = expires.filter(|d| parse_date(d).is_none()) {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("--expires must be a date YYYY-MM-DD, found `{d}`"),
        ));
    }
    let old: Vec<&Entry> = previous
        .map(|(b, today)| b.entries.iter().filter(|e| !e.expired(today)).collect())
        .unwrap_or_default();
    let mut used = vec![false; old.len()];
    let mut carried = Carried::default();
    let mut seen = std::collections::BTreeSet::new();
    let accept: Vec<Out> = findings
        .iter()
        .filter(|f| !matches!(f.code, Code::SourceError | Code::BaselineStale))
        .filter(|f| seen.insert(f.identity()))
        .map(|f| {
            let (reason, expires) = match old.iter().position(|e| e.matches(f)) {
                Some(i) => {
                    used[i] = true;
                    carried.kept += 1;
                    let e = old[i];
                    (
                        e.reason.as_deref(),
                        e.expires.as_ref().map(|(_, s)| s.as_str()),
                    )
                }
                None => {
                    carried.added += 1;
                    (reason, expires)
                }
            };
            Out {
                code: f.code.as_str(),
                layer: f.layer.as_str(),
                namespace: &f.namespace,
                group: &f.group,
                name: &f.name,
                variant: f.variant.as_deref(),
                instance: f.instance.as_deref(),
                node: f.node.as_deref(),
                reason,
                expires,
            }
        })
        .collect();
    // An old entry may match several findings (no layer: any layer); it is kept once used.
    for (i, e) in old.iter().enumerate() {
        if !used[i] {
            used[i] = findings
                .iter()
                .any(|f| e.matches(f) && !matches!(f.code, Code::SourceError));
        }
    }
    carried.dropped =
        previous.map_or(0, |(b, _)| b.entries.len()) - used.iter().filter(|u| **u).count();
    let n = accept.len();
    let body = toml::to_string(&OutFile { accept })
        .map_err(|e| Error::new(ErrorKind::Report, format!("writing the baseline: {e}")))?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# nacos-drift accepted drift: {n} entr{} from {}.\n\
         # Each entry accepts the findings with its code, layer, namespace, group, name and, when\n\
         # given, variant, instance and node. `reason` and `expires = \"YYYY-MM-DD\"` (the last day\n\
         # it accepts) are optional. Use it with `audit --baseline FILE`.\n",
        if n == 1 { "y" } else { "ies" },
        crate::escape::visible(from)
    );
    text.push_str(&body);
    Ok((text, carried))
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
