//! A table provider over one Delta version's data files, read as plain Parquet.
//!
//! deltalake's provider plans every scan through the Delta kernel: it replays the table's file
//! list and evaluates file skipping anew for each table a query names, about a millisecond of
//! CPU or more per scan whatever the table's size (~0.08 s of CPU in a next-night build of the
//! 2,000-symbol bench). Our tables have nothing that needs the kernel at read time — no
//! partition columns, no deletion vectors, no column mapping (reader version 1) — so their
//! files and statistics are taken from the loaded snapshot once per version (at its first
//! scan), and each scan is DataFusion's own Parquet scan over them: files pruned by the log's
//! exact statistics, row groups and pages by the footers (cached by the runtime), the limit and
//! projection as DataFusion's listing tables do. A table that has any of those features keeps
//! deltalake's provider ([`snapshot_provider`] returns `None`).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::{Column, ColumnStatistics, ScalarValue, Statistics};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_datasource::compute_all_files_statistics;
use deltalake::DeltaTable;
use deltalake::logstore::LogStore;
use deltalake::table::state::DeltaTableState;
use object_store::ObjectMeta;

/// One Delta version's files as a Parquet table (see the module doc).
#[derive(Debug)]
pub struct SnapshotScan {
    schema: SchemaRef,
    store_url: ObjectStoreUrl,
    snapshot: DeltaTableState,
    /// The version's files, each with its row count and the log's exact column statistics:
    /// read from the snapshot at the first scan (a session registers every table, a query reads
    /// a few).
    files: OnceLock<Vec<PartitionedFile>>,
}

/// A [`SnapshotScan`] of `table`'s loaded version with `schema` (deltalake's provider's, so a
/// query sees the same types either way), its store registered with `state`'s runtime; `None`
/// when the version has a feature only the kernel reads (partition columns, a reader version
/// above 1: deletion vectors or column mapping).
pub fn snapshot_provider(
    table: &DeltaTable,
    schema: SchemaRef,
    state: &dyn Session,
) -> Option<SnapshotScan> {
    let snapshot = table.snapshot().ok()?;
    if snapshot.protocol().min_reader_version() != 1
        || !snapshot.metadata().partition_columns().is_empty()
    {
        return None;
    }
    let log_store = table.log_store();
    let store_url = log_store.object_store_url();
    let runtime = state.runtime_env();
    if runtime.object_store(&store_url).is_err() {
        runtime.register_object_store(store_url.as_ref(), log_store.object_store(None));
    }
    Some(SnapshotScan {
        schema,
        store_url,
        snapshot: snapshot.clone(),
        files: OnceLock::new(),
    })
}

impl SnapshotScan {
    fn files(&self) -> &[PartitionedFile] {
        self.files.get_or_init(|| {
            let log = self.snapshot.log_data();
            let columns = ColumnStats::read(&log, &self.schema);
            log.iter()
                .enumerate()
                .map(|(i, file)| {
                    let size = u64::try_from(file.size()).unwrap_or_default();
                    let mut part = PartitionedFile::new_from_meta(ObjectMeta {
                        location: file.object_store_path(),
                        last_modified: chrono::DateTime::UNIX_EPOCH,
                        size,
                        e_tag: None,
                        version: None,
                    });
                    let rows = file
                        .num_records()
                        .map_or(Precision::Absent, Precision::Exact);
                    part.statistics = Some(Arc::new(Statistics {
                        num_rows: rows,
                        total_byte_size: Precision::Inexact(size as usize),
                        column_statistics: columns.iter().map(|c| c.of_file(i)).collect(),
                    }));
                    part
                })
                .collect()
        })
    }
}

/// A column's per-file statistics from the Delta log, kept where they are exact.
struct ColumnStats {
    min: Option<ArrayRef>,
    max: Option<ArrayRef>,
    nulls: Option<ArrayRef>,
}

impl ColumnStats {
    fn read(log: &impl PruningStatistics, schema: &SchemaRef) -> Vec<Self> {
        schema
            .fields()
            .iter()
            .map(|field| {
                let column = Column::new_unqualified(field.name());
                // The log's min/max equal the file's extremes only for these types: strings may
                // be truncated, timestamps' maxima are rounded up to the millisecond, and a
                // float's extremes leave out NaN, which DataFusion orders above every number
                // (`max(x)` answered from them would be wrong).
                let exact = matches!(
                    field.data_type(),
                    DataType::Int8
                        | DataType::Int16
                        | DataType::Int32
                        | DataType::Int64
                        | DataType::Date32
                        | DataType::Boolean
                );
                Self {
                    min: exact.then(|| log.min_values(&column)).flatten(),
                    max: exact.then(|| log.max_values(&column)).flatten(),
                    nulls: log.null_counts(&column),
                }
            })
            .collect()
    }

    /// File `i`'s statistics; a value the log lacks (NULL) is unknown.
    fn of_file(&self, i: usize) -> ColumnStatistics {
        let value = |a: &Option<ArrayRef>| {
            a.as_ref()
                .filter(|a| i < a.len() && a.is_valid(i))
                .and_then(|a| ScalarValue::try_from_array(a, i).ok())
        };
        let mut stats = ColumnStatistics::new_unknown();
        if let (Some(min), Some(max)) = (value(&self.min), value(&self.max)) {
            stats.min_value = Precision::Exact(min);
            stats.max_value = Precision::Exact(max);
        }
        if let Some(ScalarValue::UInt64(Some(n))) = value(&self.nulls) {
            stats.null_count = Precision::Exact(n as usize);
        }
        stats
    }
}

#[async_trait]
impl TableProvider for SnapshotScan {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters stay above the scan; DataFusion pushes them into the Parquet source, which
        // prunes files, row groups and pages with them and filters rows while decoding.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    fn statistics(&self) -> Option<Statistics> {
        let rows = self.files().iter().try_fold(0usize, |sum, f| {
            match f.statistics.as_ref().map(|s| s.num_rows) {
                Some(Precision::Exact(n)) => Some(sum + n),
                _ => None,
            }
        });
        Some(Statistics {
            num_rows: rows.map_or(Precision::Absent, Precision::Exact),
            ..Statistics::new_unknown(&self.schema)
        })
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let options = TableParquetOptions {
            global: state.config_options().execution.parquet.clone(),
            ..Default::default()
        };
        let store = state.runtime_env().object_store(&self.store_url)?;
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        let source = ParquetSource::new(self.schema.clone())
            .with_table_parquet_options(options)
            .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(
                store, cache,
            )))
            .with_pushdown_filters(true);
        let partitions = state.config().target_partitions().max(1);
        let groups = FileGroup::new(self.files().to_vec()).split_files(partitions);
        let (groups, statistics) =
            compute_all_files_statistics(groups, self.schema.clone(), true, false)?;
        let config = FileScanConfigBuilder::new(self.store_url.clone(), Arc::new(source))
            .with_file_groups(groups)
            .with_statistics(statistics)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
