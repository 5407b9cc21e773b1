//! `macrolake sql`: run a query over the lake and print or write the result as a table, CSV,
//! JSON (an array of objects) or Parquet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
    /// A Parquet file (needs `--output`).
    Parquet,
}

impl Format {
    /// The format of an export: `name` (csv, json, parquet) when given, else from `path`'s
    /// extension, else CSV.
    pub fn for_file(name: Option<&str>, path: &std::path::Path) -> Result<Format, String> {
        let ext = path.extension().and_then(|e| e.to_str());
        match name.map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            Some("parquet") => Ok(Format::Parquet),
            Some(other) => Err(format!("unknown format {other:?} (csv, json or parquet)")),
            None => Ok(match ext {
                Some("json") => Format::Json,
                Some("parquet") => Format::Parquet,
                _ => Format::Csv,
            }),
        }
    }
}

/// Every row of a result as display strings (NULL as empty), for small status tables.
pub fn render_rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("");
    let mut rows = Vec::new();
    for batch in batches {
        let Ok(formatters) = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        for r in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    rows
}

/// Errors of a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Planning or running the SQL failed.
    #[error("query failed: {0}")]
    Sql(#[source] datafusion::error::DataFusionError),
    /// Formatting the result failed.
    #[error("cannot format the result as {format:?}: {message}")]
    Format {
        /// The format.
        format: Format,
        /// Why.
        message: String,
    },
    /// Parquet output needs a file.
    #[error("--format parquet writes a binary file: give --output FILE")]
    ParquetNeedsOutput,
    /// Writing the output failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs SQL and collects the result.
pub async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let hint = |e| QueryError::Sql(crate::lake::session::memory_hint(ctx, e));
    ctx.sql(sql)
        .await
        .map_err(hint)?
        .collect()
        .await
        .map_err(hint)
}

/// Runs SQL and collects the result with its schema, which is known even when no row comes back.
pub async fn collect_with_schema(
    ctx: &SessionContext,
    sql: &str,
) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
    let df = ctx.sql(sql).await.map_err(QueryError::Sql)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df
        .collect()
        .await
        .map_err(|e| QueryError::Sql(crate::lake::session::memory_hint(ctx, e)))?;
    Ok((schema, batches))
}

/// Renders batches in a text format.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<Vec<u8>, QueryError> {
    let fmt_err = |message: String| QueryError::Format { format, message };
    match format {
        Format::Table => {
            let mut s = pretty_format_batches(batches)
                .map_err(|e| fmt_err(e.to_string()))?
                .to_string();
            s.push('\n');
            Ok(s.into_bytes())
        }
        Format::Csv => encode_all(batches, format),
        Format::Json => {
            let mut out = Vec::new();
            {
                let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
                for b in batches {
                    w.write(b).map_err(|e| fmt_err(e.to_string()))?;
                }
                w.finish().map_err(|e| fmt_err(e.to_string()))?;
            }
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
            out.push(b'\n');
            Ok(out)
        }
        Format::Parquet => Err(QueryError::ParquetNeedsOutput),
    }
}

/// Rows per Parquet row group: big enough for good compression and few footers, small enough
/// that readers (Power BI, DuckDB, pandas) can work one group at a time.
pub const PARQUET_ROW_GROUP_ROWS: usize = 128 * 1024;

/// A result as the bytes of a file: text formats as [`render`] makes them; Parquet with Snappy
/// compression (the codec every Parquet reader has, Excel's and Power BI's included), row groups
/// of at most [`PARQUET_ROW_GROUP_ROWS`] rows, and the Arrow types kept (Date32, timestamps with
/// their UTC zone, decimals, Float64 …) except that string/binary *view* columns are written as
/// plain strings/binaries, which older readers understand. An empty result without batches
/// writes a file without columns: pass `RecordBatch::new_empty(schema)` to keep the schema.
pub fn encode(batches: &[RecordBatch], format: Format) -> Result<Vec<u8>, QueryError> {
    if format != Format::Parquet {
        return render(batches, format);
    }
    encode_all(batches, format)
}

/// `batches` through a [`FileEncoder`] into memory.
fn encode_all(batches: &[RecordBatch], format: Format) -> Result<Vec<u8>, QueryError> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    let mut encoder = FileEncoder::new(Vec::new(), &schema, format)?;
    for batch in batches {
        encoder.write(batch)?;
    }
    encoder.finish()
}

/// Encodes rows one batch at a time into `W`, as CSV (what [`render`] writes) or Parquet (what
/// [`encode`] writes), so that a whole table can be written without holding it in memory.
pub struct FileEncoder<W: Write + Send> {
    format: Format,
    inner: Encoder<W>,
}

enum Encoder<W: Write + Send> {
    Csv(datafusion::arrow::csv::Writer<W>),
    Parquet {
        writer: ArrowWriter<W>,
        /// The file's schema: view columns as plain ones.
        schema: SchemaRef,
    },
}

impl<W: Write + Send> FileEncoder<W> {
    /// An encoder of rows of `schema` in `format` (CSV or Parquet) into `out`.
    pub fn new(out: W, schema: &Schema, format: Format) -> Result<Self, QueryError> {
        let fmt_err = |message: String| QueryError::Format { format, message };
        let inner = match format {
            Format::Csv => Encoder::Csv(
                datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            ),
            Format::Parquet => {
                let schema = Arc::new(plain_schema(schema));
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
                    .build();
                let writer = ArrowWriter::try_new(out, schema.clone(), Some(props))
                    .map_err(|e| fmt_err(e.to_string()))?;
                Encoder::Parquet { writer, schema }
            }
            other => return Err(fmt_err(format!("{other:?} is not written batch by batch"))),
        };
        Ok(Self { format, inner })
    }

    /// Encodes one batch (with the encoder's schema).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), QueryError> {
        let format = self.format;
        let fmt_err = |message: String| QueryError::Format { format, message };
        match &mut self.inner {
            Encoder::Csv(w) => w.write(batch).map_err(|e| fmt_err(e.to_string())),
            Encoder::Parquet { writer, schema } => {
                let columns = batch
                    .columns()
                    .iter()
                    .zip(schema.fields())
                    .map(|(column, field)| {
                        if column.data_type() == field.data_type() {
                            Ok(column.clone())
                        } else {
                            cast(column, field.data_type())
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| fmt_err(e.to_string()))?;
                let plain = RecordBatch::try_new(schema.clone(), columns)
                    .map_err(|e| fmt_err(e.to_string()))?;
                writer.write(&plain).map_err(|e| fmt_err(e.to_string()))
            }
        }
    }

    /// Ends the file (Parquet's footer) and returns the writer.
    pub fn finish(self) -> Result<W, QueryError> {
        let format = self.format;
        match self.inner {
            Encoder::Csv(w) => Ok(w.into_inner()),
            Encoder::Parquet { writer, .. } => {
                writer.into_inner().map_err(|e| QueryError::Format {
                    format,
                    message: e.to_string(),
                })
            }
        }
    }
}

/// `schema` with string/binary view columns as plain strings/binaries.
fn plain_schema(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let plain = match f.data_type() {
                DataType::Utf8View => DataType::Utf8,
                DataType::BinaryView => DataType::Binary,
                other => other.clone(),
            };
            f.as_ref().clone().with_data_type(plain)
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// Writes `bytes` to `path` atomically: see [`write_atomic_with`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Writes a file atomically: `fill` writes a new hidden temporary file in the same folder
/// (`.<name>.tmp-<pid>-<n>`), which is flushed to disk and renamed over `path`. Readers see the
/// old file or the complete new one, never a part; when anything fails the temporary file is
/// removed and the old file, if any, is left as it was. The folder must exist.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    fill(file.file())?;
    file.commit()
}

/// A file written under a hidden temporary name in the folder of `path`
/// (`.<name>.tmp-<pid>-<n>`) and renamed over `path` by [`AtomicFile::commit`]; dropped
/// uncommitted (an error, a panic), the temporary file is removed and `path` is left as it was.
pub struct AtomicFile {
    path: PathBuf,
    /// The temporary file's path, until it is renamed.
    tmp: Option<PathBuf>,
    file: Option<std::fs::File>,
}

impl AtomicFile {
    /// Creates the temporary file. The folder must exist.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = path.file_name().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create_new(&tmp)?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp: Some(tmp),
            file: Some(file),
        })
    }

    /// The temporary file, to write to.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.file.as_mut().expect("open until committed")
    }

    /// Flushes the file to disk and renames it over `path`.
    pub fn commit(mut self) -> std::io::Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        let tmp = self.tmp.as_ref().expect("renamed once");
        std::fs::rename(tmp, &self.path)?;
        self.tmp = None;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        drop(self.file.take());
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Writes the result to a file (atomically: a temporary file renamed into place) or stdout.
pub fn emit(
    batches: &[RecordBatch],
    format: Format,
    output: Option<&Path>,
) -> Result<(), QueryError> {
    let Some(path) = output else {
        let bytes = render(batches, format)?;
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(&bytes)
            .and_then(|_| stdout.flush())
            .map_err(|source| QueryError::Write {
                path: "<stdout>".into(),
                source,
            });
    };
    let bytes = encode(batches, format)?;
    write_atomic(path, &bytes).map_err(|source| QueryError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{Date32Array, StringViewArray};

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        write_atomic(&path, b"first\n").unwrap();
        write_atomic(&path, b"second\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second\n");
        assert_eq!(files_in(dir.path()), ["out.csv"]);
    }

    #[test]
    fn a_failed_atomic_write_keeps_the_old_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |file| {
            file.write_all(b"half of the new")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(files_in(dir.path()), ["out.parquet"]);
        // A missing folder is an error, and nothing is created.
        let missing = dir.path().join("no/such/dir/x.csv");
        assert!(write_atomic(&missing, b"x").is_err());
        assert!(!dir.path().join("no").exists());
    }

    #[test]
    fn parquet_keeps_types_but_writes_view_strings_as_plain_strings() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("date", DataType::Date32, false),
            Field::new("symbol", DataType::Utf8View, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Date32Array::from(vec![20_000, 20_001])),
                Arc::new(StringViewArray::from(vec![Some("BTC-USD"), None])),
            ],
        )
        .unwrap();
        let bytes = encode(&[batch], Format::Parquet).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap();
        let metadata = reader.metadata().clone();
        let read: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
        let schema = read[0].schema();
        assert_eq!(schema.field(0).data_type(), &DataType::Date32);
        assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
        assert_eq!(
            render(&read, Format::Csv).unwrap(),
            b"date,symbol\n2024-10-04,BTC-USD\n2024-10-05,\n"
        );
        let column = metadata.row_group(0).column(0);
        assert_eq!(column.compression(), parquet::basic::Compression::SNAPPY);
    }
}
