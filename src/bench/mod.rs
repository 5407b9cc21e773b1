//! `macrolake bench`: a labelled synthetic universe at a chosen scale, ingested through the real
//! connectors (replay), built and tested from scratch and then one day later; the same model SQL
//! run by DuckDB over the same Parquet files; dashboard queries over pgwire against PostgreSQL
//! with the same client — one table printed, the same as JSON.
//!
//! The macrolake phases run in this process (peak RSS per phase from `VmHWM`); DuckDB and
//! PostgreSQL are driven by `bench/compare.py` (see [`compare`]).

pub mod compare;
pub mod measure;
pub mod report;
pub mod soak;
pub mod universe;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::{Args, ValueEnum};

use crate::app::App;
use crate::config::Config;
use crate::http::Mode;
use crate::models::{BuildOptions, BuildReport};
use crate::sources::Window;
use measure::{Meter, Phase};
use report::{ModelTimes, Report};

/// Errors of `macrolake bench`.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or folder could not be read or written.
    #[error("bench: {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The real snapshot the universe is built from is missing or unreadable.
    #[error("bench: snapshot: {0} (run from the repository root or pass --snapshot)")]
    Snapshot(String),
    /// The work folder exists and is not one the bench made: it is never wiped.
    #[error(
        "bench: {0} exists and was not made by macrolake bench (no .macrolake-bench file); \
         choose another --dir"
    )]
    NotABenchDir(PathBuf),
    /// A macrolake phase failed.
    #[error("bench: {phase} failed: {message}")]
    Phase {
        /// The phase.
        phase: String,
        /// What failed.
        message: String,
    },
    /// The DuckDB / PostgreSQL comparison failed.
    #[error("bench: comparison: {0}")]
    Compare(String),
    /// After a soak, a load of `table` replays more commits than the checkpoint interval: its
    /// log is not checkpointed as the lake sets it to be.
    #[error(
        "soak: a load of {table} replays {tail} commits after its newest checkpoint (at most {} \
         expected): its checkpoints are not written; each load will keep growing",
        crate::lake::log::CHECKPOINT_INTERVAL
    )]
    LogTail {
        /// The table.
        table: String,
        /// Commits after its newest checkpoint.
        tail: u64,
    },
}

/// Sizes of universe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    /// 10 synthetic symbols × 1 year (~2.6k rows) beside the real snapshot: checks the bench
    /// works (CI), not speed.
    Small,
    /// 2,000 symbols × 12 years (~6.3M rows): the history-doubling comparison point.
    Half,
    /// 2,000 symbols × 25 years (~13M rows).
    Full,
}

/// `macrolake bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Universe size (overridden by --symbols / --years).
    #[arg(long, value_enum, default_value_t = Scale::Small)]
    pub scale: Scale,
    /// Synthetic symbols.
    #[arg(long)]
    pub symbols: Option<usize>,
    /// Years of daily bars per synthetic symbol.
    #[arg(long)]
    pub years: Option<u32>,
    /// Work folder (wiped first; only one the bench made) [default: target/bench/<scale>].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The real snapshot the universe is built beside.
    #[arg(long, default_value = "tests/fixtures/upstream", value_name = "DIR")]
    pub snapshot: PathBuf,
    /// Where to write the results as JSON [default: <dir>/bench.json].
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Python with duckdb and psycopg [default: target/ci-venv/bin/python, else python3].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// The comparison script.
    #[arg(long, default_value = "bench/compare.py", value_name = "FILE")]
    pub compare_script: PathBuf,
    /// Runs of each dashboard query per server [default: 20 small, 200 otherwise].
    #[arg(long)]
    pub runs: Option<usize>,
    /// Only the macrolake phases: no DuckDB, no PostgreSQL, no pgwire queries.
    #[arg(long)]
    pub no_compare: bool,
}

impl BenchArgs {
    fn shape(&self) -> (usize, u32, usize) {
        let (symbols, years, runs) = match self.scale {
            Scale::Small => (10, 1, 20),
            Scale::Half => (2000, 12, 200),
            Scale::Full => (2000, 25, 200),
        };
        (
            self.symbols.unwrap_or(symbols),
            self.years.unwrap_or(years),
            self.runs.unwrap_or(runs),
        )
    }
}

const MARKER: &str = ".macrolake-bench";

/// The name of the night that replays the next night's answers again.
const SAME_AGAIN: &str = "same answers again";

/// The snapshot's configuration and its last day (`[models] reference_date`).
fn snapshot_config(snapshot: &Path) -> Result<(Config, NaiveDate), BenchError> {
    let config_path = snapshot.join("macrolake.toml");
    let config = Config::load(&config_path, true)
        .map_err(|e| BenchError::Snapshot(format!("{}: {e}", config_path.display())))?;
    let last_day = config.models.reference_date.ok_or_else(|| {
        BenchError::Snapshot(format!(
            "{} sets no [models] reference_date (the snapshot's last day)",
            config_path.display()
        ))
    })?;
    Ok((config, last_day))
}

/// Runs the bench and prints its table.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    let (symbols, years, runs) = args.shape();
    let scale = format!("{:?}", args.scale).to_lowercase();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench").join(&scale));
    fresh_dir(&dir)?;
    let dir = std::fs::canonicalize(&dir).map_err(io(&dir))?;
    let (mut config, last_day) = snapshot_config(&args.snapshot)?;

    eprintln!(
        "bench: generating {symbols} symbols × {years} years under {}",
        dir.display()
    );
    let meter = Meter::start("generate", &dir.join("lake"));
    let u = universe::generate(
        &args.snapshot,
        &dir.join("replay"),
        symbols,
        years,
        last_day,
    )?;
    let generate = meter.stop(u.rows, &dir.join("lake"));
    config
        .sources
        .prices
        .symbols
        .extend(u.symbols.iter().cloned());
    let lake_dir = dir.join("lake");
    let lake_url = lake_dir.to_string_lossy().to_string();
    let mut report = Report::new(&scale, symbols, years, &u, generate);

    // The third night gets the next night's answers again: a night when nothing new arrives
    // (a weekend, a holiday), which should cost next to nothing.
    let nights = [
        ("full", &u.base),
        ("next day", &u.next),
        (SAME_AGAIN, &u.next),
    ];
    for (night, replay) in nights {
        let app = App::new(
            config.clone(),
            Some(&lake_url),
            Mode::Replay(replay.clone()),
        )
        .map_err(phase_err(night))?;
        eprintln!("bench: {night}: ingest");
        let ingest = ingest(&app, &lake_dir, night).await?;
        eprintln!("bench: {night}: build");
        let (build, built) = models(&app, &lake_dir, night, false).await?;
        eprintln!("bench: {night}: test");
        let (test, tested) = models(&app, &lake_dir, night, true).await?;
        report.add_night(night, [ingest, build, test], &built, &tested);
        if night == "full" {
            eprintln!("bench: bare model queries");
            let bare = compare::bare_queries(&app, &dir.join("bare")).await?;
            report.set_bare(&bare);
        }
    }
    if !args.no_compare {
        let app = App::new(
            config.clone(),
            Some(&lake_url),
            Mode::Replay(u.next.clone()),
        )
        .map_err(phase_err("compare"))?;
        let python = args.python.clone().unwrap_or_else(default_python);
        let options = compare::Options {
            python: &python,
            script: &args.compare_script,
            dir: &dir,
            runs,
        };
        let results = compare::run(&app, &report.build_order(), &options).await?;
        report.set_compare(results);
    }
    let json = args.json.clone().unwrap_or_else(|| dir.join("bench.json"));
    write_json(&json, &report)?;
    println!("{}", report.markdown());
    eprintln!("bench: results written to {}", json.display());
    Ok(())
}

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| BenchError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(path, text).map_err(io(path))
}

fn default_python() -> PathBuf {
    let venv = PathBuf::from("target/ci-venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn phase_err(phase: &str) -> impl Fn(crate::app::AppError) -> BenchError + '_ {
    move |e| BenchError::Phase {
        phase: phase.to_string(),
        message: crate::http::redact::error_text(&e),
    }
}

/// Empties `dir` when the bench made it (or creates it), and marks it as the bench's.
fn fresh_dir(dir: &Path) -> Result<(), BenchError> {
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            return Err(BenchError::NotABenchDir(dir.to_path_buf()));
        }
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let marker = dir.join(MARKER);
    std::fs::write(&marker, "made by macrolake bench; wiped by the next run\n").map_err(io(&marker))
}

async fn ingest(app: &App, lake_dir: &Path, night: &str) -> Result<Phase, BenchError> {
    let meter = Meter::start("ingest", lake_dir);
    let outcomes = app
        .ingest(&[], Window::default())
        .await
        .map_err(phase_err(night))?;
    let failed: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.errors.iter().map(|e| format!("{}: {e}", o.kind)))
        .collect();
    if !failed.is_empty() {
        return Err(BenchError::Phase {
            phase: format!("{night} ingest"),
            message: failed.join("; "),
        });
    }
    Ok(meter.stop(outcomes.iter().map(|o| o.rows).sum(), lake_dir))
}

async fn models(
    app: &App,
    lake_dir: &Path,
    night: &str,
    test_only: bool,
) -> Result<(Phase, Vec<ModelTimes>), BenchError> {
    let what = if test_only { "test" } else { "build" };
    let meter = Meter::start(what, lake_dir);
    let options = BuildOptions {
        sql_dir: &app.sql_dir,
        selector: None,
        dry_run: false,
        test_only,
        reference_date: app.reference_date(),
        full_refresh: false,
    };
    let built: BuildReport = crate::models::build(&app.lake, &app.views(), &options)
        .await
        .map_err(|e| BenchError::Phase {
            phase: format!("{night} {what}"),
            message: e.to_string(),
        })?;
    let problems = built.problems();
    if !problems.is_empty() {
        return Err(BenchError::Phase {
            phase: format!("{night} {what}"),
            message: problems.join("; "),
        });
    }
    let rows = built.outcomes.iter().map(|o| o.rows).sum();
    let times = built
        .outcomes
        .iter()
        .map(|o| ModelTimes {
            model: o.name.to_string(),
            rows: o.rows,
            seconds: o.seconds,
        })
        .collect();
    Ok((meter.stop(rows, lake_dir), times))
}
