//! Incremental models: recompute every partition whose inputs changed since the last build, or
//! append to it when its only changes are rows after its last stored one, audit the table as it
//! would be, and publish exactly those changes in one commit.
//!
//! A partition (`-- partition_by: symbol`) is recomputed whole when any row carrying its value in
//! a partitioned input (one with the partition columns and `ingested_at`) was ingested at or after
//! the previous build started — a late day or a revision of any age — or when it disappeared from
//! the inputs. When the model declares an append query (`-- append_sql:`) and every such row of a
//! partition comes after the partition's last stored value of the order column (the nightly new
//! day), the partition is extended by the append query instead: the cost is that of the new rows,
//! not of the partition's history, and the commit only adds files. An unpartitioned input (a
//! seed, a view, another mart) whose fingerprint moved since the last build, or an edit of the
//! model's files, makes the build a full one. The result therefore always equals a full refresh
//! on the same inputs (`tests/it/incremental.rs` checks it on random update sequences). Builds
//! and ingests must not overlap (the job lease sees to it for jobs): a row whose ingest started
//! before a build but committed after it was read would be missed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::prelude::{SessionContext, cast, ident};

use super::audit::{Custom, Increment, audit_increment};
use super::fingerprint;
use super::session::{collect, mem_table};
use super::spec::Model;
use crate::lake::model_state::ModelState;
use crate::lake::{Lake, TableName, WriteMode};

/// How a model's inputs are tracked.
struct Inputs {
    /// Inputs that carry the partition columns and `ingested_at`.
    partitioned: Vec<TableName>,
    /// Every other input → its fingerprint; `model files` → a hash of the model's SQL (and its
    /// append query), so an edit makes a full build.
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
        fingerprints: HashMap::from([(
            fingerprint::FILES.to_string(),
            fingerprint::files(m, lake),
        )]),
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
        // An input that cannot be fingerprinted gets a print no build recorded: a full build.
        let print = fingerprint::input(lake, ctx, input)
            .await?
            .unwrap_or_else(|| format!("unknown {}", uuid::Uuid::new_v4()));
        out.fingerprints.insert(input.to_string(), print);
    }
    Ok(out)
}

/// The key of a partition as text, one value per partition column.
type Partition = Vec<String>;

/// The partition key of each row: its first `n` columns as text (NULL as the empty string).
fn row_keys(b: &RecordBatch, n: usize) -> Result<Vec<Partition>, String> {
    let cols: Vec<StringArray> = (0..n)
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
    Ok((0..b.num_rows())
        .map(|r| {
            cols.iter()
                .map(|c| {
                    if c.is_null(r) {
                        String::new()
                    } else {
                        c.value(r).to_string()
                    }
                })
                .collect()
        })
        .collect())
}

async fn partitions(
    ctx: &SessionContext,
    m: &Model,
    sql: String,
) -> Result<BTreeSet<Partition>, String> {
    let mut out = BTreeSet::new();
    for b in collect(ctx, &sql).await.map_err(df_err(m))? {
        out.extend(row_keys(&b, m.partition_by.len())?);
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

/// A SQL literal of a scalar (dates and timestamps typed, so Delta's predicate parser compares
/// them as such).
fn literal(v: &ScalarValue) -> String {
    let text = v.to_string().replace('\'', "''");
    match v.data_type() {
        DataType::Date32 | DataType::Date64 => format!("DATE '{text}'"),
        DataType::Timestamp(..) => format!("TIMESTAMP '{text}'"),
        t if t.is_numeric() => text,
        _ => format!("'{text}'"),
    }
}

/// What changed since the last build.
#[derive(Default)]
struct Changes {
    /// Partitions to recompute whole.
    recompute: BTreeSet<Partition>,
    /// The partitions to extend with the append query: `append_after` rows (partition columns and
    /// the last stored order value).
    after: Vec<RecordBatch>,
    /// The predicate matching the appended rows: per group of partitions with the same last
    /// stored value, `(<partition> IN (…) AND <order> > <last>)`.
    appended: Option<String>,
}

/// Keeps the smaller of two first-new values; `None` (not appendable) wins.
fn earliest(a: Option<ScalarValue>, b: Option<ScalarValue>) -> Option<ScalarValue> {
    match (a, b) {
        (Some(x), Some(y)) => match x.partial_cmp(&y)? {
            Ordering::Greater => Some(y),
            _ => Some(x),
        },
        _ => None,
    }
}

/// Per partition with rows ingested into `partitioned` since `since`: the smallest order value
/// among those rows (`None`: it cannot be appended to); and every partition present in them.
async fn new_in_inputs(
    ctx: &SessionContext,
    m: &Model,
    partitioned: &[TableName],
    cols: &str,
    since: &str,
) -> Result<
    (
        BTreeMap<Partition, Option<ScalarValue>>,
        BTreeSet<Partition>,
    ),
    String,
> {
    let n = m.partition_by.len();
    let order = m.append.as_ref().map(|a| a.order_by.as_str());
    let mut first_new: BTreeMap<Partition, Option<ScalarValue>> = BTreeMap::new();
    let mut present = BTreeSet::new();
    for input in partitioned {
        let schema = ctx.table(input.to_string()).await.map_err(df_err(m))?;
        match order.filter(|o| schema.schema().has_column_with_unqualified_name(o)) {
            Some(o) => {
                let sql = format!(
                    "SELECT {cols}, min(\"{o}\") FROM {input} WHERE ingested_at >= {since} GROUP BY {cols}"
                );
                for b in collect(ctx, &sql).await.map_err(df_err(m))? {
                    for (r, key) in row_keys(&b, n)?.into_iter().enumerate() {
                        let v = ScalarValue::try_from_array(b.column(n), r)
                            .map_err(|e| e.to_string())?;
                        let v = (!v.is_null()).then_some(v);
                        let merged = match first_new.remove(&key) {
                            Some(old) => earliest(old, v),
                            None => v,
                        };
                        first_new.insert(key, merged);
                    }
                }
            }
            None => {
                let sql =
                    format!("SELECT DISTINCT {cols} FROM {input} WHERE ingested_at >= {since}");
                for key in partitions(ctx, m, sql).await? {
                    first_new.insert(key, None);
                }
            }
        }
        present.extend(partitions(ctx, m, format!("SELECT DISTINCT {cols} FROM {input}")).await?);
    }
    Ok((first_new, present))
}

/// What changed in the inputs since the build at `built_at`, against the stored model.
async fn changes(
    ctx: &SessionContext,
    m: &Model,
    partitioned: &[TableName],
    built_at: chrono::DateTime<chrono::Utc>,
) -> Result<Changes, String> {
    let n = m.partition_by.len();
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
    let order = m.append.as_ref().map(|a| a.order_by.as_str());
    let (mut first_new, present) = new_in_inputs(ctx, m, partitioned, &cols, &since).await?;
    let stored_sql = match order {
        Some(o) => format!(
            "SELECT {cols}, max(\"{o}\") AS \"last_{o}\" FROM {} GROUP BY {cols}",
            m.name
        ),
        None => format!("SELECT DISTINCT {cols} FROM {}", m.name),
    };
    let mut out = Changes::default();
    let mut stored = BTreeSet::new();
    let mut groups: BTreeMap<String, BTreeSet<Partition>> = BTreeMap::new();
    for b in collect(ctx, &stored_sql).await.map_err(df_err(m))? {
        let mut extend = Vec::with_capacity(b.num_rows());
        for (r, key) in row_keys(&b, n)?.into_iter().enumerate() {
            let mut yes = false;
            if let (Some(Some(first)), Some(_)) = (first_new.get(&key), order) {
                let last =
                    ScalarValue::try_from_array(b.column(n), r).map_err(|e| e.to_string())?;
                if !last.is_null() && first.partial_cmp(&last) == Some(Ordering::Greater) {
                    yes = true;
                    first_new.remove(&key);
                    groups
                        .entry(literal(&last))
                        .or_default()
                        .insert(key.clone());
                }
            }
            extend.push(yes);
            stored.insert(key);
        }
        if extend.iter().any(|e| *e) {
            let mask = BooleanArray::from(extend);
            out.after.push(
                datafusion::arrow::compute::filter_record_batch(&b, &mask)
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    if let Some(o) = order.filter(|_| !groups.is_empty()) {
        let terms: Vec<String> = groups
            .iter()
            .map(|(last, parts)| {
                format!(
                    "({} AND \"{o}\" > {last})",
                    predicate(&m.partition_by, parts)
                )
            })
            .collect();
        out.appended = Some(terms.join(" OR "));
    }
    out.recompute = first_new.into_keys().collect();
    out.recompute.extend(stored.difference(&present).cloned());
    Ok(out)
}

/// The table as it would be after publishing `rows`: the stored rows outside `replaced`, cast to
/// the model's columns, and `rows`.
async fn candidate(
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

/// Records what a build of `m` (started at `started`) read, after it published `published`
/// (its unique keys hold there: [`super::proven`]).
pub(super) async fn record_state(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
    started: chrono::DateTime<chrono::Utc>,
    published: Option<u64>,
) -> Result<(), String> {
    let proofs = published.map(|v| super::proven::on_publish(m, v));
    save_state(lake, ctx, m, inputs, started, proofs.unwrap_or_default()).await
}

/// [`record_state`] for a build that published nothing: the proofs recorded for the version
/// the table is still at stay.
async fn record_unchanged(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
    started: chrono::DateTime<chrono::Utc>,
    previous: &ModelState,
) -> Result<(), String> {
    let version = lake.version(&m.name).await.map_err(|e| e.to_string())?;
    let proofs = super::proven::kept(previous, version);
    save_state(lake, ctx, m, inputs, started, proofs).await
}

async fn save_state(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
    started: chrono::DateTime<chrono::Utc>,
    proofs: HashMap<String, String>,
) -> Result<(), String> {
    let mut inputs = classify(lake, ctx, m, inputs).await?.fingerprints;
    inputs.extend(proofs);
    let state = ModelState {
        built_at: Some(started),
        inputs,
    };
    lake.set_model_state(&m.name, &state)
        .await
        .map_err(|e| e.to_string())
}

/// The rows an incremental build publishes, and what they replace.
struct NewRows {
    /// The recomputed partitions' rows, then the appended rows.
    rows: Vec<RecordBatch>,
    /// Their schema (the computed rows' own: the plan's may differ in nullability).
    schema: SchemaRef,
    /// The predicate of the recomputed partitions, when there are any.
    replaced: Option<String>,
    /// The predicate of the appended rows, when there are any.
    appended: Option<String>,
    /// The append query's order column, when rows were appended.
    appended_after: Option<String>,
}

/// Computes the recomputed partitions' rows and the appended rows of `changes`.
async fn new_rows(ctx: &SessionContext, m: &Model, changes: Changes) -> Result<NewRows, String> {
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
    // The rows' own schema (the plan's may differ in nullability); appended rows conform to it.
    let schema = match rows.first() {
        Some(b) => b.schema(),
        None => ctx
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
                super::append::rows(ctx, a, &m.partition_by, &schema, changes.after).await?,
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

/// An incremental build. `Ok(None)`: the model needs a full build (it never built, its files
/// changed, or an unpartitioned input changed).
pub(super) async fn build_incremental(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
    custom: &Custom,
    reference: chrono::NaiveDate,
) -> Result<Option<usize>, String> {
    let started = Lake::now();
    let previous = lake.model_state(&m.name).await.map_err(|e| e.to_string())?;
    let Some(built_at) = previous.built_at else {
        return Ok(None);
    };
    let classified = classify(lake, ctx, m, inputs).await?;
    if let Some((k, _)) = classified
        .fingerprints
        .iter()
        .find(|(k, v)| previous.inputs.get(*k) != Some(v))
    {
        tracing::info!(model = %m.name, changed = %k, "full build: an unpartitioned input or the model's files changed");
        return Ok(None);
    }
    let clock = std::time::Instant::now();
    let lap = |what: &str| {
        tracing::debug!(model = %m.name, step = what, seconds = clock.elapsed().as_secs_f64(), "incremental build");
    };
    let changes = changes(ctx, m, &classified.partitioned, built_at).await?;
    lap("changes found");
    if changes.recompute.is_empty() && changes.after.is_empty() {
        record_unchanged(lake, ctx, m, inputs, started, &previous).await?;
        return Ok(Some(0));
    }
    let NewRows {
        rows,
        schema,
        replaced,
        appended,
        appended_after,
    } = new_rows(ctx, m, changes).await?;
    lap("new rows computed");
    let inc = Increment {
        candidate: candidate(ctx, m, &schema, replaced.as_deref(), rows.clone()).await?,
        schema: schema.clone(),
        rows,
        appended_after,
    };
    audit_increment(ctx, m, custom, reference, &inc).await?;
    lap("audited");
    let count: usize = inc.rows.iter().map(RecordBatch::num_rows).sum();
    let mode = match (replaced, appended) {
        (Some(r), Some(a)) => WriteMode::ReplaceWhere(format!("({r}) OR {a}")),
        (Some(r), None) => WriteMode::ReplaceWhere(r),
        (None, _) => WriteMode::Append,
    };
    let batches = if inc.rows.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        inc.rows
    };
    let written = lake
        .write(&m.name, batches, mode)
        .await
        .map_err(|e| e.to_string())?;
    lap("published");
    let version = written.version;
    record_state(lake, ctx, m, inputs, started, version).await?;
    Ok(Some(count))
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
