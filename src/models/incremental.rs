//! Incremental models: recompute every partition whose inputs changed since the last build, audit
//! the table as it would be, and replace exactly those partitions in one commit.
//!
//! A partition (`-- partition_by: symbol`) is recomputed whole when any row carrying its value in
//! a partitioned input (one with the partition columns and `ingested_at`) was ingested at or after
//! the previous build started — a new day, a late day or a revision of any age — or when it
//! disappeared from the inputs. An unpartitioned input (a seed, a view, another mart) whose
//! fingerprint moved since the last build makes the build a full one. The result therefore
//! always equals a full refresh on the same inputs (`tests/it/incremental.rs` checks it on random
//! update sequences). Builds and ingests must not overlap (the job lease sees to it for jobs): a
//! row whose ingest started before a build but committed after it was read would be missed.

use std::collections::{BTreeSet, HashMap};

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use sha2::{Digest, Sha256};

use super::build::{collect, stage_and_audit};
use super::spec::Model;
use crate::lake::model_state::ModelState;
use crate::lake::{Lake, TableName, WriteMode};

/// How a model's inputs are tracked.
struct Inputs {
    /// Inputs that carry the partition columns and `ingested_at`.
    partitioned: Vec<TableName>,
    /// Every other input → its fingerprint.
    fingerprints: HashMap<String, String>,
}

fn df_err(m: &Model) -> impl Fn(datafusion::error::DataFusionError) -> String + '_ {
    move |e| format!("{}: DataFusion: {e}", m.path.display())
}

async fn classify(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
) -> Result<Inputs, String> {
    let mut out = Inputs {
        partitioned: Vec::new(),
        fingerprints: HashMap::new(),
    };
    for input in inputs {
        let schema = ctx
            .table(input.to_string())
            .await
            .map_err(df_err(m))?
            .schema()
            .clone();
        let has = |c: &str| schema.has_column_with_unqualified_name(c);
        if has("ingested_at") && m.partition_by.iter().all(|c| has(c)) {
            out.partitioned.push(input.clone());
            continue;
        }
        let print = match lake.version(input).await.map_err(|e| e.to_string())? {
            Some(v) => format!("version {v}"),
            None => {
                let rows = collect(ctx, &format!("SELECT * FROM {input}"))
                    .await
                    .map_err(df_err(m))?;
                let text = pretty_format_batches(&rows).map_err(|e| e.to_string())?;
                format!("sha256 {}", hex::encode(Sha256::digest(text.to_string())))
            }
        };
        out.fingerprints.insert(input.to_string(), print);
    }
    Ok(out)
}

/// The key of a partition as text, one value per partition column.
type Partition = Vec<String>;

async fn partitions(
    ctx: &SessionContext,
    m: &Model,
    sql: String,
) -> Result<BTreeSet<Partition>, String> {
    let mut out = BTreeSet::new();
    for b in collect(ctx, &sql).await.map_err(df_err(m))? {
        let cols: Vec<StringArray> = (0..b.num_columns())
            .map(|i| {
                datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8)
                    .map_err(|e| e.to_string())
                    .map(|a| {
                        a.as_any()
                            .downcast_ref::<StringArray>()
                            .cloned()
                            .expect("cast to Utf8")
                    })
            })
            .collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            out.insert(
                cols.iter()
                    .map(|c| {
                        if c.is_null(r) {
                            String::new()
                        } else {
                            c.value(r).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// A SQL predicate matching the given partitions.
fn predicate(columns: &[String], parts: &BTreeSet<Partition>) -> String {
    let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
    if columns.len() == 1 {
        let list: Vec<String> = parts.iter().map(|p| quote(&p[0])).collect();
        return format!("\"{}\" IN ({})", columns[0], list.join(", "));
    }
    parts
        .iter()
        .map(|p| {
            let conds: Vec<String> = columns
                .iter()
                .zip(p)
                .map(|(c, v)| format!("\"{c}\" = {}", quote(v)))
                .collect();
            format!("({})", conds.join(" AND "))
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Records what a build of `m` (started at `started`) read, after it published.
pub(super) async fn record_state(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
    started: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let classified = classify(lake, ctx, m, inputs).await?;
    let state = ModelState {
        built_at: Some(started),
        inputs: classified.fingerprints,
    };
    lake.set_model_state(&m.name, &state)
        .await
        .map_err(|e| e.to_string())
}

/// An incremental build. `Ok(None)`: the model needs a full build (it never built, or an
/// unpartitioned input changed).
pub(super) async fn build_incremental(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
    custom: Option<&Vec<(std::path::PathBuf, String)>>,
    reference: chrono::NaiveDate,
) -> Result<Option<usize>, String> {
    let started = Lake::now();
    let previous = lake.model_state(&m.name).await.map_err(|e| e.to_string())?;
    let Some(built_at) = previous.built_at else {
        return Ok(None);
    };
    let classified = classify(lake, ctx, m, inputs).await?;
    if classified
        .fingerprints
        .iter()
        .any(|(k, v)| previous.inputs.get(k) != Some(v))
    {
        tracing::info!(model = %m.name, "an unpartitioned input changed: full build");
        return Ok(None);
    }
    let cols = m
        .partition_by
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let since = format!(
        "arrow_cast({}, 'Timestamp(Microsecond, Some(\"UTC\"))')",
        built_at.timestamp_micros()
    );
    let mut changed = BTreeSet::new();
    let mut present = BTreeSet::new();
    for input in &classified.partitioned {
        let sql = format!("SELECT DISTINCT {cols} FROM {input} WHERE ingested_at >= {since}");
        changed.extend(partitions(ctx, m, sql).await?);
        present.extend(partitions(ctx, m, format!("SELECT DISTINCT {cols} FROM {input}")).await?);
    }
    let stored = partitions(ctx, m, format!("SELECT DISTINCT {cols} FROM {}", m.name)).await?;
    changed.extend(stored.difference(&present).cloned());
    if changed.is_empty() {
        record_state(lake, ctx, m, inputs, started).await?;
        return Ok(Some(0));
    }
    tracing::info!(model = %m.name, partitions = changed.len(), "recomputing changed partitions");
    let pred = predicate(&m.partition_by, &changed);
    let body = m.sql.trim().trim_end_matches(';');
    let window = collect(
        ctx,
        &format!("SELECT * FROM ({body}) AS model WHERE {pred}"),
    )
    .await
    .map_err(df_err(m))?;
    let kept = collect(ctx, &format!("SELECT * FROM {} WHERE NOT ({pred})", m.name))
        .await
        .map_err(df_err(m))?;
    let schema = match window.first() {
        Some(b) => b.schema(),
        None => ctx
            .sql(body)
            .await
            .map_err(df_err(m))?
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
    stage_and_audit(ctx, m, custom, reference, schema.clone(), candidate).await?;
    let rows: usize = window.iter().map(RecordBatch::num_rows).sum();
    let batches = if window.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        window
    };
    lake.write(&m.name, batches, WriteMode::ReplaceWhere(pred))
        .await
        .map_err(|e| e.to_string())?;
    record_state(lake, ctx, m, inputs, started).await?;
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_quote_values() {
        let one = BTreeSet::from([vec!["BTC-USD".to_string()], vec!["O'X".to_string()]]);
        assert_eq!(
            predicate(&["symbol".into()], &one),
            "\"symbol\" IN ('BTC-USD', 'O''X')"
        );
        let two = BTreeSet::from([vec!["a".to_string(), "b".to_string()]]);
        assert_eq!(
            predicate(&["x".into(), "y".into()], &two),
            "(\"x\" = 'a' AND \"y\" = 'b')"
        );
    }
}
