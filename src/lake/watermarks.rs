//! Per-source high-water marks: `meta.watermarks` [source, key] → newest date landed.
//! A nightly run asks upstream only from the watermark minus a look-back window.

use datafusion::arrow::datatypes::Date32Type;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, ArrayRef, Date32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::{Lake, LakeError, Result, TableName, WriteMode, column_as};

fn table() -> TableName {
    TableName::meta("watermarks")
}

/// Every source's watermarks by source and key, and the version of `meta.watermarks` read.
pub type AllMarks = (HashMap<String, HashMap<String, NaiveDate>>, Option<u64>);

impl Lake {
    /// Runs `sql` (with `$1…` parameters) over one table registered as `t`, without registering
    /// the rest of the lake (that would replay every table's log), within `[lake]
    /// memory_limit_mb` like any query; no rows when it does not exist.
    pub async fn query_table(
        &self,
        name: &TableName,
        sql: &str,
        params: Vec<datafusion::scalar::ScalarValue>,
    ) -> Result<Vec<RecordBatch>> {
        Ok(self.query_table_version(name, sql, params).await?.0)
    }

    /// [`Lake::query_table`], with the version of the table it read (`None`: no table).
    pub async fn query_table_version(
        &self,
        name: &TableName,
        sql: &str,
        params: Vec<datafusion::scalar::ScalarValue>,
    ) -> Result<(Vec<RecordBatch>, Option<u64>)> {
        if !self.exists(name).await? {
            return Ok((Vec::new(), None));
        }
        let ctx = self.context(datafusion::prelude::SessionConfig::new())?;
        let df_err = |source| LakeError::DataFusion {
            context: format!("reading {name}"),
            source: Box::new(source),
        };
        let (provider, version) = self.provider(name, None, &ctx.state()).await?;
        ctx.register_table("t", provider).map_err(df_err)?;
        let batches = ctx
            .sql(sql)
            .await
            .and_then(|df| df.with_param_values(params))
            .map_err(df_err)?
            .collect()
            .await
            .map_err(df_err)?;
        Ok((batches, version))
    }

    /// The watermarks of one source, by key (e.g. FRED series id).
    pub async fn watermarks(&self, source: &str) -> Result<HashMap<String, NaiveDate>> {
        let sql = "SELECT source, key, watermark_date FROM t WHERE source = $1";
        let batches = self.query_table(&table(), sql, vec![source.into()]).await?;
        Ok(by_source(&batches)?.remove(source).unwrap_or_default())
    }

    /// Every source's watermarks, by source and key, and the version of `meta.watermarks` they
    /// were read at (`None`: no table yet): one read of the table where each source's own would
    /// be one each (sources start side by side; see `IngestContext::watermarks`).
    pub async fn all_watermarks(&self) -> Result<AllMarks> {
        let sql = "SELECT source, key, watermark_date FROM t";
        let (batches, version) = self.query_table_version(&table(), sql, Vec::new()).await?;
        Ok((by_source(&batches)?, version))
    }

    /// Whether `meta.watermarks` is still at `version` (read by [`Lake::all_watermarks`]): a
    /// listing of its log's tail, not a read of the table. `false` when there was no table, or
    /// when it cannot tell.
    pub async fn watermarks_unchanged_since(&self, version: Option<u64>) -> bool {
        let Some(v) = version else { return false };
        matches!(self.latest_version(&table(), Some(v)).await, Ok(Some(latest)) if latest == v)
    }

    /// Raises (or sets) watermarks of one source in one commit.
    pub async fn set_watermarks(
        &self,
        source: &str,
        marks: &HashMap<String, NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<&String> = marks.keys().collect();
        keys.sort();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("key", DataType::Utf8, false),
            Field::new("watermark_date", DataType::Date32, false),
            Field::new("updated_at", ts, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![source; keys.len()])),
            Arc::new(StringArray::from(
                keys.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from(
                keys.iter()
                    .map(|k| Date32Type::from_naive_date(marks[*k]))
                    .collect::<Vec<_>>(),
            )),
            crate::lake::ingested_at_column(keys.len(), now),
        ];
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| LakeError::Data {
            table: table(),
            message: e.to_string(),
        })?;
        let mode = WriteMode::Merge {
            keys: vec!["source".into(), "key".into()],
            ignore: vec!["updated_at".into()],
        };
        self.write(&table(), vec![batch], mode).await?;
        Ok(())
    }
}

/// Rows of (source, key, watermark_date) by source and key (a NULL date is no mark).
fn by_source(batches: &[RecordBatch]) -> Result<HashMap<String, HashMap<String, NaiveDate>>> {
    let mut out: HashMap<String, HashMap<String, NaiveDate>> = HashMap::new();
    for batch in batches {
        let sources: StringArray = column_as(batch, 0, &DataType::Utf8)?;
        let keys: StringArray = column_as(batch, 1, &DataType::Utf8)?;
        let dates: Date32Array = column_as(batch, 2, &DataType::Date32)?;
        for i in 0..batch.num_rows() {
            if let Some(day) = dates.value_as_date(i).filter(|_| !dates.is_null(i)) {
                out.entry(sources.value(i).to_string())
                    .or_default()
                    .insert(keys.value(i).to_string(), day);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sources_raising_watermarks_at_once_all_keep_theirs() {
        // Sources ingest side by side and each raises its watermarks in the one shared table.
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let now = Utc::now();
        let day = NaiveDate::from_ymd_opt(2026, 6, 5).unwrap();
        let first = HashMap::from([("k".to_string(), day)]);
        lake.set_watermarks("first", &first, now).await.unwrap();
        // Every source has marks already: raising them rewrites stored rows.
        let old = day - chrono::Days::new(30);
        for i in 0..6 {
            let marks = HashMap::from([("a".to_string(), old), ("b".to_string(), old)]);
            lake.set_watermarks(&format!("source{i}"), &marks, now)
                .await
                .unwrap();
        }
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let lake = lake.clone();
                tokio::spawn(async move {
                    let marks = HashMap::from([
                        ("a".to_string(), day + chrono::Days::new(i)),
                        ("b".to_string(), day),
                    ]);
                    lake.set_watermarks(&format!("source{i}"), &marks, now)
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        for i in 0..6 {
            let marks = lake.watermarks(&format!("source{i}")).await.unwrap();
            assert_eq!(
                marks.get("a"),
                Some(&(day + chrono::Days::new(i))),
                "source{i}"
            );
            assert_eq!(marks.len(), 2);
        }
        assert_eq!(lake.watermarks("first").await.unwrap(), first);
        // One read of every source's marks says what each source's own read says.
        let (all, _) = lake.all_watermarks().await.unwrap();
        assert_eq!(all.len(), 7);
        for (source, marks) in &all {
            assert_eq!(marks, &lake.watermarks(source).await.unwrap(), "{source}");
        }
    }
}
