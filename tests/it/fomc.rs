//! The FOMC calendar connector on the replay snapshot's real page (federalreserve.gov, served
//! 2026-09-20): what lands, that FedWatch uses the page merged over the seed, idempotency, and
//! the data test that fails when fewer than 4 future meetings are known on the reference date.

use std::path::Path;

use super::common::*;

/// `macrolake --config <config> --replay <snapshot> ingest <sources>` from the repository root.
fn ingest(lake: &Path, config: &Path, sources: &[&str]) -> (i32, String, String) {
    run(bin(repo())
        .arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(config)
        .arg("--replay")
        .arg(snapshot())
        .arg("ingest")
        .args(sources))
}

fn ingest_ok(lake: &Path, config: &Path, sources: &[&str]) -> String {
    let (code, out, err) = ingest(lake, config, sources);
    assert_eq!(code, 0, "ingest {sources:?} failed\n{out}\n{err}");
    out
}

/// The snapshot's configuration with another reference date (and optionally a FedWatch seed).
fn config(dir: &Path, reference_date: &str, meetings_csv: Option<&Path>) -> std::path::PathBuf {
    let snapshot = std::fs::read_to_string(snapshot_config()).unwrap();
    let mut text = snapshot.replace(
        "reference_date = \"2026-06-05\"",
        &format!("reference_date = \"{reference_date}\""),
    );
    assert!(
        text.contains(&format!("reference_date = \"{reference_date}\"")),
        "the snapshot config sets a reference date"
    );
    if let Some(seed) = meetings_csv {
        text.push_str(&format!(
            "\n[sources.fedwatch]\nmeetings_csv = \"{}\"\n",
            seed.display()
        ));
    }
    let path = dir.join(format!("macrolake-{reference_date}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_page_lands_every_year_with_decision_days_sep_flags_and_the_2028_meeting() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = ingest_ok(&lake, &snapshot_config(), &["fomc"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("fomc") && l.contains(" ok ")),
        "{out}"
    );
    let days = sql_csv(
        dir.path(),
        &lake,
        "select meeting_date, has_sep from staging.fomc_meetings \
         where kind = 'scheduled' and meeting_date >= '2026-01-01' order by 1",
    );
    assert_eq!(
        days.trim(),
        "meeting_date,has_sep\n\
         2026-01-28,false\n2026-03-18,true\n2026-04-29,false\n2026-06-17,true\n\
         2026-07-29,false\n2026-09-16,true\n2026-10-28,false\n2026-12-09,true\n\
         2027-01-27,false\n2027-03-17,true\n2027-04-28,false\n2027-06-09,true\n\
         2027-07-28,false\n2027-09-15,true\n2027-10-27,false\n2027-12-08,true\n\
         2028-01-26,false"
    );
    let detail = sql_csv(
        dir.path(),
        &lake,
        "select meeting_date, meeting_start_date, scheduled, kind, panel_year, label, available_at \
         from staging.fomc_meetings where meeting_date in ('2025-08-22', '2027-01-27', '2028-01-26') order by 1",
    );
    assert_eq!(
        detail.trim(),
        "meeting_date,meeting_start_date,scheduled,kind,panel_year,label,available_at\n\
         2025-08-22,2025-08-22,false,notation_vote,2025,August 22 (notation vote),2026-09-17T03:59:59Z\n\
         2027-01-27,2027-01-26,true,scheduled,2027,January 26-27,2026-09-17T03:59:59Z\n\
         2028-01-26,2028-01-25,true,scheduled,,\"A two-day meeting is scheduled for January 25-26, 2028.\",2026-09-17T03:59:59Z"
    );
    let years = sql_csv(
        dir.path(),
        &lake,
        "select extract(year from meeting_date) as y, count(*) as n from staging.fomc_meetings group by 1 order by 1",
    );
    assert_eq!(
        years.trim(),
        "y,n\n2021,8\n2022,8\n2023,8\n2024,8\n2025,9\n2026,8\n2027,8\n2028,1"
    );
    // The merged calendar: the seed's years before 2021 (with its unscheduled 2020 meetings),
    // the page from 2021, the notation vote not a decision.
    let merged = sql_csv(
        dir.path(),
        &lake,
        "select min(meeting_date) as first, max(meeting_date) as last, \
         sum(case when is_decision then 1 else 0 end) as decisions, \
         sum(case when source like 'seed %' then 1 else 0 end) as from_seed, \
         sum(case when meeting_date = '2025-08-22' and not is_decision then 1 else 0 end) as vote, \
         sum(case when meeting_date = '2020-03-15' and is_decision and kind = 'unscheduled' then 1 else 0 end) as march_2020 \
         from staging.fomc_calendar",
    );
    assert_eq!(
        merged.trim(),
        "first,last,decisions,from_seed,vote,march_2020\n2015-01-28,2028-01-26,106,49,1,1"
    );

    // A second ingest of the same page writes nothing, and keeps when each row became known.
    let out = ingest_ok(&lake, &snapshot_config(), &["fomc"]);
    let line = out.lines().find(|l| l.starts_with("fomc")).unwrap();
    assert_eq!(
        line.split_whitespace().nth(2),
        Some("0"),
        "second ingest writes nothing: {out}"
    );
}

#[test]
fn fedwatch_finds_its_2025_meetings_on_the_page_when_the_seed_stops_in_2024() {
    let dir = tempfile::tempdir().unwrap();
    // The real seed cut at the end of 2024: a seed that has run out, as the built-in one did on
    // 2026-12-09. (The snapshot's futures end in 2025, so 2025 is where FedWatch has odds.)
    let seed = std::fs::read_to_string(repo().join("sql/seeds/fomc_meetings.csv")).unwrap();
    let cut: Vec<&str> = seed
        .lines()
        .filter(|l| l.starts_with("meeting_date") || l[..4] <= *"2024")
        .collect();
    let seed_path = dir.path().join("fomc_to_2024.csv");
    std::fs::write(&seed_path, cut.join("\n") + "\n").unwrap();
    let cfg = config(dir.path(), "2026-06-05", Some(&seed_path));
    let meetings_2025 = "select count(*) as n from staging.fedwatch_probabilities \
                         where meeting_date >= '2025-01-01'";

    // Seed alone: 2025 has no meetings, so FedWatch has no 2025 odds.
    let seed_only = dir.path().join("seed_only");
    ingest_ok(&seed_only, &cfg, &["fred", "futures", "fedwatch"]);
    assert_eq!(
        sql_csv(dir.path(), &seed_only, meetings_2025).trim(),
        "n\n0"
    );

    // With the page landed first, the same seed is enough: the page supplies 2025.
    let with_page = dir.path().join("with_page");
    ingest_ok(&with_page, &cfg, &["fred", "futures", "fomc", "fedwatch"]);
    let n: usize = sql_csv(dir.path(), &with_page, meetings_2025)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 0, "FedWatch odds for 2025 meetings from the page");
    let next = sql_csv(
        dir.path(),
        &with_page,
        "select min(meeting_date) as m from staging.fedwatch_probabilities where as_of_date = '2025-09-02'",
    );
    assert_eq!(
        next.trim(),
        "m\n2025-09-17",
        "the page's September 2025 meeting"
    );
    // Same lake, same odds as with the full built-in seed: the page and the seed agree on 2025.
    let full = dir.path().join("full_seed");
    ingest_ok(&full, &snapshot_config(), &["fred", "futures", "fedwatch"]);
    let odds = "select as_of_date, meeting_date, target_low_bps, probability \
                from staging.fedwatch_probabilities where meeting_date >= '2025-01-01' order by 1, 2, 3";
    assert_eq!(
        sql_csv(dir.path(), &with_page, odds),
        sql_csv(dir.path(), &full, odds)
    );
}

/// `macrolake build --select fomc_calendar` with a reference date.
fn build_calendar(lake: &Path, config: &Path) -> (i32, String, String) {
    run(bin(repo())
        .arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(config)
        .args(["build", "--select", "fomc_calendar", "--sql-dir"])
        .arg(repo().join("sql")))
}

#[test]
fn the_calendar_test_fails_when_fewer_than_four_future_meetings_are_known() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_ok(&lake, &snapshot_config(), &["fomc"]);

    // The snapshot's reference date: June 17 2026 onwards, plenty ahead.
    let (code, out, err) = build_calendar(&lake, &snapshot_config());
    assert_eq!(code, 0, "{out}\n{err}");
    let reach = sql_csv(
        dir.path(),
        &lake,
        "select max(four_ahead_through) as through, max(decision_number) as decisions from marts.fomc_calendar",
    );
    // The fourth decision day from the end is 2027-09-15: four are ahead through 2027-09-14.
    assert_eq!(reach.trim(), "through,decisions\n2027-09-14,106");

    // On 2027-09-14 four meetings are still ahead (09-15, 10-27, 12-08, 2028-01-26): passes.
    let ok = config(dir.path(), "2027-09-14", None);
    let (code, out, err) = build_calendar(&lake, &ok);
    assert_eq!(code, 0, "{out}\n{err}");
    // On 2027-09-15 only three are: the test fails the build and names itself.
    let short = config(dir.path(), "2027-09-15", None);
    let (code, out, err) = build_calendar(&lake, &short);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("freshness(four_ahead_through, 0) failed"),
        "{out}\n{err}"
    );
}
