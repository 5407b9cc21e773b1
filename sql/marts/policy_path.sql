-- description: The priced policy path per as-of day: next FOMC meeting, the probability of a cut there, the expected target-range midpoint after it, and the change priced over the next 12 months in bp — from FedWatch probabilities where futures cover the meetings, else from the labelled proxy (2y/1y yield − EFFR).
-- column as_of_date: day the prices are from
-- column next_meeting_date: next FOMC decision on or after the day
-- column next_meeting_cut_prob: probability of a lower target range at the next meeting (FedWatch only)
-- column expected_mid_after_next_pct: expected target midpoint after the next meeting, % (FedWatch only)
-- column meetings_priced: meetings the futures cover (FedWatch only)
-- column expected_change_12m_bp: change priced by the last covered meeting within 12 months (FedWatch) or the proxy's priced_change_bp
-- column basis: fedwatch, or the proxy's label (DGS2 - EFFR, DGS1 - EFFR, none)
-- tags: policy
-- test: unique(as_of_date)
-- test: not_null(as_of_date, basis)
-- test: accepted_range(next_meeting_cut_prob, 0, 1)
WITH target AS (
    SELECT date, value * 100 AS low_bps FROM staging.fred_observations_latest WHERE series_id = 'DFEDTARL' AND value IS NOT NULL
),
per_meeting AS (
    SELECT f.as_of_date, f.meeting_date, f.meeting_index,
           sum(f.probability * (f.target_low_bps + 12.5)) / 100 AS expected_mid_pct,
           sum(CASE WHEN f.target_low_bps < t.low_bps THEN f.probability ELSE 0 END) AS cut_prob,
           max(t.low_bps) AS low_bps
    FROM staging.fedwatch_probabilities f
    JOIN target t ON t.date = f.as_of_date  -- DFEDTARL is a 7-day daily series
    GROUP BY f.as_of_date, f.meeting_date, f.meeting_index
),
fedwatch AS (
    SELECT as_of_date,
           max(CASE WHEN meeting_index = 1 THEN meeting_date END) AS next_meeting_date,
           max(CASE WHEN meeting_index = 1 THEN cut_prob END) AS next_meeting_cut_prob,
           max(CASE WHEN meeting_index = 1 THEN expected_mid_pct END) AS expected_mid_after_next_pct,
           count(*) AS meetings_priced,
           max(CASE WHEN meeting_date <= as_of_date + INTERVAL '365 days' THEN meeting_index END) AS last_in_year,
           max(low_bps) AS low_bps
    FROM per_meeting
    GROUP BY as_of_date
),
fedwatch_12m AS (
    SELECT f.*, (p.expected_mid_pct * 100) - (f.low_bps + 12.5) AS expected_change_12m_bp
    FROM fedwatch f
    LEFT JOIN per_meeting p ON p.as_of_date = f.as_of_date AND p.meeting_index = f.last_in_year
)
SELECT as_of_date, next_meeting_date, next_meeting_cut_prob, expected_mid_after_next_pct,
       meetings_priced, expected_change_12m_bp, 'fedwatch' AS basis
FROM fedwatch_12m
UNION ALL
SELECT as_of_date, next_meeting_date, CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
       CAST(0 AS BIGINT), priced_change_bp, proxy
FROM staging.policy_proxy
ORDER BY as_of_date
