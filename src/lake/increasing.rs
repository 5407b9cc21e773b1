//! Keys proven unique while a model's rows stream into their files: when every row's key is
//! strictly greater than the row before it, no two rows share a key. A model that ends with
//! `ORDER BY` its unique key (most do) then needs no `unique` test over the files: that test is a
//! hash aggregation with one group per row, the dearest part of an audit (1.9 s of a 13M-row
//! build, spilling past the memory limit), while the comparison of neighbours costs a few
//! nanoseconds a row on the way to the writer. Where the rows are not in that order, or a key
//! column is NULL or a float (whose `=` and order disagree on -0.0 and NaN), nothing is proven
//! and the audit runs the test as written.

use std::sync::{Arc, Mutex, PoisonError};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::kernels::{boolean, cmp};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

/// One key watched: its columns' positions, whether it has increased strictly so far, and the
/// last row's key (one-row arrays) to compare the next batch's first row with.
#[derive(Debug)]
struct Watch {
    columns: Vec<String>,
    positions: Vec<usize>,
    holds: bool,
    last: Option<Vec<ArrayRef>>,
}

/// What a watched stream proved, read once the stream has ended.
#[derive(Debug, Clone, Default)]
pub struct KeyWatch {
    inner: Arc<Mutex<(Vec<Watch>, usize)>>,
}

impl KeyWatch {
    /// Wraps `rows` so that each key (a list of column names) is checked as the rows pass.
    /// Keys with a column the rows lack, or of a type whose equality differs from its order,
    /// are not watched.
    pub fn wrap(
        keys: &[Vec<String>],
        rows: SendableRecordBatchStream,
    ) -> (Self, SendableRecordBatchStream) {
        let schema = rows.schema();
        let watches = keys
            .iter()
            .filter_map(|key| watch(&schema, key))
            .collect::<Vec<_>>();
        let me = Self {
            inner: Arc::new(Mutex::new((watches, 0))),
        };
        if me.lock().0.is_empty() {
            return (me, rows);
        }
        let seen = me.clone();
        let stream = rows.inspect(move |batch| {
            if let Ok(batch) = batch {
                seen.observe(batch);
            }
        });
        (me, Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Watch>, usize)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn observe(&self, batch: &RecordBatch) {
        let mut guard = self.lock();
        let (watches, rows) = &mut *guard;
        *rows += batch.num_rows();
        if batch.num_rows() == 0 {
            return;
        }
        for w in watches.iter_mut().filter(|w| w.holds) {
            let columns: Vec<&ArrayRef> = w.positions.iter().map(|&i| batch.column(i)).collect();
            let first: Vec<ArrayRef> = columns.iter().map(|c| c.slice(0, 1)).collect();
            let within = increasing(&columns, 1);
            let across = w.last.as_ref().is_none_or(|last| {
                let l: Vec<&ArrayRef> = last.iter().collect();
                let f: Vec<&ArrayRef> = first.iter().collect();
                pair_increases(&l, &f)
            });
            w.holds = within && across;
            let n = batch.num_rows();
            w.last = Some(columns.iter().map(|c| c.slice(n - 1, 1)).collect());
        }
    }

    /// Whether any watched key still holds (a reader may stop when none does).
    pub fn any_holds(&self) -> bool {
        self.lock().0.iter().any(|w| w.holds)
    }

    /// The keys every row of the stream increased strictly in, provided the stream carried
    /// `rows` rows (the count the written files hold).
    pub fn proven(&self, rows: usize) -> Vec<Vec<String>> {
        if self.lock().1 != rows {
            return Vec::new();
        }
        self.holding()
    }

    /// The keys every row the watch saw increased strictly in.
    fn holding(&self) -> Vec<Vec<String>> {
        let guard = self.lock();
        guard
            .0
            .iter()
            .filter(|w| w.holds)
            .map(|w| w.columns.clone())
            .collect()
    }
}

/// Whether the rows of `relation` (a table or view of `ctx`), read by one partition in the order
/// of its files, rise strictly in `key`: then `key` is unique, without the hash aggregation of a
/// `unique` test (the reading stops at the first row that does not rise). A table built from a
/// query ending in `ORDER BY` its key is stored so.
pub async fn stored_rows_rise(ctx: &SessionContext, relation: &str, key: &[String]) -> bool {
    let columns: Vec<String> = key.iter().map(|c| format!("\"{c}\"")).collect();
    let sql = format!("SELECT {} FROM {relation}", columns.join(", "));
    let Ok(query) = ctx.sql(&sql).await else {
        return false;
    };
    // The session's own state, copied, planned with one partition: files one after another.
    let (mut state, plan) = query.into_parts();
    state.config_mut().options_mut().execution.target_partitions = 1;
    let Ok(plan) = state.create_physical_plan(&plan).await else {
        return false;
    };
    let Ok(rows) = execute_stream(plan, Arc::new(TaskContext::from(&state))) else {
        return false;
    };
    let (watch, mut rows) = KeyWatch::wrap(&[key.to_vec()], rows);
    while let Some(batch) = rows.next().await {
        if batch.is_err() || !watch.any_holds() {
            return false;
        }
    }
    // The query has no filter: the watch saw every row of the relation.
    !watch.holding().is_empty()
}

/// A watch over `key` in `schema`, or `None` when a column is missing or of a type whose
/// order may call two unequal values equal or two equal values unequal.
fn watch(schema: &Schema, key: &[String]) -> Option<Watch> {
    let positions = key
        .iter()
        .map(|c| schema.index_of(c).ok())
        .collect::<Option<Vec<_>>>()?;
    let ordered = positions.iter().all(|&i| {
        matches!(
            schema.field(i).data_type(),
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Boolean
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(_, _)
                | DataType::Decimal128(_, _)
        )
    });
    (ordered && !positions.is_empty()).then(|| Watch {
        columns: key.to_vec(),
        positions,
        holds: true,
        last: None,
    })
}

/// Whether each row's key is strictly greater than the one `gap` rows before (`gap` = 1: the
/// rows of one batch in order).
fn increasing(columns: &[&ArrayRef], gap: usize) -> bool {
    let n = columns[0].len();
    if n <= gap {
        return true;
    }
    let before: Vec<ArrayRef> = columns.iter().map(|c| c.slice(0, n - gap)).collect();
    let after: Vec<ArrayRef> = columns.iter().map(|c| c.slice(gap, n - gap)).collect();
    let b: Vec<&ArrayRef> = before.iter().collect();
    let a: Vec<&ArrayRef> = after.iter().collect();
    pair_increases(&b, &a)
}

/// Whether `after[i]`'s key is strictly greater than `before[i]`'s for every `i`, compared
/// column by column (a NULL anywhere, or a comparison arrow cannot make, proves nothing).
fn pair_increases(before: &[&ArrayRef], after: &[&ArrayRef]) -> bool {
    let greater = |i: usize| -> Option<BooleanArray> { cmp::gt(after[i], before[i]).ok() };
    let equal = |i: usize| -> Option<BooleanArray> { cmp::eq(after[i], before[i]).ok() };
    let last = before.len() - 1;
    let Some(mut result) = greater(last) else {
        return false;
    };
    for i in (0..last).rev() {
        let (Some(gt), Some(eq)) = (greater(i), equal(i)) else {
            return false;
        };
        let tie_then = match boolean::and(&eq, &result) {
            Ok(r) => r,
            Err(_) => return false,
        };
        result = match boolean::or(&gt, &tie_then) {
            Ok(r) => r,
            Err(_) => return false,
        };
    }
    result.null_count() == 0 && result.true_count() == result.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Float64Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_plan::memory::MemoryStream;

    fn batch(symbols: &[Option<&str>], days: &[i32]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("date", DataType::Date32, false),
            Field::new("close", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(symbols.to_vec())),
                Arc::new(Date32Array::from(days.to_vec())),
                // Rises wherever the date does: a float key is still never proven.
                Arc::new(Float64Array::from_iter_values(
                    days.iter().map(|d| *d as f64),
                )),
            ],
        )
        .unwrap()
    }

    /// `stored_rows_rise` over a table of these batches, in this order.
    async fn rises(batches: Vec<RecordBatch>, key: &[&str]) -> bool {
        let ctx = SessionContext::new();
        let schema = batches[0].schema();
        let table = datafusion::datasource::MemTable::try_new(schema, vec![batches]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let key: Vec<String> = key.iter().map(|c| c.to_string()).collect();
        stored_rows_rise(&ctx, "t", &key).await
    }

    #[tokio::test]
    async fn stored_rows_rise_across_batches_only_when_every_key_is_greater_than_the_last() {
        let (a, b) = (Some("A"), Some("B"));
        let sorted = || vec![batch(&[a, a], &[1, 2]), batch(&[a, b], &[3, 1])];
        assert!(rises(sorted(), &["symbol", "date"]).await);
        assert!(!rises(sorted(), &["date"]).await, "3 then 1 across batches");
        // A key repeated across the batch boundary, or a key over a float column.
        let repeated = vec![batch(&[a, a], &[1, 2]), batch(&[a], &[2])];
        assert!(!rises(repeated, &["symbol", "date"]).await);
        assert!(!rises(sorted(), &["close", "symbol"]).await);
        assert!(!rises(sorted(), &["no_such_column"]).await);
    }

    /// Streams the batches through a watch of (symbol, date), (date) and (close); the keys proven.
    async fn proven(batches: Vec<RecordBatch>) -> Vec<Vec<String>> {
        let schema = batches[0].schema();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let stream = MemoryStream::try_new(batches, schema, None).unwrap();
        let keys = [
            vec!["symbol".to_string(), "date".to_string()],
            vec!["date".to_string()],
            vec!["close".to_string()],
        ];
        let (watch, stream) = KeyWatch::wrap(&keys, Box::pin(stream));
        let passed: Vec<_> = stream.collect().await;
        assert!(passed.iter().all(|b| b.is_ok()));
        watch.proven(rows)
    }

    fn key(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|c| c.to_string()).collect()
    }

    #[tokio::test]
    async fn keys_that_rise_row_after_row_are_proven_unique_and_others_are_not() {
        // Sorted by (symbol, date) over two batches: the pair rises, the date alone does not.
        let sorted = vec![
            batch(&[Some("A"), Some("A"), Some("B")], &[1, 2, 1]),
            batch(&[Some("B"), Some("C")], &[2, 1]),
        ];
        assert_eq!(proven(sorted).await, vec![key(&["symbol", "date"])]);
        // A duplicate across the batch boundary, and one inside a batch.
        let across = vec![
            batch(&[Some("A"), Some("B")], &[1, 2]),
            batch(&[Some("B"), Some("C")], &[2, 1]),
        ];
        assert!(proven(across).await.is_empty());
        let within = vec![batch(&[Some("A"), Some("A"), Some("A")], &[1, 3, 3])];
        assert!(proven(within).await.is_empty());
        // Unique but not in order: nothing proven (the test then runs as written).
        let unordered = vec![batch(&[Some("B"), Some("A")], &[1, 1])];
        assert!(proven(unordered).await.is_empty());
        // A NULL in the key proves nothing (GROUP BY would count NULLs as one key).
        let null = vec![batch(&[None, Some("A")], &[1, 1])];
        assert!(proven(null).await.is_empty());
        // One row per day in date order: the date alone rises too.
        let daily = vec![
            batch(&[Some("B"), Some("A")], &[1, 2]),
            batch(&[Some("C")], &[3]),
        ];
        assert_eq!(proven(daily).await, vec![key(&["date"])]);
    }

    #[tokio::test]
    async fn a_row_count_other_than_the_files_proves_nothing() {
        let b = batch(&[Some("A"), Some("B")], &[1, 2]);
        let schema = b.schema();
        let stream = MemoryStream::try_new(vec![b], schema, None).unwrap();
        let (watch, stream) = KeyWatch::wrap(&[key(&["symbol"])], Box::pin(stream));
        let _: Vec<_> = stream.collect().await;
        assert_eq!(watch.proven(2), vec![key(&["symbol"])]);
        assert!(watch.proven(3).is_empty());
    }
}
