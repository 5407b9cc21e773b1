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

    // `status` shows the job's last run and next tick.
    let (code, out, err) = run(bin(dir.path())
        .current_dir(repo)
        .arg("--lake")
        .arg(&lake)
        .arg("status"));
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("nightly "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(" ok ") && line.contains("by hand") && line.contains("18:30"),
        "{line}"
    );

    // An export step writes a query's result to a file.
    let jobs = dir.path().join("schedules");
    std::fs::create_dir_all(&jobs).unwrap();
    let export = dir.path().join("out/lvr.csv");
    std::fs::write(
        jobs.join("export.toml"),
        format!(
            "cron = \"0 7 * * *\"\ntimezone = \"UTC\"\n[[steps]]\nkind = \"export\"\n\
             query = \"select date, net_liquidity_musd from marts.liquidity_vs_risk order by date\"\n\
             path = {:?}\n",
            export.display().to_string()
        ),
    )
    .unwrap();
    let (code, out, err) = run(bin(dir.path())
        .current_dir(repo)
        .arg("--lake")
        .arg(&lake)
        .args(["run", "export", "--dir"])
        .arg(&jobs));
    assert_eq!(code, 0, "{out}\n{err}");
    let csv = std::fs::read_to_string(&export).unwrap();
    assert!(
        csv.starts_with("date,net_liquidity_musd\n"),
        "{}",
        &csv[..100]
    );
    assert!(csv.lines().count() > 4000);
    std::fs::remove_file(jobs.join("export.toml")).unwrap();

    // A job whose ingest fails: the build after it is skipped and the job is recorded failed.
    std::fs::write(
        jobs.join("broken.toml"),
        "cron = \"0 6 * * *\"\ntimezone = \"Europe/London\"\nretries = { count = 2, base_secs = 0 }\n\
         [[steps]]\nkind = \"ingest\"\nsources = [\"fred\"]\n[[steps]]\nkind = \"build\"\n",
    )
    .unwrap();
    let commits = |table: &str| {
        std::fs::read_dir(lake.join(table).join("_delta_log"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".json")
            })
            .count()
    };
    let published = ["staging/fred_observations", "marts/liquidity_vs_risk"].map(commits);
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
    assert_eq!(
        runs.trim(),
        "job,status\nnightly,ok\nexport,ok\nbroken,failed"
    );
    // The failing step was tried three times (1 + retries.count), each attempt recorded.
    let attempts = sql_csv(
        dir.path(),
        &lake,
        "select status, count(*) as n from meta.runs where kind = 'ingest' and job = 'broken' group by 1",
    );
    assert_eq!(attempts.trim(), "status,n\nfailed,3");
    // The later build step is recorded skipped, and the published tables did not move.
    let skipped = sql_csv(
        dir.path(),
        &lake,
        "select kind, status from meta.runs where job = 'broken' and kind = 'build'",
    );
    assert_eq!(skipped.trim(), "kind,status\nbuild,skipped");
    assert_eq!(
        ["staging/fred_observations", "marts/liquidity_vs_risk"].map(commits),
        published
    );
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
        out.contains("nightly (30 18 * * MON-FRI America/New_York)")
            && out.contains("weekly_h41 (30 16 * * THU America/New_York)")
            && out.contains("weekly_maintenance (0 4 * * SUN America/New_York)"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains(" UTC")).count(),
        15,
        "five runs per job:\n{out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.starts_with("  ") && l.contains("18:30"))
            .all(|l| !l.starts_with("  Sat") && !l.starts_with("  Sun"))
    );
    // A bad job file is refused with the file, the field and why.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let refused = |job: &str| {
        std::fs::write(bad.join("x.toml"), job).unwrap();
        let (code, _, err) = run(bin(dir.path())
            .arg("--lake")
            .arg(dir.path().join("lake"))
            .args(["schedules", "--dir"])
            .arg(&bad));
        assert_eq!(code, 1, "{job}");
        err
    };
    let err = refused("cron = \"0 25 * * *\"\ntimezone = \"UTC\"\n[[steps]]\nkind = \"ingest\"\n");
    assert!(
        err.contains("x.toml): cron = \"0 25 * * *\": hour field \"25\""),
        "{err}"
    );
    // A vacuum step may not shorten the time-travel window.
    let err = refused(
        "cron = \"0 4 * * SUN\"\ntimezone = \"UTC\"\n[[steps]]\nkind = \"vacuum\"\nretention_hours = 24\n",
    );
    assert!(
        err.contains("steps.retention_hours = \"24\": must be at least 168"),
        "{err}"
    );
}

#[test]
fn weekly_maintenance_compacts_and_vacuums_and_every_row_stays() {
    let dir = tempfile::tempdir().unwrap();
    let lake = nightly_lake(dir.path());
    // Rows of prices_daily, liquidity_vs_risk and meta.runs.
    let counts = || -> Vec<u64> {
        let csv = sql_csv(
            dir.path(),
            &lake,
            "select (select count(*) from staging.prices_daily) as prices, \
             (select count(*) from marts.liquidity_vs_risk) as lvr, \
             (select count(*) from meta.runs) as runs",
        );
        let values = csv.lines().nth(1).unwrap_or_else(|| panic!("{csv}"));
        values.split(',').map(|n| n.parse().unwrap()).collect()
    };
    let before = counts();
    // A file no version names, older than the 7-day window (what a crashed writer leaves).
    let stray = lake.join("staging/prices_daily/part-stray.parquet");
    std::fs::write(&stray, b"not referenced").unwrap();
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&stray)
        .unwrap()
        .set_modified(month_ago)
        .unwrap();

    let (code, out, err) = run(on_snapshot(repo(), &lake).args(["run", "weekly_maintenance"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("1. optimize (all tables)") && out.contains("2. vacuum (all tables)"),
        "{out}"
    );
    // meta.runs, one small file per record, was compacted (a commit of its own); the stray file
    // is gone; the rows are those of before (meta.runs: plus the job's own records).
    let log = std::fs::read_dir(lake.join("meta/runs/_delta_log")).unwrap();
    assert!(
        log.filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .any(|commit| commit.contains("\"operation\":\"OPTIMIZE\"")),
        "no OPTIMIZE commit in meta.runs"
    );
    assert!(!stray.exists(), "the vacuum left {}", stray.display());
    let steps = sql_csv(
        dir.path(),
        &lake,
        "select kind, status from meta.runs \
         where job = 'weekly_maintenance' and kind <> 'job' order by started_at",
    );
    assert_eq!(steps.trim(), "kind,status\noptimize,ok\nvacuum,ok");
    let after = counts();
    assert_eq!(after[..2], before[..2], "rows changed");
    assert!(after[2] > before[2]);
    // The nightly after it still runs (and its incremental model reads its last rows afresh).
    let (code, out, err) = run(on_snapshot(repo(), &lake).args(["run", "nightly"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(counts()[..2], before[..2]);
}
