//! Concurrent writers on one lake: appends and MERGEs from several writers at once all land
//! (Delta's optimistic commits retry on a conflicting version), no row is lost; the scheduler's
//! lease admits exactly one holder. Run on a local lake here, and on S3 (a loopback S3 server)
//! by tests/clients/run.sh through the ignored `s3_` tests.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use macrolake::lake::{Lake, TableName, WriteMode};
use macrolake::schedule::lease::{Acquire, Coordinator};

fn batch(writer: usize, keys: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("writer", DataType::Utf8, false),
    ]));
    let n = keys.clone().count();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(keys)),
            Arc::new(StringArray::from(vec![format!("w{writer}"); n])),
        ],
    )
    .unwrap()
}

async fn count(lake: &Lake, sql: &str) -> i64 {
    let session = lake.session(None, &[]).await.unwrap();
    let batches = macrolake::query::collect(&session.ctx, sql).await.unwrap();
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

/// Eight writers append and then merge into the same tables at the same time.
pub async fn concurrent_writers_lose_nothing(lake: Lake) {
    let appends = TableName::staging("concurrent_appends");
    let merges = TableName::staging("concurrent_merges");
    // The tables exist before the race (creating a table is a one-off, not a nightly event).
    lake.write(&appends, vec![batch(99, 0..1)], WriteMode::Append)
        .await
        .unwrap();
    lake.write(&merges, vec![batch(99, 0..1)], WriteMode::Append)
        .await
        .unwrap();
    let writers = 8usize;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let lake = lake.clone();
            let (appends, merges) = (appends.clone(), merges.clone());
            tokio::spawn(async move {
                let start = 1000 * (w as i64 + 1);
                lake.write(
                    &appends,
                    vec![batch(w, start..start + 100)],
                    WriteMode::Append,
                )
                .await
                .map_err(|e| format!("append w{w}: {e}"))?;
                // Disjoint keys per writer, merged on `key`.
                lake.write(
                    &merges,
                    vec![batch(w, start..start + 50)],
                    WriteMode::merge_on(&["key"]),
                )
                .await
                .map_err(|e| format!("merge w{w}: {e}"))
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        count(&lake, "SELECT count(*) FROM staging.concurrent_appends").await,
        1 + 100 * writers as i64
    );
    assert_eq!(
        count(
            &lake,
            "SELECT count(DISTINCT key) FROM staging.concurrent_merges"
        )
        .await,
        1 + 50 * writers as i64
    );
    assert_eq!(
        count(&lake, "SELECT count(*) FROM staging.concurrent_merges").await,
        1 + 50 * writers as i64,
        "no key written twice"
    );
}

/// Eight daemons race for one job's lease: exactly one wins.
pub async fn one_lease_holder(lake: Lake) {
    let contenders: Vec<_> = (0..8)
        .map(|i| Coordinator::new(&lake, format!("d{i}"), chrono::Duration::seconds(60)))
        .collect();
    let now = chrono::Utc::now();
    let results =
        futures::future::join_all(contenders.iter().map(|c| c.acquire("nightly", now))).await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Ok(Acquire::Acquired(_))))
        .count();
    assert_eq!(won, 1, "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
    concurrent_writers_lose_nothing(lake.clone()).await;
    one_lease_holder(lake).await;
}

fn s3_lake() -> Lake {
    let url = std::env::var("MACROLAKE_TEST_S3_LAKE").expect(
        "MACROLAKE_TEST_S3_LAKE (an s3:// URL on a test endpoint) must be set: tests/clients/run.sh sets it",
    );
    let url = format!("{}/{}", url.trim_end_matches('/'), uuid::Uuid::new_v4());
    Lake::open(&url, true).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs an S3 endpoint: tests/clients/run.sh runs it against a loopback S3 server"]
async fn s3_concurrent_writers_lose_nothing() {
    concurrent_writers_lose_nothing(s3_lake()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs an S3 endpoint: tests/clients/run.sh runs it against a loopback S3 server"]
async fn s3_one_lease_holder() {
    one_lease_holder(s3_lake()).await;
}
