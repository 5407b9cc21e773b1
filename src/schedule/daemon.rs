//! `macrolake daemon`: fires every enabled job on its schedule.
//!
//! Each poll (at the next tick, and at least every minute so a wall-clock jump is never slept
//! through) reads each job's last handled tick from the lake, works out the ticks due since, and
//! applies the job's misfire policy to those more than `misfire_grace_secs` late. Before running
//! it takes the job's lease in the lake (see [`super::lease`]), re-reads the state under the
//! lease, and keeps the lease alive with a heartbeat while the run goes. A tick that comes while
//! the job is still running here follows the overlap policy. On shutdown no new run or step
//! starts; the running step finishes (or hits its timeout) and the run is recorded interrupted.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::lease::{Acquire, Coordinator, Lease};
use super::metrics::Metrics;
use super::runner::{self, LogObserver, RunContext, StepExecutor};
use super::ticks::{ticks_after, ticks_between};
use super::{Job, Overlap, ScheduleError};
use crate::lake::Lake;
use crate::lake::runs::RunStatus;

/// Where the daemon gets the time (tests drive it by hand).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What one poll decided for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// First time this lake sees the job: its schedule starts now (no back-fill).
    FirstSeen {
        /// The job.
        job: String,
    },
    /// A run started for these ticks (one run each, in order).
    Started {
        /// The job.
        job: String,
        /// The ticks.
        ticks: Vec<DateTime<Utc>>,
    },
    /// Ticks recorded as skipped in `meta.runs`.
    Skipped {
        /// The job.
        job: String,
        /// The ticks.
        ticks: Vec<DateTime<Utc>>,
        /// Why (also stored as the row's error).
        reason: String,
    },
    /// Ticks queued behind the running run (overlap = queue).
    Queued {
        /// The job.
        job: String,
        /// The ticks.
        ticks: Vec<DateTime<Utc>>,
    },
    /// Another daemon holds the job's lease; it handles the due ticks.
    HeldElsewhere {
        /// The job.
        job: String,
        /// The other holder.
        holder: String,
    },
}

struct Running {
    handle: JoinHandle<()>,
    /// Newest tick handed to the task, skipped or queued while it runs.
    until: DateTime<Utc>,
}

/// The scheduler.
pub struct Daemon {
    jobs: Vec<Job>,
    lake: Lake,
    coord: Coordinator,
    executor: Arc<dyn StepExecutor>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    running: HashMap<String, Running>,
    queued: HashMap<String, Vec<DateTime<Utc>>>,
    /// Longest sleep between polls.
    pub max_sleep: std::time::Duration,
}

impl Daemon {
    /// A daemon over `jobs` in `lake`; `shutdown` turning true stops it.
    pub fn new(
        jobs: Vec<Job>,
        lake: &Lake,
        coord: Coordinator,
        executor: Arc<dyn StepExecutor>,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let metrics = Arc::new(Metrics::new(clock.now()));
        Self {
            jobs,
            lake: lake.clone(),
            coord,
            executor,
            clock,
            metrics,
            shutdown,
            running: HashMap::new(),
            queued: HashMap::new(),
            max_sleep: std::time::Duration::from_secs(60),
        }
    }

    /// The metrics registry (to serve it).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Evaluates every enabled job once at the clock's now and starts what is due.
    pub async fn poll(&mut self) -> Result<Vec<Action>, ScheduleError> {
        let now = self.clock.now();
        let mut actions = Vec::new();
        let jobs: Vec<Job> = self
            .jobs
            .iter()
            .filter(|j| j.file.enabled)
            .cloned()
            .collect();
        for job in jobs {
            self.metrics
                .next_tick(&job.name, ticks_after(&job.schedule, job.tz, now).next());
            if *self.shutdown.borrow() {
                break;
            }
            if let Some(action) = self.poll_job(&job, now).await? {
                tracing::info!(?action, "schedule");
                actions.push(action);
            }
        }
        Ok(actions)
    }

    /// Records `ticks` of `name` as skipped for `reason` and moves its last tick past them.
    async fn skip(
        &mut self,
        name: &str,
        ticks: Vec<DateTime<Utc>>,
        reason: String,
    ) -> Result<Action, ScheduleError> {
        runner::record_skipped(&self.lake, name, &ticks, &reason).await?;
        self.metrics.skipped(name, ticks.len());
        if let Some(newest) = ticks.last() {
            self.coord.set_last_tick(name, *newest).await?;
        }
        Ok(Action::Skipped {
            job: name.to_string(),
            ticks,
            reason,
        })
    }

    /// Ticks that came due while a run of `job` is still going: queued or skipped by its
    /// `overlap`.
    async fn overlapping(
        &mut self,
        job: &Job,
        now: DateTime<Utc>,
    ) -> Result<Option<Action>, ScheduleError> {
        let name = job.name.clone();
        let Some(r) = self.running.get_mut(&name) else {
            return Ok(None);
        };
        let due = ticks_between(&job.schedule, job.tz, r.until, now);
        let Some(newest) = due.last().copied() else {
            return Ok(None);
        };
        r.until = newest;
        Ok(Some(match job.file.overlap {
            Overlap::Queue => {
                self.queued.entry(name.clone()).or_default().extend(&due);
                Action::Queued {
                    job: name,
                    ticks: due,
                }
            }
            Overlap::Skip => {
                let reason = "the previous run was still going (overlap = skip)".to_string();
                self.skip(&name, due, reason).await?
            }
        }))
    }

    async fn poll_job(
        &mut self,
        job: &Job,
        now: DateTime<Utc>,
    ) -> Result<Option<Action>, ScheduleError> {
        let name = job.name.clone();
        if self
            .running
            .get(&name)
            .is_some_and(|r| !r.handle.is_finished())
        {
            return self.overlapping(job, now).await;
        }
        let floor = self.running.remove(&name).map(|r| r.until);
        let queued = self.queued.remove(&name).unwrap_or_default();
        let state = self.coord.last_tick(&name).await?;
        let Some(last) = state.max(floor) else {
            return self.first_seen(job, now).await;
        };
        if queued.is_empty()
            && ticks_after(&job.schedule, job.tz, last)
                .next()
                .is_none_or(|t| t > now)
        {
            return Ok(None);
        }
        let lease = match self.coord.acquire(&name, now).await? {
            Acquire::Acquired(lease) => lease,
            Acquire::Held(held) => {
                let holder = held.holder;
                self.queued.insert(name.clone(), queued);
                return Ok(Some(Action::HeldElsewhere { job: name, holder }));
            }
        };
        // Under the lease, the state is authoritative: another daemon may have run the tick.
        let state = self.coord.last_tick(&name).await?;
        let last = state.max(floor).unwrap_or(last);
        let due: Vec<_> = ticks_between(&job.schedule, job.tz, last, now)
            .into_iter()
            .filter(|t| !queued.contains(t))
            .collect();
        let plan = job.file.misfire.plan(
            &due,
            now,
            Duration::seconds(job.file.misfire_grace_secs as i64),
            job.file.misfire_max_runs,
        );
        let mut run: Vec<_> = queued.into_iter().chain(plan.run).collect();
        run.sort();
        run.dedup();
        let mut action = None;
        if !plan.skip.is_empty() {
            let reason = format!(
                "missed: no daemon was running at the tick (misfire = {})",
                format!("{:?}", job.file.misfire).to_lowercase()
            );
            action = Some(self.skip(&name, plan.skip.clone(), reason).await?);
        }
        let Some(until) = run.last().copied() else {
            self.coord.release(lease, self.clock.now()).await?;
            return Ok(action);
        };
        let handle = self.spawn_run(job.clone(), lease, run.clone());
        self.running.insert(name.clone(), Running { handle, until });
        // A run supersedes a skip notice in the returned action; both are in meta.runs.
        Ok(Some(Action::Started {
            job: name,
            ticks: run,
        }))
    }

    async fn first_seen(
        &mut self,
        job: &Job,
        now: DateTime<Utc>,
    ) -> Result<Option<Action>, ScheduleError> {
        match self.coord.acquire(&job.name, now).await? {
            Acquire::Acquired(lease) => {
                if self.coord.last_tick(&job.name).await?.is_none() {
                    self.coord.set_last_tick(&job.name, now).await?;
                }
                self.coord.release(lease, now).await?;
                Ok(Some(Action::FirstSeen {
                    job: job.name.clone(),
                }))
            }
            Acquire::Held(held) => Ok(Some(Action::HeldElsewhere {
                job: job.name.clone(),
                holder: held.holder,
            })),
        }
    }

    fn spawn_run(&self, job: Job, lease: Lease, ticks: Vec<DateTime<Utc>>) -> JoinHandle<()> {
        let lake = self.lake.clone();
        let coord = self.coord.clone();
        let executor = self.executor.clone();
        let clock = self.clock.clone();
        let metrics = self.metrics.clone();
        let daemon_stop = self.shutdown.clone();
        tokio::spawn(async move {
            let (held, stop_rx) = Held::start(coord.clone(), lease, clock, daemon_stop);
            metrics.running(&job.name, true);
            let observer = LogObserver {
                job: job.name.clone(),
            };
            for tick in ticks {
                if *stop_rx.borrow() {
                    break;
                }
                let cx = RunContext {
                    lake: &lake,
                    executor: executor.as_ref(),
                    observer: &observer,
                    shutdown: stop_rx.clone(),
                    scheduled_for: Some(tick),
                };
                let outcome = runner::run_job(&job, cx).await;
                // Tables first: a scraper that sees the run counted also sees its commits.
                refresh_table_metrics(&lake, &metrics).await;
                match outcome {
                    Ok(report) => {
                        metrics.observe(&report);
                        if report.status == RunStatus::Ok {
                            tracing::info!(job = %job.name, %tick, "run ok");
                        } else {
                            tracing::error!(job = %job.name, %tick, status = report.status.as_str(),
                                error = report.error.as_deref().unwrap_or(""), "run did not succeed");
                        }
                        if let Err(e) = coord.set_last_tick(&job.name, tick).await {
                            tracing::error!(job = %job.name, "cannot record the tick as done: {e}");
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!(job = %job.name, %tick, "cannot record the run: {e}");
                        break;
                    }
                }
            }
            metrics.running(&job.name, false);
            if let Err(e) = held.release().await {
                tracing::warn!(job = %job.name, "cannot release the lease (it will expire): {e}");
            }
        })
    }

    /// Waits for every run in progress to end.
    pub async fn wait_idle(&mut self) {
        for (_, r) in self.running.iter_mut() {
            let _ = (&mut r.handle).await;
        }
    }

    /// Polls until shutdown, sleeping until the next tick (at most `max_sleep`); then lets the
    /// running steps end and returns.
    pub async fn run(mut self) -> Result<(), ScheduleError> {
        refresh_table_metrics(&self.lake, &self.metrics).await;
        let mut shutdown = self.shutdown.clone();
        loop {
            if let Err(e) = self.poll().await {
                // A flaky store must not kill the daemon: log and poll again.
                tracing::error!("poll failed (retrying): {e}");
            }
            let now = self.clock.now();
            let next = self
                .jobs
                .iter()
                .filter(|j| j.file.enabled)
                .filter_map(|j| ticks_after(&j.schedule, j.tz, now).next())
                .min();
            let wait = next
                .and_then(|t| (t - now).to_std().ok())
                .map_or(self.max_sleep, |d| d.min(self.max_sleep))
                + std::time::Duration::from_millis(20);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        tracing::info!(
            running = self
                .running
                .values()
                .filter(|r| !r.handle.is_finished())
                .count(),
            "shutting down: no new steps; waiting for running steps to end"
        );
        self.wait_idle().await;
        Ok(())
    }
}

/// A lease kept alive by a heartbeat task while a run goes.
pub(super) struct Held {
    coord: Coordinator,
    clock: Arc<dyn Clock>,
    done: oneshot::Sender<()>,
    heartbeat: JoinHandle<Option<Lease>>,
}

impl Held {
    /// Starts renewing `lease`; the returned receiver turns true when the run must stop starting
    /// steps (`shutdown` turned true, or the lease was lost).
    pub(super) fn start(
        coord: Coordinator,
        lease: Lease,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, watch::Receiver<bool>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done, done_rx) = oneshot::channel();
        let heartbeat = tokio::spawn(heartbeat(
            coord.clone(),
            lease,
            clock.clone(),
            shutdown,
            stop_tx,
            done_rx,
        ));
        let held = Self {
            coord,
            clock,
            done,
            heartbeat,
        };
        (held, stop_rx)
    }

    /// Stops the heartbeat and gives the lease up (unless it was lost).
    pub(super) async fn release(self) -> Result<(), ScheduleError> {
        let _ = self.done.send(());
        match self.heartbeat.await {
            Ok(Some(lease)) => self.coord.release(lease, self.clock.now()).await,
            _ => Ok(()),
        }
    }
}

/// Renews the lease every third of its time-to-live until `done`; forwards a daemon shutdown
/// and a lost lease to the run as `stop`. Returns the lease if still held.
async fn heartbeat(
    coord: Coordinator,
    mut lease: Lease,
    clock: Arc<dyn Clock>,
    mut daemon_stop: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    mut done: oneshot::Receiver<()>,
) -> Option<Lease> {
    let period = (coord.ttl() / 3)
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(10))
        .max(std::time::Duration::from_millis(100));
    let mut forwarded = *daemon_stop.borrow_and_update();
    if forwarded {
        let _ = stop.send(true);
    }
    loop {
        tokio::select! {
            _ = &mut done => return Some(lease),
            changed = daemon_stop.changed(), if !forwarded => {
                // A dropped sender means no shutdown will come: stop listening.
                forwarded = changed.is_err() || *daemon_stop.borrow();
                if changed.is_ok() && forwarded {
                    let _ = stop.send(true);
                }
            }
            _ = tokio::time::sleep(period) => {
                match coord.renew(&mut lease, clock.now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(job = %lease.job, "lease lost to another daemon; stopping after the current step");
                        let _ = stop.send(true);
                        let _ = done.await;
                        return None;
                    }
                    Err(e) => tracing::warn!(job = %lease.job, "lease renewal failed (will retry): {e}"),
                }
            }
        }
    }
}

/// Sets each table's last-commit time in the metrics from the Delta logs.
pub async fn refresh_table_metrics(lake: &Lake, metrics: &Metrics) {
    let Ok(tables) = lake.tables().await else {
        return;
    };
    let mut times = Vec::new();
    for table in tables {
        if let Ok(Some(at)) = lake.last_commit(&table).await {
            times.push((table.to_string(), at));
        }
    }
    metrics.tables(times);
}
