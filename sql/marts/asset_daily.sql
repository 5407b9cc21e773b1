-- description: Per symbol and trading day: close, daily return, running all-time high, drawdown from it and a new-high flag, plus the asset role (bitcoin, small_caps, large_caps, tech, blue_chips, silver). Highs are over the symbol's whole history in the lake (history_start says since when: the source's earliest day, not the instrument's true first day when the source's history is shorter).
-- column symbol: ticker as stored in staging.prices_daily
-- column role: asset role the symbol stands for (seeds.asset_roles; 'other' when not listed)
-- column date: trading day (for bitcoin, the UTC day of the candle)
-- column close: close of the day, in the symbol's currency (USD); the preferred source's row when several sources have it (yahoo, then coinbase, stooq, others)
-- column daily_return: close / the symbol's previous close − 1 (a fraction, not %)
-- column ath_close: highest close of this symbol from history_start up to and including the day
-- column drawdown_pct: (close / ath_close − 1) × 100, % (0 at a new high)
-- column is_new_high: the close is strictly above every earlier close of the symbol since history_start
-- column history_start: first day of the symbol's history in the lake: highs, drawdowns and new-high flags are "since history_start"
-- column available_at: when the close became public (UTC; the price row's available_at)
-- column known_on: first day whose cut-off (default 18:30 New York) is at or after available_at: the first mart day that may use the row
-- materialized: incremental
-- unique_key: symbol, date
-- partition_by: symbol
-- append_sql: append/asset_daily.sql
-- test: unique(symbol, date)
-- test: not_null(symbol, date, close, ath_close, drawdown_pct, history_start, known_on)
-- test: accepted_range(drawdown_pct, -100, 0)
-- test: relationships(symbol, staging.prices_daily.symbol)
-- test: freshness(date, 7)
WITH ranked AS (
    SELECT
        symbol, date, close, available_at,
        -- The preferred source's row of a day is the first of that day in this order. Ordering
        -- by symbol then date (not a window per symbol and day) means one sort serves this
        -- window and every window below: the rows arrive already in (symbol, date) order.
        lag(date) OVER (
            PARTITION BY symbol
            ORDER BY date, CASE source WHEN 'yahoo' THEN 1 WHEN 'coinbase' THEN 2 WHEN 'stooq' THEN 3 ELSE 4 END, source
        ) AS previous_date
    FROM staging.prices_daily
),
prices AS (
    SELECT symbol, date, close, available_at FROM ranked WHERE previous_date IS DISTINCT FROM date
),
firsts AS (
    -- Each symbol's first day and role, one small table joined once. (As a window,
    -- first_value(date) over the running frame, it cost a second of CPU at 13M rows: DataFusion
    -- evaluates a framed window row by row; this aggregate reads two columns in 0.1 s.)
    SELECT f.symbol, f.history_start, coalesce(r.role, 'other') AS role
    FROM (SELECT symbol, min(date) AS history_start FROM staging.prices_daily GROUP BY symbol HAVING min(date) IS NOT NULL) f
    LEFT JOIN (SELECT symbol, min(role) AS role FROM seeds.asset_roles GROUP BY symbol) r
        ON r.symbol = f.symbol
),
highs AS (
    -- prior_high: the highest close before the day. The running high is the greater of it and
    -- the day's close, and the day is a new high exactly when its close beats it: one window
    -- function where a running max and a lag of it were two (the lag had a sort-free window
    -- operator of its own, 0.9 s of CPU at 13M rows).
    SELECT
        symbol, date, close, available_at,
        close / lag(close) OVER (PARTITION BY symbol ORDER BY date) - 1 AS daily_return,
        max(close) OVER (PARTITION BY symbol ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior_high
    FROM prices
),
flagged AS (
    SELECT
        *,
        CASE WHEN close > prior_high THEN close ELSE coalesce(prior_high, close) END AS ath_close
    FROM highs
)
SELECT
    h.symbol,
    f.role,
    h.date,
    h.close,
    h.daily_return,
    h.ath_close,
    (h.close / h.ath_close - 1) * 100 AS drawdown_pct,
    coalesce(h.close > h.prior_high, false) AS is_new_high,
    f.history_start,
    h.available_at,
    known_on(h.available_at) AS known_on
FROM firsts f
JOIN flagged h ON h.symbol = f.symbol
ORDER BY h.symbol, h.date
