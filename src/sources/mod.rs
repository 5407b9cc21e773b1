//! Connectors: one module per upstream, each a small implementation of [`Source`] over the
//! shared [`HttpEngine`](crate::http::HttpEngine) and the [`Lake`].
//!
//! A connector builds requests, parses bodies and says which staging tables it writes with which
//! natural key; the engine does retries, replay and redaction, the lake does atomic writes.
//!
//! Adding a connector touches only these (`refrates/` is the example to copy):
//! 1. a folder `sources/<name>/` with `config.rs` (serde struct, every field documented),
//!    `parse.rs` (its staging row declared with [`staging_row!`](crate::staging_row), and pure
//!    functions from real recorded bodies to rows, unit-tested on them) and `mod.rs` (the
//!    [`Source`] impl; an HTTP-pull upstream implements [`pull::Feed`] and lets the engine plan,
//!    page, fetch, land and watermark);
//! 2. a `pub mod <name>;` line and a line in the `connectors!` list below (kind, name, settings,
//!    constructor): the kind, `SourceKind::ALL`, `[sources.<name>]` and `source_for` follow;
//! 3. its recorded bodies under `tests/fixtures/upstream/<host>/` (and parse fixtures under
//!    `tests/fixtures/bodies/<name>/`) with their provenance in the README beside them;
//! 4. when it adds a staging table, the table's publication rule in `lake/availability.rs` (one
//!    arm and one line of its doc table), or an `available_at` field the connector fills itself,
//!    so marts can use its rows point in time.

pub mod csv_line;
pub mod eps;
pub mod fedwatch;
pub mod fomc;
pub mod fred;
pub mod futures;
pub mod local;
pub mod nyfed;
pub mod prices;
pub mod pull;
pub mod refrates;
pub mod treasury;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use crate::http::{HttpEngine, HttpError, Request, Response};
use crate::lake::row::{StagingRow, TableDoc};
use crate::lake::{Lake, LakeError, ViewDef};

/// Errors of a connector. Each names the source and what it was fetching or parsing.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Fetching failed.
    #[error("{source_name} {item}: {error}")]
    Http {
        /// The connector.
        source_name: &'static str,
        /// What was being fetched (a series id, a page …).
        item: String,
        /// The engine's error (URL redacted).
        #[source]
        error: HttpError,
    },
    /// The upstream body is not what the connector expects.
    #[error("{source_name} {item}: malformed body from {url}{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Parse {
        /// The connector.
        source_name: &'static str,
        /// What was being parsed.
        item: String,
        /// The (redacted) URL it came from.
        url: String,
        /// Line of the body, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A local input file (a saved workbook, a vendor CSV) cannot be read or is not what the
    /// connector expects.
    #[error("{source_name}: {}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    File {
        /// The connector.
        source_name: &'static str,
        /// The file (or folder).
        path: PathBuf,
        /// Line of the file, when known.
        line: Option<usize>,
        /// What is wrong (with sheet and cell for workbooks).
        message: String,
    },
    /// A body that parsed but that a validation rule refuses to land (e.g. FRED's unit-change
    /// guard); the message says how to accept it when it is genuine.
    #[error("{source_name} {item}: {message}")]
    Refused {
        /// The connector.
        source_name: &'static str,
        /// What was refused (a series id …).
        item: String,
        /// Why, and what to do.
        message: String,
    },
    /// The connector stopped unexpectedly (a panic: a bug in macrolake, please report it with
    /// the message). What it had committed stays; the other sources are not affected.
    #[error("{source_name}: the connector stopped unexpectedly ({message}); please report it")]
    Crashed {
        /// The connector.
        source_name: &'static str,
        /// What the panic said.
        message: String,
    },
    /// Writing to the lake failed.
    #[error("{source_name}: {error}")]
    Lake {
        /// The connector.
        source_name: &'static str,
        /// The lake's error.
        #[source]
        error: LakeError,
    },
}

/// Declares the connectors, one line each: the kind (and its doc), its name (`macrolake ingest
/// <name>`, `[sources.<name>]`), its settings type and how the connector is made from the
/// settings. The kind enum, [`SourceKind::ALL`] (in declaration order: the order of reports),
/// [`SourcesConfig`] and [`source_for`] all come from this list.
macro_rules! connectors {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident $name:ident: $config:ty => |$c:ident| $make:expr;
    )+) => {
        /// The closed set of connectors. `macrolake ingest <name>` takes these names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SourceKind {
            $( $(#[doc = $doc])* $kind, )+
        }

        impl SourceKind {
            /// Every connector, in declaration order (sources ingest at once; see [`Source::reads`]).
            pub const ALL: [SourceKind; [$(SourceKind::$kind),+].len()] = [$(SourceKind::$kind),+];

            /// The connector's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( SourceKind::$kind => stringify!($name), )+
                }
            }
        }

        /// Connector settings (`[sources.*]` in `macrolake.toml`).
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct SourcesConfig {
            $(
                #[doc = concat!("`[sources.", stringify!($name), "]`: ")]
                $(#[doc = $doc])*
                pub $name: $config,
            )+
        }

        /// The connector for a kind, from its configuration.
        pub fn source_for(kind: SourceKind, config: &SourcesConfig) -> Box<dyn Source> {
            match kind {
                $( SourceKind::$kind => {
                    let make = |$c: &SourcesConfig| -> Box<dyn Source> { Box::new($make) };
                    make(config)
                } )+
            }
        }
    };
}

connectors! {
    /// FRED (St. Louis Fed) series.
    Fred fred: fred::FredConfig => |c| fred::Fred::new(c.fred.clone());
    /// U.S. Treasury Daily Treasury Statement: the TGA.
    Treasury treasury: treasury::TreasuryConfig => |c| treasury::Treasury::new(c.treasury.clone());
    /// NY Fed Markets Data API: Treasury outright operations and SOMA holdings.
    Nyfed nyfed: nyfed::NyfedConfig => |c| nyfed::Nyfed::new(c.nyfed.clone());
    /// NY Fed reference rates: SOFR (and TGCR, BGCR, EFFR, OBFR when configured).
    Refrates refrates: refrates::RefratesConfig => |c| refrates::Refrates::new(c.refrates.clone());
    /// Daily asset prices (Yahoo, Coinbase, Stooq, FRED).
    Prices prices: prices::PricesConfig => |c| prices::Prices::new(c.prices.clone());
    /// 30-day fed funds futures (CME ZQ).
    Futures futures: futures::FuturesConfig => |c| futures::Futures::new(c.futures.clone());
    /// The FOMC meeting calendar from the Federal Reserve Board's calendar page.
    Fomc fomc: fomc::FomcConfig =>
        |c| fomc::Fomc::new(c.fomc.clone(), c.fedwatch.meetings_csv.clone());
    /// FedWatch meeting probabilities computed from the futures (runs after them and after the
    /// FOMC calendar).
    Fedwatch fedwatch: fedwatch::FedwatchConfig => |c| fedwatch::Fedwatch::new(c.fedwatch.clone());
    /// EPS estimates: S&P DJI workbooks and vendor CSV files.
    Eps eps: eps::EpsConfig => |c| eps::Eps::new(c.eps.clone());
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown source {s:?}; known sources: {}", names.join(", "))
            })
    }
}

impl SourcesConfig {
    /// Makes relative file and folder paths relative to `base`, the configuration file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        self.eps.resolve_paths(base);
        for path in [
            &mut self.futures.vendor_dir,
            &mut self.fedwatch.meetings_csv,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}

/// The date window of an ingest (`--since`, `--until`, `--full-refresh`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// Backfill from this date (overrides the watermark).
    pub since: Option<NaiveDate>,
    /// Up to and including this date.
    pub until: Option<NaiveDate>,
    /// Ignore watermarks, fetch all history and replace what is stored.
    pub full_refresh: bool,
}

impl Window {
    /// The first date to request for one key, given its watermark and look-back.
    pub fn start_for(
        &self,
        watermark: Option<NaiveDate>,
        lookback_days: u32,
        default_start: Option<NaiveDate>,
    ) -> Option<NaiveDate> {
        if let Some(since) = self.since {
            return Some(since);
        }
        if self.full_refresh {
            return default_start;
        }
        match watermark {
            Some(w) => Some(w - chrono::Duration::days(lookback_days as i64)),
            None => default_start,
        }
    }

    /// How a connector writes what it fetched for `[start, until]` into a table keyed by `keys`
    /// whose date column is `date_col`: a full refresh replaces that window (all rows when the
    /// window is open-ended) in one commit; otherwise rows are MERGEd on the key.
    pub fn write_mode(
        &self,
        start: Option<NaiveDate>,
        date_col: &str,
        keys: &[&str],
    ) -> crate::lake::WriteMode {
        if !self.full_refresh {
            return crate::lake::WriteMode::merge_on(keys);
        }
        let mut bounds = Vec::new();
        if let Some(s) = start {
            bounds.push(format!("{date_col} >= '{s}'"));
        }
        if let Some(u) = self.until {
            bounds.push(format!("{date_col} <= '{u}'"));
        }
        if bounds.is_empty() {
            crate::lake::WriteMode::Overwrite
        } else {
            crate::lake::WriteMode::ReplaceWhere(bounds.join(" AND "))
        }
    }

    /// Whether a date is inside `[start, until]`.
    pub fn contains(&self, start: Option<NaiveDate>, date: NaiveDate) -> bool {
        start.is_none_or(|s| date >= s) && self.until.is_none_or(|u| date <= u)
    }
}

/// What one connector needs to run.
#[derive(Debug, Clone)]
pub struct IngestContext {
    /// The HTTP engine.
    pub http: HttpEngine,
    /// The lake.
    pub lake: Lake,
    /// The window asked for.
    pub window: Window,
    /// The run's timestamp (`ingested_at` of every row written).
    pub run_at: DateTime<Utc>,
    /// The run's raw archives (one per source), where [`IngestContext::fetch`] lands each body.
    pub raw: crate::lake::raw::RawArchives,
    /// Every source's watermarks as the run found them, read once by the first source that asks
    /// ([`IngestContext::watermarks`]).
    pub start_marks: StartMarks,
}

/// Every source's watermarks at the start of an ingest run, read once for all sources.
pub type StartMarks = Arc<tokio::sync::OnceCell<crate::lake::watermarks::AllMarks>>;

impl IngestContext {
    /// Fetches one request through the engine and lands its raw body in the source's archive
    /// under `raw/<source>/` (visible once the source's ingest ends). `item` names what is
    /// fetched (a series, a page) in errors.
    pub async fn fetch(
        &self,
        source_name: &'static str,
        item: &str,
        req: &Request,
        raw_name: &str,
    ) -> Result<Response, SourceError> {
        let resp = self
            .http
            .get(req)
            .await
            .map_err(|error| SourceError::Http {
                source_name,
                item: item.to_string(),
                error,
            })?;
        self.raw
            .add(source_name, raw_name, &resp.url, &resp.body)
            .await
            .map_err(|error| SourceError::Lake { source_name, error })?;
        Ok(resp)
    }

    /// A source's watermarks as the run found them. The sources start side by side, and one read
    /// of `meta.watermarks` serves them all where each used to read it at once. A source raises
    /// only its own marks, and only once it has read them, so the run's first read is what each
    /// source would have read itself. ([`IngestContext::raise_watermarks`] compares with the
    /// table as it is when it raises, read again when anything has committed to it since: a
    /// source may raise its marks more than once.)
    pub async fn watermarks(
        &self,
        source_name: &'static str,
    ) -> Result<HashMap<String, NaiveDate>, SourceError> {
        let (all, _) = self.start_marks(source_name).await?;
        Ok(all.get(source_name).cloned().unwrap_or_default())
    }

    /// Every source's watermarks as the run found them, and the version they were read at.
    async fn start_marks(
        &self,
        source_name: &'static str,
    ) -> Result<&crate::lake::watermarks::AllMarks, SourceError> {
        self.start_marks
            .get_or_try_init(|| self.lake.all_watermarks())
            .await
            .map_err(|error| SourceError::Lake { source_name, error })
    }

    /// The start of the window for one watermark key of a source.
    pub async fn start_for(
        &self,
        source_name: &'static str,
        key: &str,
        lookback_days: u32,
        default_start: Option<NaiveDate>,
    ) -> Result<Option<NaiveDate>, SourceError> {
        let marks = self.watermarks(source_name).await?;
        Ok(self
            .window
            .start_for(marks.get(key).copied(), lookback_days, default_start))
    }

    /// Writes one table's rows in one commit, raises the source's watermark keys to the newest
    /// dates given, and logs it; returns the rows written. The common tail of a connector's
    /// ingest.
    pub async fn land<R: StagingRow>(
        &self,
        source_name: &'static str,
        rows: &[R],
        mode: crate::lake::WriteMode,
        watermarks: impl IntoIterator<Item = (String, Option<NaiveDate>)>,
    ) -> Result<usize, SourceError> {
        let batch = R::batch(rows, self.run_at).map_err(SourceError::lake(source_name))?;
        self.land_batches::<R>(source_name, vec![batch], mode, watermarks)
            .await
    }

    /// [`IngestContext::land`] for rows already made into batches of `R`'s table (a large
    /// ingest builds them a piece at a time, freeing each piece's rows).
    pub async fn land_batches<R: StagingRow>(
        &self,
        source_name: &'static str,
        batches: Vec<datafusion::arrow::array::RecordBatch>,
        mode: crate::lake::WriteMode,
        watermarks: impl IntoIterator<Item = (String, Option<NaiveDate>)>,
    ) -> Result<usize, SourceError> {
        let table = R::table();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let clock = std::time::Instant::now();
        let written = self
            .lake
            .write(&table, batches, mode)
            .await
            .map_err(SourceError::lake(source_name))?;
        let write_s = clock.elapsed().as_secs_f64();
        self.raise_watermarks(source_name, watermarks).await?;
        tracing::debug!(
            source = source_name,
            write_s,
            marks_s = clock.elapsed().as_secs_f64() - write_s,
            "landing steps"
        );
        tracing::info!(source = source_name, table = %table, rows, written = written.rows, "landed");
        Ok(written.rows)
    }

    /// Creates a staging table that does not exist yet from the batches `produce` sends, without
    /// holding them all: they are ordered by date through a spilling sort and published in one
    /// commit ([`Lake::create_streamed`]). `produce` returns each watermark key's newest date;
    /// they are raised once the rows are published. Nothing sent: no table, nothing raised.
    pub async fn land_streamed<R, F>(
        &self,
        source_name: &'static str,
        produce: impl FnOnce(crate::lake::BatchSender) -> F,
    ) -> Result<usize, SourceError>
    where
        R: StagingRow,
        F: std::future::Future<Output = Result<Vec<(String, Option<NaiveDate>)>, SourceError>>,
    {
        let table = R::table();
        let (tx, landing) = self
            .lake
            .create_streamed(&table, R::schema())
            .map_err(SourceError::lake(source_name))?;
        // Both run at once; an error of either drops the other before anything is published
        // (a producer that fails mid-way must not leave a partial table).
        let landing = async { landing.await.map_err(SourceError::lake(source_name)) };
        let (newest, written) = ::futures::future::try_join(produce(tx), landing).await?;
        if written.committed {
            self.raise_watermarks(source_name, newest).await?;
        }
        tracing::info!(source = source_name, table = %table, rows = written.rows, "landed (streamed)");
        Ok(written.rows)
    }

    /// Raises one watermark key of a source to `newest` (never lowers it).
    pub async fn raise_watermark(
        &self,
        source_name: &'static str,
        key: &str,
        newest: Option<NaiveDate>,
    ) -> Result<(), SourceError> {
        self.raise_watermarks(source_name, [(key.to_string(), newest)])
            .await
    }

    /// Raises watermarks of a source to the newest dates landed (never lowers one), in one commit.
    pub async fn raise_watermarks(
        &self,
        source_name: &'static str,
        newest: impl IntoIterator<Item = (String, Option<NaiveDate>)>,
    ) -> Result<(), SourceError> {
        let lake_err = |error| SourceError::Lake { source_name, error };
        // Marks only rise, so a date not above the run's first read of its mark is not above
        // the mark now either: a source that landed nothing newer (most sources, most nights)
        // reads nothing more.
        let at_start = self.watermarks(source_name).await?;
        let above = |marks: &HashMap<String, NaiveDate>, k: &String, d: &NaiveDate| {
            marks.get(k).is_none_or(|old| d > old)
        };
        let candidates: Vec<(String, NaiveDate)> = newest
            .into_iter()
            .filter_map(|(k, d)| d.map(|d| (k, d)))
            .filter(|(k, d)| above(&at_start, k, d))
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        // The marks as they are now: the start marks while nothing has committed to the table
        // since they were read (a listing of its log's tail; most nights only the prices raise
        // marks), else read again.
        let (_, read_at) = self.start_marks(source_name).await?;
        let marks = if self.lake.watermarks_unchanged_since(*read_at).await {
            at_start
        } else {
            self.lake.watermarks(source_name).await.map_err(lake_err)?
        };
        let raised: HashMap<String, NaiveDate> = candidates
            .into_iter()
            .filter(|(k, d)| above(&marks, k, d))
            .collect();
        self.lake
            .set_watermarks(source_name, &raised, self.run_at)
            .await
            .map_err(lake_err)
    }
}

impl SourceError {
    /// A parse error of a body fetched from `url`.
    pub fn parse(
        source_name: &'static str,
        item: &str,
        url: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        SourceError::Parse {
            source_name,
            item: item.to_string(),
            url: url.to_string(),
            line,
            message: message.into(),
        }
    }

    /// A lake error of a source.
    pub fn lake(source_name: &'static str) -> impl Fn(LakeError) -> Self {
        move |error| SourceError::Lake { source_name, error }
    }
}

/// What one connector did.
#[derive(Debug, Default)]
pub struct SourceReport {
    /// Rows inserted or updated across its tables.
    pub rows_written: usize,
    /// Failures of parts of the source (e.g. one series); the rest still landed.
    pub failures: Vec<SourceError>,
}

impl SourceReport {
    /// Adds one part's outcome (a series, a table, a rate): its rows, or its failure, logged;
    /// the other parts still land.
    pub fn record(&mut self, part: &str, result: Result<usize, SourceError>) {
        match result {
            Ok(rows) => self.rows_written += rows,
            Err(e) => {
                tracing::error!(part, error = %e, "part failed; the others still land");
                self.failures.push(e);
            }
        }
    }
}

/// One connector.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// Fetches, parses and lands its data.
    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError>;
    /// The staging tables it writes, as declared (schema, key, column docs).
    fn tables(&self) -> Vec<TableDoc>;
    /// The connectors whose tables it reads: when both ingest in one run, those land first
    /// (the others ingest side by side).
    fn reads(&self) -> Vec<SourceKind> {
        Vec::new()
    }
    /// SQL views over its tables, registered in every query session.
    fn views(&self) -> Vec<ViewDef> {
        Vec::new()
    }
}

/// Every staging table of every connector, as declared, in declaration order.
pub fn all_tables(config: &SourcesConfig) -> Vec<TableDoc> {
    SourceKind::ALL
        .iter()
        .flat_map(|k| source_for(*k, config).tables())
        .collect()
}

/// Every view of every connector.
pub fn all_views(config: &SourcesConfig) -> Vec<ViewDef> {
    SourceKind::ALL
        .iter()
        .flat_map(|k| source_for(*k, config).views())
        .collect()
}

#[cfg(test)]
mod raise_tests {
    use super::*;
    use crate::http::{HttpConfig, Mode};
    use crate::lake::TableName;
    use crate::sources::testing::d;

    fn context(lake: &Lake) -> IngestContext {
        let run_at = Lake::now();
        IngestContext {
            http: HttpEngine::new(HttpConfig::default(), Mode::Live).unwrap(),
            lake: lake.clone(),
            window: Window::default(),
            run_at,
            raw: crate::lake::raw::RawArchives::new(lake.clone(), run_at),
            start_marks: Default::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raising_compares_with_the_start_marks_then_with_the_table_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let marks = |pairs: &[(&str, &str)]| -> HashMap<String, NaiveDate> {
            pairs.iter().map(|(k, v)| (k.to_string(), d(v))).collect()
        };
        let now = Lake::now();
        lake.set_watermarks("fred", &marks(&[("WALCL", "2026-06-03")]), now)
            .await
            .unwrap();
        let ctx = context(&lake);
        // The run reads the marks once as it starts.
        assert_eq!(
            ctx.watermarks("fred").await.unwrap()["WALCL"],
            d("2026-06-03")
        );
        // Another part of the source raises WALCL further while the run goes on.
        lake.set_watermarks("fred", &marks(&[("WALCL", "2026-06-10")]), now)
            .await
            .unwrap();
        let version = lake.version(&TableName::meta("watermarks")).await.unwrap();
        // Nothing above the start marks: nothing is written.
        ctx.raise_watermarks(
            "fred",
            [
                ("WALCL".to_string(), Some(d("2026-06-01"))),
                ("TREAST".to_string(), None),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            lake.version(&TableName::meta("watermarks")).await.unwrap(),
            version
        );
        // Above the start mark but below the mark as it is now: the mark is not lowered, and a
        // new key is added.
        ctx.raise_watermarks(
            "fred",
            [
                ("WALCL".to_string(), Some(d("2026-06-05"))),
                ("TREAST".to_string(), Some(d("2026-06-04"))),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            lake.watermarks("fred").await.unwrap(),
            marks(&[("WALCL", "2026-06-10"), ("TREAST", "2026-06-04")])
        );
        // Above both: raised.
        ctx.raise_watermark("fred", "WALCL", Some(d("2026-06-17")))
            .await
            .unwrap();
        assert_eq!(
            lake.watermarks("fred").await.unwrap()["WALCL"],
            d("2026-06-17")
        );
    }
}
