//! `macrolake run <job>` and `macrolake schedules` on the shipped job files.

use super::common::*;

#[test]
fn nightly_runs_on_the_snapshot_and_a_failing_step_stops_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = run(bin(dir.path())
        .current_dir(repo)
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["run", "nightly"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("job nightly:") && out.contains("3. test (all models)"),
        "{out}"
    );
    let runs = sql_csv(
        dir.path(),
        &lake,
        "select job, status from meta.runs where kind = 'job'",
    );
    assert_eq!(runs.trim(), "job,status\nnightly,ok");
    let mart = sql_csv(
        dir.path(),
        &lake,
        "select count(*) > 4000 as built from marts.liquidity_vs_risk",
    );
    assert_eq!(mart.trim(), "built\ntrue");

    // A job whose ingest fails: the build after it is skipped and the job is recorded failed.
    let jobs = dir.path().join("schedules");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("broken.toml"),
        "cron = \"0 6 * * *\"\ntimezone = \"Europe/London\"\nretries = { count = 2, base_secs = 0 }\n\
         [[steps]]\nkind = \"ingest\"\nsources = [\"fred\"]\n[[steps]]\nkind = \"build\"\n",
    )
    .unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, "[sources.fred]\nseries = [\"NOSUCHSERIES\"]\n").unwrap();
    let (code, out, err) = run(bin(dir.path())
        .current_dir(repo)
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(&cfg)
        .arg("--replay")
        .arg(snapshot())
        .args(["run", "broken", "--dir"])
        .arg(&jobs));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("failed") && out.contains("skipped"), "{out}");
    assert!(
        err.contains("job broken failed") && err.contains("NOSUCHSERIES"),
        "{err}"
    );
    let runs = sql_csv(
        dir.path(),
        &lake,
        "select job, status from meta.runs where kind = 'job' order by started_at",
    );
    assert_eq!(runs.trim(), "job,status\nnightly,ok\nbroken,failed");
    // The failing step was tried three times (1 + retries.count), each attempt recorded.
    let attempts = sql_csv(
        dir.path(),
        &lake,
        "select status, count(*) as n from meta.runs where kind = 'step' and job = 'broken' group by 1",
    );
    assert_eq!(attempts.trim(), "status,n\nfailed,3");
}

#[test]
fn schedules_lists_next_runs_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = run(bin(dir.path())
        .current_dir(repo)
        .args(["--lake"])
        .arg(dir.path().join("lake"))
        .arg("schedules"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("nightly (30 18 * * MON-FRI)") && out.contains("weekly_h41 (30 16 * * THU)"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains(" UTC")).count(),
        10,
        "five runs per job:\n{out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.starts_with("  ") && l.contains("18:30"))
            .all(|l| !l.starts_with("  Sat") && !l.starts_with("  Sun"))
    );
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("x.toml"),
        "cron = \"0 25 * * *\"\ntimezone = \"UTC\"\n[[steps]]\nkind = \"ingest\"\n",
    )
    .unwrap();
    let (code, _, err) = run(bin(dir.path())
        .arg("--lake")
        .arg(dir.path().join("lake"))
        .args(["schedules", "--dir"])
        .arg(&bad));
    assert_eq!(code, 1);
    assert!(err.contains("x.toml: cron = \"0 25 * * *\""), "{err}");
}
