//! FOMC calendar connector: the Federal Reserve Board's meeting calendar page
//! (`fomccalendars.htm`, every year it lists, see [`parse`]) →
//!
//! * `staging.fomc_meetings` [meeting_date]: one row per entry of the page — decision day
//!   (`meeting_date`, the second day of a two-day meeting), `meeting_start_date`, `has_sep`
//!   (the page's asterisk), `kind` (`scheduled`, `unscheduled`, `notation_vote`, `cancelled`, or
//!   `no_longer_listed` for an entry an earlier fetch saw that the page no longer lists),
//!   `scheduled`, `panel_year` (NULL for a meeting announced in a note, e.g. January 2028),
//!   `label` (the cell as written), `available_at` and `ingested_at`. Rows are MERGEd on the
//!   decision day; `available_at` is kept from the first time a row was seen unchanged.
//! * `staging.fomc_calendar` [meeting_date]: the calendar the FedWatch step uses — the page's
//!   entries **merged over the built-in seed** `sql/seeds/fomc_meetings.csv` (or the file set in
//!   `[sources.fedwatch] meetings_csv`) by [`merge`]: for every year the page has a panel for,
//!   the page's entries replace the seed's (the page is the Fed's own word; a projected seed date
//!   it contradicts goes); other years keep the seed's rows; a meeting announced in a note is
//!   added. `is_decision` marks the days a rate decision can be taken (scheduled and unscheduled
//!   meetings — not notation votes, not cancelled or withdrawn meetings). Rewritten (one commit)
//!   only when its content changes.
//!
//! `available_at` of a page row: the end (23:59:59 New York) of the page's own "Last Update"
//! day, or the fetch time if that is earlier or the page gives no date. Seed rows have none
//! (reference data committed with the code).

pub mod config;
pub mod parse;
mod seed;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use datafusion::arrow::array::{
    Array, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};

pub use config::FomcConfig;
pub use seed::{SEED, SEED_NAME, SeedRow, load_seed, parse_seed};

use super::{IngestContext, Source, SourceError, SourceReport};
use crate::http::Request;
use crate::lake::{Lake, LakeError, StagingRow, TableName, WriteMode, column_as};

const NAME: &str = "fomc";
const ITEM: &str = "FOMC calendar page";
/// `source` of the page's rows.
pub const PAGE_SOURCE: &str = "federalreserve.gov/monetarypolicy/fomccalendars.htm";
/// `kind` of a row an earlier fetch saw and the page no longer lists.
pub const NO_LONGER_LISTED: &str = "no_longer_listed";

/// Whether an entry of this `kind` is a regularly scheduled meeting (the `scheduled` column).
fn kind_is_scheduled(kind: &str) -> bool {
    kind == "scheduled"
}

/// Whether an entry of this `kind` is a day a rate decision can be taken: a scheduled or an
/// unscheduled meeting (the `is_decision` column).
fn kind_is_decision(kind: &str) -> bool {
    matches!(kind, "scheduled" | "unscheduled")
}

crate::staging_row! {
    /// One row of `staging.fomc_meetings`: one entry of the calendar page.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PageRow in "fomc_meetings" keys [meeting_date] {
        /// Decision day: the last day of the meeting (the second day of a two-day meeting), or
        /// the day of a one-day meeting or notation vote.
        pub meeting_date: NaiveDate,
        /// First day of the meeting (equals `meeting_date` for a one-day meeting or a vote).
        pub meeting_start_date: NaiveDate,
        /// Marked `*` on the page: associated with a Summary of Economic Projections.
        pub has_sep: bool,
        /// A regularly scheduled meeting: `kind = 'scheduled'`.
        pub scheduled: bool,
        /// What the entry is: `scheduled`, `unscheduled`, `notation_vote`, `cancelled` (or
        /// another parenthesis of the page, spaces as `_`), or `no_longer_listed` for an entry an
        /// earlier fetch saw that the page no longer lists.
        pub kind: String,
        /// The year panel the entry was read from; NULL for a meeting announced in a note below
        /// the panels (e.g. January 2028).
        pub panel_year: Option<i32>,
        /// The cell (or note sentence) as written, e.g. `August 22 (notation vote)`.
        pub label: String,
        /// Where the row was read: `federalreserve.gov/monetarypolicy/fomccalendars.htm`.
        pub source: &'static str,
        /// When the entry became public (UTC): the end (23:59:59 New York) of the page's "Last
        /// Update" day, or the fetch time if that is earlier or the page has no date; kept from
        /// the first fetch that saw the row as it is.
        pub available_at: DateTime<Utc>,
    }
}

crate::staging_row! {
    /// One meeting of the merged calendar (`staging.fomc_calendar`): the page's entries merged
    /// over the seed (see the module doc).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CalendarMeeting in "fomc_calendar" keys [meeting_date] {
        /// Decision day.
        pub meeting_date: NaiveDate,
        /// First day of the meeting; NULL for a seed row.
        pub meeting_start_date: Option<NaiveDate>,
        /// Associated with a Summary of Economic Projections; NULL for a seed row.
        pub has_sep: Option<bool>,
        /// A regularly scheduled meeting (`false` for an unscheduled one, a notation vote, a
        /// cancelled or no longer listed meeting).
        pub scheduled: bool,
        /// `scheduled`, `unscheduled`, `notation_vote`, `cancelled`, `no_longer_listed`, … (a
        /// page row's `kind` in `fomc_meetings`; a seed row's is `scheduled` or `unscheduled`).
        pub kind: String,
        /// A day a rate decision can be taken: `kind` is `scheduled` or `unscheduled` (not a
        /// notation vote, not a cancelled or withdrawn meeting).
        pub is_decision: bool,
        /// `federalreserve.gov/monetarypolicy/fomccalendars.htm` for a page row, or
        /// `seed <file>: <the seed row's source>`.
        pub source: String,
        /// When it became public (UTC), as in `fomc_meetings`; NULL for a seed row.
        pub available_at: Option<DateTime<Utc>>,
    }
}

/// The page merged over the seed (see the module doc): for each year some page row was read
/// from a panel of, the page's rows replace the seed's; other seed rows stay; page rows from
/// notes are added (a page row wins over a seed row of the same day). Sorted by decision day.
pub fn merge(seed_name: &str, seed: &[SeedRow], page: &[PageRow]) -> Vec<CalendarMeeting> {
    let panel_years: BTreeSet<i32> = page.iter().filter_map(|r| r.panel_year).collect();
    let page_days: BTreeSet<NaiveDate> = page.iter().map(|r| r.meeting_date).collect();
    let mut out: Vec<CalendarMeeting> = seed
        .iter()
        .filter(|s| {
            !panel_years.contains(&s.meeting_date.year()) && !page_days.contains(&s.meeting_date)
        })
        .map(|s| {
            let kind = if s.scheduled {
                "scheduled"
            } else {
                "unscheduled"
            };
            CalendarMeeting {
                meeting_date: s.meeting_date,
                meeting_start_date: None,
                has_sep: None,
                scheduled: s.scheduled,
                kind: kind.into(),
                is_decision: kind_is_decision(kind),
                source: format!("seed {seed_name}: {}", s.source),
                available_at: None,
            }
        })
        .collect();
    out.extend(page.iter().map(|r| CalendarMeeting {
        meeting_date: r.meeting_date,
        meeting_start_date: Some(r.meeting_start_date),
        has_sep: Some(r.has_sep),
        scheduled: r.scheduled,
        kind: r.kind.clone(),
        is_decision: kind_is_decision(&r.kind),
        source: PAGE_SOURCE.into(),
        available_at: Some(r.available_at),
    }));
    out.sort_by_key(|m| m.meeting_date);
    out
}

/// The merged calendar from the lake's `staging.fomc_meetings` (none yet = the seed alone) over
/// the seed at `seed_path` (`None` = the built-in seed). What the FedWatch step uses.
pub async fn load_calendar(
    lake: &Lake,
    seed_path: Option<&Path>,
) -> Result<Vec<CalendarMeeting>, SourceError> {
    let (seed_name, seed) = load_seed(seed_path)?;
    let page = read_page_rows(lake)
        .await
        .map_err(SourceError::lake(NAME))?
        .unwrap_or_default();
    Ok(merge(&seed_name, &seed, &page))
}

/// The decision days of [`load_calendar`]'s calendar, sorted.
pub async fn decision_days(
    lake: &Lake,
    seed_path: Option<&Path>,
) -> Result<Vec<NaiveDate>, SourceError> {
    Ok(load_calendar(lake, seed_path)
        .await?
        .into_iter()
        .filter(|m| m.is_decision)
        .map(|m| m.meeting_date)
        .collect())
}

/// The rows of a staging table read by `sql`, one batch at a time through `per_batch`; `None`
/// when the table does not exist yet.
async fn read<T>(
    lake: &Lake,
    table: &TableName,
    sql: &str,
    per_batch: impl Fn(&RecordBatch, &mut Vec<T>) -> Result<(), LakeError>,
) -> Result<Option<Vec<T>>, LakeError> {
    let session = lake.session_of(std::slice::from_ref(table), &[]).await?;
    if !session.tables.iter().any(|(t, _)| t == table) {
        return Ok(None);
    }
    let df_err = |source| LakeError::DataFusion {
        context: format!("reading {table}"),
        source: Box::new(source),
    };
    let df = session.ctx.sql(sql).await.map_err(df_err)?;
    let mut rows = Vec::new();
    for b in df.collect().await.map_err(df_err)? {
        per_batch(&b, &mut rows)?;
    }
    Ok(Some(rows))
}

/// The first three columns both tables are read with: `meeting_date`, `meeting_start_date`,
/// `has_sep`.
fn meeting_columns(b: &RecordBatch) -> Result<(Date32Array, Date32Array, BooleanArray), LakeError> {
    Ok((
        column_as(b, 0, &DataType::Date32)?,
        column_as(b, 1, &DataType::Date32)?,
        column_as(b, 2, &DataType::Boolean)?,
    ))
}

fn timestamps(b: &RecordBatch, i: usize) -> Result<TimestampMicrosecondArray, LakeError> {
    column_as(
        b,
        i,
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )
}

fn micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

/// Every row of `staging.fomc_meetings`; `None` when the table does not exist yet.
pub async fn read_page_rows(lake: &Lake) -> Result<Option<Vec<PageRow>>, LakeError> {
    let sql = "SELECT meeting_date, meeting_start_date, has_sep, kind, panel_year, label, available_at \
               FROM staging.fomc_meetings ORDER BY meeting_date";
    read(lake, &PageRow::table(), sql, |b, rows| {
        let (dates, starts, sep) = meeting_columns(b)?;
        let kinds: StringArray = column_as(b, 3, &DataType::Utf8)?;
        let years: Int32Array = column_as(b, 4, &DataType::Int32)?;
        let labels: StringArray = column_as(b, 5, &DataType::Utf8)?;
        let avail = timestamps(b, 6)?;
        for i in 0..b.num_rows() {
            let (Some(meeting_date), Some(meeting_start_date)) =
                (dates.value_as_date(i), starts.value_as_date(i))
            else {
                continue;
            };
            let kind = kinds.value(i);
            rows.push(PageRow {
                meeting_date,
                meeting_start_date,
                has_sep: sep.value(i),
                scheduled: kind_is_scheduled(kind),
                kind: kind.to_string(),
                panel_year: (!years.is_null(i)).then(|| years.value(i)),
                label: labels.value(i).to_string(),
                source: PAGE_SOURCE,
                available_at: micros(avail.value(i)),
            });
        }
        Ok(())
    })
    .await
}

/// Every row of `staging.fomc_calendar` (without `ingested_at`; `is_decision` as its `kind`
/// says); `None` when it does not exist.
async fn read_calendar(lake: &Lake) -> Result<Option<Vec<CalendarMeeting>>, LakeError> {
    let sql = "SELECT meeting_date, meeting_start_date, has_sep, scheduled, kind, source, available_at \
               FROM staging.fomc_calendar ORDER BY meeting_date";
    read(lake, &CalendarMeeting::table(), sql, |b, rows| {
        let (dates, starts, sep) = meeting_columns(b)?;
        let scheduled: BooleanArray = column_as(b, 3, &DataType::Boolean)?;
        let kinds: StringArray = column_as(b, 4, &DataType::Utf8)?;
        let sources: StringArray = column_as(b, 5, &DataType::Utf8)?;
        let avail = timestamps(b, 6)?;
        for i in 0..b.num_rows() {
            let Some(meeting_date) = dates.value_as_date(i) else {
                continue;
            };
            let kind = kinds.value(i);
            rows.push(CalendarMeeting {
                meeting_date,
                meeting_start_date: starts.value_as_date(i).filter(|_| !starts.is_null(i)),
                has_sep: (!sep.is_null(i)).then(|| sep.value(i)),
                scheduled: scheduled.value(i),
                kind: kind.to_string(),
                is_decision: kind_is_decision(kind),
                source: sources.value(i).to_string(),
                available_at: (!avail.is_null(i)).then(|| micros(avail.value(i))),
            });
        }
        Ok(())
    })
    .await
}

/// When the page's content became public: the end (23:59:59 New York) of its "Last Update"
/// day, or the fetch time when that is earlier or the page has no date.
pub fn page_available_at(
    last_update: Option<NaiveDate>,
    fetched_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let end_of_day = last_update.and_then(|d| {
        chrono_tz::America::New_York
            .from_local_datetime(&d.and_time(NaiveTime::from_hms_opt(23, 59, 59)?))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    });
    end_of_day.map_or(fetched_at, |t| t.min(fetched_at))
}

/// The rows to land for a parsed page: its entries, plus every stored entry of the years the
/// page covers that it no longer lists (kind [`NO_LONGER_LISTED`], not scheduled, known from
/// this fetch).
pub fn page_rows(
    page: &parse::CalendarPage,
    available_at: DateTime<Utc>,
    stored: &[PageRow],
) -> Vec<PageRow> {
    let mut rows: Vec<PageRow> = page
        .meetings
        .iter()
        .map(|m| {
            let kind = m.kind.as_str();
            PageRow {
                meeting_date: m.meeting_date,
                meeting_start_date: m.meeting_start_date,
                has_sep: m.has_sep,
                scheduled: kind_is_scheduled(&kind),
                kind,
                panel_year: match m.origin {
                    parse::Origin::Panel(y) => Some(y),
                    parse::Origin::Note => None,
                },
                label: m.label.clone(),
                source: PAGE_SOURCE,
                available_at,
            }
        })
        .collect();
    let listed: BTreeSet<NaiveDate> = rows.iter().map(|r| r.meeting_date).collect();
    let first_year = page.panel_years.first().copied().unwrap_or(i32::MAX);
    let last_year = rows
        .iter()
        .map(|r| r.meeting_date.year())
        .max()
        .unwrap_or(i32::MIN);
    for old in stored {
        let y = old.meeting_date.year();
        if listed.contains(&old.meeting_date) || y < first_year || y > last_year {
            continue;
        }
        rows.push(PageRow {
            scheduled: kind_is_scheduled(NO_LONGER_LISTED),
            kind: NO_LONGER_LISTED.into(),
            available_at: if old.kind == NO_LONGER_LISTED {
                old.available_at
            } else {
                available_at
            },
            ..old.clone()
        });
    }
    rows.sort_by_key(|r| r.meeting_date);
    rows
}

/// The FOMC calendar connector.
#[derive(Debug, Clone)]
pub struct Fomc {
    config: FomcConfig,
    seed_path: Option<std::path::PathBuf>,
}

impl Fomc {
    /// A connector with these settings, merging over the seed at `seed_path` (`None` = the
    /// built-in seed; the FedWatch step's `meetings_csv`, so both see one calendar).
    pub fn new(config: FomcConfig, seed_path: Option<std::path::PathBuf>) -> Self {
        Self { config, seed_path }
    }
}

#[async_trait::async_trait]
impl Source for Fomc {
    fn tables(&self) -> Vec<crate::lake::row::TableDoc> {
        vec![PageRow::doc(), CalendarMeeting::doc()]
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let lake_err = SourceError::lake(NAME);
        // Read the seed first: a broken seed fails before anything is fetched or written.
        let (seed_name, seed) = load_seed(self.seed_path.as_deref())?;
        let req = Request::get(self.config.url.clone());
        let resp = ctx.fetch(NAME, ITEM, &req, "fomccalendars.htm").await?;
        let html = std::str::from_utf8(&resp.body).map_err(|e| {
            SourceError::parse(NAME, ITEM, &resp.url, None, format!("not UTF-8: {e}"))
        })?;
        let page = parse::calendar(html)
            .map_err(|e| SourceError::parse(NAME, ITEM, &resp.url, None, e.message))?;
        let available_at = page_available_at(page.last_update, resp.fetched_at);
        let stored = if ctx.window.full_refresh {
            Vec::new()
        } else {
            read_page_rows(&ctx.lake)
                .await
                .map_err(&lake_err)?
                .unwrap_or_default()
        };
        let rows = page_rows(&page, available_at, &stored);
        let mode = if ctx.window.full_refresh {
            WriteMode::Overwrite
        } else {
            WriteMode::Merge {
                keys: PageRow::KEYS.iter().map(|k| k.to_string()).collect(),
                ignore: vec!["ingested_at".into(), "available_at".into()],
            }
        };
        let newest = rows.iter().map(|r| r.meeting_date).max();
        let mut report = SourceReport::default();
        let key = PageRow::TABLE.to_string();
        report.rows_written += ctx.land(NAME, &rows, mode, [(key, newest)]).await?;

        // The merged calendar, from what the lake now holds (kept available_at included).
        let landed = read_page_rows(&ctx.lake)
            .await
            .map_err(&lake_err)?
            .unwrap_or_default();
        let calendar = merge(&seed_name, &seed, &landed);
        if read_calendar(&ctx.lake).await.map_err(&lake_err)?.as_ref() != Some(&calendar) {
            let written = ctx
                .lake
                .write(
                    &CalendarMeeting::table(),
                    vec![CalendarMeeting::batch(&calendar, ctx.run_at).map_err(&lake_err)?],
                    WriteMode::Overwrite,
                )
                .await
                .map_err(&lake_err)?;
            report.rows_written += written.rows;
        }
        tracing::info!(
            source = NAME,
            entries = page.meetings.len(),
            years = ?page.panel_years,
            calendar = calendar.len(),
            "FOMC calendar landed"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceKind;
    use crate::sources::testing::d;

    const PAGE: &str = include_str!(
        "../../../tests/fixtures/upstream/www.federalreserve.gov/monetarypolicy_fomccalendars.htm.body.html"
    );

    fn fetched() -> DateTime<Utc> {
        "2026-09-20T12:00:00Z".parse().unwrap()
    }

    fn real_rows() -> Vec<PageRow> {
        let page = parse::calendar(PAGE).unwrap();
        page_rows(&page, page_available_at(page.last_update, fetched()), &[])
    }

    #[test]
    fn available_at_is_the_end_of_the_last_update_day_in_new_york() {
        let page = parse::calendar(PAGE).unwrap();
        let t = page_available_at(page.last_update, fetched());
        assert_eq!(t.to_rfc3339(), "2026-09-17T03:59:59+00:00");
        // A fetch before that (a page dated later than the clock) caps it.
        let early: DateTime<Utc> = "2026-09-16T20:00:00Z".parse().unwrap();
        assert_eq!(page_available_at(page.last_update, early), early);
        assert_eq!(page_available_at(None, fetched()), fetched());
    }

    #[test]
    fn the_seed_is_extended_through_january_2028_and_agrees_with_the_page() {
        let seed = parse_seed(SEED).unwrap();
        let page = real_rows();
        // Every decision day of the years the page has a panel for is in the seed, and the
        // seed has no other day in those years: the page contradicts no seed date.
        for year in 2021..=2027 {
            let from_page: Vec<NaiveDate> = page
                .iter()
                .filter(|r| r.meeting_date.year() == year && r.kind == "scheduled")
                .map(|r| r.meeting_date)
                .collect();
            let from_seed: Vec<NaiveDate> = seed
                .iter()
                .filter(|s| s.meeting_date.year() == year)
                .map(|s| s.meeting_date)
                .collect();
            assert_eq!(from_seed, from_page, "{year}");
        }
        let last = seed.last().unwrap();
        assert_eq!(last.meeting_date, d("2028-01-26"));
        assert!(last.source.contains("fomccalendars.htm"), "{}", last.source);
        assert!(
            seed.iter().all(|s| s.meeting_date != d("2025-08-22")),
            "the notation vote is not a meeting"
        );
        assert!(
            seed.iter()
                .any(|s| s.meeting_date == d("2020-03-15") && !s.scheduled)
        );
    }

    #[test]
    fn the_page_replaces_the_seed_for_its_years_and_keeps_the_seed_elsewhere() {
        let seed = vec![
            SeedRow {
                meeting_date: d("2020-03-15"),
                scheduled: false,
                source: "old".into(),
            },
            SeedRow {
                meeting_date: d("2026-05-06"),
                scheduled: true,
                source: "projected".into(),
            },
        ];
        let cal = merge("s.csv", &seed, &real_rows());
        let days: Vec<NaiveDate> = cal.iter().map(|m| m.meeting_date).collect();
        assert!(days.contains(&d("2020-03-15")), "seed years stay");
        assert!(
            !days.contains(&d("2026-05-06")),
            "a date the page contradicts goes"
        );
        assert!(
            days.contains(&d("2028-01-26")),
            "the note's meeting is added"
        );
        let unscheduled = cal
            .iter()
            .find(|m| m.meeting_date == d("2020-03-15"))
            .unwrap();
        assert_eq!(unscheduled.kind, "unscheduled");
        assert!(unscheduled.is_decision);
        assert_eq!(unscheduled.source, "seed s.csv: old");
        let vote = cal
            .iter()
            .find(|m| m.meeting_date == d("2025-08-22"))
            .unwrap();
        assert!(!vote.is_decision && !vote.scheduled);
        let decisions_2027 = cal
            .iter()
            .filter(|m| m.meeting_date.year() == 2027 && m.is_decision)
            .count();
        assert_eq!(decisions_2027, 8);
    }

    #[test]
    fn an_entry_the_page_drops_is_marked_no_longer_listed() {
        let page = parse::calendar(PAGE).unwrap();
        let mut stored = real_rows();
        let moved = PageRow {
            meeting_date: d("2027-06-16"),
            meeting_start_date: d("2027-06-15"),
            has_sep: true,
            scheduled: true,
            kind: "scheduled".into(),
            panel_year: Some(2027),
            label: "June 15-16*".into(),
            source: PAGE_SOURCE,
            available_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        };
        let old_year = PageRow {
            meeting_date: d("2020-12-16"),
            panel_year: Some(2020),
            ..moved.clone()
        };
        stored.push(moved);
        stored.push(old_year);
        let now: DateTime<Utc> = "2026-10-01T00:00:00Z".parse().unwrap();
        let rows = page_rows(&page, now, &stored);
        let gone = rows
            .iter()
            .find(|r| r.meeting_date == d("2027-06-16"))
            .unwrap();
        assert_eq!(gone.kind, NO_LONGER_LISTED);
        assert!(!gone.scheduled);
        assert_eq!(gone.available_at, now);
        assert!(
            rows.iter().all(|r| r.meeting_date != d("2020-12-16")),
            "a year that dropped off the page is left as it was"
        );
        let cal = merge("s", &[], &rows);
        assert!(
            !cal.iter()
                .any(|m| m.meeting_date == d("2027-06-16") && m.is_decision)
        );
    }

    #[test]
    fn the_calendar_is_ingested_before_fedwatch_reads_it() {
        // `ingest` with no source list (the nightly job's ingest step) runs SourceKind::ALL in order.
        let pos = |k| SourceKind::ALL.iter().position(|x| *x == k).unwrap();
        assert!(pos(SourceKind::Fomc) < pos(SourceKind::Fedwatch));
        assert_eq!("fomc".parse::<SourceKind>(), Ok(SourceKind::Fomc));
    }

    #[test]
    fn a_broken_seed_names_its_line() {
        let (line, msg) =
            parse_seed("meeting_date,scheduled,source\n2026-01-28,true,x\n2026-13-01,true,x\n")
                .unwrap_err();
        assert_eq!(line, Some(3), "{msg}");
        let (_, msg) =
            parse_seed("meeting_date,scheduled,source\n2026-01-28,true,x\n2026-01-28,true,y\n")
                .unwrap_err();
        assert!(msg.contains("listed twice"), "{msg}");
    }
}
