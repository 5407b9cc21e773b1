-- The append query of marts.asset_roles_daily (its header names it with `-- append_sql:`): the
-- days after each role's last stored day, for the roles whose symbols gained only such days in
-- marts.asset_daily. The engine provides append_after(role, last_date) and append_last, the
-- stored last row of each of those roles. The members' rows from the last stored day on give
-- the first new day what the model's windows give it: the previous day's chosen symbol and
-- close, and whether the chosen symbol closed that day (its own previous close is then on the
-- role's previous day; a member's previous close before that day is never on it). The level
-- continues from the stored last level, times 1 + each new day's role return in date order:
-- the multiplications the model makes, so the rows equal the model's bit for bit
-- (tests/it/incremental.rs compares with full refreshes); keep the two files in step.
WITH members AS (
    SELECT r.role, r.preference, a.date, a.symbol, a.close, a.daily_return, a.drawdown_pct, a.is_new_high,
           a.history_start, a.known_on
    FROM marts.asset_daily a
    JOIN seeds.asset_roles r ON r.symbol = a.symbol
    JOIN append_after f ON f.role = r.role
    -- The second bound is implied by the first; as a constant (DataFusion runs the subquery
    -- first) it lets the scan skip the files, row groups and pages of older days.
    WHERE a.date >= f.last_date AND a.date >= (SELECT min(last_date) FROM append_after)
),
ranked AS (
    SELECT role, date, symbol, close, daily_return, drawdown_pct, is_new_high, history_start, known_on,
           lag(date) OVER (PARTITION BY role ORDER BY date, preference, symbol) AS previous_date,
           lag(date) OVER (PARTITION BY role, symbol ORDER BY date) AS own_previous_date
    FROM members
),
candidates AS (
    SELECT role, date, symbol, close, daily_return, drawdown_pct, is_new_high, history_start, known_on,
           own_previous_date
    FROM ranked
    WHERE previous_date IS DISTINCT FROM date
),
chosen AS (
    SELECT role, date, symbol, close, daily_return, drawdown_pct, is_new_high, history_start, known_on,
           own_previous_date,
           lag(symbol) OVER (PARTITION BY role ORDER BY date) AS previous_symbol,
           lag(date) OVER (PARTITION BY role ORDER BY date) AS previous_day,
           lag(close) OVER (PARTITION BY role ORDER BY date) AS previous_close
    FROM candidates
),
linked AS (
    SELECT c.*,
           CASE
               WHEN c.own_previous_date = c.previous_day THEN coalesce(c.daily_return, 0)
               WHEN p.close IS NOT NULL THEN p.close / c.previous_close - 1
               ELSE 0
           END AS role_return
    FROM chosen c
    JOIN append_after f ON f.role = c.role AND c.date > f.last_date
    LEFT JOIN members p
      ON p.role = c.role AND p.date = c.date AND p.symbol = c.previous_symbol
),
-- The stored last row's level, then each new day's factor, in one list: the level is their running
-- product, and the stored row is left out after the window. (Joined back to linked instead, the
-- query named linked twice, and each name is planned and run again: marts.asset_daily was read
-- four times, not two.)
factors AS (
    SELECT role, date, CAST(NULL AS VARCHAR) AS symbol, CAST(NULL AS VARCHAR) AS previous_symbol,
           CAST(NULL AS DOUBLE) AS close, CAST(NULL AS DOUBLE) AS daily_return,
           CAST(NULL AS DOUBLE) AS drawdown_pct, CAST(NULL AS BOOLEAN) AS is_new_high,
           CAST(NULL AS DATE) AS history_start, CAST(NULL AS DATE) AS known_on,
           level AS factor, true AS stored
    FROM append_last
    UNION ALL
    SELECT role, date, symbol, previous_symbol, close, daily_return, drawdown_pct, is_new_high,
           history_start, known_on, 1 + role_return, false
    FROM linked
),
levels AS (
    SELECT *,
           product(factor) OVER (PARTITION BY role ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS level
    FROM factors
)
SELECT role, date, symbol,
       coalesce(symbol <> previous_symbol, false) AS switched,
       close, daily_return, level,
       drawdown_pct, is_new_high, history_start AS high_since, known_on
FROM levels
WHERE NOT stored
ORDER BY role, date
