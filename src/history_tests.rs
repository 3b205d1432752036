//! Unit tests of the since-last-run record: bounded, keyed per configuration, new/still/resolved.

use super::*;
use crate::finding::{Code, Layer};

fn finding(name: &str) -> Finding {
    Finding::new(Code::ConfigMissing, Layer::L1, "ns", "G", name)
}

fn report(names: &[&str]) -> Report {
    Report::new(
        "audit",
        "r2".into(),
        None,
        names.iter().map(|n| finding(n)).collect(),
    )
}

fn record(names: &[&str]) -> Record {
    let mut r = record_of(&report(names), "k");
    r.run_id = "r1".into();
    r
}

#[test]
fn new_still_and_resolved_are_counted() {
    let mut now = report(&["a", "b", "c"]);
    compare(&mut now, &record(&["b", "c", "d", "e"]), "test");
    assert_eq!(
        (now.summary.new, now.summary.still, now.summary.resolved),
        (Some(1), Some(2), Some(2))
    );
    let marks: Vec<(&str, Option<&str>)> = now
        .findings
        .iter()
        .map(|f| (f.name.as_str(), f.since_last.as_deref()))
        .collect();
    assert_eq!(
        marks,
        [
            ("a", Some("new")),
            ("b", Some("still")),
            ("c", Some("still"))
        ]
    );
    assert_eq!(now.since_last.as_ref().unwrap().run_id, "r1");
}

#[test]
fn an_incomplete_run_counts_nothing_resolved() {
    let mut f = vec![finding("a")];
    f.push(Finding::new(Code::SourceError, Layer::L1, "", "", ""));
    let mut now = Report::new("audit", "r2".into(), None, f);
    assert!(!now.complete);
    compare(&mut now, &record(&["a", "b"]), "test");
    assert_eq!(now.summary.resolved, None);
    assert_eq!((now.summary.new, now.summary.still), (Some(1), Some(1)));
    assert!(now.since_last.unwrap().note.unwrap().contains("incomplete"));
}

#[test]
fn the_record_is_bounded_and_holds_no_names() {
    let names: Vec<String> = (0..MAX_IDS + 5)
        .map(|i| format!("secret-name-{i}"))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let rec = record_of(&report(&refs), "k");
    assert_eq!(rec.findings.len(), MAX_IDS);
    assert!(rec.truncated);
    let json = serde_json::to_string(&rec).unwrap();
    assert!(!json.contains("secret-name"));
    assert!(json.len() < MAX_IDS * 40, "{}", json.len());
    // A truncated record cannot tell what is new: nothing is marked, nothing counted.
    let mut now = report(&["a"]);
    compare(&mut now, &rec, "test");
    assert_eq!(now.summary.new, None);
    assert_eq!(now.findings[0].since_last, None);
}

#[test]
fn each_configuration_has_its_own_record() {
    let mut a = Settings::default();
    a.source.nacos = vec!["http://a:8848/nacos".into()];
    let mut b = a.clone();
    assert_eq!(config_key(&a), config_key(&b));
    b.namespaces = vec!["prod".into()];
    assert_ne!(config_key(&a), config_key(&b));
    let mut c = a.clone();
    c.target.db = Some("mysql://u:pw@db:3306/nacos".into());
    let mut d = a.clone();
    d.target.db = Some("mysql://u:other@db:3306/nacos".into());
    // Only the password differs: the same configuration (passwords never reach the key).
    assert_eq!(config_key(&c), config_key(&d));
    assert_ne!(config_key(&a), config_key(&c));
    a.state = PathBuf::from("/var/lib/nd/state.json");
    let p = record_path(&a);
    assert_eq!(p.parent().unwrap(), Path::new("/var/lib/nd"));
    assert!(p
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("findings-"));
}

#[test]
fn records_round_trip_and_unknown_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("nd-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("findings-x.json");
    assert_eq!(load_record(&p).unwrap(), None);
    let rec = record(&["a", "b"]);
    std::fs::write(&p, serde_json::to_vec(&rec).unwrap()).unwrap();
    assert_eq!(load_record(&p).unwrap(), Some(rec));
    std::fs::write(&p, b"{\"version\": 9}").unwrap();
    assert!(load_record(&p).is_err());
    let bad = dir.join("report.json");
    std::fs::write(&bad, b"[1,2]").unwrap();
    let e = load_report(&bad).unwrap_err();
    assert!(e.contains("not a nacos-drift JSON report"), "{e}");
    // Records of other configurations are pruned once stale, and nothing else in the folder.
    std::fs::write(dir.join("findings-0123456789abcdef.json"), b"{}").unwrap();
    std::fs::write(dir.join("state.json"), b"{}").unwrap();
    prune(&dir, std::time::Duration::ZERO);
    assert!(!dir.join("findings-0123456789abcdef.json").exists());
    assert!(dir.join("state.json").exists());
    assert!(p.exists(), "not named like a record: kept");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_a_complete_audit_replaces_the_record() {
    let dir = std::env::temp_dir().join(format!("nd-history-save-{}", std::process::id()));
    let settings = Settings {
        state: dir.join("state.json"),
        ..Settings::default()
    };
    let path = record_path(&settings);
    let mut f = vec![finding("a")];
    f.push(Finding::new(Code::SourceError, Layer::L1, "", "", ""));
    let incomplete = Report::new("audit", "r0".into(), None, f);
    save(&incomplete, &settings);
    assert!(!path.exists(), "an incomplete run wrote a record");
    save(&report(&["a", "b"]), &settings);
    let kept = load_record(&path).unwrap().unwrap();
    assert_eq!((kept.run_id.as_str(), kept.findings.len()), ("r2", 2));
    save(&incomplete, &settings);
    assert_eq!(load_record(&path).unwrap().unwrap(), kept);
    // `diff` keeps no record.
    let mut d = report(&["c"]);
    d.mode = "diff".into();
    save(&d, &settings);
    assert_eq!(load_record(&path).unwrap().unwrap(), kept);
    let _ = std::fs::remove_dir_all(&dir);
}
