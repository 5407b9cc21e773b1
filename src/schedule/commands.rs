//! The job commands: `schedules`, `run <job>`, `daemon`, and the jobs part of `status`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use super::ScheduleError;
use super::daemon::{Daemon, SystemClock};
use super::lease::{Acquire, Coordinator, default_holder};
use super::runner::{JobReport, Observer, RunContext, StepReport};
use super::{Job, Step, load_all};
use crate::app::App;
use crate::lake::runs::RunStatus;

/// Shows a run's progress: a spinner per step on a terminal, plain lines otherwise (stderr).
struct Progress {
    steps: usize,
    tty: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    fn new(steps: usize) -> Self {
        Self {
            steps,
            tty: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }
}

impl Observer for Progress {
    fn attempt_started(&self, index: usize, step: &Step, attempt: u32) {
        let msg = format!(
            "[{}/{}] {}{}",
            index + 1,
            self.steps,
            step.label(),
            if attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            }
        );
        if !self.tty {
            eprintln!("{msg} …");
            return;
        }
        let bar = ProgressBar::new_spinner().with_message(msg);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("static template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Some(old) = self.bar.lock().expect("progress lock").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn retrying(&self, index: usize, step: &Step, error: &str, wait: Duration) {
        let line = format!(
            "[{}/{}] {} failed: {}; retrying in {}s",
            index + 1,
            self.steps,
            step.label(),
            crate::http::redact::redact(error),
            wait.as_secs()
        );
        match self.bar.lock().expect("progress lock").as_ref() {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn step_finished(&self, index: usize, r: &StepReport) {
        let label = r
            .label
            .split_once(". ")
            .map_or(r.label.as_str(), |(_, l)| l);
        let line = format!(
            "[{}/{}] {} {} ({:.1}s)",
            index + 1,
            self.steps,
            label,
            r.status.as_str(),
            r.seconds
        );
        match self.bar.lock().expect("progress lock").take() {
            Some(bar) => bar.finish_with_message(line),
            None => eprintln!("{line}"),
        }
    }
}

/// Turns SIGTERM/SIGINT into `true` on the returned channel; a second signal exits at once.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        for n in 0.. {
            #[cfg(unix)]
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            if n > 0 {
                eprintln!("second signal: exiting now");
                std::process::exit(130);
            }
            tracing::warn!(
                "shutdown requested: finishing the running step (signal again to exit now)"
            );
            let _ = tx.send(true);
        }
    });
    rx
}

fn load_checked(dir: &Path, sql_dir: &Path) -> Result<Vec<Job>, ScheduleError> {
    let jobs = load_all(dir)?;
    for job in &jobs {
        job.check_models(sql_dir)?;
    }
    Ok(jobs)
}

/// `macrolake schedules`.
pub fn list(dir: &Path, sql_dir: &Path) -> Result<(), ScheduleError> {
    let now = Utc::now();
    for job in load_checked(dir, sql_dir)? {
        println!(
            "{} ({} {}{}): {}",
            job.name,
            job.file.cron,
            job.file.timezone,
            if job.file.enabled { "" } else { ", disabled" },
            job.file.description
        );
        for t in job.next_runs(now, 5) {
            println!(
                "  {}   {} UTC",
                t.format("%a %Y-%m-%d %H:%M %Z"),
                t.with_timezone(&Utc).format("%Y-%m-%d %H:%M")
            );
        }
    }
    Ok(())
}

/// How `macrolake run` treats a lease held by another process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BreakLease {
    /// Refuse while it is held (a holder whose process is gone from this host is taken over).
    #[default]
    No,
    /// `--force-break-lease` without `--yes`: say what would be broken, break nothing.
    Unconfirmed,
    /// `--force-break-lease --yes`: break it (unless its process runs on this host).
    Confirmed,
}

/// `macrolake run <job>`.
pub async fn run_now(
    app: &App,
    dir: &Path,
    name: &str,
    break_lease: BreakLease,
) -> Result<(), ScheduleError> {
    let job = super::find(dir, name)?;
    let progress = Progress::new(job.file.steps.len());
    let report = run_leased(app, &job, break_lease, &progress).await?;
    print_summary(&report);
    match (report.status, report.error) {
        (RunStatus::Ok, _) => Ok(()),
        (_, error) => Err(ScheduleError::JobFailed {
            job: job.name,
            error: error.unwrap_or_default(),
        }),
    }
}

/// Runs `job` once now under its lease (as `macrolake run` does), telling `observer` its
/// progress; returns its report whatever its status.
pub async fn run_leased(
    app: &App,
    job: &Job,
    break_lease: BreakLease,
    observer: &dyn Observer,
) -> Result<JobReport, ScheduleError> {
    let job = job.clone();
    job.check_models(&app.sql_dir)?;
    // The same lease as the daemon's: a hand run never overlaps a scheduled one.
    let coord = Coordinator::new(&app.lake, default_holder(), chrono::Duration::seconds(120));
    let mut taken = coord.acquire(&job.name, Utc::now()).await?;
    if let Acquire::Held(held) = taken {
        taken = match break_lease {
            BreakLease::No => Acquire::Held(held),
            BreakLease::Unconfirmed => {
                return Err(ScheduleError::ConfirmBreak {
                    job: job.name,
                    held: Box::new(held),
                });
            }
            BreakLease::Confirmed => coord.break_lease(&job.name, Utc::now()).await?,
        };
    }
    let lease = match taken {
        Acquire::Acquired(lease) => lease,
        Acquire::Held(held) => {
            return Err(ScheduleError::Busy {
                job: job.name,
                held: Box::new(held),
            });
        }
    };
    if let Some(old) = &lease.took_over {
        eprintln!("took the lease of job {} over: {old}", job.name);
    }
    let (held, stop_rx) =
        super::daemon::Held::start(coord, lease, Arc::new(SystemClock), shutdown_on_signals());
    let cx = RunContext {
        lake: &app.lake,
        executor: app,
        observer,
        shutdown: stop_rx,
        scheduled_for: None,
    };
    let report = super::runner::run_job(&job, cx).await;
    held.release().await?;
    report
}

fn print_summary(report: &JobReport) {
    println!(
        "\njob {}: {} (run {})",
        report.job,
        report.status.as_str(),
        report.run_id
    );
    println!(
        "  {:<44} {:<12} {:>8} {:>9} {:>10}",
        "step", "status", "attempts", "seconds", "rows"
    );
    for s in &report.steps {
        println!(
            "  {:<44} {:<12} {:>8} {:>9.1} {:>10}",
            s.label,
            s.status.as_str(),
            s.attempts,
            s.seconds,
            s.rows
        );
    }
}

/// `macrolake daemon` options.
pub struct DaemonArgs<'a> {
    /// Folder of job files.
    pub dir: &'a Path,
    /// Address of the status page (`--http`), else `[serve] http_listen`.
    pub http: Option<String>,
    /// Address for `/metrics`.
    pub metrics_listen: Option<&'a str>,
    /// Lease time-to-live.
    pub lease_ttl_secs: u64,
    /// Identity in leases (default host:pid:random).
    pub holder: Option<String>,
}

/// `macrolake daemon`: runs until SIGTERM/SIGINT.
pub async fn daemon(app: &App, args: DaemonArgs<'_>) -> Result<(), ScheduleError> {
    let jobs = load_checked(args.dir, &app.sql_dir)?;
    if jobs.iter().all(|j| !j.file.enabled) {
        tracing::warn!(dir = %args.dir.display(), "no enabled jobs: the daemon will only idle");
    }
    let holder = args.holder.unwrap_or_else(default_holder);
    let coord = Coordinator::new(
        &app.lake,
        holder.clone(),
        chrono::Duration::seconds(args.lease_ttl_secs.max(3) as i64),
    );
    let shutdown = shutdown_on_signals();
    let daemon = Daemon::new(
        jobs,
        &app.lake,
        coord,
        Arc::new(app.clone()),
        Arc::new(SystemClock),
        shutdown.clone(),
    );
    crate::web::start(app, args.http, shutdown.clone()).await?;
    if let Some(addr) = args.metrics_listen {
        let (bound, _) = super::metrics::serve(addr, daemon.metrics(), shutdown.clone()).await?;
        tracing::info!("metrics on http://{bound}/metrics");
        eprintln!("metrics on http://{bound}/metrics");
    }
    tracing::info!(%holder, lake = %app.lake.root(), "daemon started");
    eprintln!("daemon {holder} started on {}", app.lake.root());
    daemon.run().await?;
    eprintln!("daemon stopped");
    Ok(())
}

/// The jobs part of `macrolake status`: last run of each job and its next ticks.
pub async fn status(app: &App, dir: &Path) -> Result<(), ScheduleError> {
    let jobs = load_all(dir)?;
    if jobs.is_empty() {
        return Ok(());
    }
    let runs_exist = app
        .lake
        .exists(&crate::lake::TableName::meta("runs"))
        .await?;
    println!("\njobs ({}):", dir.display());
    println!(
        "  {:<14} {:<12} {:<22} {:<22} next tick",
        "job", "last run", "started (UTC)", "scheduled for (UTC)"
    );
    let now = Utc::now();
    for job in jobs {
        let last = if runs_exist {
            let sql = format!(
                "SELECT status, CAST(started_at AS VARCHAR) AS s, \
                 COALESCE(CAST(scheduled_for AS VARCHAR), 'by hand') AS t \
                 FROM meta.runs WHERE kind = 'job' AND job = '{}' \
                 ORDER BY started_at DESC LIMIT 1",
                job.name.replace('\'', "''")
            );
            let batches = app.query(&sql, None).await?;
            crate::query::render_rows(&batches).into_iter().next()
        } else {
            None
        };
        let (status, started, tick) = match last.as_deref() {
            Some([s, st, t]) => (
                s.clone(),
                st.chars().take(19).collect(),
                t.chars().take(19).collect(),
            ),
            _ => ("never".to_string(), String::new(), String::new()),
        };
        let next = if job.file.enabled {
            job.next_runs(now, 1)
                .first()
                .map(|t| t.format("%a %Y-%m-%d %H:%M %Z").to_string())
                .unwrap_or_default()
        } else {
            "disabled".into()
        };
        println!(
            "  {:<14} {:<12} {:<22} {:<22} {}",
            job.name, status, started, tick, next
        );
    }
    Ok(())
}
