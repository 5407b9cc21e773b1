//! The product table as an analyst sees it, on the real snapshot: small caps through the last
//! IWM day, no value older than its documented age, the lead/lag and roles read from one place,
//! EPS growth by the stated rule.

use crate::common::{nightly_lake, repo, sql_csv};

#[test]
fn the_product_table_on_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let lake = nightly_lake(dir.path());
    let q = |sql: &str| sql_csv(repo(), &lake, sql);

    // Small caps switch from ^RUT (history ends 2026-02-20) to IWM and run to IWM's last day.
    assert_eq!(
        q("select max(date) from staging.prices_daily where symbol = 'IWM'"),
        "max(staging.prices_daily.date)\n2026-06-05\n"
    );
    assert_eq!(
        q(
            "select count(*) as missing from marts.liquidity_vs_risk where date between '2025-01-01' and '2026-06-05' \
           and (rut_close is null or rut_drawdown_pct is null or divergence is null)"
        ),
        "missing\n0\n"
    );
    assert_eq!(
        q("select rut_symbol, rut_as_of from marts.liquidity_vs_risk where date = '2026-06-05'"),
        "rut_symbol,rut_as_of\nIWM,2026-06-05\n"
    );
    assert_eq!(
        q("select rut_symbol from marts.liquidity_vs_risk where date = '2026-02-20'"),
        "rut_symbol\n^RUT\n"
    );
    // The chain-linked level is continuous across the switch: the first IWM day moves by IWM's
    // own return, not by the ratio of ^RUT points to IWM dollars.
    let jump = q(
        "select round(abs(b.level / a.level - 1 - b.daily_return), 9) as err, b.symbol from marts.asset_roles_daily a \
         join marts.asset_roles_daily b on b.role = a.role and b.date = (select min(date) from marts.asset_roles_daily \
         where role = 'small_caps' and date > '2026-02-20') where a.role = 'small_caps' and a.date = '2026-02-20'",
    );
    assert_eq!(jump, "err,symbol\n0.0,IWM\n");
    // Every day the level moves by the role's return from its previous day: the chosen symbol's
    // when it closed that day too, else the previous day's symbol's to this day, else not at all.
    // Silver went SI=F (11-22), SLV (11-24, no SI=F close), SI=F (11-27): 11-27 moves by SLV's
    // 0.63%, not by SI=F's 3.49% since 11-22, which would count 11-24's move twice.
    let off = q("with d as (select role, date, symbol, close, level, \
           lag(date) over (partition by role order by date) as pd, \
           lag(symbol) over (partition by role order by date) as ps, \
           lag(level) over (partition by role order by date) as pl from marts.asset_roles_daily) \
         select count(*) as n from d \
         left join marts.asset_daily own on own.symbol = d.symbol and own.date = d.pd \
         left join marts.asset_daily was on was.symbol = d.ps and was.date = d.pd \
         left join marts.asset_daily now on now.symbol = d.ps and now.date = d.date \
         where d.pd is not null and abs(d.level / d.pl - 1 - case when own.close is not null then d.close / own.close - 1 \
           when now.close is not null then now.close / was.close - 1 else 0 end) > 1e-9");
    assert_eq!(off, "n\n0\n", "days whose level moved otherwise");
    let back = q(
        "select round(level / lag(level) over (order by date) - 1, 4) as r, date from marts.asset_roles_daily \
         where role = 'silver' and date in ('2006-11-24', '2006-11-27') order by date",
    );
    assert_eq!(back, "r,date\n,2006-11-24\n0.0063,2006-11-27\n");

    // No carried value older than its age: closes 5 days, weekly liquidity 10, TGA 7 (DTS).
    for (value, as_of, days) in [
        ("btc_close", "btc_as_of", 5),
        ("rut_close", "rut_as_of", 5),
        ("spx_close", "spx_as_of", 5),
        ("ndx_close", "ndx_as_of", 5),
        ("dji_close", "dji_as_of", 5),
        ("silver_close", "silver_as_of", 5),
        ("btc_rut_corr_90d", "stats_as_of", 5),
        ("fed_total_assets_musd", "fed_total_assets_as_of", 10),
        ("reserves_week_avg_musd", "reserves_as_of", 10),
        ("tga_musd", "tga_as_of", 10),
        ("on_rrp_musd", "on_rrp_as_of", 7),
        ("sp500_eps_growth_pct", "sp500_eps_edition_date", 45),
    ] {
        let stale = q(&format!(
            "select count(*) as n from marts.liquidity_vs_risk where {value} is not null \
             and ({as_of} is null or {as_of} < date - INTERVAL '{days} days')"
        ));
        assert_eq!(stale, "n\n0\n", "{value} older than {days} days");
    }
    // The ^DJI history ends 2026-02-23: by June the Dow comes from DIA, never a February close.
    assert_eq!(
        q("select dji_symbol, dji_as_of from marts.liquidity_vs_risk where date = '2026-06-05'"),
        "dji_symbol,dji_as_of\nDIA,2026-06-05\n"
    );
    // Bitcoin's Friday close (a UTC-day candle, public at midnight UTC) is first used on Saturday.
    assert_eq!(
        q(
            "select date, btc_as_of from marts.liquidity_vs_risk where date in ('2026-06-05', '2026-06-06') order by 1"
        ),
        "date,btc_as_of\n2026-06-05,2026-06-04\n2026-06-06,2026-06-05\n"
    );
    // WALCL of Wednesday 2026-05-27 is released Thursday: Wednesday's row still has the week before.
    assert_eq!(
        q(
            "select date, fed_total_assets_as_of from marts.liquidity_vs_risk where date in ('2026-05-27', '2026-05-28') order by 1"
        ),
        "date,fed_total_assets_as_of\n2026-05-27,2026-05-20\n2026-05-28,2026-05-27\n"
    );
    // The table runs to the newest bill purchase (public on its day; five operations from
    // 2026-07-20 to 2026-08-06 were missing when only liquidity and prices set its end), and its
    // running total there is the programme's.
    assert_eq!(
        q(
            "select l.date, cast(l.bill_purchases_cum_usd as bigint) = cast(b.programme_cum_accepted_usd as bigint) as same \
             from marts.liquidity_vs_risk l join marts.bill_purchases b on b.operation_date = l.date \
             where l.date = (select max(date) from marts.liquidity_vs_risk)"
        ),
        "date,same\n2026-08-06,true\n"
    );
    // The table runs past the last WALCL to the newest day any input is known (the DTS).
    assert_eq!(
        q(
            "select max(date) >= (select max(record_date) from staging.tga_daily) + INTERVAL '1 day' as past_dts, \
           max(date) > (select max(date) from staging.fred_observations where series_id = 'WALCL') as past_walcl \
           from marts.liquidity_vs_risk"
        ),
        "past_dts,past_walcl\ntrue,true\n"
    );

    // Highs say since when: bitcoin's history in the lake starts later than its 2013 peak.
    let since = q(
        "select distinct btc_high_since from marts.liquidity_vs_risk where btc_high_since is not null",
    );
    assert_eq!(since.lines().count(), 2, "{since}");

    // EPS growth: the newest edition known, never an older edition's number for a negative base.
    assert_eq!(
        q(
            "select count(*) as n from marts.eps_growth where date > edition_date + INTERVAL '45 days'"
        ),
        "n\n0\n"
    );
    assert_eq!(
        q(
            "select count(*) as n from marts.liquidity_vs_risk where date = '2025-06-18' and sp500_eps_growth_pct is not null"
        ),
        "n\n0\n"
    );

    co_highs_match_a_count_by_hand(&q);

    // Every column of the product is documented in the model header and in the README's table.
    let cols = q(
        "select column_name from information_schema.columns where table_schema = 'marts' \
                  and table_name = 'liquidity_vs_risk' order by ordinal_position",
    );
    let header = std::fs::read_to_string(repo().join("sql/marts/liquidity_vs_risk.sql")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let documented: Vec<&str> = header
        .lines()
        .filter_map(|l| l.strip_prefix("-- column "))
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    let columns: Vec<&str> = cols.lines().skip(1).collect();
    assert_eq!(columns, documented, "header docs vs the table's columns");
    for c in &columns {
        let doc = header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("-- column {c}: ")))
            .unwrap();
        assert!(
            readme.contains(&format!("| `{c}` | {} |", doc.replace('|', "/"))),
            "README lacks the doc of {c}"
        );
    }
}

/// `marts.co_highs` against its definition worked out here from `marts.asset_roles_daily`: each
/// bitcoin new-high day is anchored to the small-cap session on or before it, and paired with the
/// small-cap new high nearest to that session within ±5 sessions (on a tie, the earlier one).
fn co_highs_match_a_count_by_hand(q: &dyn Fn(&str) -> String) {
    let rows = |sql: &str| -> Vec<Vec<String>> {
        q(sql)
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let sessions = rows(
        "select date, symbol, is_new_high from marts.asset_roles_daily \
         where role = 'small_caps' order by date",
    );
    let btc_highs = rows(
        "select date from marts.asset_roles_daily where role = 'bitcoin' and is_new_high order by date",
    );
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let mut expected = vec!["btc_date,small_caps_date,small_caps_symbol,gap_days".to_string()];
    for b in &btc_highs {
        // The anchor: how many sessions fall on or before the bitcoin high (dates sort as text).
        let anchor = sessions.partition_point(|s| s[0] <= b[0]);
        if anchor == 0 {
            continue;
        }
        let nearest = sessions
            .iter()
            .enumerate()
            .filter(|(i, s)| s[2] == "true" && (i + 1).abs_diff(anchor) <= 5)
            .min_by_key(|(i, s)| ((i + 1).abs_diff(anchor), s[0].clone()));
        if let Some((_, s)) = nearest {
            let gap = (day(&s[0]) - day(&b[0])).num_days();
            expected.push(format!("{},{},{},{gap}", b[0], s[0], s[1]));
        }
    }
    let stored = q(
        "select btc_date, small_caps_date, small_caps_symbol, gap_days from marts.co_highs order by btc_date",
    );
    assert!(
        expected.len() > 50,
        "{} bitcoin highs paired",
        expected.len()
    );
    // The case a wrapped-around session distance got wrong: the nearest high before the anchor.
    assert!(
        expected.iter().any(|l| l.ends_with(",-3")),
        "no pair three days before the bitcoin high"
    );
    assert_eq!(stored.trim_end().lines().collect::<Vec<_>>(), expected);
}
