-- description: Per calendar day and index, the expected EPS growth of next calendar year over this one, from the newest workbook edition published on or before that day (no look-ahead). S&P 500 from the ESTIMATES&PEs sheet; S&P 400 and 600 from SECTOR EPS where the editions carry them.
-- column date: calendar day
-- column index: SP500, SP400 or SP600
-- column edition_date: as-of date of the edition used
-- column this_year: the year before the furthest year the edition estimates (the edition's current year, or — early in a year, before the new year's estimates are added — the year just ended)
-- column eps_this_year: operating EPS of this_year (estimate or actual) in that edition
-- column eps_next_year: operating EPS of this_year + 1 (the furthest estimate) in that edition
-- column growth_pct: eps_next_year / eps_this_year − 1, in percent (a depressed base year gives large values: SP600 2020 → 2021 is +2478%)
-- test: unique(date, index)
-- test: not_null(date, index, edition_date, growth_pct)
-- test: accepted_range(growth_pct, -100, 10000)
WITH annual AS (
    SELECT as_of_date, index, CAST(period AS INT) AS year, value
    FROM staging.eps_estimates
    WHERE kind = 'operating_eps' AND length(period) = 4 AND source = 'spdji_workbook'
),
horizon AS (
    -- Each edition estimates up to some year: that is "next year", the one before it "this year".
    SELECT as_of_date, index, max(year) AS next_year FROM annual GROUP BY as_of_date, index
),
editions AS (
    SELECT a.as_of_date AS edition_date, a.index, a.year AS this_year,
           a.value AS eps_this_year, n.value AS eps_next_year,
           (n.value / a.value - 1) * 100 AS growth_pct
    FROM annual a
    JOIN horizon h ON h.as_of_date = a.as_of_date AND h.index = a.index AND a.year = h.next_year - 1
    JOIN annual n ON n.as_of_date = a.as_of_date AND n.index = a.index AND n.year = h.next_year
    WHERE a.value > 0
),
spans AS (
    SELECT *, lead(edition_date) OVER (PARTITION BY index ORDER BY edition_date) AS next_edition
    FROM editions
),
days AS (
    SELECT index, edition_date, this_year, eps_this_year, eps_next_year, growth_pct,
           CAST(unnest(generate_series(edition_date, coalesce(next_edition - INTERVAL '1 day', edition_date + INTERVAL '365 days'), INTERVAL '1 day')) AS DATE) AS date
    FROM spans
)
SELECT date, index, edition_date, this_year, eps_this_year, eps_next_year, growth_pct
FROM days
ORDER BY index, date
