-- The append query of marts.asset_daily (its header names it with `-- append_sql:`): the days
-- after each symbol's last stored day, for the symbols whose only new input rows are such days.
-- The engine provides append_after(symbol, last_date) and append_last, the stored last row of each
-- of those symbols (every column of the model). The running high continues from the stored
-- last row: its ath_close is the highest close up to last_date, so the maximum over it and the
-- new closes is the maximum over the whole history, and its close is the previous close of the
-- first new day. The result must equal the model's rows for those days (tests/it/incremental.rs
-- compares with full refreshes); keep the two files in step.
WITH ranked AS (
    SELECT
        p.symbol, p.date, p.close, p.available_at,
        lag(p.date) OVER (
            PARTITION BY p.symbol
            ORDER BY p.date, CASE p.source WHEN 'yahoo' THEN 1 WHEN 'coinbase' THEN 2 WHEN 'stooq' THEN 3 ELSE 4 END, p.source
        ) AS previous_date
    FROM staging.prices_daily p
    JOIN append_after a ON a.symbol = p.symbol
    -- The second bound is implied by the first; as a constant (DataFusion runs the subquery
    -- first) it lets the scan skip every file, row group and page of older days.
    WHERE p.date > a.last_date AND p.date > (SELECT min(last_date) FROM append_after)
),
roles AS (
    SELECT symbol, min(role) AS role FROM seeds.asset_roles GROUP BY symbol
),
continued AS (
    -- the stored last row of each symbol, carrying its all-time high
    SELECT symbol, date, close, available_at, ath_close AS high_so_far, history_start, true AS stored
    FROM append_last
    UNION ALL
    SELECT symbol, date, close, available_at, close AS high_so_far, CAST(NULL AS DATE) AS history_start, false AS stored
    FROM ranked WHERE previous_date IS DISTINCT FROM date
),
highs AS (
    SELECT
        symbol, date, close, available_at, stored,
        close / lag(close) OVER (PARTITION BY symbol ORDER BY date) - 1 AS daily_return,
        max(high_so_far) OVER (PARTITION BY symbol ORDER BY date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ath_close,
        min(history_start) OVER (PARTITION BY symbol) AS history_start
    FROM continued
),
flagged AS (
    -- A new high is a day whose running high rose: ath_close > the previous day's ath_close
    -- exactly when the close beats every earlier close. (A lag of the running high costs about
    -- a third of a second running max over the days before.)
    SELECT *, lag(ath_close) OVER (PARTITION BY symbol ORDER BY date) AS prior_high FROM highs
)
SELECT
    h.symbol,
    coalesce(r.role, 'other') AS role,
    h.date,
    h.close,
    h.daily_return,
    h.ath_close,
    (h.close / h.ath_close - 1) * 100 AS drawdown_pct,
    coalesce(h.ath_close > h.prior_high, false) AS is_new_high,
    h.history_start,
    h.available_at,
    known_on(h.available_at) AS known_on
FROM flagged h
LEFT JOIN roles r ON r.symbol = h.symbol
WHERE NOT h.stored
ORDER BY h.symbol, h.date
