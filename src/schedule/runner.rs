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
pub async fn run_job(job: &Job, cx: RunContext<'_>) -> Result<JobReport, ScheduleError> {
    let mut run = JobRun {
        job,
        run_id: uuid::Uuid::new_v4().to_string(),
        deadline: job
            .file
            .job_timeout_secs
            .map(|s| (s, Instant::now() + Duration::from_secs(s))),
        cx,
    };
    let started_at = Lake::now();
    let mut steps = Vec::new();
    let mut ended: Option<(RunStatus, String)> = None;
    for (index, step) in job.file.steps.iter().enumerate() {
        let label = format!("{}. {}", index + 1, step.label());
        if ended.is_none() && *run.cx.shutdown.borrow() {
            ended = Some((
                RunStatus::Interrupted,
                "shutdown requested; no further steps started".into(),
            ));
        }
        let report = match &ended {
            Some((status, _)) => run.skip(step, label, *status).await?,
            None => {
                let report = run.step(index, step, label).await?;
                if let Some(error) = &report.error {
                    ended = Some((report.status, format!("step {}: {error}", report.label)));
                }
                report
            }
        };
        run.cx.observer.step_finished(index, &report);
        steps.push(report);
    }
    let (status, error) = match ended {
        None => (RunStatus::Ok, None),
        Some((s, e)) => (s, Some(e)),
    };
    let rows = steps.iter().map(|s| s.rows).sum();
    let record = run.record("job", None, started_at, (status, rows, error.clone()), None);
    run.cx.lake.record_runs(&[record]).await?;
    Ok(JobReport {
        run_id: run.run_id,
        job: job.name.clone(),
        scheduled_for: run.cx.scheduled_for,
        status,
        steps,
        error,
        started_at,
        ended_at: Lake::now(),
    })
}

/// One run of a job: its id, its deadline, and what it runs with.
struct JobRun<'a, 'c> {
    job: &'a Job,
    run_id: String,
    /// `job_timeout_secs` and the instant it runs out.
    deadline: Option<(u64, Instant)>,
    cx: RunContext<'c>,
}

impl JobRun<'_, '_> {
    /// A `meta.runs` row of this run ending now: `(status, rows, error)` in `outcome`.
    fn record(
        &self,
        kind: &str,
        target: Option<String>,
        started: DateTime<Utc>,
        outcome: (RunStatus, i64, Option<String>),
        attempt: Option<i32>,
    ) -> RunRecord {
        let (status, rows_written, error) = outcome;
        RunRecord {
            run_id: self.run_id.clone(),
            kind: kind.into(),
            job: self.job.name.clone(),
            target,
            scheduled_for: self.cx.scheduled_for,
            attempt,
            started_at: started,
            ended_at: Lake::now(),
            status,
            rows_written,
            error,
        }
    }

    /// A step not started because the run ended (`why`: shutdown or an earlier failure).
    async fn skip(
        &self,
        step: &Step,
        label: String,
        why: RunStatus,
    ) -> Result<StepReport, ScheduleError> {
        let why = match why {
            RunStatus::Interrupted => "not started: the daemon is shutting down",
            _ => "not started: an earlier step failed",
        };
        let outcome = (RunStatus::Skipped, 0, Some(why.to_string()));
        let record = self.record(step.kind(), Some(label.clone()), Lake::now(), outcome, None);
        self.cx.lake.record_runs(&[record]).await?;
        Ok(StepReport {
            kind: step.kind(),
            label,
            status: RunStatus::Skipped,
            attempts: 0,
            seconds: 0.0,
            rows: 0,
            targets: Vec::new(),
            error: Some(why.into()),
        })
    }

    /// Runs a step with its retries, each attempt recorded; a failed or interrupted step's
    /// report carries its error.
    async fn step(
        &mut self,
        index: usize,
        step: &Step,
        label: String,
    ) -> Result<StepReport, ScheduleError> {
        let clock = Instant::now();
        let mut attempt: u32 = 0;
        let outcome = loop {
            attempt += 1;
            self.cx.observer.attempt_started(index, step, attempt);
            let attempt_started = Lake::now();
            let result = match run_attempt(self.job, step, self.cx.executor, self.deadline).await {
                Attempt::Done(r) => r,
                Attempt::JobTimedOut(secs) => {
                    break Err((
                        format!("job timed out after {secs}s (job_timeout_secs)"),
                        RunStatus::Failed,
                    ));
                }
            };
            let recorded = match &result {
                Ok(out) => (RunStatus::Ok, out.rows, None),
                Err(e) => (RunStatus::Failed, 0, Some(e.clone())),
            };
            let record = self.record(
                step.kind(),
                Some(label.clone()),
                attempt_started,
                recorded,
                Some(attempt as i32),
            );
            self.cx.lake.record_runs(&[record]).await?;
            let error = match result {
                Ok(out) => break Ok(out),
                Err(e) if attempt > self.job.file.retries.count => {
                    break Err((e, RunStatus::Failed));
                }
                Err(e) => e,
            };
            let wait = self.job.file.retries.wait(attempt - 1);
            self.cx.observer.retrying(index, step, &error, wait);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cx.shutdown.wait_for(|stop| *stop) => {
                    break Err((
                        format!("{error} (not retried: shutdown requested)"),
                        RunStatus::Interrupted,
                    ));
                }
            }
        };
        let (status, out, error) = match outcome {
            Ok(out) => (RunStatus::Ok, out, None),
            Err((error, status)) => (status, StepOutput::default(), Some(error)),
        };
        Ok(StepReport {
            kind: step.kind(),
            label,
            status,
            attempts: attempt,
            seconds: clock.elapsed().as_secs_f64(),
            rows: out.rows,
            targets: out.targets,
            error,
        })
    }
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
