//! Upstream faults served by wiremock: retries, Retry-After, a failing series, malformed bodies.

use std::path::Path;
use std::time::{Duration, Instant};

use macrolake::app::App;
use macrolake::config::Config;
use macrolake::http::Mode;
use macrolake::lake::TableName;
use macrolake::sources::{SourceKind, Window};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

fn csv_mock(series: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/graph/fredgraph.csv"))
        .and(query_param("id", series))
}

fn app(dir: &std::path::Path, server: &MockServer, series: &[&str]) -> App {
    let cfg = Config::load(&mock_config(dir, &server.uri(), series), true).unwrap();
    let lake = dir.join("lake");
    App::new(cfg, Some(lake.to_str().unwrap()), Mode::Live).unwrap()
}

async fn walcl_rows(app: &App) -> usize {
    let session = app.lake.session(None, &[]).await.unwrap();
    let batches = session
        .ctx
        .sql("select * from staging.fred_observations where series_id = 'WALCL'")
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
    csv_mock("WALCL")
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    csv_mock("WALCL")
        .respond_with(ResponseTemplate::new(200).set_body_string(real_body("WALCL")))
        .with_priority(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &server, &["WALCL"]);
    let outcomes = app
        .ingest(&[SourceKind::Fred], Window::default())
        .await
        .unwrap();
    assert!(outcomes[0].errors.is_empty(), "{:?}", outcomes[0].errors);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "one failure, one retry"
    );
    assert_eq!(walcl_rows(&app).await, 1225);
}

#[tokio::test]
async fn a_429_with_retry_after_waits_that_long() {
    let server = MockServer::start().await;
    csv_mock("WALCL")
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    csv_mock("WALCL")
        .respond_with(ResponseTemplate::new(200).set_body_string(real_body("WALCL")))
        .with_priority(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &server, &["WALCL"]);
    let start = Instant::now();
    let outcomes = app
        .ingest(&[SourceKind::Fred], Window::default())
        .await
        .unwrap();
    assert!(outcomes[0].errors.is_empty(), "{:?}", outcomes[0].errors);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "honoured Retry-After: {:?}",
        start.elapsed()
    );
    assert_eq!(walcl_rows(&app).await, 1225);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_retry_budget() {
    let server = MockServer::start().await;
    csv_mock("WALCL")
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &server, &["WALCL"]);
    let outcomes = app
        .ingest(&[SourceKind::Fred], Window::default())
        .await
        .unwrap();
    let err = outcomes[0].errors[0].to_string();
    assert!(
        err.contains("HTTP 502 after 4 attempts") && err.contains("bad gateway"),
        "{err}"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        4,
        "1 try + max_retries 3"
    );
}

#[test]
fn a_404_for_one_series_names_it_exits_1_and_the_others_land() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    rt.block_on(
        csv_mock("WALCL")
            .respond_with(ResponseTemplate::new(200).set_body_string(real_body("WALCL")))
            .mount(&server),
    );
    rt.block_on(
        csv_mock("TREAST")
            .respond_with(ResponseTemplate::new(200).set_body_string(real_body("TREAST")))
            .mount(&server),
    );
    rt.block_on(
        csv_mock("GONE")
            .respond_with(
                ResponseTemplate::new(404)
                    .set_body_string("Bad Request.  The series does not exist."),
            )
            .mount(&server),
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = mock_config(dir.path(), &server.uri(), &["WALCL", "GONE", "TREAST"]);
    let (code, out, err) = run(bin(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["--lake", "lake", "ingest"]));
    assert_eq!(code, 1, "{out}\n{err}");
    let url = format!("{}/graph/fredgraph.csv?id=GONE", server.uri());
    assert!(
        err.contains("series GONE") && err.contains(&url) && err.contains("HTTP 404"),
        "{err}"
    );
    assert_eq!(
        rt.block_on(server.received_requests())
            .unwrap()
            .iter()
            .filter(|r| r.url.query() == Some("id=GONE"))
            .count(),
        1,
        "4xx is not retried"
    );
    let counts = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select series_id, count(*) as n from staging.fred_observations group by 1 order by 1",
    );
    assert_eq!(counts.trim(), "series_id,n\nTREAST,1225\nWALCL,1225");
    let runs = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select status, error from meta.runs where kind = 'ingest'",
    );
    assert!(
        runs.contains("failed") && runs.contains("series GONE"),
        "{runs}"
    );
}

#[tokio::test]
async fn malformed_or_truncated_csv_fails_with_the_line_and_keeps_the_version() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    csv_mock("WALCL")
        .respond_with(ResponseTemplate::new(200).set_body_string(real_body("WALCL")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let body = real_body("WALCL");
    let truncated = &body[..body.len() / 2 + 7];
    csv_mock("WALCL")
        .respond_with(ResponseTemplate::new(200).set_body_string(truncated))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    csv_mock("WALCL")
        .respond_with(
            ResponseTemplate::new(200).set_body_string("observation_date,WALCL\n2026-01-07,6.5e\n"),
        )
        .with_priority(3)
        .mount(&server)
        .await;
    let app = app(dir.path(), &server, &["WALCL"]);
    let table = TableName::staging("fred_observations");
    app.ingest(&[SourceKind::Fred], Window::default())
        .await
        .unwrap();
    let version = app.lake.version(&table).await.unwrap();
    assert_eq!(version, Some(0));

    let full = Window {
        full_refresh: true,
        ..Window::default()
    };
    let outcomes = app.ingest(&[SourceKind::Fred], full.clone()).await.unwrap();
    let err = outcomes[0].errors[0].to_string();
    assert!(
        err.contains("malformed body") && err.contains("at line"),
        "{err}"
    );
    assert_eq!(
        app.lake.version(&table).await.unwrap(),
        version,
        "version unchanged"
    );

    let outcomes = app.ingest(&[SourceKind::Fred], full).await.unwrap();
    let err = outcomes[0].errors[0].to_string();
    assert!(
        err.contains("at line 2") && err.contains("\"6.5e\" is not a number"),
        "{err}"
    );
    assert_eq!(
        app.lake.version(&table).await.unwrap(),
        version,
        "version unchanged"
    );
    assert_eq!(walcl_rows(&app).await, 1225, "old data stays");
}

#[tokio::test]
async fn what_is_recorded_replays_to_the_same_lake_without_the_server() {
    let server = MockServer::start().await;
    csv_mock("WALCL")
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/csv")
                .set_body_string(real_body("WALCL")),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load(&mock_config(dir.path(), &server.uri(), &["WALCL"]), true).unwrap();
    let rec = dir.path().join("rec");
    let live = App::new(
        cfg.clone(),
        Some(dir.path().join("a").to_str().unwrap()),
        Mode::Record(rec.clone()),
    )
    .unwrap();
    live.ingest(&[SourceKind::Fred], Window::default())
        .await
        .unwrap();
    drop(server);
    let replayed = App::new(
        cfg,
        Some(dir.path().join("b").to_str().unwrap()),
        Mode::Replay(rec.clone()),
    )
    .unwrap();
    let outcomes = replayed
        .ingest(&[SourceKind::Fred], Window::default())
        .await
        .unwrap();
    assert!(outcomes[0].errors.is_empty(), "{:?}", outcomes[0].errors);
    assert_eq!(walcl_rows(&live).await, 1225);
    assert_eq!(walcl_rows(&replayed).await, 1225);
    let body = std::fs::read_dir(rec.join("127.0.0.1"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().to_string_lossy().ends_with(".body.csv"));
    assert!(
        body.is_some(),
        "the body is a plain CSV file a person can read"
    );
}

/// The snapshot's real DFF answers of FRED's API: (observations, series metadata).
fn dff() -> (Vec<u8>, Vec<u8>) {
    let api = snapshot().join("api.stlouisfed.org");
    let read = |f: &str| std::fs::read(api.join(f)).unwrap();
    (
        read("fred_series_observations--series_id=DFF.body.json"),
        read("fred_series--series_id=DFF.body.json"),
    )
}

/// Serves `fred/series` (the metadata) with `meta`.
async fn serve_meta(server: &MockServer, meta: Vec<u8>) {
    Mock::given(method("GET"))
        .and(path("/fred/series"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(meta, "application/json"))
        .mount(server)
        .await;
}

#[test]
fn malformed_api_json_fails_clearly_and_keeps_the_version() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    let (obs, meta) = dff();
    rt.block_on(async {
        serve_meta(&server, meta).await;
        Mock::given(method("GET"))
            .and(path("/fred/series/observations"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(obs.clone(), "application/json"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/fred/series/observations"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(obs[..obs.len() / 3].to_vec(), "application/json"),
            )
            .with_priority(2)
            .mount(&server)
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = mock_config(dir.path(), &server.uri(), &["DFF"]);
    let ingest = |extra: &[&str]| {
        run(bin(dir.path())
            .env("FRED_API_KEY", "test-key-0000")
            .arg("--config")
            .arg(&cfg)
            .args(["--lake", "lake", "ingest", "fred"])
            .args(extra))
    };
    let (code, out, err) = ingest(&[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = ingest(&["--full-refresh"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("series DFF: malformed body")
            && err.contains("not the observations JSON layout"),
        "{err}"
    );
    let line = status_row(dir.path(), Path::new("lake"), "staging.fred_observations");
    assert!(
        line.contains("| 157 |") && line.ends_with("| 0"),
        "version and rows unchanged: {line}"
    );
}

/// FRED's API pages by offset: the real DFF answer (157 observations) served as two pages of
/// 100 and 57 (`offset` 0 and 100, `count` 157 on both) lands all 157, in two requests.
#[test]
fn api_observations_are_fetched_page_by_page_until_count() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    let (obs, meta) = dff();
    let whole: serde_json::Value = serde_json::from_slice(&obs).unwrap();
    let page = |offset: usize, len: usize| {
        let mut p = whole.clone();
        let rows = whole["observations"].as_array().unwrap();
        p["observations"] = rows[offset..offset + len].to_vec().into();
        p["offset"] = offset.into();
        p["limit"] = 100.into();
        serde_json::to_vec(&p).unwrap()
    };
    rt.block_on(async {
        serve_meta(&server, meta).await;
        Mock::given(method("GET"))
            .and(path("/fred/series/observations"))
            .and(query_param_is_missing("offset"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(page(0, 100), "application/json"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/fred/series/observations"))
            .and(query_param("offset", "100"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(page(100, 57), "application/json"),
            )
            .mount(&server)
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = mock_config(dir.path(), &server.uri(), &["DFF"]);
    let (code, out, err) = run(bin(dir.path())
        .env("FRED_API_KEY", "test-key-0000")
        .arg("--config")
        .arg(&cfg)
        .args(["--lake", "lake", "ingest", "fred"]));
    assert_eq!(code, 0, "{out}{err}");
    let obs_requests = rt
        .block_on(server.received_requests())
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/fred/series/observations")
        .count();
    assert_eq!(obs_requests, 2, "one request per page");
    assert_eq!(
        sql_csv(
            dir.path(),
            &dir.path().join("lake"),
            "select count(*) as n, min(date) as first, max(date) as last from staging.fred_observations"
        )
        .trim(),
        "n,first,last\n157,2023-01-01,2023-06-06"
    );
}
