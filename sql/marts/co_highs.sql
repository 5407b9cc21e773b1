-- description: Days when bitcoin and small caps (Russell 2000) both set new all-time highs within ±5 trading days of each other: one row per bitcoin new-high day with the nearest small-cap new high in the window, each side's date and level.
-- column btc_date: bitcoin's new-high day
-- column btc_close: bitcoin's close that day
-- column small_caps_date: the nearest Russell 2000 new-high day within ±5 small-cap trading days
-- column small_caps_close: the Russell 2000 close that day
-- column gap_days: small_caps_date − btc_date, in calendar days
-- test: unique(btc_date)
-- test: not_null(btc_date, small_caps_date)
WITH rut AS (
    SELECT date, close, is_new_high,
           row_number() OVER (ORDER BY date) AS td
    FROM marts.asset_daily WHERE symbol = '^RUT'
),
btc_highs AS (
    SELECT date, close FROM marts.asset_daily WHERE symbol = 'BTC-USD' AND is_new_high
),
-- Each bitcoin high maps to the small-cap trading day on or before it.
anchored AS (
    SELECT b.date AS btc_date, b.close AS btc_close, max(r.td) AS td
    FROM btc_highs b JOIN rut r ON r.date <= b.date
    GROUP BY b.date, b.close
),
pairs AS (
    SELECT a.btc_date, a.btc_close, r.date AS small_caps_date, r.close AS small_caps_close,
           row_number() OVER (PARTITION BY a.btc_date ORDER BY abs(r.td - a.td), r.date) AS nearest
    FROM anchored a
    JOIN rut r ON r.is_new_high AND r.td BETWEEN a.td - 5 AND a.td + 5
)
SELECT btc_date, btc_close, small_caps_date, small_caps_close,
       CAST(small_caps_date - btc_date AS BIGINT) AS gap_days
FROM pairs WHERE nearest = 1
ORDER BY btc_date
