//! `macrolake daemon` as a real process: a job firing every minute runs on the snapshot, the
//! metrics endpoint answers, `macrolake run` refuses while the daemon holds the job, and SIGTERM
//! stops it within seconds.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::common::*;

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics port answers");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn daemon_runs_a_minutely_job_serves_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let jobs = dir.path().join("schedules");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("minutely.toml"),
        "description = \"every minute, for the test\"\ncron = \"* * * * *\"\n\
         timezone = \"America/New_York\"\n[[steps]]\nkind = \"ingest\"\nsources = [\"treasury\"]\n",
    )
    .unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = bin(dir.path())
        .current_dir(repo)
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["daemon", "--metrics-listen", "127.0.0.1:0", "--dir"])
        .arg(&jobs)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("daemon announces its metrics address");
        log.push(line.clone());
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            break rest.trim_end_matches("/metrics").to_string();
        }
    };
    // The job fires at the next minute boundary; wait for the run to be counted.
    let deadline = Instant::now() + Duration::from_secs(150);
    let ok = "macrolake_job_runs_total{job=\"minutely\",status=\"ok\"}";
    let text = loop {
        let text = scrape(&addr);
        if text.contains(ok) {
            break text;
        }
        assert!(Instant::now() < deadline, "no run within 150 s:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for name in [
        "macrolake_up 1",
        "macrolake_daemon_start_time_seconds",
        "macrolake_job_runs_total",
        "macrolake_job_last_success_timestamp_seconds{job=\"minutely\"}",
        "macrolake_job_next_tick_timestamp_seconds{job=\"minutely\"}",
        "macrolake_step_duration_seconds_count{job=\"minutely\"",
        "macrolake_rows_ingested_total{source=\"treasury\"}",
        "macrolake_table_last_success_timestamp_seconds{table=\"staging.tga_daily\"}",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }

    // The run is in meta.runs with its scheduled tick (a minute boundary); readers are not
    // blocked by the running daemon.
    let runs = sql_csv(
        dir.path(),
        &lake,
        "select status, scheduled_for is not null as scheduled, \
         date_part('second', scheduled_for) as sec from meta.runs where kind = 'job'",
    );
    assert!(
        runs.lines().nth(1).unwrap().starts_with("ok,true,0"),
        "{runs}"
    );

    let pid = child.id().to_string();
    let stopped_at = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(20),
            "daemon still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    assert!(status.success(), "exit {status:?}\n{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("daemon stopped")),
        "{}",
        log.join("\n")
    );
    // The tick is stored in the lake: a restarted daemon will not repeat it.
    let state = std::fs::read_to_string(lake.join("_macrolake/schedule/minutely/state.json"))
        .expect("tick state in the lake");
    assert!(state.contains("last_tick"), "{state}");
}

#[test]
fn a_hand_run_refuses_a_job_another_process_holds() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // A lease taken by "another daemon" (written as the daemon writes it) and not expired.
    let lease_dir = lake.join("_macrolake/schedule/nightly");
    std::fs::create_dir_all(&lease_dir).unwrap();
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    std::fs::write(
        lease_dir.join("lease-00000000000000000001.json"),
        format!(
            "{{\"holder\":\"host-b:42:abcd\",\"expires_at\":\"{expires}\",\"released\":false}}"
        ),
    )
    .unwrap();
    let (code, out, err) = run(bin(dir.path())
        .current_dir(repo)
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["run", "nightly"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("job nightly is already running: lease held by host-b:42:abcd"),
        "{err}"
    );
    assert!(!lake.join("meta/runs").exists(), "nothing ran");
}
