//! EPS estimates connector → `staging.eps_estimates` [as_of_date, index, period, kind, source].
//!
//! Three inputs, each optional, all landing in the one table:
//!
//! 1. **The S&P DJI workbook** `sp-500-eps-est.xlsx` at `url`, fetched through the HTTP engine
//!    (recorded and replayed like any upstream; the raw body lands under `raw/eps/`). S&P DJI
//!    discontinued the public file after the 2026-01-29 edition: when the URL answers 404 and an
//!    `archive_dir` is configured, that is a logged warning and the archive still lands; with
//!    no archive it fails the source (there is nothing else to land).
//! 2. **An archive folder** (`archive_dir`) of past editions the user keeps (`*.xlsx`). When two
//!    workbooks have the same as-of date, the archive's copy (first by file name) wins over
//!    the downloaded one, so the stored `file` does not flip with the URL's availability.
//! 3. **A vendor drop folder** (`vendor_dir`) of CSV files with the documented header
//!    `as_of_date,index,period,eps,kind,source` (rules in [`vendor`]).
//!
//! Workbooks are parsed by labels (see [`parse`]): S&P 500 operating and as-reported EPS per
//! calendar year (`period` `2026`) and quarter (`2026Q1`), estimates and actuals, plus the
//! estimated operating P/E, PEG and projected 5-year growth of the S&P 500, S&P 400 (`SP400`)
//! and S&P 600 (`SP600`), and the calendar-year EPS of the S&P 400 and 600 (from the
//! `SECTOR EPS` sheet, see [`sector`]). Workbook rows have `source = 'spdji_workbook'`.
//!
//! Every input is read before any is parsed: when all of them (and the settings, the window and
//! the program) are those of the last landing, into a table nothing has committed to since
//! ([`crate::lake::Lake::inputs_unchanged`]), nothing is parsed or written — the rows would be
//! those stored. Parsing the snapshot's 13 editions cost 0.1–0.4 s of CPU every night.
//!
//! A file that cannot be read or parsed lands nothing and is reported with its path (and
//! sheet/cell or line); the other files still land. Rows are MERGEd on the key, so re-ingesting
//! the same files adds nothing. `--since/--until` keep as-of dates in the window; a full
//! refresh replaces the stored rows of the window only when every configured input was read.

mod cells;
pub mod config;
pub mod parse;
pub mod row;
pub mod sector;
pub mod vendor;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

pub use config::EpsConfig;
use parse::Edition;
use row::EstimateRow;

use super::{IngestContext, Source, SourceError, SourceReport, local};
use crate::http::{HttpError, Request};
use crate::lake::{StagingRow, WriteMode};

const NAME: &str = "eps";

/// What failures of the workbook at the URL name.
const CURRENT: &str = "current workbook";

/// The workbook fetched from the URL.
struct Fetched {
    /// Its file name (the URL's last segment).
    file: String,
    /// The URL answered.
    url: String,
    body: bytes::Bytes,
}

/// Everything one ingest reads, before parsing.
struct Inputs {
    /// The archive's workbooks, by file name.
    archive: Vec<(PathBuf, bytes::Bytes)>,
    /// The workbook at the URL, when fetched.
    current: Option<Fetched>,
    /// The vendor files, by name.
    vendor_files: Vec<(PathBuf, String)>,
    /// Their digest, with the settings, the window and the program ([`local::InputsDigest`]).
    digest: String,
}

/// The `source` of rows read from S&P DJI workbooks.
pub const WORKBOOK_SOURCE: &str = vendor::RESERVED_SOURCE;

fn file_error(path: &Path, line: Option<usize>, message: impl Into<String>) -> SourceError {
    local::file_error(NAME, path, line, message)
}

/// Parses a workbook off the async runtime.
async fn parse_workbook(body: bytes::Bytes) -> Result<Edition, String> {
    tokio::task::spawn_blocking(move || parse::workbook(&body))
        .await
        .map_err(|e| format!("parser panicked: {e}"))?
}

/// The EPS connector.
#[derive(Debug, Clone)]
pub struct Eps {
    config: EpsConfig,
}

impl Eps {
    /// A connector with these settings.
    pub fn new(config: EpsConfig) -> Self {
        Self { config }
    }

    /// The current workbook from the URL (its file name, URL and body), `None` when it is gone
    /// and an archive stands in.
    async fn current(&self, ctx: &IngestContext) -> Result<Option<Fetched>, SourceError> {
        let item = CURRENT;
        let req = Request::get(self.config.url.clone());
        let resp = match ctx.fetch(NAME, item, &req, "sp-500-eps-est.xlsx").await {
            Ok(resp) => resp,
            Err(SourceError::Http {
                error: error @ HttpError::Status { status: 404, .. },
                ..
            }) => {
                if let Some(archive) = &self.config.archive_dir {
                    tracing::warn!(
                        source = NAME,
                        url = %req.display_url(),
                        archive = %archive.display(),
                        "the S&P DJI workbook URL answered 404 (the public file was discontinued after the 2026-01-29 edition); landing the archive only (set fetch_url = false to skip the URL)"
                    );
                    return Ok(None);
                }
                return Err(SourceError::Http {
                    source_name: NAME,
                    item: format!(
                        "{item} (gone: S&P DJI discontinued the public file after the 2026-01-29 edition; set [sources.eps] archive_dir to a folder of saved editions, or fetch_url = false)"
                    ),
                    error,
                });
            }
            Err(e) => return Err(e),
        };
        let file = self
            .config
            .url
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_string))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "sp-500-eps-est.xlsx".into());
        Ok(Some(Fetched {
            file,
            url: resp.url.clone(),
            body: resp.body.clone(),
        }))
    }

    /// Every input read (none parsed yet), and their digest: when they are what the last landing
    /// read, into a table nothing changed since, parsing them would make the rows it holds (the
    /// archive's editions cost 0.1–0.4 s of CPU each night).
    async fn read_inputs(&self, ctx: &IngestContext, failures: &mut Vec<SourceError>) -> Inputs {
        let archive = match &self.config.archive_dir {
            Some(dir) => self.read_archive(dir, failures).await,
            None => Vec::new(),
        };
        let mut current = None;
        if self.config.fetch_url {
            match self.current(ctx).await {
                Ok(found) => current = found,
                Err(e) => failures.push(e),
            }
        }
        let vendor_files = match &self.config.vendor_dir {
            Some(dir) => Self::read_vendor(dir, failures).await,
            None => Vec::new(),
        };
        let mut digest = local::InputsDigest::new(NAME, &(&self.config, &ctx.window));
        for (path, body) in &archive {
            digest.add(&format!("archive {}", local::file_name(path)), body);
        }
        if let Some(f) = &current {
            digest.add(&format!("url {}", f.file), &f.body);
        }
        for (path, text) in &vendor_files {
            digest.add(
                &format!("vendor {}", local::file_name(path)),
                text.as_bytes(),
            );
        }
        Inputs {
            archive,
            current,
            vendor_files,
            digest: digest.finish(),
        }
    }

    /// Every workbook in the archive folder, read, in file-name order; unreadable files go to
    /// `failures`.
    async fn read_archive(
        &self,
        dir: &Path,
        failures: &mut Vec<SourceError>,
    ) -> Vec<(PathBuf, bytes::Bytes)> {
        let mut out = Vec::new();
        for path in local::list_or_report(NAME, dir, "xlsx", failures) {
            match tokio::fs::read(&path).await {
                Ok(body) => out.push((path, body.into())),
                Err(e) => failures.push(file_error(&path, None, format!("cannot read: {e}"))),
            }
        }
        out
    }

    /// The archive's workbooks parsed, in the order given; unparsable ones go to `failures`.
    /// Workbooks are parsed one per core at a time (an archive of 13 editions: 0.2–0.4 s one
    /// after another).
    async fn parse_archive(
        files: Vec<(PathBuf, bytes::Bytes)>,
        failures: &mut Vec<SourceError>,
    ) -> Vec<(String, Edition)> {
        use futures::StreamExt;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parsed: Vec<_> = futures::stream::iter(files)
            .map(|(path, body)| async move { (path, parse_workbook(body).await) })
            .buffered(cores)
            .collect()
            .await;
        let mut editions = Vec::new();
        for (path, parsed) in parsed {
            match parsed {
                Ok(edition) => editions.push((local::file_name(&path), edition)),
                Err(m) => failures.push(file_error(&path, None, m)),
            }
        }
        editions
    }

    /// Every vendor file in the drop folder, read, by name; unreadable files go to `failures`.
    async fn read_vendor(dir: &Path, failures: &mut Vec<SourceError>) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        for path in local::list_or_report(NAME, dir, "csv", failures) {
            match tokio::fs::read_to_string(&path).await {
                Ok(text) => out.push((path, text)),
                Err(e) => failures.push(file_error(&path, None, format!("cannot read: {e}"))),
            }
        }
        out
    }

    /// The rows of the vendor files read; a file with a bad row goes to `failures` whole.
    fn vendor_rows(
        files: &[(PathBuf, String)],
        failures: &mut Vec<SourceError>,
    ) -> Vec<EstimateRow> {
        let mut out = Vec::new();
        // Key → (file, line) of the rows accepted so far, to refuse a key in two files.
        let mut taken: HashMap<vendor::Key, (String, usize)> = HashMap::new();
        for (path, text) in files {
            let rows = match vendor::parse(text) {
                Ok(rows) => rows,
                Err(e) => {
                    failures.push(file_error(path, Some(e.line), e.message));
                    continue;
                }
            };
            let name = local::file_name(path);
            let clash = rows
                .iter()
                .find_map(|r| taken.get(&r.key()).map(|(f, l)| (r.line, f, l)));
            if let Some((line, other, other_line)) = clash {
                failures.push(file_error(
                    path,
                    Some(line),
                    format!("same as_of_date, index, period, kind, source as {other}:{other_line}"),
                ));
                continue;
            }
            for r in rows {
                taken.insert(r.key(), (name.clone(), r.line));
                out.push(EstimateRow {
                    as_of_date: r.as_of_date,
                    index: r.index,
                    period: r.period,
                    kind: r.kind,
                    value: r.eps,
                    is_estimate: true,
                    source: r.source,
                    file: name.clone(),
                    origin: format!("line {}", r.line),
                });
            }
        }
        out
    }
}

/// Workbook rows, one edition per as-of date (the first given wins; see the module doc).
fn edition_rows(editions: Vec<(String, Edition)>) -> Vec<EstimateRow> {
    let mut by_date: BTreeMap<NaiveDate, (String, Edition)> = BTreeMap::new();
    for (file, edition) in editions {
        match by_date.get(&edition.as_of_date) {
            Some((kept, same)) if same.rows == edition.rows => {
                tracing::debug!(source = NAME, file, kept, "same edition twice; keeping one");
            }
            Some((kept, _)) => tracing::warn!(
                source = NAME,
                file,
                kept,
                as_of_date = %edition.as_of_date,
                "two workbooks with the same as-of date but different values; keeping the first"
            ),
            None => {
                by_date.insert(edition.as_of_date, (file, edition));
            }
        }
    }
    by_date
        .into_values()
        .flat_map(|(file, e)| {
            e.rows.into_iter().map(move |r| EstimateRow {
                as_of_date: e.as_of_date,
                index: r.index,
                period: r.period,
                kind: r.kind.to_string(),
                value: r.value,
                is_estimate: r.is_estimate,
                source: WORKBOOK_SOURCE.to_string(),
                file: file.clone(),
                origin: r.origin,
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl Source for Eps {
    fn tables(&self) -> Vec<crate::lake::row::TableDoc> {
        vec![EstimateRow::doc()]
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let mut failures = Vec::new();
        let Inputs {
            archive,
            current,
            vendor_files,
            digest,
        } = self.read_inputs(ctx, &mut failures).await;
        let table = EstimateRow::table();
        if failures.is_empty() && ctx.lake.inputs_unchanged(&table, &digest).await.is_some() {
            tracing::info!(
                source = NAME,
                workbooks = archive.len() + usize::from(current.is_some()),
                vendor_files = vendor_files.len(),
                "landed: the same inputs as the last landing, into a table unchanged since (nothing parsed)"
            );
            return Ok(SourceReport::default());
        }
        let mut editions = Self::parse_archive(archive, &mut failures).await;
        if let Some(f) = current {
            match parse_workbook(f.body).await {
                Ok(edition) => editions.push((f.file, edition)),
                Err(m) => failures.push(SourceError::parse(NAME, CURRENT, &f.url, None, m)),
            }
        }
        let n_editions = editions.len();
        let mut rows = edition_rows(editions);
        rows.extend(Self::vendor_rows(&vendor_files, &mut failures));
        let since = ctx.window.since;
        rows.retain(|r| ctx.window.contains(since, r.as_of_date));
        // A full refresh deletes what it does not rewrite: only when every input was read.
        let mode = if failures.is_empty() && !rows.is_empty() {
            ctx.window
                .write_mode(since, "as_of_date", EstimateRow::KEYS)
        } else {
            WriteMode::merge_on(EstimateRow::KEYS)
        };
        let written = ctx
            .lake
            .write(
                &table,
                vec![EstimateRow::batch(&rows, ctx.run_at).map_err(SourceError::lake(NAME))?],
                mode,
            )
            .await
            .map_err(SourceError::lake(NAME))?;
        let mut newest: BTreeMap<&str, NaiveDate> = BTreeMap::new();
        for r in &rows {
            let d = newest.entry(&r.source).or_insert(r.as_of_date);
            *d = (*d).max(r.as_of_date);
        }
        for (source, date) in newest {
            ctx.raise_watermark(NAME, source, Some(date)).await?;
        }
        if failures.is_empty() {
            ctx.lake
                .record_inputs(&table, written.version, digest)
                .await;
        }
        tracing::info!(
            source = NAME,
            editions = n_editions,
            rows = rows.len(),
            written = written.rows,
            failed_files = failures.len(),
            "landed"
        );
        Ok(SourceReport {
            rows_written: written.rows,
            failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parse::{EpsRow, OPERATING_EPS};

    fn edition(date: &str, value: f64) -> Edition {
        Edition {
            as_of_date: NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
            as_of_cell: "ESTIMATES&PEs!D127".into(),
            rows: vec![EpsRow {
                index: "SP500".into(),
                period: "2026".into(),
                kind: OPERATING_EPS,
                value,
                is_estimate: true,
                origin: "ESTIMATES&PEs!I138".into(),
            }],
        }
    }

    #[test]
    fn one_edition_per_as_of_date_the_first_given_wins() {
        let rows = edition_rows(vec![
            ("archive.xlsx".into(), edition("2026-01-30", 310.24)),
            ("downloaded.xlsx".into(), edition("2026-01-30", 999.0)),
            ("older.xlsx".into(), edition("2025-09-30", 303.09)),
        ]);
        let got: Vec<(String, &str, f64)> = rows
            .iter()
            .map(|r| (r.as_of_date.to_string(), r.file.as_str(), r.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("2025-09-30".to_string(), "older.xlsx", 303.09),
                ("2026-01-30".to_string(), "archive.xlsx", 310.24),
            ]
        );
        assert!(rows.iter().all(|r| r.source == WORKBOOK_SOURCE));
    }
}
