//! The command line: argument definitions ([`run`] holds what each command does). `main` only
//! parses, calls [`run`] and turns the result into an exit code (0 ok, 1 failure, 2 usage).

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::lake::AsOf;
use crate::query::Format;
use crate::sources::SourceKind;

mod run;

pub use crate::http::redact::error_text;
pub use run::{CliError, run};

/// macrolake — Fed liquidity, rate expectations, EPS and asset prices in one Delta lake.
#[derive(Debug, Parser)]
#[command(name = "macrolake", version, about, long_about = None)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./macrolake.toml, if present].
    #[arg(long, global = true, env = "MACROLAKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Lake URL or path, overriding the config (./lake, memory://, s3://bucket/prefix, …).
    #[arg(long, global = true, env = "MACROLAKE_LAKE", value_name = "URL")]
    pub lake: Option<String>,
    /// Serve every upstream request from recordings in DIR; never touch the network.
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "record")]
    pub replay: Option<PathBuf>,
    /// Fetch live and save every upstream response under DIR (secrets redacted).
    #[arg(long, global = true, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch sources into the lake's staging tables (all sources when none is named).
    Ingest(IngestArgs),
    /// Run a SQL query over the lake (tables: staging.*, marts.*, meta.*).
    Sql(SqlArgs),
    /// Show every lake table (rows, newest date, last ingest, version) and every job's last run
    /// and next tick.
    Status {
        /// Folder of job files.
        #[arg(long, default_value = "schedules", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Build the SQL models in sql/ in dependency order; each is audited before it is published.
    Build(BuildArgs),
    /// Run the models' data tests against the published tables.
    Test(BuildArgs),
    /// List the jobs in schedules/ with their next five run times (local and UTC).
    Schedules {
        /// Folder of job files.
        #[arg(long, default_value = "schedules", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Run one job from schedules/ now: its steps in order, stopping at the first failure.
    Run {
        /// Job name (file stem), e.g. nightly.
        job: String,
        /// Folder of job files.
        #[arg(long, default_value = "schedules", value_name = "DIR")]
        dir: PathBuf,
        /// Replay the job as of a past day: its ingest steps fetch nothing after DAY and
        /// freshness tests measure from DAY (e.g. a replay folder cut short, or a backfill).
        #[arg(long, value_name = "YYYY-MM-DD")]
        until: Option<NaiveDate>,
        /// Break the job's lease even though it has not expired: for a run that crashed on
        /// another host (one on this host whose process is gone is taken over without this).
        /// Refused while the holder's process runs on this host. Needs --yes.
        #[arg(long)]
        force_break_lease: bool,
        /// Confirm --force-break-lease.
        #[arg(long, requires = "force_break_lease")]
        yes: bool,
    },
    /// Run every enabled job in schedules/ on its schedule until SIGTERM/SIGINT.
    Daemon {
        /// Folder of job files.
        #[arg(long, default_value = "schedules", value_name = "DIR")]
        dir: PathBuf,
        /// Serve the status page on ADDR (users and TLS from [serve]) [default: [serve]
        /// http_listen, else none].
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
        /// Seconds a job lease lasts without renewal (renewed every third of it while a run
        /// goes); a crashed daemon's jobs are taken over after this.
        #[arg(long, default_value_t = 120, value_name = "SECS")]
        lease_ttl_secs: u64,
        /// This daemon's name in leases and logs [default: host:pid:random].
        #[arg(long, value_name = "NAME")]
        holder: Option<String>,
    },
    /// Serve the lake over the PostgreSQL wire protocol (read-only, authenticated) for BI tools.
    Serve {
        /// Address to listen on [default: [serve] listen, else 127.0.0.1:5433].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Also serve the status page (runs, freshness, chart, lineage, downloads) on ADDR, e.g.
        /// 127.0.0.1:8080 [default: [serve] http_listen, else none]. Same users and TLS.
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
    },
    /// Compact each table's small files into large ones (a new version with the same rows).
    Optimize {
        /// Tables (`marts.liquidity_vs_risk` or `liquidity_vs_risk`); every table when omitted.
        tables: Vec<String>,
        /// Target file size in MB.
        #[arg(long, default_value_t = 128, value_name = "MB")]
        target_size_mb: u64,
    },
    /// Delete files no version within the retention still needs (`--as-of` within it keeps
    /// working).
    Vacuum {
        /// Tables; every table when omitted.
        tables: Vec<String>,
        /// Keep every file a version of the last HOURS needs.
        #[arg(long, default_value_t = crate::lake::maintain::DEFAULT_RETENTION_HOURS, value_name = "HOURS")]
        retention_hours: u64,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allow a retention below 7 days (time travel and long-running readers past it break).
        #[arg(long)]
        allow_short_retention: bool,
    },
    /// Write the model catalogue (Markdown) and lineage graph (Mermaid).
    Docs {
        /// Folder of models [default: `[models] dir`, else `sql` beside the configuration file].
        #[arg(long, value_name = "DIR")]
        sql_dir: Option<PathBuf>,
        /// Output folder.
        #[arg(long, default_value = "docs/models", value_name = "DIR")]
        out: PathBuf,
    },
    /// Write lake tables to files, one per table (`<zone>.<table>.parquet|csv`), each atomically:
    /// Parquet or CSV that Excel, pandas, DuckDB and Power BI read without options.
    Export(crate::export::ExportArgs),
    /// Draw net liquidity vs bitcoin vs the Russell 2000 (divergence days shaded) as PNG or SVG.
    Chart(crate::chart::ChartArgs),
    /// Benchmark: a synthetic universe (returns resampled from the real snapshot) ingested,
    /// built and tested from scratch and one day later, against DuckDB and PostgreSQL; prints a
    /// table and writes JSON. Uses its own lake under --dir (not --lake).
    Bench(crate::bench::BenchArgs),
    /// Soak: a job (default nightly) run night after night on the bundled snapshot, as the
    /// daemon runs it; prints each night's time and every table's log (version, newest
    /// checkpoint, files) and fails when a table's log outgrows its checkpoints. Uses its own
    /// lake under --dir (not --lake).
    Soak(crate::bench::soak::SoakArgs),
}

/// `build` / `test` arguments.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Only this model (`name`), with its ancestors (`+name`) or descendants (`name+`).
    #[arg(long, value_name = "SELECTOR")]
    pub select: Option<String>,
    /// Plan and validate every model and print the build order; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rebuild incremental models from scratch instead of recomputing their recent window.
    #[arg(long)]
    pub full_refresh: bool,
    /// Folder of models, seeds and tests [default: `[models] dir`, else `sql` beside the
    /// configuration file].
    #[arg(long, value_name = "DIR")]
    pub sql_dir: Option<PathBuf>,
}

/// `ingest` arguments.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Sources to ingest (fred, treasury, nyfed); all when omitted.
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<SourceKind>,
    /// Backfill from this date (YYYY-MM-DD) instead of the watermark.
    #[arg(long, value_name = "DATE")]
    pub since: Option<NaiveDate>,
    /// Fetch up to and including this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub until: Option<NaiveDate>,
    /// Ignore watermarks: fetch all history and replace what is stored for these sources.
    #[arg(long)]
    pub full_refresh: bool,
}

impl clap::builder::ValueParserFactory for SourceKind {
    type Parser = clap::builder::ValueParser;
    fn value_parser() -> Self::Parser {
        clap::builder::ValueParser::new(|s: &str| s.parse::<SourceKind>())
    }
}

/// `sql` arguments.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "select * from staging.fred_observations limit 5".
    pub query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of stdout (atomically).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Time travel: a Delta version number, an RFC 3339 time or a YYYY-MM-DD date.
    #[arg(long, value_name = "VERSION|TIME", conflicts_with = "known_on")]
    pub as_of: Option<AsOf>,
    /// Point in time: every staging table cut to what was public by this day's cut-off
    /// (`available_at`, `[models] cutoff`) and every model under `sql/` recomputed from it in
    /// memory — the marts as they would have been built that day (nothing is written).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub known_on: Option<chrono::NaiveDate>,
}

impl clap::builder::ValueParserFactory for AsOf {
    type Parser = clap::builder::ValueParser;
    fn value_parser() -> Self::Parser {
        clap::builder::ValueParser::new(|s: &str| s.parse::<AsOf>())
    }
}

/// Sets up logging on stderr, every line passed through secret redaction.
pub fn init_logging(global: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let level = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    // By default only what a user acts on: delta-rs warns on every MERGE that a scan metric is
    // missing (`Missing target skipped-file metric …`), which says nothing about the data. `-v`
    // or `MACROLAKE_LOG` (an `EnvFilter`, e.g. `MACROLAKE_LOG=warn`) shows everything again.
    let quiet_dependencies = if global.verbose == 0 {
        ",deltalake_core::operations::merge=error"
    } else {
        ""
    };
    let filter = EnvFilter::try_from_env("MACROLAKE_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},macrolake={}{quiet_dependencies}",
            if global.verbose == 0 && !global.quiet {
                "info"
            } else {
                level
            }
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::http::redact::RedactingStderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false);
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
