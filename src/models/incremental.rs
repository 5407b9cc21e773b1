//! Incremental models: recompute only the recent window, audit the table as it would be, MERGE.

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use super::build::{collect, stage_and_audit};
use super::spec::Model;
use crate::lake::{Lake, WriteMode};

/// An incremental build: recompute rows from the newest stored time minus the look-back, audit
/// the table as it would be (stored rows before the window + the new window), MERGE the window.
pub(super) async fn build_incremental(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    custom: Option<&Vec<(std::path::PathBuf, String)>>,
    reference: chrono::NaiveDate,
) -> Result<usize, String> {
    let time = m.time_column.as_deref().expect("checked when parsed");
    let df_err =
        |e: datafusion::error::DataFusionError| format!("{}: DataFusion: {e}", m.path.display());
    let newest = collect(
        ctx,
        &format!("SELECT CAST(max(\"{time}\") AS DATE) FROM {}", m.name),
    )
    .await
    .map_err(df_err)?;
    let newest = newest
        .first()
        .filter(|b| b.num_rows() == 1)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Date32Array>()
                .cloned()
        })
        .filter(|a| !datafusion::arrow::array::Array::is_null(a, 0))
        .map(|a| crate::lake::watermarks::days_to_date(a.value(0)));
    let Some(newest) = newest else {
        return Err(format!(
            "{}: {time} has no value in the stored table; run with --full-refresh",
            m.name
        ));
    };
    let start = newest - chrono::Duration::days(m.lookback_days as i64);
    let window = collect(
        ctx,
        &format!(
            "SELECT * FROM ({}) AS model WHERE \"{time}\" >= DATE '{start}'",
            m.sql.trim().trim_end_matches(';')
        ),
    )
    .await
    .map_err(df_err)?;
    let kept = collect(
        ctx,
        &format!("SELECT * FROM {} WHERE \"{time}\" < DATE '{start}'", m.name),
    )
    .await
    .map_err(df_err)?;
    let schema = match window.first() {
        Some(b) => b.schema(),
        None => ctx
            .sql(&m.sql)
            .await
            .map_err(df_err)?
            .schema()
            .inner()
            .clone(),
    };
    let mut candidate = Vec::with_capacity(kept.len() + window.len());
    for b in kept {
        let cols = schema
            .fields()
            .iter()
            .map(|f| {
                let c = b.column_by_name(f.name()).ok_or(format!(
                    "stored {} has no column {}: run with --full-refresh",
                    m.name,
                    f.name()
                ))?;
                datafusion::arrow::compute::cast(c, f.data_type()).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        candidate.push(RecordBatch::try_new(schema.clone(), cols).map_err(|e| e.to_string())?);
    }
    candidate.extend(window.iter().cloned());
    stage_and_audit(ctx, m, custom, reference, schema, candidate).await?;
    let mode = WriteMode::Merge {
        keys: m.unique_key.clone(),
        ignore: Vec::new(),
    };
    let outcome = lake
        .write(&m.name, window, mode)
        .await
        .map_err(|e| e.to_string())?;
    Ok(outcome.rows)
}
