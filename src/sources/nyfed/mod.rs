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

use datafusion::arrow::datatypes::Date32Type;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub use config::NyfedConfig;
use parse::{Cents, OperationRow, SomaRow};

use super::{IngestContext, Source, SourceError, SourceKind, SourceReport};
use crate::http::Request;
use crate::lake::{LakeError, TableName, ViewDef};

const NAME: &str = "nyfed";
const OPERATIONS: &str = "treasury operations";
const SOMA: &str = "SOMA summary";

/// Precision and scale of every `*_usd` column.
const USD_TYPE: DataType = DataType::Decimal128(20, 2);

/// `staging.treasury_operations`.
pub fn operations_table() -> TableName {
    TableName::staging("treasury_operations")
}

/// `staging.soma_holdings`.
pub fn soma_table() -> TableName {
    TableName::staging("soma_holdings")
}

fn ingested_at_field() -> Field {
    Field::new(
        "ingested_at",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )
}

/// Schema of `staging.treasury_operations`.
pub fn operations_schema() -> SchemaRef {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let date = |name: &str, nullable| Field::new(name, DataType::Date32, nullable);
    let usd = |name: &str, nullable| Field::new(name, USD_TYPE, nullable);
    let price = |name: &str| Field::new(name, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        text("operation_id", false),
        text("cusip", false),
        date("operation_date", false),
        date("settlement_date", false),
        text("operation_type", false),
        text("operation_direction", true),
        text("auction_method", true),
        text("auction_status", true),
        date("maturity_range_start", true),
        date("maturity_range_end", true),
        usd("total_par_submitted_usd", false),
        usd("total_par_accepted_usd", false),
        text("security_description", true),
        text("inclusion_indicator", true),
        usd("par_submitted_usd", true),
        usd("par_accepted_usd", true),
        price("weighted_avg_accepted_price"),
        price("least_favorable_accepted_price"),
        text("release_time", true),
        text("close_time", true),
        text("note", true),
        text("last_updated", true),
        Field::new("is_bill_purchase", DataType::Boolean, false),
        text("source", false),
        ingested_at_field(),
    ]))
}

/// Schema of `staging.soma_holdings`.
pub fn soma_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("as_of_date", DataType::Date32, false),
        Field::new("security_type", DataType::Utf8, false),
        Field::new("value_usd", USD_TYPE, true),
        Field::new("source", DataType::Utf8, false),
        ingested_at_field(),
    ]))
}

fn usd_array(values: Vec<Option<Cents>>, table: &TableName) -> Result<ArrayRef, LakeError> {
    let DataType::Decimal128(p, s) = USD_TYPE else {
        unreachable!("USD_TYPE is a decimal")
    };
    Decimal128Array::from(values)
        .with_precision_and_scale(p, s)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| LakeError::Data {
            table: table.clone(),
            message: e.to_string(),
        })
}

fn stamp(n: usize, run_at: DateTime<Utc>) -> ArrayRef {
    crate::lake::ingested_at_column(n, run_at)
}

fn operations_batch(
    rows: &[OperationRow],
    run_at: DateTime<Utc>,
) -> Result<RecordBatch, LakeError> {
    let table = operations_table();
    let text = |f: fn(&OperationRow) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let date = |f: fn(&OperationRow) -> Option<NaiveDate>| -> ArrayRef {
        Arc::new(Date32Array::from(
            rows.iter()
                .map(|r| f(r).map(Date32Type::from_naive_date))
                .collect::<Vec<_>>(),
        ))
    };
    let usd =
        |f: fn(&OperationRow) -> Option<Cents>| usd_array(rows.iter().map(f).collect(), &table);
    let price = |f: fn(&OperationRow) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<ArrayRef> = vec![
        text(|r| Some(&r.operation_id)),
        text(|r| Some(&r.cusip)),
        date(|r| Some(r.operation_date)),
        date(|r| Some(r.settlement_date)),
        text(|r| Some(&r.operation_type)),
        text(|r| r.operation_direction.as_deref()),
        text(|r| r.auction_method.as_deref()),
        text(|r| r.auction_status.as_deref()),
        date(|r| r.maturity_range_start),
        date(|r| r.maturity_range_end),
        usd(|r| Some(r.total_par_submitted))?,
        usd(|r| Some(r.total_par_accepted))?,
        text(|r| r.security_description.as_deref()),
        text(|r| r.inclusion_indicator.as_deref()),
        usd(|r| r.par_submitted)?,
        usd(|r| r.par_accepted)?,
        price(|r| r.weighted_avg_accepted_price),
        price(|r| r.least_favorable_accepted_price),
        text(|r| r.release_time.as_deref()),
        text(|r| r.close_time.as_deref()),
        text(|r| r.note.as_deref()),
        text(|r| r.last_updated.as_deref()),
        Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.is_bill_purchase).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(vec!["nyfed_markets_api"; rows.len()])),
        stamp(rows.len(), run_at),
    ];
    RecordBatch::try_new(operations_schema(), columns).map_err(|e| LakeError::Data {
        table,
        message: e.to_string(),
    })
}

fn soma_batch(rows: &[SomaRow], run_at: DateTime<Utc>) -> Result<RecordBatch, LakeError> {
    let table = soma_table();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(
            rows.iter()
                .map(|r| Date32Type::from_naive_date(r.as_of_date))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.security_type).collect::<Vec<_>>(),
        )),
        usd_array(rows.iter().map(|r| r.value).collect(), &table)?,
        Arc::new(StringArray::from(vec!["nyfed_markets_api"; rows.len()])),
        stamp(rows.len(), run_at),
    ];
    RecordBatch::try_new(soma_schema(), columns).map_err(|e| LakeError::Data {
        table,
        message: e.to_string(),
    })
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

    /// Fetches the operations from the watermark (or `--since`) to `--until` (or today) and
    /// MERGEs them; returns the rows written.
    async fn ingest_operations(&self, ctx: &IngestContext) -> Result<usize, SourceError> {
        let key = operations_table().name;
        let start = ctx
            .start_for(
                NAME,
                &key,
                self.config.lookback_days,
                Some(self.config.start_date),
            )
            .await?;
        let from = start.unwrap_or(self.config.start_date);
        let to = ctx.window.until.unwrap_or_else(|| ctx.run_at.date_naive());
        let req = Request::get(self.config.operations_url())
            .window_query("startDate", &from.to_string())
            .window_query("endDate", &to.to_string());
        let resp = ctx
            .fetch(NAME, OPERATIONS, &req, "tsy-operations.json")
            .await?;
        let rows: Vec<OperationRow> = parse::operations(&resp.body)
            .map_err(|e| SourceError::parse(NAME, OPERATIONS, &resp.url, e.line, e.message))?
            .into_iter()
            .filter(|r| ctx.window.contains(start, r.operation_date))
            .collect();
        let mode = ctx
            .window
            .write_mode(start, "operation_date", &["operation_id", "cusip"]);
        let batch = operations_batch(&rows, ctx.run_at).map_err(SourceError::lake(NAME))?;
        let newest = rows.iter().map(|r| r.operation_date).max();
        ctx.land(NAME, &operations_table(), batch, mode, (&key, newest))
            .await
    }

    /// Fetches the SOMA summary (always the whole history), keeps the weeks in the window and
    /// MERGEs them; returns the rows written.
    async fn ingest_soma(&self, ctx: &IngestContext) -> Result<usize, SourceError> {
        let key = soma_table().name;
        let start = ctx
            .start_for(
                NAME,
                &key,
                self.config.lookback_days,
                Some(self.config.start_date),
            )
            .await?;
        let req = Request::get(self.config.soma_summary_url());
        let resp = ctx.fetch(NAME, SOMA, &req, "soma-summary.json").await?;
        let summary = parse::soma_summary(&resp.body)
            .map_err(|e| SourceError::parse(NAME, SOMA, &resp.url, e.line, e.message))?;
        if !summary.unknown_fields.is_empty() {
            tracing::warn!(source = NAME, fields = ?summary.unknown_fields, "SOMA summary has fields macrolake does not know; they are not landed");
        }
        let rows: Vec<SomaRow> = summary
            .rows
            .into_iter()
            .filter(|r| ctx.window.contains(start, r.as_of_date))
            .collect();
        let mode = ctx
            .window
            .write_mode(start, "as_of_date", &["as_of_date", "security_type"]);
        let batch = soma_batch(&rows, ctx.run_at).map_err(SourceError::lake(NAME))?;
        let newest = rows.iter().map(|r| r.as_of_date).max();
        ctx.land(NAME, &soma_table(), batch, mode, (&key, newest))
            .await
    }
}

#[async_trait::async_trait]
impl Source for Nyfed {
    fn kind(&self) -> SourceKind {
        SourceKind::Nyfed
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let mut report = SourceReport::default();
        for result in [
            self.ingest_operations(ctx).await,
            self.ingest_soma(ctx).await,
        ] {
            match result {
                Ok(rows) => report.rows_written += rows,
                Err(e) => {
                    tracing::error!(source = NAME, error = %e, "part failed; the other still lands");
                    report.failures.push(e);
                }
            }
        }
        Ok(report)
    }

    fn views(&self) -> Vec<ViewDef> {
        vec![ViewDef {
            name: TableName::staging("treasury_operation_totals"),
            requires: operations_table(),
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
