//! The project around the lake: where `sql/` is found, what an empty result publishes, how a
//! past day is replayed (`run --until`), and how errors are printed.

use super::common::*;

#[test]
fn build_outside_the_project_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    for cmd in [&["build"][..], &["test"], &["docs"]] {
        let (code, out, err) = run(bin(dir.path()).arg("--lake").arg(&lake).args(cmd));
        assert_eq!(code, 1, "{cmd:?} outside the project: {out}\n{err}");
        assert!(
            err.contains("no models folder at sql") && err.contains("[models] dir"),
            "{cmd:?}: {err}"
        );
        assert_eq!(
            err.matches("no models folder").count(),
            1,
            "printed once: {err}"
        );
    }
    assert!(!lake.join("marts").exists(), "nothing was written");
}

#[test]
fn build_from_another_folder_finds_the_projects_models_through_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    // The snapshot's config says `[models] dir = "../../../sql"`, relative to its own folder.
    let (code, out, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .args(["build", "--select", "bill_purchases"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("marts.bill_purchases"), "{out}");
    let rows = sql_csv(
        dir.path(),
        &lake,
        "select count(*) from marts.bill_purchases",
    );
    assert!(
        rows.lines().nth(1).unwrap().parse::<u32>().unwrap() > 10,
        "{rows}"
    );
}

#[test]
fn a_past_day_replays_and_an_empty_model_is_published_with_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // Before the bill-purchase programme (2025-12-12): marts.bill_purchases has no rows.
    let (code, out, err) =
        run(on_snapshot(repo(), &lake).args(["run", "nightly", "--until", "2025-06-18"]));
    assert_eq!(code, 0, "nightly cut at 2025-06-18\n{out}\n{err}");
    let csv = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n from marts.bill_purchases",
    );
    assert_eq!(csv, "n\n0\n");
    let cols = sql_csv(
        dir.path(),
        &lake,
        "select column_name from information_schema.columns \
         where table_schema = 'marts' and table_name = 'bill_purchases' order by ordinal_position",
    );
    assert!(
        cols.contains("operation_id") && cols.contains("programme_cum_accepted_usd"),
        "the empty table keeps its schema: {cols}"
    );
    // Nothing observed after the cut reached staging; the product runs to the day the cut's
    // last values became known (the 18th's EFFR and DTS are published on the 19th).
    let newest = sql_csv(
        dir.path(),
        &lake,
        "select (select max(date) from staging.fred_observations) as fred, \
         (select max(date) from staging.prices_daily) as prices, \
         (select max(record_date) from staging.tga_daily) as dts, \
         (select max(date) from marts.liquidity_vs_risk) as product",
    );
    assert_eq!(
        newest,
        "fred,prices,dts,product\n2025-06-18,2025-06-18,2025-06-18,2025-06-19\n"
    );
}

#[test]
fn an_error_prints_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    let (code, _, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .args(["sql", "select no_such_column from staging.fred_series"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("\nerror: query failed: Schema error: No field named"),
        "{err}"
    );
    assert_eq!(
        err.matches("No field named no_such_column").count(),
        1,
        "the cause once: {err}"
    );
}
