//! What each command does: the app is built from the global options, then the command runs.
//! `export`, `chart` and `bench` keep their own errors; everything else reports [`AppError`].

use std::path::{Path, PathBuf};

use super::{BuildArgs, Cli, Command, GlobalArgs, IngestArgs, SqlArgs};
use crate::app::{App, AppError};
use crate::config::Config;
use crate::http::Mode;
use crate::lake::runs::RunStatus;
use crate::query::{self, Format};
use crate::sources::Window;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The application (configuration, lake, sources, models, jobs, server) failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// `macrolake export` failed.
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    /// `macrolake chart` failed.
    #[error(transparent)]
    Chart(#[from] crate::chart::ChartError),
    /// `macrolake bench` failed.
    #[error(transparent)]
    Bench(#[from] crate::bench::BenchError),
    /// A job command (`run`, `daemon`, `schedules`, the jobs of `status`) failed.
    #[error(transparent)]
    Schedule(#[from] crate::schedule::ScheduleError),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Bench(args) => return Ok(crate::bench::run(args).await?),
        Command::Soak(args) => return Ok(crate::bench::soak::run(args).await?),
        _ => {}
    }
    let mut app = build_app(&cli.global)?;
    if matches!(
        cli.command,
        Command::Sql(_) | Command::Serve { .. } | Command::Export(_) | Command::Chart(_)
    ) {
        app.warn_without_models();
    }
    match cli.command {
        Command::Export(args) => export(&app, args).await,
        Command::Chart(args) => chart(&app, args).await,
        command => app_command(&mut app, command).await,
    }
}

/// The app from the global options: the configuration file, the lake and the HTTP mode.
fn build_app(g: &GlobalArgs) -> Result<App, AppError> {
    let config = match &g.config {
        Some(path) => Config::load(path, true)?,
        None => Config::load(Path::new("macrolake.toml"), false)?,
    };
    let mode = match (&g.replay, &g.record) {
        (Some(dir), _) => Mode::Replay(dir.clone()),
        (None, Some(dir)) => Mode::Record(dir.clone()),
        (None, None) => Mode::Live,
    };
    App::new(config, g.lake.as_deref(), mode)
}

/// The commands over the app.
async fn app_command(app: &mut App, command: Command) -> Result<(), CliError> {
    use crate::schedule::commands as jobs;
    match command {
        Command::Ingest(args) => Ok(ingest(app, args).await?),
        Command::Sql(args) => Ok(sql(app, args).await?),
        Command::Build(args) => Ok(models(app, args, false).await?),
        Command::Test(args) => Ok(models(app, args, true).await?),
        Command::Schedules { dir } => Ok(jobs::list(&dir, &app.sql_dir)?),
        Command::Run {
            job,
            dir,
            until,
            force_break_lease,
            yes,
        } => {
            let break_lease = match (force_break_lease, yes) {
                (false, _) => jobs::BreakLease::No,
                (true, false) => jobs::BreakLease::Unconfirmed,
                (true, true) => jobs::BreakLease::Confirmed,
            };
            app.until = until;
            Ok(jobs::run_now(app, &dir, &job, break_lease).await?)
        }
        Command::Daemon {
            dir,
            http,
            metrics_listen,
            lease_ttl_secs,
            holder,
        } => {
            let args = jobs::DaemonArgs {
                dir: &dir,
                http,
                metrics_listen: metrics_listen.as_deref(),
                lease_ttl_secs,
                holder,
            };
            Ok(jobs::daemon(app, args).await?)
        }
        Command::Serve { listen, http } => Ok(serve(app, listen, http).await?),
        Command::Optimize {
            tables,
            target_size_mb,
        } => Ok(optimize(app, &tables, target_size_mb).await?),
        Command::Vacuum {
            tables,
            retention_hours,
            dry_run,
            allow_short_retention,
        } => Ok(vacuum(
            app,
            &tables,
            retention_hours,
            dry_run,
            allow_short_retention,
        )
        .await?),
        Command::Docs { sql_dir, out } => Ok(docs(app, sql_dir, &out).await?),
        Command::Status { dir } => status(app, &dir).await,
        Command::Export(_) | Command::Chart(_) | Command::Bench(_) | Command::Soak(_) => {
            unreachable!("run() handles the commands with their own errors")
        }
    }
}

/// `macrolake sql`: the query's result printed or written.
async fn sql(app: &App, args: SqlArgs) -> Result<(), AppError> {
    let batches = match args.known_on {
        Some(day) => app.query_known_on(&args.query, day).await?,
        None => app.query(&args.query, args.as_of.as_ref()).await?,
    };
    query::emit(&batches, args.format, args.output.as_deref())?;
    Ok(())
}

/// `macrolake serve`: the Postgres-wire server (and the status page when asked) until a signal.
async fn serve(app: &App, listen: Option<String>, http: Option<String>) -> Result<(), AppError> {
    let listen = listen.unwrap_or_else(|| app.config.serve.listen.clone());
    let shutdown = crate::schedule::commands::shutdown_on_signals();
    crate::web::start(app, http, shutdown.clone()).await?;
    let server =
        crate::serve::Server::bind(&app.lake, app.views(), &app.config.serve, &listen).await?;
    let addr = server
        .local_addr()
        .map_err(|source| crate::serve::ServeError::Listen {
            addr: listen.clone(),
            source,
        })?;
    eprintln!(
        "serving {} on postgresql://{addr} ({}; read-only; users from [serve])",
        app.lake.root(),
        if server.tls() {
            "TLS available"
        } else {
            "no TLS"
        }
    );
    server.run(shutdown).await;
    eprintln!("server stopped");
    Ok(())
}

/// `macrolake optimize`: each table compacted, one line per table.
async fn optimize(app: &App, tables: &[String], target_size_mb: u64) -> Result<(), AppError> {
    println!(
        "{:<36} {:>8} {:>8} {:>8}",
        "table", "added", "removed", "version"
    );
    for t in app.lake.resolve_tables(tables).await? {
        let m = app.lake.optimize(&t, target_size_mb).await?;
        println!(
            "{:<36} {:>8} {:>8} {:>8}",
            m.table.to_string(),
            m.files_added,
            m.files_removed,
            m.version.map_or("-".into(), |v| v.to_string())
        );
    }
    Ok(())
}

/// `macrolake vacuum`: each table's unneeded files deleted (or listed), one line per table.
async fn vacuum(
    app: &App,
    tables: &[String],
    retention_hours: u64,
    dry_run: bool,
    allow_short_retention: bool,
) -> Result<(), AppError> {
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!("{:<36} {verb} (retention {retention_hours} h)", "table");
    for t in app.lake.resolve_tables(tables).await? {
        let (m, files) = app
            .lake
            .vacuum(&t, retention_hours, dry_run, allow_short_retention)
            .await?;
        println!("{:<36} {} file(s)", m.table.to_string(), files.len());
        if dry_run {
            for f in files {
                println!("  {f}");
            }
        }
    }
    Ok(())
}

/// `macrolake docs`: the model catalogue and lineage written under `out`.
async fn docs(app: &App, sql_dir: Option<PathBuf>, out: &Path) -> Result<(), AppError> {
    let sql_dir = sql_dir.unwrap_or_else(|| app.sql_dir.clone());
    for path in crate::models::docs::write_docs(
        &app.lake,
        &app.views(),
        &crate::sources::all_tables(&app.config.sources),
        &sql_dir,
        out,
    )
    .await?
    {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `macrolake status`: every table, then every job's last run and next tick.
async fn status(app: &App, dir: &Path) -> Result<(), CliError> {
    let batches = app.status().await?;
    if batches.is_empty() {
        println!(
            "The lake at {} has no tables yet: run `macrolake ingest`.",
            app.lake.root()
        );
    } else {
        query::emit(&batches, Format::Table, None).map_err(AppError::from)?;
    }
    Ok(crate::schedule::commands::status(app, dir).await?)
}

/// `macrolake export`: exports and prints one line per file (location, rows, bytes).
async fn export(app: &App, args: crate::export::ExportArgs) -> Result<(), CliError> {
    let session = app.session(args.as_of.as_ref()).await?;
    for file in crate::export::export(&session, app.config.lake.allow_http, &args).await? {
        println!(
            "{}  {} rows  {} bytes",
            file.location, file.rows, file.bytes
        );
    }
    Ok(())
}

/// `macrolake chart`: draws, writes, and prints one line saying what.
async fn chart(app: &App, args: crate::chart::ChartArgs) -> Result<(), CliError> {
    let session = app.session(args.as_of.as_ref()).await?;
    let r = crate::chart::chart(&session, app.lake.root().as_str(), &args).await?;
    println!(
        "{}  {}x{} {:?}  {} to {} ({} days, {} divergence span(s) shaded)  {} bytes",
        r.path.display(),
        args.width,
        args.height,
        r.format,
        r.from,
        r.to,
        r.days,
        r.divergence_spans,
        r.bytes
    );
    Ok(())
}

/// `macrolake ingest`: one line per source; an error when any failed.
async fn ingest(app: &App, args: IngestArgs) -> Result<(), AppError> {
    let window = Window {
        since: args.since,
        until: args.until,
        full_refresh: args.full_refresh,
    };
    let outcomes = app.ingest(&args.sources, window).await?;
    println!(
        "{:<10} {:<7} {:>8} {:>8}  error",
        "source", "status", "rows", "seconds"
    );
    for o in &outcomes {
        let status = if o.errors.is_empty() { "ok" } else { "failed" };
        let first = o
            .errors
            .first()
            .map(|e| crate::http::redact::redact(&e.to_string()))
            .unwrap_or_default();
        println!(
            "{:<10} {:<7} {:>8} {:>8.2}  {}",
            o.kind, status, o.rows, o.seconds, first
        );
        for e in o.errors.iter().skip(1) {
            println!(
                "{:<36}  {}",
                "",
                crate::http::redact::redact(&e.to_string())
            );
        }
    }
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.errors.is_empty()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(AppError::SourcesFailed {
        failed: failed.len(),
        total: outcomes.len(),
        summary: failed
            .iter()
            .flat_map(|o| o.errors.iter().map(|e| e.to_string()))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// `macrolake build` / `macrolake test`: one line per model; an error when any failed.
async fn models(app: &App, args: BuildArgs, test_only: bool) -> Result<(), AppError> {
    let options = crate::models::BuildOptions {
        sql_dir: args.sql_dir.as_deref().unwrap_or(&app.sql_dir),
        selector: args.select.as_deref(),
        dry_run: args.dry_run,
        test_only,
        reference_date: app.reference_date(),
        full_refresh: args.full_refresh,
    };
    let report = crate::models::build(&app.lake, &app.views(), &options).await?;
    println!(
        "{:<36} {:<8} {:>8} {:>8}",
        "model", "status", "rows", "seconds"
    );
    for o in &report.outcomes {
        // A model left as it was says why (its failures are listed below the table).
        let note = match (o.status, &o.message) {
            (RunStatus::Ok, Some(m)) => format!("  {m}"),
            _ => String::new(),
        };
        println!(
            "{:<36} {:<8} {:>8} {:>8.2}{note}",
            o.name.to_string(),
            o.status.as_str(),
            o.rows,
            o.seconds
        );
    }
    let problems = report.problems();
    if problems.is_empty() {
        return Ok(());
    }
    for p in &problems {
        println!("\n{p}");
    }
    Err(AppError::ModelsFailed {
        failed: problems.len(),
        total: report.outcomes.len(),
    })
}
