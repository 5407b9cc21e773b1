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
roles AS (
    SELECT symbol, min(role) AS role FROM seeds.asset_roles GROUP BY symbol
),
highs AS (
    SELECT
        symbol, date, close, available_at,
        close / lag(close) OVER (PARTITION BY symbol ORDER BY date) - 1 AS daily_return,
        max(close) OVER (PARTITION BY symbol ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ath_close,
        -- The symbol's first day, as a running window over the same order as the others: a
        -- whole-partition window (min(date) OVER (PARTITION BY symbol)) would hold every row of
        -- the table in memory before emitting one; this one streams a symbol at a time.
        first_value(date) OVER (PARTITION BY symbol ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS history_start
    FROM prices
),
flagged AS (
    -- A new high is a day whose running high rose: ath_close > the previous day's ath_close
    -- exactly when the close beats every earlier close. (A lag of the running high costs about
    -- a third of a second running max over the days before.)
    SELECT *, lag(ath_close) OVER (PARTITION BY symbol ORDER BY date) AS prior_high FROM highs
)
SELECT
    h.symbol,
    coalesce(r.role, 'other') AS role,
    h.date,
    h.close,
    h.daily_return,
    h.ath_close,
    (h.close / h.ath_close - 1) * 100 AS drawdown_pct,
    coalesce(h.ath_close > h.prior_high, false) AS is_new_high,
    h.history_start,
    h.available_at,
    known_on(h.available_at) AS known_on
FROM flagged h
LEFT JOIN roles r ON r.symbol = h.symbol
ORDER BY h.symbol, h.date
