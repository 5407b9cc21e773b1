//! How the lake's Parquet files are laid out: one set of writer properties for every write path
//! (append, overwrite, MERGE, staged builds, `optimize`), so a table's files are alike whichever
//! wrote them.

use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Most rows in one data page. Parquet's own limit is a page's bytes (1 MiB), which for a
/// dictionary-encoded symbol or a date column holds 10–20 thousand rows; a point query (one
/// symbol's days, one day of a mart) then decodes whole pages of rows it does not want after the
/// page index has picked them. With 4,096 rows a page, one symbol since 2025 in the 13M-row
/// `asset_daily` leaves 10,190 rows to decode instead of 22,480 (scan 31 ms → 2.5 ms in a fresh
/// process); the files grow about 1% (`docs/benchmarks.md`).
pub const DATA_PAGE_ROWS: usize = 4096;

/// The writer properties of every lake write: Snappy, as delta-rs writes by default (its
/// `optimize` would write Zstd), [`DATA_PAGE_ROWS`], and macrolake as the `created_by`.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(format!("macrolake {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_data_page_row_count_limit(DATA_PAGE_ROWS)
        .build()
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};

    use super::*;
    use crate::lake::{Lake, TableName, WriteMode, Zone};

    #[test]
    fn pages_are_bounded_by_rows_and_files_stay_snappy() {
        let props = writer_properties();
        assert_eq!(props.data_page_row_count_limit(), DATA_PAGE_ROWS);
        // Write batches must not exceed the page bound, or the bound is only checked per batch.
        assert!(props.write_batch_size() <= DATA_PAGE_ROWS);
        assert_eq!(
            props.compression(&parquet::schema::types::ColumnPath::from("symbol")),
            Compression::SNAPPY
        );
    }

    /// Every Parquet file below the table's folder: (path, rows of each page of each column
    /// chunk, compression of each column chunk).
    async fn pages(lake: &Lake, table: &str) -> Vec<(String, Vec<usize>, Vec<Compression>)> {
        let store = lake.store();
        let objects: Vec<_> = store
            .list(Some(&lake.path(table)))
            .try_collect()
            .await
            .unwrap();
        let mut out = Vec::new();
        for o in objects {
            let path = o.location.to_string();
            if !path.ends_with(".parquet") || path.contains("_delta_log") {
                continue;
            }
            let bytes = store.get(&o.location).await.unwrap().bytes().await.unwrap();
            let meta = ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Required)
                .parse_and_finish(&bytes)
                .unwrap();
            let mut rows = Vec::new();
            let mut codecs = Vec::new();
            let offsets = meta.offset_index().expect("an offset index");
            for (rg, columns) in meta.row_groups().iter().zip(offsets) {
                for (chunk, index) in rg.columns().iter().zip(columns) {
                    codecs.push(chunk.compression());
                    let starts: Vec<i64> = index
                        .page_locations()
                        .iter()
                        .map(|p| p.first_row_index)
                        .chain([rg.num_rows()])
                        .collect();
                    rows.extend(starts.windows(2).map(|w| (w[1] - w[0]) as usize));
                }
            }
            out.push((path, rows, codecs));
        }
        out
    }

    #[tokio::test]
    async fn every_write_path_writes_bounded_pages_and_snappy() {
        let lake = Lake::open("memory://", false).unwrap();
        let table = TableName {
            zone: Zone::Marts,
            name: "t".to_string(),
        };
        let ctx = datafusion::prelude::SessionContext::new();
        let rows =
            "SELECT value AS id, CAST(value % 7 AS VARCHAR) AS s FROM generate_series(1, 10000)";
        // A staged build, then an append, then a compaction of both into one file.
        lake.stage(&table, ctx.sql(rows).await.unwrap())
            .await
            .unwrap()
            .publish(&lake)
            .await
            .unwrap();
        let batches = ctx.sql(rows).await.unwrap().collect().await.unwrap();
        lake.write(&table, batches, WriteMode::Append)
            .await
            .unwrap();
        let compacted = lake.optimize(&table, 64).await.unwrap();
        assert_eq!(compacted.files_added, 1, "{compacted:?}");

        let files = pages(&lake, "marts/t").await;
        assert_eq!(
            files.len(),
            3,
            "staged, appended and compacted files: {files:?}"
        );
        for (path, rows, codecs) in &files {
            assert!(
                rows.iter().all(|&r| r > 0 && r <= DATA_PAGE_ROWS),
                "{path}: pages of {rows:?} rows"
            );
            // 10,000 or 20,000 rows in pages of at most 4,096: at least three pages a column.
            assert!(rows.len() >= 3 * codecs.len(), "{path}: {rows:?}");
            assert!(
                codecs.iter().all(|c| *c == Compression::SNAPPY),
                "{path}: {codecs:?}"
            );
        }
    }
}
