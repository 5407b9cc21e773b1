//! What changed in an incremental model's inputs since its last build, against the stored model:
//! the partitions to recompute whole, and those to extend with the append query (their last
//! stored rows and order values).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::min;
use datafusion::prelude::{Expr, ParquetReadOptions, SessionContext, ident};

use super::session::df_err;
use super::session::{bind, collect};
use super::spec::Model;
use crate::lake::TableName;

/// The key of a partition as text, one value per partition column (`None`: NULL).
pub(super) type Partition = Vec<Option<String>>;

/// The partition key of each row: its first `n` columns as text.
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
                .map(|c| (!c.is_null(r)).then(|| c.value(r).to_string()))
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

/// A SQL predicate matching the given partitions (a NULL key value matches NULL).
pub(super) fn predicate(columns: &[String], parts: &BTreeSet<Partition>) -> String {
    let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
    if let [c] = columns {
        let list: Vec<String> = parts
            .iter()
            .filter_map(|p| p[0].as_deref())
            .map(quote)
            .collect();
        let null = format!("\"{c}\" IS NULL");
        return match (list.is_empty(), parts.iter().any(|p| p[0].is_none())) {
            (_, false) => format!("\"{c}\" IN ({})", list.join(", ")),
            (true, true) => null,
            (false, true) => format!("(\"{c}\" IN ({}) OR {null})", list.join(", ")),
        };
    }
    parts
        .iter()
        .map(|p| {
            let conds: Vec<String> = columns
                .iter()
                .zip(p)
                .map(|(c, v)| match v {
                    Some(v) => format!("\"{c}\" = {}", quote(v)),
                    None => format!("\"{c}\" IS NULL"),
                })
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
pub(super) struct Changes {
    /// Partitions to recompute whole.
    pub recompute: BTreeSet<Partition>,
    /// The partitions to extend with the append query: `append_after` rows (partition columns and
    /// the last stored order value).
    pub after: Vec<RecordBatch>,
    /// Their stored last rows (every column of the model): `append_last`.
    pub last: Vec<RecordBatch>,
    /// The predicate matching the appended rows: per group of partitions with the same last
    /// stored value, `(<partition> IN (…) AND <order> > <last>)`.
    pub appended: Option<String>,
    /// No partition to recompute is stored: when they compute to no rows either (a new symbol
    /// of no role), the table stays as it is.
    pub only_new_partitions: bool,
    /// Every stored partition is to be recomputed (the roles on a night that gave each of them
    /// a day): a full build computes the same rows, without replacing them partition by
    /// partition.
    pub every_stored: bool,
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

/// Per partition with new rows, the smallest order value among them (`None`: not appendable).
type FirstNew = BTreeMap<Partition, Option<ScalarValue>>;

/// Folds rows of (partition columns, smallest order value among a partition's new rows) into
/// `first_new`; `with_order`: the rows carry that value (else: not appendable).
fn fold_first_new(
    first_new: &mut FirstNew,
    batches: &[RecordBatch],
    n: usize,
    with_order: bool,
) -> Result<(), String> {
    for b in batches {
        for (r, key) in row_keys(b, n)?.into_iter().enumerate() {
            let v = if with_order {
                let v = ScalarValue::try_from_array(b.column(n), r).map_err(|e| e.to_string())?;
                (!v.is_null()).then_some(v)
            } else {
                None
            };
            let merged = match first_new.remove(&key) {
                Some(old) => earliest(old, v),
                None => v,
            };
            first_new.insert(key, merged);
        }
    }
    Ok(())
}

/// Per partition with rows ingested into `partitioned` since `since`, or in the files a logged
/// mart gained (`logged`: each input with the URLs of those files, [`super::logged`]): the
/// smallest order value among those rows (`None`: it cannot be appended to); and every
/// partition present in the partitioned inputs, unless `known` (every stored one is: `None`).
/// A logged mart only gained rows, so its stored partitions are all still present.
async fn new_in_inputs(
    ctx: &SessionContext,
    m: &Model,
    (partitioned, known): (&[TableName], bool),
    logged: &[(TableName, Vec<String>)],
    cols: &str,
    since: &str,
) -> Result<(FirstNew, Option<BTreeSet<Partition>>), String> {
    let n = m.partition_by.len();
    let order = m.append.as_ref().map(|a| a.order_by.as_str());
    let mut first_new = FirstNew::new();
    let mut present = BTreeSet::new();
    for input in partitioned {
        let schema = ctx.table(input.to_string()).await.map_err(df_err(m))?;
        let o = order.filter(|o| schema.schema().has_column_with_unqualified_name(o));
        let sql = match o {
            Some(o) => format!(
                "SELECT {cols}, min(\"{o}\") FROM {input} WHERE ingested_at >= {since} GROUP BY {cols}"
            ),
            None => format!("SELECT DISTINCT {cols} FROM {input} WHERE ingested_at >= {since}"),
        };
        let batches = collect(ctx, &sql).await.map_err(df_err(m))?;
        fold_first_new(&mut first_new, &batches, n, o.is_some())?;
        if !known {
            let sql = format!("SELECT DISTINCT {cols} FROM {input}");
            present.extend(partitions(ctx, m, sql).await?);
        }
    }
    for (_, urls) in logged.iter().filter(|(_, urls)| !urls.is_empty()) {
        let err = df_err(m);
        let rows = ctx
            .read_parquet(urls.clone(), ParquetReadOptions::default())
            .await
            .map_err(&err)?;
        let groups: Vec<Expr> = m.partition_by.iter().map(ident).collect();
        let o = order.filter(|o| rows.schema().has_column_with_unqualified_name(o));
        let rows = match o {
            Some(o) => rows.aggregate(groups, vec![min(ident(o))]),
            None => rows.select(groups).and_then(|r| r.distinct()),
        };
        let batches = rows.map_err(&err)?.collect().await.map_err(&err)?;
        fold_first_new(&mut first_new, &batches, n, o.is_some())?;
    }
    Ok((first_new, (!known).then_some(present)))
}

/// Each stored partition of `m` with its last order value (`last_<order>`), from its stored last
/// rows; without an append query, each stored partition.
async fn stored(
    ctx: &SessionContext,
    m: &Model,
    cols: &str,
    last_rows: &[RecordBatch],
) -> Result<Vec<RecordBatch>, String> {
    let Some(a) = &m.append else {
        let sql = format!("SELECT DISTINCT {cols} FROM {}", m.name);
        return collect(ctx, &sql).await.map_err(df_err(m));
    };
    let Some(schema) = last_rows.first().map(RecordBatch::schema) else {
        return Ok(Vec::new());
    };
    let err = df_err(m);
    let own = SessionContext::new();
    bind(&own, "last_rows", schema, last_rows.to_vec()).map_err(&err)?;
    let (o, last) = (&a.order_by, a.last_column());
    let sql = format!("SELECT {cols}, max(\"{o}\") AS \"{last}\" FROM last_rows GROUP BY {cols}");
    collect(&own, &sql).await.map_err(err)
}

/// The rows of `batches` whose partition (columns `by`) is in `keep`.
fn rows_of(
    batches: &[RecordBatch],
    by: &[String],
    keep: &BTreeSet<Partition>,
) -> Result<Vec<RecordBatch>, String> {
    batches
        .iter()
        .map(|b| {
            let idx = by
                .iter()
                .map(|c| b.schema().index_of(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let keys = row_keys(&b.project(&idx).map_err(|e| e.to_string())?, by.len())?;
            let mask =
                BooleanArray::from(keys.iter().map(|k| keep.contains(k)).collect::<Vec<_>>());
            filter_record_batch(b, &mask).map_err(|e| e.to_string())
        })
        .collect()
}

/// What changed in the partitioned inputs since the build at `built_at`, and in the logged
/// marts' new files (`logged`), against the stored model, whose partitions' last rows are
/// `last_rows` (read when it has an append query). `present`: every stored partition is known
/// to be still present in the inputs (`super::added`), so they are not listed.
pub(super) async fn changes(
    ctx: &SessionContext,
    m: &Model,
    (partitioned, present): (&[TableName], bool),
    logged: &[(TableName, Vec<String>)],
    built_at: chrono::DateTime<chrono::Utc>,
    last_rows: &[RecordBatch],
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
    let (mut first_new, present) =
        new_in_inputs(ctx, m, (partitioned, present), logged, &cols, &since).await?;
    let mut out = Changes::default();
    let mut stored_parts = BTreeSet::new();
    let mut groups: BTreeMap<String, BTreeSet<Partition>> = BTreeMap::new();
    for b in stored(ctx, m, &cols, last_rows).await? {
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
            stored_parts.insert(key);
        }
        if extend.iter().any(|e| *e) {
            let mask = BooleanArray::from(extend);
            out.after
                .push(filter_record_batch(&b, &mask).map_err(|e| e.to_string())?);
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
        let extended: BTreeSet<Partition> = groups.into_values().flatten().collect();
        out.last = rows_of(last_rows, &m.partition_by, &extended)?;
    }
    out.recompute = first_new.into_keys().collect();
    if let Some(present) = present {
        // A partition gone from the inputs is recomputed: its rows go.
        out.recompute
            .extend(stored_parts.difference(&present).cloned());
    }
    out.only_new_partitions = out.recompute.iter().all(|p| !stored_parts.contains(p));
    out.every_stored =
        !stored_parts.is_empty() && stored_parts.iter().all(|p| out.recompute.contains(p));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_quote_values_and_match_null_keys() {
        let key = |v: &[Option<&str>]| v.iter().map(|v| v.map(str::to_string)).collect();
        let one = BTreeSet::from([key(&[Some("BTC-USD")]), key(&[Some("O'X")])]);
        assert_eq!(
            predicate(&["symbol".into()], &one),
            "\"symbol\" IN ('BTC-USD', 'O''X')"
        );
        let two = BTreeSet::from([key(&[Some("a"), Some("b")]), key(&[None, Some("c")])]);
        assert_eq!(
            predicate(&["x".into(), "y".into()], &two),
            "(\"x\" IS NULL AND \"y\" = 'c') OR (\"x\" = 'a' AND \"y\" = 'b')"
        );
        // NULL is a partition of its own, not the empty string.
        let with_null = BTreeSet::from([key(&[None]), key(&[Some("")])]);
        assert_eq!(
            predicate(&["role".into()], &with_null),
            "(\"role\" IN ('') OR \"role\" IS NULL)"
        );
        assert_eq!(
            predicate(&["role".into()], &BTreeSet::from([key(&[None])])),
            "\"role\" IS NULL"
        );
    }
}
