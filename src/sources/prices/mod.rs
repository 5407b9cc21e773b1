//! Prices connector: daily OHLCV per symbol → `staging.prices_daily` [symbol, date, source].
//!
//! Each symbol lists its sources in priority order (Yahoo chart v8, Coinbase Exchange candles,
//! Stooq CSV, a FRED series); the first that answers wins, a failing one is logged and the next
//! tried, and every row keeps the `source` it came from. Yahoo stamps a daily bar with the
//! session start, so dates are taken in the exchange's own time zone.
//!
//! A first or full-refresh run asks each source for its whole history (unless `start_date` is
//! set): a running "all-time high" is only as good as the history behind it.

pub mod config;
pub mod parse;

use std::sync::Arc;

use chrono::NaiveDate;
use futures::StreamExt;

pub use config::{PriceSource, PricesConfig, SymbolConfig};
use parse::Bar;

use super::{IngestContext, Source, SourceError, SourceReport};
use crate::http::Request;
use crate::lake::StagingRow;

const NAME: &str = "prices";
/// Coinbase returns at most 300 candles per request.
const COINBASE_MAX_DAYS: i64 = 300;

/// The start asked of Yahoo when none is configured: 1900-01-01 00:00 UTC, `period1=-2208988800`
/// (yfinance's "max" start is the same day). Yahoo answers from the instrument's first day
/// (^GSPC: 1927-12-30).
pub const YAHOO_EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date");

/// The start asked of Coinbase when none is configured: Coinbase Exchange opened in January 2015,
/// so no product has a candle before this day. Coinbase needs explicit pages of 300 days, so an
/// open start is not possible there.
pub const COINBASE_EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(2015, 1, 1).expect("valid date");

crate::staging_row! {
    /// One daily bar of one symbol from one source: a row of `staging.prices_daily`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct PriceRow in "prices_daily" keys [symbol, date, source] {
        /// The symbol as configured in `[sources.prices]`, e.g. `^GSPC`, `BTC-USD`.
        pub symbol: String,
        /// The bar: `date`, `open`, `high`, `low`, `close`, `adj_close`, `volume`.
        pub bar: Bar,
        /// Quote currency, e.g. `USD`.
        pub currency: Option<String>,
        /// The source the bar came from: `yahoo`, `coinbase`, `stooq` or `fred`.
        pub source: &'static str,
    }
}

/// One symbol's fetched bars.
pub struct Fetched {
    /// Symbol.
    pub symbol: String,
    /// Where they came from.
    pub source: &'static str,
    /// Quote currency, when known.
    pub currency: Option<String>,
    /// Bars within the window.
    pub bars: Vec<Bar>,
}

/// One fetched series' `prices_daily` rows, one per bar, in order.
fn rows(series: Fetched) -> Vec<PriceRow> {
    let Fetched {
        symbol,
        source,
        currency,
        bars,
    } = series;
    bars.into_iter()
        .map(|bar| PriceRow {
            symbol: symbol.clone(),
            bar,
            currency: currency.clone(),
            source,
        })
        .collect()
}

fn encode_path(symbol: &str) -> String {
    url::form_urlencoded::byte_serialize(symbol.as_bytes()).collect()
}

/// Fetches one Yahoo chart series for `[start, until]` (until = today when open).
pub async fn fetch_yahoo(
    ctx: &IngestContext,
    source_name: &'static str,
    base: &url::Url,
    symbol: &str,
    start: NaiveDate,
) -> Result<parse::YahooSeries, SourceError> {
    let url = base
        .join(&encode_path(symbol))
        .map_err(|e| SourceError::parse(source_name, symbol, base.as_str(), None, e.to_string()))?;
    let epoch = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp()
    };
    let end = ctx
        .window
        .until
        .map(|u| u + chrono::Duration::days(1))
        .unwrap_or_else(|| ctx.run_at.date_naive() + chrono::Duration::days(1));
    let req = Request::get(url)
        .query("interval", "1d")
        .query("events", "div,split")
        .window_query("period1", &epoch(start).to_string())
        .window_query("period2", &epoch(end).to_string());
    let item = format!("symbol {symbol}");
    let resp = ctx
        .fetch(source_name, &item, &req, &format!("yahoo-{symbol}.json"))
        .await?;
    parse::yahoo_chart(&resp.body)
        .map_err(|m| SourceError::parse(source_name, &item, &resp.url, None, m))
}

/// The prices connector.
#[derive(Debug, Clone)]
pub struct Prices {
    config: PricesConfig,
}

impl Prices {
    /// A connector with these settings.
    pub fn new(config: PricesConfig) -> Self {
        Self { config }
    }

    async fn fetch_from(
        &self,
        ctx: &IngestContext,
        symbol: &str,
        source: &PriceSource,
        start: Option<NaiveDate>,
    ) -> Result<Fetched, SourceError> {
        let item = format!("symbol {symbol} from {}", source.name());
        let (currency, bars) = match source {
            PriceSource::Yahoo(alias) => {
                let yahoo_symbol = if alias.is_empty() {
                    symbol
                } else {
                    alias.as_str()
                };
                let from = start.unwrap_or(YAHOO_EARLIEST);
                let s = fetch_yahoo(ctx, NAME, &self.config.yahoo_url, yahoo_symbol, from).await?;
                (s.currency, s.bars)
            }
            PriceSource::Coinbase(product) => self.coinbase(ctx, &item, product, start).await?,
            PriceSource::Stooq(code) => self.stooq(ctx, &item, code, start).await?,
            PriceSource::Fred(series) => self.fred(ctx, &item, series, start).await?,
        };
        let bars: Vec<Bar> = bars
            .into_iter()
            .filter(|b| ctx.window.contains(start, b.date))
            .collect();
        Ok(Fetched {
            symbol: symbol.to_string(),
            source: source.name(),
            currency: currency.or(Some("USD".to_string())),
            bars,
        })
    }

    /// Coinbase Exchange daily candles, in windows of at most `COINBASE_MAX_DAYS`.
    async fn coinbase(
        &self,
        ctx: &IngestContext,
        item: &str,
        product: &str,
        start: Option<NaiveDate>,
    ) -> Result<(Option<String>, Vec<Bar>), SourceError> {
        let parse_err = |url: &str, m: String| SourceError::parse(NAME, item, url, None, m);
        let end = ctx.window.until.unwrap_or_else(|| ctx.run_at.date_naive());
        let url = self
            .config
            .coinbase_url
            .join(&format!("{}/candles", encode_path(product)))
            .map_err(|e| parse_err(self.config.coinbase_url.as_str(), e.to_string()))?;
        let mut bars = Vec::new();
        let from = start.unwrap_or(COINBASE_EARLIEST);
        for (from, to) in super::pull::windows(from, end, COINBASE_MAX_DAYS) {
            let req = Request::get(url.clone())
                .query("granularity", "86400")
                .window_query("start", &format!("{from}T00:00:00Z"))
                .window_query("end", &format!("{to}T23:59:59Z"));
            let resp = ctx
                .fetch(NAME, item, &req, &format!("coinbase-{product}-{from}.json"))
                .await?;
            let page = parse::coinbase_candles(&resp.body).map_err(|m| parse_err(&resp.url, m))?;
            bars.extend(page.into_iter().filter(|b| b.date >= from && b.date <= to));
        }
        Ok((Some("USD".to_string()), bars))
    }

    /// Stooq's daily CSV.
    async fn stooq(
        &self,
        ctx: &IngestContext,
        item: &str,
        code: &str,
        start: Option<NaiveDate>,
    ) -> Result<(Option<String>, Vec<Bar>), SourceError> {
        let parse_err = |url: &str, m: String| SourceError::parse(NAME, item, url, None, m);
        let fmt = |d: NaiveDate| d.format("%Y%m%d").to_string();
        // Without `d1`, Stooq answers the whole history.
        let mut req = Request::get(self.config.stooq_url.clone())
            .query("s", code)
            .query("i", "d");
        req = match start {
            Some(s) => req.window_query("d1", &fmt(s)),
            None => req.window_param("d1"),
        };
        if let Some(u) = ctx.window.until {
            req = req.window_query("d2", &fmt(u));
        }
        let resp = ctx
            .fetch(NAME, item, &req, &format!("stooq-{code}.csv"))
            .await?;
        let bars = parse::stooq_csv(&resp.body).map_err(|m| parse_err(&resp.url, m))?;
        Ok((None, bars))
    }

    /// A FRED series as daily closes (fredgraph CSV).
    async fn fred(
        &self,
        ctx: &IngestContext,
        item: &str,
        series: &str,
        start: Option<NaiveDate>,
    ) -> Result<(Option<String>, Vec<Bar>), SourceError> {
        // Without `cosd`, fredgraph answers the whole history.
        let mut req = Request::get(self.config.fredgraph_url.clone()).query("id", series);
        req = match start {
            Some(s) => req.window_query("cosd", &s.to_string()),
            None => req.window_param("cosd"),
        };
        if let Some(u) = ctx.window.until {
            req = req.window_query("coed", &u.to_string());
        }
        let resp = ctx
            .fetch(NAME, item, &req, &format!("fred-{series}.csv"))
            .await?;
        let obs = crate::sources::fred::parse::fredgraph_csv(&resp.body, series)
            .map_err(|e| SourceError::parse(NAME, item, &resp.url, e.line, e.message))?;
        let bars = obs
            .into_iter()
            .filter_map(|o| {
                o.value.map(|close| Bar {
                    date: o.date,
                    open: None,
                    high: None,
                    low: None,
                    close,
                    adj_close: None,
                    volume: None,
                })
            })
            .collect();
        Ok((None, bars))
    }

    async fn fetch_symbol(
        &self,
        ctx: &IngestContext,
        sym: &SymbolConfig,
        marks: &std::collections::HashMap<String, NaiveDate>,
    ) -> Result<Fetched, SourceError> {
        // None: a first or full-refresh run with no start_date set, i.e. all history.
        let start = ctx.window.start_for(
            marks.get(&sym.symbol).copied(),
            self.config.lookback_days,
            self.config.start_date,
        );
        let mut errors = Vec::new();
        for source in &sym.sources {
            match self.fetch_from(ctx, &sym.symbol, source, start).await {
                Ok(f) => {
                    if !errors.is_empty() {
                        tracing::info!(source = NAME, symbol = %sym.symbol, from = source.name(), "fell back");
                    }
                    return Ok(f);
                }
                Err(e) => {
                    tracing::warn!(source = NAME, symbol = %sym.symbol, error = %e, "source failed; trying the next");
                    errors.push(e.to_string());
                }
            }
        }
        Err(SourceError::parse(
            NAME,
            &format!("symbol {}", sym.symbol),
            "",
            None,
            format!("every source failed: {}", errors.join(" | ")),
        ))
    }
}

/// A spawned fetch that stops when its stream is dropped (a landing that failed), as the
/// fetch did when it was a future of the stream.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Creates `staging.prices_daily` from the series as they are fetched (failures go to
/// `failures`); returns the rows written.
async fn land_first(
    ctx: &IngestContext,
    fetches: impl futures::Stream<Item = Result<Fetched, SourceError>>,
    failures: &mut Vec<SourceError>,
) -> Result<usize, SourceError> {
    ctx.land_streamed::<PriceRow, _>(NAME, |mut tx| async move {
        let mut newest = Vec::new();
        let mut fetches = std::pin::pin!(fetches);
        while let Some(fetched) = fetches.next().await {
            let f = match fetched {
                Ok(f) => f,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            newest.push((f.symbol.clone(), f.bars.iter().map(|b| b.date).max()));
            let batch = PriceRow::batch(&rows(f), ctx.run_at).map_err(SourceError::lake(NAME))?;
            if futures::SinkExt::send(&mut tx, batch).await.is_err() {
                break; // the landing failed; its error is reported
            }
        }
        Ok(newest)
    })
    .await
}

#[async_trait::async_trait]
impl Source for Prices {
    fn tables(&self) -> Vec<crate::lake::row::TableDoc> {
        vec![PriceRow::doc()]
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let mut report = SourceReport::default();
        let mut fetched = Vec::new();
        // The watermarks once for every symbol (not a lake read per symbol: 2,000 symbols).
        let marks = ctx.watermarks(NAME).await?;
        // Each symbol is its own task: reading and parsing 2,000 bodies then uses every core
        // (the futures of one stream share a thread), in the configured order.
        let (this, shared, marks) = (
            Arc::new(self.clone()),
            Arc::new(ctx.clone()),
            Arc::new(marks),
        );
        let fetches = futures::stream::iter(self.config.symbols.iter().cloned())
            .map(|sym| {
                let (this, ctx, marks) = (this.clone(), shared.clone(), marks.clone());
                let mut task = AbortOnDrop(tokio::spawn(async move {
                    this.fetch_symbol(&ctx, &sym, &marks).await
                }));
                async move {
                    (&mut task.0).await.unwrap_or_else(|e| {
                        Err(SourceError::Crashed {
                            source_name: NAME,
                            message: e.to_string(),
                        })
                    })
                }
            })
            .buffered(self.config.concurrency.max(1));
        let exists = ctx
            .lake
            .exists(&PriceRow::table())
            .await
            .map_err(SourceError::lake(NAME))?;
        if !exists {
            // The first landing (a whole universe's history): each series goes to the lake's
            // sort as soon as it is fetched, never all of them in memory at once.
            report.rows_written = land_first(ctx, fetches, &mut report.failures).await?;
            return Ok(report);
        }
        let results: Vec<Result<Fetched, SourceError>> = fetches.collect().await;
        for r in results {
            match r {
                Ok(f) => fetched.push(f),
                Err(e) => report.failures.push(e),
            }
        }
        if fetched.is_empty() {
            return Ok(report);
        }
        let mode = ctx
            .window
            .write_mode(ctx.window.since, "date", PriceRow::KEYS);
        let newest: Vec<_> = fetched
            .iter()
            .map(|f| (f.symbol.clone(), f.bars.iter().map(|b| b.date).max()))
            .collect();
        // A series at a time, each freed once it is a batch: the bars, their rows and their
        // Arrow form are never all in memory at once (2,000 symbols × 25 years: 13M rows).
        let batches = fetched
            .into_iter()
            .map(|f| PriceRow::batch(&rows(f), ctx.run_at))
            .collect::<Result<Vec<_>, _>>()
            .map_err(SourceError::lake(NAME))?;
        report.rows_written = ctx
            .land_batches::<PriceRow>(NAME, batches, mode, newest)
            .await?;
        Ok(report)
    }
}
