//! NY Fed connector: the Markets Data API (no key).
//!
//! * Treasury outright operations (purchases and sales, incl. the reserve-management bill
//!   purchases) from `tsy/all/results/details/search.json?startDate=…&endDate=…` →
//!   `staging.treasury_operations` [operation_id, cusip]: one row per operation and CUSIP, or one
//!   row with `cusip = ''` for an operation published without details. Operation totals repeat
//!   on every CUSIP row; `staging.treasury_operation_totals` (a view) has one row per operation.
//!   MERGE never deletes: if an operation first lands without details and later with them, its
//!   `''` row stays beside the CUSIP rows until a `--full-refresh` of that window (the view
//!   picks the most recently written row, so its totals are still right).
//! * SOMA holdings summary from `soma/summary.json` (all weeks, every call) →
//!   `staging.soma_holdings` [as_of_date, security_type], long format, `value_usd` NULL where
//!   the API gives `""`.
//!
//! Amounts are exact US dollars (`Decimal128(20, 2)`). Each table has its own watermark; the
//! two are fetched independently, so one failing does not stop the other from landing.

pub mod config;
pub mod parse;

use chrono::NaiveDate;

pub use config::NyfedConfig;
use parse::{OperationRow, SomaRow};

use super::pull::{self, BodyError, Feed, Page, Span};
use super::{IngestContext, Source, SourceError, SourceReport};
use crate::http::Request;
use crate::lake::row::TableDoc;
use crate::lake::{StagingRow, TableName, ViewDef};

const NAME: &str = "nyfed";

impl From<parse::ParseError> for BodyError {
    fn from(e: parse::ParseError) -> Self {
        BodyError {
            line: e.line,
            message: e.message,
        }
    }
}

/// The NY Fed connector.
#[derive(Debug, Clone)]
pub struct Nyfed {
    config: NyfedConfig,
}

impl Nyfed {
    /// A connector with these settings.
    pub fn new(config: NyfedConfig) -> Self {
        Self { config }
    }
}

/// The Treasury operations search, from the watermark (or `--since`) to `--until` (or today).
struct Operations<'a>(&'a NyfedConfig);

impl Feed for Operations<'_> {
    type Row = OperationRow;
    const SOURCE: &'static str = NAME;
    const DATE_COLUMN: &'static str = "operation_date";

    fn item(&self) -> &'static str {
        "treasury operations"
    }

    fn raw_stem(&self) -> &'static str {
        "tsy-operations"
    }

    fn lookback_days(&self) -> u32 {
        self.0.lookback_days
    }

    fn default_start(&self) -> Option<NaiveDate> {
        Some(self.0.start_date)
    }

    fn request(&self, span: &Span, _page: u64) -> Request {
        let from = span.start.unwrap_or(self.0.start_date);
        Request::get(self.0.operations_url())
            .window_query("startDate", &from.to_string())
            .window_query("endDate", &span.end().to_string())
    }

    fn parse(&self, body: &[u8]) -> Result<Page<OperationRow>, BodyError> {
        Ok(Page::single(parse::operations(body)?))
    }

    fn date(row: &OperationRow) -> NaiveDate {
        row.operation_date
    }
}

/// The SOMA summary: always the whole history; the engine keeps the weeks in the window.
struct Soma<'a>(&'a NyfedConfig);

impl Feed for Soma<'_> {
    type Row = SomaRow;
    const SOURCE: &'static str = NAME;
    const DATE_COLUMN: &'static str = "as_of_date";

    fn item(&self) -> &'static str {
        "SOMA summary"
    }

    fn raw_stem(&self) -> &'static str {
        "soma-summary"
    }

    fn lookback_days(&self) -> u32 {
        self.0.lookback_days
    }

    fn default_start(&self) -> Option<NaiveDate> {
        Some(self.0.start_date)
    }

    fn request(&self, _span: &Span, _page: u64) -> Request {
        Request::get(self.0.soma_summary_url())
    }

    fn parse(&self, body: &[u8]) -> Result<Page<SomaRow>, BodyError> {
        let summary = parse::soma_summary(body)?;
        if !summary.unknown_fields.is_empty() {
            tracing::warn!(source = NAME, fields = ?summary.unknown_fields, "SOMA summary has fields macrolake does not know; they are not landed");
        }
        Ok(Page::single(summary.rows))
    }

    fn date(row: &SomaRow) -> NaiveDate {
        row.as_of_date
    }
}

#[async_trait::async_trait]
impl Source for Nyfed {
    fn tables(&self) -> Vec<TableDoc> {
        vec![OperationRow::doc(), SomaRow::doc()]
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let mut report = SourceReport::default();
        report.record(
            "treasury operations",
            pull::pull(ctx, &Operations(&self.config)).await,
        );
        report.record("SOMA summary", pull::pull(ctx, &Soma(&self.config)).await);
        Ok(report)
    }

    fn views(&self) -> Vec<ViewDef> {
        vec![ViewDef {
            name: TableName::staging("treasury_operation_totals"),
            requires: OperationRow::table(),
            description: "one row per Treasury operation with its totals and number of CUSIPs",
            sql: "SELECT operation_id, operation_date, settlement_date, operation_type, \
                  operation_direction, auction_method, auction_status, maturity_range_start, \
                  maturity_range_end, total_par_submitted_usd, total_par_accepted_usd, \
                  is_bill_purchase, cusips, source, ingested_at \
                  FROM (SELECT *, \
                        ROW_NUMBER() OVER (PARTITION BY operation_id ORDER BY ingested_at DESC, cusip) AS pick, \
                        COUNT(NULLIF(cusip, '')) OVER (PARTITION BY operation_id) AS cusips \
                        FROM staging.treasury_operations) WHERE pick = 1"
                .to_string(),
        }]
    }
}
