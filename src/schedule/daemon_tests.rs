//! Daemon tests on a hand-driven clock: no test sleeps through real minutes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{Notify, watch};

use super::daemon::{Action, Clock, Daemon};
use super::lease::{Acquire, Coordinator};
use super::runner::{StepExecutor, StepOutput};
use super::{Job, Step};
use crate::lake::Lake;

struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Counts runs; optionally blocks each step until released, or fails every step.
#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
    gate: Option<Arc<Notify>>,
    fail: bool,
}

#[async_trait::async_trait]
impl StepExecutor for Fake {
    async fn run_step(&self, _step: &Step) -> Result<StepOutput, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        if self.fail {
            return Err("upstream said no".into());
        }
        Ok(StepOutput {
            rows: 7,
            targets: vec![("fred".into(), 7)],
        })
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn job(extra: &str) -> Job {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hourly.toml");
    std::fs::write(
        &p,
        format!(
            "cron = \"0 * * * *\"\ntimezone = \"UTC\"\nmisfire_grace_secs = 60\n{extra}\n\
             [[steps]]\nkind = \"ingest\"\nsources = [\"fred\"]\n"
        ),
    )
    .unwrap();
    Job::load(&p).unwrap()
}

struct Rig {
    lake: Lake,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(start: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            lake: Lake::open(dir.path().to_str().unwrap(), false).unwrap(),
            clock: Arc::new(ManualClock(Mutex::new(utc(start)))),
            _dir: dir,
        }
    }

    fn daemon(&self, holder: &str, job: &Job, exec: Arc<Fake>) -> (Daemon, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        let coord = Coordinator::new(&self.lake, holder.into(), Duration::seconds(120));
        let d = Daemon::new(
            vec![job.clone()],
            &self.lake,
            coord,
            exec,
            self.clock.clone(),
            rx,
        );
        (d, tx)
    }

    async fn runs(&self) -> Vec<String> {
        let session = self.lake.session(None, &[]).await.unwrap();
        let sql = "SELECT status || ' ' || CAST(date_format(scheduled_for, '%H:%M') AS VARCHAR) \
                   FROM meta.runs WHERE kind = 'job' ORDER BY scheduled_for, started_at";
        let batches = crate::query::collect(&session.ctx, sql).await.unwrap();
        crate::query::render_rows(&batches)
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    }
}

async fn missed_five(policy: &str) -> (Vec<Action>, Vec<String>, usize) {
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let j = job(&format!("misfire = \"{policy}\"\nmisfire_max_runs = 2"));
    let exec = Arc::new(Fake::default());
    let (mut d, _tx) = rig.daemon("a", &j, exec.clone());
    assert_eq!(
        d.poll().await.unwrap(),
        vec![Action::FirstSeen {
            job: "hourly".into()
        }]
    );
    drop(d);
    // Down from 07:30 to 12:00:20: ticks 08..11 are missed, 12:00 is on time.
    rig.clock.set(utc("2026-06-05T12:00:20Z"));
    let (mut d, _tx) = rig.daemon("b", &j, exec.clone());
    let actions = d.poll().await.unwrap();
    d.wait_idle().await;
    (actions, rig.runs().await, exec.calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn misfire_skip_records_missed_ticks_and_runs_the_on_time_one() {
    let (actions, runs, calls) = missed_five("skip").await;
    assert_eq!(
        runs,
        [
            "skipped 08:00",
            "skipped 09:00",
            "skipped 10:00",
            "skipped 11:00",
            "ok 12:00"
        ]
    );
    assert_eq!(calls, 1);
    assert!(matches!(&actions[0], Action::Started { ticks, .. } if ticks.len() == 1));
}

#[tokio::test]
async fn misfire_latest_runs_once() {
    let (_, runs, calls) = missed_five("latest").await;
    assert_eq!(
        runs,
        [
            "skipped 08:00",
            "skipped 09:00",
            "skipped 10:00",
            "skipped 11:00",
            "ok 12:00"
        ]
    );
    assert_eq!(calls, 1);
    // All missed, none on time: latest still runs the newest.
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let exec = Arc::new(Fake::default());
    let (mut d, _tx) = rig.daemon("a", &job(""), exec.clone());
    d.poll().await.unwrap();
    rig.clock.set(utc("2026-06-05T10:40:00Z"));
    d.poll().await.unwrap();
    d.wait_idle().await;
    assert_eq!(
        rig.runs().await,
        ["skipped 08:00", "skipped 09:00", "ok 10:00"]
    );
}

#[tokio::test]
async fn misfire_all_runs_each_up_to_the_cap() {
    let (_, runs, calls) = missed_five("all").await;
    assert_eq!(
        runs,
        [
            "skipped 08:00",
            "skipped 09:00",
            "ok 10:00",
            "ok 11:00",
            "ok 12:00"
        ],
        "the 2 newest missed ticks (misfire_max_runs) plus the on-time one"
    );
    assert_eq!(calls, 3);
}

#[tokio::test]
async fn a_restart_after_a_run_does_not_repeat_it() {
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let j = job("");
    let exec = Arc::new(Fake::default());
    let (mut d, _tx) = rig.daemon("a", &j, exec.clone());
    d.poll().await.unwrap();
    rig.clock.set(utc("2026-06-05T08:00:01Z"));
    assert!(matches!(
        &d.poll().await.unwrap()[..],
        [Action::Started { .. }]
    ));
    d.wait_idle().await;
    drop(d);
    // Restarted a few seconds later, and again later the same hour: nothing to do.
    for at in ["2026-06-05T08:00:05Z", "2026-06-05T08:59:00Z"] {
        rig.clock.set(utc(at));
        let (mut d, _tx) = rig.daemon("a2", &j, exec.clone());
        assert_eq!(d.poll().await.unwrap(), vec![]);
    }
    assert_eq!(exec.calls.load(Ordering::SeqCst), 1);
    assert_eq!(rig.runs().await, ["ok 08:00"]);
}

#[tokio::test]
async fn overlap_skip_records_the_skip_and_queue_runs_after() {
    for (policy, expected) in [
        ("skip", vec!["ok 08:00", "skipped 09:00"]),
        ("queue", vec!["ok 08:00", "ok 09:00"]),
    ] {
        let rig = Rig::new("2026-06-05T07:30:00Z");
        let j = job(&format!("overlap = \"{policy}\""));
        let gate = Arc::new(Notify::new());
        let exec = Arc::new(Fake {
            gate: Some(gate.clone()),
            ..Fake::default()
        });
        let (mut d, _tx) = rig.daemon("a", &j, exec.clone());
        d.poll().await.unwrap();
        rig.clock.set(utc("2026-06-05T08:00:01Z"));
        d.poll().await.unwrap();
        // 08:00 is still running at 09:00.
        rig.clock.set(utc("2026-06-05T09:00:01Z"));
        let actions = d.poll().await.unwrap();
        match policy {
            "skip" => assert!(
                matches!(&actions[..], [Action::Skipped { .. }]),
                "{actions:?}"
            ),
            _ => assert!(
                matches!(&actions[..], [Action::Queued { .. }]),
                "{actions:?}"
            ),
        }
        gate.notify_one();
        d.wait_idle().await;
        // The queued tick starts at the next poll, even though it is now late.
        rig.clock.set(utc("2026-06-05T09:10:00Z"));
        d.poll().await.unwrap();
        gate.notify_one();
        d.wait_idle().await;
        let mut runs = rig.runs().await;
        runs.sort();
        assert_eq!(runs, expected, "overlap = {policy}");
    }
}

#[tokio::test]
async fn two_daemons_on_one_lake_run_each_tick_once() {
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let j = job("");
    let exec = Arc::new(Fake::default());
    let (mut a, _ta) = rig.daemon("a", &j, exec.clone());
    let (mut b, _tb) = rig.daemon("b", &j, exec.clone());
    a.poll().await.unwrap();
    b.poll().await.unwrap();
    for hour in 8..=11 {
        rig.clock.set(utc(&format!("2026-06-05T{hour:02}:00:02Z")));
        let (ra, rb) = tokio::join!(a.poll(), b.poll());
        let started = [ra.unwrap(), rb.unwrap()]
            .iter()
            .flatten()
            .filter(|x| matches!(x, Action::Started { .. }))
            .count();
        assert!(started <= 1, "hour {hour}");
        a.wait_idle().await;
        b.wait_idle().await;
        // Whoever lost the race sees the tick done afterwards.
        rig.clock.set(utc(&format!("2026-06-05T{hour:02}:00:30Z")));
        let (ra, rb) = tokio::join!(a.poll(), b.poll());
        assert!(
            ra.unwrap().is_empty() && rb.unwrap().is_empty(),
            "hour {hour}"
        );
    }
    assert_eq!(exec.calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        rig.runs().await,
        ["ok 08:00", "ok 09:00", "ok 10:00", "ok 11:00"]
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let j = job("");
    let exec = Arc::new(Fake::default());
    let (mut d, _tx) = rig.daemon("b", &j, exec.clone());
    d.poll().await.unwrap();
    // Daemon "a" took the lease at 08:00:00 and crashed (never renewed or released).
    let crashed = Coordinator::new(&rig.lake, "a".into(), Duration::seconds(120));
    let t0 = utc("2026-06-05T08:00:00Z");
    assert!(matches!(
        crashed.acquire("hourly", t0).await.unwrap(),
        Acquire::Acquired(_)
    ));
    rig.clock.set(utc("2026-06-05T08:01:00Z"));
    assert_eq!(
        d.poll().await.unwrap(),
        vec![Action::HeldElsewhere {
            job: "hourly".into(),
            holder: "a".into()
        }]
    );
    rig.clock.set(utc("2026-06-05T08:02:01Z"));
    assert!(matches!(
        &d.poll().await.unwrap()[..],
        [Action::Started { .. }]
    ));
    d.wait_idle().await;
    assert_eq!(rig.runs().await, ["ok 08:00"]);
}

#[tokio::test]
async fn shutdown_lets_the_step_finish_and_records_the_run_interrupted() {
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("two.toml");
    std::fs::write(
        &p,
        "cron = \"0 * * * *\"\ntimezone = \"UTC\"\n[[steps]]\nkind = \"ingest\"\n\
         [[steps]]\nkind = \"build\"\n",
    )
    .unwrap();
    let j = Job::load(&p).unwrap();
    let gate = Arc::new(Notify::new());
    let exec = Arc::new(Fake {
        gate: Some(gate.clone()),
        ..Fake::default()
    });
    let (mut d, stop) = rig.daemon("a", &j, exec.clone());
    d.poll().await.unwrap();
    rig.clock.set(utc("2026-06-05T08:00:01Z"));
    d.poll().await.unwrap();
    while exec.calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    stop.send(true).unwrap();
    // Give the heartbeat a moment to forward the stop before the step ends.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    gate.notify_one();
    d.wait_idle().await;
    assert_eq!(
        exec.calls.load(Ordering::SeqCst),
        1,
        "the build never started"
    );
    assert_eq!(rig.runs().await, ["interrupted 08:00"]);
    let session = rig.lake.session(None, &[]).await.unwrap();
    let steps = crate::query::collect(
        &session.ctx,
        "SELECT kind, status FROM meta.runs WHERE kind <> 'job' ORDER BY started_at",
    )
    .await
    .unwrap();
    assert_eq!(
        crate::query::render_rows(&steps),
        vec![vec!["ingest", "ok"], vec!["build", "skipped"]]
    );
}

#[tokio::test]
async fn a_failing_step_is_retried_then_failed_and_later_steps_skipped() {
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("flaky.toml");
    std::fs::write(
        &p,
        "cron = \"0 * * * *\"\ntimezone = \"UTC\"\nretries = { count = 2, base_secs = 0 }\n\
         [[steps]]\nkind = \"ingest\"\n[[steps]]\nkind = \"build\"\n",
    )
    .unwrap();
    let j = Job::load(&p).unwrap();
    let exec = Arc::new(Fake {
        fail: true,
        ..Fake::default()
    });
    let (mut d, _tx) = rig.daemon("a", &j, exec.clone());
    d.poll().await.unwrap();
    rig.clock.set(utc("2026-06-05T08:00:01Z"));
    d.poll().await.unwrap();
    d.wait_idle().await;
    assert_eq!(exec.calls.load(Ordering::SeqCst), 3, "1 try + 2 retries");
    assert_eq!(rig.runs().await, ["failed 08:00"]);
    let session = rig.lake.session(None, &[]).await.unwrap();
    let steps = crate::query::collect(
        &session.ctx,
        "SELECT kind, status, COALESCE(CAST(attempt AS VARCHAR), '-') FROM meta.runs \
         WHERE kind <> 'job' ORDER BY started_at",
    )
    .await
    .unwrap();
    assert_eq!(
        crate::query::render_rows(&steps),
        vec![
            vec!["ingest", "failed", "1"],
            vec!["ingest", "failed", "2"],
            vec!["ingest", "failed", "3"],
            vec!["build", "skipped", "-"],
        ]
    );
}

/// A daemon that saw the hourly job at 07:30 and, polled at 10:00, started its run (the two
/// missed ticks skipped).
async fn hourly_run_started(rig: &Rig) -> (Daemon, watch::Sender<bool>) {
    let exec = Arc::new(Fake::default());
    let (mut d, tx) = rig.daemon("a", &job("misfire = \"skip\""), exec);
    d.poll().await.unwrap();
    rig.clock.set(utc("2026-06-05T10:00:01Z"));
    d.poll().await.unwrap();
    (d, tx)
}

#[tokio::test]
async fn metrics_count_runs_and_rows() {
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let (mut d, _tx) = hourly_run_started(&rig).await;
    d.wait_idle().await;
    let text = d.metrics().render();
    for line in [
        "macrolake_job_runs_total{job=\"hourly\",status=\"ok\"} 1",
        "macrolake_job_runs_total{job=\"hourly\",status=\"skipped\"} 2",
        "macrolake_rows_ingested_total{source=\"fred\"} 7",
        "macrolake_step_duration_seconds_count{job=\"hourly\",step=\"1. ingest fred\"} 1",
        "macrolake_job_running{job=\"hourly\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    assert!(text.contains("macrolake_table_last_success_timestamp_seconds{table=\"meta.runs\"}"));
    assert!(text.contains("macrolake_job_last_success_timestamp_seconds{job=\"hourly\"}"));
}

#[tokio::test]
async fn a_counted_run_already_shows_its_table_commits() {
    // A scraper polling while the run ends must never see the run counted without the
    // commits it made (the daemon test scrapes as soon as the counter appears).
    let rig = Rig::new("2026-06-05T07:30:00Z");
    let (mut d, _tx) = hourly_run_started(&rig).await;
    let metrics = d.metrics().clone();
    let ok = "macrolake_job_runs_total{job=\"hourly\",status=\"ok\"} 1";
    let text = loop {
        let text = metrics.render();
        if text.lines().any(|l| l == ok) {
            break text;
        }
        tokio::task::yield_now().await;
    };
    assert!(
        text.contains("macrolake_table_last_success_timestamp_seconds{table=\"meta.runs\"}"),
        "run counted before its commits were:\n{text}"
    );
    d.wait_idle().await;
}
