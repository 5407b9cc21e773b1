//! A revised value (same date, new value, later vintage) is kept as a new vintage; the
//! `latest` view shows it; unchanged values are not duplicated.

use super::common::*;

fn replay_dir(
    root: &std::path::Path,
    name: &str,
    recorded_at: &str,
    revise: Option<(&str, &str)>,
) -> std::path::PathBuf {
    let dir = root.join(name).join("fred.stlouisfed.org");
    std::fs::create_dir_all(&dir).unwrap();
    let src = snapshot().join("fred.stlouisfed.org");
    let stem = "graph_fredgraph.csv--id=WALCL";
    let mut body = std::fs::read_to_string(src.join(format!("{stem}.body.csv"))).unwrap();
    if let Some((date, value)) = revise {
        let line = body
            .lines()
            .find(|l| l.starts_with(date))
            .unwrap()
            .to_string();
        body = body.replace(&line, &format!("{date},{value}"));
    }
    std::fs::write(dir.join(format!("{stem}.body.csv")), body).unwrap();
    let meta = std::fs::read_to_string(src.join(format!("{stem}.meta.json"))).unwrap();
    let meta = meta.replace("2026-06-05T12:00:00Z", recorded_at);
    std::fs::write(dir.join(format!("{stem}.meta.json")), meta).unwrap();
    root.join(name)
}

/// Ingests FRED's WALCL alone into `lake` from `replay`; asserts success.
fn ingest_walcl(dir: &std::path::Path, lake: &std::path::Path, replay: &std::path::Path) {
    let cfg = dir.join("walcl.toml");
    std::fs::write(&cfg, "[sources.fred]\nseries = [\"WALCL\"]\n").unwrap();
    let (code, out, err) = run(bin(dir)
        .arg("--config")
        .arg(&cfg)
        .arg("--lake")
        .arg(lake)
        .arg("--replay")
        .arg(replay)
        .args(["ingest", "fred"]));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_revision_becomes_a_new_vintage_and_wins_in_latest() {
    let dir = tempfile::tempdir().unwrap();
    let first = replay_dir(dir.path(), "week1", "2026-06-05T12:00:00Z", None);
    let second = replay_dir(
        dir.path(),
        "week2",
        "2026-06-12T12:00:00Z",
        Some(("2026-05-27", "6700001")),
    );
    let lake = dir.path().join("lake");
    for replay in [&first, &second, &second] {
        ingest_walcl(dir.path(), &lake, replay);
    }
    let vintages = sql_csv(
        dir.path(),
        &lake,
        "select date, value, realtime_start from staging.fred_observations where date = '2026-05-27' order by realtime_start",
    );
    let original = real_body("WALCL")
        .lines()
        .find(|l| l.starts_with("2026-05-27"))
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(
        vintages.trim(),
        format!(
            "date,value,realtime_start\n2026-05-27,{original}.0,2026-06-05\n2026-05-27,6700001.0,2026-06-12"
        )
    );
    let latest = sql_csv(
        dir.path(),
        &lake,
        "select value from staging.fred_observations_latest where date = '2026-05-27'",
    );
    assert_eq!(latest.trim(), "value\n6700001.0");
    let total = sql_csv(
        dir.path(),
        &lake,
        "select count(*) as n from staging.fred_observations",
    );
    assert_eq!(
        total.trim(),
        "n\n1226",
        "1225 observations + 1 revised vintage, nothing duplicated"
    );
}

/// A revision is public from the moment it was seen, not from its first print's publication: the
/// days before it keep the print they knew (the full build equals the marts built on what was
/// known each day), and the days after show the revised value.
#[tokio::test(flavor = "multi_thread")]
async fn a_revision_counts_from_the_day_it_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_snapshot(repo(), &lake);
    // WALCL for Wednesday 2026-06-03 (first print public Thursday 06-04), revised and seen on
    // Friday 2026-06-12 at 12:00 UTC.
    let revised = replay_dir(
        dir.path(),
        "revision",
        "2026-06-12T12:00:00Z",
        Some(("2026-06-03", "6800001")),
    );
    ingest_walcl(dir.path(), &lake, &revised);
    let (code, out, err) = run(on_snapshot(repo(), &lake).arg("build"));
    assert_eq!(code, 0, "{out}{err}");

    let first = real_body("WALCL")
        .lines()
        .find(|l| l.starts_with("2026-06-03"))
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    let vintages = sql_csv(
        dir.path(),
        &lake,
        "select value, cast(available_at as varchar) as available_at from staging.fred_observations \
         where series_id = 'WALCL' and date = '2026-06-03' order by realtime_start",
    );
    assert_eq!(
        vintages.trim(),
        format!(
            "value,available_at\n{first}.0,2026-06-04T20:30:00Z\n6800001.0,2026-06-12T12:00:00Z"
        ),
        "the first print by the H.4.1 rule, the revision when it was seen"
    );
    let days = sql_csv(
        dir.path(),
        &lake,
        "select date, fed_total_assets_musd, fed_total_assets_as_of from marts.net_liquidity_daily \
         where date in ('2026-06-04', '2026-06-11', '2026-06-12') order by date",
    );
    assert_eq!(
        days.trim(),
        format!(
            "date,fed_total_assets_musd,fed_total_assets_as_of\n\
             2026-06-04,{first}.0,2026-06-03\n2026-06-11,{first}.0,2026-06-03\n\
             2026-06-12,6800001.0,2026-06-03"
        )
    );
    let opened = macrolake::lake::Lake::open(lake.to_str().unwrap(), false).unwrap();
    let published = opened.session(None, &[]).await.unwrap().ctx;
    let days = ["2026-06-04", "2026-06-05", "2026-06-11", "2026-06-12"];
    let diffs =
        crate::point_in_time::compare(&opened, &repo().join("sql"), &published, &days).await;
    assert!(diffs.is_empty(), "look-ahead:\n{}", diffs.join("\n"));
}
