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

/// `meta.runs` is compacted every this many commits. A nightly run appends a small file per
/// record (each source, step and the job), which every read of the history (`status`, the status
/// page, metrics) would otherwise open, more of them night after night: after 200 nights of
/// `macrolake soak`, `status` took 0.45–0.57 s over 1,394 files, 0.17 s over the 27 left with
/// this.
const COMPACT_EVERY: u64 = 50;

/// The size compacted files of `meta.runs` grow to (its rows are a few hundred bytes each).
const COMPACTED_FILE_MB: u64 = 64;

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
        let written = self.write(&table, vec![batch], WriteMode::Append).await?;
        if written
            .version
            .is_some_and(|v| v > 0 && v % COMPACT_EVERY == 0)
        {
            // The records are written whatever happens here: a failed compaction is tried again
            // COMPACT_EVERY commits later.
            match self.optimize(&table, COMPACTED_FILE_MB).await {
                Ok(done) => {
                    tracing::debug!(files_removed = done.files_removed, "meta.runs compacted")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not compact meta.runs; it stays as it was")
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: i64) -> RunRecord {
        let at = DateTime::from_timestamp(1_780_000_000 + i, 0).unwrap();
        RunRecord {
            run_id: format!("run-{i}"),
            kind: "ingest".into(),
            job: "nightly".into(),
            target: Some("fred".into()),
            scheduled_for: None,
            attempt: Some(1),
            started_at: at,
            ended_at: at,
            status: RunStatus::Ok,
            rows_written: i,
            error: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_run_history_stays_in_few_files_and_keeps_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        for i in 0..(COMPACT_EVERY as i64 + 5) {
            lake.record_runs(&[record(i)]).await.unwrap();
        }
        let table = TableName::meta("runs");
        let state = lake.log_state(&table).await.unwrap().unwrap();
        // The 51 files of versions 0..=50 compacted into one (version 51), then four more
        // appends.
        assert_eq!((state.version, state.files), (COMPACT_EVERY + 5, 5));
        let s = lake.session(None, &[]).await.unwrap();
        let got = s
            .ctx
            .sql("SELECT count(*), count(DISTINCT run_id), sum(rows_written) FROM meta.runs")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let col = |i: usize| {
            got[0]
                .column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        };
        let n = COMPACT_EVERY as i64 + 5;
        assert_eq!((col(0), col(1), col(2)), (n, n, n * (n - 1) / 2));
    }
}
