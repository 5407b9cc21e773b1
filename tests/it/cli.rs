//! The binary on the bundled snapshot: the README's commands, idempotency, formats, time
//! travel, replay misses and exit codes.

use super::common::*;

const RANGES: &str = "select series_id, count(*), min(date), max(date) from staging.fred_observations group by 1 order by 1";

#[test]
fn snapshot_ingest_then_sql_prints_real_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    let (code, out, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .args(["sql", RANGES]));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("fred_ranges", out);
    assert!(
        out.contains("| WALCL     | 1225     | 2002-12-18"),
        "WALCL weekly from 2002-12-18:\n{out}"
    );
}

#[test]
fn second_ingest_leaves_identical_tables_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let dump = |lake: &std::path::Path| {
        (
            sql_csv(
                dir.path(),
                lake,
                "select * from staging.fred_observations order by series_id, date, realtime_start",
            ),
            sql_csv(
                dir.path(),
                lake,
                "select * from staging.fred_series order by series_id",
            ),
        )
    };
    ingest_snapshot(dir.path(), &lake);
    let first = dump(&lake);
    let (_, status1, _) = run(bin(dir.path()).arg("--lake").arg(&lake).arg("status"));
    ingest_snapshot(dir.path(), &lake);
    let second = dump(&lake);
    let (_, status2, _) = run(bin(dir.path()).arg("--lake").arg(&lake).arg("status"));
    assert!(first.0.lines().count() > 27_000, "the snapshot landed");
    assert!(
        first == second,
        "a second ingest of the same data changes nothing"
    );
    let staging = |s: &str| {
        status_rows(s)
            .into_iter()
            .filter(|l| l.starts_with("staging."))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        staging(&status1),
        staging(&status2),
        "no new version of any staging table"
    );
    let runs = sql_csv(
        dir.path(),
        &lake,
        "select count(*) filter (where kind = 'run') as runs, \
                count(*) filter (where kind = 'ingest') = 2 * count(distinct target) as one_row_per_source_per_run, \
                count(*) filter (where status <> 'ok') as not_ok from meta.runs",
    );
    assert_eq!(
        runs.trim(),
        "runs,one_row_per_source_per_run,not_ok\n2,true,0"
    );
}

#[test]
fn replay_without_recording_fails_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(
        &cfg,
        "[sources.fred]\nseries = [\"WALCL\", \"NOSUCHSERIES\"]\n",
    )
    .unwrap();
    let (code, out, err) = run(bin(dir.path())
        .args(["--lake", "lake", "--config"])
        .arg(&cfg)
        .arg("--replay")
        .arg(snapshot())
        .arg("ingest"));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains(
            "no recording for GET https://fred.stlouisfed.org/graph/fredgraph.csv?id=NOSUCHSERIES"
        ),
        "{err}"
    );
    // The series that has a recording still landed.
    let walcl = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select count(*) from staging.fred_observations where series_id = 'WALCL'",
    );
    assert_eq!(walcl.lines().nth(1), Some("1225"));
    let failed = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select target, status from meta.runs where kind = 'ingest'",
    );
    assert!(failed.contains("fred,failed"), "{failed}");
}

#[test]
fn usage_errors_exit_2_and_bad_config_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin(dir.path()).args(["ingest", "nosuchsource"]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown source"), "{err}");
    let (code, _, _) = run(bin(dir.path()).args(["sql"]));
    assert_eq!(code, 2);
    let (code, _, err) = run(bin(dir.path()).args(["sql", "--as-of", "yesterday", "select 1"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(bin(dir.path()).args(["ingest", "--since", "2026-13-01"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(bin(dir.path()).arg("--help"));
    assert_eq!(code, 0);

    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[lake]\nurl = \"./lake\"\nretention = 3\n").unwrap();
    let (code, _, err) = run(bin(dir.path()).arg("--config").arg(&cfg).arg("status"));
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.toml") && err.contains("retention") && err.contains("line 3"),
        "{err}"
    );
}

#[test]
fn bad_sql_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    let (code, _, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .args(["sql", "selec 1"]));
    assert_eq!(code, 1);
    assert!(err.contains("query failed"), "{err}");
    let (code, _, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .args(["sql", "select * from staging.nope"]));
    assert_eq!(code, 1);
    assert!(err.contains("staging.nope"), "{err}");
}

#[test]
fn sql_formats_time_travel_and_latest_view() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    ingest_snapshot(dir.path(), &lake);
    let q = "select series_id, date, value, value_musd from staging.fred_observations_latest where series_id = 'RRPONTSYD' and date = '2026-06-05'";
    let csv = sql_csv(dir.path(), &lake, q);
    assert_eq!(
        csv.trim(),
        "series_id,date,value,value_musd\nRRPONTSYD,2026-06-05,0.761,761.0",
        "$B normalised to $M"
    );

    let (code, json, _) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .args(["sql", "--format", "json", q]));
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["series_id"], "RRPONTSYD");
    assert_eq!(rows[0]["value"], 0.761);

    let out = dir.path().join("walcl.parquet");
    let (code, _, err) = run(bin(dir.path()).arg("--lake").arg(&lake).args([
        "sql",
        "--format",
        "parquet",
        "--output",
        out.to_str().unwrap(),
        "select * from staging.fred_observations where series_id = 'WALCL'",
    ]));
    assert_eq!(code, 0, "{err}");
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&out).unwrap())
            .unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 1225);
    let (code, _, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .args(["sql", "--format", "parquet", "select 1"]));
    assert_eq!(code, 1);
    assert!(err.contains("--output"), "{err}");

    // meta.runs had one run at version 0 and two now.
    let now = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n from meta.runs where kind = 'run'",
    );
    assert_eq!(now.trim(), "n\n2");
    let (code, then, err) = run(bin(dir.path()).arg("--lake").arg(&lake).args([
        "sql",
        "--format",
        "csv",
        "--as-of",
        "0",
        "select count(*) as n from meta.runs where kind = 'run'",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(then.trim(), "n\n1");
}

#[test]
fn full_refresh_rebuilds_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    let before = sql_csv(
        dir.path(),
        &lake,
        "select series_id, count(*) from staging.fred_observations group by 1 order by 1",
    );
    let (code, out, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["ingest", "fred", "--full-refresh"]));
    assert_eq!(code, 0, "{out}{err}");
    let after = sql_csv(
        dir.path(),
        &lake,
        "select series_id, count(*) from staging.fred_observations group by 1 order by 1",
    );
    assert_eq!(before, after);
    let line = status_row(dir.path(), &lake, "staging.fred_observations");
    assert!(line.ends_with("| 1"), "one new version: {line}");
}

#[test]
fn since_until_backfills_only_that_window() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (code, out, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args([
            "ingest",
            "fred",
            "--since",
            "2026-01-01",
            "--until",
            "2026-03-31",
        ]));
    assert_eq!(code, 0, "{out}{err}");
    let walcl = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n, min(date) as first, max(date) as last from staging.fred_observations where series_id = 'WALCL'",
    );
    assert_eq!(
        walcl.trim(),
        "n,first,last\n12,2026-01-07,2026-03-25",
        "the 12 Wednesdays of Q1 2026"
    );
    let outside = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n from staging.fred_observations where date < '2026-01-01' or date > '2026-03-31'",
    );
    assert_eq!(outside.trim(), "n\n0");
}

#[test]
fn treasury_tga_daily_from_three_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    let span = sql_csv(
        dir.path(),
        &lake,
        "select layout, count(*) as days, min(record_date) as first, max(record_date) as last \
         from staging.tga_daily group by 1 order by 2",
    );
    assert_eq!(
        span.trim(),
        "layout,days,first,last\n\
         federal_reserve_account,69,2021-06-24,2021-09-30\n\
         tga_account,136,2021-10-01,2022-04-15\n\
         tga_open_close,1047,2022-04-18,2026-06-23"
    );
    // The same day in OpenBB's real API recording: open 313162, close 332482 ($M).
    let day = sql_csv(
        dir.path(),
        &lake,
        "select open_balance_musd, close_balance_musd, deposits_musd, withdrawals_musd from staging.tga_daily where record_date = '2025-07-07'",
    );
    assert_eq!(
        day.trim(),
        "open_balance_musd,close_balance_musd,deposits_musd,withdrawals_musd\n313162.0,332482.0,38702.0,19382.0"
    );
}

/// `macrolake sql … | head`: once the reader is gone the command ends quietly, as Unix tools do
/// (killed by SIGPIPE), where `println!` used to panic with a backtrace.
#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin(dir.path())
        .arg("--lake")
        .arg(dir.path().join("lake"))
        .args(["sql", "select * from generate_series(1, 100000)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the first line is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.signal(), Some(13), "{:?} {err}", out.status);
}
