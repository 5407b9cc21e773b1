//! The newest snapshot of each table a process loaded or committed, kept between loads.
//!
//! Loading a table reads its newest checkpoint and the commits after it and builds its file
//! list: a nightly build did that for `meta.model_state`, for each model's inputs and for the
//! tables it writes several times over (~9% of a next night's build CPU at 2,000 symbols). A
//! kept snapshot is brought to the newest version by listing the log after it and replaying
//! only the commits since (none, most of the time), so a load still sees every commit, by this
//! process or any other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use deltalake::DeltaTable;

use super::{Lake, TableName};

/// Snapshots by table name.
pub(super) type Kept = Arc<Mutex<HashMap<String, DeltaTable>>>;

impl Lake {
    /// The snapshot kept of `table` brought to the newest version in its log (the commits
    /// after it replayed onto it); `None` when none is kept or the log's tail cannot be read.
    pub(super) async fn refreshed(&self, table: &TableName) -> Option<DeltaTable> {
        let mut kept = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&table.to_string())
            .cloned()?;
        let known = kept.version()?;
        let latest = kept.log_store().get_latest_version(known).await.ok()?;
        if latest != known {
            kept.update_incremental(Some(latest)).await.ok()?;
            self.remember(table, &kept);
        }
        Some(kept)
    }

    /// Keeps `loaded` as the newest snapshot of `table` unless a newer one is kept.
    pub(super) fn remember(&self, table: &TableName, loaded: &DeltaTable) {
        let mut kept = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let newer_kept = kept
            .get(&table.to_string())
            .is_some_and(|k| k.version() > loaded.version());
        if !newer_kept && loaded.version().is_some() {
            kept.insert(table.to_string(), loaded.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::WriteMode;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    async fn values(lake: &Lake, table: &TableName) -> (Option<u64>, usize) {
        let t = lake.load(table, None).await.unwrap();
        let rows = t
            .snapshot()
            .unwrap()
            .log_data()
            .iter()
            .map(|f| f.num_records().unwrap())
            .sum();
        (t.version(), rows)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_sees_every_commit_since_the_kept_snapshot_by_anyone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let (ours, theirs) = (
            Lake::open(path, false).unwrap(),
            Lake::open(path, false).unwrap(),
        );
        let t = TableName::staging("t");
        ours.write(&t, vec![rows(&[1, 2])], WriteMode::Append)
            .await
            .unwrap();
        assert_eq!(values(&ours, &t).await, (Some(0), 2));
        assert!(ours.snapshots.lock().unwrap().contains_key("staging.t"));
        // Another process commits twice (the first a checkpoint's worth of log is not needed).
        for v in [3, 4] {
            theirs
                .write(&t, vec![rows(&[v])], WriteMode::Append)
                .await
                .unwrap();
        }
        assert_eq!(values(&ours, &t).await, (Some(2), 4));
        // Ours commits: the load after sees it, and a past version is still read from the log.
        ours.write(&t, vec![rows(&[5])], WriteMode::Overwrite)
            .await
            .unwrap();
        assert_eq!(values(&ours, &t).await, (Some(3), 1));
        assert_eq!(values(&theirs, &t).await, (Some(3), 1));
        let past = ours
            .load(&t, Some(&crate::lake::AsOf::Version(1)))
            .await
            .unwrap();
        assert_eq!(past.version(), Some(1));
        assert_eq!(
            values(&ours, &t).await,
            (Some(3), 1),
            "a past load is not kept"
        );
    }
}
