-- description: The product's table — one row per calendar day, as known at that day's cut-off (default 18:30 New York; every input is its newest value public by then, never a later one): net liquidity and its inputs, cumulative Fed bill purchases, the priced policy path (FedWatch, else the labelled proxy in its own columns), expected EPS growth, the closes, chain-linked levels and drawdowns of bitcoin, small caps, large caps, tech, blue chips and silver (each role's canonical symbol from marts.asset_roles_daily), bitcoin vs small caps return correlation and lead/lag over the trailing 90 sessions, and a divergence flag. Every value that can be carried forward has an as-of column and an age limit past which it is NULL. The table runs from the first Fed balance-sheet print to the newest day any input became known.
-- column date: calendar day (the values known at its cut-off)
-- column net_liquidity_musd: Fed total assets − TGA − ON RRP, all levels, $M (marts.net_liquidity_daily: WALCL at most 10 days old, TGA and ON RRP at most 7)
-- column net_liquidity_chg_1w_musd: change of net liquidity over 7 days, $M
-- column net_liquidity_chg_4w_musd: change over 28 days, $M
-- column net_liquidity_chg_13w_musd: change over 91 days, $M
-- column fed_total_assets_musd: WALCL, Wednesday level, $M (age ≤ 10 days)
-- column fed_total_assets_as_of: the Wednesday of that print
-- column tga_musd: Treasury General Account level, $M (DTS closing balance, else FRED WDTGAL; age ≤ 7 / 10 days)
-- column tga_as_of: day of that TGA value
-- column tga_source: dts (Daily Treasury Statement) or fred_wdtgal (Wednesday level)
-- column on_rrp_musd: overnight reverse repo, $M (age ≤ 7 days)
-- column on_rrp_as_of: day of that print
-- column reserves_week_avg_musd: WRESBAL, reserve balances, week average ending Wednesday, $M (age ≤ 10 days)
-- column reserves_as_of: the Wednesday ending that week
-- column bill_purchases_cum_usd: Fed outright T-bill purchases of the programme since 2025-12-12 (reserve-management purchases and agency-principal reinvestment, which the NY Fed data cannot separate; small-value test exercises left out: marts.bill_purchases) through the day, USD, by operation date (results are public the same afternoon); NULL before 2025-12-12
-- column next_meeting_date: the next FOMC decision on or after the day, from the newest policy_path row known (age ≤ 5 days)
-- column next_meeting_cut_prob: FedWatch probability of a lower target range at that meeting, 0–1 (NULL on proxy days)
-- column priced_change_12m_bp: FedWatch: expected target-range midpoint at priced_horizon_date minus today's midpoint, bp (negative = cuts priced); NULL on proxy days
-- column priced_horizon_date: the day priced_change_12m_bp refers to (365 days ahead, or after the last meeting the futures cover)
-- column proxy_change_bp: where FedWatch has no odds: Treasury yield − EFFR, bp — a market-rate spread, not a policy path; NULL on FedWatch days
-- column proxy_basis: the proxy's formula (e.g. DGS2 - EFFR)
-- column proxy_horizon_months: the proxy yield's maturity, months (24 for DGS2, 12 for DGS1)
-- column policy_basis: fedwatch or proxy
-- column policy_reason: why the day has no FedWatch odds (NULL on FedWatch days)
-- column policy_as_of: the trade day the policy columns come from (age ≤ 5 days)
-- column sp500_eps_growth_pct: next-year over this-year S&P 500 operating EPS growth, % (marts.eps_growth: newest edition known, ≤ 45 days after its as-of date)
-- column sp500_eps_edition_date: as-of date of that edition
-- column sp600_eps_growth_pct: the same for the S&P 600 small caps, %
-- column sp600_eps_edition_date: as-of date of that edition
-- column rut_eps_growth_pct: the same for the Russell 2000 from vendor files (index RUT), %
-- column rut_eps_edition_date: as-of date of that vendor edition
-- column btc_close: bitcoin close, USD (age ≤ 5 days; a UTC-day close is public after midnight UTC, so day D usually shows D − 1)
-- column btc_drawdown_pct: bitcoin's drawdown from its high since btc_high_since, %
-- column btc_high_since: first day of bitcoin's history in the lake (highs are measured from then)
-- column btc_as_of: day of that close
-- column rut_symbol: the small-cap instrument of the day (^RUT, else IWM: seeds.asset_roles)
-- column rut_close: its close (index points for ^RUT, USD for IWM; age ≤ 5 days)
-- column rut_level: small caps chain-linked across a switch of instrument (equals ^RUT's close while ^RUT is used) — for charts and returns
-- column rut_drawdown_pct: the instrument's drawdown from its own high, %
-- column rut_high_since: first day of that instrument's history in the lake
-- column rut_as_of: day of that close
-- column spx_symbol: the large-cap instrument of the day (^GSPC, else SPY: seeds.asset_roles)
-- column spx_close: its close (index points for ^GSPC, USD for SPY); NULL when more than 5 days old
-- column spx_drawdown_pct: the instrument's drawdown from its own high since its first day in the lake, %
-- column spx_as_of: day of that close
-- column ndx_symbol: the tech instrument of the day (^NDX, else QQQ: seeds.asset_roles)
-- column ndx_close: its close (index points for ^NDX, USD for QQQ); NULL when more than 5 days old
-- column ndx_drawdown_pct: the instrument's drawdown from its own high since its first day in the lake, %
-- column ndx_as_of: day of that close
-- column dji_symbol: the blue-chip instrument of the day (^DJI, else DIA: seeds.asset_roles)
-- column dji_close: its close (index points for ^DJI, USD for DIA); NULL when more than 5 days old
-- column dji_drawdown_pct: the instrument's drawdown from its own high since its first day in the lake, %
-- column dji_as_of: day of that close
-- column silver_symbol: the silver instrument of the day (SI=F, else SLV: seeds.asset_roles)
-- column silver_close: its close (USD per troy ounce for SI=F, USD per share for SLV); NULL when more than 5 days old
-- column silver_drawdown_pct: the instrument's drawdown from its own high since its first day in the lake, %
-- column silver_as_of: day of that close
-- column btc_rut_corr_90d: correlation of bitcoin and small-cap daily returns over the last 90 sessions on which both closed (bitcoin compounded over the same span), from the newest session known (age ≤ 5 days)
-- column btc_lead_sessions: the lead k in −10..10 that maximises the return correlation over the trailing 90 sessions (marts.btc_smallcap_xcorr): positive k pairs small caps' return with bitcoin's k sessions earlier (bitcoin leads), negative k pairs bitcoin's return with small caps' |k| sessions earlier; only data up to the session is used
-- column btc_lead_corr: that maximal correlation
-- column stats_as_of: the session the correlation and lead/lag end on
-- column divergence: one of bitcoin / small caps within 2% of its own high while the other is more than 20% below its own; NULL where either close is NULL (too old)
-- test: unique(date)
-- test: not_null(date)
-- test: accepted_range(btc_rut_corr_90d, -1, 1)
-- test: accepted_range(btc_lead_sessions, -10, 10)
-- test: accepted_range(next_meeting_cut_prob, 0, 1.000001)
-- test: freshness(date, 14)
-- test: no_rows_where(btc_close IS NOT NULL AND btc_as_of < date - INTERVAL '5 days')
-- test: no_rows_where(rut_close IS NOT NULL AND rut_as_of < date - INTERVAL '5 days')
-- test: no_rows_where(spx_close IS NOT NULL AND spx_as_of < date - INTERVAL '5 days')
-- test: no_rows_where(ndx_close IS NOT NULL AND ndx_as_of < date - INTERVAL '5 days')
-- test: no_rows_where(dji_close IS NOT NULL AND dji_as_of < date - INTERVAL '5 days')
-- test: no_rows_where(silver_close IS NOT NULL AND silver_as_of < date - INTERVAL '5 days')
-- test: no_rows_where(btc_rut_corr_90d IS NOT NULL AND stats_as_of < date - INTERVAL '5 days')
-- test: no_rows_where(policy_basis IS NOT NULL AND policy_as_of < date - INTERVAL '5 days')
-- test: no_rows_where(fed_total_assets_musd IS NOT NULL AND fed_total_assets_as_of < date - INTERVAL '10 days')
-- test: no_rows_where(tga_musd IS NOT NULL AND tga_as_of < date - INTERVAL '10 days')
-- test: no_rows_where(sp500_eps_growth_pct IS NOT NULL AND sp500_eps_edition_date < date - INTERVAL '45 days')
-- test: no_rows_where(priced_change_12m_bp IS NOT NULL AND proxy_change_bp IS NOT NULL)
WITH roles AS (
    SELECT role, date, symbol, close, level, drawdown_pct, high_since, known_on FROM marts.asset_roles_daily
),
-- Bitcoin vs small caps: the 90-session correlation is the cross-correlation at lead 0.
corr AS (
    SELECT date, known_on, corr AS btc_rut_corr_90d FROM marts.btc_smallcap_xcorr WHERE k = 0
),
-- Per day, the lead with the highest correlation (ties: the smaller |k|, then the smaller k): the
-- first row of its day in that order. One window over the whole table that marks it, not
-- row_number() = 1 over a window per day: DataFusion's window operator pays per partition (eps
-- below does the same).
best_lag AS (
    SELECT date, k AS btc_lead_sessions, corr AS btc_lead_corr
    FROM (SELECT date, k, corr, lag(date) OVER (ORDER BY date, corr DESC, abs(k), k) AS previous_date
          FROM marts.btc_smallcap_xcorr WHERE corr IS NOT NULL)
    WHERE previous_date IS DISTINCT FROM date
),
stats AS (
    SELECT c.date, c.known_on, c.btc_rut_corr_90d, b.btc_lead_sessions, b.btc_lead_corr
    FROM corr c LEFT JOIN best_lag b ON b.date = c.date
),
policy AS (
    SELECT p.*, known_on(coalesce(fw.available_at, px.available_at)) AS known_on
    FROM marts.policy_path p
    LEFT JOIN (SELECT as_of_date, max(available_at) AS available_at FROM staging.fedwatch_probabilities GROUP BY as_of_date) fw
      ON fw.as_of_date = p.as_of_date AND p.basis = 'fedwatch'
    LEFT JOIN (SELECT as_of_date, max(available_at) AS available_at FROM staging.policy_proxy GROUP BY as_of_date) px
      ON px.as_of_date = p.as_of_date AND p.basis <> 'fedwatch'
),
-- Every carried input as (feed, observation day, first day it is known). The stats feed's days
-- are corr's (stats is corr with the best lead joined on its day): naming corr keeps the lead's
-- window out of the three places this CTE is planned (−30 ms at 2,000 symbols × 25 years).
feeds AS (
    SELECT role AS feed, date, known_on FROM roles
    UNION ALL SELECT 'stats', date, known_on FROM corr
    UNION ALL SELECT 'policy', as_of_date, known_on FROM policy WHERE known_on IS NOT NULL
),
newest AS (
    SELECT feed, known_on, max(date) AS date FROM feeds GROUP BY feed, known_on
),
bills AS (
    -- Exact dollars from the operations; the purpose from marts.bill_purchases.
    SELECT o.operation_date AS date, sum(o.total_par_accepted_usd) AS accepted_usd
    FROM staging.treasury_operation_totals o
    JOIN marts.bill_purchases b ON b.operation_id = o.operation_id
    WHERE b.purpose <> 'small_value_exercise'
    GROUP BY o.operation_date
),
days AS (
    SELECT CAST(unnest(generate_series(
        (SELECT min(date) FROM marts.net_liquidity_daily),
        -- the newest day anything the table shows became known: liquidity, the carried feeds, and
        -- the bill purchases (public on their operation day)
        greatest((SELECT max(date) FROM marts.net_liquidity_daily), (SELECT max(known_on) FROM feeds),
                 (SELECT max(date) FROM bills)),
        INTERVAL '1 day')) AS DATE) AS date
),
-- The feeds, named here rather than as SELECT DISTINCT feed FROM feeds: each CTE a query names is
-- planned again where it is named, and feeds once less is ~10 ms less planning. They are the roles
-- the columns below read, the correlation stats and the policy path; a name without rows adds no
-- row below (its observation day is NULL).
names AS (
    SELECT feed FROM (VALUES ('bitcoin'), ('small_caps'), ('large_caps'), ('tech'), ('blue_chips'), ('silver'), ('stats'), ('policy')) AS t(feed)
),
as_of AS (
    SELECT d.date, n.feed,
           max(w.date) OVER (PARTITION BY n.feed ORDER BY d.date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS obs_date
    -- names first: DataFusion's cross join emits a batch per row of its left side and right batch,
    -- and thousands of tiny batches made the sort behind this window 70× slower
    FROM names n CROSS JOIN days d
    LEFT JOIN newest w ON w.feed = n.feed AND w.known_on = d.date
),
-- Per day, each carried input's newest known row within 5 days: the roles, the correlation
-- stats and the policy path, in one pass over as_of (a CTE is planned again wherever a query
-- names it: three passes planned as_of, and the feeds under it, three times over).
carried AS (
    SELECT a.date,
        max(CASE WHEN r.role = 'bitcoin' THEN r.close END) AS btc_close,
        max(CASE WHEN r.role = 'bitcoin' THEN r.drawdown_pct END) AS btc_drawdown_pct,
        max(CASE WHEN r.role = 'bitcoin' THEN r.high_since END) AS btc_high_since,
        max(CASE WHEN r.role = 'bitcoin' THEN r.date END) AS btc_as_of,
        max(CASE WHEN r.role = 'small_caps' THEN r.symbol END) AS rut_symbol,
        max(CASE WHEN r.role = 'small_caps' THEN r.close END) AS rut_close,
        max(CASE WHEN r.role = 'small_caps' THEN r.level END) AS rut_level,
        max(CASE WHEN r.role = 'small_caps' THEN r.drawdown_pct END) AS rut_drawdown_pct,
        max(CASE WHEN r.role = 'small_caps' THEN r.high_since END) AS rut_high_since,
        max(CASE WHEN r.role = 'small_caps' THEN r.date END) AS rut_as_of,
        max(CASE WHEN r.role = 'large_caps' THEN r.symbol END) AS spx_symbol,
        max(CASE WHEN r.role = 'large_caps' THEN r.close END) AS spx_close,
        max(CASE WHEN r.role = 'large_caps' THEN r.drawdown_pct END) AS spx_drawdown_pct,
        max(CASE WHEN r.role = 'large_caps' THEN r.date END) AS spx_as_of,
        max(CASE WHEN r.role = 'tech' THEN r.symbol END) AS ndx_symbol,
        max(CASE WHEN r.role = 'tech' THEN r.close END) AS ndx_close,
        max(CASE WHEN r.role = 'tech' THEN r.drawdown_pct END) AS ndx_drawdown_pct,
        max(CASE WHEN r.role = 'tech' THEN r.date END) AS ndx_as_of,
        max(CASE WHEN r.role = 'blue_chips' THEN r.symbol END) AS dji_symbol,
        max(CASE WHEN r.role = 'blue_chips' THEN r.close END) AS dji_close,
        max(CASE WHEN r.role = 'blue_chips' THEN r.drawdown_pct END) AS dji_drawdown_pct,
        max(CASE WHEN r.role = 'blue_chips' THEN r.date END) AS dji_as_of,
        max(CASE WHEN r.role = 'silver' THEN r.symbol END) AS silver_symbol,
        max(CASE WHEN r.role = 'silver' THEN r.close END) AS silver_close,
        max(CASE WHEN r.role = 'silver' THEN r.drawdown_pct END) AS silver_drawdown_pct,
        max(CASE WHEN r.role = 'silver' THEN r.date END) AS silver_as_of,
        max(s.btc_rut_corr_90d) AS btc_rut_corr_90d,
        max(s.btc_lead_sessions) AS btc_lead_sessions,
        max(s.btc_lead_corr) AS btc_lead_corr,
        max(s.date) AS stats_as_of,
        max(p.as_of_date) AS policy_as_of,
        max(CASE WHEN p.next_meeting_date >= a.date THEN p.next_meeting_date END) AS next_meeting_date,
        max(CASE WHEN p.next_meeting_date >= a.date THEN p.next_meeting_cut_prob END) AS next_meeting_cut_prob,
        max(p.priced_change_12m_bp) AS priced_change_12m_bp,
        max(p.priced_horizon_date) AS priced_horizon_date,
        max(p.proxy_change_bp) AS proxy_change_bp,
        max(p.proxy_basis) AS proxy_basis,
        max(p.proxy_horizon_months) AS proxy_horizon_months,
        max(p.basis) AS policy_basis,
        max(p.reason) AS policy_reason
    FROM as_of a
    LEFT JOIN roles r ON r.role = a.feed AND r.date = a.obs_date
    LEFT JOIN stats s ON a.feed = 'stats' AND s.date = a.obs_date
    LEFT JOIN policy p ON a.feed = 'policy' AND p.as_of_date = a.obs_date
    WHERE a.obs_date >= a.date - INTERVAL '5 days'
    GROUP BY a.date
),
eps AS (
    -- Per day and index, the newest edition of any source (marts.eps_growth applies the age rule).
    SELECT date,
           max(CASE WHEN index = 'SP500' THEN growth_pct END) AS sp500_eps_growth_pct,
           max(CASE WHEN index = 'SP500' THEN edition_date END) AS sp500_eps_edition_date,
           max(CASE WHEN index = 'SP600' THEN growth_pct END) AS sp600_eps_growth_pct,
           max(CASE WHEN index = 'SP600' THEN edition_date END) AS sp600_eps_edition_date,
           max(CASE WHEN index = 'RUT' THEN growth_pct END) AS rut_eps_growth_pct,
           max(CASE WHEN index = 'RUT' THEN edition_date END) AS rut_eps_edition_date
    FROM (SELECT date, index, growth_pct, edition_date,
                 lag(date) OVER (PARTITION BY index ORDER BY date, edition_date DESC, source) AS previous_date
          FROM marts.eps_growth)
    WHERE previous_date IS DISTINCT FROM date
    GROUP BY date
)
SELECT d.date,
       n.net_liquidity_musd, n.net_liquidity_chg_1w_musd, n.net_liquidity_chg_4w_musd, n.net_liquidity_chg_13w_musd,
       n.fed_total_assets_musd, n.fed_total_assets_as_of, n.tga_musd, n.tga_as_of, n.tga_source, n.on_rrp_musd, n.on_rrp_as_of,
       n.reserves_week_avg_musd, n.reserves_as_of,
       CASE WHEN d.date >= DATE '2025-12-12' THEN
           sum(coalesce(b.accepted_usd, 0)) OVER (ORDER BY d.date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
       END AS bill_purchases_cum_usd,
       r.next_meeting_date, r.next_meeting_cut_prob, r.priced_change_12m_bp, r.priced_horizon_date,
       r.proxy_change_bp, r.proxy_basis, r.proxy_horizon_months, r.policy_basis, r.policy_reason, r.policy_as_of,
       e.sp500_eps_growth_pct, e.sp500_eps_edition_date, e.sp600_eps_growth_pct, e.sp600_eps_edition_date,
       e.rut_eps_growth_pct, e.rut_eps_edition_date,
       r.btc_close, r.btc_drawdown_pct, r.btc_high_since, r.btc_as_of,
       r.rut_symbol, r.rut_close, r.rut_level, r.rut_drawdown_pct, r.rut_high_since, r.rut_as_of,
       r.spx_symbol, r.spx_close, r.spx_drawdown_pct, r.spx_as_of,
       r.ndx_symbol, r.ndx_close, r.ndx_drawdown_pct, r.ndx_as_of,
       r.dji_symbol, r.dji_close, r.dji_drawdown_pct, r.dji_as_of,
       r.silver_symbol, r.silver_close, r.silver_drawdown_pct, r.silver_as_of,
       r.btc_rut_corr_90d, r.btc_lead_sessions, r.btc_lead_corr, r.stats_as_of,
       CASE WHEN r.btc_close IS NOT NULL AND r.rut_close IS NOT NULL THEN
           (r.btc_drawdown_pct >= -2 AND r.rut_drawdown_pct < -20) OR (r.rut_drawdown_pct >= -2 AND r.btc_drawdown_pct < -20)
       END AS divergence
FROM days d
LEFT JOIN marts.net_liquidity_daily n ON n.date = d.date
LEFT JOIN carried r ON r.date = d.date
LEFT JOIN bills b ON b.date = d.date
LEFT JOIN eps e ON e.date = d.date
ORDER BY d.date
