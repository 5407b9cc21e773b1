-- description: Fed outright Treasury-bill purchases, one row per operation since the reserve-management programme began (2025-12-12; change the date in the first CTE to study another programme), classified by purpose, with the week's total, the running totals, the calendar month's pace against the announced $40 bn/month of reserve-management purchases, and a cross-check against the weekly change in SOMA bills. Classification rule (all the NY Fed's operation data allows): an operation accepting less than $100 M is a small-value exercise (a test of the Desk's readiness, published as an ordinary operation: $50 M and $75 M in the data; the smallest programme operation is $3.3 bn); every other outright bill purchase from the programme start is 'reserve_management_or_reinvestment'. Reserve-management purchases (RMPs) and the reinvestment of agency MBS/debt principal into bills are NOT told apart: since December 2025 the Desk announces one monthly amount made of both and buys it in the same operations, split across two bill sectors by the sectors' share of bills outstanding, not by purpose (NY Fed FAQs: Reserve Management Purchases and Reinvestment Purchases, 2025-12-10); no operation field (type, maturity range, amounts; the published API also has auctionMethod and note) says which part of an operation is which. The monthly pace is therefore compared with the announced RMP pace and the difference labelled as reinvestment plus any change of the RMP pace.
-- column operation_id: NY Fed operation id
-- column operation_date: day of the operation
-- column week_start: Monday of the operation's week
-- column accepted_usd: par accepted, USD
-- column submitted_usd: par submitted, USD
-- column purpose: small_value_exercise (accepted < $100 M) or reserve_management_or_reinvestment (every other outright bill purchase since the programme start: RMPs and agency-principal reinvestment together, which the data cannot separate)
-- column week_accepted_usd: all outright bill purchases accepted that week (both purposes), USD
-- column cum_accepted_usd: all outright bill purchases (both purposes) accepted since the programme start, USD, through this operation
-- column programme_cum_accepted_usd: reserve_management_or_reinvestment purchases accepted since the programme start through this operation (small-value exercises left out), USD
-- column month_start: first day of the operation's calendar month (the Desk's monthly periods run mid-month to mid-month; calendar months are used because the data does not carry the period boundaries)
-- column month_programme_accepted_usd: reserve_management_or_reinvestment purchases accepted in that calendar month, USD
-- column month_is_partial: true when the month is not wholly covered: it began before the programme start, or it ends after the newest operation in the data
-- column announced_rmp_usd_per_month: the announced pace of reserve-management purchases alone, about $40 bn a month from the programme start (Desk, 2025-12-10), said to stay elevated until mid-April 2026 and be reduced after; USD, for months through April 2026; NULL from May 2026 (the later announced amounts are not recorded here)
-- column month_vs_announced_rmp_usd: month_programme_accepted_usd − announced_rmp_usd_per_month, USD: agency-principal reinvestment plus any change of the RMP pace (not separable); NULL where no announced pace is recorded; not comparable on partial months
-- column soma_bills_change_usd: change in SOMA bills holdings over the SOMA week (Wednesday to Wednesday) that contains the settlement; NULL where SOMA has no print
-- tags: liquidity
-- test: unique(operation_id)
-- test: not_null(operation_id, operation_date, accepted_usd, cum_accepted_usd, purpose, programme_cum_accepted_usd, month_start)
-- test: accepted_range(accepted_usd, 0, 1000000000000)
-- test: accepted_range(month_programme_accepted_usd, 0, 200000000000)
WITH programme AS (
    SELECT DATE '2025-12-12' AS start_date,
           CAST(40000000000 AS DOUBLE) AS announced_rmp_usd_per_month,
           DATE '2026-04-01' AS announced_rmp_last_month,
           CAST(100000000 AS DOUBLE) AS small_value_below_usd
),
ops AS (
    SELECT o.operation_id, o.operation_date, o.settlement_date,
           CAST(o.total_par_accepted_usd AS DOUBLE) AS accepted_usd,
           CAST(o.total_par_submitted_usd AS DOUBLE) AS submitted_usd,
           CASE WHEN CAST(o.total_par_accepted_usd AS DOUBLE) < p.small_value_below_usd
                THEN 'small_value_exercise'
                ELSE 'reserve_management_or_reinvestment' END AS purpose,
           CAST(date_trunc('month', o.operation_date) AS DATE) AS month_start,
           p.start_date,
           CASE WHEN date_trunc('month', o.operation_date) <= p.announced_rmp_last_month
                THEN p.announced_rmp_usd_per_month END AS announced_rmp_usd_per_month
    FROM staging.treasury_operation_totals o, programme p
    WHERE o.is_bill_purchase AND o.operation_date >= p.start_date
),
newest AS (
    SELECT max(operation_date) AS newest_operation_date FROM staging.treasury_operation_totals
),
soma AS (
    SELECT as_of_date,
           CAST(value_usd AS DOUBLE) - lag(CAST(value_usd AS DOUBLE)) OVER (ORDER BY as_of_date) AS change_usd,
           lag(as_of_date) OVER (ORDER BY as_of_date) AS prev_as_of
    FROM staging.soma_holdings WHERE security_type = 'bills'
),
classified AS (
    SELECT o.*,
           CASE WHEN o.purpose = 'reserve_management_or_reinvestment' THEN o.accepted_usd ELSE 0 END AS programme_usd
    FROM ops o
)
SELECT
    o.operation_id,
    o.operation_date,
    CAST(date_trunc('week', o.operation_date) AS DATE) AS week_start,
    o.accepted_usd,
    o.submitted_usd,
    o.purpose,
    sum(o.accepted_usd) OVER (PARTITION BY date_trunc('week', o.operation_date)) AS week_accepted_usd,
    sum(o.accepted_usd) OVER (ORDER BY o.operation_date, o.operation_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_accepted_usd,
    sum(o.programme_usd) OVER (ORDER BY o.operation_date, o.operation_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS programme_cum_accepted_usd,
    o.month_start,
    sum(o.programme_usd) OVER (PARTITION BY o.month_start) AS month_programme_accepted_usd,
    (o.month_start < o.start_date
        OR CAST(o.month_start + INTERVAL '1 month' - INTERVAL '1 day' AS DATE) > n.newest_operation_date) AS month_is_partial,
    o.announced_rmp_usd_per_month,
    sum(o.programme_usd) OVER (PARTITION BY o.month_start) - o.announced_rmp_usd_per_month AS month_vs_announced_rmp_usd,
    s.change_usd AS soma_bills_change_usd
FROM classified o
CROSS JOIN newest n
LEFT JOIN soma s ON o.settlement_date > s.prev_as_of AND o.settlement_date <= s.as_of_date
ORDER BY o.operation_date, o.operation_id
