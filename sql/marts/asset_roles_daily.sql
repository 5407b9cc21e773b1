-- description: One canonical series per asset role and trading day (bitcoin, small_caps, large_caps, tech, blue_chips, silver) — the one place every mart reads roles from. Each day uses the most preferred symbol of the role (seeds.asset_roles, e.g. ^RUT then IWM) that has a close that day; the symbol is in its own column. Returns, highs and drawdowns never cross a switch of symbol: drawdown_pct is the chosen instrument's drawdown from its own high, daily_return its own return from its own previous close, and level chains those returns into one continuous series (equal to the first instrument's close until the first switch).
-- column role: asset role
-- column date: trading day
-- column symbol: the symbol chosen for the day
-- column switched: the symbol differs from the role's previous day
-- column close: the chosen symbol's close (its own units: ^RUT index points, IWM dollars per share)
-- column daily_return: the chosen symbol's own return from its previous close (fraction)
-- column level: chain-linked level of the role: the first chosen close compounded by every day's daily_return (continuous across switches; use it for charts and returns, not close)
-- column drawdown_pct: the chosen symbol's drawdown from its own all-time high, %
-- column is_new_high: the chosen symbol set a new high of its own history
-- column high_since: first day of the chosen symbol's history in the lake (its high is measured from then)
-- column known_on: first mart day that may use the row (see marts.asset_daily)
-- test: unique(role, date)
-- test: not_null(role, date, symbol, close, level, drawdown_pct, known_on)
-- test: relationships(symbol, seeds.asset_roles.symbol)
-- test: accepted_range(drawdown_pct, -100, 0)
-- Per role and day, the row of the most preferred symbol with a close: in (role, date, preference,
-- symbol) order, the first row of its day. One window per role, not row_number() = 1 over a
-- window per role and day: DataFusion's window operator pays per partition, and 64k of them took
-- 0.4 s (first_value(… ORDER BY …) per group took longer still on the text columns, and DuckDB
-- does not know it as an aggregate).
WITH ranked AS (
    SELECT r.role, a.date, a.symbol, a.close, a.daily_return, a.drawdown_pct, a.is_new_high,
           a.history_start, a.known_on,
           lag(a.date) OVER (PARTITION BY r.role ORDER BY a.date, r.preference, a.symbol) AS previous_date
    FROM marts.asset_daily a
    JOIN seeds.asset_roles r ON r.symbol = a.symbol
),
candidates AS (
    SELECT role, date, symbol, close, daily_return, drawdown_pct, is_new_high, history_start, known_on
    FROM ranked
    WHERE previous_date IS DISTINCT FROM date
),
chosen AS (
    -- first_value with an explicit ROWS frame: the default frame of an ordered window is RANGE,
    -- whose bounds DataFusion searches row by row (dates are unique per role, so both frames
    -- hold the same rows; the window operator took 25 ms instead of ~10 at 64k rows).
    SELECT role, date, symbol, close, daily_return, drawdown_pct, is_new_high, history_start, known_on,
           lag(symbol) OVER (PARTITION BY role ORDER BY date) AS previous_symbol,
           first_value(close) OVER (PARTITION BY role ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS first_close,
           row_number() OVER (PARTITION BY role ORDER BY date) AS n
    FROM candidates
)
SELECT role, date, symbol,
       coalesce(symbol <> previous_symbol, false) AS switched,
       close, daily_return,
       first_close * exp(sum(CASE WHEN n = 1 THEN 0 ELSE ln(1 + coalesce(daily_return, 0)) END)
           OVER (PARTITION BY role ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) AS level,
       drawdown_pct, is_new_high, history_start AS high_since, known_on
FROM chosen
ORDER BY role, date
