-- description: Net liquidity = Fed total assets − Treasury General Account − overnight reverse repo, in $M, one row per calendar day. Weekly series hold until their next print; the daily DTS TGA is used where it exists, FRED's weekly WTREGEN elsewhere.
-- column date: calendar day
-- column fed_total_assets_musd: WALCL (Wednesday level), last print on or before the day
-- column tga_musd: TGA: DTS closing balance of the day (or, where the DTS published no closing balance, its opening balance), else the last FRED WTREGEN print
-- column tga_source: dts or fred_wtregen
-- column on_rrp_musd: overnight reverse repo (RRPONTSYD, $B × 1000), last print on or before the day
-- column reserves_musd: reserve balances with Federal Reserve Banks (WRESBAL), last print
-- column net_liquidity_musd: fed_total_assets_musd − tga_musd − on_rrp_musd
-- column net_liquidity_chg_1w_musd: change over 7 days
-- column net_liquidity_chg_4w_musd: change over 28 days
-- column net_liquidity_chg_13w_musd: change over 91 days
-- tags: liquidity
-- test: unique(date)
-- test: not_null(date, fed_total_assets_musd, tga_musd, on_rrp_musd, net_liquidity_musd)
-- test: accepted_range(net_liquidity_musd, 0, 20000000)
-- test: freshness(date, 14)
WITH fred AS (
    SELECT series_id, date, value_musd
    FROM staging.fred_observations_latest
    WHERE series_id IN ('WALCL', 'WTREGEN', 'RRPONTSYD', 'WRESBAL') AND value_musd IS NOT NULL
),
bounds AS (
    SELECT min(date) AS first_day, max(date) AS last_day FROM fred WHERE series_id = 'WALCL'
),
days AS (
    SELECT CAST(unnest(generate_series(first_day, last_day, INTERVAL '1 day')) AS DATE) AS date FROM bounds
),
dts AS (
    SELECT record_date AS date, coalesce(close_balance_musd, open_balance_musd) AS tga_dts_musd
    FROM staging.tga_daily
),
joined AS (
    SELECT
        d.date,
        max(CASE WHEN f.series_id = 'WALCL' THEN f.value_musd END) AS walcl,
        max(CASE WHEN f.series_id = 'WTREGEN' THEN f.value_musd END) AS wtregen,
        max(CASE WHEN f.series_id = 'RRPONTSYD' THEN f.value_musd END) AS rrp,
        max(CASE WHEN f.series_id = 'WRESBAL' THEN f.value_musd END) AS reserves,
        max(t.tga_dts_musd) AS tga_dts
    FROM days d
    LEFT JOIN fred f ON f.date = d.date
    LEFT JOIN dts t ON t.date = d.date
    GROUP BY d.date
),
filled AS (
    SELECT
        date,
        last_value(walcl) IGNORE NULLS OVER w AS fed_total_assets_musd,
        last_value(wtregen) IGNORE NULLS OVER w AS wtregen_musd,
        last_value(tga_dts) IGNORE NULLS OVER w AS tga_dts_musd,
        max(CASE WHEN tga_dts IS NOT NULL THEN date END) OVER w AS tga_dts_date,
        last_value(rrp) IGNORE NULLS OVER w AS on_rrp_musd,
        last_value(reserves) IGNORE NULLS OVER w AS reserves_musd
    FROM joined
    WINDOW w AS (ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
measured AS (
    SELECT
        date,
        fed_total_assets_musd,
        -- The DTS is daily but skips weekends and holidays: its last balance holds for up to a week.
        CASE WHEN tga_dts_date >= date - INTERVAL '7 days' THEN tga_dts_musd ELSE wtregen_musd END AS tga_musd,
        CASE WHEN tga_dts_date >= date - INTERVAL '7 days' THEN 'dts' ELSE 'fred_wtregen' END AS tga_source,
        coalesce(on_rrp_musd, 0) AS on_rrp_musd,
        reserves_musd
    FROM filled
)
SELECT
    date,
    fed_total_assets_musd,
    tga_musd,
    tga_source,
    on_rrp_musd,
    reserves_musd,
    fed_total_assets_musd - tga_musd - on_rrp_musd AS net_liquidity_musd,
    (fed_total_assets_musd - tga_musd - on_rrp_musd) - lag(fed_total_assets_musd - tga_musd - on_rrp_musd, 7) OVER (ORDER BY date) AS net_liquidity_chg_1w_musd,
    (fed_total_assets_musd - tga_musd - on_rrp_musd) - lag(fed_total_assets_musd - tga_musd - on_rrp_musd, 28) OVER (ORDER BY date) AS net_liquidity_chg_4w_musd,
    (fed_total_assets_musd - tga_musd - on_rrp_musd) - lag(fed_total_assets_musd - tga_musd - on_rrp_musd, 91) OVER (ORDER BY date) AS net_liquidity_chg_13w_musd
FROM measured
WHERE tga_musd IS NOT NULL
ORDER BY date
