//! NY Fed reference rates (Markets Data API, no key) → `staging.reference_rates`
//! [rate_type, effective_date]: SOFR by default, and any of TGCR, BGCR, EFFR and OBFR by
//! configuration, one row per rate and business day with its percentiles and volume (EFFR also
//! with the FOMC's target range).
//!
//! Each rate is one [`Feed`] of the engine's pull skeleton, with its own watermark (the rate's
//! lowercase name): `rates/…/<rate>/search.json?startDate=…&endDate=…` from the watermark minus
//! `lookback_days` (or `--since`, or `start_date`) to `--until` (or today). A rate failing does
//! not stop the others; a full refresh replaces only its own rate's rows.

pub mod config;
pub mod parse;

use chrono::NaiveDate;

pub use config::{Rate, RefratesConfig};
use parse::RateRow;

use super::pull::{self, BodyError, Feed, Page, Span};
use super::{IngestContext, Source, SourceError, SourceReport};
use crate::http::Request;
use crate::lake::StagingRow;
use crate::lake::row::TableDoc;

/// The reference rates connector.
#[derive(Debug, Clone)]
pub struct Refrates {
    config: RefratesConfig,
}

impl Refrates {
    /// A connector with these settings.
    pub fn new(config: RefratesConfig) -> Self {
        Self { config }
    }
}

/// One rate's search.
struct RateFeed<'a> {
    config: &'a RefratesConfig,
    rate: Rate,
}

impl Feed for RateFeed<'_> {
    type Row = RateRow;
    const SOURCE: &'static str = "refrates";
    const DATE_COLUMN: &'static str = "effective_date";

    fn item(&self) -> &'static str {
        self.rate.code()
    }

    fn raw_stem(&self) -> &'static str {
        self.rate.code()
    }

    fn lookback_days(&self) -> u32 {
        self.config.lookback_days
    }

    fn default_start(&self) -> Option<NaiveDate> {
        Some(self.config.start_date)
    }

    fn watermark_key(&self) -> String {
        self.rate.code().to_ascii_lowercase()
    }

    fn request(&self, span: &Span, _page: u64) -> Request {
        let from = span.start.unwrap_or(self.config.start_date);
        Request::get(self.config.search_url(self.rate))
            .window_query("startDate", &from.to_string())
            .window_query("endDate", &span.end().to_string())
    }

    fn parse(&self, body: &[u8]) -> Result<Page<RateRow>, BodyError> {
        parse::rates(body, self.rate.code()).map(Page::single)
    }

    fn date(row: &RateRow) -> NaiveDate {
        row.effective_date
    }

    fn scope(&self) -> Option<String> {
        Some(format!("rate_type = '{}'", self.rate.code()))
    }
}

#[async_trait::async_trait]
impl Source for Refrates {
    fn tables(&self) -> Vec<TableDoc> {
        vec![RateRow::doc()]
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let mut report = SourceReport::default();
        for &rate in &self.config.rates {
            let feed = RateFeed {
                config: &self.config,
                rate,
            };
            report.record(rate.code(), pull::pull(ctx, &feed).await);
        }
        Ok(report)
    }
}
