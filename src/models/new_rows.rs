//! An incremental build's new rows: the recomputed partitions' rows and the appended ones, and
//! the table as it would be with them (what the tests audit before anything is written).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::prelude::{SessionContext, cast, ident};

use super::changes::{Changes, predicate};
use super::lap::Lap;
use super::session::{collect, df_err, mem_table};
use super::spec::Model;
use super::step::Step;

/// The table as it would be after publishing `rows`: the stored rows outside `replaced`, cast to
/// the model's columns, and `rows`.
pub(super) async fn candidate(
    ctx: &SessionContext,
    m: &Model,
    schema: &SchemaRef,
    replaced: Option<&str>,
    rows: Vec<RecordBatch>,
) -> Result<Arc<dyn TableProvider>, String> {
    let err = df_err(m);
    let stored = ctx.table_provider(m.name.to_string()).await.map_err(&err)?;
    let mut kept = ctx.read_table(stored).map_err(&err)?;
    if let Some(p) = replaced {
        let e = kept.parse_sql_expr(p).map_err(&err)?;
        // Delta's replace-where deletes the rows where the predicate is true: the rest stays.
        kept = kept.filter(e.is_not_true()).map_err(&err)?;
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            if !kept.schema().has_column_with_unqualified_name(f.name()) {
                return Err(format!(
                    "stored {} has no column {}: run with --full-refresh",
                    m.name,
                    f.name()
                ));
            }
            Ok(cast(ident(f.name()), f.data_type().clone()).alias(f.name()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let new = ctx
        .read_table(Arc::new(
            mem_table(ctx, schema.clone(), rows).map_err(&err)?,
        ))
        .map_err(&err)?;
    let all = kept
        .select(columns)
        .map_err(&err)?
        .union(new)
        .map_err(&err)?;
    Ok(all.into_view())
}

/// The rows an incremental build publishes, and what they replace.
pub(super) struct NewRows {
    /// The recomputed partitions' rows, then the appended rows.
    pub(super) rows: Vec<RecordBatch>,
    /// Their schema (the computed rows' own: the plan's may differ in nullability).
    pub(super) schema: SchemaRef,
    /// The predicate of the recomputed partitions, when there are any.
    pub(super) replaced: Option<String>,
    /// The predicate of the appended rows, when there are any.
    pub(super) appended: Option<String>,
    /// The append query's order column, when rows were appended.
    pub(super) appended_after: Option<String>,
}

/// Computes the recomputed partitions' rows and the appended rows of `changes`.
pub(super) async fn new_rows(
    step: &Step<'_>,
    changes: Changes,
    lap: &Lap<'_>,
) -> Result<NewRows, String> {
    let (ctx, m) = (step.ctx, step.model);
    let appending: usize = changes.after.iter().map(RecordBatch::num_rows).sum();
    tracing::info!(
        model = %m.name,
        recomputed = changes.recompute.len(),
        appended = appending,
        "incremental build: partitions recomputed and extended"
    );
    let body = m.sql.trim().trim_end_matches(';');
    let replaced =
        (!changes.recompute.is_empty()).then(|| predicate(&m.partition_by, &changes.recompute));
    let mut rows = match &replaced {
        Some(pred) => collect(
            ctx,
            &format!("SELECT * FROM ({body}) AS model WHERE {pred}"),
        )
        .await
        .map_err(df_err(m))?,
        None => Vec::new(),
    };
    if replaced.is_some() {
        lap.at("recomputed partitions computed");
    }
    // The rows' own schema (the plan's may differ in nullability); appended rows conform to it.
    // Without rows, the schema the build planned (planning the SQL again took 10–20 ms).
    let schema = match (rows.first(), step.planned) {
        (Some(b), _) => b.schema(),
        (None, Some(planned)) => planned.clone(),
        (None, None) => ctx
            .sql(body)
            .await
            .map_err(df_err(m))?
            .schema()
            .inner()
            .clone(),
    };
    let appended_after = match &m.append {
        Some(a) if appending > 0 => {
            rows.extend(
                super::append::rows(
                    ctx,
                    a,
                    &m.partition_by,
                    &schema,
                    changes.after,
                    changes.last,
                )
                .await?,
            );
            Some(a.order_by.clone())
        }
        _ => None,
    };
    Ok(NewRows {
        rows,
        schema,
        replaced,
        appended: changes.appended,
        appended_after,
    })
}
