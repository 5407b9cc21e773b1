//! A write that dies after its data files are written but before its commit leaves the table at
//! its previous version with no extra rows; a MERGE reads only the data files that can hold its
//! keys (counted through the object store).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use futures::stream::BoxStream;
use macrolake::lake::{Lake, TableName, WriteMode};
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// An in-memory store that, when armed, refuses every write into a `_delta_log/` folder: the
/// Delta commit step. Data files still get written. It also records which data files are read.
#[derive(Debug, Default)]
pub(crate) struct FailCommits {
    inner: InMemory,
    armed: AtomicBool,
    data_files_written: AtomicUsize,
    data_files_read: Mutex<BTreeSet<String>>,
    /// Every read of a data file, with its byte range.
    ranges_read: Mutex<Vec<(Path, Option<GetRange>)>>,
    log_files_read: AtomicUsize,
}

fn is_data_file(location: &Path) -> bool {
    !location.as_ref().contains("_delta_log/") && location.as_ref().ends_with(".parquet")
}

impl fmt::Display for FailCommits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailCommits({})", self.inner)
    }
}

impl FailCommits {
    fn check(&self, location: &Path) -> Result<()> {
        let is_log = location.as_ref().contains("_delta_log/");
        if !is_log && location.as_ref().ends_with(".parquet") {
            self.data_files_written.fetch_add(1, Ordering::SeqCst);
        }
        if is_log && self.armed.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "FailCommits",
                source: "injected failure: the commit never lands".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FailCommits {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if is_data_file(location) {
            let mut read = self.data_files_read.lock().unwrap();
            read.insert(location.to_string());
            let mut ranges = self.ranges_read.lock().unwrap();
            ranges.push((location.clone(), options.range.clone()));
        } else if location.as_ref().contains("_delta_log/") {
            self.log_files_read.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }
}

/// Rows with `id` in `ids` and `value` = 1.5 × `id`.
pub(crate) fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
    ]));
    let values: Vec<f64> = ids.clone().map(|i| i as f64 * 1.5).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.collect::<Vec<_>>())),
            Arc::new(Float64Array::from(values)),
        ],
    )
    .unwrap()
}

async fn count(lake: &Lake) -> i64 {
    value(lake, "select count(*) from staging.t").await as i64
}

/// The one value `sql` returns (the first column of its first row), as a float.
async fn value(lake: &Lake, sql: &str) -> f64 {
    let s = lake.session(None, &[]).await.unwrap();
    let b = s.ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let column = datafusion::arrow::compute::cast(b[0].column(0), &DataType::Float64).unwrap();
    column
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .value(0)
}

#[tokio::test]
async fn a_commit_failure_after_data_files_leaves_the_previous_version() {
    let store = Arc::new(FailCommits::default());
    let lake = Lake::with_store("memory://", store.clone()).unwrap();
    let t = TableName::staging("t");
    let first = lake
        .write(&t, vec![batch(0..100)], WriteMode::Append)
        .await
        .unwrap();
    assert_eq!(first.version, Some(0));
    assert_eq!(count(&lake).await, 100);

    for mode in [
        WriteMode::Append,
        WriteMode::merge_on(&["id"]),
        WriteMode::Overwrite,
    ] {
        store.armed.store(true, Ordering::SeqCst);
        let files_before = store.data_files_written.load(Ordering::SeqCst);
        let err = lake
            .write(&t, vec![batch(50..400)], mode.clone())
            .await
            .unwrap_err();
        store.armed.store(false, Ordering::SeqCst);
        assert!(err.to_string().contains("table staging.t"), "{err}");
        assert!(
            store.data_files_written.load(Ordering::SeqCst) > files_before,
            "{mode:?}: the failure came after data files were written"
        );
        assert_eq!(lake.version(&t).await.unwrap(), Some(0), "{mode:?}");
        assert_eq!(count(&lake).await, 100, "{mode:?}: no extra rows visible");
    }

    // Only new keys (appended without a MERGE): the same.
    store.armed.store(true, Ordering::SeqCst);
    let err = lake
        .write(&t, vec![batch(500..600)], WriteMode::merge_on(&["id"]))
        .await
        .unwrap_err();
    store.armed.store(false, Ordering::SeqCst);
    assert!(err.to_string().contains("table staging.t"), "{err}");
    assert_eq!(lake.version(&t).await.unwrap(), Some(0));
    assert_eq!(count(&lake).await, 100, "no extra rows visible");

    // And the table still takes writes afterwards.
    let ok = lake
        .write(&t, vec![batch(50..400)], WriteMode::merge_on(&["id"]))
        .await
        .unwrap();
    assert_eq!(ok.version, Some(1));
    assert_eq!(count(&lake).await, 400);
}

#[tokio::test]
async fn merge_with_no_changes_makes_no_commit() {
    let lake = Lake::open("memory://", false).unwrap();
    let t = TableName::staging("t");
    lake.write(&t, vec![batch(0..10)], WriteMode::merge_on(&["id"]))
        .await
        .unwrap();
    let again = lake
        .write(&t, vec![batch(0..10)], WriteMode::merge_on(&["id"]))
        .await
        .unwrap();
    assert!(!again.committed);
    assert_eq!(again.version, Some(0));
    let more = lake
        .write(&t, vec![batch(5..15)], WriteMode::merge_on(&["id"]))
        .await
        .unwrap();
    assert_eq!(
        (more.rows, more.version),
        (5, Some(1)),
        "only the 5 new keys are written"
    );
    assert_eq!(count(&lake).await, 15);
    let dup = lake
        .write(
            &t,
            vec![batch(0..3), batch(2..4)],
            WriteMode::merge_on(&["id"]),
        )
        .await
        .unwrap_err();
    assert!(
        dup.to_string().contains("duplicate merge key (id) = (2)"),
        "{dup}"
    );
}

/// The data files read since the last call.
pub(crate) fn taken_reads(store: &FailCommits) -> BTreeSet<String> {
    store.ranges_read.lock().unwrap().clear();
    std::mem::take(&mut *store.data_files_read.lock().unwrap())
}

/// The data files whose rows were read since the last call (of this or [`taken_reads`]): a read
/// of anything before the Parquet footer (the file's metadata, which a scan reads to prune).
pub(crate) async fn taken_pages_read(store: &FailCommits) -> BTreeSet<String> {
    let ranges = std::mem::take(&mut *store.ranges_read.lock().unwrap());
    store.data_files_read.lock().unwrap().clear();
    let mut out = BTreeSet::new();
    for (file, range) in ranges {
        let size = store.inner.head(&file).await.unwrap().size;
        let tail = store.inner.get_range(&file, size - 8..size).await.unwrap();
        let metadata = u32::from_le_bytes(tail[..4].try_into().unwrap()) as u64;
        let footer = size - 8 - metadata;
        let start = match range {
            None => 0,
            Some(GetRange::Bounded(r)) => r.start,
            Some(GetRange::Offset(o)) => o,
            Some(GetRange::Suffix(n)) => size.saturating_sub(n),
        };
        if start < footer {
            out.insert(file.to_string());
        }
    }
    out
}

/// The operation of the table's newest commit (`WRITE`, `MERGE`, …).
async fn last_operation(lake: &Lake, t: &TableName) -> String {
    let v = lake.version(t).await.unwrap().unwrap();
    let log = lake.path(&format!(
        "{}/{}/_delta_log/{v:020}.json",
        t.zone.as_str(),
        t.name
    ));
    let body = lake.store().get(&log).await.unwrap().bytes().await.unwrap();
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .find_map(|l| {
            let action: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(
                action
                    .get("commitInfo")?
                    .get("operation")?
                    .as_str()?
                    .to_string(),
            )
        })
        .unwrap()
}

#[tokio::test]
async fn a_merge_reads_only_the_files_that_can_hold_its_keys() {
    let store = Arc::new(FailCommits::default());
    let lake = Lake::with_store("memory://", store.clone()).unwrap();
    let t = TableName::staging("t");
    // Ten files with disjoint key ranges, as ten nights of history would leave them.
    for k in 0..10 {
        lake.write(
            &t,
            vec![batch(k * 100..(k + 1) * 100)],
            WriteMode::merge_on(&["id"]),
        )
        .await
        .unwrap();
    }
    let files = store.data_files_written.load(Ordering::SeqCst);
    assert!(files >= 10, "{files} data files");
    taken_reads(&store);

    // One new key past everything stored: no stored file can hold it, none is read.
    let new = lake
        .write(&t, vec![batch(1000..1001)], WriteMode::merge_on(&["id"]))
        .await
        .unwrap();
    assert!(new.committed && new.rows == 1);
    assert_eq!(
        taken_reads(&store),
        BTreeSet::new(),
        "a new key read old files"
    );
    assert_eq!(
        last_operation(&lake, &t).await,
        "WRITE",
        "only new keys: appended, no MERGE scanning the target"
    );

    // A revision of one stored key reads the one file holding it.
    let schema = batch(0..1).schema();
    let revised = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![550])),
            Arc::new(Float64Array::from(vec![-1.0])),
        ],
    )
    .unwrap();
    let out = lake
        .write(&t, vec![revised.clone()], WriteMode::merge_on(&["id"]))
        .await
        .unwrap();
    assert!(out.committed && out.rows == 1);
    let read = taken_reads(&store);
    assert_eq!(read.len(), 1, "a revision of one key read {read:?}");
    assert_eq!(last_operation(&lake, &t).await, "MERGE");
    // The same rows again, into a table nothing wrote to since: known unchanged from the
    // landing's record, no file read.
    let again = lake
        .write(&t, vec![revised], WriteMode::merge_on(&["id"]))
        .await
        .unwrap();
    assert!(!again.committed);
    assert_eq!(taken_reads(&store), BTreeSet::new());
    // Rows equal to the stored ones but not the last landing's: found equal in the one file
    // holding them, no commit.
    let stored = RecordBatch::try_new(
        batch(0..1).schema(),
        vec![
            Arc::new(Int64Array::from(vec![550, 551])),
            Arc::new(Float64Array::from(vec![-1.0, 551.0 * 1.5])),
        ],
    )
    .unwrap();
    let equal = lake
        .write(&t, vec![stored], WriteMode::merge_on(&["id"]))
        .await
        .unwrap();
    assert!(!equal.committed);
    assert_eq!(taken_reads(&store).len(), 1);
    assert_eq!(count(&lake).await, 1001);

    // The server's version check lists the log's tail and reads no log file.
    let newest = lake.version(&t).await.unwrap();
    store.log_files_read.store(0, Ordering::SeqCst);
    assert_eq!(lake.latest_version(&t, Some(3)).await.unwrap(), newest);
    assert_eq!(store.log_files_read.load(Ordering::SeqCst), 0);
    assert_eq!(lake.latest_version(&t, None).await.unwrap(), newest);
}

/// The MERGE shortcut (`lake/landed.rs`): the last landing's rows again are known unchanged without
/// reading the table, but only while nothing else wrote to it, and never for a table made again.
#[tokio::test]
async fn a_merge_of_the_last_landings_rows_is_skipped_only_while_the_table_is_as_it_left_it() {
    let store = Arc::new(FailCommits::default());
    let lake = Lake::with_store("memory://", store.clone()).unwrap();
    let t = TableName::staging("t");
    let merge = || WriteMode::merge_on(&["id"]);
    let a = batch(0..10);
    let mut b = batch(0..10);
    b = RecordBatch::try_new(
        b.schema(),
        vec![
            b.column(0).clone(),
            Arc::new(Float64Array::from_iter_values(
                (0..10).map(|i| if i == 3 { -1.0 } else { i as f64 * 1.5 }),
            )),
        ],
    )
    .unwrap();
    let first = lake.write(&t, vec![a.clone()], merge()).await.unwrap();
    assert_eq!((first.rows, first.version), (10, Some(0)));
    taken_reads(&store);
    let same = lake.write(&t, vec![a.clone()], merge()).await.unwrap();
    assert_eq!(
        (same.rows, same.version, same.committed),
        (0, Some(0), false)
    );
    assert_eq!(
        taken_reads(&store),
        BTreeSet::new(),
        "the shortcut read the table"
    );

    // A revision lands; the first rows again are a revision back, not "the last landing".
    let revised = lake.write(&t, vec![b], merge()).await.unwrap();
    assert_eq!((revised.rows, revised.version), (1, Some(1)));
    let back = lake.write(&t, vec![a.clone()], merge()).await.unwrap();
    assert_eq!(
        (back.rows, back.version),
        (1, Some(2)),
        "the revision was not undone"
    );
    assert_eq!(value(&lake, "select sum(value) from staging.t").await, 67.5);

    // Another write since the last landing: the same rows are compared again (equal: no commit).
    lake.write(&t, vec![batch(0..10)], WriteMode::Overwrite)
        .await
        .unwrap();
    taken_reads(&store);
    let after = lake.write(&t, vec![a.clone()], merge()).await.unwrap();
    assert_eq!((after.committed, after.version), (false, Some(3)));
    assert!(
        !taken_reads(&store).is_empty(),
        "the MERGE did not compare the rows"
    );

    // The table deleted and made again up to the same version (its log restarts at 0, the
    // record left behind): the record is another table's, the rows are merged.
    let folder = lake.path("staging/t");
    let objects: Vec<ObjectMeta> = store.list(Some(&folder)).try_collect().await.unwrap();
    for o in objects {
        if !o.location.as_ref().ends_with("_macrolake_landed.json") {
            store.delete(&o.location).await.unwrap();
        }
    }
    lake.write(&t, vec![batch(0..5)], WriteMode::Append)
        .await
        .unwrap();
    for k in 100..103 {
        lake.write(&t, vec![batch(k..k + 1)], WriteMode::Append)
            .await
            .unwrap();
    }
    assert_eq!(lake.version(&t).await.unwrap(), Some(3));
    let remade = lake.write(&t, vec![a], merge()).await.unwrap();
    assert_eq!((remade.rows, remade.version), (5, Some(4)));
    assert_eq!(count(&lake).await, 13);
}

/// What the Delta log says between two versions: appends (and MERGEs of new keys only) keep every
/// row, a compaction too; an update, a delete or an overwrite does not, nor a range too long to
/// read.
#[tokio::test]
async fn only_appends_and_compactions_keep_every_row_between_two_versions() {
    let store = Arc::new(FailCommits::default());
    let lake = Lake::with_store("memory://", store.clone()).unwrap();
    let t = TableName::staging("t");
    let merge = || WriteMode::merge_on(&["id"]);
    for k in 0..4 {
        lake.write(&t, vec![batch(k * 10..(k + 1) * 10)], merge())
            .await
            .unwrap();
    }
    let v = async |lake: &Lake| lake.version(&t).await.unwrap().unwrap();
    let appended = v(&lake).await;
    assert_eq!(appended, 3);
    assert!(lake.only_added_between(&t, 0, appended).await);
    assert!(
        lake.only_added_between(&t, appended, appended).await,
        "no commit"
    );
    assert!(!lake.only_added_between(&t, appended, 0).await, "backwards");
    // Compaction rewrites the rows as they were.
    lake.optimize(&t, 64).await.unwrap();
    let compacted = v(&lake).await;
    assert!(compacted > appended, "optimize committed");
    assert!(lake.only_added_between(&t, 0, compacted).await);
    // A revision of a stored key rewrites its file: rows may be gone.
    let revised = RecordBatch::try_new(
        batch(0..1).schema(),
        vec![
            Arc::new(Int64Array::from(vec![5])),
            Arc::new(Float64Array::from(vec![-1.0])),
        ],
    )
    .unwrap();
    lake.write(&t, vec![revised], merge()).await.unwrap();
    let merged = v(&lake).await;
    assert!(!lake.only_added_between(&t, compacted, merged).await);
    assert!(!lake.only_added_between(&t, 0, merged).await);
    lake.write(&t, vec![batch(100..101)], merge())
        .await
        .unwrap();
    assert!(lake.only_added_between(&t, merged, merged + 1).await);
    // A delete (replace-where with no rows) and an overwrite.
    let empty = RecordBatch::new_empty(batch(0..1).schema());
    lake.write(&t, vec![empty], WriteMode::ReplaceWhere("id = 100".into()))
        .await
        .unwrap();
    assert!(!lake.only_added_between(&t, merged + 1, merged + 2).await);
    lake.write(&t, vec![batch(0..3)], WriteMode::Overwrite)
        .await
        .unwrap();
    assert!(!lake.only_added_between(&t, merged + 2, merged + 3).await);
    // Too many commits apart to read: not known.
    let far = merged + 3 + macrolake::lake::log::MAX_COMMITS + 1;
    assert!(!lake.only_added_between(&t, merged + 3, far).await);
}
