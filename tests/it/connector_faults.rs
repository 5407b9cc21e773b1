//! wiremock faults for the Treasury, prices and futures connectors: retries, fallbacks,
//! malformed bodies that leave the table version unchanged, vendor-file validation.

use std::time::{Duration, Instant};

use macrolake::app::{App, SourceOutcome};
use macrolake::config::Config;
use macrolake::http::Mode;
use macrolake::lake::TableName;
use macrolake::sources::{SourceKind, Window};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

fn app(dir: &std::path::Path, server: &MockServer, extra: &str) -> App {
    let base = server.uri();
    let text = format!(
        "[http]\nmax_retries = 2\nbackoff_base_ms = 10\nbackoff_cap_ms = 50\n\n\
         [sources.treasury]\nurl = \"{base}/dts\"\n\n\
         [sources.prices]\nyahoo_url = \"{base}/chart/\"\ncoinbase_url = \"{base}/products/\"\nstooq_url = \"{base}/stooq\"\n\
         fredgraph_url = \"{base}/fredgraph.csv\"\nstart_date = \"2025-01-01\"\n\
         symbols = [{{ symbol = \"BTC-USD\", sources = [\"yahoo\", \"coinbase:BTC-USD\"] }}]\n\n\
         [sources.futures]\nyahoo_url = \"{base}/chart/\"\ncme_url = \"{base}/cme/\"\n{extra}\n"
    );
    let cfg = Config::parse(&text, std::path::Path::new("test.toml")).unwrap();
    App::new(cfg, Some(dir.join("lake").to_str().unwrap()), Mode::Live).unwrap()
}

/// A new lake and app on `server`, and one Treasury ingest into it with the default window.
async fn ingest_treasury(server: &MockServer) -> (tempfile::TempDir, App, SourceOutcome) {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), server, "");
    let mut out = app
        .ingest(&[SourceKind::Treasury], Window::default())
        .await
        .unwrap();
    (dir, app, out.remove(0))
}

fn openbb_dts() -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bodies/treasury/openbb_dts_2025-07-07_2025-07-11.json"),
    )
    .unwrap()
}

fn yahoo_body(symbol: &str) -> Vec<u8> {
    let file = format!(
        "v8_finance_chart_{}.body.json",
        symbol.replace(['^', '='], "_")
    );
    std::fs::read(snapshot().join("query1.finance.yahoo.com").join(file)).unwrap()
}

#[tokio::test]
async fn treasury_retries_a_503_and_a_malformed_page_keeps_the_version() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/dts"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/dts"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(openbb_dts(), "application/json"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let body = openbb_dts();
    Mock::given(method("GET"))
        .and(path("/dts"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(body[..body.len() / 2].to_vec(), "application/json"),
        )
        .with_priority(3)
        .mount(&server)
        .await;
    let (_dir, app, first) = ingest_treasury(&server).await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(first.rows, 5, "five real days after one retry");
    let table = TableName::staging("tga_daily");
    let v = app.lake.version(&table).await.unwrap();
    let out = app
        .ingest(
            &[SourceKind::Treasury],
            Window {
                full_refresh: true,
                ..Window::default()
            },
        )
        .await
        .unwrap();
    let err = out[0].errors[0].to_string();
    assert!(
        err.contains("treasury DTS page 1: malformed body")
            && err.contains("not the DTS JSON layout"),
        "{err}"
    );
    assert_eq!(
        app.lake.version(&table).await.unwrap(),
        v,
        "version unchanged"
    );
}

/// The real 2025-07-07 .. 11 answer re-paged: days up to `split` on page 1 (whose `links.next`
/// names page `next_of_1`), the later days on page 2 (whose `links.next` names `next_of_2`).
fn dts_pages(split: &str, next_of_1: u32, next_of_2: Option<u32>) -> (Vec<u8>, Vec<u8>) {
    let body: serde_json::Value = serde_json::from_slice(&openbb_dts()).unwrap();
    let link = |n: u32| format!("&page%5Bnumber%5D={n}&page%5Bsize%5D=1000");
    let page = |keep: &dyn Fn(&str) -> bool, next: Option<u32>| {
        let mut b = body.clone();
        let data: Vec<serde_json::Value> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| keep(r["record_date"].as_str().unwrap()))
            .cloned()
            .collect();
        b["data"] = serde_json::Value::Array(data);
        b["links"]["next"] = next.map(link).into();
        serde_json::to_vec(&b).unwrap()
    };
    (
        page(&|d| d <= split, Some(next_of_1)),
        page(&|d| d > split, next_of_2),
    )
}

/// Serves the re-paged answer (page 2's `links.next` is `next_of_2`) and ingests the Treasury
/// once into a new lake; returns the folder, the app, the error texts and the requests made.
async fn ingest_pages(
    next_of_2: Option<u32>,
) -> (tempfile::TempDir, App, Vec<String>, usize, usize) {
    let server = MockServer::start().await;
    let (one, two) = dts_pages("2025-07-08", 2, next_of_2);
    for (n, body) in [(1, one), (2, two)] {
        Mock::given(method("GET"))
            .and(path("/dts"))
            .and(query_param("page[number]", n.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .mount(&server)
            .await;
    }
    let (dir, app, out) = ingest_treasury(&server).await;
    let errors = out.errors.iter().map(|e| e.to_string()).collect();
    let requests = server.received_requests().await.unwrap().len();
    (dir, app, errors, out.rows, requests)
}

#[tokio::test]
async fn treasury_follows_links_next_to_the_last_page_and_refuses_a_link_back() {
    let (dir, _app, errors, rows, requests) = ingest_pages(None).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        (rows, requests),
        (5, 2),
        "two days from page 1, three from page 2"
    );
    assert_eq!(
        sql_csv(
            dir.path(),
            &dir.path().join("lake"),
            "select min(record_date) as first, max(record_date) as last, count(*) as n from staging.tga_daily"
        )
        .trim(),
        "first,last,n\n2025-07-07,2025-07-11,5"
    );

    // A page 2 whose next link goes back to page 1 would loop: refused, nothing lands.
    let (_dir, app, errors, rows, _) = ingest_pages(Some(1)).await;
    assert!(
        errors[0].contains("treasury DTS page 2: malformed body from http://")
            && errors[0].contains("the next page (1) does not come after this one (2)"),
        "{errors:?}"
    );
    assert_eq!(rows, 0);
    let tga = TableName::staging("tga_daily");
    assert!(
        !app.lake.exists(&tga).await.unwrap(),
        "no table from a refused run"
    );
}

#[tokio::test]
async fn prices_fall_back_to_coinbase_paging_300_days_and_keep_the_source() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/chart/BTC-USD"))
        .respond_with(ResponseTemplate::new(404).set_body_string("Not Found"))
        .mount(&server)
        .await;
    // 2025-01-01..2025-12-31 is 365 days: two requests of at most 300 candles.
    let day = |d: &str| {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    };
    let first = format!(
        "[[{},95000,97000,96000,96500,10],[{},1,2,3,4,5]]",
        day("2025-02-19"),
        day("2025-01-01")
    );
    let second = format!("[[{},90000,91000,90500,90800,7]]", day("2025-12-31"));
    Mock::given(method("GET"))
        .and(path("/products/BTC-USD/candles"))
        .and(query_param("start", "2025-01-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_string(first))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/products/BTC-USD/candles"))
        .and(query_param("start", "2025-10-28T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_string(second))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &server, "");
    let window = Window {
        until: chrono::NaiveDate::from_ymd_opt(2025, 12, 31),
        ..Window::default()
    };
    let out = app.ingest(&[SourceKind::Prices], window).await.unwrap();
    assert!(out[0].errors.is_empty(), "{:?}", out[0].errors);
    let rows = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select date, close, source from staging.prices_daily order by date",
    );
    assert_eq!(
        rows.trim(),
        "date,close,source\n2025-01-01,4.0,coinbase\n2025-02-19,96500.0,coinbase\n2025-12-31,90800.0,coinbase"
    );
}

#[tokio::test]
async fn prices_honour_retry_after_and_a_broken_yahoo_body_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/chart/BTC-USD"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/chart/BTC-USD"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(yahoo_body("BTC-USD"), "application/json"),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/chart/BTC-USD"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("{\"chart\":{\"result\":[{\"meta\":{}}]}}"),
        )
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/products/BTC-USD/candles"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &server, "");
    let start = Instant::now();
    let out = app
        .ingest(&[SourceKind::Prices], Window::default())
        .await
        .unwrap();
    assert!(out[0].errors.is_empty(), "{:?}", out[0].errors);
    assert!(start.elapsed() >= Duration::from_secs(1));
    let table = TableName::staging("prices_daily");
    let v = app.lake.version(&table).await.unwrap();
    let out = app
        .ingest(
            &[SourceKind::Prices],
            Window {
                full_refresh: true,
                ..Window::default()
            },
        )
        .await
        .unwrap();
    let err = out[0].errors[0].to_string();
    assert!(
        err.contains("symbol BTC-USD")
            && err.contains("every source failed")
            && err.contains("not the Yahoo chart layout")
            && err.contains("HTTP 500"),
        "{err}"
    );
    assert_eq!(app.lake.version(&table).await.unwrap(), v);
}

#[tokio::test]
async fn futures_cme_curve_and_vendor_files_validated_by_line() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/chart/ZQ%3DF"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(yahoo_body("ZQ=F"), "application/json"),
        )
        .mount(&server)
        .await;
    let cme = r#"{"settlements":[{"month":"NOV 25","settle":"96.1300","volume":"1,000","openInterest":"5"},{"month":"DEC 25","settle":"96.2850","volume":"-","openInterest":"-"},{"month":"Total","settle":""}],"tradeDate":"10/31/2025"}"#;
    Mock::given(method("GET"))
        .and(path("/cme/305/FUT"))
        .and(query_param("tradeDate", "10/31/2025"))
        .respond_with(ResponseTemplate::new(200).set_body_string(cme))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let vendor = dir.path().join("vendor");
    std::fs::create_dir_all(&vendor).unwrap();
    std::fs::write(
        vendor.join("good.csv"),
        "trade_date,contract,settle,volume\n2025-10-30,ZQF26,96.40,12\n2025-10-31,ZQZ25,96.20,\n",
    )
    .unwrap();
    std::fs::write(
        vendor.join("bad.csv"),
        "trade_date,contract,settle\n2025-10-30,ZQF26,96.40\n2025-10-31,ZQF26,ninety\n",
    )
    .unwrap();
    let extra = format!("cme_enabled = true\nvendor_dir = \"{}\"", vendor.display());
    let app = app(dir.path(), &server, &extra);
    let window = Window {
        until: chrono::NaiveDate::from_ymd_opt(2025, 10, 31),
        ..Window::default()
    };
    let out = app.ingest(&[SourceKind::Futures], window).await.unwrap();
    assert_eq!(out[0].errors.len(), 1, "{:?}", out[0].errors);
    let err = out[0].errors[0].to_string();
    assert!(
        err.starts_with("futures: ") && err.contains("bad.csv:3: ") && err.contains("\"ninety\""),
        "{err}"
    );
    let rows = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select contract, date, settle, source from staging.futures_daily where contract <> 'ZQ=F' order by 2, 1",
    );
    assert_eq!(
        rows.trim(),
        "contract,date,settle,source\nZQF26,2025-10-30,96.4,vendor:good.csv\nZQX25,2025-10-31,96.13,cme\nZQZ25,2025-10-31,96.285,cme",
        "CME wins over the vendor file for ZQZ25 on 2025-10-31; bad.csv lands nothing"
    );
    let front = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select count(*) as n from staging.futures_daily where contract = 'ZQ=F'",
    );
    assert!(front.trim() != "n\n0", "Yahoo front month landed too");
}
