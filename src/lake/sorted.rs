//! A staging table's first landing, streamed: rows arrive a batch at a time (a connector's
//! series as each is fetched), are stamped with their availability, ordered by date through a
//! sort that spills to disk past `[lake] memory_limit_mb`, and written as a staged version that
//! one commit publishes ([`super::Staged`]). Memory stays bounded whatever the history's size;
//! the files come out clustered by date as [`super::merge::cluster_by_date`] makes them, so the
//! next night's MERGE opens only the newest.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, ident};
use futures::StreamExt;
use futures::channel::mpsc;

use super::{Lake, LakeError, Result, TableName, WriteOutcome, availability};

/// The sending end of a streamed landing: send each batch, then drop it to end the stream.
pub type BatchSender = mpsc::Sender<RecordBatch>;

impl Lake {
    /// Creates staging `table` from the batches sent on the returned sender (each of `schema`),
    /// ordered by the first date column; resolves when the sender is dropped and the version is
    /// published, or fails with nothing visible. Run the sending side concurrently (e.g.
    /// `futures::join!`): the channel holds two batches.
    pub fn create_streamed(
        &self,
        table: &TableName,
        schema: SchemaRef,
    ) -> Result<(
        BatchSender,
        impl std::future::Future<Output = Result<WriteOutcome>> + '_,
    )> {
        let data_err = |e: &dyn std::fmt::Display| LakeError::Data {
            table: table.clone(),
            message: e.to_string(),
        };
        let stamped = availability::stamp(table, RecordBatch::new_empty(schema))
            .map_err(|e| data_err(&e))?
            .schema();
        let (tx, rx) = mpsc::channel(2);
        let stamping = table.clone();
        let rows = rx.map(move |b| {
            availability::stamp(&stamping, b)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
        });
        let source = Arc::new(super::staged::Once::new(Box::pin(
            RecordBatchStreamAdapter::new(stamped.clone(), rows),
        )));
        let table = table.clone();
        let landing = async move {
            let df_err = |source| LakeError::DataFusion {
                context: format!("landing {table}"),
                source: Box::new(source),
            };
            let ctx = self.context(SessionConfig::new())?;
            let provider =
                StreamingTable::try_new(stamped.clone(), vec![source]).map_err(df_err)?;
            let mut rows = ctx.read_table(Arc::new(provider)).map_err(df_err)?;
            if let Some(date) = stamped
                .fields()
                .iter()
                .find(|f| *f.data_type() == DataType::Date32)
            {
                rows = rows
                    .sort(vec![ident(date.name()).sort(true, false)])
                    .map_err(df_err)?;
            }
            let staged = self.stage(&table, rows).await?;
            if staged.files == 0 {
                // Nothing was sent (every fetch failed): no table, as with an empty write.
                staged.discard(self).await?;
                return Ok(WriteOutcome {
                    rows: 0,
                    version: None,
                    committed: false,
                });
            }
            staged.publish(self).await
        };
        Ok((tx, landing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::Zone;
    use datafusion::arrow::array::{Date32Array, Int64Array};
    use datafusion::arrow::datatypes::{Field, Schema};
    use futures::SinkExt;

    fn table() -> TableName {
        TableName {
            zone: Zone::Staging,
            name: "t".to_string(),
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("d", DataType::Date32, false),
        ]))
    }

    fn batch(rows: &[(i64, i32)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn batches_sent_one_by_one_land_in_one_commit_ordered_by_date() {
        let lake = Lake::open("memory://", false).unwrap();
        let (mut tx, landing) = lake.create_streamed(&table(), schema()).unwrap();
        let send = async move {
            // Two "series", each in its own date order, interleaved across the whole range.
            tx.send(batch(&[(1, 30), (2, 10)])).await.unwrap();
            tx.send(batch(&[(3, 20), (4, 5), (5, 40)])).await.unwrap();
        };
        let ((), landed) = tokio::join!(send, landing);
        let landed = landed.unwrap();
        assert_eq!((landed.rows, landed.version), (5, Some(0)));
        // The file holds the rows by date: read without ORDER BY, one file, one partition.
        let s = lake.session(None, &[]).await.unwrap();
        let got = s
            .ctx
            .sql("SELECT v FROM staging.t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let v: Vec<i64> = got
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(v, vec![4, 2, 3, 1, 5]);
    }

    #[tokio::test]
    async fn nothing_sent_makes_no_table() {
        let lake = Lake::open("memory://", false).unwrap();
        let (tx, landing) = lake.create_streamed(&table(), schema()).unwrap();
        drop(tx);
        let landed = landing.await.unwrap();
        assert!(!landed.committed);
        assert!(!lake.exists(&table()).await.unwrap());
    }
}
