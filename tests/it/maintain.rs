//! `macrolake optimize` and `macrolake vacuum`: same query results before and after, and time
//! travel within the retention keeps working.

use super::common::*;

fn sql_as_of(
    cwd: &std::path::Path,
    lake: &std::path::Path,
    as_of: &str,
    query: &str,
) -> (i32, String, String) {
    run(bin(cwd)
        .arg("--lake")
        .arg(lake)
        .args(["sql", "--format", "csv", "--as-of", as_of, query]))
}

#[test]
fn optimize_and_vacuum_keep_results_identical() {
    let dir = tempfile::tempdir().unwrap();
    let lake = nightly_lake(dir.path());
    // More small appends to meta.runs.
    for _ in 0..3 {
        ingest_snapshot(dir.path(), &lake);
    }
    let queries = [
        "select * from marts.liquidity_vs_risk order by date",
        "select * from staging.fred_observations order by series_id, date, realtime_start",
        "select * from meta.runs order by started_at, run_id, kind, target",
    ];
    let snapshot_all = || queries.map(|q| sql_csv(dir.path(), &lake, q));
    let before = snapshot_all();
    let runs_version = sql_csv(dir.path(), &lake, "select count(*) from meta.runs");

    let (code, out, err) = run(bin(dir.path()).arg("--lake").arg(&lake).arg("optimize"));
    assert_eq!(code, 0, "{out}\n{err}");
    let runs_line = out
        .lines()
        .find(|l| l.starts_with("meta.runs "))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<u64> = runs_line
        .split_whitespace()
        .skip(1)
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        cols[0] >= 1 && cols[1] > cols[0],
        "meta.runs compacted: {runs_line}"
    );
    assert_eq!(snapshot_all(), before, "optimize changed query results");

    // Default retention (7 days): nothing recent is deleted; version 1 of meta.runs (before the
    // compaction) still reads.
    let (code, out, err) = run(bin(dir.path()).arg("--lake").arg(&lake).arg("vacuum"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.lines().skip(1).all(|l| l.ends_with(" 0 file(s)")),
        "{out}"
    );
    let (code, old, err) = sql_as_of(
        dir.path(),
        &lake,
        "1",
        "select count(*) > 0 as ok from meta.runs",
    );
    assert_eq!((code, old.trim()), (0, "ok\ntrue"), "{err}");

    // A short retention needs saying so, then deletes the compacted files.
    let (code, _, err) = run(bin(dir.path()).arg("--lake").arg(&lake).args([
        "vacuum",
        "meta.runs",
        "--retention-hours",
        "0",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("meta.runs") && err.contains("vacuum"), "{err}");
    let (code, out, err) = run(bin(dir.path()).arg("--lake").arg(&lake).args([
        "vacuum",
        "--retention-hours",
        "0",
        "--allow-short-retention",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    let deleted: u64 = out
        .lines()
        .filter_map(|l| l.split_whitespace().rev().nth(1)?.parse::<u64>().ok())
        .sum();
    assert!(deleted > 0, "{out}");
    assert_eq!(snapshot_all(), before, "vacuum changed query results");
    assert_eq!(
        sql_csv(dir.path(), &lake, "select count(*) from meta.runs"),
        runs_version
    );

    // Unknown tables are named.
    let (code, _, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .args(["optimize", "marts.nope"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("no table \"marts.nope\"") && err.contains("marts.liquidity_vs_risk"),
        "{err}"
    );
}
