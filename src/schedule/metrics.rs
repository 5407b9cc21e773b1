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
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
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
        let mut out = Exposition::default();
        out.family(
            "macrolake_up",
            "gauge",
            "1 while the macrolake daemon runs.",
        )
        .sample("", &[], 1.0);
        out.family(
            "macrolake_daemon_start_time_seconds",
            "gauge",
            "When the daemon started (Unix time).",
        )
        .sample("", &[], m.started);
        let f = out.family(
            "macrolake_job_runs_total",
            "counter",
            "Job runs by outcome (ok, failed, skipped, interrupted).",
        );
        for ((job, status), n) in &m.runs {
            f.sample("", &[("job", job), ("status", status)], *n as f64);
        }
        let running: BTreeMap<String, f64> = m
            .running
            .iter()
            .map(|(j, r)| (j.clone(), if *r { 1.0 } else { 0.0 }))
            .collect();
        for (name, help, values) in [
            (
                "macrolake_job_last_success_timestamp_seconds",
                "End of the last successful run of each job (Unix time).",
                &m.last_success,
            ),
            (
                "macrolake_job_next_tick_timestamp_seconds",
                "Next scheduled tick of each job (Unix time).",
                &m.next_tick,
            ),
            (
                "macrolake_job_running",
                "1 while a run of the job is in progress in this daemon.",
                &running,
            ),
        ] {
            let f = out.family(name, "gauge", help);
            for (job, v) in values {
                f.sample("", &[("job", job)], *v);
            }
        }
        let f = out.family(
            "macrolake_step_duration_seconds",
            "summary",
            "Time spent per job step, over all attempts and retry waits.",
        );
        for ((job, step), (sum, count)) in &m.step_seconds {
            let labels = [("job", job.as_str()), ("step", step.as_str())];
            f.sample("_sum", &labels, *sum);
            f.sample("_count", &labels, *count as f64);
        }
        let f = out.family(
            "macrolake_rows_ingested_total",
            "counter",
            "Rows written by ingest steps, per source.",
        );
        for (source, n) in &m.rows {
            f.sample("", &[("source", source)], *n as f64);
        }
        let f = out.family(
            "macrolake_table_last_success_timestamp_seconds",
            "gauge",
            "Time of the last commit to each lake table (Unix time).",
        );
        for (table, v) in &m.tables {
            f.sample("", &[("table", table)], *v);
        }
        out.text
    }
}

/// Text being written in the exposition format; `family` starts a metric, `sample` adds a line
/// to the current one.
#[derive(Default)]
struct Exposition {
    text: String,
    name: String,
}

impl Exposition {
    /// Starts the metric `name` with its `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self.name = name.to_string();
        self
    }

    /// One sample of the current metric: `suffix` (`_sum`, `_count`) after its name, labels
    /// escaped.
    fn sample(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(self.text, "{}{suffix}{labels} {value}", self.name);
        self
    }
}

/// Answers one request: `GET /metrics`, `GET /healthz`; 404 for other paths, 405 for other
/// methods.
fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, _) => (StatusCode::NOT_FOUND, "text/plain", "try /metrics\n".into()),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// Serves `GET /metrics` on `addr` until `shutdown` turns true; returns the bound address.
pub async fn serve(
    addr: &str,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ScheduleError> {
    let listen_err = |source| ScheduleError::Listen {
        addr: addr.into(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(listen_err)?;
    let bound = listener.local_addr().map_err(listen_err)?;
    let handler = move |req: Request<Incoming>, _peer| {
        let response = respond(&metrics, &req);
        async move { response }
    };
    let task = tokio::spawn(crate::web::server::serve(
        "metrics", listener, None, handler, shutdown,
    ));
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_metrics_and_health_and_refuses_the_rest() {
        let metrics = Arc::new(Metrics::new(Utc::now()));
        metrics.skipped("nightly", 2);
        let (stop, shutdown) = watch::channel(false);
        let (addr, task) = serve("127.0.0.1:0", metrics, shutdown).await.unwrap();
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("http://{addr}{path}")).send();
        // Two requests on one kept-alive connection, as Prometheus scrapes.
        for _ in 0..2 {
            let r = get("/metrics").await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain; version=0.0.4")
            );
            let text = r.text().await.unwrap();
            assert!(text.contains("macrolake_up 1"), "{text}");
            assert!(
                text.contains("macrolake_job_runs_total{job=\"nightly\",status=\"skipped\"} 2"),
                "{text}"
            );
        }
        assert_eq!(get("/healthz").await.unwrap().text().await.unwrap(), "ok\n");
        assert_eq!(get("/nope").await.unwrap().status(), 404);
        let post = client
            .post(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 405);
        stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("the server stops on shutdown")
            .unwrap();
    }
}
