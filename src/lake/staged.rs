//! A table's next version written but not yet published, streamed from a query: the
//! write-audit-publish of a full model build without holding the result in memory.
//!
//! [`Lake::stage`] runs a query and streams its rows into Parquet files in a folder of the
//! table's own (`<table>/staged-<uuid>/`), recorded by a Delta log of that folder's own. Readers
//! of the table see none of it: the table's log does not name those files. The staged rows can
//! be read back as a table ([`Staged::provider`], for the audit) and then either published —
//! one commit of the table that replaces every row, schema included, by the staged files
//! ([`Staged::publish`]) — or discarded, which deletes the folder ([`Staged::discard`]). So a
//! failed audit, a failed query or a crash leaves the published version as it was; memory is the
//! query's working memory (bounded by `[lake] memory_limit_mb`) and the writer's open row
//! groups, whatever the size of the result.

use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::physical_plan::EmptyRecordBatchStream;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::DataFrame;
use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add};
use deltalake::operations::create::CreateBuilder;
use deltalake::operations::write::WriteBuilder;
use deltalake::protocol::SaveMode;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::{Lake, LakeError, Result, TableName, WriteOutcome};

/// Rows written beside a table, not yet part of it.
pub struct Staged {
    table: TableName,
    /// The folder's name inside the table's (`staged-<uuid>`).
    folder: String,
    /// The folder's own Delta table.
    staged: DeltaTable,
    /// Rows staged (from the files' statistics).
    pub rows: usize,
    /// Data files staged (none when the query returned no row).
    pub files: usize,
    /// The watched keys the rows came out in strictly increasing order of, so unique
    /// ([`super::increasing`]).
    pub unique_keys: Vec<Vec<String>>,
}

impl Lake {
    /// Streams `query`'s rows into a staged next version of `table` (see the module docs).
    /// Nothing becomes visible; on error the folder is deleted.
    pub async fn stage(&self, table: &TableName, query: DataFrame) -> Result<Staged> {
        self.stage_watching(table, query, &[]).await
    }

    /// [`Lake::stage`], watching the rows for `keys` (lists of columns) that strictly increase
    /// from row to row: those are reported in [`Staged::unique_keys`].
    pub async fn stage_watching(
        &self,
        table: &TableName,
        query: DataFrame,
        keys: &[Vec<String>],
    ) -> Result<Staged> {
        let folder = format!("staged-{}", uuid::Uuid::new_v4());
        let url = self
            .table_url(table)
            .join(&format!("{folder}/"))
            .expect("a folder name is URL-safe");
        super::store::register_log_stores();
        let delta_err = |action| {
            let table = table.clone();
            move |source| LakeError::Delta {
                table,
                action,
                source: Box::new(source),
            }
        };
        let log_store = deltalake::DeltaTableBuilder::from_url(url.clone())
            .map(|b| b.with_storage_backend(self.store.clone(), url))
            .and_then(|b| b.build())
            .map_err(delta_err("stage"))?
            .log_store();
        let (watch, plan, state) = streamed(table, query, keys).await?;
        let written = WriteBuilder::new(log_store, None)
            .with_input_plan(plan)
            .with_session_state(Arc::new(state))
            .with_table_name(table.to_string())
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_writer_properties(super::files::writer_properties())
            .await;
        let staged = match written {
            Ok(staged) => staged,
            Err(e) => {
                self.delete_folder(table, &folder).await?;
                return Err(delta_err("stage")(e));
            }
        };
        let (files, rows) = staged
            .snapshot()
            .map(|s| {
                let files = s.log_data();
                let rows = files.iter().map(|f| f.num_records()).sum::<Option<usize>>();
                (files.num_files(), rows.unwrap_or_default())
            })
            .unwrap_or_default();
        Ok(Staged {
            table: table.clone(),
            folder,
            staged,
            rows,
            files,
            unique_keys: watch.proven(rows),
        })
    }

    async fn delete_folder(&self, table: &TableName, folder: &str) -> Result<()> {
        let prefix = self.path(&format!("{}/{}/{folder}", table.zone.as_str(), table.name));
        self.delete_below(&prefix).await
    }

    /// Deletes every object below `prefix`.
    async fn delete_below(&self, prefix: &Path) -> Result<()> {
        let store_err = |source| LakeError::Store {
            path: prefix.to_string(),
            source,
        };
        let paths: Vec<Path> = self
            .store
            .list(Some(prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(store_err)?;
        for path in paths {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => return Err(store_err(source)),
            }
        }
        Ok(())
    }
}

fn df_err(table: &TableName) -> impl Fn(datafusion::error::DataFusionError) -> LakeError + '_ {
    move |source| LakeError::DataFusion {
        context: format!("staging {table}"),
        source: Box::new(source),
    }
}

/// A stream read by the first scan of the table it is the one partition of.
pub(super) struct Once {
    schema: SchemaRef,
    rows: Mutex<Option<SendableRecordBatchStream>>,
}

impl Once {
    pub(super) fn new(rows: SendableRecordBatchStream) -> Self {
        Self {
            schema: rows.schema(),
            rows: Mutex::new(Some(rows)),
        }
    }
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Once").finish_non_exhaustive()
    }
}

impl PartitionStream for Once {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        self.rows
            .lock()
            .expect("not poisoned")
            .take()
            .unwrap_or_else(|| Box::pin(EmptyRecordBatchStream::new(self.schema.clone())))
    }
}

impl Staged {
    /// The staged rows as a table, for the audit; the table's object store is registered with
    /// `state`'s runtime.
    pub async fn provider(
        &self,
        state: &datafusion::execution::SessionState,
    ) -> Result<Arc<dyn TableProvider>> {
        self.staged
            .update_datafusion_session(state)
            .map_err(|source| LakeError::Delta {
                table: self.table.clone(),
                action: "register",
                source: Box::new(source),
            })?;
        self.staged
            .table_provider()
            .await
            .map_err(|source| LakeError::DataFusion {
                context: format!("reading the staged rows of {}", self.table),
                source: Box::new(source),
            })
    }

    /// Publishes the staged rows: one commit of the table (created if it does not exist) whose
    /// rows and schema are exactly the staged ones. The staged folder's own log is deleted; its
    /// data files now belong to the table.
    pub async fn publish(self, lake: &Lake) -> Result<WriteOutcome> {
        let delta_err = |action| {
            let table = self.table.clone();
            move |source| LakeError::Delta {
                table,
                action,
                source: Box::new(source),
            }
        };
        let adds = self.adds(lake).await?;
        let snapshot = self.staged.snapshot().map_err(delta_err("publish"))?;
        let columns: Vec<_> = snapshot.schema().fields().cloned().collect();
        let target = lake
            .builder(&self.table)?
            .build()
            .map_err(delta_err("publish"))?;
        let published = CreateBuilder::new()
            .with_log_store(target.log_store())
            .with_table_name(self.table.to_string())
            .with_columns(columns)
            .with_configuration(super::log::table_properties())
            .with_save_mode(SaveMode::Overwrite)
            .with_actions(adds.into_iter().map(Action::Add))
            .await
            .map_err(delta_err("publish"))?;
        let log = format!("{}/_delta_log", self.folder);
        lake.delete_folder(&self.table, &log).await?;
        Ok(WriteOutcome {
            rows: self.rows,
            version: published.version(),
            committed: true,
        })
    }

    /// Deletes the staged folder: nothing of it was ever visible.
    pub async fn discard(self, lake: &Lake) -> Result<()> {
        lake.delete_folder(&self.table, &self.folder).await
    }

    /// The staged files as the table's own: their add actions (statistics included) with paths
    /// relative to the table.
    async fn adds(&self, lake: &Lake) -> Result<Vec<Add>> {
        let version = self.staged.version().unwrap_or_default();
        let path = lake.path(&format!(
            "{}/{}/{}/_delta_log/{version:020}.json",
            self.table.zone.as_str(),
            self.table.name,
            self.folder
        ));
        let bytes = lake
            .store
            .get(&path)
            .await
            .map_err(|source| LakeError::Store {
                path: path.to_string(),
                source,
            })?
            .bytes()
            .await
            .map_err(|source| LakeError::Store {
                path: path.to_string(),
                source,
            })?;
        let mut adds = Vec::new();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            #[derive(serde::Deserialize)]
            struct Line {
                add: Option<Add>,
            }
            let parsed: Line = serde_json::from_slice(line).map_err(|e| LakeError::Data {
                table: self.table.clone(),
                message: format!("staged log {path}: {e}"),
            })?;
            if let Some(mut add) = parsed.add {
                add.path = format!("{}/{}", self.folder, add.path);
                adds.push(add);
            }
        }
        Ok(adds)
    }
}

/// `query` planned and started, its rows wrapped in a one-pass scan for Delta's writer, with the
/// session state the writer plans with and the watch over `keys`.
async fn streamed(
    table: &TableName,
    query: DataFrame,
    keys: &[Vec<String>],
) -> Result<(
    super::increasing::KeyWatch,
    datafusion::logical_expr::LogicalPlan,
    datafusion::execution::SessionState,
)> {
    // The query runs here, its output read once by Delta's writer: the writer's planner
    // cannot drop the query's ORDER BY (files come out in its order) and the query keeps the
    // caller's session and memory pool.
    let (state, plan) = query.into_parts();
    let clock = std::time::Instant::now();
    let optimized = state.optimize(&plan).map_err(df_err(table))?;
    let optimized_s = clock.elapsed().as_secs_f64();
    let physical = state
        .query_planner()
        .create_physical_plan(&optimized, &state)
        .await
        .map_err(df_err(table))?;
    tracing::debug!(%table, optimized_s, seconds = clock.elapsed().as_secs_f64(), "query optimized and planned");
    let rows = datafusion::physical_plan::execute_stream(
        physical,
        Arc::new(datafusion::execution::TaskContext::from(&state)),
    )
    .map_err(df_err(table))?;
    let (watch, rows) = super::increasing::KeyWatch::wrap(keys, rows);
    let source = StreamingTable::try_new(rows.schema(), vec![Arc::new(Once::new(rows))])
        .map_err(df_err(table))?;
    let plan = LogicalPlanBuilder::scan("staged", provider_as_source(Arc::new(source)), None)
        .and_then(LogicalPlanBuilder::build)
        .map_err(df_err(table))?;
    // Delta's writer wraps that scan in nodes of its own, which its planner turns into
    // operators. Files are written in the query's order (no round-robin split of its output
    // across writers): rows sorted by date make files that each cover a run of days.
    let mut state = state;
    state
        .config_mut()
        .options_mut()
        .optimizer
        .enable_round_robin_repartition = false;
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(state)
        .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
        .build();
    Ok((watch, plan, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::Zone;

    fn mart() -> TableName {
        TableName {
            zone: Zone::Marts,
            name: "m".to_string(),
        }
    }

    /// Every object below the table's folder.
    async fn objects(lake: &Lake) -> Vec<String> {
        let prefix = lake.path("marts/m");
        let mut found: Vec<String> = lake
            .store()
            .list(Some(&prefix))
            .map_ok(|o| o.location.to_string())
            .try_collect()
            .await
            .unwrap();
        found.sort();
        found
    }

    async fn rows(lake: &Lake, sql: &str) -> String {
        let s = lake.session(None, &[]).await.unwrap();
        let batches = s.ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn staged_rows_are_invisible_until_published_and_replace_rows_and_schema() {
        let lake = Lake::open("memory://", false).unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        let first = ctx.sql("SELECT 1 AS a, 'x' AS b").await.unwrap();
        lake.stage(&mart(), first)
            .await
            .unwrap()
            .publish(&lake)
            .await
            .unwrap();
        let before = rows(&lake, "SELECT * FROM marts.m").await;
        assert!(before.contains("| 1 | x |"), "{before}");

        // Another schema and other rows, staged: readers still see the published version.
        let next = ctx
            .sql("SELECT * FROM (VALUES (2, 2.5), (3, 3.5)) AS t(a, c)")
            .await
            .unwrap();
        let staged = lake.stage(&mart(), next).await.unwrap();
        assert_eq!((staged.rows, staged.files), (2, 1));
        assert_eq!(rows(&lake, "SELECT * FROM marts.m").await, before);
        assert_eq!(lake.version(&mart()).await.unwrap(), Some(0));
        // The audit reads the staged rows.
        let provider = staged.provider(&ctx.state()).await.unwrap();
        let audited = ctx.read_table(provider).unwrap().collect().await.unwrap();
        assert_eq!(audited.iter().map(|b| b.num_rows()).sum::<usize>(), 2);

        let outcome = staged.publish(&lake).await.unwrap();
        assert_eq!((outcome.rows, outcome.version), (2, Some(1)));
        let after = rows(&lake, "SELECT a, c FROM marts.m ORDER BY a").await;
        assert!(
            after.contains("| 2 | 2.5 |") && after.contains("| 3 | 3.5 |"),
            "{after}"
        );
        assert!(!after.contains("| 1 "), "old rows replaced: {after}");
        // No staged log stays behind: only data files and the table's own log.
        assert!(
            objects(&lake).await.iter().all(|o| !o.contains("staged-")
                || (o.ends_with(".parquet") && !o.contains("_delta_log"))),
            "{:?}",
            objects(&lake).await
        );
    }

    #[tokio::test]
    async fn a_discarded_stage_leaves_nothing() {
        let lake = Lake::open("memory://", false).unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        let q = ctx.sql("SELECT 1 AS a").await.unwrap();
        lake.stage(&mart(), q)
            .await
            .unwrap()
            .discard(&lake)
            .await
            .unwrap();
        assert_eq!(objects(&lake).await, Vec::<String>::new());
        assert!(!lake.exists(&mart()).await.unwrap(), "never published");
    }

    #[tokio::test]
    async fn vacuum_deletes_what_a_crashed_build_staged_and_keeps_the_published_files() {
        let lake = Lake::open("memory://", false).unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        let q = ctx.sql("SELECT 1 AS a").await.unwrap();
        let published = lake.stage(&mart(), q).await.unwrap();
        let kept = published.folder.clone();
        published.publish(&lake).await.unwrap();
        // A build that died between staging and publishing: its folder stays behind.
        let q = ctx.sql("SELECT 2 AS a").await.unwrap();
        let crashed = lake.stage(&mart(), q).await.unwrap().folder;
        assert!(objects(&lake).await.iter().any(|o| o.contains(&crashed)));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;

        let (_, deleted) = lake.vacuum(&mart(), 0, false, true).await.unwrap();
        let left = objects(&lake).await;
        assert!(!left.iter().any(|o| o.contains(&crashed)), "{left:?}");
        assert!(deleted.iter().any(|d| d.contains(&crashed)), "{deleted:?}");
        assert!(left.iter().any(|o| o.contains(&kept)), "{left:?}");
        let now = rows(&lake, "SELECT a FROM marts.m").await;
        assert!(now.contains("| 1 |"), "{now}");
    }

    #[tokio::test]
    async fn a_query_that_fails_while_streaming_leaves_nothing() {
        let lake = Lake::open("memory://", false).unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        // Fails at execution, not planning: the cast of 'x' is only tried on the row.
        let q = ctx
            .sql("SELECT CAST(v AS INT) AS a FROM (VALUES ('1'), ('x')) AS t(v)")
            .await
            .unwrap();
        assert!(lake.stage(&mart(), q).await.is_err());
        assert_eq!(objects(&lake).await, Vec::<String>::new());
    }
}
