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
    -- Each session's returns and those of the ten sessions before it (NULL before the first).
    SELECT date, known_on, row_number() OVER s AS idx, btc_ret, rut_ret,
           lag(btc_ret, 1) OVER s AS btc_1,
           lag(btc_ret, 2) OVER s AS btc_2,
           lag(btc_ret, 3) OVER s AS btc_3,
           lag(btc_ret, 4) OVER s AS btc_4,
           lag(btc_ret, 5) OVER s AS btc_5,
           lag(btc_ret, 6) OVER s AS btc_6,
           lag(btc_ret, 7) OVER s AS btc_7,
           lag(btc_ret, 8) OVER s AS btc_8,
           lag(btc_ret, 9) OVER s AS btc_9,
           lag(btc_ret, 10) OVER s AS btc_10,
           lag(rut_ret, 1) OVER s AS rut_1,
           lag(rut_ret, 2) OVER s AS rut_2,
           lag(rut_ret, 3) OVER s AS rut_3,
           lag(rut_ret, 4) OVER s AS rut_4,
           lag(rut_ret, 5) OVER s AS rut_5,
           lag(rut_ret, 6) OVER s AS rut_6,
           lag(rut_ret, 7) OVER s AS rut_7,
           lag(rut_ret, 8) OVER s AS rut_8,
           lag(rut_ret, 9) OVER s AS rut_9,
           lag(rut_ret, 10) OVER s AS rut_10
    FROM sessions WHERE rut_ret IS NOT NULL AND btc_ret IS NOT NULL
    WINDOW s AS (ORDER BY date)
),
-- One column per lead, all over the same frame of the anchor and the 89 sessions before it:
-- c_k pairs small caps' return with bitcoin's k sessions earlier (k > 0), c_mk bitcoin's with
-- small caps' k sessions earlier. A pair with a session before the first is NULL, and corr
-- leaves it out; a frame is reported only when it holds 90 pairs (below). One window operator
-- over the sessions, where a row per session and lead (a cross join) with a window per lead
-- sorted 21 times as many rows and paid per partition: 45 ms of the model's ~70 at 2,000
-- symbols × 25 years. The frames hold the same pairs in the same order, so the correlations
-- are those of the window per lead, bit for bit.
windows AS (
    SELECT date, known_on, idx,
           corr(btc_ret, rut_10) OVER w AS c_m10,
           corr(btc_ret, rut_9) OVER w AS c_m9,
           corr(btc_ret, rut_8) OVER w AS c_m8,
           corr(btc_ret, rut_7) OVER w AS c_m7,
           corr(btc_ret, rut_6) OVER w AS c_m6,
           corr(btc_ret, rut_5) OVER w AS c_m5,
           corr(btc_ret, rut_4) OVER w AS c_m4,
           corr(btc_ret, rut_3) OVER w AS c_m3,
           corr(btc_ret, rut_2) OVER w AS c_m2,
           corr(btc_ret, rut_1) OVER w AS c_m1,
           corr(btc_ret, rut_ret) OVER w AS c_0,
           corr(btc_1, rut_ret) OVER w AS c_1,
           corr(btc_2, rut_ret) OVER w AS c_2,
           corr(btc_3, rut_ret) OVER w AS c_3,
           corr(btc_4, rut_ret) OVER w AS c_4,
           corr(btc_5, rut_ret) OVER w AS c_5,
           corr(btc_6, rut_ret) OVER w AS c_6,
           corr(btc_7, rut_ret) OVER w AS c_7,
           corr(btc_8, rut_ret) OVER w AS c_8,
           corr(btc_9, rut_ret) OVER w AS c_9,
           corr(btc_10, rut_ret) OVER w AS c_10
    FROM indexed
    WINDOW w AS (ORDER BY idx ROWS BETWEEN 89 PRECEDING AND CURRENT ROW)
),
-- A row per session and lead: the leads and their columns side by side in two lists, unnested
-- together (list unnest, not the table function, whose column DuckDB names differently: the
-- same SQL runs in DataFusion and DuckDB).
leads AS (
    SELECT date, known_on, idx,
           CAST(unnest([-10, -9, -8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) AS BIGINT) AS k,
           unnest([c_m10, c_m9, c_m8, c_m7, c_m6, c_m5, c_m4, c_m3, c_m2, c_m1, c_0, c_1, c_2, c_3, c_4, c_5, c_6, c_7, c_8, c_9, c_10]) AS corr
    FROM windows
)
-- Lead k has a pair from session |k| + 1 on, and its 90th pair at session |k| + 90.
SELECT date, known_on, k, CASE WHEN idx - abs(k) >= 90 THEN corr END AS corr
FROM leads
WHERE idx > abs(k)
ORDER BY date, k
