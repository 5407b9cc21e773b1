-- description: Net liquidity = Fed total assets − Treasury General Account − overnight reverse repo, in $M, one row per calendar day as known at that day's cut-off (default 18:30 New York): each input is its newest print public by then (available_at), never a later one; a FRED revision counts from the day it was seen, and the days before it keep the print they knew. All three on a level basis: WALCL is the Wednesday level; the TGA is the Daily Treasury Statement's closing balance (a daily level), else FRED's Wednesday-level WDTGAL — never the week-average WTREGEN, which is shown in its own column. Every input has an as-of date and a maximum age past which it is NULL (weekly series 10 days, DTS and ON RRP 7 days). The table runs from the first WALCL print to the newest day any input (liquidity or prices) became known.
-- column date: calendar day (the values known at its cut-off)
-- column fed_total_assets_musd: WALCL, Fed total assets, Wednesday level, $M; NULL when the newest print known is more than 10 days old
-- column fed_total_assets_as_of: the Wednesday of that WALCL print
-- column tga_musd: Treasury General Account, level, $M: the DTS closing balance of the newest DTS day known (its opening balance where the DTS published no closing one) if at most 7 days old, else WDTGAL (Wednesday level) if at most 10 days old, else NULL
-- column tga_as_of: the day of that TGA value
-- column tga_source: dts (Daily Treasury Statement) or fred_wdtgal
-- column tga_week_avg_musd: WTREGEN, the TGA's week average (Thursday–Wednesday), $M, for reference only (not used in net liquidity); NULL past 10 days
-- column on_rrp_musd: overnight reverse repo (RRPONTSYD, $B × 1000), $M; NULL past 7 days
-- column on_rrp_as_of: the day of that ON RRP print
-- column reserves_week_avg_musd: WRESBAL, reserve balances with Federal Reserve Banks, week average ending Wednesday, $M; NULL past 10 days
-- column reserves_as_of: the Wednesday ending that week
-- column net_liquidity_musd: fed_total_assets_musd − tga_musd − on_rrp_musd, $M (NULL when any is NULL)
-- column net_liquidity_chg_1w_musd: change over 7 days, $M
-- column net_liquidity_chg_4w_musd: change over 28 days, $M
-- column net_liquidity_chg_13w_musd: change over 91 days, $M
-- tags: liquidity
-- test: unique(date)
-- test: not_null(date)
-- test: accepted_range(net_liquidity_musd, 0, 20000000)
-- test: freshness(date, 14)
WITH feeds AS (
    -- One row per observation and day it became known: each FRED vintage of the five series (a
    -- revision is known from the day it was seen, its available_at; a vintage without a value is
    -- passed over; two vintages known the same day: the later one) and each DTS day. Not
    -- fred_observations_latest: a revision must not reach back to the days before it was seen,
    -- and those days still show the print they knew.
    SELECT series_id AS feed, date, last_value(value_musd ORDER BY available_at, realtime_start) AS value,
           known_on(available_at) AS known_on
    FROM staging.fred_observations
    WHERE series_id IN ('WALCL', 'WDTGAL', 'WTREGEN', 'RRPONTSYD', 'WRESBAL') AND value_musd IS NOT NULL
    GROUP BY series_id, date, known_on(available_at)
    UNION ALL
    SELECT 'DTS' AS feed, record_date AS date, max(coalesce(close_balance_musd, open_balance_musd)) AS value,
           max(known_on(available_at)) AS known_on
    FROM staging.tga_daily
    WHERE coalesce(close_balance_musd, open_balance_musd) IS NOT NULL
    GROUP BY record_date
),
-- Each row's key orders (observation day, day known): the greatest key known by a day is the
-- newest observation, in its newest vintage known that day.
keyed AS (
    SELECT feed, date, value, known_on, CAST(date AS BIGINT) * 100000 + CAST(known_on AS BIGINT) AS key FROM feeds
),
newest AS (
    SELECT feed, known_on, max(key) AS key FROM keyed GROUP BY feed, known_on
),
-- The table runs to the newest day the lake knows anything the product shows, so that a day
-- with new prices but no new liquidity print still has its row (with each input's as-of).
newest_known AS (
    -- known_on is non-decreasing in available_at: the newest day is known_on(max(available_at)),
    -- one call instead of one per price row
    SELECT known_on(max(available_at)) AS known_on FROM staging.prices_daily
    UNION ALL SELECT known_on(max(available_at)) FROM staging.tga_daily
    UNION ALL SELECT known_on FROM feeds
),
bounds AS (
    SELECT (SELECT min(known_on) FROM feeds WHERE feed = 'WALCL') AS first_day, max(known_on) AS last_day FROM newest_known
),
days AS (
    SELECT CAST(unnest(generate_series(first_day, last_day, INTERVAL '1 day')) AS DATE) AS date FROM bounds
),
-- The feeds, named here rather than as SELECT DISTINCT feed FROM feeds: each CTE a query names is
-- planned again where it is named, and feeds once less is ~10 ms less planning. They are the five
-- FRED series and the DTS that feeds reads; a name without rows adds no row below (its observation
-- day is NULL).
names AS (
    SELECT feed FROM (VALUES ('WALCL'), ('WDTGAL'), ('WTREGEN'), ('RRPONTSYD'), ('WRESBAL'), ('DTS')) AS t(feed)
),
-- For each day and input, the newest observation public by the day's cut-off (its key).
as_of AS (
    SELECT d.date, n.feed,
           max(w.key) OVER (PARTITION BY n.feed ORDER BY d.date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS obs_key
    -- names first: DataFusion's cross join emits a batch per row of its left side and right batch,
    -- and thousands of tiny batches made the sort behind this window 70× slower
    FROM names n CROSS JOIN days d
    LEFT JOIN newest w ON w.feed = n.feed AND w.known_on = d.date
),
valued AS (
    SELECT a.date, a.feed, f.date AS obs_date, f.value
    FROM as_of a JOIN keyed f ON f.feed = a.feed AND f.key = a.obs_key
),
wide AS (
    SELECT d.date,
        max(CASE WHEN v.feed = 'WALCL' AND v.obs_date >= d.date - INTERVAL '10 days' THEN v.value END) AS walcl,
        max(CASE WHEN v.feed = 'WALCL' THEN v.obs_date END) AS walcl_as_of,
        max(CASE WHEN v.feed = 'DTS' AND v.obs_date >= d.date - INTERVAL '7 days' THEN v.value END) AS dts,
        max(CASE WHEN v.feed = 'DTS' THEN v.obs_date END) AS dts_as_of,
        max(CASE WHEN v.feed = 'WDTGAL' AND v.obs_date >= d.date - INTERVAL '10 days' THEN v.value END) AS wdtgal,
        max(CASE WHEN v.feed = 'WDTGAL' THEN v.obs_date END) AS wdtgal_as_of,
        max(CASE WHEN v.feed = 'WTREGEN' AND v.obs_date >= d.date - INTERVAL '10 days' THEN v.value END) AS wtregen,
        max(CASE WHEN v.feed = 'RRPONTSYD' AND v.obs_date >= d.date - INTERVAL '7 days' THEN v.value END) AS rrp,
        max(CASE WHEN v.feed = 'RRPONTSYD' THEN v.obs_date END) AS rrp_as_of,
        max(CASE WHEN v.feed = 'WRESBAL' AND v.obs_date >= d.date - INTERVAL '10 days' THEN v.value END) AS reserves,
        max(CASE WHEN v.feed = 'WRESBAL' THEN v.obs_date END) AS reserves_as_of
    FROM days d LEFT JOIN valued v ON v.date = d.date
    GROUP BY d.date
),
measured AS (
    SELECT date,
        walcl AS fed_total_assets_musd,
        walcl_as_of AS fed_total_assets_as_of,
        coalesce(dts, wdtgal) AS tga_musd,
        CASE WHEN dts IS NOT NULL THEN dts_as_of WHEN wdtgal IS NOT NULL THEN wdtgal_as_of END AS tga_as_of,
        CASE WHEN dts IS NOT NULL THEN 'dts' WHEN wdtgal IS NOT NULL THEN 'fred_wdtgal' END AS tga_source,
        wtregen AS tga_week_avg_musd,
        rrp AS on_rrp_musd,
        rrp_as_of AS on_rrp_as_of,
        reserves AS reserves_week_avg_musd,
        reserves_as_of
    FROM wide
)
SELECT
    date, fed_total_assets_musd, fed_total_assets_as_of, tga_musd, tga_as_of, tga_source, tga_week_avg_musd,
    on_rrp_musd, on_rrp_as_of, reserves_week_avg_musd, reserves_as_of,
    fed_total_assets_musd - tga_musd - on_rrp_musd AS net_liquidity_musd,
    (fed_total_assets_musd - tga_musd - on_rrp_musd) - lag(fed_total_assets_musd - tga_musd - on_rrp_musd, 7) OVER (ORDER BY date) AS net_liquidity_chg_1w_musd,
    (fed_total_assets_musd - tga_musd - on_rrp_musd) - lag(fed_total_assets_musd - tga_musd - on_rrp_musd, 28) OVER (ORDER BY date) AS net_liquidity_chg_4w_musd,
    (fed_total_assets_musd - tga_musd - on_rrp_musd) - lag(fed_total_assets_musd - tga_musd - on_rrp_musd, 91) OVER (ORDER BY date) AS net_liquidity_chg_13w_musd
FROM measured
ORDER BY date
