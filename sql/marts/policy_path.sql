-- description: The priced policy path per as-of day (one row a day): the next FOMC meeting, the probability of a cut there, the expected target midpoint after it, and the change priced over the next 12 months — from CME FedWatch's method on the futures curve (staging.fedwatch_probabilities) where the futures price the next meeting; otherwise a labelled proxy (Treasury yield − EFFR, staging.policy_proxy) in its own columns, with the reason the day has no FedWatch odds. A FedWatch number and a proxy number never share a column.
-- column as_of_date: the trade day the prices are from (futures settlement day; for proxy days the day of the yield)
-- column next_meeting_date: next FOMC decision day on or after as_of_date (FOMC calendar)
-- column next_meeting_cut_prob: FedWatch: probability (0–1) that the target range after the next meeting is below the range in force on as_of_date; NULL on proxy days
-- column expected_mid_after_next_pct: FedWatch: probability-weighted target-range midpoint after the next meeting, %; NULL on proxy days
-- column meetings_priced: FedWatch: number of upcoming meetings the futures curve prices (1 with the front month only; up to the calendar's end with CME's whole curve); 0 on proxy days
-- column priced_change_12m_bp: FedWatch: expected target-range midpoint at priced_horizon_date minus the midpoint in force on as_of_date, bp (negative = cuts priced); the target only moves at meetings, so it is the expectation after the last meeting on or before priced_horizon_date; NULL on proxy days
-- column priced_horizon_date: FedWatch: the day priced_change_12m_bp refers to — as_of_date + 365 days when the curve prices a meeting beyond that day (so every meeting within 365 days is priced), else the last meeting it prices (a shorter horizon: later meetings within the year are not priced); NULL on proxy days
-- column proxy_change_bp: proxy days only: proxy_basis's Treasury yield minus the effective rate, bp — a market spread over proxy_horizon_months, not a meeting-by-meeting path; NULL on FedWatch days and when no yield within 7 days exists
-- column proxy_basis: proxy days only: the proxy's formula, 'DGS2 - EFFR' (2-year yield) or 'DGS1 - EFFR' (1-year, when the 2-year is older than 7 days); NULL on FedWatch days and when no yield exists
-- column proxy_horizon_months: proxy days only: maturity of the proxy's yield, months (24 for DGS2, 12 for DGS1); NULL otherwise
-- column basis: 'fedwatch' (odds from the futures) or 'proxy'
-- column reason: proxy days: why the day has no FedWatch odds (no contract for the meeting month; the meeting is too close to its month's end and the next month's contract is missing; no target range or effective rate; no upcoming meeting); NULL on FedWatch days
-- tags: policy
-- test: unique(as_of_date)
-- test: not_null(as_of_date, basis, meetings_priced)
-- test: accepted_range(next_meeting_cut_prob, 0, 1.000001)
-- test: accepted_range(proxy_horizon_months, 12, 24)
-- test: no_rows_where(basis NOT IN ('fedwatch', 'proxy'))
-- test: no_rows_where(basis = 'fedwatch' AND (priced_change_12m_bp IS NULL OR priced_horizon_date IS NULL OR proxy_change_bp IS NOT NULL OR reason IS NOT NULL))
-- test: no_rows_where(basis = 'proxy' AND (reason IS NULL OR priced_change_12m_bp IS NOT NULL OR meetings_priced <> 0))
-- test: no_rows_where(priced_horizon_date > as_of_date + INTERVAL '365 days' OR priced_horizon_date < next_meeting_date)
WITH target AS (
    SELECT date, value * 100 AS low_bps
    FROM staging.fred_observations_latest
    WHERE series_id = 'DFEDTARL' AND value IS NOT NULL
),
days AS (
    SELECT DISTINCT as_of_date FROM staging.fedwatch_probabilities
),
-- The range in force on the day: the newest DFEDTARL print at most 7 days old (the FedWatch
-- step started its distribution from the same print).
current_target AS (
    SELECT n.as_of_date, t.low_bps
    FROM (SELECT d.as_of_date, max(t.date) AS date
          FROM days d
          JOIN target t ON t.date <= d.as_of_date AND t.date >= d.as_of_date - INTERVAL '7 days'
          GROUP BY d.as_of_date) n
    JOIN target t ON t.date = n.date
),
per_meeting AS (
    SELECT f.as_of_date, f.meeting_date, f.meeting_index,
           sum(f.probability * (f.target_low_bps + 12.5)) AS expected_mid_bps,
           sum(CASE WHEN f.target_low_bps < c.low_bps THEN f.probability ELSE 0 END) AS cut_prob,
           max(c.low_bps) + 12.5 AS mid_now_bps
    FROM staging.fedwatch_probabilities f
    JOIN current_target c ON c.as_of_date = f.as_of_date
    GROUP BY f.as_of_date, f.meeting_date, f.meeting_index
),
coverage AS (
    SELECT as_of_date,
           count(*) AS meetings_priced,
           max(meeting_date) AS last_priced,
           max(CASE WHEN meeting_date <= as_of_date + INTERVAL '365 days' THEN meeting_index END) AS last_in_year
    FROM per_meeting
    GROUP BY as_of_date
),
fedwatch AS (
    SELECT n.as_of_date,
           n.meeting_date AS next_meeting_date,
           n.cut_prob AS next_meeting_cut_prob,
           n.expected_mid_bps / 100 AS expected_mid_after_next_pct,
           v.meetings_priced,
           y.expected_mid_bps - y.mid_now_bps AS priced_change_12m_bp,
           CASE WHEN v.last_priced > n.as_of_date + INTERVAL '365 days'
                THEN CAST(n.as_of_date + INTERVAL '365 days' AS DATE)
                ELSE y.meeting_date END AS priced_horizon_date
    FROM per_meeting n
    JOIN coverage v ON v.as_of_date = n.as_of_date
    JOIN per_meeting y ON y.as_of_date = n.as_of_date AND y.meeting_index = v.last_in_year
    WHERE n.meeting_index = 1
)
SELECT as_of_date, next_meeting_date, next_meeting_cut_prob, expected_mid_after_next_pct,
       meetings_priced, priced_change_12m_bp, priced_horizon_date,
       CAST(NULL AS DOUBLE) AS proxy_change_bp, CAST(NULL AS VARCHAR) AS proxy_basis,
       CAST(NULL AS BIGINT) AS proxy_horizon_months,
       'fedwatch' AS basis, CAST(NULL AS VARCHAR) AS reason
FROM fedwatch
UNION ALL
SELECT as_of_date, next_meeting_date, CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
       CAST(0 AS BIGINT), CAST(NULL AS DOUBLE), CAST(NULL AS DATE),
       priced_change_bp,
       CASE WHEN proxy IN ('DGS2 - EFFR', 'DGS1 - EFFR') THEN proxy END,
       CAST(CASE proxy WHEN 'DGS2 - EFFR' THEN 24 WHEN 'DGS1 - EFFR' THEN 12 END AS BIGINT),
       'proxy', reason
FROM staging.policy_proxy
ORDER BY as_of_date
