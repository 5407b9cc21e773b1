//! The ingest skeleton of an HTTP-pull connector: the engine plans the date window from the
//! table's watermark and look-back (or `--since`/`--until`/`--full-refresh`), fetches page after
//! page through the shared [`HttpEngine`](crate::http::HttpEngine) (landing every raw body),
//! parses each through the connector's hook, keeps the rows inside the window, validates them,
//! writes them in one commit (MERGE on the row's natural key, or a replace of the window on a
//! full refresh) and raises the watermark to the newest date landed.
//!
//! A connector that fits this shape is its config, its request and its parse function: it
//! implements [`Feed`] for one staging row type and calls [`pull`].

use chrono::{DateTime, NaiveDate, Utc};

use super::{IngestContext, SourceError};
use crate::http::Request;
use crate::lake::{StagingRow, WriteMode};

/// The dates one run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First date wanted: the watermark minus look-back, `--since`, or the feed's default start
    /// (`None`: from the beginning of the upstream's history).
    pub start: Option<NaiveDate>,
    /// Last date wanted (`--until`); `None`: up to the newest the upstream has.
    pub until: Option<NaiveDate>,
    /// The run's date (UTC), for upstreams that need an explicit end date.
    pub today: NaiveDate,
}

impl Span {
    /// The last date to ask for: `--until`, or the run's date.
    pub fn end(&self) -> NaiveDate {
        self.until.unwrap_or(self.today)
    }
}

/// One parsed page of an upstream's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<R> {
    /// The rows on it (rows outside the window are dropped by the engine).
    pub rows: Vec<R>,
    /// The cursor of the next page, when the upstream says there is one: a page number (from
    /// `links.next`) or an offset (`offset` + rows received, below `count`), as the feed's
    /// request reads it; `None` on the last page. It must move forward.
    pub next: Option<u64>,
}

impl<R> Page<R> {
    /// A whole answer on one page.
    pub fn single(rows: Vec<R>) -> Self {
        Page { rows, next: None }
    }
}

/// Why a body could not be parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyError {
    /// Line of the body, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl From<String> for BodyError {
    fn from(message: String) -> Self {
        BodyError {
            line: None,
            message,
        }
    }
}

/// One HTTP-pull feed of a connector, writing one staging table.
pub trait Feed: Send + Sync {
    /// The staging row it lands (its table, key and columns).
    type Row: StagingRow + Send + Sync;
    /// The connector's name (watermarks, raw folder, errors).
    const SOURCE: &'static str;
    /// The row's date column: the window's filter, the watermark and a full refresh's bounds.
    const DATE_COLUMN: &'static str;
    /// Whether the upstream pages its answers: errors and raw files then name the page.
    const PAGED: bool = false;
    /// The cursor of the first page (1 for page numbers, 0 for offsets).
    const FIRST_PAGE: u64 = 1;

    /// What is fetched, for errors (e.g. `SOMA summary`).
    fn item(&self) -> &'static str;
    /// Stem of the raw body's file name under `raw/<source>/<day>/` (e.g. `soma-summary`).
    fn raw_stem(&self) -> &'static str;
    /// Days re-requested before the watermark on incremental runs (revisions).
    fn lookback_days(&self) -> u32;
    /// First date asked for on a first or full-refresh run; `None`: the upstream's whole history.
    fn default_start(&self) -> Option<NaiveDate>;
    /// The watermark key; the table's name unless the connector has always used another.
    fn watermark_key(&self) -> String {
        Self::Row::TABLE.to_string()
    }
    /// The request for the page at `cursor` ([`Feed::FIRST_PAGE`] first) of the span.
    fn request(&self, span: &Span, cursor: u64) -> Request;
    /// Parses one body.
    fn parse(&self, body: &[u8]) -> Result<Page<Self::Row>, BodyError>;
    /// The row's date (the value of [`Feed::DATE_COLUMN`]).
    fn date(row: &Self::Row) -> NaiveDate;
    /// A predicate selecting this feed's rows when it shares its table with other feeds (e.g.
    /// `rate_type = 'SOFR'`): a full refresh then replaces only those. `None`: the whole table.
    fn scope(&self) -> Option<String> {
        None
    }
    /// A last pass over every row of the run before it lands (order, duplicates across pages,
    /// checks that need all pages); an error refuses the whole run and lands nothing.
    fn finish(&self, rows: Vec<Self::Row>) -> Result<Vec<Self::Row>, String> {
        Ok(rows)
    }
}

/// Runs one feed end to end; returns the rows written (0 when nothing changed).
pub async fn pull<F: Feed>(ctx: &IngestContext, feed: &F) -> Result<usize, SourceError> {
    let key = feed.watermark_key();
    let start = ctx
        .start_for(F::SOURCE, &key, feed.lookback_days(), feed.default_start())
        .await?;
    let span = Span {
        start,
        until: ctx.window.until,
        today: ctx.run_at.date_naive(),
    };
    let name = |page: u64| {
        if F::PAGED {
            (
                format!("{} page {page}", feed.item()),
                format!("{}-page-{page}.json", feed.raw_stem()),
            )
        } else {
            (feed.item().to_string(), format!("{}.json", feed.raw_stem()))
        }
    };
    let pages = fetch_pages(
        ctx,
        F::SOURCE,
        F::FIRST_PAGE,
        name,
        |cursor| feed.request(&span, cursor),
        |body| feed.parse(body),
    )
    .await?;
    let rows: Vec<F::Row> = pages
        .rows
        .into_iter()
        .filter(|r| ctx.window.contains(start, F::date(r)))
        .collect();
    let rows = feed.finish(rows).map_err(|message| SourceError::Refused {
        source_name: F::SOURCE,
        item: feed.item().to_string(),
        message,
    })?;
    let mode = match (
        ctx.window.write_mode(start, F::DATE_COLUMN, F::Row::KEYS),
        feed.scope(),
    ) {
        (WriteMode::Overwrite, Some(scope)) => WriteMode::ReplaceWhere(scope),
        (WriteMode::ReplaceWhere(window), Some(scope)) => {
            WriteMode::ReplaceWhere(format!("({window}) AND ({scope})"))
        }
        (mode, _) => mode,
    };
    let newest = rows.iter().map(F::date).max();
    ctx.land(F::SOURCE, &rows, mode, [(key, newest)]).await
}

/// What [`fetch_pages`] fetched.
#[derive(Debug)]
pub struct Fetched<R> {
    /// Every page's rows, in page order.
    pub rows: Vec<R>,
    /// When the last page was fetched (or replayed).
    pub fetched_at: DateTime<Utc>,
}

/// Fetches page after page from the cursor `first`, following each page's `next` until the
/// upstream says there is none. `name` gives, for a cursor, the page's name in errors and its
/// raw file's name; `request` builds its request; `parse` reads its body. A body that does not
/// parse, or a `next` that does not move forward, is an error naming the page and its URL.
pub async fn fetch_pages<R>(
    ctx: &IngestContext,
    source: &'static str,
    first: u64,
    name: impl Fn(u64) -> (String, String),
    request: impl Fn(u64) -> Request,
    parse: impl Fn(&[u8]) -> Result<Page<R>, BodyError>,
) -> Result<Fetched<R>, SourceError> {
    let mut rows = Vec::new();
    let mut cursor = first;
    loop {
        let (item, raw) = name(cursor);
        let resp = ctx.fetch(source, &item, &request(cursor), &raw).await?;
        let bad_body = |line, message| SourceError::parse(source, &item, &resp.url, line, message);
        let page = parse(&resp.body).map_err(|e| bad_body(e.line, e.message))?;
        rows.extend(page.rows);
        match page.next {
            Some(next) if next > cursor => cursor = next,
            Some(next) => {
                return Err(bad_body(
                    None,
                    format!("the next page ({next}) does not come after this one ({cursor})"),
                ));
            }
            None => {
                return Ok(Fetched {
                    rows,
                    fetched_at: resp.fetched_at,
                });
            }
        }
    }
}

/// `[from, to]` cut into consecutive windows of at most `days` days, for upstreams that answer
/// a bounded range per request (e.g. Coinbase's 300 candles).
pub fn windows(
    from: NaiveDate,
    to: NaiveDate,
    days: i64,
) -> impl Iterator<Item = (NaiveDate, NaiveDate)> {
    let step = chrono::Duration::days(days.max(1));
    std::iter::successors(Some(from), move |start| Some(*start + step))
        .take_while(move |start| *start <= to)
        .map(move |start| (start, (start + step - chrono::Duration::days(1)).min(to)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    #[test]
    fn windows_cover_the_range_without_overlap() {
        let w: Vec<_> = windows(d("2024-01-01"), d("2024-01-10"), 4).collect();
        assert_eq!(
            w,
            vec![
                (d("2024-01-01"), d("2024-01-04")),
                (d("2024-01-05"), d("2024-01-08")),
                (d("2024-01-09"), d("2024-01-10")),
            ]
        );
        assert_eq!(windows(d("2024-01-02"), d("2024-01-01"), 4).count(), 0);
        assert_eq!(
            windows(d("2024-01-01"), d("2024-01-01"), 300).collect::<Vec<_>>(),
            vec![(d("2024-01-01"), d("2024-01-01"))]
        );
    }
}
