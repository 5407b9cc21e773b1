-- description: The priced path meeting by meeting (CME FedWatch's method on the futures curve): per as-of day and every upcoming FOMC meeting the curve prices, the expected target-range midpoint after that meeting, the probability that the range is then below the one in force on the day, and how the meeting's start and end rates were found. Only FedWatch days have rows (proxy days are in marts.policy_path with their reason).
-- tags: policy
-- column as_of_date: the trade day the futures settlements are from
-- column meeting_date: FOMC decision day
-- column meeting_index: 1 = next meeting, 2 = the one after, …
-- column expected_mid_pct: probability-weighted target-range midpoint after the meeting, %
-- column below_current_prob: probability (0–1) that the range after the meeting is below the range in force on as_of_date
-- column expected_change_bp: expected_mid_pct minus the midpoint in force on as_of_date, bp (negative = cuts priced)
-- column rate_start_pct: the effective rate expected before the meeting, % (futures basis)
-- column rate_end_pct: the effective rate expected after the meeting, % (futures basis)
-- column method: where the start and end rates came from (an anchor month without a meeting, a chain from a neighbouring meeting month, the meeting month's own contract, or the effective rate published by the day)
-- test: unique(as_of_date, meeting_date)
-- test: not_null(as_of_date, meeting_date, meeting_index, expected_mid_pct, expected_change_bp)
-- test: accepted_range(below_current_prob, 0, 1.000001)
-- test: no_rows_where(meeting_date < as_of_date)
WITH target AS (
    SELECT date, value * 100 AS low_bps
    FROM staging.fred_observations_latest
    WHERE series_id = 'DFEDTARL' AND value IS NOT NULL
),
days AS (
    SELECT DISTINCT as_of_date FROM staging.fedwatch_probabilities
),
-- The range in force on the day: the newest DFEDTARL print at most 7 days old (as in policy_path).
current_target AS (
    SELECT n.as_of_date, t.low_bps
    FROM (SELECT d.as_of_date, max(t.date) AS date
          FROM days d
          JOIN target t ON t.date <= d.as_of_date AND t.date >= d.as_of_date - INTERVAL '7 days'
          GROUP BY d.as_of_date) n
    JOIN target t ON t.date = n.date
)
SELECT f.as_of_date, f.meeting_date, f.meeting_index,
       sum(f.probability * (f.target_low_bps + 12.5)) / 100 AS expected_mid_pct,
       sum(CASE WHEN f.target_low_bps < c.low_bps THEN f.probability ELSE 0 END) AS below_current_prob,
       sum(f.probability * (f.target_low_bps + 12.5)) - (max(c.low_bps) + 12.5) AS expected_change_bp,
       max(f.rate_start_pct) AS rate_start_pct,
       max(f.rate_end_pct) AS rate_end_pct,
       max(f.method) AS method
FROM staging.fedwatch_probabilities f
JOIN current_target c ON c.as_of_date = f.as_of_date
GROUP BY f.as_of_date, f.meeting_date, f.meeting_index
ORDER BY f.as_of_date, f.meeting_index
