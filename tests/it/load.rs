//! The load test: `MACROLAKE_LOAD_CLIENTS` clients (default 20) run dashboard queries in a loop
//! for `MACROLAKE_LOAD_SECS` seconds (default 5) against `macrolake serve` while new versions of
//! the product table are published to the same lake in a loop (`macrolake build --select
//! liquidity_vs_risk --full-refresh`, which also appends to `meta.runs`). Proves that:
//!
//! - no dashboard query fails while versions are swapped underneath it;
//! - new versions become visible without a restart (a client sees the new `meta.runs` rows);
//! - one statement reads one version: a query that reads the same table twice always agrees
//!   with itself (`meta.runs` grows with every publish, so a mixed read would show);
//! - the server's peak RSS (VmHWM) stays below `memory_limit_mb` + 400 MB.
//!
//! When no publish has landed and been seen after the S seconds (a build takes longer than that
//! on a small machine), the clients keep querying until one has (at most 5 more minutes).
//! Prints one summary line (visible with `--nocapture`): clients, seconds, queries, errors, p50,
//! p99, publishes, peak RSS.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::common::*;
use super::serve::{PASSWORD, connect, start};

/// The server's query memory pool.
const MEMORY_LIMIT_MB: u64 = 512;
/// What the server may hold beyond its pool (tables' metadata, connections, allocator).
const RSS_SLACK_MB: u64 = 400;
/// How long past the S seconds the run may wait for a publish to land and be seen.
const PUBLISH_GRACE: Duration = Duration::from_secs(300);
/// Longest one dashboard query may take before it counts as an error.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// `name` from the environment as a number, else `default`.
fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// An error with its SQLSTATE and message (tokio-postgres' Display says only "db error").
fn err_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// The days the dashboards ask about, fixed at the start from the table's newest day.
#[derive(Debug, Clone, Copy)]
struct Days {
    newest: NaiveDate,
    since_90: NaiveDate,
    since_365: NaiveDate,
}

/// A dashboard panel: one query a client runs in its loop.
#[derive(Debug, Clone, Copy)]
enum Panel {
    /// The last 90 days of the product table, ordered by date (extended protocol, a parameter).
    Last90Days,
    /// Weekly averages over a year (simple protocol).
    WeeklyYear,
    /// An aggregate over the whole history (simple protocol).
    FullHistory,
    /// A point lookup of the newest day (extended protocol, a parameter).
    OneDay,
    /// Reads `meta.runs` and the product table twice each in one statement (simple protocol).
    Consistency,
}

const PANELS: [Panel; 5] = [
    Panel::Last90Days,
    Panel::WeeklyYear,
    Panel::FullHistory,
    Panel::OneDay,
    Panel::Consistency,
];

const LAST_90_DAYS: &str = "SELECT date, net_liquidity_musd, btc_close, rut_close, divergence \
     FROM marts.liquidity_vs_risk WHERE date > $1 ORDER BY date";
const FULL_HISTORY: &str = "SELECT count(*) AS days, min(date) AS first_day, max(date) AS last_day, \
     avg(net_liquidity_musd) AS avg_net_liquidity, max(btc_close) AS btc_high, \
     sum(CASE WHEN divergence THEN 1 ELSE 0 END) AS divergence_days FROM marts.liquidity_vs_risk";
const ONE_DAY: &str = "SELECT * FROM marts.liquidity_vs_risk WHERE date = $1";
/// True when both reads of each table saw the same version; also the runs seen.
const CONSISTENCY: &str = "SELECT a = b AND c = d AS consistent, a AS runs FROM (SELECT \
     (SELECT count(*) FROM meta.runs) AS a, \
     (SELECT count(*) FROM (SELECT run_id FROM meta.runs) r) AS b, \
     (SELECT count(*) FROM marts.liquidity_vs_risk) AS c, \
     (SELECT count(*) FROM (SELECT date FROM marts.liquidity_vs_risk) l) AS d) t";

fn weekly_year(days: &Days) -> String {
    format!(
        "SELECT date_trunc('week', date) AS week, avg(net_liquidity_musd) AS net_liquidity, \
         avg(btc_close) AS btc FROM marts.liquidity_vs_risk WHERE date > DATE '{}' \
         GROUP BY 1 ORDER BY 1",
        days.since_365
    )
}

/// The rows of a simple-protocol answer, each as its columns' text.
pub(crate) fn text_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<String>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// What a consistency query returned.
struct Consistency {
    consistent: bool,
    runs: i64,
}

impl Panel {
    /// Runs the panel's query and checks its answer's shape; a consistency query's verdict is
    /// returned, not judged here.
    async fn run(self, c: &Client, days: &Days) -> Result<Option<Consistency>, String> {
        let db = |e: tokio_postgres::Error| err_text(&e);
        match self {
            Panel::Last90Days => {
                let rows = c.query(LAST_90_DAYS, &[&days.since_90]).await.map_err(db)?;
                if rows.is_empty() || rows.len() > 90 {
                    return Err(format!("{} rows for 90 days", rows.len()));
                }
                let dates = rows
                    .iter()
                    .map(|r| r.try_get::<_, NaiveDate>(0))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                if dates.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("dates are not in increasing order".into());
                }
                Ok(None)
            }
            Panel::WeeklyYear => {
                let rows = text_rows(&c.simple_query(&weekly_year(days)).await.map_err(db)?);
                if rows.is_empty() || rows.len() > 54 {
                    return Err(format!("{} weeks in a year", rows.len()));
                }
                Ok(None)
            }
            Panel::FullHistory => {
                let rows = text_rows(&c.simple_query(FULL_HISTORY).await.map_err(db)?);
                let n: i64 = rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("answered {rows:?}"))?;
                if n < 4000 {
                    return Err(format!("{n} days of history"));
                }
                Ok(None)
            }
            Panel::OneDay => {
                let rows = c.query(ONE_DAY, &[&days.newest]).await.map_err(db)?;
                if rows.len() != 1 {
                    return Err(format!("{} rows for {}", rows.len(), days.newest));
                }
                Ok(None)
            }
            Panel::Consistency => {
                let rows = text_rows(&c.simple_query(CONSISTENCY).await.map_err(db)?);
                let row = rows.first().ok_or("no row")?;
                let runs = row
                    .get(1)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("answered {rows:?}"))?;
                Ok(Some(Consistency {
                    consistent: row.first().map(String::as_str) == Some("t"),
                    runs,
                }))
            }
        }
    }

    fn sql(self, days: &Days) -> String {
        match self {
            Panel::Last90Days => LAST_90_DAYS.into(),
            Panel::WeeklyYear => weekly_year(days),
            Panel::FullHistory => FULL_HISTORY.into(),
            Panel::OneDay => ONE_DAY.into(),
            Panel::Consistency => CONSISTENCY.into(),
        }
    }
}

/// What one client saw.
#[derive(Default)]
struct ClientReport {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    inconsistent: Vec<String>,
}

/// One dashboard user: cycles through the panels (starting at its own) until `stop`.
async fn dashboard(
    id: usize,
    addr: String,
    days: Days,
    stop: Arc<AtomicBool>,
    runs_seen: Arc<AtomicI64>,
) -> ClientReport {
    let mut report = ClientReport::default();
    let c = match connect(&addr, "bi", Some(PASSWORD)).await {
        Ok(c) => c,
        Err(e) => {
            report
                .errors
                .push(format!("client {id}: login: {}", err_text(&e)));
            return report;
        }
    };
    let mut turn = id;
    while !stop.load(Ordering::SeqCst) {
        let panel = PANELS[turn % PANELS.len()];
        turn += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout(QUERY_TIMEOUT, panel.run(&c, &days)).await;
        report.latencies.push(started.elapsed());
        match outcome {
            Err(_) => report.errors.push(format!(
                "client {id} {panel:?}: no answer within {QUERY_TIMEOUT:?}: {}",
                panel.sql(&days)
            )),
            Ok(Err(e)) => report.errors.push(format!(
                "client {id} {panel:?}: {e}\n  statement: {}",
                panel.sql(&days)
            )),
            Ok(Ok(None)) => {}
            Ok(Ok(Some(seen))) => {
                runs_seen.fetch_max(seen.runs, Ordering::SeqCst);
                if !seen.consistent {
                    report.inconsistent.push(format!(
                        "client {id}: {CONSISTENCY} returned false (runs = {})",
                        seen.runs
                    ));
                }
            }
        }
        if c.is_closed() {
            report
                .errors
                .push(format!("client {id}: the server closed the connection"));
            break;
        }
    }
    report
}

/// Publishes new versions of the product table to `lake` until `stop`, counting them in
/// `published`; returns why a publish failed, if one did (the loop ends there).
fn publisher(
    lake: PathBuf,
    stop: Arc<AtomicBool>,
    published: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Option<String>> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let (code, out, err) = run(bin(repo())
                .arg("--lake")
                .arg(&lake)
                .arg("--config")
                .arg(snapshot_config())
                .args(["build", "--select", "liquidity_vs_risk", "--full-refresh"]));
            if code != 0 {
                return Some(format!(
                    "macrolake build --select liquidity_vs_risk --full-refresh exited {code}\n\
                     stdout:\n{out}\nstderr:\n{err}"
                ));
            }
            published.fetch_add(1, Ordering::SeqCst);
        }
        None
    })
}

/// The `q` quantile (0..=1) of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Peak resident set of process `pid` (VmHWM in /proc/<pid>/status), MB.
fn peak_rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboards_under_load_while_new_versions_are_published() {
    let clients = env_or("MACROLAKE_LOAD_CLIENTS", 20) as usize;
    let secs = env_or("MACROLAKE_LOAD_SECS", 5);
    assert!(clients > 0, "MACROLAKE_LOAD_CLIENTS must be at least 1");
    // Its own lake: this test publishes to it.
    let dir = tempfile::tempdir().unwrap();
    let lake = nightly_lake(dir.path());
    let mut server = start(
        &lake,
        &format!(
            "memory_limit_mb = {MEMORY_LIMIT_MB}\nmax_connections = {}",
            clients + 4
        ),
    );

    let probe = connect(&server.addr, "bi", Some(PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("probe login: {}", err_text(&e)));
    let newest: NaiveDate = probe
        .query_one("SELECT max(date) FROM marts.liquidity_vs_risk", &[])
        .await
        .unwrap_or_else(|e| {
            panic!(
                "SELECT max(date) FROM marts.liquidity_vs_risk: {}",
                err_text(&e)
            )
        })
        .get(0);
    let runs_before: i64 = probe
        .query_one("SELECT count(*) FROM meta.runs", &[])
        .await
        .unwrap_or_else(|e| panic!("SELECT count(*) FROM meta.runs: {}", err_text(&e)))
        .get(0);
    let days = Days {
        newest,
        since_90: newest - chrono::Duration::days(90),
        since_365: newest - chrono::Duration::days(365),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let runs_seen = Arc::new(AtomicI64::new(runs_before));
    let published = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|id| {
            tokio::spawn(dashboard(
                id,
                server.addr.clone(),
                days,
                stop.clone(),
                runs_seen.clone(),
            ))
        })
        .collect();
    let publishing = publisher(lake.clone(), stop.clone(), published.clone());

    // S seconds; then, if need be, until a publish has landed and a client has seen it.
    let min_end = started + Duration::from_secs(secs);
    let hard_end = min_end + PUBLISH_GRACE;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = Instant::now();
        let seen =
            published.load(Ordering::SeqCst) > 0 && runs_seen.load(Ordering::SeqCst) > runs_before;
        if now >= min_end && (seen || now >= hard_end || publishing.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();
    let publishes = published.load(Ordering::SeqCst);

    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    let mut inconsistent = Vec::new();
    for t in tasks {
        let report = t.await.expect("a client task panicked");
        latencies.extend(report.latencies);
        errors.extend(report.errors);
        inconsistent.extend(report.inconsistent);
    }
    let publish_failure = tokio::task::spawn_blocking(move || publishing.join())
        .await
        .unwrap()
        .expect("the publisher thread panicked");
    let alive = server.alive();
    let peak_rss = peak_rss_mb(server.pid());

    latencies.sort();
    let queries = latencies.len();
    let p50 = quantile(&latencies, 0.50);
    let p99 = quantile(&latencies, 0.99);
    println!(
        "load: clients={clients} seconds={:.1} queries={queries} errors={} p50={:.1}ms p99={:.1}ms \
         publishes={publishes} peak_rss={}",
        elapsed.as_secs_f64(),
        errors.len(),
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        peak_rss.map_or("unknown".to_string(), |mb| format!("{mb}MB")),
    );

    assert!(alive, "the server process died under load");
    assert!(
        errors.is_empty(),
        "{} of {queries} dashboard queries failed; the first ones:\n{}",
        errors.len(),
        errors
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        publish_failure.is_none(),
        "a publish failed under load: {}",
        publish_failure.unwrap_or_default()
    );
    assert!(
        publishes > 0,
        "no new version was published during the {elapsed:?} run"
    );
    let runs_after = runs_seen.load(Ordering::SeqCst);
    assert!(
        runs_after > runs_before,
        "no client saw a newer version: {CONSISTENCY} kept answering runs = {runs_before} \
         after {publishes} publish(es) (refresh_secs = 1)"
    );
    assert!(
        queries > clients,
        "only {queries} dashboard queries for {clients} clients in {elapsed:?}"
    );
    assert!(
        inconsistent.is_empty(),
        "{} consistency queries read two versions in one statement; the first ones:\n{}",
        inconsistent.len(),
        inconsistent
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    if cfg!(target_os = "linux") {
        let mb = peak_rss.expect("VmHWM in /proc/<server pid>/status");
        assert!(
            mb < MEMORY_LIMIT_MB + RSS_SLACK_MB,
            "the server's peak RSS (VmHWM) was {mb} MB, over memory_limit_mb = {MEMORY_LIMIT_MB} \
             + {RSS_SLACK_MB} MB"
        );
    }
}
