//! Table-driven tests of the gate evaluation: each gate × a findings set × what was compared.

use super::*;

fn f(code: Code, layer: Layer, side: Option<&str>) -> Finding {
    let mut f = Finding::new(code, layer, "ns", "G", "n");
    f.side = side.map(|s| match s {
        "source" => crate::model::Side::Source,
        _ => crate::model::Side::Target,
    });
    f
}

fn probe(target_nodes: usize) -> BTreeMap<String, ProbeInfo> {
    let mut m = BTreeMap::new();
    m.insert(
        "target".to_owned(),
        ProbeInfo {
            nodes: target_nodes,
            keys: 3,
            mode: "full".into(),
            not_probed: Vec::new(),
        },
    );
    m
}

const ALL3: &[&str] = &[
    "L1 (DB ↔ DB)",
    "L2 (DB ↔ each node's cache)",
    "L3 (cluster ↔ cluster API)",
];
const CLIENTS: &str = "connected clients (SDK connections of each source node)";

/// The verdict of every gate, in [`ORDER`]: `P` pass, `F` fail, `-` not evaluated.
fn verdicts(findings: &[Finding], compared: &[&str], target_nodes: usize) -> String {
    let compared: Vec<String> = compared.iter().map(|s| (*s).to_owned()).collect();
    let probe = probe(target_nodes);
    evaluate(
        findings,
        Coverage {
            compared: &compared,
            probe: &probe,
        },
    )
    .0
    .iter()
    .map(|g| match g.verdict() {
        "pass" => 'P',
        "fail" => 'F',
        _ => '-',
    })
    .collect()
}

/// (case, findings, compared, target nodes probed, db/caches/dual/cutover/decommission verdicts)
type Case<'a> = (&'a str, Vec<Finding>, &'a [&'a str], usize, &'a str);

#[test]
fn every_gate_on_every_findings_set() {
    use Code::*;
    use Layer::*;
    let with_clients: Vec<&str> = ALL3.iter().copied().chain([CLIENTS]).collect();
    let l1_l3 = &["L1 (DB ↔ DB)", "L3 (cluster ↔ cluster API)"][..];
    let l2_l3 = ["L2 (DB ↔ node caches)", "L3 (cluster ↔ cluster API)"];
    let stale = f(CacheStale, L2, Some("target"));
    let stale_src = f(CacheStale, L2, Some("source"));
    let mut warn = f(ConfigMissing, L1, None);
    warn.level = Level::Warn;
    let mut fixed = stale.clone();
    fixed.repair = Some("repaired".into());
    // (case, findings, compared, target nodes probed, db/caches/dual/cutover/decommission)
    let table: Vec<Case> = vec![
        ("clean, all compared", vec![], &with_clients, 2, "PPPPP"),
        ("clean, no clients check", vec![], ALL3, 2, "PPPP-"),
        ("clean, no L2", vec![], l1_l3, 0, "P-P--"),
        ("clean, L2 ran, no target node", vec![], ALL3, 0, "P-P--"),
        ("clean, nothing compared", vec![], &[], 0, "-----"),
        // A managed target without DB access: configs are compared through the API (L3).
        ("clean, API only (no DBs)", vec![], &l2_l3, 2, "-PPP-"),
        (
            "L1 drift",
            vec![f(ConfigMissing, L1, None)],
            &with_clients,
            2,
            "FPPFF",
        ),
        (
            "L1 drift, no L2",
            vec![f(ConfigContentDiffers, L1, None)],
            l1_l3,
            0,
            "F-PF-",
        ),
        (
            "stale target cache",
            vec![stale.clone()],
            &with_clients,
            2,
            "PFPFP",
        ),
        (
            "stale source cache",
            vec![stale_src],
            &with_clients,
            2,
            "PPPPP",
        ),
        (
            "stale cache repaired",
            vec![fixed],
            &with_clients,
            2,
            "PPPPP",
        ),
        ("warn only", vec![warn], &with_clients, 2, "PPPPP"),
        (
            "missing instance",
            vec![f(InstanceMissing, L3, None)],
            &with_clients,
            2,
            "PPFFF",
        ),
        (
            "extra instance",
            vec![f(InstanceExtra, L3, None)],
            &with_clients,
            2,
            "PPPPP",
        ),
        (
            "L3 meta",
            vec![f(ServiceMetaDiffers, L3, None)],
            &with_clients,
            2,
            "PPPFP",
        ),
        (
            "client still connected",
            vec![f(ClientConnected, L3, None)],
            &with_clients,
            2,
            "PPPPF",
        ),
        (
            "L1 unread",
            vec![f(SourceError, L1, Some("target"))],
            &with_clients,
            2,
            "-PP-P",
        ),
        (
            "L3 unread",
            vec![f(SourceError, L3, Some("source"))],
            &with_clients,
            2,
            "PP---",
        ),
        (
            "L3 unread, L1 drift",
            vec![f(SourceError, L3, None), f(ConfigMissing, L1, None)],
            &with_clients,
            2,
            "FP-FF",
        ),
        (
            "L2 unread",
            vec![f(SourceError, L2, Some("target"))],
            &with_clients,
            2,
            "P-P-P",
        ),
        // L4: an application on the target holding an old config blocks the cutover; one
        // still listening on the source blocks the decommission.
        (
            "client stale on the target",
            vec![f(ClientStale, L4, Some("target"))],
            &with_clients,
            2,
            "PPPFP",
        ),
        (
            "client stale on the source",
            vec![f(ClientStale, L4, Some("source"))],
            &with_clients,
            2,
            "PPPPP",
        ),
        (
            "client listening on the source",
            vec![f(ClientOnSource, L4, Some("source"))],
            &with_clients,
            2,
            "PPPPF",
        ),
        (
            "client listening on both sides (information)",
            vec![f(ClientDualSubscribed, L4, None)],
            &with_clients,
            2,
            "PPPPP",
        ),
        (
            "L4 unread",
            vec![f(SourceError, L4, Some("source"))],
            &with_clients,
            2,
            "PPP--",
        ),
    ];
    for (case, findings, compared, nodes, want) in table {
        assert_eq!(verdicts(&findings, compared, nodes), want, "{case}");
    }
}

#[test]
fn not_evaluated_says_why_and_never_passes() {
    let compared = vec!["L1 (DB ↔ DB)".to_owned()];
    let probe = BTreeMap::new();
    let g = evaluate_one(
        Gate::CachesFresh,
        &[],
        Coverage {
            compared: &compared,
            probe: &probe,
        },
    );
    assert!(!g.evaluated && !g.passes, "{g:?}");
    assert_eq!(g.reason.as_deref(), Some("L2 not compared"));
    assert_eq!(g.verdict(), "not evaluated");
    let g = evaluate_one(
        Gate::DbSynced,
        &[f(Code::SourceError, Layer::L1, None)],
        Coverage {
            compared: &compared,
            probe: &probe,
        },
    );
    assert_eq!(g.reason.as_deref(), Some("1 source-error finding(s) in L1"));
    assert_eq!(g.failing, 0);
}

#[test]
fn failing_counts_and_top_codes() {
    use Code::*;
    let compared: Vec<String> = ALL3.iter().map(|s| (*s).to_owned()).collect();
    let probe = probe(1);
    let findings = vec![
        f(ConfigMissing, Layer::L1, None),
        f(ConfigMissing, Layer::L1, None),
        f(ConfigExtra, Layer::L1, None),
        f(NamespaceMissing, Layer::L1, None),
        f(ConfigContentDiffers, Layer::L1, None),
        f(ConfigContentDiffers, Layer::L1, None),
        f(InstanceMissing, Layer::L3, None),
    ];
    let cov = Coverage {
        compared: &compared,
        probe: &probe,
    };
    let g = evaluate_one(Gate::DbSynced, &findings, cov);
    assert_eq!(g.failing, 6);
    assert_eq!(
        g.top_codes(),
        [
            "config-content-differs (2)",
            "config-missing (2)",
            "config-extra (1)"
        ]
    );
    let g = evaluate_one(Gate::CutoverReady, &findings, cov);
    assert_eq!(g.failing, 7);
    assert!(g.evaluated && !g.passes);
}

#[test]
fn json_object_keeps_migration_order_and_round_trips() {
    let compared: Vec<String> = ALL3.iter().map(|s| (*s).to_owned()).collect();
    let probe = probe(1);
    let gates = evaluate(
        &[f(Code::ConfigMissing, Layer::L1, None)],
        Coverage {
            compared: &compared,
            probe: &probe,
        },
    );
    let json = serde_json::to_string(&gates).unwrap();
    let names: Vec<usize> = ORDER
        .iter()
        .map(|g| json.find(&format!("\"{}\"", g.name())).unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{json}");
    let back: Gates = serde_json::from_str(&json).unwrap();
    assert_eq!(back, gates);
}

#[test]
fn a_selected_gate_that_cannot_be_judged_never_exits_0() {
    let mut r = Report::new("audit", "x".into(), Some("caches-fresh".into()), vec![]);
    r.compared = vec!["L1 (DB ↔ DB)".into()];
    r.settle_gate();
    assert_eq!(r.exit_code, 3);
    assert!(
        r.not_compared[0].starts_with("gate caches-fresh: not evaluated (L2 not compared)"),
        "{:?}",
        r.not_compared
    );
    // Judged: the same run under db-synced passes.
    let mut r = Report::new("audit", "x".into(), Some("db-synced".into()), vec![]);
    r.compared = vec!["L1 (DB ↔ DB)".into()];
    r.settle_gate();
    assert_eq!(r.exit_code, 0);
    assert!(r.not_compared.is_empty());
    // Failing findings decide even when a part could not be judged.
    let mut r = Report::new(
        "audit",
        "x".into(),
        Some("cutover-ready".into()),
        vec![f(Code::ConfigMissing, Layer::L1, None)],
    );
    r.compared = vec!["L1 (DB ↔ DB)".into()];
    r.settle_gate();
    assert_eq!(r.exit_code, 1);
}

/// The codes of issue 14 (accounts, quotas, sync-tool traces, the baseline): which gates each fails.
#[test]
fn accounts_quotas_orphans_and_accepted_findings_in_every_gate() {
    use Code::*;
    use Layer::*;
    let all: Vec<&str> = ALL3.iter().copied().chain([CLIENTS]).collect();
    let warn = |code, layer| {
        let mut x = f(code, layer, None);
        x.level = Level::Warn;
        x
    };
    let mut accepted = f(UserMissing, L1, None);
    accepted.accepted = true;
    // (case, findings, db/caches/dual/cutover/decommission)
    let table: Vec<(&str, Vec<Finding>, &str)> = vec![
        ("user missing, L1", vec![f(UserMissing, L1, None)], "FPPFF"),
        ("user missing, API", vec![f(UserMissing, L3, None)], "PPPFF"),
        (
            "password differs, API",
            vec![f(UserPasswordDiffers, L3, None)],
            "PPPFP",
        ),
        ("role missing, API", vec![f(RoleMissing, L3, None)], "PPPFF"),
        (
            "permission missing, API",
            vec![f(PermissionMissing, L3, None)],
            "PPPFF",
        ),
        // Extra accounts break no application: only the L1 copy check (every L1 finding).
        ("user extra, L1", vec![f(UserExtra, L1, None)], "FPPFP"),
        ("user extra, API", vec![f(UserExtra, L3, None)], "PPPPP"),
        ("role extra, API", vec![f(RoleExtra, L3, None)], "PPPPP"),
        (
            "permission extra, API",
            vec![f(PermissionExtra, L3, None)],
            "PPPPP",
        ),
        (
            "quota differs (warn)",
            vec![warn(CapacityDiffers, L1), warn(CapacityMissing, L1)],
            "PPPPP",
        ),
        (
            "orphaned instance",
            vec![f(InstanceOrphaned, L3, None)],
            "PPPFP",
        ),
        (
            "stale baseline entry (warn)",
            vec![warn(BaselineStale, L3)],
            "PPPPP",
        ),
        ("accepted by the baseline", vec![accepted], "PPPPP"),
    ];
    for (case, findings, want) in table {
        assert_eq!(verdicts(&findings, &all, 2), want, "{case}");
    }
    for c in [BaselineStale, CapacityDiffers, CapacityMissing] {
        assert_eq!(c.default_level(), Level::Warn, "{c}");
    }
}

/// Gate membership, every code × every gate × every layer and side: where each code counts, as
/// `db-synced, caches-fresh, dual-registered, cutover-ready, decommission-ready` cells. A cell
/// lists the layers (`1`–`4`) at which the code blocks that gate, for any side, or with a side
/// letter where it depends on the side (`s` source, `t` target, `n` none). The match has no
/// catch-all: a new code does not compile until its gates are decided here.
fn membership(code: Code) -> [&'static str; 5] {
    use Code::*;
    match code {
        NamespaceMissing => ["1", "2t 2n", "", "1 2t 2n 3", "1 2 3 4"],
        NamespaceExtra => ["1", "2t 2n", "", "1 2t 2n", ""],
        ConfigMissing => ["1", "2t 2n", "", "1 2t 2n 3", "1 2 3 4"],
        ConfigExtra => ["1", "2t 2n", "", "1 2t 2n", ""],
        ConfigContentDiffers => ["1", "2t 2n", "", "1 2t 2n 3", ""],
        ConfigMetaDiffers => ["1", "2t 2n", "", "1 2t 2n 3", ""],
        CacheStale => ["1", "2t 2n", "", "1 2t 2n", ""],
        CacheMissing => ["1", "2t 2n", "", "1 2t 2n", ""],
        CacheExtra => ["1", "2t 2n", "", "1 2t 2n", ""],
        CacheTimestampTrap => ["1", "2t 2n", "", "1 2t 2n", ""],
        NodeNotMember => ["1", "2t 2n", "", "1 2t 2n", ""],
        ServiceMissing => ["1", "2t 2n", "1 2 3 4", "1 2 3 4", "1 2 3 4"],
        ServiceExtra => ["1", "2t 2n", "", "1 2t 2n", ""],
        ServiceMetaDiffers => ["1", "2t 2n", "", "1 2t 2n 3", ""],
        InstanceMissing => ["1", "2t 2n", "1 2 3 4", "1 2 3 4", "1 2 3 4"],
        InstanceExtra => ["1", "2t 2n", "", "1 2t 2n", ""],
        InstanceDiffers => ["1", "2t 2n", "", "1 2t 2n 3", ""],
        ClientConnected => ["1", "2t 2n", "", "1 2t 2n", "1 2 3 4"],
        ClientStale => ["1", "2t 2n", "", "1 2t 2n 3t 4t", ""],
        ClientOnSource => ["1", "2t 2n", "", "1 2t 2n", "1 2 3 4"],
        // Only ever found at L4, at level `allow`: no gate sees it there.
        ClientDualSubscribed => ["1", "2t 2n", "", "1 2t 2n", ""],
        SourceError => ["1 2 3 4", "1 2 3 4", "1 2 3 4", "1 2 3 4", "1 2 3 4"],
        BaselineStale => ["1", "2t 2n", "", "1 2t 2n", ""],
        InstanceOrphaned => ["1", "2t 2n", "", "1 2t 2n 3", ""],
        UserMissing => ["1", "2t 2n", "", "1 2 3 4", "1 2 3 4"],
        UserExtra => ["1", "2t 2n", "", "1 2t 2n", ""],
        UserPasswordDiffers => ["1", "2t 2n", "", "1 2 3 4", ""],
        RoleMissing => ["1", "2t 2n", "", "1 2 3 4", "1 2 3 4"],
        RoleExtra => ["1", "2t 2n", "", "1 2t 2n", ""],
        PermissionMissing => ["1", "2t 2n", "", "1 2 3 4", "1 2 3 4"],
        PermissionExtra => ["1", "2t 2n", "", "1 2t 2n", ""],
        CapacityMissing => ["1", "2t 2n", "", "1 2t 2n", ""],
        CapacityDiffers => ["1", "2t 2n", "", "1 2t 2n", ""],
        // Found at L1 only: it blocks db-synced and cutover-ready there (a 3.x node that will
        // not start is not a synced DB).
        NamespaceMigrateConflict => ["1", "2t 2n", "", "1 2t 2n", ""],
    }
}

#[test]
fn every_code_in_every_gate_at_every_layer_and_side() {
    use crate::model::Side;
    let layers = [
        (1, Layer::L1),
        (2, Layer::L2),
        (3, Layer::L3),
        (4, Layer::L4),
    ];
    let sides = [
        ('s', Some(Side::Source)),
        ('t', Some(Side::Target)),
        ('n', None),
    ];
    for code in Code::ALL {
        for (gate, cell) in ORDER.iter().zip(membership(code)) {
            let tokens: Vec<&str> = cell.split_whitespace().collect();
            for (n, layer) in layers {
                for (letter, side) in sides {
                    let want = tokens.contains(&n.to_string().as_str())
                        || tokens.contains(&format!("{n}{letter}").as_str());
                    assert_eq!(
                        gate.includes(code, layer, side),
                        want,
                        "{} in {} at {layer:?} side {side:?}",
                        code.as_str(),
                        gate.name()
                    );
                }
            }
        }
    }
}
