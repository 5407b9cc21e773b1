//! Full price history by default: with no `start_date`, the prices connector asks each source for
//! its whole history (Yahoo from 1900-01-01, Stooq without `d1`), and on the snapshot every symbol
//! starts at the first day of its real export, not 2015-01-01.

use macrolake::app::App;
use macrolake::config::Config;
use macrolake::http::Mode;
use macrolake::sources::{SourceKind, Window};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

/// `period1` for 1900-01-01 00:00 UTC, the connector's whole-history start.
const EARLIEST_PERIOD1: &str = "-2208988800";

#[test]
fn every_symbol_lands_from_the_first_day_of_its_real_history() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (code, out, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["ingest", "prices"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let span = sql_csv(
        dir.path(),
        &lake,
        "select symbol, min(date) as first, max(date) as last, count(*) as n \
         from staging.prices_daily group by 1 order by 1",
    );
    assert_eq!(
        span.trim(),
        "symbol,first,last,n\n\
         BTC-USD,2014-09-17,2026-06-05,4280\n\
         DIA,1998-01-20,2026-06-05,7139\n\
         IWM,2000-05-26,2026-06-05,6545\n\
         QQQ,1999-03-10,2026-06-05,6853\n\
         SI=F,2000-08-30,2026-07-13,6491\n\
         SLV,2006-04-28,2026-06-05,5058\n\
         SPY,1993-01-29,2026-06-05,8395\n\
         ^DJI,1992-01-02,2026-02-23,8596\n\
         ^GSPC,1927-12-30,2026-07-13,24748\n\
         ^NDX,1985-10-01,2026-07-13,10273\n\
         ^RUT,1987-09-10,2026-02-20,9685",
        "each symbol from its export's first day"
    );
    // Real first closes, as the exports have them (a pre-1970 timestamp lands on its own day).
    let first = sql_csv(
        dir.path(),
        &lake,
        "select symbol, date, close, volume from staging.prices_daily \
         where (symbol = '^GSPC' and date = '1927-12-30') or (symbol = 'BTC-USD' and date = '2014-09-17') \
            or (symbol = '^RUT' and date = '1987-09-10') order by 1",
    );
    assert_eq!(
        first.trim(),
        "symbol,date,close,volume\n\
         BTC-USD,2014-09-17,457.3340148925781,21056800.0\n\
         ^GSPC,1927-12-30,17.65999984741211,\n\
         ^RUT,1987-09-10,168.97000122070312,179800000.0"
    );
}

fn yahoo_body(symbol: &str) -> Vec<u8> {
    let file = format!(
        "v8_finance_chart_{}.body.json",
        symbol.replace(['^', '='], "_")
    );
    std::fs::read(snapshot().join("query1.finance.yahoo.com").join(file)).unwrap()
}

fn app(dir: &std::path::Path, server: &MockServer, start_date: Option<&str>) -> App {
    let base = server.uri();
    let start = start_date
        .map(|d| format!("start_date = \"{d}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[http]\nmax_retries = 0\n\n\
         [sources.prices]\nyahoo_url = \"{base}/chart/\"\nstooq_url = \"{base}/stooq\"\n{start}\
         symbols = [{{ symbol = \"^GSPC\", sources = [\"yahoo\"] }}, \
                    {{ symbol = \"IWM\", sources = [\"stooq:iwm.us\", \"yahoo\"] }}]\n"
    );
    let cfg = Config::parse(&text, std::path::Path::new("test.toml")).unwrap();
    App::new(cfg, Some(dir.join("lake").to_str().unwrap()), Mode::Live).unwrap()
}

async fn mount_yahoo(server: &MockServer, period1: &str) {
    for (p, symbol) in [("/chart/%5EGSPC", "^GSPC"), ("/chart/IWM", "IWM")] {
        Mock::given(method("GET"))
            .and(path(p))
            .and(query_param("period1", period1))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(yahoo_body(symbol), "application/json"),
            )
            .mount(server)
            .await;
    }
    // Stooq refuses (its real "No data" answer), so IWM falls back to Yahoo.
    Mock::given(method("GET"))
        .and(path("/stooq"))
        .respond_with(ResponseTemplate::new(200).set_body_string("No data"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_default_request_asks_each_source_for_its_whole_history() {
    let server = MockServer::start().await;
    mount_yahoo(&server, EARLIEST_PERIOD1).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &server, None);
    let out = app
        .ingest(&[SourceKind::Prices], Window::default())
        .await
        .unwrap();
    assert!(out[0].errors.is_empty(), "{:?}", out[0].errors);
    assert_eq!(out[0].rows, 24748 + 6545, "every day of both bodies");

    let requests = server.received_requests().await.unwrap();
    let query = |path_end: &str| -> Vec<(String, String)> {
        let r = requests
            .iter()
            .find(|r| r.url.path().ends_with(path_end))
            .unwrap_or_else(|| panic!("no request to {path_end}"));
        r.url.query_pairs().into_owned().collect()
    };
    let gspc = query("/chart/%5EGSPC");
    assert!(
        gspc.contains(&("period1".into(), EARLIEST_PERIOD1.into())),
        "Yahoo asked from 1900-01-01: {gspc:?}"
    );
    let stooq = query("/stooq");
    assert!(
        stooq.iter().all(|(k, _)| k != "d1"),
        "Stooq asked without a start: {stooq:?}"
    );

    let span = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select symbol, min(date) as first, source from staging.prices_daily group by 1, 3 order by 1",
    );
    assert_eq!(
        span.trim(),
        "symbol,first,source\nIWM,2000-05-26,yahoo\n^GSPC,1927-12-30,yahoo"
    );
}

#[tokio::test]
async fn a_configured_start_date_still_bounds_the_request_and_the_rows() {
    let server = MockServer::start().await;
    // 2015-01-01 00:00 UTC.
    mount_yahoo(&server, "1420070400").await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &server, Some("2015-01-01"));
    let out = app
        .ingest(&[SourceKind::Prices], Window::default())
        .await
        .unwrap();
    assert!(out[0].errors.is_empty(), "{:?}", out[0].errors);
    let requests = server.received_requests().await.unwrap();
    let stooq = requests
        .iter()
        .find(|r| r.url.path() == "/stooq")
        .expect("stooq asked");
    assert!(
        stooq
            .url
            .query_pairs()
            .any(|(k, v)| k == "d1" && v == "20150101"),
        "{}",
        stooq.url
    );
    let span = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select symbol, min(date) as first from staging.prices_daily group by 1 order by 1",
    );
    assert_eq!(
        span.trim(),
        "symbol,first\nIWM,2015-01-02\n^GSPC,2015-01-02"
    );
}
