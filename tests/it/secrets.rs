//! With FRED_API_KEY set, the key appears in no log line, error, raw landing file, recording or
//! meta.runs row — while it is really sent upstream.

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

const KEY: &str = "sekret-4f9c2a77e1d0b3";

#[test]
fn the_api_key_never_leaks() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    let api = snapshot().join("api.stlouisfed.org");
    let obs = std::fs::read(api.join("fred_series_observations--series_id=DFF.body.json")).unwrap();
    let meta = std::fs::read(api.join("fred_series--series_id=DFF.body.json")).unwrap();
    // The upstream error body echoes the key, as some APIs do: it must be scrubbed too.
    let echo = format!(
        "{{\"error_code\":400,\"error_message\":\"Bad Request. api_key {KEY} cannot see series WALCL\"}}"
    );
    rt.block_on(async {
        Mock::given(method("GET"))
            .and(path("/fred/series"))
            .and(query_param("series_id", "DFF"))
            .and(query_param("api_key", KEY))
            .respond_with(ResponseTemplate::new(200).set_body_raw(meta, "application/json"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/fred/series/observations"))
            .and(query_param("series_id", "DFF"))
            .and(query_param("api_key", KEY))
            .respond_with(ResponseTemplate::new(200).set_body_raw(obs, "application/json"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/fred/series"))
            .and(query_param("series_id", "WALCL"))
            .respond_with(ResponseTemplate::new(400).set_body_string(echo))
            .mount(&server)
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = mock_config(dir.path(), &server.uri(), &["DFF", "WALCL"]);
    let rec = dir.path().join("rec");
    let lake = dir.path().join("lake");
    let mut logs = String::new();
    for format in ["text", "json"] {
        let (code, out, err) = run(bin(dir.path())
            .env("FRED_API_KEY", KEY)
            .arg("--config")
            .arg(&cfg)
            .arg("--lake")
            .arg(&lake)
            .arg("--record")
            .arg(&rec)
            .args(["-vv", "--log-format", format, "ingest", "fred"]));
        assert_eq!(code, 1, "WALCL fails:\n{out}\n{err}");
        assert!(
            err.contains("api_key=REDACTED"),
            "errors show the URL with the key redacted:\n{err}"
        );
        logs.push_str(&out);
        logs.push_str(&err);
    }
    assert!(logs.contains("HTTP 400"), "{logs}");
    assert!(!logs.contains(KEY), "key in stdout/stderr:\n{logs}");

    // The key was really used upstream.
    let sent = rt.block_on(server.received_requests()).unwrap();
    assert!(
        sent.iter()
            .any(|r| r.url.query().unwrap_or("").contains(KEY))
    );

    // Recordings and raw landing files.
    let recordings = files_under(&rec);
    assert!(recordings.len() >= 4, "{recordings:?}");
    for f in recordings {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains(KEY), "key in recording {}", f.display());
    }
    let raw: Vec<_> = files_under(&lake.join("raw")).into_iter().collect();
    assert!(!raw.is_empty());
    for f in raw {
        let bytes = std::fs::read(&f).unwrap();
        let bodies = macrolake::lake::raw::read_archive(&bytes).unwrap();
        assert!(!bodies.is_empty(), "{}", f.display());
        for b in bodies {
            let text = String::from_utf8_lossy(&b.body);
            assert!(
                b.url.contains("api_key=REDACTED"),
                "raw archive's member header keeps the redacted URL: {}",
                b.url
            );
            assert!(
                !text.contains(KEY) && !b.url.contains(KEY),
                "key in raw archive {} ({})",
                f.display(),
                b.name
            );
        }
    }
    // Every byte of the lake (Delta logs included), and meta.runs as SQL sees it.
    for f in files_under(&lake) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "key in {}",
            f.display()
        );
    }
    let runs = sql_csv(dir.path(), &lake, "select * from meta.runs");
    assert!(runs.contains("HTTP 400") && !runs.contains(KEY), "{runs}");
    let dff = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n, min(realtime_start) as v from staging.fred_observations where series_id = 'DFF'",
    );
    assert_eq!(dff.trim(), "n,v\n157,2024-06-27", "API vintages kept");
}
