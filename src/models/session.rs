//! Small helpers over the build's DataFusion session: run a query, (re)bind a table name.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use super::spec::Model;
use crate::lake::TableName;

/// Runs `sql` and collects its rows.
pub(super) async fn collect(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<RecordBatch>, datafusion::error::DataFusionError> {
    let run = async { ctx.sql(sql).await?.collect().await };
    run.await
        .map_err(|e| crate::lake::session::memory_hint(ctx, e))
}

/// Binds `name` to `provider` in the session, replacing what it named.
pub(super) fn register(
    ctx: &SessionContext,
    name: &TableName,
    provider: Arc<dyn datafusion::catalog::TableProvider>,
) -> Result<(), datafusion::error::DataFusionError> {
    let schema = ctx
        .catalog("datafusion")
        .and_then(|c| c.schema(name.zone.as_str()))
        .expect("zone schemas exist");
    schema.deregister_table(&name.name)?;
    schema.register_table(name.name.clone(), provider)?;
    Ok(())
}

/// Binds the bare name `name` to a table of `rows` (see [`mem_table`]), replacing what it named.
pub(super) fn bind(
    ctx: &SessionContext,
    name: &str,
    schema: datafusion::arrow::datatypes::SchemaRef,
    rows: Vec<RecordBatch>,
) -> Result<(), datafusion::error::DataFusionError> {
    let table = mem_table(ctx, schema, rows)?;
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}

/// A table of `rows` in one partition per core (scans, joins and GROUP BYs over it run in
/// parallel).
pub(super) fn mem_table(
    ctx: &SessionContext,
    schema: datafusion::arrow::datatypes::SchemaRef,
    rows: Vec<RecordBatch>,
) -> Result<datafusion::catalog::MemTable, datafusion::error::DataFusionError> {
    let parts = ctx.state().config().target_partitions().max(1);
    let mut partitions = vec![Vec::new(); parts];
    for (i, batch) in rows.into_iter().enumerate() {
        partitions[i % parts].push(batch);
    }
    datafusion::catalog::MemTable::try_new(schema, partitions)
}

/// Turns a DataFusion error into text that names the model's file.
pub(super) fn df_err(m: &Model) -> impl Fn(datafusion::error::DataFusionError) -> String + '_ {
    move |e| format!("{}: DataFusion: {e}", m.path.display())
}
