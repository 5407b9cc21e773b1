//! Run history: `meta.runs`, one row per run and one per step of it (per source for an ingest,
//! per attempt for a job step), appended when each finishes. Error messages are redacted before
//! they are stored. Columns added since a lake was created (`scheduled_for`, `attempt`) are added
//! to its table on the next append.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::{Lake, LakeError, Result, TableName, WriteMode};
use crate::http::redact::redact;

/// Outcome of a run or step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Finished without error.
    Ok,
    /// Finished with an error.
    Failed,
    /// Not run: something before it failed, a tick was missed (misfire) or the previous run was
    /// still going (overlap).
    Skipped,
    /// Stopped by a shutdown (SIGTERM/SIGINT) before it finished.
    Interrupted,
}

impl RunStatus {
    /// The value stored in `meta.runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// One row of `meta.runs`.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Unique id of the run (shared by the run row and its step rows).
    pub run_id: String,
    /// `run` for the whole run, else the step kind (`ingest`, `build`, `test` …).
    pub kind: String,
    /// The job that ran (`nightly`), or the command (`ingest`) for ad-hoc runs.
    pub job: String,
    /// What the step acted on (a source or model); `None` on the run row.
    pub target: Option<String>,
    /// The schedule tick this run is for (`None` for runs started by hand).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Attempt number of a step (1 = first try); `None` on run rows.
    pub attempt: Option<i32>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// Its outcome.
    pub status: RunStatus,
    /// Rows written (inserted or updated).
    pub rows_written: i64,
    /// The error, when it failed (redacted).
    pub error: Option<String>,
}

/// Schema of `meta.runs`.
pub fn runs_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("job", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, true),
        Field::new("started_at", ts.clone(), false),
        Field::new("ended_at", ts, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("rows_written", DataType::Int64, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("scheduled_for", ts_nullable(), true),
        Field::new("attempt", DataType::Int32, true),
    ]))
}

fn ts_nullable() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn micros(values: impl Iterator<Item = DateTime<Utc>>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from(values.map(|t| t.timestamp_micros()).collect::<Vec<_>>())
            .with_timezone("UTC"),
    )
}

impl Lake {
    /// Appends run records to `meta.runs`.
    pub async fn record_runs(&self, records: &[RunRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let strings = |f: &dyn Fn(&RunRecord) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(records.iter().map(f).collect::<Vec<_>>()))
        };
        let columns: Vec<ArrayRef> = vec![
            strings(&|r| Some(r.run_id.clone())),
            strings(&|r| Some(r.kind.clone())),
            strings(&|r| Some(r.job.clone())),
            strings(&|r| r.target.clone()),
            micros(records.iter().map(|r| r.started_at)),
            micros(records.iter().map(|r| r.ended_at)),
            strings(&|r| Some(r.status.as_str().to_string())),
            Arc::new(Int64Array::from(
                records.iter().map(|r| r.rows_written).collect::<Vec<_>>(),
            )),
            strings(&|r| r.error.as_deref().map(redact)),
            Arc::new(
                TimestampMicrosecondArray::from(
                    records
                        .iter()
                        .map(|r| r.scheduled_for.map(|t| t.timestamp_micros()))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Int32Array::from(
                records.iter().map(|r| r.attempt).collect::<Vec<_>>(),
            )),
        ];
        let table = TableName::meta("runs");
        let batch = RecordBatch::try_new(runs_schema(), columns).map_err(|e| LakeError::Data {
            table: table.clone(),
            message: e.to_string(),
        })?;
        self.write(&table, vec![batch], WriteMode::Append).await?;
        Ok(())
    }
}
