//! NY Fed reference rates on wiremock with the real recorded SOFR and EFFR answers: one feed per
//! rate, a failing rate does not stop the others, a full refresh replaces only its own rate's
//! rows, and a re-run of the same answers writes nothing.

use macrolake::app::App;
use macrolake::config::Config;
use macrolake::http::Mode;
use macrolake::sources::{SourceKind, Window};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

const SOFR_PATH: &str = "/api/rates/secured/sofr/search.json";
const EFFR_PATH: &str = "/api/rates/unsecured/effr/search.json";

fn body(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/bodies/refrates").join(name)).unwrap()
}

fn sofr() -> Vec<u8> {
    body("nyfed_sofr_2024-06-01_2024-06-06.json")
}

fn effr() -> Vec<u8> {
    body("nyfed_effr_2023-01-01_2023-06-06.json")
}

fn app(dir: &std::path::Path, server: &MockServer) -> App {
    let text = format!(
        "[http]\nmax_retries = 1\nbackoff_base_ms = 10\nbackoff_cap_ms = 20\n\n\
         [sources.refrates]\nbase_url = \"{}/api\"\nrates = [\"sofr\", \"effr\"]\nstart_date = \"2023-01-01\"\n",
        server.uri()
    );
    let cfg = Config::parse(&text, std::path::Path::new("test.toml")).unwrap();
    App::new(cfg, Some(dir.join("lake").to_str().unwrap()), Mode::Live).unwrap()
}

async fn serve(server: &MockServer, route: &str, status: u16, body: Vec<u8>, priority: u8) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
        .with_priority(priority)
        .mount(server)
        .await;
}

/// The query string of the SOFR request the server received.
async fn sofr_query(server: &MockServer) -> String {
    let requests = server.received_requests().await.unwrap();
    requests
        .iter()
        .find(|r| r.url.path() == SOFR_PATH)
        .and_then(|r| r.url.query().map(str::to_string))
        .unwrap()
}

async fn counts(app: &App) -> String {
    let batches = app
        .query(
            "select rate_type, count(*) as n, min(effective_date) as first, max(effective_date) as last \
             from staging.reference_rates group by 1 order by 1",
            None,
        )
        .await
        .unwrap();
    let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    table.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn each_rate_is_its_own_feed_and_a_full_refresh_replaces_only_its_rows() {
    let server = MockServer::start().await;
    serve(&server, SOFR_PATH, 200, sofr(), 5).await;
    serve(&server, EFFR_PATH, 500, b"{}".to_vec(), 5).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &server);

    // EFFR fails (a 500 after its retry): SOFR still lands.
    let out = app
        .ingest(&[SourceKind::Refrates], Window::default())
        .await
        .unwrap();
    assert_eq!(out[0].rows, 4, "{:?}", out[0].errors);
    assert_eq!(out[0].errors.len(), 1);
    let err = out[0].errors[0].to_string();
    assert!(
        err.starts_with("refrates EFFR:") && err.contains("500"),
        "{err}"
    );
    let asked = sofr_query(&server).await;
    assert!(
        asked.starts_with("startDate=2023-01-01&endDate=20"),
        "a first run asks from start_date: {asked}"
    );

    // EFFR recovers: 108 real days land beside SOFR's 4.
    server.reset().await;
    serve(&server, SOFR_PATH, 200, sofr(), 5).await;
    serve(&server, EFFR_PATH, 200, effr(), 5).await;
    let out = app
        .ingest(&[SourceKind::Refrates], Window::default())
        .await
        .unwrap();
    assert!(out[0].errors.is_empty(), "{:?}", out[0].errors);
    assert_eq!(out[0].rows, 108, "EFFR's days; SOFR's are unchanged");
    let both = counts(&app).await;
    assert!(
        both.contains("| EFFR | 108 | 2023-01-03 | 2023-06-06 |"),
        "{both}"
    );
    assert!(
        both.contains("| SOFR | 4 | 2024-06-03 | 2024-06-06 |"),
        "{both}"
    );
    // SOFR asked again from its own watermark (2024-06-06) minus the 14-day look-back.
    let asked = sofr_query(&server).await;
    assert!(asked.starts_with("startDate=2024-05-23&"), "{asked}");

    // The same answers again: nothing written.
    let out = app
        .ingest(&[SourceKind::Refrates], Window::default())
        .await
        .unwrap();
    assert_eq!((out[0].rows, out[0].errors.len()), (0, 0));

    // A full refresh whose SOFR answer lost a day replaces SOFR's rows, and only SOFR's.
    let mut shorter: serde_json::Value = serde_json::from_slice(&sofr()).unwrap();
    let dropped = shorter["refRates"].as_array_mut().unwrap().pop().unwrap();
    assert_eq!(
        dropped["effectiveDate"], "2024-06-03",
        "newest first: the oldest is last"
    );
    let shorter = serde_json::to_vec(&shorter).unwrap();
    server.reset().await;
    serve(&server, SOFR_PATH, 200, shorter, 5).await;
    serve(&server, EFFR_PATH, 200, effr(), 5).await;
    let out = app
        .ingest(
            &[SourceKind::Refrates],
            Window {
                full_refresh: true,
                ..Window::default()
            },
        )
        .await
        .unwrap();
    assert!(out[0].errors.is_empty(), "{:?}", out[0].errors);
    let after = counts(&app).await;
    assert!(
        after.contains("| EFFR | 108 | 2023-01-03 | 2023-06-06 |"),
        "{after}"
    );
    assert!(
        after.contains("| SOFR | 3 | 2024-06-04 | 2024-06-06 |"),
        "{after}"
    );
}
