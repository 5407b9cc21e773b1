//! `macrolake sql`: run a query over the lake and print or write the result as a table, CSV,
//! JSON (an array of objects) or Parquet.

use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;

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
    ctx.sql(sql)
        .await
        .map_err(QueryError::Sql)?
        .collect()
        .await
        .map_err(QueryError::Sql)
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
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                for b in batches {
                    w.write(b).map_err(|e| fmt_err(e.to_string()))?;
                }
            }
            Ok(out)
        }
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

/// The batches with string and binary *view* columns (DataFusion's in-memory layout) cast to
/// plain `Utf8`/`Binary`, which every Parquet reader understands (older pyarrow, Power BI,
/// Spark).
pub fn portable(
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let plain = |t: &DataType| match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    };
    let schema = std::sync::Arc::new(Schema::new_with_metadata(
        first
            .schema()
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), plain(f.data_type()), f.is_nullable()))
            .collect::<Vec<_>>(),
        first.schema().metadata().clone(),
    ));
    batches
        .iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(schema.clone(), columns)
        })
        .collect()
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
    let write_err = |source| QueryError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        if format == Format::Parquet {
            let batches = &portable(batches).map_err(|e| QueryError::Format {
                format,
                message: e.to_string(),
            })?;
            let file = std::fs::File::create(&tmp).map_err(write_err)?;
            let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| {
                std::sync::Arc::new(datafusion::arrow::datatypes::Schema::empty())
            });
            let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(|e| {
                QueryError::Format {
                    format,
                    message: e.to_string(),
                }
            })?;
            for b in batches {
                w.write(b).map_err(|e| QueryError::Format {
                    format,
                    message: e.to_string(),
                })?;
            }
            w.close().map_err(|e| QueryError::Format {
                format,
                message: e.to_string(),
            })?;
        } else {
            std::fs::write(&tmp, render(batches, format)?).map_err(write_err)?;
        }
        std::fs::rename(&tmp, path).map_err(write_err)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
