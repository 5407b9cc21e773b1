//! `macrolake chart`: net liquidity vs bitcoin vs the Russell 2000 from
//! `marts.liquidity_vs_risk`, with the days the mart flags as a divergence shaded, as a PNG or
//! SVG file.
//!
//! Two layouts: `normalised` rebases every series to 100 at its first value in the range, on
//! one axis; `dual-axis` puts net liquidity in $ trillion on the left and the two assets,
//! rebased, on the right. Text uses an embedded font ([`font`]), so rendering needs no system
//! fonts. The file is written atomically (temporary file renamed into place).

mod axes;
mod font;
mod render;

use std::path::{Path, PathBuf};

use chrono::{Months, NaiveDate};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Date32Type, Float64Type};

use crate::lake::QuerySession;
use crate::lake::{AsOf, TableName};
use crate::query::QueryError;

/// The mart charts read.
const MART: &str = "liquidity_vs_risk";

/// `chart` arguments.
#[derive(Debug, clap::Args)]
pub struct ChartArgs {
    /// First day (YYYY-MM-DD) [default: one year before --to].
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD) [default: the newest day in marts.liquidity_vs_risk].
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// The image to write: a .png or .svg file (replaced atomically; folders created).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Layout: every series rebased to 100 on one axis, or liquidity ($) left and assets right.
    #[arg(long, value_enum, default_value_t = ChartMode::Normalised)]
    pub mode: ChartMode,
    /// Width in pixels.
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    /// Height in pixels.
    #[arg(long, default_value_t = 600)]
    pub height: u32,
    /// Time travel: a Delta version number, an RFC 3339 time or a YYYY-MM-DD date.
    #[arg(long, value_name = "VERSION|TIME")]
    pub as_of: Option<AsOf>,
}

/// Chart layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChartMode {
    /// Each series rebased to 100 at its first value in the range, one axis.
    #[value(alias = "normalized")]
    Normalised,
    /// Net liquidity in $ trillion on the left axis; bitcoin and the Russell 2000 rebased to
    /// 100 on the right.
    DualAxis,
}

/// Image formats, chosen by the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// PNG (`.png`).
    Png,
    /// SVG (`.svg`).
    Svg,
}

impl ImageFormat {
    /// The format for `path`'s extension (case-insensitive), if it is one.
    pub fn for_path(path: &Path) -> Option<ImageFormat> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Some(ImageFormat::Png),
            Some("svg") => Some(ImageFormat::Svg),
            _ => None,
        }
    }
}

/// Errors of `macrolake chart`.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The output's extension is not a known image format.
    #[error("--out {path}: unknown image format; name the file .png or .svg")]
    UnsupportedFormat {
        /// The output path.
        path: PathBuf,
    },
    /// The size is out of range.
    #[error("--width {width} --height {height}: each must be between 200 and 10000 pixels")]
    BadSize {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// `--from` is after `--to`.
    #[error("--from {from} is after --to {to}")]
    BadRange {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// The mart is not in the lake.
    #[error(
        "marts.{MART} does not exist in the lake at {lake}: build it with `macrolake run nightly` \
         (or `macrolake build --select +{MART}`)"
    )]
    NoMart {
        /// The lake's URL.
        lake: String,
    },
    /// The mart has no rows.
    #[error(
        "marts.{MART} in the lake at {lake} is empty: run `macrolake run nightly` (or ingest and \
         build) to fill it; nothing was written"
    )]
    EmptyMart {
        /// The lake's URL.
        lake: String,
    },
    /// Nothing to draw in the range.
    #[error(
        "marts.{MART} has no net liquidity, bitcoin or Russell 2000 values from {from} to {to}{}; \
         nothing was written",
        .available.map(|(a, b)| format!(" (it has days from {a} to {b})")).unwrap_or_else(|| " (it is empty)".into())
    )]
    NoData {
        /// First day asked for.
        from: NaiveDate,
        /// Last day asked for.
        to: NaiveDate,
        /// The mart's first and last day, if it has any.
        available: Option<(NaiveDate, NaiveDate)>,
    },
    /// Reading the lake failed.
    #[error("reading marts.{MART} failed: {source}")]
    Read {
        /// The query's error.
        #[source]
        source: Box<QueryError>,
    },
    /// The mart's columns are not what the chart reads.
    #[error(
        "marts.{MART} has unexpected columns ({message}): rebuild it with \
         `macrolake build --select +{MART}`"
    )]
    Data {
        /// What is wrong.
        message: String,
    },
    /// The embedded font could not be loaded.
    #[error("the embedded chart font cannot be parsed (a broken build: rebuild macrolake)")]
    Font,
    /// Drawing or encoding the image failed.
    #[error("rendering {path} failed: {message}")]
    Render {
        /// The output path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Writing the file failed; any previous file there is unchanged.
    #[error("cannot write {path}: {source} (any previous file there is unchanged)")]
    Write {
        /// The output path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The days to draw: one entry per calendar day of the mart in the range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartData {
    /// The days, ascending.
    pub dates: Vec<NaiveDate>,
    /// Net liquidity, $M.
    pub net_liquidity_musd: Vec<Option<f64>>,
    /// Bitcoin's close, USD.
    pub btc_close: Vec<Option<f64>>,
    /// The Russell 2000's close.
    pub rut_close: Vec<Option<f64>>,
    /// The mart's divergence flag (NULL counts as no divergence).
    pub divergence: Vec<bool>,
}

impl ChartData {
    /// Whether any series has a value.
    pub fn has_values(&self) -> bool {
        [&self.net_liquidity_musd, &self.btc_close, &self.rut_close]
            .iter()
            .any(|s| s.iter().any(Option::is_some))
    }

    /// The divergence spans as (first day, last day), inclusive.
    pub fn divergence_spans(&self) -> Vec<(NaiveDate, NaiveDate)> {
        let mut spans: Vec<(NaiveDate, NaiveDate)> = Vec::new();
        let mut previous: Option<NaiveDate> = None;
        for (date, flag) in self.dates.iter().zip(&self.divergence) {
            if *flag {
                match spans.last_mut() {
                    Some(span) if previous == Some(span.1) && span.1.succ_opt() == Some(*date) => {
                        span.1 = *date;
                    }
                    _ => spans.push((*date, *date)),
                }
            }
            previous = Some(*date);
        }
        spans
    }
}

/// What was drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: ImageFormat,
    /// The first day drawn (the first day of the range the mart has).
    pub from: NaiveDate,
    /// The last day drawn (the last day of the range the mart has).
    pub to: NaiveDate,
    /// Days in the range with a row in the mart.
    pub days: usize,
    /// Divergence spans shaded.
    pub divergence_spans: usize,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// An image drawn in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawn {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// The first day drawn (the first day of the range the mart has).
    pub from: NaiveDate,
    /// The last day drawn (the last day of the range the mart has).
    pub to: NaiveDate,
    /// Days in the range with a row in the mart.
    pub days: usize,
    /// Divergence spans shaded.
    pub divergence_spans: usize,
}

/// Draws the chart `args` describes in `format`, in memory (`args.out` only names it in errors),
/// from `session` (opened as of `args.as_of`) over the lake at `lake` (named in errors).
pub async fn draw(
    session: &QuerySession,
    lake: &str,
    args: &ChartArgs,
    format: ImageFormat,
) -> Result<Drawn, ChartError> {
    let size_ok = |v: u32| (200..=10_000).contains(&v);
    if !size_ok(args.width) || !size_ok(args.height) {
        return Err(ChartError::BadSize {
            width: args.width,
            height: args.height,
        });
    }
    if !font::register() {
        return Err(ChartError::Font);
    }
    let (from, to, data) = load(session, lake, args).await?;
    let bytes = render::render(
        &data,
        from,
        to,
        args.mode,
        format,
        (args.width, args.height),
    )
    .map_err(|message| ChartError::Render {
        path: args.out.clone(),
        message,
    })?;
    Ok(Drawn {
        bytes,
        from,
        to,
        days: data.dates.len(),
        divergence_spans: data.divergence_spans().len(),
    })
}

/// Draws the chart `args` describes from `session` and writes it.
pub async fn chart(
    session: &QuerySession,
    lake: &str,
    args: &ChartArgs,
) -> Result<Rendered, ChartError> {
    let format = ImageFormat::for_path(&args.out).ok_or_else(|| ChartError::UnsupportedFormat {
        path: args.out.clone(),
    })?;
    let drawn = draw(session, lake, args, format).await?;
    let write_err = |source| ChartError::Write {
        path: args.out.clone(),
        source,
    };
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_err)?;
    }
    crate::query::write_atomic(&args.out, &drawn.bytes).map_err(write_err)?;
    Ok(Rendered {
        path: args.out.clone(),
        format,
        from: drawn.from,
        to: drawn.to,
        days: drawn.days,
        divergence_spans: drawn.divergence_spans,
        bytes: drawn.bytes.len() as u64,
    })
}

/// Reads the range's rows (defaults filled in from the mart) and returns the first and last
/// day the mart has in it, with the data.
async fn load(
    session: &QuerySession,
    lake: &str,
    args: &ChartArgs,
) -> Result<(NaiveDate, NaiveDate, ChartData), ChartError> {
    let read_err = |e: QueryError| ChartError::Read {
        source: Box::new(e),
    };
    let mart = TableName::marts(MART);
    if !session.tables.iter().any(|(t, _)| *t == mart) {
        return Err(ChartError::NoMart {
            lake: lake.to_string(),
        });
    }
    let query = |sql: String| {
        let ctx = session.ctx.clone();
        async move { crate::query::collect(&ctx, &sql).await.map_err(read_err) }
    };
    // The default end is the newest day with a value on every line drawn (the mart itself runs to
    // the newest day any input is known, where some lines may have no value yet).
    let bounds = query(format!(
        "SELECT min(date), coalesce(max(CASE WHEN net_liquidity_musd IS NOT NULL AND btc_close IS NOT NULL \
         AND rut_close IS NOT NULL THEN date END), max(date)) FROM marts.{MART}"
    ))
    .await?;
    let available = bounds
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| Some((date_at(b, 0, 0)?, date_at(b, 1, 0)?)));
    let to = match (args.to, available) {
        (Some(to), _) => to,
        (None, Some((_, last))) => last,
        (None, None) => {
            return Err(ChartError::EmptyMart {
                lake: lake.to_string(),
            });
        }
    };
    let from = args
        .from
        .unwrap_or_else(|| to.checked_sub_months(Months::new(12)).unwrap_or(to));
    if from > to {
        return Err(ChartError::BadRange { from, to });
    }
    let batches = query(format!(
        "SELECT date, CAST(net_liquidity_musd AS DOUBLE), CAST(btc_close AS DOUBLE), \
         CAST(CASE WHEN rut_close IS NOT NULL THEN rut_level END AS DOUBLE), coalesce(divergence, false) \
         FROM marts.{MART} WHERE date BETWEEN DATE '{from}' AND DATE '{to}' ORDER BY date"
    ))
    .await?;
    let data = to_chart_data(&batches).map_err(|message| ChartError::Data { message })?;
    match (data.dates.first(), data.dates.last()) {
        (Some(first), Some(last)) if data.has_values() => Ok((*first, *last, data)),
        _ => Err(ChartError::NoData {
            from,
            to,
            available,
        }),
    }
}

/// A Date32 cell, if not NULL.
fn date_at(batch: &RecordBatch, column: usize, row: usize) -> Option<NaiveDate> {
    let array = batch.column(column).as_primitive_opt::<Date32Type>()?;
    (!array.is_null(row)).then(|| array.value_as_date(row))?
}

/// Turns the query's batches (date, liquidity, bitcoin, Russell, divergence) into series.
fn to_chart_data(batches: &[RecordBatch]) -> Result<ChartData, String> {
    let mut data = ChartData::default();
    for batch in batches {
        let floats = |i: usize| {
            batch
                .column(i)
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| format!("column {i} is not Float64"))
        };
        let dates = batch
            .column(0)
            .as_primitive_opt::<Date32Type>()
            .ok_or("column date is not a Date32")?;
        let (liquidity, btc, rut) = (floats(1)?, floats(2)?, floats(3)?);
        let flags = batch
            .column(4)
            .as_boolean_opt()
            .ok_or("column divergence is not a Boolean")?;
        let value = |a: &datafusion::arrow::array::Float64Array, r: usize| {
            (!a.is_null(r) && a.value(r).is_finite()).then(|| a.value(r))
        };
        for r in 0..batch.num_rows() {
            let Some(date) = (!dates.is_null(r))
                .then(|| dates.value_as_date(r))
                .flatten()
            else {
                continue;
            };
            data.dates.push(date);
            data.net_liquidity_musd.push(value(liquidity, r));
            data.btc_close.push(value(btc, r));
            data.rut_close.push(value(rut, r));
            data.divergence.push(!flags.is_null(r) && flags.value(r));
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn formats_come_from_the_extension() {
        assert_eq!(
            ImageFormat::for_path(Path::new("a/b.PNG")),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::for_path(Path::new("c.svg")),
            Some(ImageFormat::Svg)
        );
        assert_eq!(ImageFormat::for_path(Path::new("c.jpg")), None);
        assert_eq!(ImageFormat::for_path(Path::new("png")), None);
    }

    #[test]
    fn divergence_spans_are_runs_of_consecutive_flagged_days() {
        let dates: Vec<NaiveDate> = (1..=10).map(|d| day(&format!("2026-01-{d:02}"))).collect();
        let flags = [
            false, true, true, false, true, false, false, true, true, true,
        ];
        let data = ChartData {
            net_liquidity_musd: vec![None; 10],
            btc_close: vec![None; 10],
            rut_close: vec![None; 10],
            divergence: flags.to_vec(),
            dates,
        };
        assert_eq!(
            data.divergence_spans(),
            vec![
                (day("2026-01-02"), day("2026-01-03")),
                (day("2026-01-05"), day("2026-01-05")),
                (day("2026-01-08"), day("2026-01-10")),
            ]
        );
        assert!(!data.has_values());
    }

    #[test]
    fn a_gap_in_the_days_splits_a_span() {
        let data = ChartData {
            dates: vec![day("2026-01-01"), day("2026-01-02"), day("2026-01-05")],
            net_liquidity_musd: vec![Some(1.0), None, None],
            btc_close: vec![None; 3],
            rut_close: vec![None; 3],
            divergence: vec![true, true, true],
        };
        assert_eq!(
            data.divergence_spans(),
            vec![
                (day("2026-01-01"), day("2026-01-02")),
                (day("2026-01-05"), day("2026-01-05"))
            ]
        );
        assert!(data.has_values());
    }
}
