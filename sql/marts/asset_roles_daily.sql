-- description: One canonical series per asset role and day (bitcoin, small_caps, large_caps, tech, blue_chips, silver): the most preferred symbol of the role (seeds.asset_roles, e.g. ^RUT then IWM) that has a close that day. Edit the seed to change the preference.
-- column role: asset role
-- column date: trading day
-- column symbol: the symbol chosen for the day
-- column close: its close
-- column drawdown_pct: its drawdown from its own all-time high, %
-- column is_new_high: whether it set a new all-time high
-- test: unique(role, date)
-- test: not_null(role, date, symbol, close)
-- test: relationships(symbol, seeds.asset_roles.symbol)
WITH candidates AS (
    SELECT r.role, a.date, a.symbol, a.close, a.drawdown_pct, a.is_new_high,
           row_number() OVER (PARTITION BY r.role, a.date ORDER BY r.preference) AS pick
    FROM marts.asset_daily a
    JOIN seeds.asset_roles r ON r.symbol = a.symbol
)
SELECT role, date, symbol, close, drawdown_pct, is_new_high
FROM candidates WHERE pick = 1
ORDER BY role, date
