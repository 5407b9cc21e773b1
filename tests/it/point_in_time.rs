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

/// For each day, the row of `mart` for that day in `full` and in the marts computed on the
/// inputs known that day; returns the days (and columns) that differ.
async fn compare(
    lake: &Lake,
    sql_dir: &Path,
    full: &datafusion::prelude::SessionContext,
    mart: &str,
    days: &[&str],
) -> Vec<String> {
    let views = macrolake::sources::all_views(&Default::default());
    let mut diffs = Vec::new();
    for &day in days {
        let d: NaiveDate = day.parse().unwrap();
        let query = format!("select * from marts.{mart} where date = DATE '{day}'");
        let want = rows(full, &query).await;
        let ctx = macrolake::models::evaluate(lake, &views, sql_dir, Some(d))
            .await
            .unwrap();
        let got = rows(&ctx, &query).await;
        assert_eq!(want.len(), 1, "{mart} has no row for {day}");
        let header: Vec<String> = ctx
            .sql(&query)
            .await
            .unwrap()
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if got.len() != 1 {
            diffs.push(format!("{day}: {} rows as known that day", got.len()));
            continue;
        }
        for ((name, a), b) in header.iter().zip(&want[0]).zip(&got[0]) {
            if !same(a, b) {
                diffs.push(format!(
                    "{day} {name}: full build {a:?}, as known that day {b:?}"
                ));
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
    let diffs = compare(&lake, &sql, &published, "liquidity_vs_risk", &DAYS).await;
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

/// The test of the test: the old lead/lag, which paired today's small-cap return with bitcoin's
/// return up to ten sessions later, is caught.
#[tokio::test(flavor = "multi_thread")]
async fn a_lead_lag_that_looks_ahead_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = nightly_lake(dir.path());
    let lake = Lake::open(lake_dir.to_str().unwrap(), false).unwrap();
    // A copy of sql/ whose lead/lag reads bitcoin's return k sessions after today for k < 0.
    let sql = dir.path().join("sql");
    for sub in ["marts", "seeds"] {
        std::fs::create_dir_all(sql.join(sub)).unwrap();
        for e in std::fs::read_dir(repo().join("sql").join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, sql.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let model = sql.join("marts/liquidity_vs_risk.sql");
    let text = std::fs::read_to_string(&model).unwrap();
    let honest = "JOIN indexed br ON br.idx = a.idx - greatest(l.k, 0)\n    JOIN indexed rr ON rr.idx = a.idx - greatest(-l.k, 0)";
    assert!(
        text.contains(honest),
        "the lead/lag join changed: update this test"
    );
    let leaky = "JOIN indexed br ON br.idx = a.idx - l.k\n    JOIN indexed rr ON rr.idx = a.idx";
    std::fs::write(&model, text.replace(honest, leaky)).unwrap();
    let views = macrolake::sources::all_views(&Default::default());
    let full = macrolake::models::evaluate(&lake, &views, &sql, None)
        .await
        .unwrap();
    // A few days with a lead/lag are enough to show the check bites.
    let days = ["2024-06-12", "2025-03-03", "2025-09-17", "2026-01-30", "2026-05-27"];
    let diffs = compare(&lake, &sql, &full, "liquidity_vs_risk", &days).await;
    assert!(
        diffs.iter().any(|d| d.contains("btc_lead")),
        "the look-ahead was not detected: {diffs:?}"
    );
}
