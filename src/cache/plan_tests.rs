//! Table-driven tests of the L2 decisions in `plan.rs`.

use super::*;

#[test]
fn mechanism_follows_the_version() {
    let cases = [
        ("1.4.8", false, Mechanism::DataChange),
        ("2.2.0", true, Mechanism::DataChange),
        ("2.2.1", true, Mechanism::GrpcSync),
        ("2.3.2", false, Mechanism::FullReload),
        ("3.1.0", true, Mechanism::GrpcSync),
        ("unknown", true, Mechanism::None),
        ("", true, Mechanism::None),
    ];
    for (version, grpc, want) in cases {
        assert_eq!(
            incremental_mechanism(version, grpc).0,
            want,
            "{version} grpc={grpc}"
        );
    }
}

#[test]
fn report_names_stay_byte_identical() {
    let mechs = [
        (Mechanism::FullReload, "full-reload"),
        (Mechanism::DataChange, "data-change"),
        (Mechanism::GrpcSync, "grpc-sync"),
        (Mechanism::None, "none"),
    ];
    for (m, s) in mechs {
        assert_eq!(m.to_string(), s);
        assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{s}\""));
    }
    let statuses = [
        (RepairStatus::Planned, "planned"),
        (RepairStatus::Applied, "applied"),
        (RepairStatus::Failed, "failed"),
        (RepairStatus::Skipped, "skipped"),
        (RepairStatus::Interrupted, "interrupted"),
    ];
    for (st, s) in statuses {
        assert_eq!(st.to_string(), s);
        assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{s}\""));
    }
    let outcomes = [
        (Outcome::Repaired, "repaired"),
        (
            Outcome::StillStale(Mechanism::GrpcSync),
            "still stale after grpc-sync",
        ),
        (
            Outcome::Planned(Mechanism::FullReload),
            "planned: full-reload",
        ),
        (Outcome::NotRepairable("x".into()), "not repairable: x"),
        (Outcome::Failed("node down".into()), "failed: node down"),
        (
            Outcome::SourceUntouched,
            "not repaired: the source is never touched without --fix-source",
        ),
    ];
    for (o, s) in outcomes {
        assert_eq!(o.to_string(), s);
    }
}

#[test]
fn trust_compares_the_target_row_with_the_source() {
    let cases = [
        // (target md5, source md5, trust)
        ("a", Some("a"), Trust::Trusted),
        ("a", Some("b"), Trust::Disagrees),
        // Row on the target only, or gone on the target only.
        ("a", Some(""), Trust::Disagrees),
        ("", Some("a"), Trust::Disagrees),
        // Gone on both: dropping the cache entry is what the source says too.
        ("", Some(""), Trust::Trusted),
        ("a", None, Trust::Unconfirmed),
        ("", None, Trust::Unconfirmed),
    ];
    for (target, source, want) in cases {
        assert_eq!(trust(target, source), want, "{target:?} vs {source:?}");
    }
    assert_eq!(Trust::Trusted.refusal(), None);
    assert_eq!(
        Trust::Disagrees.refusal(),
        Some("the target DB disagrees with the source (fix the DB sync first)")
    );
    assert!(Trust::Unconfirmed.refusal().is_some());
}

fn plan(
    version: &str,
    grpc: bool,
    stale: usize,
    refused: usize,
    served: Option<usize>,
    full: bool,
) -> NodePlan {
    plan_node(&PlanInput {
        version,
        grpc,
        stale,
        refused,
        served,
        full,
        threshold_pct: 20,
    })
}

#[test]
fn plan_chooses_per_key_or_whole_node() {
    use Mechanism as M;
    // version, grpc, stale, refused, served (whole probe), --full → mechanism
    type Case = (
        &'static str,
        bool,
        usize,
        usize,
        Option<usize>,
        bool,
        Mechanism,
    );
    let cases: [Case; 14] = [
        ("2.3.2", true, 1, 0, Some(100), false, M::GrpcSync),
        ("2.3.2", true, 20, 0, Some(100), false, M::GrpcSync),
        ("2.3.2", true, 21, 0, Some(100), false, M::FullReload),
        ("2.0.4", true, 50, 0, Some(100), false, M::FullReload),
        ("2.0.4", true, 5, 0, Some(100), false, M::DataChange),
        // A subset probe (one namespace of many): 100 % of it stale, still per key.
        ("2.3.2", true, 10, 0, None, false, M::GrpcSync),
        ("2.3.2", true, 10, 0, None, true, M::FullReload),
        // No gRPC on ≥ 2.2.1: the whole node is the only way…
        ("2.3.2", false, 1, 0, None, false, M::FullReload),
        // …unless that would load untrusted rows.
        ("2.3.2", false, 1, 1, None, false, M::None),
        // Refused keys forbid a whole-node reload, --full or threshold alike.
        ("2.3.2", true, 90, 1, Some(100), false, M::GrpcSync),
        ("2.3.2", true, 3, 1, Some(100), true, M::GrpcSync),
        ("2.0.4", true, 3, 1, Some(100), true, M::DataChange),
        ("r-nacos", true, 3, 0, Some(100), true, M::None),
        ("3.1.0", true, 1, 0, Some(2), false, M::FullReload),
    ];
    for (version, grpc, stale, refused, served, full, want) in cases {
        let p = plan(version, grpc, stale, refused, served, full);
        assert_eq!(
            p.mechanism, want,
            "{version} grpc={grpc} stale={stale} refused={refused} served={served:?} full={full}: {}",
            p.why
        );
        assert!(!p.why.is_empty());
    }
    let p = plan("2.3.2", false, 1, 2, None, false);
    assert!(
        p.why
            .contains("2 key(s) whose target DB row is not trusted"),
        "{}",
        p.why
    );
    let p = plan("2.3.2", true, 21, 0, Some(100), false);
    assert!(p.why.contains("21% of the node's 100 key(s)"), "{}", p.why);
}

#[test]
fn classification_of_a_flagged_key() {
    let cases = [
        ("abc", ServedView::Status(200), Code::CacheStale),
        ("abc", ServedView::Status(404), Code::CacheMissing),
        ("", ServedView::Status(200), Code::CacheExtra),
        ("", ServedView::Status(404), Code::CacheExtra),
        ("abc", ServedView::Unreadable, Code::CacheStale),
        ("", ServedView::Unreadable, Code::CacheStale),
    ];
    for (expected, served, want) in cases {
        assert_eq!(
            classify(expected, served).0,
            want,
            "{expected:?} {served:?}"
        );
    }
}

#[test]
fn timestamp_trap_rule() {
    let t = |version, served_status, node, db, deleted| {
        is_timestamp_trap(&TrapInput {
            version,
            served_status,
            node_modified_ms: node,
            db_modified_ms: db,
            deleted,
        })
    };
    let cases = [
        // version, status, node ts, db ts, deleted → trap
        ("2.3.2", 200, Some(2000), Some(1000), false, true),
        ("2.1.0", 200, Some(2000), Some(1000), false, true),
        ("2.0.4", 200, Some(2000), Some(1000), false, false),
        ("2.3.2", 200, Some(1000), Some(1000), false, false),
        ("2.3.2", 200, Some(500), Some(1000), false, false),
        ("2.3.2", 404, Some(2000), Some(1000), false, false),
        ("2.3.2", 200, Some(2000), Some(1000), true, false),
        ("2.3.2", 200, None, Some(1000), false, false),
        ("2.3.2", 200, Some(2000), None, false, false),
        ("r-nacos", 200, Some(2000), Some(1000), false, false),
    ];
    for (version, status, node, db, deleted, want) in cases {
        assert_eq!(
            t(version, status, node, db, deleted),
            want,
            "{version} {status} {node:?} {db:?} deleted={deleted}"
        );
    }
}

fn sample(configured: &str, node: Option<&str>, node_newer: bool) -> DbSample {
    DbSample {
        configured_md5: configured.into(),
        configured_modified_ms: Some(1000),
        node_md5: node.map(str::to_owned),
        node_modified_ms: Some(if node_newer { 2000 } else { 1000 }),
    }
}

#[test]
fn node_db_verdict_needs_half_the_judged_sample() {
    let agree = sample("a", Some("a"), false);
    let differ = sample("a", Some("b"), false);
    let absent = sample("a", None, false);
    let raced = sample("a", Some("b"), true);
    let cases: Vec<(Vec<DbSample>, NodeDbVerdict)> = vec![
        (vec![], NodeDbVerdict::Agrees),
        (vec![agree.clone(); 4], NodeDbVerdict::Agrees),
        (
            vec![differ.clone(), agree.clone(), agree.clone()],
            NodeDbVerdict::Agrees,
        ),
        (
            vec![differ.clone(), agree.clone()],
            NodeDbVerdict::Mismatch {
                differing: 1,
                judged: 2,
            },
        ),
        (
            vec![absent.clone(), differ.clone(), agree.clone()],
            NodeDbVerdict::Mismatch {
                differing: 2,
                judged: 3,
            },
        ),
        // A row written after the audit read it is not judged.
        (vec![raced.clone(), agree.clone()], NodeDbVerdict::Agrees),
        (vec![raced.clone(); 3], NodeDbVerdict::Agrees),
    ];
    for (samples, want) in cases {
        assert_eq!(node_db_verdict(&samples), want, "{samples:?}");
    }
}

#[test]
fn sample_takes_stale_rows_first_then_a_spread() {
    let present = [true, false, true, true, true, true, true, true, true, true];
    // Stale keys first (deleted key 1 skipped), then evenly over the others.
    assert_eq!(sample_indices(&present, &[1, 5], 2), vec![5, 0, 6]);
    assert_eq!(sample_indices(&present, &[], 3), vec![0, 4, 7]);
    assert_eq!(
        sample_indices(&[false, false], &[0], 3),
        Vec::<usize>::new()
    );
    assert_eq!(sample_indices(&present, &[2, 3, 4], 0), Vec::<usize>::new());
    let all = sample_indices(&present, &[], 100);
    assert_eq!(all.len(), 9);
}

#[test]
fn versions_parse() {
    assert_eq!(semver("2.3.2"), Some((2, 3, 2)));
    assert_eq!(semver("3.1.0-bugfix"), Some((3, 1, 0)));
    assert_eq!(semver("2.5"), Some((2, 5, 0)));
    assert_eq!(semver("r-nacos"), None);
}
