//! `macrolake soak`: a job run night after night on the bundled snapshot, as the daemon runs it
//! (lease, steps, run records). The snapshot is the same every night, so whatever grows here
//! grows with the number of runs, not with new data: Delta logs between checkpoints, the run
//! history, model states. It prints each night's time and where every table's log stands at the
//! end, writes them as JSON, and fails when a load of any table would replay more commits than
//! the checkpoint interval ([`crate::lake::log::CHECKPOINT_INTERVAL`]).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::{BenchError, fresh_dir, io, phase_err, snapshot_config, write_json};
use crate::app::App;
use crate::http::Mode;
use crate::lake::log::{CHECKPOINT_INTERVAL, LogState};
use crate::lake::runs::RunStatus;
use crate::schedule::commands::{BreakLease, run_leased};
use crate::schedule::runner::Observer;

/// `macrolake soak` arguments.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Nights to run.
    #[arg(long, default_value_t = 30)]
    pub nights: usize,
    /// The job run each night.
    #[arg(long, default_value = "nightly")]
    pub job: String,
    /// Folder of job files.
    #[arg(long, default_value = "schedules", value_name = "DIR")]
    pub jobs_dir: PathBuf,
    /// The real snapshot replayed every night (its macrolake.toml is the configuration).
    #[arg(long, default_value = "tests/fixtures/upstream", value_name = "DIR")]
    pub snapshot: PathBuf,
    /// Work folder (wiped first; only one a bench or soak made) [default: target/soak].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where to write the results as JSON [default: <dir>/soak.json].
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// What a soak measured.
#[derive(Debug, serde::Serialize)]
pub struct SoakReport {
    /// The job.
    pub job: String,
    /// Seconds of each night, in order.
    pub nights: Vec<f64>,
    /// Every table's log at the end, by name.
    pub tables: Vec<LogState>,
}

impl SoakReport {
    /// Median seconds of the nights `from..to` (0-based, clamped).
    fn median(&self, from: usize, to: usize) -> f64 {
        let mut part: Vec<f64> =
            self.nights[from.min(self.nights.len())..to.min(self.nights.len())].to_vec();
        part.sort_by(f64::total_cmp);
        part.get(part.len() / 2).copied().unwrap_or(f64::NAN)
    }

    /// The report as text: nights (1, 2, 3, then every tenth and the last), the medians of the
    /// first and last five after the first night (which loads the whole snapshot), and the logs.
    pub fn text(&self) -> String {
        let mut out = String::from("night  seconds\n");
        let n = self.nights.len();
        for (i, s) in self.nights.iter().enumerate() {
            if i < 3 || (i + 1) % 10 == 0 || i + 1 == n {
                out.push_str(&format!("{:>5}  {s:>7.3}\n", i + 1));
            }
        }
        let early = self.median(1, 6);
        let late = self.median(n.saturating_sub(5).max(1), n);
        out.push_str(&format!(
            "median of nights 2-6: {early:.3} s; of the last five: {late:.3} s ({:+.0}%)\n\n",
            (late / early - 1.0) * 100.0
        ));
        out.push_str(&format!(
            "{:<36} {:>8} {:>11} {:>5} {:>6} {:>10}\n",
            "table", "version", "checkpoint", "tail", "files", "log files"
        ));
        for t in &self.tables {
            let checkpoint = t.checkpoint.map(|c| c.to_string()).unwrap_or("-".into());
            out.push_str(&format!(
                "{:<36} {:>8} {:>11} {:>5} {:>6} {:>10}\n",
                t.table,
                t.version,
                checkpoint,
                t.tail(),
                t.files,
                t.log_files
            ));
        }
        out.push_str(
            "\ntail: commits a load replays after the newest checkpoint. Delta keeps 30 days of \
             log files: at one run a night a folder stops growing after a month, while nights run \
             back to back keep every one, and listing them is what still grows here after ~30 \
             nights (docs/benchmarks.md).\n",
        );
        out
    }
}

/// Hears nothing: a soak prints its own table.
struct Quiet;
impl Observer for Quiet {}

/// Runs the soak and prints its report.
pub async fn run(args: SoakArgs) -> Result<(), BenchError> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/soak"));
    fresh_dir(&dir)?;
    let dir = std::fs::canonicalize(&dir).map_err(io(&dir))?;
    let (config, _) = snapshot_config(&args.snapshot)?;
    let lake_url = dir.join("lake").to_string_lossy().to_string();
    let app = App::new(config, Some(&lake_url), Mode::Replay(args.snapshot.clone()))
        .map_err(phase_err("soak"))?;
    let job = crate::schedule::find(&args.jobs_dir, &args.job).map_err(|e| BenchError::Phase {
        phase: "soak".into(),
        message: e.to_string(),
    })?;
    eprintln!(
        "soak: job {} for {} nights on {} (lake {lake_url})",
        job.name,
        args.nights,
        args.snapshot.display()
    );
    let mut nights = Vec::with_capacity(args.nights);
    for night in 1..=args.nights {
        let started = Instant::now();
        let failed = |message: String| BenchError::Phase {
            phase: format!("soak night {night}"),
            message,
        };
        let report = run_leased(&app, &job, BreakLease::No, &Quiet)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if report.status != RunStatus::Ok {
            return Err(failed(report.error.unwrap_or_default()));
        }
        nights.push(started.elapsed().as_secs_f64());
    }
    let mut tables = Vec::new();
    for table in app.lake.tables().await.map_err(|e| BenchError::Phase {
        phase: "soak: listing tables".into(),
        message: e.to_string(),
    })? {
        if let Some(state) = app
            .lake
            .log_state(&table)
            .await
            .map_err(|e| BenchError::Phase {
                phase: format!("soak: reading the log of {table}"),
                message: e.to_string(),
            })?
        {
            tables.push(state);
        }
    }
    let report = SoakReport {
        job: job.name.clone(),
        nights,
        tables,
    };
    println!("{}", report.text());
    let json = args.json.clone().unwrap_or_else(|| dir.join("soak.json"));
    write_json(&json, &report)?;
    eprintln!("soak: results written to {}", json.display());
    match report
        .tables
        .iter()
        .find(|t| t.tail() > CHECKPOINT_INTERVAL)
    {
        Some(t) => Err(BenchError::LogTail {
            table: t.table.clone(),
            tail: t.tail(),
        }),
        None => Ok(()),
    }
}
