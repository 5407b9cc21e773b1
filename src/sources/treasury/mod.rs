//! Treasury connector: the Daily Treasury Statement's operating cash balance from the Fiscal
//! Data API → `staging.tga_daily` [record_date, account], one row per day for the Treasury
//! General Account in $ millions, whatever layout the day was published in (see [`parse`]).
//! Pages are followed through the API's `links.next` to the end.

pub mod config;
pub mod parse;

use chrono::NaiveDate;

pub use config::TreasuryConfig;
use parse::TgaDay;

use super::pull::{self, BodyError, Feed, Page, Span};
use super::{IngestContext, Source, SourceError, SourceReport};
use crate::http::Request;
use crate::lake::StagingRow;
use crate::lake::row::TableDoc;

/// The Treasury connector.
#[derive(Debug, Clone)]
pub struct Treasury {
    config: TreasuryConfig,
}

impl Treasury {
    /// A connector with these settings.
    pub fn new(config: TreasuryConfig) -> Self {
        Self { config }
    }
}

impl Feed for Treasury {
    type Row = TgaDay;
    const SOURCE: &'static str = "treasury";
    const DATE_COLUMN: &'static str = "record_date";
    const PAGED: bool = true;

    fn item(&self) -> &'static str {
        "DTS"
    }

    fn raw_stem(&self) -> &'static str {
        "dts"
    }

    fn lookback_days(&self) -> u32 {
        self.config.lookback_days
    }

    fn default_start(&self) -> Option<NaiveDate> {
        self.config.start_date
    }

    fn watermark_key(&self) -> String {
        "tga".to_string()
    }

    fn request(&self, span: &Span, page: u64) -> Request {
        let mut filter = Vec::new();
        if let Some(s) = span.start {
            filter.push(format!("record_date:gte:{s}"));
        }
        if let Some(u) = span.until {
            filter.push(format!("record_date:lte:{u}"));
        }
        let mut req = Request::get(self.config.url.clone()).window_param("filter");
        if !filter.is_empty() {
            req = req.window_query("filter", &filter.join(","));
        }
        req.query("sort", "record_date")
            .query("page[size]", &self.config.page_size.to_string())
            .query("page[number]", &page.to_string())
    }

    fn parse(&self, body: &[u8]) -> Result<Page<TgaDay>, BodyError> {
        let page = parse::page(body)?;
        Ok(Page {
            rows: page.days,
            next: page.next_page.map(u64::from),
        })
    }

    fn date(row: &TgaDay) -> NaiveDate {
        row.record_date
    }

    /// Pages overlap when the upstream inserts rows between two requests: one row per day.
    fn finish(&self, mut days: Vec<TgaDay>) -> Result<Vec<TgaDay>, String> {
        days.sort_by_key(|d| d.record_date);
        days.dedup_by_key(|d| d.record_date);
        Ok(days)
    }
}

#[async_trait::async_trait]
impl Source for Treasury {
    fn tables(&self) -> Vec<TableDoc> {
        vec![TgaDay::doc()]
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        Ok(SourceReport {
            rows_written: pull::pull(ctx, self).await?,
            failures: Vec::new(),
        })
    }
}
