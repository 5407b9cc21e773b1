//! A DataFusion session over the lake: every table registered as `staging.<t>`, `marts.<t>`,
//! `meta.<t>`, optionally as of a past version or time, plus the SQL views connectors define.

use datafusion::arrow::datatypes::Date32Type;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use super::{Lake, LakeError, Result, TableName, Zone};

/// Each zone's schema of a session.
type ZoneSchemas = Vec<(Zone, Arc<MemorySchemaProvider>)>;

/// How many tables' Delta logs a session reads at once.
const TABLES_LOADED_AT_ONCE: usize = 8;

/// A point in a table's history for time travel (`--as-of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    /// A Delta version number (applies to every table that has it).
    Version(u64),
    /// The newest version committed at or before this time.
    Timestamp(DateTime<Utc>),
}

impl FromStr for AsOf {
    type Err = String;

    /// Accepts a version number (`3`), an RFC 3339 time (`2026-06-05T12:00:00Z`) or a date
    /// (`2026-06-05`, meaning the end of that day, UTC).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(v) = s.parse::<u64>() {
            return Ok(AsOf::Version(v));
        }
        if let Ok(ts) = DateTime::parse_from_rfc3339(s) {
            return Ok(AsOf::Timestamp(ts.with_timezone(&Utc)));
        }
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let end = day.and_hms_milli_opt(23, 59, 59, 999).expect("valid time");
            return Ok(AsOf::Timestamp(end.and_utc()));
        }
        Err(format!(
            "{s:?} is neither a version number, an RFC 3339 timestamp nor a YYYY-MM-DD date"
        ))
    }
}

/// A SQL view registered in every session once its input table exists.
#[derive(Debug, Clone)]
pub struct ViewDef {
    /// The view's name.
    pub name: TableName,
    /// The table it reads; the view is registered only when that table exists.
    pub requires: TableName,
    /// Its `SELECT`.
    pub sql: String,
    /// One line saying what it is.
    pub description: &'static str,
}

/// A session with the lake's tables registered.
pub struct QuerySession {
    /// The DataFusion context; run SQL with `ctx.sql(..)`.
    pub ctx: SessionContext,
    /// Each registered table with the version it was registered at.
    pub tables: Vec<(TableName, Option<u64>)>,
}

impl Lake {
    /// A table's DataFusion provider (at `as_of`, else the newest version) and its version; the
    /// table's object store is registered with `state`'s runtime.
    pub async fn provider(
        &self,
        name: &TableName,
        as_of: Option<&AsOf>,
        state: &datafusion::execution::SessionState,
    ) -> Result<(Arc<dyn datafusion::catalog::TableProvider>, Option<u64>)> {
        let (provider, version, _) = self.provider_with_rows(name, as_of, state).await?;
        Ok((provider, version))
    }

    /// Like [`Lake::provider`], plus the table's row count from its files' statistics (`None`
    /// when a file has none).
    pub async fn provider_with_rows(
        &self,
        name: &TableName,
        as_of: Option<&AsOf>,
        state: &datafusion::execution::SessionState,
    ) -> Result<(
        Arc<dyn datafusion::catalog::TableProvider>,
        Option<u64>,
        Option<usize>,
    )> {
        let table = self.load(name, as_of).await?;
        let rows = table.snapshot().ok().and_then(|s| {
            s.log_data()
                .iter()
                .map(|f| f.num_records())
                .sum::<Option<usize>>()
        });
        table
            .update_datafusion_session(state)
            .map_err(|source| LakeError::Delta {
                table: name.clone(),
                action: "register",
                source: Box::new(source),
            })?;
        let delta = table
            .table_provider()
            .await
            .map_err(|source| LakeError::DataFusion {
                context: format!("registering {name}"),
                source: Box::new(source),
            })?;
        // Plain Parquet scans over the version's files where the table allows (the same schema
        // as deltalake's provider), else deltalake's own.
        let provider: Arc<dyn datafusion::catalog::TableProvider> =
            match super::snapshot_scan::snapshot_provider(&table, delta.schema(), state) {
                Some(scan) => Arc::new(scan),
                None => Arc::new(super::limit::KeepLimit(delta)),
            };
        Ok((provider, table.version(), rows))
    }

    /// Builds a query session over every lake table (at `as_of` when given) and the views.
    pub async fn session(&self, as_of: Option<&AsOf>, views: &[ViewDef]) -> Result<QuerySession> {
        self.session_known_on(as_of, views, None).await
    }

    /// Like [`Lake::session`], but with `known_on` every staging table shows only the rows public
    /// by that day's cut-off (`known_on(available_at) <= day`): the inputs as they were that day.
    pub async fn session_known_on(
        &self,
        as_of: Option<&AsOf>,
        views: &[ViewDef],
        known_on: Option<NaiveDate>,
    ) -> Result<QuerySession> {
        let tables = self.tables().await?;
        self.open_session(as_of, views, known_on, tables).await
    }

    /// A session with only those of `tables` that exist, at their newest versions, and the
    /// views whose input is among them: for a reader of a few tables (a connector's look at what
    /// it stored), which need not load every table's log (a few ms a table on a local disk, a
    /// round trip per log file on S3).
    pub async fn session_of(
        &self,
        tables: &[TableName],
        views: &[ViewDef],
    ) -> Result<QuerySession> {
        let mut found = Vec::new();
        for table in tables {
            if !found.contains(table) && self.exists(table).await? {
                found.push(table.clone());
            }
        }
        found.sort();
        self.open_session(None, views, None, found).await
    }

    /// A query session with macrolake's functions and one empty schema per zone.
    fn query_context(&self) -> Result<(SessionContext, ZoneSchemas)> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        // Planning errors carry the SQL's line and column (a model's error names its line).
        config.options_mut().sql_parser.collect_spans = true;
        let ctx = self.context(config)?;
        ctx.register_udf(crate::lake::availability::known_on_udf(self.cutoff));
        ctx.register_udaf(super::product::udaf());
        let catalog = ctx.catalog("datafusion").expect("default catalog exists");
        let mut schemas = Vec::new();
        for zone in Zone::ALL {
            let schema = Arc::new(MemorySchemaProvider::new());
            catalog
                .register_schema(zone.as_str(), schema.clone())
                .map_err(|source| LakeError::DataFusion {
                    context: format!("registering schema {}", zone.as_str()),
                    source: Box::new(source),
                })?;
            schemas.push((zone, schema));
        }
        Ok((ctx, schemas))
    }

    /// A session with `tables` registered (see [`Lake::session_known_on`]) and the views whose
    /// input is among them.
    async fn open_session(
        &self,
        as_of: Option<&AsOf>,
        views: &[ViewDef],
        known_on: Option<NaiveDate>,
        names: Vec<TableName>,
    ) -> Result<QuerySession> {
        let (ctx, schemas) = self.query_context()?;
        let mut tables = Vec::new();
        // Every table's log is read at once (each load waits on the store: a round trip per
        // file on S3), then registered in name order.
        let state = ctx.state();
        let loads = futures::stream::iter(names)
            .map(|name| {
                let state = &state;
                async move {
                    let found = self.provider(&name, as_of, state).await;
                    (name, found)
                }
            })
            .buffered(TABLES_LOADED_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        for (name, found) in loads {
            let (provider, version) = match found {
                Ok(found) => found,
                Err(LakeError::Delta { source, .. }) if as_of.is_some() => {
                    tracing::warn!(table = %name, error = %source, "table has no version at --as-of; not visible");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let provider = match known_on {
                Some(day) if name.zone == Zone::Staging => {
                    truncate(&ctx, provider, day, self.cutoff).map_err(|source| {
                        LakeError::DataFusion {
                            context: format!("truncating {name} to {day}"),
                            source: Box::new(source),
                        }
                    })?
                }
                _ => provider,
            };
            let schema = &schemas
                .iter()
                .find(|(z, _)| *z == name.zone)
                .expect("every zone")
                .1;
            schema
                .register_table(name.name.clone(), provider)
                .map_err(|source| LakeError::DataFusion {
                    context: format!("registering {name}"),
                    source: Box::new(source),
                })?;
            tables.push((name, version));
        }
        for view in views {
            if !tables.iter().any(|(t, _)| *t == view.requires) {
                continue;
            }
            let sql = format!("CREATE VIEW {} AS {}", view.name, view.sql);
            collect_sql(&ctx, &sql, &format!("creating view {}", view.name)).await?;
        }
        Ok(QuerySession { ctx, tables })
    }
}

impl Lake {
    /// A DataFusion context with `config`, its queries within `[lake] memory_limit_mb` (see
    /// [`spilling_runtime`]) unless the limit is off.
    pub(super) fn context(&self, config: SessionConfig) -> Result<SessionContext> {
        let config = query_config(config);
        Ok(match self.memory_limit {
            Some(bytes) => SessionContext::new_with_config_rt(config, spilling_runtime(bytes)?),
            None => SessionContext::new_with_config(config),
        })
    }
}

/// `config` with the options every query over the lake runs with: DataFusion's, except the
/// dynamic filter an aggregate's running MIN/MAX pushes into the Parquet scan, which is off. It
/// prunes row groups by footer statistics that leave NaN out (a file holding NaN and 1.0 claims
/// a maximum of 1.0), and over files from before a column was added it can lose its bound to a
/// typed NULL (apache/datafusion#24804, #25147): `max(x)` came back wrong or right depending on
/// which partition finished first.
pub fn query_config(mut config: SessionConfig) -> SessionConfig {
    config
        .options_mut()
        .optimizer
        .enable_aggregate_dynamic_filter_pushdown = false;
    config
}

/// A runtime whose queries share `bytes` fairly among the operators that can spill (sorts,
/// aggregations, joins), which write to the temporary folder beyond it; an error names the
/// largest consumers.
fn spilling_runtime(bytes: usize) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(bytes),
        std::num::NonZeroUsize::new(3).expect("3 > 0"),
    );
    datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()
        .map_err(|source| LakeError::DataFusion {
            context: "starting the query runtime ([lake] memory_limit_mb)".to_string(),
            source: Box::new(source),
        })
}

/// `e`, and when a query ran out of its session's memory, which setting bounds it: the user
/// sees what to raise.
pub fn memory_hint(
    ctx: &SessionContext,
    e: datafusion::error::DataFusionError,
) -> datafusion::error::DataFusionError {
    use datafusion::error::DataFusionError;
    use datafusion::execution::memory_pool::MemoryLimit;
    if !matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
        return e;
    }
    match ctx.runtime_env().memory_pool.memory_limit() {
        MemoryLimit::Finite(bytes) => DataFusionError::ResourcesExhausted(format!(
            "{e}\nthe query needs more memory than [lake] memory_limit_mb = {} allows for what \
             it cannot spill to disk: raise memory_limit_mb in macrolake.toml (0 = no limit)",
            bytes >> 20
        )),
        _ => e,
    }
}

/// The rows of a staging table public by `day`'s cut-off (all rows when it has no `available_at`).
fn truncate(
    ctx: &SessionContext,
    provider: Arc<dyn datafusion::catalog::TableProvider>,
    day: NaiveDate,
    cutoff: crate::lake::availability::Cutoff,
) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::prelude::{col, lit};
    if provider.schema().index_of("available_at").is_err() {
        return Ok(provider);
    }
    let known = crate::lake::availability::known_on_udf(cutoff).call(vec![col("available_at")]);
    let day = datafusion::scalar::ScalarValue::Date32(Some(Date32Type::from_naive_date(day)));
    let df = ctx.read_table(provider)?.filter(known.lt_eq(lit(day)))?;
    Ok(df.into_view())
}

/// Runs `sql` on `ctx` and collects its rows; a failure says it happened while `context`.
pub async fn collect_sql(
    ctx: &SessionContext,
    sql: &str,
    context: &str,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    let df_err = |source| LakeError::DataFusion {
        context: context.to_string(),
        source: Box::new(source),
    };
    ctx.sql(sql)
        .await
        .map_err(df_err)?
        .collect()
        .await
        .map_err(df_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_forms() {
        assert_eq!("3".parse::<AsOf>().unwrap(), AsOf::Version(3));
        assert!(matches!(
            "2026-06-05T12:00:00Z".parse::<AsOf>().unwrap(),
            AsOf::Timestamp(_)
        ));
        let AsOf::Timestamp(ts) = "2026-06-05".parse::<AsOf>().unwrap() else {
            panic!()
        };
        assert_eq!(ts.to_rfc3339(), "2026-06-05T23:59:59.999+00:00");
        assert!("yesterday".parse::<AsOf>().is_err());
        assert!("-1".parse::<AsOf>().is_err());
    }

    #[tokio::test]
    async fn a_session_of_some_tables_registers_those_that_exist_and_their_views() {
        use datafusion::arrow::array::{Int64Array, RecordBatch};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let lake = Lake::open("memory://", false).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let rows = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]);
        let rows = rows.unwrap();
        let (a, b) = (TableName::staging("a"), TableName::staging("b"));
        for t in [&a, &b] {
            let rows = vec![rows.clone()];
            lake.write(t, rows, crate::lake::WriteMode::Append)
                .await
                .unwrap();
        }
        let view = |requires: &TableName, name: &str| ViewDef {
            name: TableName::staging(name),
            requires: requires.clone(),
            sql: format!("SELECT n * 10 AS n FROM {requires}"),
            description: "",
        };
        let views = [view(&a, "a_view"), view(&b, "b_view")];
        let missing = TableName::staging("missing");
        let s = lake
            .session_of(&[a.clone(), missing, a.clone()], &views)
            .await;
        let s = s.unwrap();
        assert_eq!(s.tables, vec![(a.clone(), Some(0))], "only a, once");
        let sum = |sql: &str| {
            let ctx = s.ctx.clone();
            let sql = sql.to_string();
            async move { collect_sql(&ctx, &sql, "test").await }
        };
        let out = sum("SELECT sum(n) FROM staging.a_view").await.unwrap();
        let total = out[0].column(0).as_any().downcast_ref::<Int64Array>();
        assert_eq!(total.unwrap().value(0), 30);
        assert!(
            sum("SELECT * FROM staging.b").await.is_err(),
            "b not registered"
        );
        assert!(
            sum("SELECT * FROM staging.b_view").await.is_err(),
            "nor its view"
        );
    }

    /// The vendored SQL planner skips its UNNEST rewrite for a select list without UNNEST
    /// (vendor/datafusion-sql): a list that has one, a list unnest beside plain columns, a
    /// struct unnest and one under GROUP BY, must still be planned and run.
    #[tokio::test]
    async fn unnest_is_still_planned_beside_the_select_list_shortcut() {
        use datafusion::arrow::array::{Int64Array, RecordBatch};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::arrow::util::pretty::pretty_format_batches;
        let lake = Lake::open("memory://", false).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let rows = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]);
        let t = TableName::staging("t");
        let mode = crate::lake::WriteMode::Append;
        lake.write(&t, vec![rows.unwrap()], mode).await.unwrap();
        let s = lake
            .session_of(std::slice::from_ref(&t), &[])
            .await
            .unwrap();
        let run = |sql: &'static str| {
            let ctx = s.ctx.clone();
            async move {
                let out = collect_sql(&ctx, sql, "test").await.unwrap();
                pretty_format_batches(&out).unwrap().to_string()
            }
        };
        let list = run("SELECT n, unnest(make_array(n, n * 10)) AS u FROM staging.t ORDER BY n, u");
        let want = "+---+----+\n| n | u  |\n+---+----+\n| 1 | 1  |\n| 1 | 10 |\n\
                    | 2 | 2  |\n| 2 | 20 |\n+---+----+";
        assert_eq!(list.await, want);
        // A struct unnest becomes one column per field.
        let sql = "SELECT unnest(named_struct('a', n, 'b', n + 10)) FROM staging.t";
        let fields = collect_sql(&s.ctx, sql, "test").await.unwrap();
        assert_eq!(fields[0].num_columns(), 2, "{:?}", fields[0].schema());
        let cells = pretty_format_batches(&fields).unwrap().to_string();
        assert!(cells.contains("| 1 ") && cells.contains("| 12 "), "{cells}");
        let grouped = run(
            "SELECT unnest(make_array(n % 2, 5)) AS g, count(*) AS c FROM staging.t \
                           GROUP BY unnest(make_array(n % 2, 5)) ORDER BY g",
        );
        let want = "+---+---+\n| g | c |\n+---+---+\n| 0 | 1 |\n| 1 | 1 |\n| 5 | 2 |\n+---+---+";
        assert_eq!(grouped.await, want);
        let plain = run("SELECT n * 2 AS d, n FROM staging.t ORDER BY n").await;
        assert_eq!(
            plain,
            "+---+---+\n| d | n |\n+---+---+\n| 2 | 1 |\n| 4 | 2 |\n+---+---+"
        );
    }
}
