-- description: Days when bitcoin and small caps both set new highs within ±5 small-cap sessions of each other: one row per bitcoin new-high day with the nearest small-cap new high in the window, each side's date, symbol and level. Roles come from marts.asset_roles_daily (small caps: ^RUT, else IWM); a new high is the instrument's own (strictly above every earlier close of that symbol since its high_since day), so a switch of instrument never makes a high by itself.
-- column btc_date: bitcoin's new-high day
-- column btc_close: bitcoin's close that day, USD
-- column btc_high_since: first day of bitcoin's history in the lake: "new high" means since then
-- column small_caps_date: the nearest small-cap new-high day within ±5 small-cap sessions
-- column small_caps_symbol: the small-cap instrument that made it (^RUT or IWM)
-- column small_caps_close: its close that day (the instrument's own units)
-- column small_caps_high_since: first day of that instrument's history in the lake
-- column gap_days: small_caps_date − btc_date, in calendar days
-- test: unique(btc_date)
-- test: not_null(btc_date, small_caps_date, small_caps_symbol)
WITH rut AS (
    -- Session numbers as signed integers: row_number() is unsigned, and abs(r.td - a.td) below
    -- wrapped around for a high before the anchor (7372 − 7376 became 2^64 − 4), which made the
    -- farthest earlier high the "nearest".
    SELECT date, symbol, close, is_new_high, high_since,
           CAST(row_number() OVER (ORDER BY date) AS BIGINT) AS td
    FROM marts.asset_roles_daily WHERE role = 'small_caps'
),
btc_highs AS (
    SELECT date, close, high_since FROM marts.asset_roles_daily WHERE role = 'bitcoin' AND is_new_high
),
-- Each bitcoin high maps to the small-cap session on or before it: in one date-ordered stream
-- of both (a session before a bitcoin high of its own day), the running maximum of the sessions'
-- numbers. (A join on r.date <= b.date paired every high with every earlier session: 1.4M
-- pairs and 40 ms of CPU at 25 years for 179 rows.) A high before the first session has none and
-- pairs with nothing below, as the join left it out.
anchored AS (
    SELECT date AS btc_date, close AS btc_close, high_since AS btc_high_since, td
    FROM (
        SELECT date, close, high_since, is_btc,
               max(td) OVER (ORDER BY date, is_btc ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS td
        FROM (
            SELECT date, CAST(NULL AS DOUBLE) AS close, CAST(NULL AS DATE) AS high_since, td, false AS is_btc FROM rut
            UNION ALL
            SELECT date, close, high_since, CAST(NULL AS BIGINT) AS td, true AS is_btc FROM btc_highs
        )
    )
    WHERE is_btc AND td IS NOT NULL
),
pairs AS (
    SELECT a.btc_date, a.btc_close, a.btc_high_since, r.date AS small_caps_date, r.symbol AS small_caps_symbol,
           r.close AS small_caps_close, r.high_since AS small_caps_high_since,
           row_number() OVER (PARTITION BY a.btc_date ORDER BY abs(r.td - a.td), r.date) AS nearest
    FROM anchored a
    JOIN rut r ON r.is_new_high AND r.td BETWEEN a.td - 5 AND a.td + 5
)
SELECT btc_date, btc_close, btc_high_since, small_caps_date, small_caps_symbol, small_caps_close, small_caps_high_since,
       CAST(small_caps_date - btc_date AS BIGINT) AS gap_days
FROM pairs WHERE nearest = 1
ORDER BY btc_date
