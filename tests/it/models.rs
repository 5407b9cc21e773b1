//! The model runner: the marts on the snapshot, write-audit-publish, and errors reported with
//! file:line before anything is written.

use std::path::Path;

use super::common::*;

fn build(cwd: &Path, lake: &Path, args: &[&str]) -> (i32, String, String) {
    run(bin(cwd)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--lake")
        .arg(lake)
        .args(args))
}

#[test]
fn marts_build_on_the_snapshot_and_pin_real_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    let cfg = snapshot_config();
    let cfg = cfg.to_str().unwrap();
    // Without the snapshot's reference date the freshness tests fail: its data ends in June 2026.
    let (code, out, _) = build(
        dir.path(),
        &lake,
        &["build", "--select", "net_liquidity_daily"],
    );
    assert_eq!(code, 1);
    assert!(out.contains("freshness(date, 14) failed"), "{out}");
    let (code, out, err) = build(dir.path(), &lake, &["--config", cfg, "build"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for mart in [
        "net_liquidity_daily",
        "asset_daily",
        "asset_roles_daily",
        "co_highs",
        "liquidity_vs_risk",
        "bill_purchases",
        "policy_path",
        "policy_path_meetings",
        "eps_growth",
    ] {
        assert!(out.contains(&format!("marts.{mart} ")), "{mart}:\n{out}");
    }
    let (code, out, err) = build(dir.path(), &lake, &["--config", cfg, "test"]);
    assert_eq!(
        code, 0,
        "every data test passes on the published marts:\n{out}\n{err}"
    );
    // Net liquidity as known on Wednesday 2026-05-27 (18:30 New York): WALCL of 05-20 (that
    // Wednesday's print comes out Thursday), the DTS TGA of 05-26 (published the next day), the
    // ON RRP of the day: 6,713,643 − 881,329 − 1,853 ($M). On Thursday the 05-27 prints arrive:
    // WALCL 6,704,383 and the DTS TGA of 05-27, 842,660.
    let nl = sql_csv(
        dir.path(),
        &lake,
        "select date, fed_total_assets_musd, fed_total_assets_as_of, tga_musd, tga_as_of, tga_source, on_rrp_musd, net_liquidity_musd \
         from marts.net_liquidity_daily where date in ('2026-05-27', '2026-05-28') order by date",
    );
    assert_eq!(
        nl.trim(),
        "date,fed_total_assets_musd,fed_total_assets_as_of,tga_musd,tga_as_of,tga_source,on_rrp_musd,net_liquidity_musd\n\
         2026-05-27,6713643.0,2026-05-20,881329.0,2026-05-26,dts,1853.0,5830461.0\n\
         2026-05-28,6704383.0,2026-05-27,842660.0,2026-05-27,dts,1163.0,5860560.0"
    );
    // Small caps near their high while bitcoin is 45% below its own: the divergence the product is about.
    let dd = sql_csv(
        dir.path(),
        &lake,
        "select symbol, round(drawdown_pct, 2) as dd from marts.asset_daily where date = '2026-02-20' and symbol in ('BTC-USD', '^RUT') order by 1",
    );
    assert_eq!(dd.trim(), "symbol,dd\nBTC-USD,-45.49\n^RUT,-2.02");
    let row = sql_csv(
        dir.path(),
        &lake,
        "select round(next_meeting_cut_prob, 3) as p, round(btc_rut_corr_90d, 3) as c, stats_as_of from marts.liquidity_vs_risk where date = '2025-09-02'",
    );
    // The correlation known on Tuesday 2025-09-02 ends on Friday's session (Monday was Labor Day;
    // Tuesday's bitcoin close is public only after midnight UTC).
    assert_eq!(row.trim(), "p,c,stats_as_of\n0.923,0.401,2025-08-29");
    let highs = sql_csv(
        dir.path(),
        &lake,
        "select btc_date, small_caps_date from marts.co_highs where btc_date = '2025-10-06'",
    );
    assert_eq!(
        highs.trim(),
        "btc_date,small_caps_date\n2025-10-06,2025-10-06"
    );
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn fred_only_lake(dir: &Path) -> std::path::PathBuf {
    let lake = dir.join("lake");
    let (code, out, err) = run(bin(dir)
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["ingest", "fred"]));
    assert_eq!(code, 0, "{out}{err}");
    lake
}

/// A FRED-only lake and a models folder with `marts/units.sql` (`units_sql`) and
/// `marts/downstream.sql` (reading it); returns the lake and the folder.
fn units_and_downstream(dir: &Path, units_sql: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let lake = fred_only_lake(dir);
    let sql = dir.join("sql");
    write(&sql, "marts/units.sql", units_sql);
    write(
        &sql,
        "marts/downstream.sql",
        "SELECT count(*) AS n FROM marts.units\n",
    );
    (lake, sql)
}

/// A `unique` test is settled while the rows are written when they come out in strictly
/// increasing order of its key; sorted rows with a repeated key, or unsorted ones, still run the
/// test over the files, and a repeat fails the build. `test` takes the build's verdict while the
/// table is still the version the build published, and runs the test on any other version.
#[test]
fn a_unique_key_written_in_rising_order_is_proven_and_a_repeated_one_still_fails() {
    let dir = tempfile::tempdir().unwrap();
    let model = |body: &str| format!("-- test: unique(series_id, date)\n{body}\n");
    let (lake, sql) = units_and_downstream(
        dir.path(),
        &model(
            "SELECT series_id, date FROM staging.fred_observations GROUP BY series_id, date ORDER BY series_id, date",
        ),
    );
    let sql_arg = sql.to_str().unwrap();
    let command = |step: &str| {
        run(bin(dir.path())
            .env("MACROLAKE_LOG", "macrolake=debug")
            .arg("--lake")
            .arg(&lake)
            .args([step, "--select", "units", "--sql-dir", sql_arg]))
    };
    let build_units = || command("build");
    let rising = "data test passed: the rows are in strictly increasing order of its key";
    let published = "data test passed: the build that published the stored version proved it";
    let ran = "unique(series_id, date) seconds";
    let (code, out, err) = build_units();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(rising) && err.contains("unique(series_id, date)"),
        "{err}"
    );
    assert!(!err.contains(ran), "not run again:\n{err}");
    // `test` finds the version the build published.
    let (code, out, err) = command("test");
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(published) && !err.contains(ran), "{err}");

    // The same rows unsorted: the build runs the test over the files, and it passes.
    write(
        &sql,
        "marts/units.sql",
        &model(
            "SELECT series_id, date FROM staging.fred_observations GROUP BY series_id, date ORDER BY date DESC, series_id",
        ),
    );
    let (code, out, err) = build_units();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !err.contains(rising) && err.contains(ran),
        "the test ran:\n{err}"
    );
    let (code, out, test_err) = command("test");
    assert_eq!(code, 0, "{out}{test_err}");
    assert!(
        test_err.contains(published) && !test_err.contains(ran),
        "{test_err}"
    );

    // A version the build did not publish (a writer outside the build appends a key the table
    // holds): `test` runs the test, and it fails with the key.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use datafusion::arrow::array::{Date32Array, RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use macrolake::lake::{Lake, TableName, WriteMode};
        let lake = Lake::open(lake.to_str().unwrap(), false).unwrap();
        let units = TableName::marts("units");
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("series_id", DataType::Utf8, true),
            Field::new("date", DataType::Date32, true),
        ]));
        let effr_day = 19724; // 2024-01-02
        let row = RecordBatch::try_new(
            schema,
            vec![
                std::sync::Arc::new(StringArray::from(vec!["EFFR"])),
                std::sync::Arc::new(Date32Array::from(vec![effr_day])),
            ],
        )
        .unwrap();
        lake.write(&units, vec![row], WriteMode::Append)
            .await
            .unwrap();
    });
    let (code, out, test_err) = command("test");
    assert_eq!(code, 1, "{out}{test_err}");
    assert!(!test_err.contains(published), "{test_err}");
    assert!(
        out.contains("unique(series_id, date) failed")
            && out.contains("| EFFR      | 2024-01-02 | 2 |"),
        "offending key shown:\n{out}"
    );

    // Sorted, with one key twice: the build runs the test, fails, and shows the key.
    write(
        &sql,
        "marts/units.sql",
        &model(
            "SELECT series_id, date FROM (SELECT series_id, date FROM staging.fred_observations GROUP BY series_id, date \
             UNION ALL SELECT 'EFFR', DATE '2024-01-02') ORDER BY series_id, date",
        ),
    );
    let (code, out, err) = build_units();
    assert_eq!(code, 1, "{out}{err}");
    assert!(!err.contains(rising), "{err}");
    assert!(
        out.contains("unique(series_id, date) failed")
            && out.contains("| EFFR      | 2024-01-02 | 2 |"),
        "offending key shown:\n{out}"
    );
}

#[test]
fn a_failing_test_keeps_the_previous_version_prints_rows_and_skips_downstream() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, sql) = units_and_downstream(
        dir.path(),
        "-- test: not_null(units)\n-- test: unique(series_id)\nSELECT series_id, units FROM staging.fred_series\n",
    );
    let sql_arg = sql.to_str().unwrap();
    let build_units = || {
        run(bin(dir.path())
            .arg("--lake")
            .arg(&lake)
            .args(["build", "--sql-dir", sql_arg]))
    };
    let (code, out, err) = build_units();
    assert_eq!(code, 0, "{out}{err}");
    let before = sql_csv(dir.path(), &lake, "select * from marts.units order by 1");

    // A bad row: a NULL unit for one series.
    write(
        &sql,
        "marts/units.sql",
        "-- test: not_null(units)\nSELECT series_id, CASE WHEN series_id = 'EFFR' THEN NULL ELSE units END AS units FROM staging.fred_series\n",
    );
    let (code, out, _) = build_units();
    assert_eq!(code, 1);
    assert!(
        out.contains("not_null(units) failed") && out.contains("| EFFR      |"),
        "offending row shown:\n{out}"
    );
    assert!(
        out.contains("marts.downstream skipped: upstream marts.units failed"),
        "{out}"
    );
    assert_eq!(
        sql_csv(dir.path(), &lake, "select * from marts.units order by 1"),
        before,
        "previous version still visible"
    );
    let runs = sql_csv(
        dir.path(),
        &lake,
        "select target, status from meta.runs where kind = 'build' order by started_at desc, target limit 2",
    );
    assert_eq!(
        runs.trim(),
        "target,status\nmarts.downstream,skipped\nmarts.units,failed"
    );

    // A custom test file that must return no rows fails the same way.
    write(
        &sql,
        "marts/units.sql",
        "SELECT series_id, units FROM staging.fred_series\n",
    );
    write(
        &sql,
        "tests/no_percent_series.sql",
        "SELECT * FROM marts.units WHERE units = 'Percent'\n",
    );
    let (code, out, _) = build_units();
    assert_eq!(code, 1);
    assert!(out.contains("no_percent_series.sql failed"), "{out}");
    // The rows of the failed builds were staged beside the table and deleted: every data file
    // under the table's folder is one its log names (a published build's staged log is gone).
    let table = lake.join("marts/units");
    let staged: Vec<_> = walk(&table)
        .into_iter()
        .filter(|p| p.contains("staged-"))
        .collect();
    let log = walk(&table.join("_delta_log"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<String>();
    assert!(!staged.is_empty(), "the first build's files were staged");
    for file in &staged {
        let rel = file.strip_prefix(&format!("{}/", table.display())).unwrap();
        assert!(
            rel.ends_with(".parquet") && log.contains(&format!("\"path\":\"{rel}\"")),
            "{rel} is not a published file: {staged:?}"
        );
    }

    // A model whose columns change is published with its new schema.
    std::fs::remove_file(sql.join("tests/no_percent_series.sql")).unwrap();
    write(
        &sql,
        "marts/units.sql",
        "SELECT series_id, units, length(series_id) AS id_len FROM staging.fred_series\n",
    );
    let (code, out, err) = build_units();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        sql_csv(
            dir.path(),
            &lake,
            "select id_len from marts.units where series_id = 'EFFR'"
        )
        .trim(),
        "id_len\n4"
    );
}

/// The newest commit in a table's Delta log (its version).
fn delta_version(table: &Path) -> usize {
    walk(&table.join("_delta_log"))
        .iter()
        .filter(|p| p.ends_with(".json"))
        .count()
        - 1
}

#[test]
fn a_table_model_whose_inputs_did_not_change_keeps_its_rows_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, sql) = units_and_downstream(
        dir.path(),
        "SELECT series_id, units FROM staging.fred_series\n",
    );
    // Reads a view (the newest vintage of each observation) and a seed.
    write(
        &sql,
        "marts/latest.sql",
        "SELECT o.series_id, max(o.date) AS last, max(s.label) AS label \
         FROM staging.fred_observations_latest o LEFT JOIN seeds.labels s ON s.series_id = o.series_id \
         GROUP BY o.series_id\n",
    );
    write(&sql, "seeds/labels.csv", "series_id,label\nWALCL,assets\n");
    let build = |extra: &[&str]| {
        let (code, out, err) = run(bin(dir.path())
            .arg("--lake")
            .arg(&lake)
            .args(["build", "--sql-dir", sql.to_str().unwrap()])
            .args(extra));
        assert_eq!(code, 0, "{out}{err}");
        out
    };
    let line = |out: &str, model: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("marts.{model} ")))
            .unwrap_or_else(|| panic!("no line for {model}:\n{out}"))
            .to_string()
    };
    let versions =
        || ["units", "latest", "downstream"].map(|m| delta_version(&lake.join("marts").join(m)));
    let first = build(&[]);
    for m in ["units", "latest", "downstream"] {
        assert!(!line(&first, m).contains("unchanged"), "{first}");
    }
    let built = versions();
    let rows = sql_csv(dir.path(), &lake, "select * from marts.latest order by 1");
    assert!(
        rows.contains("WALCL,") && rows.contains(",assets"),
        "{rows}"
    );

    // Nothing changed: every model keeps its version and says why.
    let second = build(&[]);
    for m in ["units", "latest", "downstream"] {
        assert!(
            line(&second, m)
                .contains("unchanged: nothing it reads changed since its build of version"),
            "{second}"
        );
    }
    assert_eq!(versions(), built);
    assert_eq!(
        sql_csv(dir.path(), &lake, "select * from marts.latest order by 1"),
        rows
    );

    // Its tests still run on the rows it keeps: a new custom test that they fail fails the build.
    write(
        &sql,
        "tests/no_walcl.sql",
        "SELECT * FROM marts.latest WHERE series_id = 'WALCL'\n",
    );
    let (code, out, _) = run(bin(dir.path()).arg("--lake").arg(&lake).args([
        "build",
        "--sql-dir",
        sql.to_str().unwrap(),
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("marts.latest is unchanged since version")
            && out.contains("no_walcl.sql failed"),
        "{out}"
    );
    assert_eq!(versions(), built);
    std::fs::remove_file(sql.join("tests/no_walcl.sql")).unwrap();

    // A seed edit rebuilds the model reading it, not the others.
    write(
        &sql,
        "seeds/labels.csv",
        "series_id,label\nWALCL,total assets\n",
    );
    let third = build(&[]);
    assert!(!line(&third, "latest").contains("unchanged"), "{third}");
    assert!(line(&third, "units").contains("unchanged"), "{third}");
    assert!(
        sql_csv(
            dir.path(),
            &lake,
            "select label from marts.latest where series_id = 'WALCL'"
        )
        .contains("total assets")
    );

    // An edit of a model's file rebuilds it, and what reads it (its version moved).
    write(
        &sql,
        "marts/units.sql",
        "SELECT series_id, units FROM staging.fred_series WHERE series_id <> 'EFFR'\n",
    );
    let fourth = build(&[]);
    assert!(!line(&fourth, "units").contains("unchanged"), "{fourth}");
    assert!(
        !line(&fourth, "downstream").contains("unchanged"),
        "{fourth}"
    );
    assert!(line(&fourth, "latest").contains("unchanged"), "{fourth}");
    let [units, latest, downstream] = versions();
    assert_eq!(
        (units, latest, downstream),
        (built[0] + 1, built[1] + 1, built[2] + 1)
    );

    // --full-refresh rebuilds everything, and leaves a state the next build agrees with.
    let fifth = build(&["--full-refresh"]);
    for m in ["units", "latest", "downstream"] {
        assert!(!line(&fifth, m).contains("unchanged"), "{fifth}");
    }
    let sixth = build(&[]);
    assert!(line(&sixth, "downstream").contains("unchanged"), "{sixth}");
}

/// Every file below `dir`, recursively.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// An incremental model with an append query (`append/a.sql`, written by each case).
const APPENDING: &str = "-- materialized: incremental\n-- unique_key: series_id, n\n\
    -- partition_by: series_id\n-- append_sql: append/a.sql\n\
    SELECT series_id, 1 AS n FROM staging.fred_series";

#[test]
fn cycles_unknown_tables_and_bad_sql_fail_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let lake = fred_only_lake(dir.path());
    let cases = [
        (
            vec![
                ("marts/a.sql", "SELECT * FROM marts.b"),
                ("marts/b.sql", "SELECT * FROM marts.a"),
            ],
            "dependency cycle: marts.a -> marts.b -> marts.a",
        ),
        (
            vec![(
                "marts/a.sql",
                "-- description: x\nSELECT *\nFROM staging.no_such_table",
            )],
            "a.sql:3: staging.no_such_table is neither a lake table nor a model",
        ),
        (
            vec![(
                "marts/a.sql",
                "SELECT series_id\nFROM staging.fred_series\nWHERE",
            )],
            "a.sql:3: SQL syntax error",
        ),
        (
            vec![(
                "marts/a.sql",
                "SELECT series_id,\n  no_such_column\nFROM staging.fred_series",
            )],
            "a.sql:2: DataFusion",
        ),
        (
            vec![
                ("marts/ok.sql", "SELECT series_id FROM staging.fred_series"),
                ("marts/z.sql", "SELECT nope FROM marts.ok"),
            ],
            "z.sql:1: DataFusion",
        ),
        (
            vec![
                ("marts/a.sql", APPENDING),
                ("append/a.sql", "SELECT series_id FROM append_after"),
            ],
            "append/a.sql:1: the append query returns columns (series_id), the model (series_id, n)",
        ),
        (
            vec![
                ("marts/a.sql", APPENDING),
                (
                    "append/a.sql",
                    "SELECT series_id, nope AS n FROM append_after",
                ),
            ],
            "append/a.sql:1: DataFusion",
        ),
    ];
    for (i, (files, expected)) in cases.iter().enumerate() {
        let sql = dir.path().join(format!("sql{i}"));
        for (rel, text) in files {
            write(&sql, rel, text);
        }
        let (code, out, err) = run(bin(dir.path()).arg("--lake").arg(&lake).args([
            "build",
            "--sql-dir",
            sql.to_str().unwrap(),
        ]));
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
        let (_, status, _) = run(bin(dir.path()).arg("--lake").arg(&lake).arg("status"));
        assert!(!status.contains("marts."), "nothing was written:\n{status}");
    }
    // A dry run plans, prints the order, writes nothing.
    let sql = dir.path().join("sql_ok");
    write(&sql, "marts/second.sql", "SELECT * FROM marts.first");
    write(
        &sql,
        "marts/first.sql",
        "SELECT series_id FROM staging.fred_series",
    );
    let (code, out, _) = run(bin(dir.path()).arg("--lake").arg(&lake).args([
        "build",
        "--dry-run",
        "--sql-dir",
        sql.to_str().unwrap(),
    ]));
    assert_eq!(code, 0);
    assert!(
        out.find("marts.first").unwrap() < out.find("marts.second").unwrap(),
        "{out}"
    );
    let (_, status, _) = run(bin(dir.path()).arg("--lake").arg(&lake).arg("status"));
    assert!(!status.contains("marts."), "{status}");
}

#[test]
fn an_incremental_model_recomputes_only_the_changed_symbols_and_matches_a_full_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let cfg = snapshot_config();
    let ingest = |extra: &[&str]| {
        let (code, out, err) = run(bin(dir.path())
            .arg("--lake")
            .arg(&lake)
            .arg("--config")
            .arg(&cfg)
            .arg("--replay")
            .arg(snapshot())
            .args(["ingest", "prices"])
            .args(extra));
        assert_eq!(code, 0, "{out}{err}");
    };
    let build_asset = |extra: &[&str]| {
        let (code, out, err) = build(
            dir.path(),
            &lake,
            &[
                "--config",
                cfg.to_str().unwrap(),
                "build",
                "--select",
                "asset_daily",
            ]
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect::<Vec<_>>(),
        );
        assert_eq!(code, 0, "{out}{err}");
    };
    let dump = || {
        sql_csv(
            dir.path(),
            &lake,
            "select * from marts.asset_daily order by symbol, date",
        )
    };
    let last_rows = || {
        sql_csv(
            dir.path(),
            &lake,
            "select rows_written from meta.runs where kind = 'build' order by started_at desc limit 1",
        )
    };
    ingest(&["--until", "2026-06-04"]);
    build_asset(&[]);
    let all = || {
        sql_csv(
            dir.path(),
            &lake,
            "select count(*) as rows_written from staging.prices_daily",
        )
    };
    assert_eq!(last_rows(), all(), "first build: every row");
    // A new day arrives (and, for three symbols, the rest of their history to mid-July): each
    // symbol's days after its last stored one are appended; nothing stored is recomputed.
    let count = || -> i64 {
        sql_csv(
            dir.path(),
            &lake,
            "select count(*) as n from marts.asset_daily",
        )
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
    };
    let before = count();
    ingest(&[]);
    build_asset(&[]);
    let written: i64 = last_rows().lines().nth(1).unwrap().parse().unwrap();
    let new = count() - before;
    assert!(
        new > 0 && written == new,
        "only the {new} new rows were computed and written, not {written}"
    );
    let incremental = dump();
    build_asset(&["--full-refresh"]);
    assert_eq!(last_rows(), all(), "a full refresh rewrites every row");
    assert!(
        dump() == incremental,
        "incremental and full refresh give the same table"
    );
}
