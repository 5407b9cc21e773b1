//! MERGE on a natural key, committing only what changed.
//!
//! Delta's MERGE rewrites every file holding a matched row, even when nothing changed, and
//! commits a new version regardless. Before merging, the incoming rows are therefore compared
//! with the stored ones (all columns but the ignored ones, NULL-aware, via Arrow's row format):
//! identical rows are dropped, and when nothing is left no commit is made. Re-running an ingest
//! on unchanged upstream data thus leaves the table byte-for-byte as it was.
//!
//! Cost follows the new data, not the table: only stored rows whose keys lie within the incoming
//! keys' ranges (per key column, min..=max) can equal or be replaced by an incoming row, so both
//! the comparison scan and the MERGE carry that range as a predicate, and Delta's per-file
//! statistics skip every file that cannot hold those keys (one new day reads no old file). For
//! that to hold on a table with many symbols, staging rows are written ordered by their date
//! ([`cluster_by_date`]): each file then covers a run of days, not a run of symbols. When no
//! changed row's key is stored (the nightly new day), the rows are appended instead: a MERGE
//! would only insert them, after scanning the target once more.

use datafusion::common::HashSet;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{
    cast, concat, concat_batches, sort_to_indices, take, take_record_batch,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::common::ScalarValue;
use datafusion::prelude::{Expr, SessionContext, col, lit};
use deltalake::DeltaTable;

use super::{LakeError, Result, TableName, WriteOutcome};

/// Rows ordered by their first `Date32` column (batches without one are returned as they are):
/// the files a write produces then each cover a run of consecutive days, so a MERGE or a query
/// of recent days opens only the newest files, however long the history and however many
/// symbols share those days.
pub(super) fn cluster_by_date(
    batches: Vec<RecordBatch>,
) -> std::result::Result<Vec<RecordBatch>, datafusion::arrow::error::ArrowError> {
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let schema = first.schema();
    let Some(idx) = schema
        .fields()
        .iter()
        .position(|f| *f.data_type() == datafusion::arrow::datatypes::DataType::Date32)
    else {
        return Ok(batches);
    };
    // Column by column, each source column freed once its sorted copy is made: the rows are in
    // memory about once (plus two columns), not three times (the batches, their concatenation
    // and its sorted copy). 13M price rows: ~1.3 GB each time.
    let mut parts: Vec<Vec<ArrayRef>> =
        vec![Vec::with_capacity(batches.len()); schema.fields().len()];
    for batch in batches {
        for (part, column) in parts.iter_mut().zip(batch.columns()) {
            part.push(column.clone());
        }
    }
    let whole = |arrays: Vec<ArrayRef>| {
        let refs: Vec<&dyn Array> = arrays.iter().map(AsRef::as_ref).collect();
        concat(&refs)
    };
    let dates = whole(std::mem::take(&mut parts[idx]))?;
    let order = sort_to_indices(&dates, None, None)?;
    let columns = parts
        .into_iter()
        .enumerate()
        .map(|(i, arrays)| {
            let column = if i == idx {
                dates.clone()
            } else {
                whole(arrays)?
            };
            take(&column, &order, None)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(vec![RecordBatch::try_new(schema, columns)?])
}

/// Each key column's smallest and largest incoming value (columns whose type has no order are
/// left out: no pruning on them).
fn key_ranges(incoming: &RecordBatch, keys: &[String]) -> Vec<(String, ScalarValue, ScalarValue)> {
    keys.iter()
        .filter_map(|k| {
            let column = incoming.column_by_name(k)?;
            let order = sort_to_indices(column, None, None).ok()?;
            let (first, last) = (order.value(0), order.value(order.len().checked_sub(1)?));
            let min = ScalarValue::try_from_array(column, first as usize).ok()?;
            let max = ScalarValue::try_from_array(column, last as usize).ok()?;
            Some((k.clone(), min, max))
        })
        .collect()
}

/// `min <= key AND key <= max` for every range, on columns qualified by `alias` when given.
fn within(ranges: &[(String, ScalarValue, ScalarValue)], alias: Option<&str>) -> Option<Expr> {
    ranges
        .iter()
        .map(|(k, min, max)| {
            let c = match alias {
                Some(a) => col(format!("{a}.\"{k}\"")),
                None => col(format!("\"{k}\"")),
            };
            c.clone()
                .gt_eq(lit(min.clone()))
                .and(c.lt_eq(lit(max.clone())))
        })
        .reduce(Expr::and)
}

/// Nothing written: the table stays at `version`.
fn unchanged(version: Option<u64>) -> WriteOutcome {
    WriteOutcome {
        rows: 0,
        version,
        committed: false,
    }
}

/// Indices of `rows` not in `known`.
fn unknown(rows: &Rows, known: &HashSet<&[u8]>) -> Vec<u32> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| !known.contains(r.data()))
        .map(|(i, _)| i as u32)
        .collect()
}

/// MERGEs `batches` into `current` on `keys`: rows equal to a stored row (every column but
/// `ignore`) are dropped first, and nothing is committed when none is left.
pub(super) async fn merge(
    table: &TableName,
    current: DeltaTable,
    batches: Vec<RecordBatch>,
    keys: &[String],
    ignore: &[String],
) -> Result<WriteOutcome> {
    let version = current.version();
    let Some(first) = batches.first() else {
        return Ok(unchanged(version));
    };
    let schema = first.schema();
    let m = Merge {
        table,
        schema: &schema,
    };
    let incoming = concat_batches(&schema, &batches).map_err(|e| m.data_err(e.to_string()))?;
    if incoming.num_rows() == 0 {
        return Ok(unchanged(version));
    }
    m.check_keys(&incoming, keys)?;
    let compared: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !ignore.contains(schema.field(*i).name()))
        .collect();
    // What is stored now within the incoming keys' ranges, compared with the incoming rows.
    let ranges = key_ranges(&incoming, keys);
    let ctx = SessionContext::new();
    let stored = m.stored(&ctx, &current, &ranges, &compared).await?;
    let (changed, all_new) = m.changed(&incoming, &stored, &compared, keys)?;
    if changed.is_empty() {
        return Ok(unchanged(version));
    }
    let changed = take_record_batch(&incoming, &UInt32Array::from(changed))
        .map_err(|e| m.data_err(e.to_string()))?;
    let rows = changed.num_rows();
    // No changed row's key is stored (the nightly new day): a MERGE would only insert, and an
    // append commits the same rows without scanning the target again.
    let merged = if all_new {
        m.append(current, changed).await?
    } else {
        m.apply(&ctx, current, changed, keys, &ranges).await?
    };
    Ok(WriteOutcome {
        rows,
        version: merged.version(),
        committed: true,
    })
}

/// One MERGE's table and incoming schema, for its steps and their errors.
struct Merge<'a> {
    table: &'a TableName,
    schema: &'a SchemaRef,
}

impl Merge<'_> {
    fn data_err(&self, message: String) -> LakeError {
        LakeError::Data {
            table: self.table.clone(),
            message,
        }
    }

    fn df_err(&self, source: datafusion::error::DataFusionError) -> LakeError {
        LakeError::DataFusion {
            context: format!("reading {} for merge", self.table),
            source: Box::new(source),
        }
    }

    /// Arrow's row format of the columns `idx` of `columns` (typed as the incoming schema's).
    fn rows(&self, idx: &[usize], columns: &[ArrayRef]) -> Result<Rows> {
        RowConverter::new(
            idx.iter()
                .map(|i| SortField::new(self.schema.field(*i).data_type().clone()))
                .collect(),
        )
        .and_then(|c| c.convert_columns(columns))
        .map_err(|e| self.data_err(e.to_string()))
    }

    /// Refuses NULL or duplicate keys (a duplicate makes MERGE ambiguous), naming the key.
    fn check_keys(&self, incoming: &RecordBatch, keys: &[String]) -> Result<()> {
        let mut key_idx = Vec::new();
        for key in keys {
            let idx = self
                .schema
                .index_of(key)
                .map_err(|_| self.data_err(format!("merge key {key} is not a column")))?;
            if incoming.column(idx).null_count() > 0 {
                return Err(self.data_err(format!("merge key {key} has NULL values")));
            }
            key_idx.push(idx);
        }
        let columns: Vec<ArrayRef> = key_idx
            .iter()
            .map(|i| incoming.column(*i).clone())
            .collect();
        let rows = self.rows(&key_idx, &columns)?;
        let mut seen = HashSet::with_capacity(rows.num_rows());
        for (row, r) in rows.iter().enumerate() {
            if !seen.insert(r.data()) {
                let shown: Vec<String> = columns
                    .iter()
                    .map(|c| array_value_to_string(c, row).unwrap_or_default())
                    .collect();
                return Err(self.data_err(format!(
                    "duplicate merge key ({}) = ({})",
                    keys.join(", "),
                    shown.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The stored rows within `ranges`, columns `compared` only, cast to the incoming types.
    async fn stored(
        &self,
        ctx: &SessionContext,
        current: &DeltaTable,
        ranges: &[(String, ScalarValue, ScalarValue)],
        compared: &[usize],
    ) -> Result<Vec<Vec<ArrayRef>>> {
        current
            .update_datafusion_session(&ctx.state())
            .map_err(|source| LakeError::Delta {
                table: self.table.clone(),
                action: "scan",
                source: Box::new(source),
            })?;
        let provider = current.table_provider().await.map_err(|e| self.df_err(e))?;
        let mut scan = ctx.read_table(provider).map_err(|e| self.df_err(e))?;
        if let Some(range) = within(ranges, None) {
            scan = scan.filter(range).map_err(|e| self.df_err(e))?;
        }
        let names = compared
            .iter()
            .map(|i| col(format!("\"{}\"", self.schema.field(*i).name())));
        let stored = scan
            .select(names.collect::<Vec<_>>())
            .map_err(|e| self.df_err(e))?
            .collect()
            .await
            .map_err(|e| self.df_err(e))?;
        stored
            .iter()
            .map(|batch| {
                compared
                    .iter()
                    .enumerate()
                    .map(|(j, i)| cast(batch.column(j), self.schema.field(*i).data_type()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        self.data_err(format!("stored column types differ from the new rows: {e}"))
                    })
            })
            .collect()
    }

    /// Indices of the incoming rows equal to no stored row (NULL-aware, via the row format).
    /// And whether no key of those rows is stored (`false` when the keys are not all compared).
    fn changed(
        &self,
        incoming: &RecordBatch,
        stored: &[Vec<ArrayRef>],
        compared: &[usize],
        keys: &[String],
    ) -> Result<(Vec<u32>, bool)> {
        // The key columns' positions among the compared ones.
        let key_pos: Option<Vec<usize>> = keys
            .iter()
            .map(|k| {
                let i = self.schema.index_of(k).ok()?;
                compared.iter().position(|c| *c == i)
            })
            .collect();
        let pick = |idx: &[usize]| -> Vec<ArrayRef> {
            idx.iter().map(|i| incoming.column(*i).clone()).collect()
        };
        let incoming_rows = self.rows(compared, &pick(compared))?;
        let Some(key_pos) = key_pos else {
            // Keys not all compared: every stored row in the ranges may equal an incoming one.
            let stored_rows = stored
                .iter()
                .map(|columns| self.rows(compared, columns))
                .collect::<Result<Vec<_>>>()?;
            let known: HashSet<&[u8]> = stored_rows
                .iter()
                .flat_map(|rows| rows.iter().map(|r| r.data()))
                .collect();
            let changed = unknown(&incoming_rows, &known);
            return Ok((changed, false));
        };
        // Only a stored row whose key is an incoming one can equal an incoming row or be replaced
        // by one. The ranges are per key column (one symbol whose source lags widens the date
        // range for all 2,000), so the stored rows are first matched on their keys, which are
        // short, and only those that match are encoded whole. foldhash (DataFusion's default),
        // not SipHash.
        let key_idx: Vec<usize> = key_pos.iter().map(|p| compared[*p]).collect();
        let incoming_keys = self.rows(&key_idx, &pick(&key_idx))?;
        let wanted: HashSet<&[u8]> = incoming_keys.iter().map(|r| r.data()).collect();
        let mut known_keys: HashSet<&[u8]> = HashSet::with_capacity(wanted.len());
        let mut candidates = Vec::new();
        for columns in stored {
            let key_columns: Vec<ArrayRef> = key_pos.iter().map(|p| columns[*p].clone()).collect();
            let stored_keys = self.rows(&key_idx, &key_columns)?;
            let matching: Vec<u32> = stored_keys
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let key = wanted.get(r.data())?;
                    known_keys.insert(key);
                    Some(i as u32)
                })
                .collect();
            if matching.is_empty() {
                continue;
            }
            let matching = UInt32Array::from(matching);
            let taken = columns
                .iter()
                .map(|c| take(c, &matching, None))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| self.data_err(e.to_string()))?;
            candidates.push(self.rows(compared, &taken)?);
        }
        let known: HashSet<&[u8]> = candidates
            .iter()
            .flat_map(|rows| rows.iter().map(|r| r.data()))
            .collect();
        let changed = unknown(&incoming_rows, &known);
        let all_new = changed
            .iter()
            .all(|i| !known_keys.contains(incoming_keys.row(*i as usize).data()));
        Ok((changed, all_new))
    }

    /// Appends `rows` (none of whose keys is stored) in one commit.
    async fn append(&self, current: DeltaTable, rows: RecordBatch) -> Result<DeltaTable> {
        current
            .write(vec![rows])
            .with_save_mode(deltalake::protocol::SaveMode::Append)
            .with_writer_properties(super::files::writer_properties())
            .await
            .map_err(|source| LakeError::Delta {
                table: self.table.clone(),
                action: "append",
                source: Box::new(source),
            })
    }

    /// Delta's MERGE of `changed` on `keys` (plus the key ranges, so file statistics prune):
    /// matched rows are updated, the others inserted.
    async fn apply(
        &self,
        ctx: &SessionContext,
        current: DeltaTable,
        changed: RecordBatch,
        keys: &[String],
        ranges: &[(String, ScalarValue, ScalarValue)],
    ) -> Result<DeltaTable> {
        let source = ctx.read_batch(changed).map_err(|e| self.df_err(e))?;
        let predicate = keys
            .iter()
            .map(|k| col(format!("target.\"{k}\"")).eq(col(format!("source.\"{k}\""))))
            .chain(within(ranges, Some("target")))
            .reduce(|a, b| a.and(b))
            .ok_or_else(|| self.data_err("merge needs at least one key column".into()))?;
        let columns: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let delta_err = |source| LakeError::Delta {
            table: self.table.clone(),
            action: "merge",
            source: Box::new(source),
        };
        let source_col = |c: &String| col(format!("source.\"{c}\""));
        let (merged, _metrics) = current
            .merge(source, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_writer_properties(super::files::writer_properties())
            .when_matched_update(|u| {
                columns
                    .iter()
                    .fold(u, |u, c| u.update(c.as_str(), source_col(c)))
            })
            .map_err(delta_err)?
            .when_not_matched_insert(|i| {
                columns
                    .iter()
                    .fold(i, |i, c| i.set(c.as_str(), source_col(c)))
            })
            .map_err(delta_err)?
            .await
            .map_err(delta_err)?;
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Date32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn staging_rows_are_written_in_date_order_across_symbols() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, false),
            Field::new("date", DataType::Date32, false),
        ]));
        // Two symbols, each with its whole history in turn (as a connector builds them).
        let batch = |sym: &str, days: Vec<i32>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(vec![sym; days.len()])),
                    Arc::new(Date32Array::from(days)),
                ],
            )
            .unwrap()
        };
        let out =
            cluster_by_date(vec![batch("A", vec![1, 2, 3]), batch("B", vec![1, 2, 4])]).unwrap();
        assert_eq!(out.len(), 1);
        let dates = out[0]
            .column(1)
            .as_any()
            .downcast_ref::<Date32Array>()
            .unwrap();
        assert_eq!(dates.values().to_vec(), vec![1, 1, 2, 2, 3, 4]);
        assert_eq!(out[0].num_rows(), 6);
        // Every other column moves with its date: the same (symbol, date) rows, none mixed up.
        let symbols = out[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let mut rows: Vec<(String, i32)> = (0..6)
            .map(|i| (symbols.value(i).to_string(), dates.value(i)))
            .collect();
        assert_eq!(rows[4..], [("A".into(), 3), ("B".into(), 4)]);
        rows.sort();
        let expected: Vec<(String, i32)> =
            [("A", 1), ("A", 2), ("A", 3), ("B", 1), ("B", 2), ("B", 4)]
                .into_iter()
                .map(|(s, d)| (s.to_string(), d))
                .collect();
        assert_eq!(rows, expected);
        // Without a date column nothing moves.
        let plain = Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, false)]));
        let b =
            RecordBatch::try_new(plain, vec![Arc::new(StringArray::from(vec!["b", "a"]))]).unwrap();
        let same = cluster_by_date(vec![b.clone()]).unwrap();
        assert_eq!(same[0], b);
    }

    /// Stored rows in the incoming ranges whose keys are not incoming are no candidates: an
    /// incoming row equal to a stored one is dropped, a changed value of a stored key is an
    /// update (not all new), and a new key alone is all new.
    #[test]
    fn only_stored_rows_with_an_incoming_key_are_compared() {
        use datafusion::arrow::array::Float64Array;
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, false),
            Field::new("date", DataType::Date32, false),
            Field::new("close", DataType::Float64, true),
        ]));
        let columns = |rows: &[(&str, i32, Option<f64>)]| -> Vec<ArrayRef> {
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.2))),
            ]
        };
        let table = TableName::staging("t");
        let m = Merge {
            table: &table,
            schema: &schema,
        };
        // The stored rows of the keys' ranges: B's days lie between A's but are not incoming.
        let stored = vec![
            columns(&[("A", 1, Some(1.0)), ("B", 2, Some(5.0)), ("B", 3, None)]),
            columns(&[("A", 4, None), ("B", 4, Some(6.0))]),
        ];
        let keys = ["symbol".to_string(), "date".to_string()];
        let changed = |rows: &[(&str, i32, Option<f64>)]| {
            let incoming = RecordBatch::try_new(schema.clone(), columns(rows)).unwrap();
            m.changed(&incoming, &stored, &[0, 1, 2], &keys).unwrap()
        };
        // A's stored days again (a NULL equals a NULL) and one new day: only the new day, all new.
        assert_eq!(
            changed(&[("A", 1, Some(1.0)), ("A", 4, None), ("A", 5, Some(2.0))]),
            (vec![2], true)
        );
        // A revised value of a stored key: changed, and not all new (a MERGE, not an append).
        assert_eq!(
            changed(&[("A", 1, Some(1.5)), ("A", 5, Some(2.0))]),
            (vec![0, 1], false)
        );
        // B's day 3 with a value where NULL was stored is a revision too.
        assert_eq!(changed(&[("B", 3, Some(7.0))]), (vec![0], false));
        // Keys not all compared (the date is ignored): whole rows are compared.
        let incoming =
            RecordBatch::try_new(schema.clone(), columns(&[("B", 9, Some(5.0))])).unwrap();
        let whole: Vec<Vec<ArrayRef>> = stored
            .iter()
            .map(|c| vec![c[0].clone(), c[2].clone()])
            .collect();
        assert_eq!(
            m.changed(&incoming, &whole, &[0, 2], &keys).unwrap(),
            (vec![], false)
        );
    }
}
