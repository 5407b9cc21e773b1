//! How the lake's Parquet files are laid out: one set of writer properties for every write path
//! (append, overwrite, MERGE, staged builds), so a table's files are alike whichever wrote them.

use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Most rows in one data page. Parquet's own limit is a page's bytes (1 MiB), which for a
/// dictionary-encoded symbol or a date column holds 10–20 thousand rows; a point query (one
/// symbol's days, one day of a mart) then decodes whole pages of rows it does not want after the
/// page index has picked them. 4,096 rows a page cuts that work four- to fivefold for a few
/// bytes of page headers per page.
pub const DATA_PAGE_ROWS: usize = 4096;

/// The writer properties of every lake write: delta-rs's defaults (Snappy, its `created_by`)
/// plus [`DATA_PAGE_ROWS`].
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(format!("macrolake {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_data_page_row_count_limit(DATA_PAGE_ROWS)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
