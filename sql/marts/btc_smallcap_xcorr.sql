-- description: The cross-correlation of bitcoin and small-cap daily returns, per session and lead: for each session on which both closed (small caps from marts.asset_roles_daily: ^RUT, else IWM, chain-linked) and each lead k in −10..10, the correlation over the trailing 90 pairs. Positive k pairs small caps' return with bitcoin's k sessions earlier (bitcoin leads); negative k pairs bitcoin's return with small caps' |k| sessions earlier. Only sessions up to the anchor are used — never a later one — so a row is known when the anchor session's closes are (known_on).
-- column date: the anchor session
-- column known_on: first day both closes of the anchor session are public (bitcoin's UTC-day close: the next day)
-- column k: the lead in sessions (−10..10)
-- column corr: correlation of the 90 return pairs ending at the anchor (NULL with fewer than 90)
-- test: unique(date, k)
-- test: not_null(date, known_on, k)
-- test: accepted_range(corr, -1, 1)
WITH roles AS (
    SELECT role, date, close, level, known_on FROM marts.asset_roles_daily WHERE role IN ('bitcoin', 'small_caps')
),
sessions AS (
    SELECT r.date, greatest(r.known_on, b.known_on) AS known_on,
           r.level / lag(r.level) OVER (ORDER BY r.date) - 1 AS rut_ret,
           b.close / lag(b.close) OVER (ORDER BY r.date) - 1 AS btc_ret
    FROM roles r JOIN roles b ON b.date = r.date AND b.role = 'bitcoin'
    WHERE r.role = 'small_caps'
),
indexed AS (
    -- Each session's returns and those of the ten sessions before it ([1] = its own), one pass
    -- over the sessions: the shifted pairs are then read from the anchor's row, where two self
    -- joins of this CTE planned and ran it three times.
    SELECT date, known_on, row_number() OVER s AS idx,
           [btc_ret, lag(btc_ret, 1) OVER s, lag(btc_ret, 2) OVER s, lag(btc_ret, 3) OVER s,
            lag(btc_ret, 4) OVER s, lag(btc_ret, 5) OVER s, lag(btc_ret, 6) OVER s,
            lag(btc_ret, 7) OVER s, lag(btc_ret, 8) OVER s, lag(btc_ret, 9) OVER s,
            lag(btc_ret, 10) OVER s] AS btc_back,
           [rut_ret, lag(rut_ret, 1) OVER s, lag(rut_ret, 2) OVER s, lag(rut_ret, 3) OVER s,
            lag(rut_ret, 4) OVER s, lag(rut_ret, 5) OVER s, lag(rut_ret, 6) OVER s,
            lag(rut_ret, 7) OVER s, lag(rut_ret, 8) OVER s, lag(rut_ret, 9) OVER s,
            lag(rut_ret, 10) OVER s] AS rut_back
    FROM sessions WHERE rut_ret IS NOT NULL AND btc_ret IS NOT NULL
    WINDOW s AS (ORDER BY date)
),
lags AS (
    -- unnest of the list (not the table function, whose column DuckDB names differently): the
    -- same SQL runs in DataFusion and DuckDB
    SELECT CAST(unnest(generate_series(-10, 10)) AS BIGINT) AS k
),
shifted AS (
    -- A session before the first has no return: NULL here, and the pair is left out, as the
    -- join to a missing row left it out.
    SELECT a.date, a.known_on, a.idx, l.k,
           a.btc_back[greatest(l.k, 0) + 1] AS btc_ret,
           a.rut_back[greatest(-l.k, 0) + 1] AS rut_ret
    FROM indexed a CROSS JOIN lags l
)
-- A full window is the 90th pair of its lead or a later one: the frame holds min(row number, 90)
-- pairs. (As count(*) over the sliding frame, the count cost 15 ms of the model's ~80 at 62k
-- rows: DataFusion evaluates a framed aggregate row by row; row_number is one pass.)
SELECT date, known_on, k,
       CASE WHEN row_number() OVER (PARTITION BY k ORDER BY idx) >= 90 THEN corr(btc_ret, rut_ret) OVER w END AS corr
FROM shifted
WHERE btc_ret IS NOT NULL AND rut_ret IS NOT NULL
WINDOW w AS (PARTITION BY k ORDER BY idx ROWS BETWEEN 89 PRECEDING AND CURRENT ROW)
ORDER BY date, k
