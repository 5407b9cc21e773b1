//! The fault matrix: every HTTP connector × every upstream fault, served on loopback (wiremock, and
//! a raw TCP server for a connection cut mid-body). For each cell the faulty connector fails with
//! a clear error naming it, its tables keep their Delta version (nothing half-written is
//! visible), and another source ingested in the same run still lands. Schema drift that the
//! format tolerates (an extra field, fields reordered) lands instead. FRED also gets the
//! unit-change guard and dates out of order / listed twice.

use std::time::Duration;

use macrolake::app::App;
use macrolake::config::Config;
use macrolake::http::Mode;
use macrolake::lake::TableName;
use macrolake::sources::{SourceKind, Window};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

/// What upstream does.
#[derive(Clone)]
enum Fault {
    Status(u16),
    TooMany,
    Timeout,
    /// Headers promise the whole body; half is sent, then the connection is reset (RST).
    ResetMidBody,
    /// A well-formed answer whose body is cut in half.
    Truncated,
    Empty,
    /// The consent or error page Yahoo and CME answer with status 200.
    HtmlPage,
    /// A changed body (a renamed field, an extra one, a unit change …), with its name.
    Body(&'static str, Vec<u8>),
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Status(s) => write!(f, "HTTP {s}"),
            Fault::TooMany => f.write_str("429 Retry-After"),
            Fault::Timeout => f.write_str("timeout"),
            Fault::ResetMidBody => f.write_str("reset mid-body"),
            Fault::Truncated => f.write_str("truncated body"),
            Fault::Empty => f.write_str("empty 200"),
            Fault::HtmlPage => f.write_str("HTML page with 200"),
            Fault::Body(name, _) => f.write_str(name),
        }
    }
}

/// A drifted body: `from` replaced by `to` in the real one.
fn drift(name: &'static str, body: &[u8], from: &str, to: &str) -> Fault {
    Fault::Body(name, replaced(body, from, to))
}

/// What the cell expects.
enum Expect {
    /// The connector fails with an error containing these.
    Fails(&'static [&'static str]),
    /// The connector lands (drift the format allows).
    Lands,
}

/// The transport faults every connector gets.
fn transport() -> Vec<(Fault, Expect)> {
    vec![
        (Fault::Status(503), Expect::Fails(&["HTTP 503"])),
        (Fault::TooMany, Expect::Fails(&["HTTP 429"])),
        (Fault::Timeout, Expect::Fails(&["timed out"])),
        (Fault::ResetMidBody, Expect::Fails(&[])),
        (Fault::Truncated, Expect::Fails(&["malformed body"])),
        (Fault::Empty, Expect::Fails(&["malformed body"])),
        (Fault::HtmlPage, Expect::Fails(&["malformed body"])),
    ]
}

struct Connector {
    kind: SourceKind,
    tables: &'static [&'static str],
    /// `[sources.*]` settings pointing at `{base}`.
    config: &'static str,
    body: Vec<u8>,
    /// Other paths of the same server, always healthy: (path, body).
    extra: Vec<(&'static str, Vec<u8>)>,
    cells: Vec<(Fault, Expect)>,
}

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures").join(rel)).unwrap()
}

fn replaced(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    assert!(text.contains(from), "{from:?} is in the real body");
    text.replace(from, to).into_bytes()
}

/// Serves `fault` for every request, or the healthy `body` when `fault` is `None`.
async fn serve(server: &MockServer, body: &[u8], fault: Option<&Fault>, raw: &str) {
    serve_with(server, body, fault, raw, &[]).await
}

async fn serve_with(
    server: &MockServer,
    body: &[u8],
    fault: Option<&Fault>,
    raw: &str,
    extra: &[(&'static str, Vec<u8>)],
) {
    server.reset().await;
    for (p, b) in extra {
        Mock::given(method("GET"))
            .and(wiremock::matchers::path(*p))
            .respond_with(ResponseTemplate::new(200).set_body_raw(b.clone(), "application/json"))
            .with_priority(1)
            .mount(server)
            .await;
    }
    let ok = |b: Vec<u8>| ResponseTemplate::new(200).set_body_raw(b, "application/octet-stream");
    let template = match fault {
        None => ok(body.to_vec()),
        Some(Fault::Status(s)) => ResponseTemplate::new(*s).set_body_string("upstream down"),
        Some(Fault::TooMany) => ResponseTemplate::new(429).insert_header("Retry-After", "0"),
        Some(Fault::Timeout) => ok(body.to_vec()).set_delay(Duration::from_secs(3)),
        Some(Fault::Truncated) => ok(body[..body.len() / 2].to_vec()),
        Some(Fault::Empty) => ok(Vec::new()),
        Some(Fault::HtmlPage) => ResponseTemplate::new(200).set_body_raw(
            b"<!DOCTYPE html><html><body><h1>Before you continue</h1><form>Accept all</form></body></html>".to_vec(),
            "text/html",
        ),
        Some(Fault::Body(_, changed)) => ok(changed.clone()),
        Some(Fault::ResetMidBody) => {
            // Everything goes to the raw server instead.
            let to = raw.to_string();
            ResponseTemplate::new(307).insert_header("Location", to.as_str())
        }
    };
    Mock::given(method("GET"))
        .respond_with(template)
        .with_priority(2)
        .mount(server)
        .await;
}

/// A server that answers every request with headers for `body`, half of it, then a reset.
async fn resetting_server(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body[..body.len() / 2]).await;
                let _ = s.flush().await;
                let _ = s.set_zero_linger();
                drop(s);
            });
        }
    });
    format!("http://{addr}/cut")
}

fn app(dir: &std::path::Path, target: &Connector, base: &str, other: &str) -> App {
    let other_cfg = if target.kind == SourceKind::Fred {
        format!("[sources.treasury]\nurl = \"{other}/dts\"\n")
    } else {
        format!("[sources.fred]\nseries = [\"WALCL\"]\nfredgraph_url = \"{other}/fredgraph.csv\"\n")
    };
    let text = format!(
        "[http]\nmax_retries = 1\nbackoff_base_ms = 1\nbackoff_cap_ms = 5\nrequest_timeout_secs = 1\nread_timeout_secs = 1\n\n{other_cfg}\n{}\n",
        target.config.replace("{base}", base)
    );
    let cfg = Config::parse(&text, std::path::Path::new("matrix.toml")).unwrap();
    App::new(cfg, Some(dir.join("lake").to_str().unwrap()), Mode::Live).unwrap()
}

async fn versions(app: &App, tables: &[&str]) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for t in tables {
        out.push(app.lake.version(&TableName::staging(t)).await.unwrap());
    }
    out
}

/// Runs one connector's row of the matrix; returns the number of cells.
async fn run_matrix(target: Connector) -> usize {
    let (other_kind, other_body) = if target.kind == SourceKind::Fred {
        (
            SourceKind::Treasury,
            file("bodies/treasury/openbb_dts_2025-07-07_2025-07-11.json"),
        )
    } else {
        (SourceKind::Fred, real_body("WALCL").into_bytes())
    };
    let other = MockServer::start().await;
    serve(&other, &other_body, None, "").await;
    let server = MockServer::start().await;
    let raw = resetting_server(target.body.clone()).await;
    serve_with(&server, &target.body, None, &raw, &target.extra).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), &target, &server.uri(), &other.uri());
    let kinds = [other_kind, target.kind];
    let window = Window {
        until: chrono::NaiveDate::from_ymd_opt(2026, 9, 14),
        full_refresh: true,
        ..Window::default()
    };
    let out = app.ingest(&kinds, window.clone()).await.unwrap();
    for o in &out {
        assert!(o.errors.is_empty(), "healthy run: {:?}", o.errors);
    }
    let mut before = versions(&app, target.tables).await;
    assert!(before.iter().all(Option::is_some), "{before:?}");
    for (fault, expect) in &target.cells {
        let cell = format!("{} × {fault:?}", target.kind);
        serve_with(&server, &target.body, Some(fault), &raw, &target.extra).await;
        let out = app.ingest(&kinds, window.clone()).await.unwrap();
        let get = |k: SourceKind| out.iter().find(|o| o.kind == k).unwrap();
        let (mine, theirs) = (get(target.kind), get(other_kind));
        assert!(
            theirs.errors.is_empty(),
            "{cell}: the other source: {:?}",
            theirs.errors
        );
        assert!(theirs.rows > 0, "{cell}: the other source landed nothing");
        match expect {
            Expect::Fails(words) => {
                let err = mine.errors.first().map(|e| e.to_string());
                let err = err.unwrap_or_else(|| panic!("{cell}: no error"));
                assert!(err.starts_with(target.kind.as_str()), "{cell}: {err}");
                for w in *words {
                    assert!(err.contains(w), "{cell}: {err:?} lacks {w:?}");
                }
                let now = versions(&app, target.tables).await;
                assert_eq!(now, before, "{cell}: a table of the failed source changed");
            }
            Expect::Lands => {
                assert!(mine.errors.is_empty(), "{cell}: {:?}", mine.errors);
                assert!(
                    mine.rows > 0 || target.kind == SourceKind::Fomc,
                    "{cell}: no rows"
                );
                before = versions(&app, target.tables).await;
            }
        }
    }
    target.cells.len()
}

fn with(mut cells: Vec<(Fault, Expect)>, more: Vec<(Fault, Expect)>) -> Vec<(Fault, Expect)> {
    cells.extend(more);
    cells
}

/// WALCL with every value changed by `f` (a unit change), or its data lines rearranged.
fn walcl(f: impl Fn(Vec<String>) -> Vec<String>) -> Vec<u8> {
    let body = real_body("WALCL");
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    let data = f(lines.split_off(1));
    lines.extend(data);
    (lines.join("\n") + "\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn fred_fault_matrix() {
    let body = real_body("WALCL").into_bytes();
    let thousandth = walcl(|ls| {
        ls.into_iter()
            .map(|l| match l.split_once(',') {
                Some((d, v)) if !v.is_empty() => {
                    format!("{d},{}", v.parse::<f64>().unwrap() / 1000.0)
                }
                _ => l,
            })
            .collect()
    });
    let reversed = walcl(|mut ls| {
        ls.reverse();
        ls
    });
    let twice_same = walcl(|mut ls| {
        ls.push(ls[ls.len() - 1].clone());
        ls
    });
    let twice_conflicting = walcl(|mut ls| {
        let last = ls[ls.len() - 1].clone();
        ls.push(format!("{},1", last.split(',').next().unwrap()));
        ls
    });
    let d = |name, from, to| drift(name, &body, from, to);
    let n = run_matrix(Connector {
        kind: SourceKind::Fred,
        tables: &["fred_observations", "fred_series"],
        config: "[sources.fred]\nseries = [\"WALCL\"]\nfredgraph_url = \"{base}/fredgraph.csv\"\n",
        body: body.clone(),
        extra: Vec::new(),
        cells: with(
            transport(),
            vec![
                (
                    d(
                        "value column renamed",
                        "observation_date,WALCL",
                        "observation_date,WALCL_NEW",
                    ),
                    Expect::Fails(&["expected a WALCL column"]),
                ),
                (
                    d(
                        "value column missing",
                        "observation_date,WALCL",
                        "observation_date",
                    ),
                    Expect::Fails(&["expected header"]),
                ),
                (
                    d(
                        "extra column",
                        "observation_date,WALCL",
                        "observation_date,WALCL,extra",
                    ),
                    Expect::Fails(&["expected header"]),
                ),
                (
                    d(
                        "columns reordered",
                        "observation_date,WALCL",
                        "WALCL,observation_date",
                    ),
                    Expect::Fails(&["expected header"]),
                ),
                (
                    Fault::Body("unit change ÷1000", thousandth),
                    Expect::Fails(&["series WALCL", "refused", "1000x", "rebased_series"]),
                ),
                (Fault::Body("dates out of order", reversed), Expect::Lands),
                (
                    Fault::Body("a date twice, same value", twice_same),
                    Expect::Lands,
                ),
                (
                    Fault::Body("a date twice, two values", twice_conflicting),
                    Expect::Fails(&["listed twice with different values"]),
                ),
            ],
        ),
    })
    .await;
    assert_eq!(n, 15);
}

#[tokio::test(flavor = "multi_thread")]
async fn treasury_fault_matrix() {
    let body = file("bodies/treasury/openbb_dts_2025-07-07_2025-07-11.json");
    let d = |name, from, to| drift(name, &body, from, to);
    run_matrix(Connector {
        kind: SourceKind::Treasury,
        tables: &["tga_daily"],
        config: "[sources.treasury]\nurl = \"{base}/dts\"\n",
        body: body.clone(),
        extra: Vec::new(),
        cells: with(
            transport(),
            vec![
                (
                    d("record_date renamed", "\"record_date\"", "\"recordDate\""),
                    Expect::Fails(&["missing field `record_date`"]),
                ),
                (
                    d(
                        "extra field",
                        "\"record_date\"",
                        "\"extra_field\":\"x\",\"record_date\"",
                    ),
                    Expect::Lands,
                ),
            ],
        ),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prices_fault_matrix() {
    let body = std::fs::read(
        snapshot().join("query1.finance.yahoo.com/v8_finance_chart_BTC-USD.body.json"),
    )
    .unwrap();
    let d = |name, from, to| drift(name, &body, from, to);
    run_matrix(Connector {
        kind: SourceKind::Prices,
        tables: &["prices_daily"],
        config: "[sources.prices]\nyahoo_url = \"{base}/chart/\"\nstart_date = \"2025-01-01\"\nsymbols = [{ symbol = \"BTC-USD\", sources = [\"yahoo\"] }]\n",
        body: body.clone(),
        extra: Vec::new(),
        cells: with(
            transport(),
            vec![
                (d("close renamed", "\"close\"", "\"closePrice\""), Expect::Fails(&["missing field `close`"])),
                (d("extra field", "\"meta\":{", "\"meta\":{\"extraField\":1,"), Expect::Lands),
            ],
        ),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nyfed_fault_matrix() {
    let ny = snapshot().join("markets.newyorkfed.org");
    let body = std::fs::read(ny.join("api_soma_summary.json.body.json")).unwrap();
    let d = |name, from, to| drift(name, &body, from, to);
    run_matrix(Connector {
        kind: SourceKind::Nyfed,
        tables: &["soma_holdings"],
        config: "[sources.nyfed]\nbase_url = \"{base}/api/\"\n",
        body: body.clone(),
        extra: vec![(
            "/api/tsy/all/results/details/search.json",
            std::fs::read(ny.join("api_tsy_all_results_details_search.json--startDate=2008-03-07_endDate=2026-08-06.body.json")).unwrap(),
        )],
        cells: with(
            transport(),
            vec![
                (d("asOfDate renamed", "\"asOfDate\"", "\"as_of\""), Expect::Fails(&["asOfDate is missing"])),
                (d("extra field", "\"asOfDate\"", "\"extraField\": \"1\", \"asOfDate\""), Expect::Lands),
            ],
        ),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fomc_fault_matrix() {
    let body = std::fs::read(
        snapshot().join("www.federalreserve.gov/monetarypolicy_fomccalendars.htm.body.html"),
    )
    .unwrap();
    let d = |name, from, to| drift(name, &body, from, to);
    run_matrix(Connector {
        kind: SourceKind::Fomc,
        tables: &["fomc_calendar"],
        config: "[sources.fomc]\nurl = \"{base}/fomccalendars.htm\"\n",
        body: body.clone(),
        extra: Vec::new(),
        cells: with(
            transport(),
            vec![
                (
                    d(
                        "month cell renamed",
                        "fomc-meeting__month",
                        "fomc-meeting-month",
                    ),
                    Expect::Fails(&["without a month or a date cell"]),
                ),
                (
                    d(
                        "extra markup",
                        "<body",
                        "<div class=\"cookie-banner\">We use cookies</div><body",
                    ),
                    Expect::Lands,
                ),
            ],
        ),
    })
    .await;
}
