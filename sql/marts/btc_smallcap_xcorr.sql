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
    SELECT date, known_on, rut_ret, btc_ret, row_number() OVER (ORDER BY date) AS idx
    FROM sessions WHERE rut_ret IS NOT NULL AND btc_ret IS NOT NULL
),
lags AS (
    -- unnest of the list (not the table function, whose column DuckDB names differently): the
    -- same SQL runs in DataFusion and DuckDB
    SELECT CAST(unnest(generate_series(-10, 10)) AS BIGINT) AS k
),
-- At anchor session t and lead k, bitcoin's return at t − max(k, 0) is paired with small caps'
-- at t − max(−k, 0): never a session after t.
shifted AS (
    SELECT a.date, a.known_on, a.idx, l.k, br.btc_ret, rr.rut_ret
    FROM indexed a CROSS JOIN lags l
    JOIN indexed br ON br.idx = a.idx - greatest(l.k, 0)
    JOIN indexed rr ON rr.idx = a.idx - greatest(-l.k, 0)
)
SELECT date, known_on, k,
       CASE WHEN count(*) OVER w = 90 THEN corr(btc_ret, rut_ret) OVER w END AS corr
FROM shifted
WINDOW w AS (PARTITION BY k ORDER BY idx ROWS BETWEEN 89 PRECEDING AND CURRENT ROW)
ORDER BY date, k
