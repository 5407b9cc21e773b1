//! Treasury connector: the Daily Treasury Statement's operating cash balance from the Fiscal
//! Data API → `staging.tga_daily` [record_date, account], one row per day for the Treasury
//! General Account in $ millions, whatever layout the day was published in (see [`parse`]).
//! Pages are followed through the API's `links.next` to the end.

pub mod config;
pub mod parse;

use datafusion::arrow::datatypes::Date32Type;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub use config::TreasuryConfig;
use parse::TgaDay;

use super::{IngestContext, Source, SourceError, SourceKind, SourceReport};
use crate::http::Request;
use crate::lake::{LakeError, TableName};

const NAME: &str = "treasury";

/// `staging.tga_daily`.
pub fn table() -> TableName {
    TableName::staging("tga_daily")
}

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

/// Schema of `staging.tga_daily`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("record_date", DataType::Date32, false),
        Field::new("account", DataType::Utf8, false),
        Field::new("open_balance_musd", DataType::Float64, true),
        Field::new("close_balance_musd", DataType::Float64, true),
        Field::new("deposits_musd", DataType::Float64, true),
        Field::new("withdrawals_musd", DataType::Float64, true),
        Field::new("layout", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new(
            "ingested_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

fn batch(days: &[TgaDay], run_at: DateTime<Utc>) -> Result<RecordBatch, LakeError> {
    let n = days.len();
    let money = |f: fn(&TgaDay) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(days.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(
            days.iter()
                .map(|d| Date32Type::from_naive_date(d.record_date))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(vec!["TGA"; n])),
        money(|d| d.open_musd),
        money(|d| d.close_musd),
        money(|d| d.deposits_musd),
        money(|d| d.withdrawals_musd),
        Arc::new(StringArray::from(
            days.iter().map(|d| d.layout).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(vec!["fiscaldata_dts"; n])),
        crate::lake::ingested_at_column(n, run_at),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| LakeError::Data {
        table: table(),
        message: e.to_string(),
    })
}

#[async_trait::async_trait]
impl Source for Treasury {
    fn kind(&self) -> SourceKind {
        SourceKind::Treasury
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let start = ctx
            .start_for(
                NAME,
                "tga",
                self.config.lookback_days,
                self.config.start_date,
            )
            .await?;
        let mut filter = Vec::new();
        if let Some(s) = start {
            filter.push(format!("record_date:gte:{s}"));
        }
        if let Some(u) = ctx.window.until {
            filter.push(format!("record_date:lte:{u}"));
        }
        let mut days: Vec<TgaDay> = Vec::new();
        let mut page_no = 1u32;
        loop {
            let mut req = Request::get(self.config.url.clone()).window_param("filter");
            if !filter.is_empty() {
                req = req.window_query("filter", &filter.join(","));
            }
            let req = req
                .query("sort", "record_date")
                .query("page[size]", &self.config.page_size.to_string())
                .query("page[number]", &page_no.to_string());
            let item = format!("page {page_no}");
            let resp = ctx
                .fetch(NAME, &item, &req, &format!("dts-page-{page_no}.json"))
                .await?;
            let page = parse::page(&resp.body)
                .map_err(|m| SourceError::parse(NAME, &item, &resp.url, None, m))?;
            days.extend(
                page.days
                    .into_iter()
                    .filter(|d| ctx.window.contains(start, d.record_date)),
            );
            match page.next_page {
                Some(next) if next > page_no => page_no = next,
                Some(next) => {
                    return Err(SourceError::parse(
                        NAME,
                        &item,
                        &resp.url,
                        None,
                        format!("links.next points back to page {next}"),
                    ));
                }
                None => break,
            }
        }
        days.sort_by_key(|d| d.record_date);
        days.dedup_by_key(|d| d.record_date);
        let mode = ctx
            .window
            .write_mode(start, "record_date", &["record_date", "account"]);
        let rows = batch(&days, ctx.run_at).map_err(SourceError::lake(NAME))?;
        let rows_written = ctx
            .land(
                NAME,
                &table(),
                rows,
                mode,
                ("tga", days.last().map(|d| d.record_date)),
            )
            .await?;
        Ok(SourceReport {
            rows_written,
            failures: Vec::new(),
        })
    }
}
