//! The lake: Delta tables on one object store, reached by URL.
//!
//! Layout under the lake root (DESIGN §2):
//!
//! ```text
//! raw/<source>/<yyyy-mm-dd>/…gz   raw upstream bodies as fetched, one archive per source and run (landing zone)
//! staging/<table>/               typed tables written by connectors
//! marts/<model>/                 tables written by SQL models
//! meta/runs/, meta/watermarks/   run history and per-source high-water marks
//! meta/model_state/              what each incremental model was last built from
//! ```
//!
//! Every write is one atomic Delta commit: [`Lake::write`] creates, appends, overwrites (all or
//! a predicate's rows) or MERGEs on a natural key. A write that fails before its commit leaves
//! the table at its previous version; the data files it wrote are never referenced.

pub mod availability;
mod error;
pub mod files;
pub mod increasing;
mod landed;
mod limit;
pub mod log;
pub mod maintain;
mod merge;
pub mod model_state;
pub(crate) mod name;
pub mod product;
pub mod raw;
pub mod row;
pub mod runs;
pub(crate) mod session;
mod snapshot_scan;
mod snapshots;
mod sorted;
mod staged;
pub mod store;
pub mod watermarks;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder};
use object_store::ObjectStore;
use url::Url;

pub use error::{LakeError, Result};
pub use name::{TableName, Zone};
pub use row::{INGESTED_AT, StagingRow, ingested_at_column};
pub use session::{AsOf, QuerySession, ViewDef, collect_sql};
pub use sorted::BatchSender;
pub use staged::Staged;

/// How a write changes a table.
#[derive(Debug, Clone)]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace all rows.
    Overwrite,
    /// Replace the rows matching a SQL predicate with the given rows.
    ReplaceWhere(String),
    /// Upsert on a natural key: rows whose key exists are updated when any compared column
    /// differs; new keys are inserted; rows identical to what is stored (ignoring the `ignore`
    /// columns, e.g. `ingested_at`) are skipped, so an unchanged write makes no commit at all.
    Merge {
        /// The natural key columns (never NULL).
        keys: Vec<String>,
        /// Columns not compared when deciding whether a row changed.
        ignore: Vec<String>,
    },
}

impl WriteMode {
    /// A MERGE on `keys`, ignoring `ingested_at` when comparing rows.
    pub fn merge_on(keys: &[&str]) -> Self {
        WriteMode::Merge {
            keys: keys.iter().map(|s| s.to_string()).collect(),
            ignore: vec!["ingested_at".to_string()],
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows inserted or updated.
    pub rows: usize,
    /// The table's version after the write (`None` if the table still does not exist).
    pub version: Option<u64>,
    /// Whether a new version was committed.
    pub committed: bool,
}

/// The lake: a root URL and the store behind it.
#[derive(Clone)]
pub struct Lake {
    root: Url,
    store: Arc<dyn ObjectStore>,
    cutoff: availability::Cutoff,
    /// Bytes one session's queries may hold before spilling (`None`: no limit).
    memory_limit: Option<usize>,
    /// One lock per table written through [`Lake::write`] in this process: tasks running at
    /// once (sources ingesting side by side, each raising its watermarks in
    /// `meta.watermarks`) commit to a shared table one after the other, each on the version the
    /// other committed, never racing for the same version.
    writers: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// The newest snapshot of each table this process loaded or committed: a load lists the
    /// log after it and replays only the commits since, instead of reading the table's
    /// checkpoint and log again (a nightly build loaded `meta.model_state`, each model's inputs
    /// and the tables it writes several times over).
    snapshots: snapshots::Kept,
}

/// The default of `[lake] memory_limit_mb`.
pub const DEFAULT_MEMORY_LIMIT_MB: usize = 512;

impl fmt::Debug for Lake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lake")
            .field("root", &self.root.as_str())
            .finish_non_exhaustive()
    }
}

impl Lake {
    /// Opens (or starts) the lake at a URL or local path.
    pub fn open(url: &str, allow_http: bool) -> Result<Self> {
        let root = store::normalize_lake_url(url)?;
        let store = store::store_for(&root, allow_http)?;
        Ok(Self {
            root,
            store,
            cutoff: Default::default(),
            memory_limit: Some(DEFAULT_MEMORY_LIMIT_MB << 20),
            writers: Arc::default(),
            snapshots: Arc::default(),
        })
    }

    /// A lake over a given store (tests wrap a store to inject faults).
    pub fn with_store(url: &str, store: Arc<dyn ObjectStore>) -> Result<Self> {
        let root = store::normalize_lake_url(url)?;
        Ok(Self {
            root,
            store,
            cutoff: Default::default(),
            memory_limit: Some(DEFAULT_MEMORY_LIMIT_MB << 20),
            writers: Arc::default(),
            snapshots: Arc::default(),
        })
    }

    /// The same lake with another daily cut-off for `known_on(available_at)` in SQL.
    pub fn with_cutoff(mut self, cutoff: availability::Cutoff) -> Self {
        self.cutoff = cutoff;
        self
    }

    /// The same lake with another memory limit for its query sessions, in MiB (`0`: none); see
    /// `[lake] memory_limit_mb`.
    pub fn with_memory_limit_mb(mut self, mb: usize) -> Self {
        self.memory_limit = (mb > 0).then_some(mb << 20);
        self
    }

    /// The bytes one session's queries may hold before spilling (`None`: no limit).
    pub fn memory_limit(&self) -> Option<usize> {
        self.memory_limit
    }

    /// The daily cut-off marts use (default 18:30 New York).
    pub fn cutoff(&self) -> availability::Cutoff {
        self.cutoff
    }

    /// The lake's root URL.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The object store (root of the bucket / file system).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// An object path below the lake root.
    pub fn path(&self, relative: &str) -> object_store::path::Path {
        let root = self.root.path().trim_matches('/');
        if root.is_empty() {
            object_store::path::Path::from(relative)
        } else {
            object_store::path::Path::from(format!("{root}/{relative}"))
        }
    }

    /// The URL of a table's folder.
    pub fn table_url(&self, table: &TableName) -> Url {
        self.root
            .join(&format!("{}/{}/", table.zone.as_str(), table.name))
            .expect("table names are URL-safe")
    }

    fn builder(&self, table: &TableName) -> Result<DeltaTableBuilder> {
        store::register_log_stores();
        let url = self.table_url(table);
        DeltaTableBuilder::from_url(url.clone())
            .map(|b| b.with_storage_backend(self.store.clone(), url))
            .map_err(|source| LakeError::Delta {
                table: table.clone(),
                action: "open",
                source: Box::new(source),
            })
    }

    /// Whether the table exists (has a Delta log).
    pub async fn exists(&self, table: &TableName) -> Result<bool> {
        let t = self
            .builder(table)?
            .build()
            .map_err(|source| LakeError::Delta {
                table: table.clone(),
                action: "open",
                source: Box::new(source),
            })?;
        t.verify_deltatable_existence()
            .await
            .map_err(|source| LakeError::Delta {
                table: table.clone(),
                action: "open",
                source: Box::new(source),
            })
    }

    /// Loads a table at its newest version, or at a past one.
    pub async fn load(&self, table: &TableName, as_of: Option<&AsOf>) -> Result<DeltaTable> {
        if as_of.is_none()
            && let Some(newest) = self.refreshed(table).await
        {
            return Ok(newest);
        }
        let loaded = self.load_from_log(table, as_of).await?;
        if as_of.is_none() {
            self.remember(table, &loaded);
        }
        Ok(loaded)
    }

    /// [`Lake::load`] from the table's checkpoint and log.
    async fn load_from_log(&self, table: &TableName, as_of: Option<&AsOf>) -> Result<DeltaTable> {
        if !self.exists(table).await? {
            return Err(LakeError::NoSuchTable {
                table: table.clone(),
            });
        }
        let mut builder = self.builder(table)?;
        match as_of {
            Some(AsOf::Version(v)) => builder = builder.with_version(*v),
            Some(AsOf::Timestamp(ts)) => builder = builder.with_timestamp(*ts),
            None => {}
        }
        builder.load().await.map_err(|source| LakeError::Delta {
            table: table.clone(),
            action: "load",
            source: Box::new(source),
        })
    }

    /// The table's current version, or `None` if it does not exist.
    pub async fn version(&self, table: &TableName) -> Result<Option<u64>> {
        if !self.exists(table).await? {
            return Ok(None);
        }
        Ok(self.load(table, None).await?.version())
    }

    /// When the table's newest version was committed (its Delta log entry's timestamp); `None`
    /// when the table does not exist or the commit carries no time.
    pub async fn last_commit(&self, table: &TableName) -> Result<Option<DateTime<Utc>>> {
        use futures::StreamExt;
        if !self.exists(table).await? {
            return Ok(None);
        }
        let delta = self.load(table, None).await?;
        let mut history = delta.history(Some(1));
        Ok(match history.next().await {
            Some(Ok(commit)) => commit.timestamp.and_then(DateTime::from_timestamp_millis),
            _ => None,
        })
    }

    /// The table's newest version, reading only the log after `known` (a version seen before):
    /// a listing of the log's tail, not a snapshot. Without `known`, or when that commit is no
    /// longer in the log, the table is loaded as in [`Lake::version`].
    pub async fn latest_version(
        &self,
        table: &TableName,
        known: Option<u64>,
    ) -> Result<Option<u64>> {
        if let Some(known) = known
            && let Ok(t) = self.builder(table)?.build()
            && let Ok(latest) = t.log_store().get_latest_version(known).await
        {
            return Ok(Some(latest));
        }
        self.version(table).await
    }

    /// Writes rows to a table in one atomic commit (creating the table on first write).
    pub async fn write(
        &self,
        table: &TableName,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        let batches = stamped(table, batches)?;
        let writer = self
            .writers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(table.to_string())
            .or_default()
            .clone();
        let _writing = writer.lock().await;
        // A MERGE of the rows the last one merged, into a table nothing wrote to since, changes
        // nothing: known from two small objects, without loading the table (`landed`).
        let merged = match &mode {
            WriteMode::Merge { keys, ignore } => {
                let digest = landed::digest(table, keys, ignore, &batches)?;
                if let Some(version) = landed::unchanged(self, table, &digest).await {
                    return Ok(WriteOutcome {
                        rows: 0,
                        version: Some(version),
                        committed: false,
                    });
                }
                Some(digest)
            }
            _ => None,
        };
        let outcome = self.write_locked(table, batches, mode).await?;
        if let Some(digest) = merged {
            landed::record(self, table, outcome.version, digest).await;
        }
        Ok(outcome)
    }

    /// [`Lake::write`] once the table's writer lock is held and the MERGE shortcut did not apply.
    async fn write_locked(
        &self,
        table: &TableName,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let existing = if self.exists(table).await? {
            let loaded = self.load(table, None).await?;
            Some(self.with_short_log(table, loaded).await?)
        } else {
            None
        };
        let err = |action: &'static str| {
            let table = table.clone();
            move |source| LakeError::Delta {
                table,
                action,
                source: Box::new(source),
            }
        };
        match (existing, mode) {
            (Some(current), WriteMode::Merge { keys, ignore }) => {
                merge::merge(table, current, batches, &keys, &ignore).await
            }
            (existing, mode) => {
                if rows == 0 && !matches!(mode, WriteMode::Overwrite | WriteMode::ReplaceWhere(_)) {
                    let version = existing.as_ref().and_then(DeltaTable::version);
                    return Ok(WriteOutcome {
                        rows: 0,
                        version,
                        committed: false,
                    });
                }
                let delta = match existing {
                    Some(t) => t,
                    None => self.builder(table)?.build().map_err(err("create"))?,
                };
                let mut builder = delta
                    .write(batches)
                    .with_table_name(table.to_string())
                    .with_configuration(log::table_properties())
                    .with_writer_properties(files::writer_properties());
                builder = match mode {
                    // New nullable columns (e.g. added to meta.runs by an upgrade) join the table.
                    WriteMode::Append | WriteMode::Merge { .. } => builder
                        .with_save_mode(SaveMode::Append)
                        .with_schema_mode(deltalake::operations::write::SchemaMode::Merge),
                    WriteMode::Overwrite => builder
                        .with_save_mode(SaveMode::Overwrite)
                        .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite),
                    WriteMode::ReplaceWhere(predicate) => builder
                        .with_save_mode(SaveMode::Overwrite)
                        .with_replace_where(predicate),
                };
                let written = builder.await.map_err(err("write"))?;
                self.remember(table, &written);
                Ok(WriteOutcome {
                    rows,
                    version: written.version(),
                    committed: true,
                })
            }
        }
    }

    /// Every table in the lake, found by listing the zone folders for Delta logs.
    pub async fn tables(&self) -> Result<Vec<TableName>> {
        use futures::StreamExt;
        let mut found = Vec::new();
        for zone in Zone::ALL {
            let prefix = self.path(zone.as_str());
            let listing = self
                .store
                .list_with_delimiter(Some(&prefix))
                .await
                .map_err(|source| LakeError::Store {
                    path: prefix.to_string(),
                    source,
                })?;
            found.extend(listing.common_prefixes.iter().filter_map(|dir| {
                dir.filename().map(|name| TableName {
                    zone,
                    name: name.to_string(),
                })
            }));
        }
        // A folder is a table once its log has a commit; the checks run at once (a round trip
        // each on S3).
        let checked = futures::stream::iter(found)
            .map(|table| async move { self.exists(&table).await.map(|yes| yes.then_some(table)) })
            .buffered(8)
            .collect::<Vec<_>>()
            .await;
        let mut found = checked
            .into_iter()
            .filter_map(Result::transpose)
            .collect::<Result<Vec<_>>>()?;
        found.sort();
        Ok(found)
    }

    /// Timestamp used for `ingested_at` and run history: now, to the microsecond.
    pub fn now() -> DateTime<Utc> {
        let now = Utc::now();
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }
}

/// Reads a result column as a concrete Arrow array type, casting when DataFusion chose another
/// physical type (e.g. `Utf8View` for strings read from Parquet).
pub fn column_as<T: datafusion::arrow::array::Array + Clone + 'static>(
    batch: &RecordBatch,
    index: usize,
    data_type: &datafusion::arrow::datatypes::DataType,
) -> Result<T> {
    let cast = datafusion::arrow::compute::cast(batch.column(index), data_type).map_err(|e| {
        LakeError::DataFusion {
            context: format!("reading column {}", batch.schema().field(index).name()),
            source: Box::new(e.into()),
        }
    })?;
    cast.as_any()
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| LakeError::DataFusion {
            context: format!("reading column {}", batch.schema().field(index).name()),
            source: Box::new(datafusion::error::DataFusionError::Internal(format!(
                "column is not {data_type}"
            ))),
        })
}

/// Rows to write to `table` as they are stored: a staging table's rows each say when they became
/// public (availability) and are clustered by date; other tables' rows as they are.
fn stamped(table: &TableName, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    if table.zone != Zone::Staging {
        return Ok(batches);
    }
    let data_err = |e: &dyn std::fmt::Display| LakeError::Data {
        table: table.clone(),
        message: e.to_string(),
    };
    let stamped = batches
        .into_iter()
        .map(|b| availability::stamp(table, b))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| data_err(&e))?;
    merge::cluster_by_date(stamped).map_err(|e| data_err(&e))
}
