-- description: The priced path meeting by meeting: per as-of day and upcoming FOMC meeting the futures cover, the expected target-range midpoint after that meeting and the probability that the range is lower than today's (FedWatch probabilities).
-- tags: policy
-- column as_of_date: day the prices are from
-- column meeting_date: FOMC decision date
-- column meeting_index: 1 = next meeting
-- column expected_mid_pct: expected target midpoint after the meeting, %
-- column below_current_prob: probability the range is below the current one after the meeting
-- column expected_change_bp: expected_mid_pct − today's midpoint, bp
-- test: unique(as_of_date, meeting_date)
-- test: not_null(as_of_date, meeting_date, expected_mid_pct)
-- test: accepted_range(below_current_prob, 0, 1.000001)
WITH target AS (
    SELECT date, value * 100 AS low_bps FROM staging.fred_observations_latest WHERE series_id = 'DFEDTARL' AND value IS NOT NULL
)
SELECT f.as_of_date, f.meeting_date, f.meeting_index,
       sum(f.probability * (f.target_low_bps + 12.5)) / 100 AS expected_mid_pct,
       sum(CASE WHEN f.target_low_bps < t.low_bps THEN f.probability ELSE 0 END) AS below_current_prob,
       sum(f.probability * (f.target_low_bps + 12.5)) - (max(t.low_bps) + 12.5) AS expected_change_bp
FROM staging.fedwatch_probabilities f
JOIN target t ON t.date = f.as_of_date
GROUP BY f.as_of_date, f.meeting_date, f.meeting_index
ORDER BY f.as_of_date, f.meeting_index
