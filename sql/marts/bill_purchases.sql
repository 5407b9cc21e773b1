-- description: Fed outright Treasury-bill purchases, one row per operation since the reserve-management programme began (2025-12-12; change the date in the first CTE to study another programme), with the week's total, the running total, and a cross-check against the weekly change in SOMA bills.
-- column operation_id: NY Fed operation id
-- column operation_date: day of the operation
-- column week_start: Monday of the operation's week
-- column accepted_usd: par accepted, USD
-- column submitted_usd: par submitted, USD
-- column week_accepted_usd: all bill purchases accepted that week, USD
-- column cum_accepted_usd: accepted since the programme start, USD, through this operation
-- column soma_bills_change_usd: change in SOMA bills holdings over the SOMA week (Wednesday to Wednesday) that contains the settlement; NULL where SOMA has no print
-- test: unique(operation_id)
-- test: not_null(operation_id, operation_date, accepted_usd, cum_accepted_usd)
-- test: accepted_range(accepted_usd, 0, 1000000000000)
WITH programme AS (
    SELECT DATE '2025-12-12' AS start_date
),
ops AS (
    SELECT o.operation_id, o.operation_date, o.settlement_date,
           CAST(o.total_par_accepted_usd AS DOUBLE) AS accepted_usd,
           CAST(o.total_par_submitted_usd AS DOUBLE) AS submitted_usd
    FROM staging.treasury_operation_totals o, programme p
    WHERE o.is_bill_purchase AND o.operation_date >= p.start_date
),
soma AS (
    SELECT as_of_date,
           CAST(value_usd AS DOUBLE) - lag(CAST(value_usd AS DOUBLE)) OVER (ORDER BY as_of_date) AS change_usd,
           lag(as_of_date) OVER (ORDER BY as_of_date) AS prev_as_of
    FROM staging.soma_holdings WHERE security_type = 'bills'
)
SELECT
    o.operation_id,
    o.operation_date,
    CAST(date_trunc('week', o.operation_date) AS DATE) AS week_start,
    o.accepted_usd,
    o.submitted_usd,
    sum(o.accepted_usd) OVER (PARTITION BY date_trunc('week', o.operation_date)) AS week_accepted_usd,
    sum(o.accepted_usd) OVER (ORDER BY o.operation_date, o.operation_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_accepted_usd,
    s.change_usd AS soma_bills_change_usd
FROM ops o
LEFT JOIN soma s ON o.settlement_date > s.prev_as_of AND o.settlement_date <= s.as_of_date
ORDER BY o.operation_date, o.operation_id
