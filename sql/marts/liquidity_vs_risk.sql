-- description: The product's table — one row per calendar day: net liquidity and its changes, reserves, cumulative Fed bill purchases since the reserve-management programme began (2025-12-12), the priced policy path (FedWatch, else the labelled proxy), expected EPS growth, bitcoin's and the Russell 2000's (and other risk assets') closes and drawdowns from their highs, their rolling 90-day return correlation, and a divergence flag.
-- column date: calendar day (weekends and holidays carry the last equity close; bitcoin trades every day)
-- column net_liquidity_musd: Fed total assets − TGA − ON RRP, $M (marts.net_liquidity_daily)
-- column bill_purchases_cum_usd: Fed outright T-bill purchases accepted since 2025-12-12, USD, by operation date
-- column next_meeting_date: next FOMC decision on or after the day
-- column next_meeting_cut_prob: FedWatch probability of a lower target range at the next meeting (NULL where no futures cover it)
-- column priced_change_bp: proxy for the priced policy move where FedWatch has nothing: 2y (else 1y) yield − EFFR, bp
-- column sp500_eps_growth_pct: next-year over this-year S&P 500 operating EPS growth, % (marts.eps_growth, newest edition known that day)
-- column sp600_eps_growth_pct: the same for the S&P 600 small caps
-- column btc_rut_corr_90d: correlation of bitcoin and Russell 2000 daily returns over the last 90 equity sessions; bitcoin's return is compounded over the same span as each equity return (Friday → Monday includes the weekend)
-- column btc_lead_sessions: the lead (positive: bitcoin's returns lead small caps' by that many sessions) or lag (negative) within ±10 sessions that maximises their return correlation over the trailing 90 sessions
-- column btc_lead_corr: that maximal correlation
-- column divergence: one of bitcoin / small caps within 2% of its all-time high while the other is more than 20% below its own; NULL where either close is more than 5 days old
-- column btc_as_of: day of the newest bitcoin close (btc_close is NULL when it is more than 5 days old)
-- column rut_as_of: day of the newest Russell 2000 close (rut_close is NULL when it is more than 5 days old)
-- test: unique(date)
-- test: not_null(date, net_liquidity_musd)
-- test: accepted_range(btc_rut_corr_90d, -1, 1)
-- test: accepted_range(btc_lead_sessions, -10, 10)
-- test: freshness(date, 14)
WITH assets AS (
    SELECT date,
        max(CASE WHEN symbol = 'BTC-USD' THEN close END) AS btc_close,
        max(CASE WHEN symbol = 'BTC-USD' THEN drawdown_pct END) AS btc_drawdown_pct,
        max(CASE WHEN symbol = '^RUT' THEN close END) AS rut_close,
        max(CASE WHEN symbol = '^RUT' THEN drawdown_pct END) AS rut_drawdown_pct,
        max(CASE WHEN symbol = '^GSPC' THEN close END) AS spx_close,
        max(CASE WHEN symbol = '^GSPC' THEN drawdown_pct END) AS spx_drawdown_pct,
        max(CASE WHEN symbol = '^NDX' THEN close END) AS ndx_close,
        max(CASE WHEN symbol = '^NDX' THEN drawdown_pct END) AS ndx_drawdown_pct,
        max(CASE WHEN symbol = '^DJI' THEN close END) AS dji_close,
        max(CASE WHEN symbol = '^DJI' THEN drawdown_pct END) AS dji_drawdown_pct,
        max(CASE WHEN symbol = 'SI=F' THEN close END) AS silver_close,
        max(CASE WHEN symbol = 'SI=F' THEN drawdown_pct END) AS silver_drawdown_pct
    FROM marts.asset_daily
    GROUP BY date
),
-- Returns aligned on Russell 2000 sessions: bitcoin compounded from the previous session's day.
sessions AS (
    SELECT date, rut_close, btc_close,
           rut_close / lag(rut_close) OVER (ORDER BY date) - 1 AS rut_ret,
           btc_close / lag(btc_close) OVER (ORDER BY date) - 1 AS btc_ret
    FROM assets WHERE rut_close IS NOT NULL AND btc_close IS NOT NULL
),
corr AS (
    SELECT date,
           CASE WHEN count(btc_ret) OVER w = 90 THEN corr(btc_ret, rut_ret) OVER w END AS btc_rut_corr_90d
    FROM sessions
    WINDOW w AS (ORDER BY date ROWS BETWEEN 89 PRECEDING AND CURRENT ROW)
),
-- Cross-correlation at leads/lags of −10..10 sessions over the same trailing 90 sessions:
-- at lag k, bitcoin's return k sessions earlier is paired with today's small-cap return.
indexed AS (
    SELECT date, rut_ret, btc_ret, row_number() OVER (ORDER BY date) AS idx
    FROM sessions WHERE rut_ret IS NOT NULL AND btc_ret IS NOT NULL
),
lags AS (
    SELECT CAST(value AS BIGINT) AS k FROM generate_series(-10, 10)
),
shifted AS (
    SELECT a.date, a.idx, l.k, a.rut_ret, b.btc_ret
    FROM indexed a CROSS JOIN lags l JOIN indexed b ON b.idx = a.idx - l.k
),
xcorr AS (
    SELECT date, k,
           CASE WHEN count(*) OVER w = 90 THEN corr(btc_ret, rut_ret) OVER w END AS c
    FROM shifted
    WINDOW w AS (PARTITION BY k ORDER BY idx ROWS BETWEEN 89 PRECEDING AND CURRENT ROW)
),
best_lag AS (
    SELECT date, k AS btc_lead_sessions, c AS btc_lead_corr
    FROM (SELECT date, k, c, row_number() OVER (PARTITION BY date ORDER BY c DESC, abs(k), k) AS rn FROM xcorr WHERE c IS NOT NULL)
    WHERE rn = 1
),
bills AS (
    SELECT operation_date AS date, sum(total_par_accepted_usd) AS accepted_usd
    FROM staging.treasury_operation_totals
    WHERE is_bill_purchase AND operation_date >= DATE '2025-12-12'
    GROUP BY operation_date
),
fedwatch AS (
    SELECT f.as_of_date AS date, f.meeting_date,
           sum(CASE WHEN f.target_low_bps < t.current_low_bps THEN f.probability ELSE 0 END) AS cut_prob
    FROM staging.fedwatch_probabilities f
    JOIN (SELECT as_of_date, max(target_low_bps) AS top_bps, min(rate_start_pct) AS start_pct FROM staging.fedwatch_probabilities WHERE meeting_index = 1 GROUP BY as_of_date) s
      ON s.as_of_date = f.as_of_date
    JOIN (SELECT date, CAST(round(value * 100) AS BIGINT) AS current_low_bps FROM staging.fred_observations_latest WHERE series_id = 'DFEDTARL') t
      ON t.date = f.as_of_date
    WHERE f.meeting_index = 1
    GROUP BY f.as_of_date, f.meeting_date
),
eps AS (
    SELECT date,
           max(CASE WHEN index = 'SP500' THEN growth_pct END) AS sp500_eps_growth_pct,
           max(CASE WHEN index = 'SP600' THEN growth_pct END) AS sp600_eps_growth_pct
    FROM marts.eps_growth GROUP BY date
),
joined AS (
    SELECT n.date, n.net_liquidity_musd, n.net_liquidity_chg_1w_musd, n.net_liquidity_chg_4w_musd, n.net_liquidity_chg_13w_musd,
           n.reserves_musd, n.fed_total_assets_musd, n.tga_musd, n.on_rrp_musd,
           b.accepted_usd, fw.meeting_date AS fw_meeting, fw.cut_prob, px.next_meeting_date AS px_meeting, px.priced_change_bp,
           a.btc_close, a.btc_drawdown_pct, a.rut_close, a.rut_drawdown_pct, a.spx_close, a.spx_drawdown_pct,
           a.ndx_close, a.ndx_drawdown_pct, a.dji_close, a.dji_drawdown_pct, a.silver_close, a.silver_drawdown_pct,
           c.btc_rut_corr_90d, bl.btc_lead_sessions, bl.btc_lead_corr, e.sp500_eps_growth_pct, e.sp600_eps_growth_pct
    FROM marts.net_liquidity_daily n
    LEFT JOIN eps e ON e.date = n.date
    LEFT JOIN assets a ON a.date = n.date
    LEFT JOIN corr c ON c.date = n.date
    LEFT JOIN best_lag bl ON bl.date = n.date
    LEFT JOIN bills b ON b.date = n.date
    LEFT JOIN fedwatch fw ON fw.date = n.date
    LEFT JOIN staging.policy_proxy px ON px.as_of_date = n.date
),
filled AS (
    SELECT date, net_liquidity_musd, net_liquidity_chg_1w_musd, net_liquidity_chg_4w_musd, net_liquidity_chg_13w_musd,
           reserves_musd, fed_total_assets_musd, tga_musd, on_rrp_musd,
           CASE WHEN date >= DATE '2025-12-12' THEN sum(coalesce(accepted_usd, 0)) OVER w END AS bill_purchases_cum_usd,
           coalesce(fw_meeting, px_meeting) AS next_meeting_date,
           cut_prob AS next_meeting_cut_prob,
           priced_change_bp,
           sp500_eps_growth_pct,
           sp600_eps_growth_pct,
           last_value(btc_close) IGNORE NULLS OVER w AS btc_close,
           last_value(btc_drawdown_pct) IGNORE NULLS OVER w AS btc_drawdown_pct,
           max(CASE WHEN btc_close IS NOT NULL THEN date END) OVER w AS btc_as_of,
           last_value(rut_close) IGNORE NULLS OVER w AS rut_close,
           last_value(rut_drawdown_pct) IGNORE NULLS OVER w AS rut_drawdown_pct,
           max(CASE WHEN rut_close IS NOT NULL THEN date END) OVER w AS rut_as_of,
           last_value(spx_close) IGNORE NULLS OVER w AS spx_close,
           last_value(spx_drawdown_pct) IGNORE NULLS OVER w AS spx_drawdown_pct,
           last_value(ndx_close) IGNORE NULLS OVER w AS ndx_close,
           last_value(ndx_drawdown_pct) IGNORE NULLS OVER w AS ndx_drawdown_pct,
           last_value(dji_close) IGNORE NULLS OVER w AS dji_close,
           last_value(dji_drawdown_pct) IGNORE NULLS OVER w AS dji_drawdown_pct,
           last_value(silver_close) IGNORE NULLS OVER w AS silver_close,
           last_value(silver_drawdown_pct) IGNORE NULLS OVER w AS silver_drawdown_pct,
           last_value(btc_rut_corr_90d) IGNORE NULLS OVER w AS btc_rut_corr_90d,
           last_value(btc_lead_sessions) IGNORE NULLS OVER w AS btc_lead_sessions,
           last_value(btc_lead_corr) IGNORE NULLS OVER w AS btc_lead_corr
    FROM joined
    WINDOW w AS (ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
-- A close older than 5 days is stale (that history ended), not a level that still holds.
SELECT date, net_liquidity_musd, net_liquidity_chg_1w_musd, net_liquidity_chg_4w_musd, net_liquidity_chg_13w_musd,
       reserves_musd, fed_total_assets_musd, tga_musd, on_rrp_musd, bill_purchases_cum_usd,
       next_meeting_date, next_meeting_cut_prob, priced_change_bp, sp500_eps_growth_pct, sp600_eps_growth_pct,
       CASE WHEN btc_as_of >= date - INTERVAL '5 days' THEN btc_close END AS btc_close,
       CASE WHEN btc_as_of >= date - INTERVAL '5 days' THEN btc_drawdown_pct END AS btc_drawdown_pct,
       btc_as_of,
       CASE WHEN rut_as_of >= date - INTERVAL '5 days' THEN rut_close END AS rut_close,
       CASE WHEN rut_as_of >= date - INTERVAL '5 days' THEN rut_drawdown_pct END AS rut_drawdown_pct,
       rut_as_of,
       spx_close, spx_drawdown_pct, ndx_close, ndx_drawdown_pct, dji_close, dji_drawdown_pct,
       silver_close, silver_drawdown_pct, btc_rut_corr_90d, btc_lead_sessions, btc_lead_corr,
       CASE WHEN btc_as_of >= date - INTERVAL '5 days' AND rut_as_of >= date - INTERVAL '5 days' THEN
           (btc_drawdown_pct >= -2 AND rut_drawdown_pct < -20) OR (rut_drawdown_pct >= -2 AND btc_drawdown_pct < -20)
       END AS divergence
FROM filled
WHERE date >= DATE '2015-01-01'
ORDER BY date
