-- description: One canonical series per asset role and trading day (bitcoin, small_caps, large_caps, tech, blue_chips, silver) — the one place every mart reads roles from. Each day uses the most preferred symbol of the role (seeds.asset_roles, e.g. ^RUT then IWM) that has a close that day; the symbol is in its own column. Returns, highs and drawdowns never cross a switch of symbol: drawdown_pct is the chosen instrument's drawdown from its own high, daily_return its own return from its own previous close, and level chains the role's returns from day to day into one continuous series (equal to the first instrument's close until the first switch; a move is never counted twice when the role switches back to an instrument after a gap).
-- column role: asset role
-- column date: trading day
-- column symbol: the symbol chosen for the day
-- column switched: the symbol differs from the role's previous day
-- column close: the chosen symbol's close (its own units: ^RUT index points, IWM dollars per share)
-- column daily_return: the chosen symbol's own return from its previous close (fraction)
-- column level: chain-linked level of the role: the first chosen close compounded by the role's return from each of its days to the next (continuous across switches; use it for charts and returns, not close): the chosen symbol's own daily_return when its previous close is on the role's previous day, else the return of the previous day's symbol to this day, else 0 (neither instrument spans the two days)
-- column drawdown_pct: the chosen symbol's drawdown from its own all-time high, %
-- column is_new_high: the chosen symbol set a new high of its own history
-- column high_since: first day of the chosen symbol's history in the lake (its high is measured from then)
-- column known_on: first mart day that may use the row (see marts.asset_daily)
-- materialized: incremental
-- unique_key: role, date
-- partition_by: role
-- append_sql: append/asset_roles_daily.sql
-- test: unique(role, date)
-- test: not_null(role, date, symbol, close, level, drawdown_pct, known_on)
-- test: relationships(symbol, seeds.asset_roles.symbol)
-- test: relationships(role, seeds.asset_roles.role)
-- test: accepted_range(drawdown_pct, -100, 0)
-- test: no_rows_where(EXISTS (SELECT 1 FROM seeds.asset_roles GROUP BY symbol HAVING count(*) > 1))
-- Built by role: a build extends the roles whose symbols gained only days after the role's last
-- stored day in marts.asset_daily (read from its log) with append/asset_roles_daily.sql,
-- recomputes the roles of the symbols that gained other rows (a role none of whose symbols
-- changed keeps its rows, and a night that only adds other symbols leaves the table as it is),
-- and rebuilds it whole when that mart lost a row. A symbol's rows there belong to the role in
-- their role column, so a symbol stands for one role: the last test fails the build when the
-- seed lists one twice (the seed's tests read only the new rows while the seed is unchanged).
-- Per role and day, the row of the most preferred symbol with a close: in (role, date, preference,
-- symbol) order, the first row of its day. One window per role, not row_number() = 1 over a
-- window per role and day: DataFusion's window operator pays per partition, and 64k of them took
-- 0.4 s (first_value(… ORDER BY …) per group took longer still on the text columns, and DuckDB
-- does not know it as an aggregate).
WITH members AS (
    SELECT r.role, r.preference, a.date, a.symbol, a.close, a.daily_return, a.drawdown_pct, a.is_new_high,
           a.history_start, a.known_on
    FROM marts.asset_daily a
    JOIN seeds.asset_roles r ON r.symbol = a.symbol
),
ranked AS (
    SELECT role, date, symbol, close, daily_return, drawdown_pct, is_new_high, history_start, known_on,
           lag(date) OVER (PARTITION BY role ORDER BY date, preference, symbol) AS previous_date,
           -- the day of the symbol's own previous close, which its daily_return is measured from
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
           lag(close) OVER (PARTITION BY role ORDER BY date) AS previous_close,
           row_number() OVER (PARTITION BY role ORDER BY date) AS n
    FROM candidates
),
-- The role's return from its previous day to this one. The chosen symbol's own daily_return runs
-- from its own previous close: after a day taken by another instrument (silver: SI=F, then SLV on
-- a day SI=F has no close, then SI=F again) it would count the move of that day a second time.
-- Then the previous day's instrument carries the level to this day if it has a close today.
linked AS (
    SELECT c.*,
           CASE
               WHEN c.n = 1 THEN 0
               WHEN c.own_previous_date = c.previous_day THEN coalesce(c.daily_return, 0)
               WHEN p.close IS NOT NULL THEN p.close / c.previous_close - 1
               ELSE 0
           END AS role_return
    FROM chosen c
    LEFT JOIN members p
      ON p.role = c.role AND p.date = c.date AND p.symbol = c.previous_symbol
)
SELECT role, date, symbol,
       coalesce(symbol <> previous_symbol, false) AS switched,
       close, daily_return,
       -- The first close, then times 1 + the role's return of each day, one day at a time (the
       -- product aggregate, as DuckDB's): each day's level is exactly the previous day's times
       -- its factor, which the append query continues from the stored last level. An explicit
       -- ROWS frame: the default frame of an ordered window is RANGE, whose bounds DataFusion
       -- searches row by row (dates are unique per role, so both frames hold the same rows).
       product(CASE WHEN n = 1 THEN close ELSE 1 + role_return END)
           OVER (PARTITION BY role ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS level,
       drawdown_pct, is_new_high, history_start AS high_since, known_on
FROM linked
ORDER BY role, date
