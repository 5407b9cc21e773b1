-- description: The FOMC calendar the FedWatch step uses, one row per entry: the Fed's calendar page (federalreserve.gov fomccalendars.htm, every year it lists and the meetings its notes announce) merged over the seed sql/seeds/fomc_meetings.csv (for each year the page has a panel for, the page's entries replace the seed's), from staging.fomc_calendar. Its data test fails when fewer than 4 decision days lie after [models] reference_date (default today): a calendar that runs out leaves FedWatch and the policy path without a next meeting.
-- column meeting_date: decision day (the second day of a two-day meeting)
-- column meeting_start_date: first day of the meeting; NULL for seed rows
-- column has_sep: the meeting comes with a Summary of Economic Projections (the page's asterisk); NULL for seed rows
-- column scheduled: a regularly scheduled meeting
-- column kind: scheduled, unscheduled, notation_vote (a written vote, not a meeting), cancelled, or no_longer_listed (an entry the page dropped)
-- column is_decision: a day a policy decision can be taken (scheduled or unscheduled meeting); what FedWatch counts as a meeting
-- column source: the page's URL, or 'seed <file>: <where the seed row came from>'
-- column available_at: when the page's entry became public (end of the page's "Last Update" day, New York, or the fetch time if earlier), UTC; NULL for seed rows (reference data committed with the code)
-- column decision_number: 1, 2, … over decision days in date order; NULL for entries that are not decisions
-- column four_ahead_through: for a decision day, the last day on which it and the three decision days before it were all still ahead (the decision day three decisions earlier, minus one day); its maximum is the last day on which at least 4 decision days are known ahead. The freshness test on it (age 0) fails when that day is before the reference date, i.e. when fewer than 4 future meetings are known on the reference date
-- tags: rates
-- test: unique(meeting_date)
-- test: not_null(meeting_date, scheduled, kind, is_decision, source)
-- test: freshness(four_ahead_through, 0)
WITH decisions AS (
    SELECT meeting_date,
           row_number() OVER (ORDER BY meeting_date) AS decision_number,
           lag(meeting_date, 3) OVER (ORDER BY meeting_date) AS third_before
    FROM staging.fomc_calendar
    WHERE is_decision
)
SELECT c.meeting_date,
       c.meeting_start_date,
       c.has_sep,
       c.scheduled,
       c.kind,
       c.is_decision,
       c.source,
       c.available_at,
       d.decision_number,
       CAST(d.third_before - INTERVAL '1 day' AS DATE) AS four_ahead_through
FROM staging.fomc_calendar c
LEFT JOIN decisions d ON d.meeting_date = c.meeting_date
ORDER BY c.meeting_date
