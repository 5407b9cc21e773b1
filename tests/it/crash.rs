//! Leases after a crash: a `macrolake run` killed with SIGKILL leaves an unexpired lease, and the
//! next run on the same machine takes it over at once (the holder's process is gone); a lease
//! from another host is refused, naming holder, host, renewal and expiry, until it expires or is
//! broken with `--force-break-lease --yes`; a live holder on this host is never broken.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use macrolake::lake::Lake;
use macrolake::schedule::lease::{Acquire, Coordinator};

use super::common::*;

/// The newest lease file of `job` and its JSON.
fn newest_lease(lake: &Path, job: &str) -> Option<(PathBuf, serde_json::Value)> {
    let dir = lake.join("_macrolake/schedule").join(job);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("lease-"))
        })
        .collect();
    files.sort();
    let path = files.pop()?;
    let json = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    Some((path, json))
}

fn nightly_cmd(lake: &Path) -> std::process::Command {
    let mut cmd = bin(repo());
    cmd.arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["run", "nightly"]);
    cmd
}

#[test]
fn a_run_killed_mid_way_is_taken_over_at_once_on_the_same_host() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut child = nightly_cmd(&lake)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Mid-run: the lease is taken and the ingest has started writing tables.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(newest_lease(&lake, "nightly").is_some() && lake.join("staging").exists()) {
        assert!(Instant::now() < deadline, "the run never started writing");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (_, lease) = newest_lease(&lake, "nightly").unwrap();
    assert_eq!(lease["released"], false, "{lease}");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(lease["expires_at"].clone()).unwrap();
    assert!(
        expires > chrono::Utc::now(),
        "lease still unexpired: {lease}"
    );
    assert_eq!(lease["process"]["pid"], child.id(), "{lease}");

    // At once, not 120 s later.
    let (code, out, err) = run(&mut nightly_cmd(&lake));
    assert_eq!(code, 0, "re-run refused or failed\n{out}\n{err}");
    assert!(
        err.contains("took the lease of job nightly over")
            && err.contains(&format!("process {} no longer exists", child.id())),
        "{err}"
    );
    let rows = sql_csv(
        repo(),
        &lake,
        "select count(*) as n from marts.liquidity_vs_risk",
    );
    let n: u64 = rows.lines().nth(1).unwrap().parse().unwrap();
    assert!(n > 1000, "{rows}");
    let (_, lease) = newest_lease(&lake, "nightly").unwrap();
    assert_eq!(lease["released"], true, "the re-run released it: {lease}");
}

/// A job folder with one cheap job `quick` (ingest the Treasury's DTS).
fn quick_job(dir: &Path) -> PathBuf {
    let jobs = dir.join("schedules");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("quick.toml"),
        "description = \"one cheap step\"\ncron = \"0 0 1 1 *\"\ntimezone = \"UTC\"\n\
         [[steps]]\nkind = \"ingest\"\nsources = [\"treasury\"]\n",
    )
    .unwrap();
    jobs
}

fn run_quick(lake: &Path, jobs: &Path, extra: &[&str]) -> (i32, String, String) {
    run(bin(repo())
        .arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["run", "quick", "--dir"])
        .arg(jobs)
        .args(extra))
}

#[test]
fn another_hosts_lease_is_refused_until_broken_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let jobs = quick_job(dir.path());
    let lease_dir = lake.join("_macrolake/schedule/quick");
    std::fs::create_dir_all(&lease_dir).unwrap();
    let renewed = chrono::Utc::now() - chrono::Duration::seconds(10);
    let expires = renewed + chrono::Duration::seconds(120);
    // Written by a run on another machine (pid 1 there is not ours to judge).
    let record = serde_json::json!({
        "holder": "other-host:1:abcd",
        "expires_at": expires,
        "released": false,
        "renewed_at": renewed,
        "process": {"host": "other-host", "pid": 1, "start_ticks": 5,
                    "boot_id": "b", "pid_namespace": "pid:[1]"},
    });
    std::fs::write(
        lease_dir.join("lease-00000000000000000007.json"),
        record.to_string(),
    )
    .unwrap();

    let (code, out, err) = run_quick(&lake, &jobs, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    for part in [
        "job quick is already running: lease held by other-host:1:abcd (host other-host, pid 1)",
        &format!("last renewed {}", fmt(renewed)),
        &format!("expires {}", fmt(expires)),
        "macrolake run quick --force-break-lease --yes",
    ] {
        assert!(err.contains(part), "{part:?} not in\n{err}");
    }
    let (code, _, err) = run_quick(&lake, &jobs, &["--force-break-lease"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("would break the lease held by other-host"),
        "{err}"
    );
    assert!(err.contains("add --yes to confirm"), "{err}");
    assert!(!lake.join("staging").exists(), "nothing ran");

    let (code, out, err) = run_quick(&lake, &jobs, &["--force-break-lease", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("took the lease of job quick over: lease held by other-host:1:abcd"),
        "{err}"
    );
    assert!(out.contains("job quick: ok"), "{out}");
}

#[tokio::test]
async fn a_live_holder_on_this_host_is_never_broken() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let jobs = quick_job(dir.path());
    // This test process holds the lease: alive, on this host.
    let lake = Lake::open(lake_dir.to_str().unwrap(), false).unwrap();
    let coord = Coordinator::new(&lake, "tester".into(), chrono::Duration::seconds(120));
    let Acquire::Acquired(_lease) = coord.acquire("quick", chrono::Utc::now()).await.unwrap()
    else {
        panic!("free lease")
    };
    let jobs2 = jobs.clone();
    let lake2 = lake_dir.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run_quick(&lake2, &jobs2, &["--force-break-lease", "--yes"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("refusing to break the lease held by tester")
            && err.contains(&format!("kill {}", std::process::id())),
        "{err}"
    );
    let (code, _, err) = run_quick(&lake_dir, &jobs, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("its process is running on this host"), "{err}");
}
