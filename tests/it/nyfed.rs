//! The NY Fed connector: the replay snapshot through the binary (ranges, idempotency, windows,
//! the SOMA-bills vs bill-purchases reconciliation) and upstream faults served by wiremock.

use std::path::{Path, PathBuf};

use macrolake::app::App;
use macrolake::config::Config;
use macrolake::http::Mode;
use macrolake::lake::StagingRow;
use macrolake::sources::nyfed::parse::{OperationRow, SomaRow};
use macrolake::sources::{SourceKind, Window};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

const OPS_FILE: &str = "markets.newyorkfed.org/api_tsy_all_results_details_search.json--startDate=2008-03-07_endDate=2026-08-06.body.json";
const SOMA_FILE: &str = "markets.newyorkfed.org/api_soma_summary.json.body.json";
const OPS_PATH: &str = "/api/tsy/all/results/details/search.json";
const SOMA_PATH: &str = "/api/soma/summary.json";

/// `macrolake ingest nyfed <extra>` on the snapshot; returns (exit code, stdout, stderr).
fn ingest(cwd: &Path, lake: &Path, extra: &[&str]) -> (i32, String, String) {
    run(bin(cwd)
        .arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["ingest", "nyfed"])
        .args(extra))
}

fn ingest_ok(cwd: &Path, lake: &Path, extra: &[&str]) -> String {
    let (code, out, err) = ingest(cwd, lake, extra);
    assert_eq!(code, 0, "ingest nyfed {extra:?} failed\n{out}\n{err}");
    out
}

#[test]
fn snapshot_lands_operations_and_soma_with_real_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = ingest_ok(dir.path(), &lake, &[]);
    assert!(
        out.contains("nyfed      ok          1763"),
        "431 operations + 148 weeks x 9 categories:\n{out}"
    );
    let ops = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n, count(distinct operation_id) as ops, min(operation_date) as first, \
         max(operation_date) as last, sum(case when is_bill_purchase then 1 else 0 end) as bill_purchases, \
         sum(case when cusip = '' then 1 else 0 end) as without_details from staging.treasury_operations",
    );
    assert_eq!(
        ops.trim(),
        "n,ops,first,last,bill_purchases,without_details\n431,431,2008-03-07,2026-08-06,57,431"
    );
    let first_rmp = sql_csv(
        dir.path(),
        &lake,
        "select operation_id, settlement_date, total_par_submitted_usd, total_par_accepted_usd, \
         maturity_range_start, maturity_range_end, is_bill_purchase \
         from staging.treasury_operations where operation_date = '2025-12-12'",
    );
    assert_eq!(
        first_rmp.trim(),
        "operation_id,settlement_date,total_par_submitted_usd,total_par_accepted_usd,maturity_range_start,maturity_range_end,is_bill_purchase\n\
         OR 121225 1,2025-12-15,27458000000.00,8167000000.00,2026-01-13,2026-04-09,true"
    );
    let soma = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n, count(distinct as_of_date) as weeks, min(as_of_date) as first, \
         max(as_of_date) as last, count(value_usd) as valued, count(distinct security_type) as types \
         from staging.soma_holdings",
    );
    assert_eq!(
        soma.trim(),
        "n,weeks,first,last,valued,types\n1332,148,2003-07-09,2026-03-11,1260,9",
        "72 NULLs: frn \"\" in every 2003-04 week, agencies \"\" from 2003-12-24"
    );
    let week = sql_csv(
        dir.path(),
        &lake,
        "select security_type, value_usd from staging.soma_holdings \
         where as_of_date = '2003-12-24' and security_type in ('agencies', 'bills', 'frn', 'total') order by 1",
    );
    assert_eq!(
        week.trim(),
        "security_type,value_usd\nagencies,\nbills,244380586000.00\nfrn,\ntotal,664548116000.00"
    );
    let totals = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n, sum(total_par_accepted_usd) as accepted from staging.treasury_operation_totals \
         where is_bill_purchase and operation_date >= '2025-12-12'",
    );
    assert_eq!(totals.trim(), "n,accepted\n50,332837000000.00");
    let line = status_row(dir.path(), &lake, "staging.treasury_operations");
    assert!(line.contains("| 431 | 2026-08-06"), "{line}");
}

#[test]
fn a_second_ingest_adds_no_rows_and_no_versions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let dump = |lake: &Path| {
        (
            sql_csv(
                dir.path(),
                lake,
                "select * from staging.treasury_operations order by operation_id, cusip",
            ),
            sql_csv(
                dir.path(),
                lake,
                "select * from staging.soma_holdings order by as_of_date, security_type",
            ),
        )
    };
    let lines = |lake: &Path| {
        (
            status_row(dir.path(), lake, "staging.treasury_operations"),
            status_row(dir.path(), lake, "staging.soma_holdings"),
        )
    };
    ingest_ok(dir.path(), &lake, &[]);
    let (first, status1) = (dump(&lake), lines(&lake));
    let out = ingest_ok(dir.path(), &lake, &[]);
    assert!(out.contains("nyfed      ok             0"), "{out}");
    assert!(first.0.lines().count() == 432 && first.1.lines().count() == 1333);
    assert!(first == dump(&lake), "the second ingest changed rows");
    assert_eq!(status1, lines(&lake), "no new version of either table");
    let runs = sql_csv(
        dir.path(),
        &lake,
        "select rows_written from meta.runs where target = 'nyfed' order by started_at",
    );
    assert_eq!(runs.trim(), "rows_written\n1763\n0");
}

#[test]
fn since_until_lands_only_that_window_and_full_refresh_replaces_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_ok(
        dir.path(),
        &lake,
        &["--since", "2025-12-01", "--until", "2026-02-28"],
    );
    let ops = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n, min(operation_date) as first, max(operation_date) as last, \
         sum(case when is_bill_purchase then 1 else 0 end) as bills from staging.treasury_operations",
    );
    assert_eq!(
        ops.trim(),
        "n,first,last,bills\n19,2025-12-12,2026-02-26,19",
        "only the window's operations"
    );
    let soma = sql_csv(
        dir.path(),
        &lake,
        "select count(distinct as_of_date) as weeks, min(as_of_date) as first, max(as_of_date) as last \
         from staging.soma_holdings",
    );
    assert_eq!(soma.trim(), "weeks,first,last\n13,2025-12-03,2026-02-25");

    // On a full lake, a full refresh of January rewrites January and nothing else.
    let lake = dir.path().join("full");
    ingest_ok(dir.path(), &lake, &[]);
    let before = status_row(dir.path(), &lake, "staging.treasury_operations");
    ingest_ok(
        dir.path(),
        &lake,
        &[
            "--since",
            "2026-01-01",
            "--until",
            "2026-01-31",
            "--full-refresh",
        ],
    );
    let after = status_row(dir.path(), &lake, "staging.treasury_operations");
    assert!(
        before.ends_with("| 0") && after.ends_with("| 1"),
        "one new version:\n{before}\n{after}"
    );
    let touched = sql_csv(
        dir.path(),
        &lake,
        "select min(operation_date) as first, max(operation_date) as last, count(*) as n \
         from staging.treasury_operations \
         where ingested_at > (select min(ingested_at) from staging.treasury_operations)",
    );
    assert_eq!(
        touched.trim(),
        "first,last,n\n2026-01-06,2026-01-29,6",
        "only January's 6 operations were rewritten"
    );
    let all = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n from staging.treasury_operations",
    );
    assert_eq!(all.trim(), "n\n431");
}

/// From 2025-12-17 on, each week's change in SOMA bills equals the bill purchases that settled
/// in that week (after the previous as-of date, up to this one) — exactly, to the dollar.
#[test]
fn soma_bills_change_equals_bill_purchases_settled_each_week() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_ok(dir.path(), &lake, &[]);
    let weeks = sql_csv(
        dir.path(),
        &lake,
        "with bills as ( \
           select as_of_date, lag(as_of_date) over (order by as_of_date) as previous, \
                  value_usd - lag(value_usd) over (order by as_of_date) as change_usd \
           from staging.soma_holdings where security_type = 'bills'), \
         purchases as ( \
           select settlement_date, total_par_accepted_usd from staging.treasury_operation_totals \
           where is_bill_purchase) \
         select b.as_of_date, b.change_usd, coalesce(sum(p.total_par_accepted_usd), 0) as purchased_usd \
         from bills b left join purchases p \
           on p.settlement_date > b.previous and p.settlement_date <= b.as_of_date \
         where b.as_of_date >= '2025-12-17' \
         group by b.as_of_date, b.change_usd order by b.as_of_date",
    );
    let rows: Vec<(String, i128, i128)> = weeks
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let cents = |s: &str| s.replace('.', "").parse::<i128>().unwrap();
            (f[0].to_string(), cents(f[1]), cents(f[2]))
        })
        .collect();
    assert_eq!(
        rows.len(),
        13,
        "13 weeks 2025-12-17 .. 2026-03-11:\n{weeks}"
    );
    for (week, change, purchased) in &rows {
        assert_eq!(change, purchased, "week {week}:\n{weeks}");
    }
    let total: i128 = rows.iter().map(|r| r.2).sum();
    assert_eq!(total, 163_269_000_000 * 100, "$163.269bn over the 13 weeks");
    assert_eq!(
        rows[0],
        (
            "2025-12-17".to_string(),
            14_968_000_000 * 100,
            14_968_000_000 * 100
        )
    );
}

/// `marts.bill_purchases` classifies the real operations: the $75 M test operation of
/// 2026-02-26 is a small-value exercise, every other one since 2025-12-12 is reserve management
/// or reinvestment (not separable), and the monthly pace is set against the announced $40 bn.
#[test]
fn bill_purchases_are_classified_and_paced_against_the_announced_40bn() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_ok(dir.path(), &lake, &[]);
    let (code, out, err) = run(bin(repo())
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .args(["build", "--select", "bill_purchases"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let purposes = sql_csv(
        dir.path(),
        &lake,
        "select purpose, count(*) as n, min(accepted_usd) as smallest, max(accepted_usd) as largest \
         from marts.bill_purchases group by 1 order by 1",
    );
    assert_eq!(
        purposes.trim(),
        "purpose,n,smallest,largest\n\
         reserve_management_or_reinvestment,49,3288000000.0,8306000000.0\n\
         small_value_exercise,1,75000000.0,75000000.0"
    );
    let test_op = sql_csv(
        dir.path(),
        &lake,
        "select operation_id, operation_date, purpose from marts.bill_purchases where accepted_usd < 1e9",
    );
    assert_eq!(
        test_op.trim(),
        "operation_id,operation_date,purpose\nOR 022626 25,2026-02-26,small_value_exercise"
    );
    // Monthly pace (programme purchases, $bn) against the announced $40 bn of RMPs; the excess
    // is agency-principal reinvestment plus any change in the RMP pace. December and August are
    // partial months; no announced pace is recorded after April 2026.
    let months = sql_csv(
        dir.path(),
        &lake,
        "select distinct month_start, month_programme_accepted_usd / 1e9 as bn, month_is_partial, \
                announced_rmp_usd_per_month / 1e9 as announced_bn, month_vs_announced_rmp_usd / 1e9 as vs_bn \
         from marts.bill_purchases order by 1",
    );
    assert_eq!(
        months.trim(),
        "month_start,bn,month_is_partial,announced_bn,vs_bn\n\
         2025-12-01,38.099,true,40.0,-1.901\n\
         2026-01-01,48.164,false,40.0,8.164\n\
         2026-02-01,54.235,false,40.0,14.235\n\
         2026-03-01,60.361,false,40.0,20.361\n\
         2026-04-01,33.845,false,40.0,-6.155\n\
         2026-05-01,39.2,false,,\n\
         2026-06-01,19.821,false,,\n\
         2026-07-01,30.405,false,,\n\
         2026-08-01,8.632,true,,"
    );
    // Totals: everything (as before) vs the programme without the test operation.
    let last = sql_csv(
        dir.path(),
        &lake,
        "select cum_accepted_usd, programme_cum_accepted_usd from marts.bill_purchases \
         order by operation_date desc, operation_id desc limit 1",
    );
    assert_eq!(
        last.trim(),
        "cum_accepted_usd,programme_cum_accepted_usd\n332837000000.0,332762000000.0"
    );
}

fn body(file: &str) -> Vec<u8> {
    std::fs::read(snapshot().join(file)).unwrap()
}

fn mock_app(dir: &Path, server: &MockServer) -> App {
    let cfg: PathBuf = dir.join("macrolake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[http]\nmax_retries = 3\nbackoff_base_ms = 10\nbackoff_cap_ms = 50\n\n\
             [sources.nyfed]\nbase_url = \"{}/api\"\n",
            server.uri()
        ),
    )
    .unwrap();
    let cfg = Config::load(&cfg, true).unwrap();
    App::new(cfg, Some(dir.join("lake").to_str().unwrap()), Mode::Live).unwrap()
}

async fn count(app: &App, table: &str) -> usize {
    let session = app.lake.session(None, &[]).await.unwrap();
    let batches = session
        .ctx
        .sql(&format!("select * from {table}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

#[tokio::test]
async fn a_503_then_200_lands_after_a_retry() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(OPS_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(OPS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body(OPS_FILE), "application/json"))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SOMA_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body(SOMA_FILE), "application/json"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = mock_app(dir.path(), &server);
    let outcomes = app
        .ingest(&[SourceKind::Nyfed], Window::default())
        .await
        .unwrap();
    assert!(outcomes[0].errors.is_empty(), "{:?}", outcomes[0].errors);
    let requests = server.received_requests().await.unwrap();
    let ops: Vec<_> = requests
        .iter()
        .filter(|r| r.url.path() == OPS_PATH)
        .collect();
    assert_eq!(ops.len(), 2, "one 503, one retry");
    let query = ops[1].url.query().unwrap_or_default();
    assert!(
        query.starts_with("startDate=2000-01-01&endDate=20"),
        "first run asks from the configured start: {query}"
    );
    assert_eq!(count(&app, "staging.treasury_operations").await, 431);
    assert_eq!(count(&app, "staging.soma_holdings").await, 1332);
}

#[tokio::test]
async fn malformed_bodies_fail_clearly_and_keep_the_versions() {
    let server = MockServer::start().await;
    let ops = body(OPS_FILE);
    let soma = body(SOMA_FILE);
    for (p, good, bad) in [
        (OPS_PATH, ops.clone(), ops[..ops.len() / 2].to_vec()),
        (
            SOMA_PATH,
            soma.clone(),
            String::from_utf8(soma.clone())
                .unwrap()
                .replacen("\"bills\": \"210460926700\",", "", 1)
                .into_bytes(),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_raw(good, "application/json"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_raw(bad, "application/json"))
            .with_priority(2)
            .mount(&server)
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = mock_app(dir.path(), &server);
    let outcomes = app
        .ingest(&[SourceKind::Nyfed], Window::default())
        .await
        .unwrap();
    assert!(outcomes[0].errors.is_empty(), "{:?}", outcomes[0].errors);
    let versions = (
        app.lake.version(&OperationRow::table()).await.unwrap(),
        app.lake.version(&SomaRow::table()).await.unwrap(),
    );
    assert_eq!(versions, (Some(0), Some(0)));

    let full = Window {
        full_refresh: true,
        ..Window::default()
    };
    let outcomes = app.ingest(&[SourceKind::Nyfed], full).await.unwrap();
    let errors: Vec<String> = outcomes[0].errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("nyfed treasury operations: malformed body from http://")
            && errors[0].contains("search.json?startDate=2000-01-01&endDate=")
            && errors[0].contains(" at line ")
            && errors[0].contains("not the treasury operations JSON layout"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("nyfed SOMA summary: malformed body from http://")
            && errors[1].ends_with("SOMA as of 2025-12-17: bills is missing (a new layout?)"),
        "{}",
        errors[1]
    );
    assert_eq!(
        (
            app.lake.version(&OperationRow::table()).await.unwrap(),
            app.lake.version(&SomaRow::table()).await.unwrap(),
        ),
        versions,
        "versions unchanged"
    );
    assert_eq!(count(&app, "staging.treasury_operations").await, 431);
    assert_eq!(count(&app, "staging.soma_holdings").await, 1332);
}
