//! The outside references of the bench: each model's SQL run bare (no staging, audit or commit),
//! and `bench/compare.py` — DuckDB running the same model SQL over the same Parquet files, and
//! the dashboard queries over pgwire against `macrolake serve` and a PostgreSQL 15 loaded with the
//! same mart rows, with the same client (psycopg).
//!
//! The script gets a manifest (`<dir>/manifest.json`): every table's live Parquet files (the
//! current Delta snapshot's), the session's views, the seeds, the models in build order, the
//! daily cut-off and where the bench's server listens; the password goes by environment.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use datafusion::dataframe::DataFrameWriteOptions;
use serde::Serialize;
use serde_json::Value;

use super::BenchError;
use super::report::ModelTimes;
use crate::app::App;
use crate::models::Materialized;

/// How to run the comparison.
pub struct Options<'a> {
    /// Python with duckdb and psycopg.
    pub python: &'a Path,
    /// `bench/compare.py`.
    pub script: &'a Path,
    /// The bench's work folder.
    pub dir: &'a Path,
    /// Runs of each dashboard query per server.
    pub runs: usize,
}

const PASSWORD_ENV: &str = "MACROLAKE_BENCH_PASSWORD";

fn phase(message: impl std::fmt::Display) -> BenchError {
    BenchError::Phase {
        phase: "bare model queries".into(),
        message: message.to_string(),
    }
}

/// Runs every stored model's SQL as a plain query over the built lake, writing its result to
/// Parquet under `out` (what DuckDB is timed doing).
pub async fn bare_queries(app: &App, out: &Path) -> Result<Vec<ModelTimes>, BenchError> {
    std::fs::create_dir_all(out).map_err(super::io(out))?;
    let (models, _) = crate::models::discover(&app.sql_dir).map_err(phase)?;
    let session = app.session(None).await.map_err(phase)?;
    let mut times = Vec::new();
    for m in models
        .iter()
        .filter(|m| m.materialized != Materialized::View)
    {
        let path = out.join(format!("{}.parquet", m.name));
        let clock = Instant::now();
        let df = session.ctx.sql(&m.sql).await.map_err(phase)?;
        let written = df
            .write_parquet(
                &path.to_string_lossy(),
                DataFrameWriteOptions::new().with_single_file_output(true),
                None,
            )
            .await
            .map_err(phase)?;
        let rows = written
            .first()
            .and_then(|b| {
                use datafusion::arrow::{array::UInt64Array, datatypes::DataType};
                crate::lake::column_as::<UInt64Array>(b, 0, &DataType::UInt64).ok()
            })
            .map_or(0, |c| c.value(0) as usize);
        times.push(ModelTimes {
            model: m.name.to_string(),
            rows,
            seconds: clock.elapsed().as_secs_f64(),
        });
    }
    Ok(times)
}

#[derive(Serialize)]
struct TableFiles {
    name: String,
    files: Vec<String>,
}

#[derive(Serialize)]
struct NamedSql {
    name: String,
    sql: String,
}

/// Every Delta table of the lake with the Parquet files of its current version.
async fn table_files(app: &App) -> Result<Vec<TableFiles>, BenchError> {
    let fail = |m: String| BenchError::Compare(m);
    let mut tables = Vec::new();
    for name in app.lake.tables().await.map_err(|e| fail(e.to_string()))? {
        let table = app
            .lake
            .load(&name, None)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let files = table
            .get_file_uris()
            .map_err(|e| fail(format!("{name}: {e}")))?
            .map(|u| u.strip_prefix("file://").map_or(u.clone(), str::to_string))
            .collect();
        tables.push(TableFiles {
            name: name.to_string(),
            files,
        });
    }
    Ok(tables)
}

/// Writes the manifest, starts `macrolake serve` on the lake, runs the script, and returns what
/// it wrote (DuckDB per model, queries per server, versions).
pub async fn run(app: &App, order: &[String], options: &Options<'_>) -> Result<Value, BenchError> {
    let fail = |m: String| BenchError::Compare(m);
    let tables = table_files(app).await?;
    let views: Vec<NamedSql> = app
        .views()
        .into_iter()
        .map(|v| NamedSql {
            name: v.name.to_string(),
            sql: v.sql,
        })
        .collect();
    let (models, _) = crate::models::discover(&app.sql_dir).map_err(|e| fail(e.to_string()))?;
    // In build order (the order the full build ran them), so each reads what came before.
    let models: Vec<NamedSql> = order
        .iter()
        .filter_map(|name| models.iter().find(|m| m.name.to_string() == *name))
        .filter(|m| m.materialized != Materialized::View)
        .map(|m| NamedSql {
            name: m.name.to_string(),
            sql: m.sql.clone(),
        })
        .collect();
    let seeds: Vec<TableFiles> = seed_files(&app.sql_dir);
    let password = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let (mut server, addr) = start_server(app, options.dir, &password)?;
    let cutoff = app.lake.cutoff();
    let manifest = serde_json::json!({
        "work_dir": options.dir,
        "tables": tables,
        "views": views,
        "seeds": seeds,
        "models": models,
        "cutoff_time": cutoff.time.format("%H:%M:%S").to_string(),
        "cutoff_zone": cutoff.zone.name(),
        "runs": options.runs,
        "macrolake": { "addr": addr, "user": "bench" },
    });
    let manifest_path = options.dir.join("manifest.json");
    let out_path = options.dir.join("compare.json");
    std::fs::write(&manifest_path, manifest.to_string()).map_err(super::io(&manifest_path))?;
    eprintln!(
        "bench: {} {} (DuckDB, PostgreSQL, pgwire queries)",
        options.python.display(),
        options.script.display()
    );
    let status = Command::new(options.python)
        .arg(options.script)
        .arg("--manifest")
        .arg(&manifest_path)
        .arg("--out")
        .arg(&out_path)
        .env(PASSWORD_ENV, &password)
        .status();
    let server_rss = super::measure::peak_rss_mib_of(Some(server.id()));
    let _ = server.kill();
    let _ = server.wait();
    let status = status.map_err(|e| {
        fail(format!(
            "cannot run {}: {e} (pass --python, or --no-compare)",
            options.python.display()
        ))
    })?;
    if !status.success() {
        return Err(fail(format!(
            "{} exited with {status} (its output is above)",
            options.script.display()
        )));
    }
    let text = std::fs::read_to_string(&out_path).map_err(super::io(&out_path))?;
    let mut results: Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    results["serve_peak_rss_mib"] = serde_json::json!(server_rss);
    Ok(results)
}

fn seed_files(sql_dir: &Path) -> Vec<TableFiles> {
    let Ok(entries) = std::fs::read_dir(sql_dir.join("seeds")) else {
        return Vec::new();
    };
    let mut seeds: Vec<TableFiles> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .filter_map(|p| {
            let abs = std::fs::canonicalize(&p).ok()?;
            Some(TableFiles {
                name: format!("seeds.{}", p.file_stem()?.to_string_lossy()),
                files: vec![abs.to_string_lossy().into_owned()],
            })
        })
        .collect();
    seeds.sort_by(|a, b| a.name.cmp(&b.name));
    seeds
}

/// Starts `macrolake serve` (this binary) on the lake with one user, on a free loopback port;
/// returns the child and its `host:port`.
fn start_server(app: &App, dir: &Path, password: &str) -> Result<(Child, String), BenchError> {
    let fail = |m: String| BenchError::Compare(m);
    let config = dir.join("serve.toml");
    let sql_dir = std::fs::canonicalize(&app.sql_dir).unwrap_or_else(|_| app.sql_dir.clone());
    let text = format!(
        // Small tables served from memory (opt-in: dashboards with known queries).
        "[models]\ndir = {:?}\n[serve]\nrefresh_secs = 3600\nmemory_table_max_rows = 500000\n\
         [[serve.users]]\nname = \"bench\"\n\
         password_env = \"{PASSWORD_ENV}\"\n",
        sql_dir.to_string_lossy()
    );
    std::fs::write(&config, text).map_err(super::io(&config))?;
    let exe: PathBuf = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
    let mut child = Command::new(exe)
        .arg("--lake")
        .arg(app.lake.root().as_str())
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(PASSWORD_ENV, password)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start macrolake serve: {e}")))?;
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.split("on postgresql://").nth(1) {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            // Keep draining the server's log so it never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, addr));
        }
        seen.push(line);
    }
    let _ = child.kill();
    Err(fail(format!(
        "macrolake serve did not start: {}",
        seen.join(" | ")
    )))
}
