//! A write that dies after its data files are written but before its commit leaves the table at
//! its previous version with no extra rows.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::stream::BoxStream;
use macrolake::lake::{Lake, TableName, WriteMode};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// An in-memory store that, when armed, refuses every write into a `_delta_log/` folder: the
/// Delta commit step. Data files still get written.
#[derive(Debug)]
struct FailCommits {
    inner: InMemory,
    armed: AtomicBool,
    data_files_written: AtomicUsize,
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

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
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
    let s = lake.session(None, &[]).await.unwrap();
    let b = s
        .ctx
        .sql("select count(*) from staging.t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    b[0].column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

#[tokio::test]
async fn a_commit_failure_after_data_files_leaves_the_previous_version() {
    let store = Arc::new(FailCommits {
        inner: InMemory::new(),
        armed: AtomicBool::new(false),
        data_files_written: AtomicUsize::new(0),
    });
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
