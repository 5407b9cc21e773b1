//! FedWatch on real data: the whole CME curve (five recorded settlement days, 2026-09-14 … 18,
//! with FRED's real target range for September 2026), the late-month guard and the published
//! effective rate on the snapshot's front-month history, and `marts.policy_path`'s 12-month answer.

use std::path::{Path, PathBuf};

use super::common::*;

const CME_DAYS: [u32; 5] = [14, 15, 16, 17, 18];

/// The committed replay folder: the CME recordings, FRED's September 2026 target range and the
/// Yahoo front month (see its README).
fn cme_replay(_root: &Path) -> PathBuf {
    repo().join("tests/fixtures/cme-2026-09")
}

/// Ingests the CME days into a new lake and builds the two policy marts.
fn cme_lake(dir: &Path) -> PathBuf {
    let replay = cme_replay(dir);
    let cfg = dir.join("macrolake.toml");
    std::fs::copy(replay.join("macrolake.toml"), &cfg).unwrap();
    let lake = dir.join("lake");
    let (code, out, err) = run(bin(repo())
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(&cfg)
        .arg("--replay")
        .arg(&replay)
        .args([
            "ingest",
            "fred",
            "futures",
            "fedwatch",
            "--since",
            "2026-09-14",
            "--until",
            "2026-09-18",
        ]));
    assert_eq!(code, 0, "ingest failed\nstdout:\n{out}\nstderr:\n{err}");
    for model in ["policy_path", "policy_path_meetings"] {
        let (code, out, err) = run(bin(repo())
            .arg("--lake")
            .arg(&lake)
            .arg("--config")
            .arg(&cfg)
            .args(["build", "--select", model, "--sql-dir"])
            .arg(repo().join("sql")));
        assert_eq!(
            code, 0,
            "build {model} failed\nstdout:\n{out}\nstderr:\n{err}"
        );
    }
    lake
}

fn meetings_within_a_year(as_of: &str) -> Vec<String> {
    let seed = std::fs::read_to_string(repo().join("sql/seeds/fomc_meetings.csv")).unwrap();
    let day = chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d").unwrap();
    seed.lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .filter_map(|d| chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok())
        .filter(|m| *m >= day && (*m - day).num_days() <= 365)
        .map(|m| m.to_string())
        .collect()
}

#[test]
fn whole_curve_from_the_cme_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let lake = cme_lake(dir.path());
    let q = |sql: &str| sql_csv(dir.path(), &lake, sql);

    // The connector landed all 60 contract months of each day.
    assert_eq!(
        q(
            "select date, count(*) as n from staging.futures_daily where source = 'cme' group by date order by date"
        ),
        "date,n\n2026-09-14,60\n2026-09-15,60\n2026-09-16,60\n2026-09-17,60\n2026-09-18,60\n"
    );

    // Every meeting within 12 months gets a distribution that sums to 1, on every day.
    for day in CME_DAYS {
        let as_of = format!("2026-09-{day}");
        let rows = q(&format!(
            "select meeting_date, round(sum(probability), 6) as total from staging.fedwatch_probabilities \
             where as_of_date = '{as_of}' group by meeting_date order by meeting_date"
        ));
        let priced: Vec<(String, String)> = rows
            .lines()
            .skip(1)
            .map(|l| {
                let (m, t) = l.split_once(',').unwrap();
                (m.to_string(), t.to_string())
            })
            .collect();
        let within = meetings_within_a_year(&as_of);
        assert!(within.len() >= 8, "{as_of}: {within:?}");
        for m in &within {
            let total = priced.iter().find(|(p, _)| p == m).map(|(_, t)| t.as_str());
            assert_eq!(total, Some("1.0"), "{as_of}: meeting {m} in\n{rows}");
        }
        assert!(priced.iter().all(|(_, t)| t == "1.0"), "{as_of}:\n{rows}");
    }

    // On 2026-09-17 the range in force is 3.75–4.00 (after the 2026-09-16 hike): the next
    // meeting's outcomes are no change from it or one more hike.
    assert_eq!(
        q(
            "select meeting_date, target_low_bps from staging.fedwatch_probabilities \
           where as_of_date = '2026-09-17' and meeting_index = 1 order by 2"
        ),
        "meeting_date,target_low_bps\n2026-10-28,375\n2026-10-28,400\n"
    );
    assert_eq!(
        q("select target_low_bps from staging.fedwatch_probabilities \
           where as_of_date = '2026-09-15' and meeting_index = 1 order by 1"),
        "target_low_bps\n350\n375\n"
    );

    // CME's published FedWatch odds for the 2026-09-18 settlement (one decimal).
    let ours = q(
        "select meeting_date, target_low_bps, round(100 * probability, 1) as pct from staging.fedwatch_probabilities \
         where as_of_date = '2026-09-18' and meeting_index <= 2 order by 1, 2",
    );
    assert_eq!(
        ours,
        "meeting_date,target_low_bps,pct\n\
         2026-10-28,375,42.4\n2026-10-28,400,57.6\n\
         2026-12-09,375,9.9\n2026-12-09,400,46.0\n2026-12-09,425,44.1\n"
    );

    // The 12-month answer in marts.policy_path: one FedWatch row a day, a full year priced.
    assert_eq!(
        q(
            "select as_of_date, basis, next_meeting_date, meetings_priced, priced_horizon_date, \
           round(priced_change_12m_bp, 1) as chg, round(next_meeting_cut_prob, 4) as cut, \
           round(expected_mid_after_next_pct, 3) as mid, proxy_change_bp, proxy_basis, reason \
           from marts.policy_path order by 1"
        ),
        "as_of_date,basis,next_meeting_date,meetings_priced,priced_horizon_date,chg,cut,mid,proxy_change_bp,proxy_basis,reason\n\
         2026-09-14,fedwatch,2026-09-16,11,2027-09-14,89.8,0.0,3.857,,,\n\
         2026-09-15,fedwatch,2026-09-16,11,2027-09-15,95.3,0.0,3.862,,,\n\
         2026-09-16,fedwatch,2026-09-16,11,2027-09-16,105.2,0.0,3.884,,,\n\
         2026-09-17,fedwatch,2026-10-28,10,2027-09-17,74.0,0.0,4.013,,,\n\
         2026-09-18,fedwatch,2026-10-28,10,2027-09-18,80.0,0.0,4.019,,,\n"
    );
    // policy_path_meetings agrees with policy_path on the last meeting within the year.
    assert_eq!(
        q(
            "select meeting_date, round(expected_change_bp, 1) as chg, method from marts.policy_path_meetings \
           where as_of_date = '2026-09-17' and meeting_index in (1, 8) order by meeting_index"
        ),
        "meeting_date,chg,method\n\
         2026-10-28,13.8,start: back-solved from OCT 26; end: anchor NOV 26\n\
         2027-09-15,74.0,start: anchor AUG 27; end: chain from OCT 27\n"
    );
}

/// Issue 11, item 5: with the snapshot's front month only, a meeting in the last days of its month
/// has no next-month contract to fix its end rate; the day gets the proxy, and says why.
/// Item 2: the start rate is the effective rate published by the day (the print dated before it).
#[test]
fn late_month_guard_and_published_effr_on_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let lake = nightly_lake(dir.path());
    let q = |sql: &str| sql_csv(dir.path(), &lake, sql);

    assert_eq!(
        q(
            "select as_of_date, next_meeting_date, proxy, reason from staging.policy_proxy \
           where as_of_date in ('2025-07-30', '2025-10-27') order by 1"
        ),
        "as_of_date,next_meeting_date,proxy,reason\n\
         2025-07-30,2025-07-30,DGS2 - EFFR,meeting 2025-07-30 is 1 day before month end and the AUG 25 contract is missing; fewer than 7 days would magnify noise\n\
         2025-10-27,2025-10-29,DGS2 - EFFR,meeting 2025-10-29 is 2 days before month end and the NOV 25 contract is missing; fewer than 7 days would magnify noise\n"
    );
    assert_eq!(
        q(
            "select count(*) as n from staging.fedwatch_probabilities where as_of_date in ('2025-07-30', '2025-10-27')"
        ),
        "n\n0\n"
    );
    assert_eq!(
        q(
            "select as_of_date, basis, proxy_basis, proxy_horizon_months, priced_change_12m_bp, \
           next_meeting_cut_prob, reason is not null as has_reason \
           from marts.policy_path where as_of_date in ('2025-07-30', '2025-10-27') order by 1"
        ),
        "as_of_date,basis,proxy_basis,proxy_horizon_months,priced_change_12m_bp,next_meeting_cut_prob,has_reason\n\
         2025-07-30,proxy,DGS2 - EFFR,24,,,true\n2025-10-27,proxy,DGS2 - EFFR,24,,,true\n"
    );

    // Start rates: every front-month FedWatch day starts from the newest EFFR print dated
    // *before* the day (published that morning), never the same day's.
    let starts = q(
        "with s as (select distinct as_of_date, rate_start_pct, method from staging.fedwatch_probabilities \
                    where meeting_index = 1 and method like 'start: EFFR of %'), \
              e as (select date, value from staging.fred_observations_latest where series_id = 'EFFR'), \
              p as (select s.as_of_date, s.rate_start_pct, cast(substr(s.method, 16, 10) as date) as effr_date, \
                           max(e.date) as published \
                    from s join e on e.date < s.as_of_date and e.date >= s.as_of_date - interval '10 days' \
                    group by 1, 2, 3) \
         select count(*) as days, \
                sum(case when p.effr_date = p.published and p.effr_date < p.as_of_date \
                          and abs(p.rate_start_pct - e.value) < 1e-9 then 1 else 0 end) as ok \
         from p join e on e.date = p.effr_date",
    );
    let (days, ok) = starts.lines().nth(1).unwrap().split_once(',').unwrap();
    assert!(days.parse::<u32>().unwrap() > 100, "{starts}");
    assert_eq!(days, ok, "{starts}");
    // 2025-09-02 (after Labor Day): the print of Friday 2025-08-29.
    assert_eq!(
        q("select distinct rate_start_pct, method from staging.fedwatch_probabilities \
           where as_of_date = '2025-09-02' and meeting_index = 1"),
        format!(
            "rate_start_pct,method\n{},start: EFFR of 2025-08-29; end: forward-solved from SEP 25\n",
            q("select value from staging.fred_observations_latest where series_id = 'EFFR' and date = '2025-08-29'")
                .lines()
                .nth(1)
                .unwrap()
        )
    );
}
