//! Tables' Delta logs: what happened between two versions, read commit by commit (the log's
//! tail, not a snapshot); how long a tail a load replays (every table the lake writes is
//! checkpointed every [`CHECKPOINT_INTERVAL`] commits); where a log stands ([`LogState`], what
//! `macrolake soak` reports).

use std::collections::HashMap;

use deltalake::DeltaTable;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::{Lake, LakeError, Result, TableName};

/// Commits between two checkpoints of every table the lake writes (Delta's
/// `delta.checkpointInterval`; Delta's own default is 100). Loading a table reads its newest
/// checkpoint and every commit after it, so this bounds the commits a load replays. A nightly run
/// commits several times to `meta.runs` and once to most other tables; with Delta's 100, the
/// snapshot's nightly run went from 0.5 s to 0.9 s over the 14 nights between two checkpoints of
/// `meta.runs`, and back (`macrolake soak` shows it).
pub const CHECKPOINT_INTERVAL: u64 = 10;

const CHECKPOINT_PROPERTY: &str = "delta.checkpointInterval";

/// The table properties of every table the lake creates.
pub(super) fn table_properties() -> HashMap<String, Option<String>> {
    HashMap::from([(
        CHECKPOINT_PROPERTY.to_string(),
        Some(CHECKPOINT_INTERVAL.to_string()),
    )])
}

/// The table's checkpoint interval as its metadata sets it (`None`: Delta's default).
pub fn checkpoint_interval(table: &DeltaTable) -> Option<u64> {
    let state = table.snapshot().ok()?;
    state.table_config().checkpoint_interval.map(|n| n.get())
}

/// At most this many commits are read to answer [`Lake::only_added_between`]; further apart,
/// the answer is "not known" (the caller then does the work the answer would have spared it).
pub const MAX_COMMITS: u64 = 64;

/// Where a table's log stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogState {
    /// The table.
    pub table: String,
    /// Its version.
    pub version: u64,
    /// The version of its newest checkpoint (`_last_checkpoint`), if any.
    pub checkpoint: Option<u64>,
    /// The data files of its current version.
    pub files: usize,
    /// The files in its `_delta_log` folder (commits and checkpoints): Delta keeps 30 days of
    /// them (`delta.logRetentionDuration`), removing older ones as it writes a checkpoint.
    pub log_files: usize,
}

impl LogState {
    /// The commits a load of the table replays: those after its newest checkpoint (every one
    /// when it has none).
    pub fn tail(&self) -> u64 {
        match self.checkpoint {
            Some(c) => self.version.saturating_sub(c),
            None => self.version + 1,
        }
    }
}

impl Lake {
    /// Where `table`'s log stands (`None`: no such table).
    pub async fn log_state(&self, table: &TableName) -> Result<Option<LogState>> {
        if !self.exists(table).await? {
            return Ok(None);
        }
        let delta = self.load(table, None).await?;
        let files = delta
            .snapshot()
            .map(|s| s.log_data().num_files())
            .unwrap_or_default();
        let path = self.path(&format!(
            "{}/{}/_delta_log/_last_checkpoint",
            table.zone.as_str(),
            table.name
        ));
        let store_err = |source| LakeError::Store {
            path: path.to_string(),
            source,
        };
        let checkpoint = match self.store.get(&path).await {
            Ok(found) => {
                let bytes = found.bytes().await.map_err(store_err)?;
                #[derive(serde::Deserialize)]
                struct Last {
                    version: u64,
                }
                let last: Last = serde_json::from_slice(&bytes).map_err(|e| LakeError::Data {
                    table: table.clone(),
                    message: format!("{path}: {e}"),
                })?;
                Some(last.version)
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(store_err(e)),
        };
        let folder = self.path(&format!(
            "{}/{}/_delta_log",
            table.zone.as_str(),
            table.name
        ));
        let log_files = self
            .store
            .list(Some(&folder))
            .try_fold(0, |n, _| async move { Ok(n + 1) })
            .await
            .map_err(|source| LakeError::Store {
                path: folder.to_string(),
                source,
            })?;
        Ok(Some(LogState {
            table: table.to_string(),
            version: delta.version().unwrap_or_default(),
            checkpoint,
            files,
            log_files,
        }))
    }

    /// `table` with [`CHECKPOINT_INTERVAL`] set: a table created before it (or by another
    /// writer) gets it in one commit of its own the first time the lake writes to it.
    pub(super) async fn with_short_log(
        &self,
        name: &TableName,
        table: DeltaTable,
    ) -> Result<DeltaTable> {
        if checkpoint_interval(&table) == Some(CHECKPOINT_INTERVAL) {
            return Ok(table);
        }
        let properties = table_properties()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        tracing::info!(table = %name, interval = CHECKPOINT_INTERVAL, "setting the table's checkpoint interval");
        table
            .set_tbl_properties()
            .with_properties(properties)
            .await
            .map_err(|source| LakeError::Delta {
                table: name.clone(),
                action: "set the checkpoint interval of",
                source: Box::new(source),
            })
    }

    /// Whether every row of `table` at version `since` is still there at version `now`: no
    /// commit in between removed a data file that carried rows (a `remove` action with
    /// `dataChange`; the removes of a compaction carry none, its rows are rewritten as they
    /// were). Appends, and MERGEs that only inserted (`crate::lake::merge` commits those as
    /// appends), keep every row; an overwrite, a replace-where, a DELETE or a MERGE that updated
    /// rows does not.
    ///
    /// `false` also when the answer is not known: `now` before `since`, more than
    /// [`MAX_COMMITS`] commits apart, or a commit that is no longer in the log or cannot be read
    /// or parsed.
    pub async fn only_added_between(&self, table: &TableName, since: u64, now: u64) -> bool {
        self.added_between(table, since, now).await.is_some()
    }

    /// The data files with new rows that the commits after version `since` up to `now` added to
    /// `table`, when those commits kept every row ([`Lake::only_added_between`]); `None`
    /// otherwise or when it is not known. The files a compaction adds carry no new rows (no
    /// `dataChange`) and are not listed. Each is the file's full URL (the table's URL joined with
    /// the path its log writes, percent-encoded as there): a session that reads the table has
    /// the store of that URL's root (`file:///`, `s3://bucket/`, `memory:///`).
    pub async fn added_between(
        &self,
        table: &TableName,
        since: u64,
        now: u64,
    ) -> Option<Vec<String>> {
        if now < since || now - since > MAX_COMMITS {
            return None;
        }
        let delta = self.builder(table).ok().and_then(|b| b.build().ok())?;
        let log = delta.log_store();
        let base = self.table_url(table);
        let mut added = Vec::new();
        for version in since + 1..=now {
            let actions = match log.read_commit_entry(version).await {
                Ok(Some(bytes)) => row_actions(&bytes),
                Ok(None) | Err(_) => None,
            };
            let Some(paths) = actions else {
                tracing::debug!(%table, version, "a commit may have removed rows");
                return None;
            };
            for path in paths {
                added.push(base.join(&path).ok()?.to_string());
            }
        }
        Some(added)
    }
}

/// The paths of the data files a commit's actions (one JSON object per line) add with new rows
/// (`dataChange`), when it removes no row: no `remove` action with `dataChange` true (or
/// absent). `None` for a commit that removes rows, or a line that is not JSON.
fn row_actions(commit: &[u8]) -> Option<Vec<String>> {
    let data_change = |action: &serde_json::Value| {
        action.get("dataChange") != Some(&serde_json::Value::Bool(false))
    };
    let mut added = Vec::new();
    for line in commit
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
    {
        let action = serde_json::from_slice::<serde_json::Value>(line).ok()?;
        if action.get("remove").is_some_and(data_change) {
            return None;
        }
        if let Some(add) = action.get("add").filter(|a| data_change(a)) {
            added.push(add.get("path")?.as_str()?.to_string());
        }
    }
    Some(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::WriteMode;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_replays_at_most_ten_commits_in_any_table_the_lake_writes() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        // A table created by the lake: checkpoints at versions 9, 19, …
        let runs = TableName::meta("runs");
        for i in 0..25 {
            lake.write(&runs, vec![rows(&[i])], WriteMode::Append)
                .await
                .unwrap();
        }
        let state = lake.log_state(&runs).await.unwrap().unwrap();
        assert_eq!((state.version, state.checkpoint), (24, Some(19)));
        assert_eq!((state.tail(), state.files), (5, 25));
        // A table an older macrolake made (Delta's default of 100) gets the interval on the
        // lake's first write to it, and keeps its rows.
        let old = TableName::meta("old");
        let created = lake.builder(&old).unwrap().build().unwrap();
        let created = created.write(vec![rows(&[1, 2])]).await.unwrap();
        assert_eq!(checkpoint_interval(&created), None);
        for i in 0..12 {
            lake.write(&old, vec![rows(&[10 + i])], WriteMode::Append)
                .await
                .unwrap();
        }
        let table = lake.load(&old, None).await.unwrap();
        assert_eq!(checkpoint_interval(&table), Some(CHECKPOINT_INTERVAL));
        let state = lake.log_state(&old).await.unwrap().unwrap();
        // version 1 set the property; 2..=13 are the appends; a checkpoint at 9.
        assert_eq!(
            (state.version, state.checkpoint, state.files),
            (13, Some(9), 13)
        );
        let s = lake.session(None, &[]).await.unwrap();
        let n = s
            .ctx
            .sql("SELECT count(*) AS n FROM meta.old")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = n[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(n, 14);
        // A published table (every model build) carries it too.
        let published = TableName::meta("published");
        let df = s.ctx.read_batch(rows(&[7])).unwrap();
        lake.stage(&published, df)
            .await
            .unwrap()
            .publish(&lake)
            .await
            .unwrap();
        let table = lake.load(&published, None).await.unwrap();
        assert_eq!(checkpoint_interval(&table), Some(CHECKPOINT_INTERVAL));
        assert!(
            lake.log_state(&TableName::meta("none"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_commit_keeps_its_rows_unless_it_removes_a_file_with_data_and_lists_its_new_files() {
        let add = r#"{"add":{"path":"a.parquet","size":1,"dataChange":true}}"#;
        let info = r#"{"commitInfo":{"operation":"WRITE"}}"#;
        let a = Some(vec!["a.parquet".to_string()]);
        assert_eq!(row_actions(format!("{info}\n{add}\n").as_bytes()), a);
        // A compaction's files hold the rows it removed: no new rows, nothing listed.
        let compaction = r#"{"remove":{"path":"b.parquet","dataChange":false}}"#;
        let compacted = r#"{"add":{"path":"c.parquet","size":1,"dataChange":false}}"#;
        assert_eq!(
            row_actions(format!("{compaction}\n{compacted}\n{add}").as_bytes()),
            a
        );
        let removes = r#"{"remove":{"path":"b.parquet","dataChange":true}}"#;
        assert_eq!(
            row_actions(format!("{info}\n{removes}\n{add}").as_bytes()),
            None
        );
        let unstated = r#"{"remove":{"path":"b.parquet"}}"#;
        assert_eq!(row_actions(unstated.as_bytes()), None);
        assert_eq!(row_actions(b"{\"add\":"), None, "not JSON: not known");
    }
}
