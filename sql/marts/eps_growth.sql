-- description: Per calendar day and index, the expected EPS growth of next calendar year over this one from the newest edition known that day — by its availability (available_at: S&P DJI workbooks 3 days after their "as of" close, vendor files the day after), never a later one — for at most 45 days after the edition's as-of date (no row past that: an edition is not shown as current for ever). A base year with non-positive EPS gives a NULL growth with the reason, never an older edition's number. S&P 500 from the workbook's ESTIMATES&PEs sheet, S&P 400/600 from SECTOR EPS; vendor CSV rows (e.g. RUT from a bank) feed the same rule per index and source.
-- column date: calendar day (the edition known at its cut-off)
-- column index: SP500, SP400, SP600, or a vendor's index code (RUT, NDX …)
-- column source: spdji_workbook or the vendor
-- column edition_date: as-of date of the edition used
-- column edition_known_on: first day the edition was usable (its available_at at the cut-off)
-- column this_year: the year before the furthest year the edition estimates
-- column eps_this_year: operating EPS of this_year (estimate or actual) in that edition, $ per index share
-- column eps_next_year: operating EPS of this_year + 1 in that edition, $ per index share
-- column growth_pct: eps_next_year / eps_this_year − 1, % (NULL with growth_note when it has no meaning)
-- column growth_note: why growth_pct is NULL (base-year EPS not positive, or no base year in the edition)
-- test: unique(date, index, source)
-- test: not_null(date, index, source, edition_date, edition_known_on)
-- test: accepted_range(growth_pct, -100, 10000)
-- test: no_rows_where(date > edition_date + INTERVAL '45 days' OR date < edition_known_on)
-- test: no_rows_where(growth_pct IS NULL AND growth_note IS NULL)
WITH annual AS (
    SELECT as_of_date, index, source, CAST(period AS INT) AS year, value, known_on(available_at) AS known_on
    FROM staging.eps_estimates
    WHERE kind = 'operating_eps' AND length(period) = 4
),
horizon AS (
    -- Each edition estimates up to some year: that is "next year", the one before it "this year".
    SELECT as_of_date, index, source, max(year) AS next_year, max(known_on) AS known_on
    FROM annual GROUP BY as_of_date, index, source
),
editions AS (
    SELECT h.as_of_date AS edition_date, h.index, h.source, h.known_on AS edition_known_on,
           CAST(h.next_year - 1 AS INT) AS this_year, a.value AS eps_this_year, n.value AS eps_next_year,
           CASE WHEN a.value > 0 THEN (n.value / a.value - 1) * 100 END AS growth_pct,
           CASE WHEN a.value IS NULL THEN 'edition has no ' || CAST(h.next_year - 1 AS VARCHAR) || ' EPS to grow from'
                WHEN a.value <= 0 THEN CAST(h.next_year - 1 AS VARCHAR) || ' EPS is not positive (' || CAST(a.value AS VARCHAR) || '): growth has no meaning'
           END AS growth_note
    FROM horizon h
    JOIN annual n ON n.as_of_date = h.as_of_date AND n.index = h.index AND n.source = h.source AND n.year = h.next_year
    LEFT JOIN annual a ON a.as_of_date = h.as_of_date AND a.index = h.index AND a.source = h.source AND a.year = h.next_year - 1
),
spans AS (
    -- An edition holds from the day it is known until the next (newer) edition of the index and
    -- source is known, and never past 45 days after its as-of date.
    SELECT *, lead(edition_known_on) OVER (PARTITION BY index, source ORDER BY edition_date) AS next_known_on
    FROM editions
),
bounded AS (
    SELECT *, least(coalesce(next_known_on - INTERVAL '1 day', edition_date + INTERVAL '45 days'),
                    edition_date + INTERVAL '45 days') AS last_day
    FROM spans
)
SELECT date, index, source, edition_date, edition_known_on, this_year, eps_this_year, eps_next_year, growth_pct, growth_note
FROM (
    SELECT index, source, edition_date, edition_known_on, this_year, eps_this_year, eps_next_year, growth_pct, growth_note,
           CAST(unnest(generate_series(edition_known_on, last_day, INTERVAL '1 day')) AS DATE) AS date
    FROM bounded WHERE last_day >= edition_known_on
)
ORDER BY index, source, date
