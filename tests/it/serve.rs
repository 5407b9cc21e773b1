//! `macrolake serve` against a lake built from the snapshot, with a real Postgres client
//! (tokio-postgres): both query protocols, parameters, every mart column type, the catalog
//! queries psql sends, auth, the read-only guard, timeouts, concurrency and fresh data.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::common::*;

pub const PASSWORD: &str = "correct horse battery staple";

/// A lake with every mart, built once for all tests in this file.
fn lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| nightly_lake(&tempfile::tempdir().unwrap().keep()))
}

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    /// host:port
    pub addr: String,
    /// The status page's URL, when `--http` was given.
    pub web: Option<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The server process's id (for /proc/<pid>/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `macrolake serve` on port 0 over `lake` with user `bi` and extra `[serve]` lines.
pub fn start(lake: &Path, serve_extra: &str) -> Server {
    start_with(lake, serve_extra, &[])
}

/// [`start`] with extra arguments to `serve` (e.g. `--http 127.0.0.1:0`).
pub fn start_with(lake: &Path, serve_extra: &str, args: &[&str]) -> Server {
    spawn_server(lake, serve_extra, args, &[])
}

/// [`start`] with extra environment variables for the server process.
pub fn start_with_env(lake: &Path, serve_extra: &str, env: &[(&str, &str)]) -> Server {
    spawn_server(lake, serve_extra, &[], env)
}

fn spawn_server(lake: &Path, serve_extra: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("macrolake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[serve]\nrefresh_secs = 1\n{serve_extra}\n[[serve.users]]\nname = \"bi\"\npassword_env = \"TEST_PG_PASSWORD\"\n"
        ),
    )
    .unwrap();
    let mut child = bin(dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TEST_PG_PASSWORD", PASSWORD)
        .arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut web = None;
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("server exited: {}", seen.join("\n"));
        };
        if let Some(rest) = line.split("status page on ").nth(1) {
            web = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.split("on postgresql://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        seen.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        web,
        _dir: dir,
    }
}

/// Connects as `user` with `password`.
pub async fn connect(
    addr: &str,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let (host, port) = addr.split_once(':').unwrap();
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(host)
        .port(port.parse().unwrap())
        .user(user)
        .dbname("macrolake");
    if let Some(p) = password {
        cfg.password(p);
    }
    cfg.connect_timeout(Duration::from_secs(10));
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

async fn bi(addr: &str) -> Client {
    connect(addr, "bi", Some(PASSWORD))
        .await
        .expect("bi logs in")
}

fn first_value(messages: &[SimpleQueryMessage]) -> String {
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
            _ => None,
        })
        .expect("a row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_client_reads_marts_and_catalogs() {
    let server = start(lake(), "");
    let c = bi(&server.addr).await;

    // Simple protocol.
    let n = first_value(
        &c.simple_query("SELECT count(*) FROM marts.liquidity_vs_risk")
            .await
            .unwrap(),
    );
    assert!(n.parse::<i64>().unwrap() > 4000, "{n}");

    // Extended protocol with typed parameters.
    let day = chrono::NaiveDate::from_ymd_opt(2025, 12, 17).unwrap();
    let rows = c
        .query(
            "SELECT date, net_liquidity_musd FROM marts.liquidity_vs_risk WHERE date = $1",
            &[&day],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, chrono::NaiveDate>(0), day);
    assert!(rows[0].get::<_, f64>(1) > 1_000_000.0);
    let limited = c
        .query(
            "SELECT date FROM marts.liquidity_vs_risk WHERE date >= $1 AND net_liquidity_musd > $2 \
             ORDER BY date LIMIT 3",
            &[&day, &0.0f64],
        )
        .await
        .unwrap();
    assert_eq!(limited.len(), 3);

    // Every column of every mart decodes in binary format with its declared type.
    let tables = c
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let names: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
    assert!(
        names.contains(&"liquidity_vs_risk".to_string()),
        "{names:?}"
    );
    let mut types_seen = std::collections::BTreeSet::new();
    for name in &names {
        let rows = c
            .query(&format!("SELECT * FROM marts.{name} LIMIT 50"), &[])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!rows.is_empty(), "{name} is empty");
        for row in &rows {
            for (i, col) in row.columns().iter().enumerate() {
                let t = col.type_().clone();
                let ok = match t {
                    Type::INT2 => row.try_get::<_, Option<i16>>(i).is_ok(),
                    Type::INT4 => row.try_get::<_, Option<i32>>(i).is_ok(),
                    Type::INT8 => row.try_get::<_, Option<i64>>(i).is_ok(),
                    Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).is_ok(),
                    Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).is_ok(),
                    Type::BOOL => row.try_get::<_, Option<bool>>(i).is_ok(),
                    Type::TEXT | Type::VARCHAR => row.try_get::<_, Option<String>>(i).is_ok(),
                    Type::NUMERIC => row.try_get::<_, Option<rust_decimal::Decimal>>(i).is_ok(),
                    Type::DATE => row.try_get::<_, Option<chrono::NaiveDate>>(i).is_ok(),
                    Type::TIMESTAMPTZ => row
                        .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
                        .is_ok(),
                    Type::TIMESTAMP => row.try_get::<_, Option<chrono::NaiveDateTime>>(i).is_ok(),
                    ref other => panic!("{name}.{}: unexpected type {other}", col.name()),
                };
                assert!(ok, "{name}.{} does not decode as {t}", col.name());
                types_seen.insert(t.name().to_string());
            }
        }
    }
    for t in ["date", "float8", "text", "bool", "int8", "int4", "numeric"] {
        assert!(types_seen.contains(t), "no {t} column seen: {types_seen:?}");
    }
    // Timestamps with time zone (run history).
    let at: chrono::DateTime<chrono::Utc> = c
        .query_one("SELECT max(started_at) FROM meta.runs", &[])
        .await
        .unwrap()
        .get(0);
    assert!(at.timestamp() > 1_700_000_000);

    // information_schema.columns, as BI tools list a dataset's fields.
    let cols = c
        .query(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'marts' AND table_name = 'liquidity_vs_risk' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cols[0].get::<_, String>(0), "date");
    assert!(cols.len() > 20);

    // psql's \dt marts.* and the first three queries of \d marts.liquidity_vs_risk (psql 15).
    let dt = c
        .simple_query(include_str!("../fixtures/psql/dt_marts.sql"))
        .await
        .unwrap();
    let listed: Vec<String> = dt
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(1).unwrap().to_string()),
            _ => None,
        })
        .collect();
    assert!(
        listed.contains(&"liquidity_vs_risk".to_string()),
        "{listed:?}"
    );
    let oid = first_value(
        &c.simple_query(include_str!("../fixtures/psql/d_lookup.sql"))
            .await
            .unwrap(),
    );
    let d_class = include_str!("../fixtures/psql/d_class.sql").replace("{oid}", &oid);
    assert!(!c.simple_query(&d_class).await.unwrap().is_empty());
    let d_cols = include_str!("../fixtures/psql/d_columns.sql").replace("{oid}", &oid);
    let described: Vec<(String, String)> = c
        .simple_query(&d_cols)
        .await
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((r.get(0).unwrap().to_string(), r.get(1).unwrap().to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(described[0], ("date".into(), "date".into()));
    assert!(described.contains(&("net_liquidity_musd".into(), "double precision".into())));

    // version() and SHOW server_version look like PostgreSQL's (SQLAlchemy parses them).
    let v = first_value(&c.simple_query("SELECT version()").await.unwrap());
    assert!(v.starts_with("PostgreSQL 16."), "{v}");
    let v: String = c
        .query_one("select pg_catalog.version()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(v.starts_with("PostgreSQL 16."), "{v}");
    assert_eq!(
        first_value(&c.simple_query("SHOW server_version").await.unwrap()),
        "16.6"
    );
    // SHOW of a setting the connection did not set answers PostgreSQL's default, in both
    // protocols (Metabase reads `SHOW timezone` with a prepared statement); a SET wins.
    assert_eq!(
        first_value(&c.simple_query("SHOW timezone").await.unwrap()),
        "UTC"
    );
    let tz: String = c.query_one("SHOW timezone", &[]).await.unwrap().get(0);
    assert_eq!(tz, "UTC");
    c.simple_query("SET TimeZone = 'America/New_York'")
        .await
        .unwrap();
    let tz: String = c.query_one("SHOW timezone", &[]).await.unwrap().get(0);
    assert_eq!(tz, "America/New_York");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limit_and_offset_parameters_are_integers() {
    // node-postgres and others send `LIMIT $1` untyped; the server types it BIGINT.
    let server = start(lake(), "");
    let c = bi(&server.addr).await;
    let stmt = c
        .prepare("SELECT date FROM marts.liquidity_vs_risk ORDER BY date LIMIT $1 OFFSET $2")
        .await
        .unwrap();
    assert_eq!(stmt.params(), &[Type::INT8, Type::INT8]);
    let rows = c.query(&stmt, &[&5i64, &10i64]).await.unwrap();
    assert_eq!(rows.len(), 5);
    let all = c
        .query(
            "SELECT date FROM marts.liquidity_vs_risk ORDER BY date LIMIT 15",
            &[],
        )
        .await
        .unwrap();
    let day = |r: &tokio_postgres::Row| r.get::<_, chrono::NaiveDate>(0);
    assert_eq!(day(&rows[0]), day(&all[10]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_logins_slow_down_the_next_attempt() {
    let server = start(
        lake(),
        "login_delay_base_ms = 400\nlogin_delay_max_ms = 1600",
    );
    let attempt = |user: &'static str, password: &'static str| {
        let addr = server.addr.clone();
        async move {
            let t = std::time::Instant::now();
            let ok = connect(&addr, user, Some(password)).await.is_ok();
            (ok, t.elapsed())
        }
    };
    let (ok, first) = attempt("bi", "wrong").await;
    assert!(!ok);
    // Waits 400, 800, then 1600 ms (the cap) before the password is checked.
    for expected in [400, 800, 1600, 1600] {
        let (ok, took) = attempt("bi", "wrong").await;
        assert!(!ok);
        assert!(
            took >= Duration::from_millis(expected),
            "after failures the attempt took {took:?}, expected at least {expected} ms (first took {first:?})"
        );
    }
    // The right password still gets in (after the wait), and clears the streak.
    let (ok, took) = attempt("bi", PASSWORD).await;
    assert!(ok && took >= Duration::from_millis(1600), "{ok} {took:?}");
    let (ok, took) = attempt("bi", "wrong").await;
    assert!(!ok && took < Duration::from_millis(1600), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_known_users_with_the_right_password_get_in() {
    let server = start(lake(), "");
    for (user, password) in [
        ("bi", Some("wrong")),
        ("nobody", Some(PASSWORD)),
        ("bi", None),
    ] {
        let e = connect(&server.addr, user, password)
            .await
            .err()
            .unwrap_or_else(|| panic!("{user}/{password:?} got in"));
        if password.is_some() {
            assert_eq!(e.code(), Some(&SqlState::INVALID_PASSWORD), "{user}: {e}");
        }
    }
    bi(&server.addr).await;

    // With no user configured the server refuses to start.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, "[serve]\n").unwrap();
    let (code, _, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(lake())
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"]));
    assert_eq!(code, 1);
    assert!(err.contains("never accepts anonymous clients"), "{err}");
}

fn delta_logs(lake: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for zone in ["staging", "marts", "meta"] {
        for t in std::fs::read_dir(lake.join(zone)).unwrap() {
            let log = t.unwrap().path().join("_delta_log");
            for f in std::fs::read_dir(&log).unwrap() {
                out.push(f.unwrap().path().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_and_file_access_are_refused_with_42501() {
    let server = start(lake(), "");
    let c = bi(&server.addr).await;
    let before = delta_logs(lake());
    let out = tempfile::tempdir().unwrap();
    let copy_to = out.path().join("stolen.csv");
    for sql in [
        "CREATE TABLE marts.x (a int)".to_string(),
        "INSERT INTO marts.co_highs SELECT * FROM marts.co_highs".to_string(),
        format!("COPY marts.co_highs TO '{}'", copy_to.display()),
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "DROP TABLE marts.liquidity_vs_risk".to_string(),
        "SELECT 1; DELETE FROM marts.co_highs".to_string(),
    ] {
        let e = c.simple_query(&sql).await.expect_err(&sql);
        assert_eq!(
            e.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
        // The extended protocol is guarded too.
        let e = c.prepare(&sql).await.expect_err(&sql);
        assert_eq!(
            e.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
    }
    // Host files are not readable as tables.
    assert!(c.simple_query("SELECT * FROM '/etc/passwd'").await.is_err());
    assert!(!copy_to.exists());
    assert_eq!(delta_logs(lake()), before, "nothing changed in the lake");
    // The connection still works.
    assert_eq!(first_value(&c.simple_query("SELECT 1").await.unwrap()), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runaway_query_is_cancelled_while_others_keep_working() {
    let server = start(lake(), "");
    let slow = bi(&server.addr).await;
    let fast = bi(&server.addr).await;
    slow.simple_query("SET statement_timeout = '700ms'")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let runaway = tokio::spawn(async move {
        slow.simple_query(
            "SELECT count(*) FROM marts.liquidity_vs_risk a, marts.liquidity_vs_risk b, \
             marts.liquidity_vs_risk c WHERE a.net_liquidity_musd + b.net_liquidity_musd > c.net_liquidity_musd",
        )
        .await
    });
    for _ in 0..3 {
        let n = first_value(
            &fast
                .simple_query("SELECT count(*) FROM marts.co_highs")
                .await
                .unwrap(),
        );
        assert!(n.parse::<i64>().unwrap() > 0);
    }
    let e = runaway
        .await
        .unwrap()
        .expect_err("the runaway query must not finish");
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        first_value(&fast.simple_query("SELECT 2").await.unwrap()),
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_statement_has_its_own_memory_limit() {
    // Plenty for the server, little per statement: the sort fails at its own limit (not the
    // server's), and a statement on another connection at the same time is unaffected.
    let server = start(lake(), "memory_limit_mb = 4096\nquery_memory_limit_mb = 16");
    let greedy = bi(&server.addr).await;
    let other = bi(&server.addr).await;
    let sort = greedy.simple_query(
        "SELECT a.date, b.date, a.net_liquidity_musd * b.net_liquidity_musd AS x \
         FROM marts.liquidity_vs_risk a, marts.liquidity_vs_risk b ORDER BY x DESC",
    );
    let count = other.simple_query("SELECT count(*) FROM marts.liquidity_vs_risk");
    let (sort, count) = tokio::join!(sort, count);
    let e = sort.expect_err("the sort must hit the statement's limit");
    let db = e.as_db_error().expect("a server error");
    // PostgreSQL's code for it, and the limit that was hit, named by its setting.
    assert_eq!(db.code().code(), "53200", "{e:?}");
    assert!(db.message().contains("query_memory_limit_mb = 16"), "{e:?}");
    assert!(db.message().contains("Resources exhausted"), "{e:?}");
    assert!(first_value(&count.unwrap()).parse::<u64>().unwrap() > 1000);
    // The same connection goes on.
    assert_eq!(
        first_value(&greedy.simple_query("SELECT 3").await.unwrap()),
        "3"
    );
}

/// The binary turns transparent huge pages off before its allocator starts (see `src/main.rs`),
/// unless the user asked for them.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_runs_without_transparent_huge_pages_unless_asked() {
    // `THP_enabled` has been in /proc/<pid>/status since Linux 5.0.
    let thp = |server: &Server| {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()));
        let status = status.expect("the server's /proc status");
        let line = status.lines().find(|l| l.starts_with("THP_enabled:"));
        let line = line.unwrap_or_else(|| panic!("no THP_enabled line in:\n{status}"));
        line.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let server = start(lake(), "");
    assert_eq!(thp(&server), "0");
    let asked = start_with_env(lake(), "", &[("MIMALLOC_ALLOW_THP", "1")]);
    assert_eq!(thp(&asked), "1");
    let answer = bi(&server.addr).await.simple_query("SELECT 1").await;
    assert_eq!(first_value(&answer.unwrap()), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_past_the_memory_cap_fails_and_the_server_goes_on() {
    let server = start(lake(), "memory_limit_mb = 16");
    let greedy = bi(&server.addr).await;
    let other = bi(&server.addr).await;
    // A 17-million-row sort cannot fit in 16 MB.
    let e = greedy
        .simple_query(
            "SELECT a.date, b.date, a.net_liquidity_musd * b.net_liquidity_musd AS x \
             FROM marts.liquidity_vs_risk a, marts.liquidity_vs_risk b ORDER BY x DESC",
        )
        .await
        .expect_err("the sort must hit the memory cap");
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("Resources exhausted"), "{e:?}");
    assert!(
        message.contains("memory_limit_mb = 16, which caps"),
        "{e:?}"
    );
    // The same connection and the others keep working.
    assert_eq!(
        first_value(&greedy.simple_query("SELECT 3").await.unwrap()),
        "3"
    );
    let n = first_value(
        &other
            .simple_query("SELECT count(*) FROM marts.liquidity_vs_risk")
            .await
            .unwrap(),
    );
    assert!(n.parse::<i64>().unwrap() > 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_dashboards_at_once() {
    let server = start(lake(), "max_connections = 60");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let addr = server.addr.clone();
            tokio::spawn(async move {
                let c = bi(&addr).await;
                let rows = c
                    .query(
                        "SELECT date, net_liquidity_musd, btc_close, rut_close, divergence \
                         FROM marts.liquidity_vs_risk WHERE date >= $1 ORDER BY date",
                        &[&chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("client {i}: {e}"));
                rows.len()
            })
        })
        .collect();
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    assert!(counts[0] > 500);
    assert!(counts.iter().all(|n| *n == counts[0]), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_past_the_limit_are_refused_with_53300() {
    let server = start(lake(), "max_connections = 2");
    let _a = bi(&server.addr).await;
    let _b = bi(&server.addr).await;
    let Err(e) = connect(&server.addr, "bi", Some(PASSWORD)).await else {
        panic!("a third client got in past max_connections = 2");
    };
    assert_eq!(e.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_versions_are_visible_without_a_restart() {
    // Its own lake: this test writes.
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(dir.path(), &lake);
    let server = start(&lake, "");
    let c = bi(&server.addr).await;
    let before = runs_count(&c).await;
    // A statement prepared before the new version (a BI tool keeps its prepared statements for
    // the connection's life), run twice so its answer is in the result cache.
    let prepared = c
        .prepare("SELECT count(*) FROM meta.runs WHERE run_id IS NOT NULL")
        .await
        .unwrap();
    for _ in 0..2 {
        let n: i64 = c.query_one(&prepared, &[]).await.unwrap().get(0);
        assert_eq!(n, before);
    }
    let (code, _, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["ingest", "treasury"]));
    assert_eq!(code, 0, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if runs_count(&c).await > before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new runs never became visible"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The prepared statement sees the new runs too: neither its kept answer nor its plan of
    // the old version is used once the new one is visible.
    let after = runs_count(&c).await;
    let n: i64 = c.query_one(&prepared, &[]).await.unwrap().get(0);
    assert_eq!(n, after);
}

/// Rows of a simple query, as text.
async fn texts(c: &Client, sql: &str) -> Vec<Vec<String>> {
    crate::load::text_rows(&c.simple_query(sql).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_queries_get_the_same_answers_and_time_or_session_dependent_ones_are_not_kept() {
    let server = start(lake(), "");
    let uncached = start(lake(), "result_cache_mb = 0");
    let (c, u) = (bi(&server.addr).await, bi(&uncached.addr).await);
    let point = "SELECT * FROM marts.liquidity_vs_risk WHERE date = DATE '2026-05-01'";
    let week = "SELECT date_trunc('week', date) AS w, avg(net_liquidity_musd) \
                FROM marts.liquidity_vs_risk GROUP BY 1 ORDER BY 1";
    for sql in [point, week] {
        let expected = texts(&u, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        // Both protocols, each three times: the first run fills the cache, the others read it.
        for _ in 0..3 {
            assert_eq!(texts(&c, sql).await, expected, "{sql}");
        }
        let statement = c.prepare(sql).await.unwrap();
        let first = c.query(&statement, &[]).await.unwrap();
        for _ in 0..3 {
            let again = c.query(&statement, &[]).await.unwrap();
            assert_eq!(again.len(), first.len(), "{sql}");
            assert_eq!(
                format!("{:?}", again[0]),
                format!("{:?}", first[0]),
                "{sql}"
            );
        }
    }
    // A bound parameter is part of the key: another value, another answer.
    let by_date = c
        .prepare("SELECT count(*) FROM marts.liquidity_vs_risk WHERE date >= $1::date")
        .await
        .unwrap();
    let count = |d: &'static str| {
        let c = &c;
        let by_date = &by_date;
        async move {
            let d = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
            c.query_one(by_date, &[&d]).await.unwrap().get::<_, i64>(0)
        }
    };
    let (recent, older) = (count("2026-05-01").await, count("2025-01-01").await);
    assert!(older > recent && recent > 0, "{older} {recent}");
    assert_eq!(count("2026-05-01").await, recent);
    // Functions whose answer moves are run every time.
    let random = "SELECT random() FROM marts.liquidity_vs_risk LIMIT 1";
    let draws: std::collections::BTreeSet<_> =
        futures::future::join_all((0..3).map(|_| async { texts(&c, random).await }))
            .await
            .into_iter()
            .collect();
    assert_eq!(
        draws.len(),
        3,
        "random() answered from the cache: {draws:?}"
    );
    let clock = "SELECT now() FROM marts.liquidity_vs_risk LIMIT 1";
    let t0 = texts(&c, clock).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_ne!(texts(&c, clock).await, t0, "now() answered from the cache");
    // A constant over a lake table with a limit (a BI tool's existence probe) gets its limit:
    // deltalake answers a scan of no column from its log and dropped it.
    for server in [&c, &u] {
        let probe = "SELECT 1 AS one FROM marts.liquidity_vs_risk LIMIT 3";
        assert_eq!(texts(server, probe).await.len(), 3);
        let tail =
            "SELECT count(*) FROM (SELECT 'x' AS l FROM marts.asset_daily OFFSET 10 LIMIT 5) s";
        assert_eq!(texts(server, tail).await, vec![vec!["5".to_string()]]);
    }
}

async fn runs_count(c: &Client) -> i64 {
    first_value(
        &c.simple_query("SELECT count(*) FROM meta.runs")
            .await
            .unwrap(),
    )
    .parse()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_tables_are_served_from_memory_with_the_same_answers() {
    let cached = start(lake(), "memory_table_max_rows = 500000");
    let on_disk = start(lake(), "");
    let (a, b) = (bi(&cached.addr).await, bi(&on_disk.addr).await);
    let point = "SELECT * FROM marts.liquidity_vs_risk WHERE date = DATE '2026-05-01'";
    let plan = |msgs: Vec<SimpleQueryMessage>| crate::load::text_rows(&msgs).concat().join("\n");
    let memory_plan = plan(a.simple_query(&format!("EXPLAIN {point}")).await.unwrap());
    let disk_plan = plan(b.simple_query(&format!("EXPLAIN {point}")).await.unwrap());
    assert!(memory_plan.contains("partition_sizes"), "{memory_plan}");
    assert!(!memory_plan.contains("DeltaScan"), "{memory_plan}");
    assert!(disk_plan.contains("DataSourceExec"), "{disk_plan}");
    // The same answers, row for row, for a dashboard's queries.
    for sql in [
        point,
        "SELECT * FROM marts.liquidity_vs_risk WHERE date >= DATE '2026-03-01' ORDER BY date",
        "SELECT date_trunc('week', date) AS w, avg(net_liquidity_musd) FROM marts.liquidity_vs_risk \
         WHERE date >= DATE '2025-06-01' GROUP BY 1 ORDER BY 1",
        "SELECT symbol, count(*), max(close) FROM marts.asset_daily GROUP BY symbol ORDER BY symbol",
    ] {
        let x = crate::load::text_rows(&a.simple_query(sql).await.unwrap());
        let y = crate::load::text_rows(&b.simple_query(sql).await.unwrap());
        assert!(!x.is_empty(), "{sql}");
        assert_eq!(x, y, "{sql}");
    }
}
