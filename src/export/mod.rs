//! `macrolake export`: lake tables to files, one per table, as Parquet or CSV that Excel, pandas,
//! DuckDB and Power BI read without options.
//!
//! A file is named `<zone>.<table>.<parquet|csv>` (`marts.liquidity_vs_risk.parquet`) and lands
//! whole or not at all: in a local folder it is written to a temporary file next to it and
//! renamed into place; under an object-store URL (`s3://bucket/prefix`, `file:///…`, `gs://…`,
//! `az://…`) it is one `put`, which object stores apply atomically. Every name is checked before
//! anything is written, and all tables are read from one session, so they come from the same
//! lake versions. Rows are sorted by every column from left to right (by `date` for the marts),
//! so exporting the same data twice gives the same file.

mod sink;
mod stream;

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::logical_expr::SortExpr;
use datafusion::prelude::{DataFrame, ident};

use crate::lake::{AsOf, QuerySession};
use crate::query::{self, Format};
use sink::Destination;
pub use stream::TableStream;

/// The zones (SQL schemas) whose tables can be exported.
const ZONES: [&str; 4] = ["marts", "staging", "meta", "seeds"];

/// `export` arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Tables to export: `liquidity_vs_risk` (a mart) or `zone.table`
    /// (`staging.fred_observations`, `meta.runs`, `seeds.fomc_meetings`).
    #[arg(value_name = "MODEL", required = true)]
    pub models: Vec<String>,
    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Parquet)]
    pub format: ExportFormat,
    /// Destination: a folder (created if missing) or an object-store URL prefix
    /// (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///…`).
    #[arg(long, value_name = "DIR|URL")]
    pub to: String,
    /// Time travel: a Delta version number, an RFC 3339 time or a YYYY-MM-DD date.
    #[arg(long, value_name = "VERSION|TIME")]
    pub as_of: Option<AsOf>,
}

/// Export file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Parquet, Snappy-compressed, Arrow types kept.
    Parquet,
    /// CSV with a header row, ISO 8601 dates, RFC 3339 timestamps, `.` decimals.
    Csv,
}

impl ExportFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            ExportFormat::Csv => "csv",
        }
    }

    fn query_format(self) -> Format {
        match self {
            ExportFormat::Parquet => Format::Parquet,
            ExportFormat::Csv => Format::Csv,
        }
    }
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The table, `zone.name`.
    pub table: String,
    /// Where the file is: a local path or a URL.
    pub location: String,
    /// Rows written.
    pub rows: usize,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Errors of `macrolake export`.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A name matches no table; nothing was written.
    #[error(
        "no table {name:?} in the lake{}; tables: {}. Nothing was written",
        .hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default(),
        if .available.is_empty() { "none (run `macrolake run nightly` or `macrolake ingest` first)".to_string() } else { .available.join(", ") }
    )]
    UnknownTable {
        /// The name as given.
        name: String,
        /// What it probably meant, if anything.
        hint: Option<String>,
        /// Every exportable table, `zone.name`.
        available: Vec<String>,
    },
    /// `--to` cannot be used.
    #[error("--to {to:?}: {message}")]
    Destination {
        /// What was given.
        to: String,
        /// Why it cannot be used and what to do.
        message: String,
    },
    /// The lake's catalog could not be read.
    #[error("cannot read the lake: {source}")]
    Lake {
        /// The query's error.
        #[source]
        source: Box<query::QueryError>,
    },
    /// Reading a table failed.
    #[error("reading {table} failed: {source}")]
    Read {
        /// The table.
        table: String,
        /// DataFusion's error.
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    /// Encoding a table failed.
    #[error("encoding {table} as {format:?} failed: {source}")]
    Encode {
        /// The table.
        table: String,
        /// The format.
        format: ExportFormat,
        /// The encoder's error.
        #[source]
        source: query::QueryError,
    },
    /// Writing a local file failed; the previous file, if any, is unchanged.
    #[error("cannot write {path}: {source} (any previous file there is unchanged)")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Putting an object failed; the previous object, if any, is unchanged.
    #[error("cannot put {url}: {source} (check the credentials and that the bucket exists)")]
    Put {
        /// The object's URL.
        url: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
}

/// Resolves a name as given (`liquidity_vs_risk`, `staging.fred_observations`) against the
/// exportable tables (`(zone, name)` pairs). A bare name means a mart.
pub fn resolve(input: &str, tables: &[(String, String)]) -> Result<(String, String), ExportError> {
    let wanted = input.trim().to_ascii_lowercase();
    let (zone, name) = match wanted.split_once('.') {
        Some((zone, name)) => (zone.to_string(), name.to_string()),
        None => ("marts".to_string(), wanted.clone()),
    };
    if tables.iter().any(|(z, n)| *z == zone && *n == name) {
        return Ok((zone, name));
    }
    let elsewhere: Vec<String> = tables
        .iter()
        .filter(|(_, n)| *n == name)
        .map(|(z, n)| format!("{z}.{n}"))
        .collect();
    let hint = if !elsewhere.is_empty() {
        Some(format!("did you mean {}?", elsewhere.join(" or ")))
    } else if !wanted.contains('.') {
        Some(format!("a bare name means marts.{name}"))
    } else if !ZONES.contains(&zone.as_str()) {
        Some(format!("zones are {}", ZONES.join(", ")))
    } else {
        None
    };
    Err(ExportError::UnknownTable {
        name: input.to_string(),
        hint,
        available: tables.iter().map(|(z, n)| format!("{z}.{n}")).collect(),
    })
}

/// Resolves `inputs` to tables of `session` (each once, in the order given), so they are all
/// read from the same lake versions.
async fn select(
    session: &QuerySession,
    inputs: &[String],
) -> Result<Vec<(String, String)>, ExportError> {
    let tables = exportable_tables(&session.ctx).await?;
    let mut selected: Vec<(String, String)> = Vec::new();
    for input in inputs {
        let table = resolve(input, &tables)?;
        if !selected.contains(&table) {
            selected.push(table);
        }
    }
    Ok(selected)
}

/// Exports the tables named in `args` from `session` (opened as of `args.as_of`) and returns one
/// entry per file, in the order given. `allow_http`: plain-HTTP object stores are allowed
/// (`[lake] allow_http`).
pub async fn export(
    session: &QuerySession,
    allow_http: bool,
    args: &ExportArgs,
) -> Result<Vec<Exported>, ExportError> {
    let destination = Destination::parse(&args.to, allow_http)?;
    let selected = select(session, &args.models).await?;
    destination.prepare(&args.to)?;
    let mut written = Vec::new();
    for table in &selected {
        written.push(export_one(&session.ctx, table, args.format, &destination).await?);
    }
    Ok(written)
}

/// Every `(zone, name)` in the session that can be exported, sorted.
async fn exportable_tables(
    ctx: &datafusion::prelude::SessionContext,
) -> Result<Vec<(String, String)>, ExportError> {
    let read_err = |source| ExportError::Read {
        table: "information_schema.tables".into(),
        source: Box::new(source),
    };
    let batches = query::collect(
        ctx,
        "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2",
    )
    .await
    .map_err(|e| match e {
        query::QueryError::Sql(source) => read_err(source),
        other => ExportError::Lake {
            source: Box::new(other),
        },
    })?;
    Ok(query::render_rows(&batches)
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [zone, name] if ZONES.contains(&zone.as_str()) => Some((zone.clone(), name.clone())),
            _ => None,
        })
        .collect())
}

/// The error of reading `zone.name`.
fn read_err(zone: &str, name: &str) -> impl Fn(datafusion::error::DataFusionError) -> ExportError {
    let table = format!("{zone}.{name}");
    move |source| ExportError::Read {
        table: table.clone(),
        source: Box::new(source),
    }
}

/// The query of a whole table sorted by every orderable column from left to right (ascending,
/// NULLs last, as `ORDER BY 1, 2, …` sorts), and the table's schema.
async fn sorted(
    ctx: &datafusion::prelude::SessionContext,
    zone: &str,
    name: &str,
) -> Result<(DataFrame, SchemaRef), ExportError> {
    let read_err = read_err(zone, name);
    let df = ctx
        .table(TableReference::partial(zone, name))
        .await
        .map_err(&read_err)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let order: Vec<SortExpr> = schema
        .fields()
        .iter()
        .filter(|f| !f.data_type().is_nested())
        .map(|f| ident(f.name()).sort(true, false))
        .collect();
    let df = if order.is_empty() {
        df
    } else {
        df.sort(order).map_err(read_err)?
    };
    Ok((df, schema))
}

/// Writes one table, sorted, into `destination` batch by batch: memory holds a batch and a
/// Parquet row group, not the table. The file appears whole or not at all.
async fn export_one(
    ctx: &datafusion::prelude::SessionContext,
    table: &(String, String),
    format: ExportFormat,
    destination: &Destination,
) -> Result<Exported, ExportError> {
    let mut chunks = TableStream::open(ctx, table, format).await?;
    let file_name = format!("{}.{}", chunks.table, format.extension());
    let (mut sink, location) = destination.open(&file_name).await?;
    let mut bytes = 0;
    let result = async {
        while let Some(chunk) = chunks.next_chunk().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            sink.put(&chunk).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => sink.finish().await.map(|()| Exported {
            table: chunks.table.clone(),
            location,
            rows: chunks.rows(),
            bytes,
        }),
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    }
}

/// One table (`liquidity_vs_risk` or `zone.table`) of `session`, sorted and encoded as `export`
/// writes it, as a stream of chunks (the status page's downloads).
pub async fn open_table(
    session: &QuerySession,
    input: &str,
    format: ExportFormat,
) -> Result<TableStream, ExportError> {
    let selected = select(session, &[input.to_string()]).await?;
    TableStream::open(&session.ctx, &selected[0], format).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Vec<(String, String)> {
        [
            ("marts", "liquidity_vs_risk"),
            ("meta", "runs"),
            ("staging", "fred_observations"),
            ("staging", "prices_daily"),
        ]
        .iter()
        .map(|(z, n)| (z.to_string(), n.to_string()))
        .collect()
    }

    #[test]
    fn bare_names_are_marts_and_qualified_names_are_exact() {
        let t = tables();
        assert_eq!(
            resolve("liquidity_vs_risk", &t).unwrap(),
            ("marts".into(), "liquidity_vs_risk".into())
        );
        assert_eq!(
            resolve(" Staging.FRED_observations ", &t).unwrap(),
            ("staging".into(), "fred_observations".into())
        );
        assert_eq!(
            resolve("meta.runs", &t).unwrap(),
            ("meta".into(), "runs".into())
        );
    }

    #[test]
    fn unknown_names_list_the_tables_and_hint_at_the_zone() {
        let t = tables();
        let err = resolve("prices_daily", &t).unwrap_err().to_string();
        assert!(err.contains("did you mean staging.prices_daily?"), "{err}");
        assert!(
            err.contains("marts.liquidity_vs_risk, meta.runs, staging.fred_observations"),
            "{err}"
        );
        let err = resolve("nope", &t).unwrap_err().to_string();
        assert!(err.contains("a bare name means marts.nope"), "{err}");
        let err = resolve("raw.nope", &t).unwrap_err().to_string();
        assert!(
            err.contains("zones are marts, staging, meta, seeds"),
            "{err}"
        );
        let err = resolve("x", &[]).unwrap_err().to_string();
        assert!(err.contains("tables: none (run"), "{err}");
    }
}
