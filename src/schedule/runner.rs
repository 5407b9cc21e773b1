//! Running one job: its steps in order, each attempt under the step and job timeouts, failing
//! steps retried with doubling waits, a shutdown honoured between steps, and every attempt, skip
//! and the run itself written to `meta.runs`. Shared by `macrolake run` and the daemon.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{Job, ScheduleError, Step};
use crate::lake::Lake;
use crate::lake::runs::{RunRecord, RunStatus};

/// What a step did.
#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    /// Rows written in total.
    pub rows: i64,
    /// Rows per target (source or model).
    pub targets: Vec<(String, i64)>,
}

/// Something that can run a step (the application; tests use fakes).
#[async_trait::async_trait]
pub trait StepExecutor: Send + Sync {
    /// Runs `step` once; the error is a one-line description.
    async fn run_step(&self, step: &Step) -> Result<StepOutput, String>;
}

/// Hears about a run as it goes (progress bars, logs).
pub trait Observer: Send + Sync {
    /// Step `index` (0-based) begins attempt `attempt` (1-based).
    fn attempt_started(&self, _index: usize, _step: &Step, _attempt: u32) {}
    /// An attempt failed and another follows after `wait`.
    fn retrying(&self, _index: usize, _step: &Step, _error: &str, _wait: Duration) {}
    /// Step `index` ended (ok, failed, skipped or interrupted).
    fn step_finished(&self, _index: usize, _report: &StepReport) {}
}

/// An observer that logs through `tracing`.
pub struct LogObserver {
    /// The job name, for context.
    pub job: String,
}

impl Observer for LogObserver {
    fn attempt_started(&self, index: usize, step: &Step, attempt: u32) {
        tracing::info!(job = %self.job, step = index + 1, attempt, "{}", step.label());
    }
    fn retrying(&self, index: usize, step: &Step, error: &str, wait: Duration) {
        tracing::warn!(job = %self.job, step = index + 1, wait_secs = wait.as_secs(),
            "{} failed, retrying: {}", step.label(), crate::http::redact::redact(error));
    }
    fn step_finished(&self, index: usize, r: &StepReport) {
        tracing::info!(job = %self.job, step = index + 1, status = r.status.as_str(),
            seconds = format!("{:.1}", r.seconds), rows = r.rows, "{}", r.label);
    }
}

/// Outcome of one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// `ingest`, `build`, `test`, `export`.
    pub kind: &'static str,
    /// Human label.
    pub label: String,
    /// Outcome.
    pub status: RunStatus,
    /// Attempts made (0 when skipped).
    pub attempts: u32,
    /// Wall time over all attempts and waits.
    pub seconds: f64,
    /// Rows written by the successful attempt.
    pub rows: i64,
    /// Rows per target.
    pub targets: Vec<(String, i64)>,
    /// The last error.
    pub error: Option<String>,
}

/// Outcome of a run.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The run id in `meta.runs`.
    pub run_id: String,
    /// The job.
    pub job: String,
    /// The tick it ran for (scheduled runs).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Ok, failed or interrupted.
    pub status: RunStatus,
    /// One per step of the job.
    pub steps: Vec<StepReport>,
    /// The error that ended it.
    pub error: Option<String>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub ended_at: DateTime<Utc>,
}

/// Everything a run needs.
pub struct RunContext<'a> {
    /// Where `meta.runs` lives.
    pub lake: &'a Lake,
    /// Runs the steps.
    pub executor: &'a dyn StepExecutor,
    /// Hears progress.
    pub observer: &'a dyn Observer,
    /// Becomes `true` when the run must stop starting steps (SIGTERM, lost lease).
    pub shutdown: watch::Receiver<bool>,
    /// The tick being run.
    pub scheduled_for: Option<DateTime<Utc>>,
}

enum Attempt {
    Done(Result<StepOutput, String>),
    JobTimedOut(u64),
}

/// Runs `job` once and records it. `Err` only when `meta.runs` cannot be written.
pub async fn run_job(job: &Job, mut cx: RunContext<'_>) -> Result<JobReport, ScheduleError> {
    let run_id = uuid::Uuid::new_v4().to_string();
    let started_at = Lake::now();
    let job_deadline = job
        .file
        .job_timeout_secs
        .map(|s| (s, Instant::now() + Duration::from_secs(s)));
    let record = |kind: &str,
                  target: Option<String>,
                  started: DateTime<Utc>,
                  status: RunStatus,
                  rows: i64,
                  attempt: Option<i32>,
                  error: Option<String>| RunRecord {
        run_id: run_id.clone(),
        kind: kind.into(),
        job: job.name.clone(),
        target,
        scheduled_for: cx.scheduled_for,
        attempt,
        started_at: started,
        ended_at: Lake::now(),
        status,
        rows_written: rows,
        error,
    };
    let mut steps = Vec::new();
    let mut ended: Option<(RunStatus, String)> = None;
    for (index, step) in job.file.steps.iter().enumerate() {
        let label = format!("{}. {}", index + 1, step.label());
        if ended.is_none() && *cx.shutdown.borrow() {
            ended = Some((
                RunStatus::Interrupted,
                "shutdown requested; no further steps started".into(),
            ));
        }
        if let Some((status, _)) = &ended {
            let why = match status {
                RunStatus::Interrupted => "not started: the daemon is shutting down",
                _ => "not started: an earlier step failed",
            };
            let skipped = StepReport {
                kind: step.kind(),
                label: label.clone(),
                status: RunStatus::Skipped,
                attempts: 0,
                seconds: 0.0,
                rows: 0,
                targets: Vec::new(),
                error: Some(why.into()),
            };
            cx.lake
                .record_runs(&[record(
                    step.kind(),
                    Some(label),
                    Lake::now(),
                    RunStatus::Skipped,
                    0,
                    None,
                    Some(why.into()),
                )])
                .await?;
            cx.observer.step_finished(index, &skipped);
            steps.push(skipped);
            continue;
        }
        let clock = Instant::now();
        let mut attempt: u32 = 0;
        let outcome = loop {
            attempt += 1;
            cx.observer.attempt_started(index, step, attempt);
            let attempt_started = Lake::now();
            let result = match run_attempt(job, step, cx.executor, job_deadline).await {
                Attempt::Done(r) => r,
                Attempt::JobTimedOut(secs) => {
                    break Err((
                        format!("job timed out after {secs}s (job_timeout_secs)"),
                        RunStatus::Failed,
                    ));
                }
            };
            let (status, rows, error) = match &result {
                Ok(out) => (RunStatus::Ok, out.rows, None),
                Err(e) => (RunStatus::Failed, 0, Some(e.clone())),
            };
            cx.lake
                .record_runs(&[record(
                    step.kind(),
                    Some(label.clone()),
                    attempt_started,
                    status,
                    rows,
                    Some(attempt as i32),
                    error,
                )])
                .await?;
            let error = match result {
                Ok(out) => break Ok(out),
                Err(e) if attempt > job.file.retries.count => break Err((e, RunStatus::Failed)),
                Err(e) => e,
            };
            let wait = job.file.retries.wait(attempt - 1);
            cx.observer.retrying(index, step, &error, wait);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cx.shutdown.wait_for(|stop| *stop) => {
                    break Err((
                        format!("{error} (not retried: shutdown requested)"),
                        RunStatus::Interrupted,
                    ));
                }
            }
        };
        let seconds = clock.elapsed().as_secs_f64();
        let report = match outcome {
            Ok(out) => StepReport {
                kind: step.kind(),
                label,
                status: RunStatus::Ok,
                attempts: attempt,
                seconds,
                rows: out.rows,
                targets: out.targets,
                error: None,
            },
            Err((error, status)) => {
                ended = Some((status, format!("step {label}: {error}")));
                StepReport {
                    kind: step.kind(),
                    label,
                    status,
                    attempts: attempt,
                    seconds,
                    rows: 0,
                    targets: Vec::new(),
                    error: Some(error),
                }
            }
        };
        cx.observer.step_finished(index, &report);
        steps.push(report);
    }
    let (status, error) = match ended {
        None => (RunStatus::Ok, None),
        Some((s, e)) => (s, Some(e)),
    };
    let rows = steps.iter().map(|s| s.rows).sum();
    cx.lake
        .record_runs(&[record(
            "job",
            None,
            started_at,
            status,
            rows,
            None,
            error.clone(),
        )])
        .await?;
    Ok(JobReport {
        run_id,
        job: job.name.clone(),
        scheduled_for: cx.scheduled_for,
        status,
        steps,
        error,
        started_at,
        ended_at: Lake::now(),
    })
}

/// One attempt under the tighter of the step timeout and what is left of the job timeout.
async fn run_attempt(
    job: &Job,
    step: &Step,
    executor: &dyn StepExecutor,
    job_deadline: Option<(u64, Instant)>,
) -> Attempt {
    let step_limit = job.file.step_timeout_secs.map(Duration::from_secs);
    let job_left = job_deadline.map(|(_, at)| at.saturating_duration_since(Instant::now()));
    let limit = match (step_limit, job_left) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some(limit) = limit else {
        return Attempt::Done(executor.run_step(step).await);
    };
    match tokio::time::timeout(limit, executor.run_step(step)).await {
        Ok(result) => Attempt::Done(result),
        Err(_) if job_left.is_some_and(|left| left <= limit) => {
            Attempt::JobTimedOut(job_deadline.map_or(0, |(s, _)| s))
        }
        Err(_) => Attempt::Done(Err(format!(
            "timed out after {}s (step_timeout_secs)",
            limit.as_secs()
        ))),
    }
}

/// Records ticks the daemon decided not to run (misfire or overlap) as skipped runs.
pub async fn record_skipped(
    lake: &Lake,
    job: &str,
    ticks: &[DateTime<Utc>],
    why: &str,
) -> Result<(), ScheduleError> {
    let now = Lake::now();
    let records: Vec<RunRecord> = ticks
        .iter()
        .map(|t| RunRecord {
            run_id: uuid::Uuid::new_v4().to_string(),
            kind: "job".into(),
            job: job.into(),
            target: None,
            scheduled_for: Some(*t),
            attempt: None,
            started_at: now,
            ended_at: now,
            status: RunStatus::Skipped,
            rows_written: 0,
            error: Some(why.into()),
        })
        .collect();
    lake.record_runs(&records).await?;
    Ok(())
}
