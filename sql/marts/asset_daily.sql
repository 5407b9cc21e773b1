-- description: Per symbol and trading day: close, daily return, running all-time high, drawdown from it and a new-high flag, plus the asset role (bitcoin, small_caps, large_caps, tech, blue_chips, silver). Highs are over the history in the lake (from 2015 in the offline snapshot).
-- column symbol: ticker as stored in staging.prices_daily
-- column role: asset role the symbol stands for (seeds.asset_roles; 'other' when not listed)
-- column close: close of the day (the preferred source's row when several sources have it)
-- column daily_return: close / previous close − 1
-- column ath_close: highest close up to and including the day
-- column drawdown_pct: close / ath_close − 1, in percent (0 at a new high)
-- column is_new_high: the close is a new all-time high (strictly above every earlier close)
-- materialized: incremental
-- unique_key: symbol, date
-- time_column: date
-- lookback_days: 7
-- test: unique(symbol, date)
-- test: not_null(symbol, date, close, ath_close, drawdown_pct)
-- test: accepted_range(drawdown_pct, -100, 0)
-- test: relationships(symbol, staging.prices_daily.symbol)
-- test: freshness(date, 7)
WITH ranked AS (
    SELECT
        symbol, date, close,
        row_number() OVER (
            PARTITION BY symbol, date
            ORDER BY CASE source WHEN 'yahoo' THEN 1 WHEN 'coinbase' THEN 2 WHEN 'stooq' THEN 3 ELSE 4 END
        ) AS pick
    FROM staging.prices_daily
),
prices AS (
    SELECT symbol, date, close FROM ranked WHERE pick = 1
),
roles AS (
    SELECT symbol, role FROM seeds.asset_roles
),
highs AS (
    SELECT
        symbol, date, close,
        close / lag(close) OVER (PARTITION BY symbol ORDER BY date) - 1 AS daily_return,
        max(close) OVER (PARTITION BY symbol ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ath_close,
        max(close) OVER (PARTITION BY symbol ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior_high
    FROM prices
)
SELECT
    h.symbol,
    coalesce(r.role, 'other') AS role,
    h.date,
    h.close,
    h.daily_return,
    h.ath_close,
    (h.close / h.ath_close - 1) * 100 AS drawdown_pct,
    coalesce(h.close > h.prior_high, false) AS is_new_high
FROM highs h
LEFT JOIN roles r ON r.symbol = h.symbol
ORDER BY h.symbol, h.date
