//! Prometheus metrics of the daemon, served as text at `/metrics` on `--metrics-listen`.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `macrolake_up` | gauge | | 1 while the daemon runs |
//! | `macrolake_daemon_start_time_seconds` | gauge | | when it started (Unix time) |
//! | `macrolake_job_runs_total` | counter | job, status | runs by outcome: ok, failed, skipped, interrupted |
//! | `macrolake_job_last_success_timestamp_seconds` | gauge | job | end of the last ok run |
//! | `macrolake_job_next_tick_timestamp_seconds` | gauge | job | next scheduled tick |
//! | `macrolake_job_running` | gauge | job | 1 while a run of the job is in progress here |
//! | `macrolake_step_duration_seconds` | summary | job, step | time per step (`_sum`, `_count`) |
//! | `macrolake_rows_ingested_total` | counter | source | rows written by ingest steps |
//! | `macrolake_table_last_success_timestamp_seconds` | gauge | table | last commit of each lake table |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::ScheduleError;
use super::runner::JobReport;

#[derive(Debug, Default)]
struct Inner {
    started: f64,
    runs: BTreeMap<(String, String), u64>,
    last_success: BTreeMap<String, f64>,
    next_tick: BTreeMap<String, f64>,
    running: BTreeMap<String, bool>,
    step_seconds: BTreeMap<(String, String), (f64, u64)>,
    rows: BTreeMap<String, u64>,
    tables: BTreeMap<String, f64>,
}

/// The daemon's metrics registry.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// Escapes a label value per the Prometheus text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// A registry for a daemon started at `started`.
    pub fn new(started: DateTime<Utc>) -> Self {
        let m = Self::default();
        m.lock().started = secs(started);
        m
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a finished run and its steps.
    pub fn observe(&self, report: &JobReport) {
        let mut m = self.lock();
        *m.runs
            .entry((report.job.clone(), report.status.as_str().into()))
            .or_default() += 1;
        if report.status == crate::lake::runs::RunStatus::Ok {
            m.last_success
                .insert(report.job.clone(), secs(report.ended_at));
        }
        for step in report.steps.iter().filter(|s| s.attempts > 0) {
            let e = m
                .step_seconds
                .entry((report.job.clone(), step.label.clone()))
                .or_default();
            e.0 += step.seconds;
            e.1 += 1;
            if step.kind == "ingest" {
                for (source, rows) in &step.targets {
                    *m.rows.entry(source.clone()).or_default() += (*rows).max(0) as u64;
                }
            }
        }
    }

    /// Counts ticks recorded as skipped.
    pub fn skipped(&self, job: &str, n: usize) {
        *self
            .lock()
            .runs
            .entry((job.into(), "skipped".into()))
            .or_default() += n as u64;
    }

    /// Sets a job's next tick.
    pub fn next_tick(&self, job: &str, at: Option<DateTime<Utc>>) {
        let mut m = self.lock();
        match at {
            Some(t) => m.next_tick.insert(job.into(), secs(t)),
            None => m.next_tick.remove(job),
        };
    }

    /// Marks a job running here or not.
    pub fn running(&self, job: &str, running: bool) {
        self.lock().running.insert(job.into(), running);
    }

    /// Replaces the per-table last-commit times.
    pub fn tables(&self, times: Vec<(String, DateTime<Utc>)>) {
        self.lock().tables = times.into_iter().map(|(t, at)| (t, secs(at))).collect();
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{labels} {value}");
            }
        };
        family(
            "macrolake_up",
            "gauge",
            "1 while the macrolake daemon runs.",
            vec![("macrolake_up".into(), 1.0)],
        );
        family(
            "macrolake_daemon_start_time_seconds",
            "gauge",
            "When the daemon started (Unix time).",
            vec![("macrolake_daemon_start_time_seconds".into(), m.started)],
        );
        family(
            "macrolake_job_runs_total",
            "counter",
            "Job runs by outcome (ok, failed, skipped, interrupted).",
            m.runs
                .iter()
                .map(|((job, status), n)| {
                    (
                        format!(
                            "macrolake_job_runs_total{{job=\"{}\",status=\"{}\"}}",
                            label(job),
                            label(status)
                        ),
                        *n as f64,
                    )
                })
                .collect(),
        );
        let per_job = |name: &str, map: &BTreeMap<String, f64>| -> Vec<(String, f64)> {
            map.iter()
                .map(|(job, v)| (format!("{name}{{job=\"{}\"}}", label(job)), *v))
                .collect()
        };
        family(
            "macrolake_job_last_success_timestamp_seconds",
            "gauge",
            "End of the last successful run of each job (Unix time).",
            per_job(
                "macrolake_job_last_success_timestamp_seconds",
                &m.last_success,
            ),
        );
        family(
            "macrolake_job_next_tick_timestamp_seconds",
            "gauge",
            "Next scheduled tick of each job (Unix time).",
            per_job("macrolake_job_next_tick_timestamp_seconds", &m.next_tick),
        );
        let running: BTreeMap<String, f64> = m
            .running
            .iter()
            .map(|(j, r)| (j.clone(), if *r { 1.0 } else { 0.0 }))
            .collect();
        family(
            "macrolake_job_running",
            "gauge",
            "1 while a run of the job is in progress in this daemon.",
            per_job("macrolake_job_running", &running),
        );
        let mut steps = Vec::new();
        for ((job, step), (sum, count)) in &m.step_seconds {
            let l = format!("job=\"{}\",step=\"{}\"", label(job), label(step));
            steps.push((format!("macrolake_step_duration_seconds_sum{{{l}}}"), *sum));
            steps.push((
                format!("macrolake_step_duration_seconds_count{{{l}}}"),
                *count as f64,
            ));
        }
        family(
            "macrolake_step_duration_seconds",
            "summary",
            "Time spent per job step, over all attempts and retry waits.",
            steps,
        );
        family(
            "macrolake_rows_ingested_total",
            "counter",
            "Rows written by ingest steps, per source.",
            m.rows
                .iter()
                .map(|(s, n)| {
                    (
                        format!("macrolake_rows_ingested_total{{source=\"{}\"}}", label(s)),
                        *n as f64,
                    )
                })
                .collect(),
        );
        family(
            "macrolake_table_last_success_timestamp_seconds",
            "gauge",
            "Time of the last commit to each lake table (Unix time).",
            m.tables
                .iter()
                .map(|(t, v)| {
                    (
                        format!(
                            "macrolake_table_last_success_timestamp_seconds{{table=\"{}\"}}",
                            label(t)
                        ),
                        *v,
                    )
                })
                .collect(),
        );
        out
    }
}

/// Serves `GET /metrics` on `addr` until `shutdown` turns true; returns the bound address.
pub async fn serve(
    addr: &str,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ScheduleError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ScheduleError::Listen {
            addr: addr.into(),
            source,
        })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ScheduleError::Listen {
            addr: addr.into(),
            source,
        })?;
    let task = tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let Ok((mut socket, _)) = conn else { continue };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                // Read the request head (enough for the request line) with a time limit.
                let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    while len < buf.len() {
                        match socket.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => len += n,
                        }
                        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let head = String::from_utf8_lossy(&buf[..len]);
                let mut parts = head.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let path = path.split('?').next().unwrap_or("");
                let (status, ctype, body) = match (method, path) {
                    ("GET", "/metrics") => (
                        "200 OK",
                        "text/plain; version=0.0.4; charset=utf-8",
                        metrics.render(),
                    ),
                    ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".into()),
                    ("GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".into()),
                    _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok((bound, task))
}
