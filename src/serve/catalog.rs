//! The server's DataFusion context: every lake table under `staging`/`marts`/`meta` (and the
//! SQL views), `pg_catalog` and `information_schema` for clients, PostgreSQL's `version()`, a
//! memory pool, and a refresher that swaps in new table versions as they are committed.
//!
//! Swapping replaces the table provider in the schema; a query already running holds the old
//! provider and finishes on the version it started with, so readers are never blocked.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;

use super::ServeError;
use crate::lake::{Lake, TableName, ViewDef, Zone};

/// Rows per batch of a table held in memory.
const MEMORY_BATCH_ROWS: usize = 1024;

/// What `version()`, `SHOW server_version` and the startup parameter report: PostgreSQL's
/// format, so tools that parse it (SQLAlchemy, Superset, Metabase) accept the server.
pub fn server_version() -> &'static str {
    "16.6"
}

/// The full `version()` string.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {} on x86_64-pc-linux-gnu, compiled by macrolake {} (Apache DataFusion {}), 64-bit",
        server_version(),
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION
    )
}

/// A schema whose tables can be replaced in place.
#[derive(Debug, Default)]
pub struct SwapSchema {
    tables: RwLock<BTreeMap<String, Arc<dyn TableProvider>>>,
}

#[async_trait]
impl SchemaProvider for SwapSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables
            .read()
            .expect("schema lock")
            .keys()
            .cloned()
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.tables.read().expect("schema lock").get(name).cloned())
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> datafusion::common::Result<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .tables
            .write()
            .expect("schema lock")
            .insert(name, table))
    }

    fn deregister_table(
        &self,
        name: &str,
    ) -> datafusion::common::Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.tables.write().expect("schema lock").remove(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.read().expect("schema lock").contains_key(name)
    }
}

impl SwapSchema {
    /// This provider as `Any` (for tests).
    pub fn as_any(&self) -> &dyn Any {
        self
    }

    /// Whether `provider` is one this schema serves now (not one it replaced).
    pub fn holds(&self, provider: &Arc<dyn TableProvider>) -> bool {
        self.tables
            .read()
            .expect("schema lock")
            .values()
            .any(|t| std::ptr::addr_eq(Arc::as_ptr(t), Arc::as_ptr(provider)))
    }
}

/// The server's context and what it last loaded.
pub struct LiveCatalog {
    lake: Lake,
    views: Vec<ViewDef>,
    /// The context every connection's statements are planned on (each runs on a copy with a
    /// pool of its own: [`super::sessions`]).
    pub ctx: Arc<SessionContext>,
    /// The memory all running statements share (`memory_limit_mb`).
    pub pool: Arc<dyn MemoryPool>,
    schemas: HashMap<Zone, Arc<SwapSchema>>,
    versions: tokio::sync::Mutex<BTreeMap<TableName, Option<u64>>>,
    memory_table_max_rows: usize,
    /// Answers to repeated queries, emptied whenever a new table version is swapped in.
    pub results: Arc<super::cache::ResultCache>,
}

fn df_err(context: &str) -> impl FnOnce(DataFusionError) -> ServeError + '_ {
    move |source| ServeError::DataFusion {
        context: context.to_string(),
        source: Box::new(source),
    }
}

impl LiveCatalog {
    /// Builds the context with the server's memory pool of `memory_limit_mb` and loads every
    /// table.
    pub async fn build(
        lake: &Lake,
        views: Vec<ViewDef>,
        memory_limit_mb: usize,
        memory_table_max_rows: usize,
        result_cache_mb: usize,
    ) -> Result<Self, ServeError> {
        let config = crate::lake::session::query_config(
            SessionConfig::new()
                .with_information_schema(true)
                .with_default_catalog_and_schema("datafusion", "public"),
        );
        // A hard cap: no spilling to the server's disk, so a runaway query fails fast with
        // "Resources exhausted" instead of filling /tmp; the pool is freed for the others.
        let pool = super::sessions::server_pool(memory_limit_mb.max(16));
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(pool.clone())
            .with_disk_manager_builder(
                datafusion::execution::disk_manager::DiskManagerBuilder::default()
                    .with_mode(datafusion::execution::disk_manager::DiskManagerMode::Disabled),
            )
            .with_object_store_registry(Arc::new(super::store::LakeOnlyRegistry::new(lake.root())))
            .build_arc()
            .map_err(df_err("creating the query runtime"))?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let catalog = ctx.catalog("datafusion").expect("default catalog exists");
        let mut schemas = HashMap::new();
        for zone in Zone::ALL {
            let schema = Arc::new(SwapSchema::default());
            catalog
                .register_schema(zone.as_str(), schema.clone())
                .map_err(df_err("registering schemas"))?;
            schemas.insert(zone, schema);
        }
        setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider)
            .map_err(|e| df_err("setting up pg_catalog")(*e))?;
        let version = version_string();
        ctx.register_udf(create_udf(
            "version",
            vec![],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(move |_| {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                    version.clone(),
                ))))
            }),
        ));
        super::functions::register(&ctx);
        let live = Self {
            lake: lake.clone(),
            views,
            ctx: Arc::new(ctx),
            pool,
            schemas,
            versions: Default::default(),
            memory_table_max_rows,
            results: Arc::new(super::cache::ResultCache::new(result_cache_mb)),
        };
        live.refresh().await?;
        Ok(live)
    }

    /// Loads tables whose version changed since the last call (and new tables); recreates the
    /// views when anything changed. Returns the tables swapped in.
    pub async fn refresh(&self) -> Result<Vec<TableName>, ServeError> {
        let mut versions = self.versions.lock().await;
        let mut changed = Vec::new();
        for name in self.lake.tables().await? {
            let known = versions.get(&name).copied().flatten();
            let current = self.lake.latest_version(&name, known).await?;
            if versions.get(&name) == Some(&current) {
                continue;
            }
            let (provider, version, rows) = self
                .lake
                .provider_with_rows(&name, None, &self.ctx.state())
                .await?;
            let provider = self.in_memory(&name, provider, rows).await;
            self.schemas[&name.zone]
                .register_table(name.name.clone(), provider)
                .map_err(df_err("swapping a table"))?;
            versions.insert(name.clone(), version);
            changed.push(name);
        }
        if !changed.is_empty() {
            for view in &self.views {
                if !versions.contains_key(&view.requires) {
                    continue;
                }
                let sql = format!("CREATE OR REPLACE VIEW {} AS {}", view.name, view.sql);
                let context = format!("creating view {}", view.name);
                crate::lake::collect_sql(&self.ctx, &sql, &context).await?;
            }
            // After every swap and view: an answer computed on the old versions (or on a mix)
            // is neither served nor kept from now on.
            self.results.invalidate();
        }
        Ok(changed)
    }

    /// Whether `provider` is a lake table or view being served now: a plan that scans a
    /// replaced one was made before a refresh, and one that scans anything else reads the
    /// catalogs.
    pub fn is_current(&self, provider: &Arc<dyn TableProvider>) -> bool {
        self.schemas.values().any(|s| s.holds(provider))
    }

    /// Whether a plan's scan of `table` through `provider` was planned before a refresh swapped
    /// that table (or view) for a newer version: a prepared statement keeps the providers it
    /// was planned with, so it must be planned again to see the new rows.
    pub fn is_replaced(
        &self,
        table: &datafusion::common::TableReference,
        provider: &Arc<dyn TableProvider>,
    ) -> bool {
        let zone_schemas = self
            .schemas
            .iter()
            .filter(|(zone, _)| table.schema().is_none_or(|s| s == zone.as_str()))
            .map(|(_, schema)| schema);
        let mut named = false;
        for schema in zone_schemas {
            if schema.holds(provider) {
                return false;
            }
            named |= schema.table_exist(table.table());
        }
        named
    }

    /// A table of at most `memory_table_max_rows` rows (by its files' Delta statistics) read once
    /// into memory, in its stored order: a dashboard query over it then costs no snapshot, file
    /// listing or Parquet footer. Larger tables (and tables without statistics) stay on their
    /// Delta provider, and so does a table that cannot be read now (logged; queries still work).
    async fn in_memory(
        &self,
        name: &TableName,
        provider: Arc<dyn TableProvider>,
        rows: Option<usize>,
    ) -> Arc<dyn TableProvider> {
        if rows.is_none_or(|r| r > self.memory_table_max_rows) {
            return provider;
        }
        let schema = provider.schema();
        // A plain scan: nothing is reserved from the query memory pool, which stays the clients'.
        let read = async {
            let batches = self.ctx.read_table(provider.clone())?.collect().await?;
            // Small batches over one partition per core, as a scan of the files would give:
            // operators then work (and can be cancelled between) batch by batch.
            let parts = self.ctx.state().config().target_partitions().max(1);
            let mut partitions = vec![Vec::new(); parts];
            let slices = batches.iter().flat_map(|b| {
                (0..b.num_rows())
                    .step_by(MEMORY_BATCH_ROWS)
                    .map(|at| b.slice(at, MEMORY_BATCH_ROWS.min(b.num_rows() - at)))
            });
            for (i, slice) in slices.enumerate() {
                partitions[i % parts].push(slice);
            }
            datafusion::datasource::MemTable::try_new(schema, partitions)
        };
        match read.await {
            Ok(table) => Arc::new(table),
            Err(e) => {
                tracing::warn!(table = %name, "reading into memory failed, serving from the lake: {e}");
                provider
            }
        }
    }

    /// Refreshes every `every` until the process ends; errors are logged and retried.
    pub fn spawn_refresher(self: &Arc<Self>, every: std::time::Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(live) = me.upgrade() else { return };
                match live.refresh().await {
                    Ok(changed) if !changed.is_empty() => {
                        tracing::info!(tables = ?changed.iter().map(|t| t.to_string()).collect::<Vec<_>>(), "new table versions visible");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("refreshing tables failed (will retry): {e}"),
                }
            }
        });
    }
}
