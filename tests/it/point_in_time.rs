//! Point in time: the row for day D of `marts.liquidity_vs_risk` uses only what was public by
//! D's cut-off. Building every mart on the staging rows available on D (`available_at`) must
//! reproduce exactly the row the full build published for D.

use std::path::Path;

use chrono::NaiveDate;
use macrolake::lake::Lake;

use crate::common::{nightly_lake, repo};

/// Days spread over the snapshot: month ends and starts, Fridays, Mondays, WALCL Wednesdays and
/// the Thursdays that publish them, FOMC days, the ^RUT → IWM switch, the snapshot's last days.
const DAYS: [&str; 24] = [
    "2022-03-16",
    "2022-11-04",
    "2023-03-13",
    "2023-08-31",
    "2024-01-02",
    "2024-06-12",
    "2024-06-13",
    "2024-12-18",
    "2025-03-03",
    "2025-06-18",
    "2025-07-30",
    "2025-09-17",
    "2025-10-27",
    "2025-12-12",
    "2026-01-30",
    "2026-02-20",
    "2026-02-23",
    "2026-03-18",
    "2026-04-24",
    "2026-05-27",
    "2026-05-28",
    "2026-06-01",
    "2026-06-05",
    "2026-06-06",
];

/// The rows of `query` (with `{day}` replaced) as text cells.
async fn rows(ctx: &datafusion::prelude::SessionContext, query: &str) -> Vec<Vec<String>> {
    let batches = macrolake::query::collect(ctx, query).await.unwrap();
    macrolake::query::render_rows(&batches)
}

/// Cells equal, numbers within a relative 1e-9 (sums may add in another order).
fn same(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

/// The marts compared, each with the date column that says which rows belong to a day: the
/// product's row for the day, and in the marts under it every row first known that day.
const CHECKS: [(&str, &str); 6] = [
    ("liquidity_vs_risk", "date"),
    ("net_liquidity_daily", "date"),
    ("eps_growth", "date"),
    ("asset_daily", "known_on"),
    ("asset_roles_daily", "known_on"),
    ("btc_smallcap_xcorr", "known_on"),
];

/// For each day, the rows of each checked mart that belong to it in `full` and in the marts
/// computed on the inputs known that day; returns what differs.
pub(crate) async fn compare(
    lake: &Lake,
    sql_dir: &Path,
    full: &datafusion::prelude::SessionContext,
    days: &[&str],
) -> Vec<String> {
    let views = macrolake::sources::all_views(&Default::default());
    let mut diffs = Vec::new();
    for &day in days {
        let d: NaiveDate = day.parse().unwrap();
        let ctx = macrolake::models::evaluate(lake, &views, sql_dir, Some(d))
            .await
            .unwrap();
        for (mart, column) in CHECKS {
            let query = format!("select * from marts.{mart} where {column} = DATE '{day}'");
            let mut want = rows(full, &query).await;
            let mut got = rows(&ctx, &query).await;
            if mart == "liquidity_vs_risk" {
                assert_eq!(want.len(), 1, "{mart} has no row for {day}");
            }
            want.sort();
            got.sort();
            if got.len() != want.len() {
                diffs.push(format!(
                    "{day} {mart}: {} rows in the full build, {} as known that day",
                    want.len(),
                    got.len()
                ));
                continue;
            }
            let header: Vec<String> = ctx
                .sql(&query)
                .await
                .unwrap()
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            for (w, g) in want.iter().zip(&got) {
                for ((name, a), b) in header.iter().zip(w).zip(g) {
                    if !same(a, b) {
                        diffs.push(format!(
                            "{day} {mart}.{name}: full build {a:?}, as known that day {b:?}"
                        ));
                    }
                }
            }
        }
    }
    diffs
}

#[tokio::test(flavor = "multi_thread")]
async fn every_row_is_reproduced_from_the_inputs_known_that_day() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = nightly_lake(dir.path());
    let lake = Lake::open(lake_dir.to_str().unwrap(), false).unwrap();
    // The published marts (the nightly's full build) against marts built on truncated inputs.
    let published = lake.session(None, &[]).await.unwrap().ctx;
    let sql = repo().join("sql");
    let diffs = compare(&lake, &sql, &published, &DAYS).await;
    assert!(diffs.is_empty(), "look-ahead:\n{}", diffs.join("\n"));
    // The row is not empty: the comparison covers real values.
    let last = rows(
        &published,
        "select count(net_liquidity_musd), count(btc_close), count(rut_close), count(btc_rut_corr_90d), \
         count(btc_lead_sessions), count(policy_basis) from marts.liquidity_vs_risk \
         where date in ('2024-06-12', '2025-03-03', '2025-09-17', '2026-01-30', '2026-05-27')",
    )
    .await;
    assert!(last[0].iter().all(|c| c == "5"), "{last:?}");
}

/// A copy of `sql/` with one model's text replaced (`from` must occur in it).
fn altered_sql(dir: &Path, model: &str, from: &str, to: &str) -> std::path::PathBuf {
    let sql = dir.join("sql");
    for sub in ["marts", "seeds", "append"] {
        std::fs::create_dir_all(sql.join(sub)).unwrap();
        for e in std::fs::read_dir(repo().join("sql").join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, sql.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let file = sql.join("marts").join(format!("{model}.sql"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(from), "{model}.sql changed: update this test");
    std::fs::write(&file, text.replace(from, to)).unwrap();
    sql
}

/// The test of the test: two look-aheads are caught — the old lead/lag, which paired today's
/// small-cap return with bitcoin's return up to ten sessions later, and a close used the day
/// before it was public (a future value injected through its known day).
#[tokio::test(flavor = "multi_thread")]
async fn a_look_ahead_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = nightly_lake(dir.path());
    let lake = Lake::open(lake_dir.to_str().unwrap(), false).unwrap();
    let views = macrolake::sources::all_views(&Default::default());
    let cases = [
        (
            "btc_smallcap_xcorr",
            // Bitcoin's return one session later where the one before belongs.
            "lag(btc_ret, 1) OVER s AS btc_1",
            "lead(btc_ret, 1) OVER s AS btc_1",
            "corr",
        ),
        (
            "asset_daily",
            "known_on(h.available_at) AS known_on",
            "CAST(h.date - INTERVAL '1 day' AS DATE) AS known_on",
            "_close",
        ),
    ];
    for (i, (model, honest, leaky, column)) in cases.into_iter().enumerate() {
        let sql = altered_sql(&dir.path().join(format!("case{i}")), model, honest, leaky);
        let full = macrolake::models::evaluate(&lake, &views, &sql, None)
            .await
            .unwrap();
        let diffs = compare(&lake, &sql, &full, &DAYS).await;
        assert!(
            diffs.iter().any(|d| d.contains(column)),
            "the look-ahead in {model} was not detected: {diffs:?}"
        );
    }
}
