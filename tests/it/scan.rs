//! Queries read a table version's files as plain Parquet (`lake/snapshot_scan.rs`): the same
//! schema and rows as deltalake's provider, only the files a filter can match, counts and date
//! bounds from the log's exact statistics, float extremes (NaN) from the data, and files from
//! before a column was added read with NULLs.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use macrolake::lake::{Lake, TableName, WriteMode};

use super::atomic::{FailCommits, batch, taken_reads};

async fn text(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

/// `sql` through the lake's session and through deltalake's own provider of the same version.
async fn both(lake: &Lake, table: &TableName, sql: &str) -> (String, String) {
    let session = lake.session(None, &[]).await.unwrap();
    let ours = text(&session.ctx, sql).await;
    let delta = SessionContext::new();
    let loaded = lake.load(table, None).await.unwrap();
    loaded.update_datafusion_session(&delta.state()).unwrap();
    let provider = loaded.table_provider().await.unwrap();
    let schema = session
        .ctx
        .table(table.to_string().as_str())
        .await
        .unwrap()
        .schema()
        .inner()
        .clone();
    assert_eq!(schema, provider.schema(), "{table}: the schema differs");
    delta.register_table("t", provider).unwrap();
    let theirs = text(&delta, &sql.replace(&table.to_string(), "t")).await;
    (ours, theirs)
}

#[tokio::test]
async fn a_query_reads_the_files_its_filter_can_match_and_answers_from_exact_statistics() {
    let store = Arc::new(FailCommits::default());
    let lake = Lake::with_store("memory://", store.clone()).unwrap();
    let t = TableName::staging("t");
    // Ten files with disjoint key ranges, as ten nights of history would leave them.
    for k in 0..10 {
        lake.write(&t, vec![batch(k * 100..(k + 1) * 100)], WriteMode::Append)
            .await
            .unwrap();
    }
    let session = lake.session(None, &[]).await.unwrap();
    taken_reads(&store);

    // One key: the one file whose statistics in the log can hold it; the others' footers are not
    // even read.
    let one = text(&session.ctx, "SELECT value FROM staging.t WHERE id = 550").await;
    assert!(one.contains("| 825.0 |"), "{one}");
    let read = taken_reads(&store);
    assert_eq!(read.len(), 1, "a point query read {read:?}");

    // Counts and integer bounds come from the log: no file is opened.
    let counts = "SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM staging.t";
    let answer = text(&session.ctx, counts).await;
    assert!(answer.contains("| 1000 | 0  | 999 |"), "{answer}");
    assert_eq!(taken_reads(&store), BTreeSet::new(), "a count read files");

    // A float's extremes are read from the data: the log's leave NaN out (this file's say 1.0), as
    // do the footers DataFusion's running-maximum filter would prune by (`query_config`).
    let nan = RecordBatch::try_new(
        batch(0..1).schema(),
        vec![
            Arc::new(Int64Array::from(vec![5000, 5001])),
            Arc::new(Float64Array::from(vec![f64::NAN, 1.0])),
        ],
    )
    .unwrap();
    lake.write(&t, vec![nan], WriteMode::Append).await.unwrap();
    // (Ten times: which partition finishes first decided it.)
    for _ in 0..10 {
        let (ours, theirs) = both(&lake, &t, "SELECT max(value) AS m FROM staging.t").await;
        assert!(ours.contains("NaN"), "{ours}");
        assert_eq!(ours, theirs);
    }

    // A column added later: the older files read it as NULL, with deltalake's answer.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("note", DataType::Utf8, true),
    ]));
    let noted = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![2000])),
            Arc::new(Float64Array::from(vec![1.0])),
            Arc::new(StringArray::from(vec!["late"])),
        ],
    )
    .unwrap();
    lake.write(&t, vec![noted], WriteMode::Append)
        .await
        .unwrap();
    let sql = "SELECT id, value, note FROM staging.t WHERE id IN (5, 2000) OR note IS NOT NULL \
               ORDER BY id";
    let (ours, theirs) = both(&lake, &t, sql).await;
    assert!(ours.contains("| 5    | 7.5   |      |"), "{ours}");
    assert!(ours.contains("| 2000 | 1.0   | late |"), "{ours}");
    assert_eq!(ours, theirs);
    let (ours, theirs) = both(&lake, &t, "SELECT * FROM staging.t ORDER BY id").await;
    assert_eq!(ours, theirs);
}

#[tokio::test]
async fn every_table_of_the_snapshot_reads_as_deltalake_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(
        super::common::nightly_lake(dir.path()).to_str().unwrap(),
        false,
    )
    .unwrap();
    let tables = lake.tables().await.unwrap();
    assert!(tables.len() > 20, "{tables:?}");
    for table in tables {
        let (ours, theirs) = both(&lake, &table, &format!("SELECT * FROM {table}")).await;
        let sorted = |s: &str| {
            let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&ours), sorted(&theirs), "{table} reads differently");
    }
}
