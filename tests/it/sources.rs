//! Every source on the bundled snapshot: real ranges and values, idempotent re-ingest, windows,
//! and the FedWatch step's coverage (probabilities or a labelled proxy for every day).

use super::common::*;

fn ingest(cwd: &std::path::Path, lake: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    run(bin(cwd)
        .arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .arg("ingest")
        .args(extra))
}

#[test]
fn every_source_lands_with_real_values_and_a_second_ingest_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (code, out, err) = ingest(dir.path(), &lake, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    for source in [
        "fred", "treasury", "nyfed", "refrates", "prices", "futures", "fedwatch",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(source) && l.contains(" ok ")),
            "{source} landed:\n{out}"
        );
    }
    let (_, status, _) = run(bin(dir.path()).arg("--lake").arg(&lake).arg("status"));
    for table in [
        "prices_daily",
        "futures_daily",
        "fedwatch_probabilities",
        "policy_proxy",
        "tga_daily",
        "treasury_operations",
        "soma_holdings",
        "reference_rates",
    ] {
        assert!(
            status.contains(&format!("staging.{table}")),
            "{table} in status:\n{status}"
        );
    }
    // Real values: BTC's close on 2025-02-19, the Russell 2000 on 2026-02-20, ZQ=F on 2025-09-02.
    let q = "select symbol, date, close from staging.prices_daily \
             where (symbol = 'BTC-USD' and date = '2025-02-19') or (symbol = '^RUT' and date = '2026-02-20') order by 1";
    assert_eq!(
        sql_csv(dir.path(), &lake, q).trim(),
        "symbol,date,close\nBTC-USD,2025-02-19,96635.609375\n^RUT,2026-02-20,2663.780029296875"
    );
    let prices_end = sql_csv(
        dir.path(),
        &lake,
        "select max(date) as d from staging.prices_daily where symbol = 'IWM'",
    );
    assert_eq!(prices_end.trim(), "d\n2026-06-05", "prices to 2026-06");
    let zq = sql_csv(
        dir.path(),
        &lake,
        "select contract, contract_month, implied_rate_pct from staging.futures_daily where date = '2025-09-02'",
    );
    assert_eq!(
        zq.trim(),
        "contract,contract_month,implied_rate_pct\nZQ=F,2025-09-01,4.230003"
    );

    // SOFR from the NY Fed: every published day 2018-04-03 .. 2026-06-04, the real 2024-06-03
    // entry with its percentiles and volume.
    let sofr = sql_csv(
        dir.path(),
        &lake,
        "select rate_type, count(*) as n, min(effective_date) as first, max(effective_date) as last, \
         sum(case when effective_date = '2024-06-03' then percent_rate end) as r, \
         sum(case when effective_date = '2024-06-03' then volume_busd end) as v from staging.reference_rates group by 1",
    );
    assert_eq!(
        sofr.trim(),
        "rate_type,n,first,last,r,v\nSOFR,2041,2018-04-03,2026-06-04,5.35,1912.0"
    );
    declared_rows_are_what_the_lake_stores(dir.path(), &lake);

    let before = sql_csv(
        dir.path(),
        &lake,
        "select 'p', count(*) from staging.prices_daily union all select 'f', count(*) from staging.futures_daily \
        union all select 'w', count(*) from staging.fedwatch_probabilities union all select 'x', count(*) from staging.policy_proxy order by 1",
    );
    let (code, out, err) = ingest(dir.path(), &lake, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    for line in out.lines().skip(1) {
        let rows: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            rows.get(2),
            Some(&"0"),
            "second ingest writes nothing: {line}"
        );
    }
    let after = sql_csv(
        dir.path(),
        &lake,
        "select 'p', count(*) from staging.prices_daily union all select 'f', count(*) from staging.futures_daily \
        union all select 'w', count(*) from staging.fedwatch_probabilities union all select 'x', count(*) from staging.policy_proxy order by 1",
    );
    assert_eq!(before, after);
}

#[test]
fn fedwatch_covers_every_day_with_probabilities_or_a_labelled_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (code, out, err) = ingest(dir.path(), &lake, &["fred", "futures", "fedwatch"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The domain: every day with an EFFR print or a futures settlement, from 2015.
    let q = "with days as (select date from staging.fred_observations_latest where series_id = 'EFFR' and date >= '2015-01-01' \
                           union select date from staging.futures_daily where date >= '2015-01-01'), \
                  fw as (select distinct as_of_date from staging.fedwatch_probabilities), \
                  px as (select as_of_date from staging.policy_proxy) \
             select count(*) as days, \
                    count(*) filter (where fw.as_of_date is not null) as with_probabilities, \
                    count(*) filter (where px.as_of_date is not null) as with_proxy, \
                    count(*) filter (where fw.as_of_date is null and px.as_of_date is null) as gaps, \
                    count(*) filter (where fw.as_of_date is not null and px.as_of_date is not null) as both_ \
             from days left join fw on fw.as_of_date = days.date left join px on px.as_of_date = days.date";
    let cov = sql_csv(dir.path(), &lake, q);
    let row: Vec<i64> = cov
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    // ~540 FedWatch days: with the front month only, a meeting fewer than 7 days before its
    // month's end gets no odds (the late-month guard, issue 11 item 5), so those days are proxies.
    assert!(row[1] > 500 && row[2] > 1500, "{cov}");
    assert_eq!(
        (row[3], row[4]),
        (0, 0),
        "every day has exactly one of the two: {cov}"
    );
    // Each meeting's probabilities sum to 1.
    let sums = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as bad from (select as_of_date, meeting_date, sum(probability) as s \
        from staging.fedwatch_probabilities group by 1, 2) where abs(s - 1) > 1e-6",
    );
    assert_eq!(sums.trim(), "bad\n0");
    // 2025-09-02, two weeks before the September 2025 cut: the real front month priced ~92% of a cut.
    let sep = sql_csv(
        dir.path(),
        &lake,
        "select target_low_bps, round(probability, 3) as p from staging.fedwatch_probabilities \
        where as_of_date = '2025-09-02' and meeting_date = '2025-09-17' order by 1",
    );
    assert_eq!(sep.trim(), "target_low_bps,p\n400,0.923\n425,0.077");
    // Proxy rows say what they are and why: on 2025-12-01 DGS2 was 3.54 % and EFFR 3.89 %.
    let px = sql_csv(
        dir.path(),
        &lake,
        "select proxy, reason, priced_change_bp from staging.policy_proxy where as_of_date = '2025-12-01'",
    );
    assert_eq!(
        px.trim(),
        "proxy,reason,priced_change_bp\nDGS2 - EFFR,no futures contract for the 2025-12 meeting month,-35.0"
    );
    let none = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n from staging.policy_proxy where proxy = 'none' and (reason not like '%no 1- or 2-year yield%' or priced_change_bp is not null)",
    );
    assert_eq!(none.trim(), "n\n0");
}

#[test]
fn since_touches_only_that_window() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (code, out, err) = ingest(dir.path(), &lake, &["prices", "--since", "2026-06-01"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let span = sql_csv(
        dir.path(),
        &lake,
        "select min(date) as first, max(date) as last, count(distinct symbol) as symbols from staging.prices_daily",
    );
    assert_eq!(
        span.trim(),
        "first,last,symbols\n2026-06-01,2026-07-13,9",
        "^RUT's and ^DJI's histories end in February 2026"
    );
}

/// `macrolake docs` lists every staging table as the connectors declare it; each must be exactly
/// what the lake stores (column order, type, nullability), and every stored staging table must be
/// declared.
fn declared_rows_are_what_the_lake_stores(cwd: &std::path::Path, lake: &std::path::Path) {
    let out = cwd.join("docs");
    let (code, o, err) = run(on_snapshot(cwd, lake).arg("docs").arg("--out").arg(&out));
    assert_eq!(code, 0, "{o}\n{err}");
    let catalogue = std::fs::read_to_string(out.join("catalogue.md")).unwrap();
    let staging = catalogue
        .split("## Staging tables")
        .nth(1)
        .expect("a staging section");
    let mut declared = Vec::new();
    let mut table = String::new();
    for line in staging.lines() {
        if let Some(t) = line.strip_prefix("### `staging.") {
            table = t.trim_end_matches('`').to_string();
        } else if let Some(row) = line.strip_prefix("| `") {
            let cells: Vec<&str> = row.split(" | ").collect();
            let nullable = if cells[2] == "yes" { "YES" } else { "NO" };
            let column = cells[0].trim_end_matches('`');
            let row = format!("{table},{column},{},{nullable}", cells[1]);
            declared.push(row.replace('"', ""));
        }
    }
    let stored = sql_csv(
        cwd,
        lake,
        "select c.table_name, c.column_name, c.data_type, c.is_nullable \
         from information_schema.columns c join information_schema.tables t \
         on c.table_schema = t.table_schema and c.table_name = t.table_name \
         where c.table_schema = 'staging' and t.table_type = 'BASE TABLE'",
    );
    // Query sessions read strings as Utf8View; the files hold Utf8.
    let mut stored: Vec<String> = stored
        .lines()
        .skip(1)
        .map(|l| l.replace('"', "").replace("Utf8View", "Utf8"))
        .collect();
    declared.sort();
    stored.sort();
    assert!(
        declared.len() > 100,
        "every table's columns: {}",
        declared.len()
    );
    assert_eq!(declared, stored, "declared rows vs stored schemas");
}
