//! Running an incremental model's append query (`-- append_sql:`, see [`super::spec::Append`]):
//! the engine binds `append_after` to the partitions to extend and their last stored order value,
//! and `append_last` to those partitions' stored last rows (`super::last_rows`), runs the
//! query, conforms its rows to the model's columns and checks that each one extends a listed
//! partition after its last stored row, so an append never rewrites or duplicates a stored row.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;

use super::session::{bind, collect};
use super::spec::Append;

/// The name the append query reads its partitions from.
pub const AFTER_TABLE: &str = "append_after";
/// The name the append query reads the stored last rows of those partitions from.
pub const LAST_TABLE: &str = "append_last";
/// The name the check binds the appended rows to.
const ROWS_TABLE: &str = "append_rows";

/// The append query's new rows for the partitions in `after` (rows of `append_after`), whose
/// stored last rows are `last` (rows of `append_last`).
pub(super) async fn rows(
    ctx: &SessionContext,
    a: &Append,
    partition_by: &[String],
    schema: &SchemaRef,
    after: Vec<RecordBatch>,
    last: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>, String> {
    let err =
        |e: datafusion::error::DataFusionError| format!("{}: DataFusion: {e}", a.path.display());
    let last_schema = last.first().map(RecordBatch::schema);
    let last_schema = last_schema.unwrap_or_else(|| schema.clone());
    bind(ctx, AFTER_TABLE, after[0].schema(), after).map_err(err)?;
    bind(ctx, LAST_TABLE, last_schema, last).map_err(err)?;
    let result = async {
        let clock = std::time::Instant::now();
        let out = collect(ctx, &a.sql).await.map_err(err)?;
        let out = conform(a, schema, out)?;
        let computed_s = clock.elapsed().as_secs_f64();
        check(ctx, a, partition_by, schema, &out).await?;
        tracing::debug!(query = %a.path.display(), computed_s, checked_s = clock.elapsed().as_secs_f64() - computed_s, "append query ran and its rows checked");
        Ok(out)
    }
    .await;
    ctx.deregister_table(AFTER_TABLE).map_err(err)?;
    ctx.deregister_table(LAST_TABLE).map_err(err)?;
    result
}

/// Plans the append query against an empty `append_after` shaped after the model's columns
/// (`schema`): a SQL error, or columns other than the model's, stop the build before anything
/// is written.
pub(super) async fn plan(
    ctx: &SessionContext,
    a: &Append,
    partition_by: &[String],
    schema: &SchemaRef,
) -> Result<(), String> {
    let field = |name: &str| {
        schema
            .field_with_name(name)
            .map(|f| f.as_ref().clone())
            .map_err(|_| format!("the model has no column {name}"))
    };
    let mut fields = partition_by
        .iter()
        .map(|c| field(c))
        .collect::<Result<Vec<_>, String>>()?;
    fields.push(field(&a.order_by)?.with_name(a.last_column()));
    let after = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    let err = |e: datafusion::error::DataFusionError| format!("DataFusion: {e}");
    bind(ctx, AFTER_TABLE, after, Vec::new()).map_err(err)?;
    bind(ctx, LAST_TABLE, schema.clone(), Vec::new()).map_err(err)?;
    let planned = ctx.sql(&a.sql).await;
    ctx.deregister_table(AFTER_TABLE).map_err(err)?;
    ctx.deregister_table(LAST_TABLE).map_err(err)?;
    let names = |s: &datafusion::arrow::datatypes::Schema| {
        s.fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    let got = names(planned.map_err(err)?.schema().as_arrow());
    let want = names(schema);
    let mut sorted = (got.clone(), want.clone());
    sorted.0.sort();
    sorted.1.sort();
    if sorted.0 != sorted.1 {
        return Err(format!(
            "the append query returns columns ({}), the model ({})",
            got.join(", "),
            want.join(", ")
        ));
    }
    Ok(())
}

/// The rows with the model's columns, in its order and types.
fn conform(
    a: &Append,
    schema: &SchemaRef,
    out: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>, String> {
    out.into_iter()
        .map(|b| {
            if b.num_columns() != schema.fields().len() {
                return Err(format!(
                    "{}: the append query returns {} columns, the model {} ({})",
                    a.path.display(),
                    b.num_columns(),
                    schema.fields().len(),
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let cols = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = b.column_by_name(f.name()).ok_or(format!(
                        "{}: the append query returns no column {} (the model does)",
                        a.path.display(),
                        f.name()
                    ))?;
                    datafusion::arrow::compute::cast(c, f.data_type())
                        .map_err(|e| format!("{}: column {}: {e}", a.path.display(), f.name()))
                })
                .collect::<Result<Vec<_>, String>>()?;
            RecordBatch::try_new(schema.clone(), cols)
                .map_err(|e| format!("{}: {e}", a.path.display()))
        })
        .collect()
}

/// Fails unless every row belongs to a partition of `append_after` and comes after its last
/// stored order value.
async fn check(
    ctx: &SessionContext,
    a: &Append,
    partition_by: &[String],
    schema: &SchemaRef,
    out: &[RecordBatch],
) -> Result<(), String> {
    let err =
        |e: datafusion::error::DataFusionError| format!("{}: DataFusion: {e}", a.path.display());
    bind(ctx, ROWS_TABLE, schema.clone(), out.to_vec()).map_err(err)?;
    let on: Vec<String> = partition_by
        .iter()
        .map(|c| format!("o.\"{c}\" = a.\"{c}\""))
        .collect();
    let shown: Vec<String> = partition_by
        .iter()
        .chain([&a.order_by])
        .map(|c| format!("o.\"{c}\""))
        .collect();
    let (order, last) = (&a.order_by, a.last_column());
    let sql = format!(
        "SELECT {}, a.\"{last}\" FROM {ROWS_TABLE} o LEFT JOIN {AFTER_TABLE} a ON {} \
         WHERE a.\"{last}\" IS NULL OR o.\"{order}\" IS NULL OR o.\"{order}\" <= a.\"{last}\" LIMIT 5",
        shown.join(", "),
        on.join(" AND ")
    );
    let bad = collect(ctx, &sql).await;
    ctx.deregister_table(ROWS_TABLE).map_err(err)?;
    let bad = bad.map_err(err)?;
    if bad.iter().all(|b| b.num_rows() == 0) {
        return Ok(());
    }
    Err(format!(
        "{}: the append query returned rows that do not come after their partition's last stored \
         row (it must return only rows of the partitions in {AFTER_TABLE}, after its {last}); \
         up to 5:\n{}",
        a.path.display(),
        pretty_format_batches(&bad)
            .map(|t| t.to_string())
            .unwrap_or_default()
    ))
}
