//! The application: configuration, lake and HTTP engine built once, and the commands that use
//! them (`ingest`, `status`; `sql` lives in [`crate::query`]).

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;

use crate::config::Config;
use crate::http::{HttpEngine, HttpError, Mode};
use crate::lake::runs::{RunRecord, RunStatus};
use crate::lake::{Lake, LakeError, ViewDef};
use crate::sources::{self, IngestContext, SourceError, SourceKind, Window};

/// Errors of the application layer.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The HTTP engine could not start (bad replay folder, client setup).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The model runner refused to start (bad SQL, cycle, unknown table) — nothing was written.
    #[error(transparent)]
    Models(#[from] crate::models::ModelError),
    /// Some models failed their tests or were skipped; the rest were published.
    #[error("{failed} of {total} model(s) failed or were skipped (details above and in meta.runs)")]
    ModelsFailed {
        /// How many failed or were skipped.
        failed: usize,
        /// How many were selected.
        total: usize,
    },
    /// The Postgres-wire server failed to start.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),
    /// One or more sources failed (the others landed); details are in the report and `meta.runs`.
    #[error("{failed} of {total} source(s) failed: {summary}")]
    SourcesFailed {
        /// How many failed.
        failed: usize,
        /// How many ran.
        total: usize,
        /// The errors, one per line.
        summary: String,
    },
}

/// The application context.
#[derive(Debug, Clone)]
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The lake.
    pub lake: Lake,
    /// The HTTP engine.
    pub http: HttpEngine,
    /// The project's models folder (`[models] dir`, else `sql` beside the configuration file).
    pub sql_dir: std::path::PathBuf,
    /// Replaying the past: ingest steps fetch nothing after this day and freshness is measured
    /// from it (`macrolake run JOB --until DAY`).
    pub until: Option<chrono::NaiveDate>,
}

/// Outcome of one source in an ingest.
#[derive(Debug)]
pub struct SourceOutcome {
    /// The source.
    pub kind: SourceKind,
    /// Rows written.
    pub rows: usize,
    /// Errors (empty when it succeeded).
    pub errors: Vec<SourceError>,
    /// How long it took.
    pub seconds: f64,
}

impl App {
    /// Builds the app: the lake from `lake_url` (or the config's), HTTP in the given mode.
    pub fn new(config: Config, lake_url: Option<&str>, mode: Mode) -> Result<Self, AppError> {
        crate::http::redact::register_env_secrets();
        let url = lake_url.unwrap_or(&config.lake.url).to_string();
        let lake = Lake::open(&url, config.lake.allow_http)?
            .with_cutoff(config.models.cutoff()?)
            .with_memory_limit_mb(config.lake.memory_limit_mb);
        let http = HttpEngine::new(config.http.clone(), mode)?;
        let sql_dir = config
            .models
            .dir
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from("sql"));
        Ok(Self {
            config,
            lake,
            http,
            sql_dir,
            until: None,
        })
    }

    /// Says once, on stderr, that views and seeds are unavailable when the models folder is
    /// missing (`sql`, `serve`, `export`, `chart` still read the lake's tables).
    pub fn warn_without_models(&self) {
        if !self.sql_dir.is_dir() {
            tracing::warn!(
                "no models folder at {}: SQL views and seeds are not available (run from the \
                 project's folder, pass --config, or set [models] dir)",
                self.sql_dir.display()
            );
        }
    }

    /// The day freshness tests measure from: the replayed day (`--until`), else `[models]
    /// reference_date`, else today (UTC).
    pub fn reference_date(&self) -> chrono::NaiveDate {
        self.until
            .or(self.config.models.reference_date)
            .unwrap_or_else(|| chrono::Utc::now().date_naive())
    }

    /// A query session over the lake with the views and seeds, optionally as of a version/time:
    /// several queries in one session see the same table versions.
    pub async fn session(
        &self,
        as_of: Option<&crate::lake::AsOf>,
    ) -> Result<crate::lake::QuerySession, AppError> {
        let session = self.lake.session(as_of, &self.views()).await?;
        crate::models::seeds::register_seeds(&session.ctx, &self.sql_dir).await?;
        Ok(session)
    }

    /// Runs a SQL query over the lake (with views and seeds), optionally as of a version/time.
    pub async fn query(
        &self,
        sql: &str,
        as_of: Option<&crate::lake::AsOf>,
    ) -> Result<Vec<RecordBatch>, AppError> {
        let session = self.session(as_of).await?;
        Ok(crate::query::collect(&session.ctx, sql).await?)
    }

    /// Runs a SQL query over the marts as known on `day`: staging cut to what was public by that
    /// day's cut-off, every model recomputed from it in memory.
    pub async fn query_known_on(
        &self,
        sql: &str,
        day: chrono::NaiveDate,
    ) -> Result<Vec<RecordBatch>, AppError> {
        let ctx =
            crate::models::evaluate(&self.lake, &self.views(), &self.sql_dir, Some(day)).await?;
        Ok(crate::query::collect(&ctx, sql).await?)
    }

    /// Writes a query's result to `path` (parent folders created, file replaced atomically) and
    /// returns the row count.
    pub async fn export(
        &self,
        sql: &str,
        format: crate::query::Format,
        path: &std::path::Path,
    ) -> Result<usize, AppError> {
        let batches = self.query(sql, None).await?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| crate::query::QueryError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        crate::query::emit(&batches, format, Some(path))?;
        Ok(batches.iter().map(RecordBatch::num_rows).sum())
    }

    /// SQL views every session gets.
    pub fn views(&self) -> Vec<ViewDef> {
        let mut views = sources::all_views(&self.config.sources);
        // View models from sql/ are registered in every session too (once their inputs exist).
        if let Ok((models, _)) = crate::models::discover(&self.sql_dir) {
            for m in models
                .into_iter()
                .filter(|m| m.materialized == crate::models::Materialized::View)
            {
                if let Ok(refs) = crate::models::dag::references(&m)
                    && let Some(first) = refs.first()
                {
                    views.push(ViewDef {
                        name: m.name.clone(),
                        requires: first.clone(),
                        sql: m.sql.clone(),
                        description: "SQL view model",
                    });
                }
            }
        }
        views
    }

    /// Runs the given sources (all when empty), records each in `meta.runs`, and returns their
    /// outcomes. A failing source does not stop the others.
    pub async fn ingest(
        &self,
        kinds: &[SourceKind],
        window: Window,
    ) -> Result<Vec<SourceOutcome>, AppError> {
        let kinds: Vec<SourceKind> = if kinds.is_empty() {
            SourceKind::ALL.to_vec()
        } else {
            kinds.to_vec()
        };
        let run_id = uuid::Uuid::new_v4().to_string();
        let run_at = Lake::now();
        let ctx = IngestContext {
            http: self.http.clone(),
            lake: self.lake.clone(),
            window,
            run_at,
            raw: crate::lake::raw::RawArchives::new(self.lake.clone(), run_at),
            start_marks: Default::default(),
        };
        let connectors: Vec<Arc<dyn sources::Source>> = kinds
            .iter()
            .map(|k| Arc::from(sources::source_for(*k, &self.config.sources)))
            .collect();
        // A connector that reads another's tables waits for it; the others all ingest at once:
        // a live run waits on many hosts, and in a replay the longest connector (prices, with
        // thousands of symbols) then sets the time instead of the sum of all.
        let upstream: Vec<Vec<usize>> = connectors
            .iter()
            .map(|c| {
                c.reads()
                    .iter()
                    .filter_map(|r| kinds.iter().position(|k| k == r))
                    .collect()
            })
            .collect();
        let done = crate::parallel::run(
            &upstream,
            kinds.len(),
            |i, _: &[Option<Result<(SourceOutcome, RunRecord), String>>], _| {
                let (kind, connector) = (kinds[i], connectors[i].clone());
                let (ctx, run_id) = (ctx.clone(), run_id.clone());
                async move { Ok(ingest_one(kind, connector.as_ref(), &ctx, &run_id).await) }
            },
            Err,
        )
        .await;
        let mut outcomes = Vec::new();
        let mut records = Vec::new();
        for (kind, one) in kinds.iter().zip(done) {
            let (outcome, record) =
                one.unwrap_or_else(|message| crashed(*kind, &run_id, run_at, message));
            outcomes.push(outcome);
            records.push(record);
        }
        // A body landed under a name no connector finished is kept all the same.
        match ctx.raw.finish_all().await {
            Ok(left) if !left.is_empty() => {
                tracing::warn!(archives = ?left, "raw archives completed after every source ended")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot complete the raw archives"),
        }
        let failed = outcomes.iter().filter(|o| !o.errors.is_empty()).count();
        let mut run = ingest_record(
            &run_id,
            None,
            run_at,
            outcomes.iter().map(|o| o.rows as i64).sum(),
            (failed > 0).then(|| format!("{failed} source(s) failed")),
        );
        run.kind = "run".into();
        records.push(run);
        self.lake.record_runs(&records).await?;
        Ok(outcomes)
    }

    /// One row per lake table: rows, newest date, last ingest, current version.
    pub async fn status(&self) -> Result<Vec<RecordBatch>, AppError> {
        let session = self.lake.session(None, &[]).await?;
        let mut parts = Vec::new();
        for (table, version) in &session.tables {
            let provider = session
                .ctx
                .table_provider(table.to_string())
                .await
                .map_err(|source| LakeError::DataFusion {
                    context: format!("reading {table}"),
                    source: Box::new(source),
                })?;
            let schema = provider.schema();
            let has = |c: &str| schema.column_with_name(c).is_some();
            let date_col = [
                "date",
                "record_date",
                "as_of_date",
                "operation_date",
                "started_at",
                "watermark_date",
            ]
            .into_iter()
            .find(|c| has(c));
            let newest = date_col.map_or("NULL".to_string(), |c| newest_text(&schema, c));
            let ingested = if has("ingested_at") {
                newest_text(&schema, "ingested_at")
            } else {
                "NULL".to_string()
            };
            parts.push(format!(
                "SELECT '{table}' AS \"table\", count(*) AS \"rows\", {newest} AS newest_date, \
                 {ingested} AS last_ingest, CAST({} AS BIGINT) AS version FROM {table}",
                version.map_or(-1, |v| v as i64)
            ));
        }
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{} ORDER BY 1", parts.join(" UNION ALL "));
        Ok(crate::query::collect(&session.ctx, &sql).await?)
    }
}

/// `max(column)` as text for `status`. Timestamps are printed with all six digits of their
/// microseconds: a plain cast drops trailing zeros, so the same kind of value would print
/// with different widths from one run to the next.
fn newest_text(schema: &datafusion::arrow::datatypes::Schema, column: &str) -> String {
    let timestamp = schema.field_with_name(column).is_ok_and(|f| {
        matches!(
            f.data_type(),
            datafusion::arrow::datatypes::DataType::Timestamp(..)
        )
    });
    if timestamp {
        format!("to_char(max({column}), '%Y-%m-%dT%H:%M:%S%.6fZ')")
    } else {
        format!("CAST(max({column}) AS VARCHAR)")
    }
}

/// The outcome and `meta.runs` row of a connector whose ingest panicked.
fn crashed(
    kind: SourceKind,
    run_id: &str,
    run_at: chrono::DateTime<chrono::Utc>,
    message: String,
) -> (SourceOutcome, RunRecord) {
    let error = SourceError::Crashed {
        source_name: kind.as_str(),
        message,
    };
    tracing::error!(source = %kind, error = %error, "source failed");
    let record = ingest_record(
        run_id,
        Some(kind.to_string()),
        run_at,
        0,
        Some(error.to_string()),
    );
    let outcome = SourceOutcome {
        kind,
        rows: 0,
        errors: vec![error],
        seconds: 0.0,
    };
    (outcome, record)
}

/// Ingests one source: its outcome and its `meta.runs` row. Its raw archive is completed
/// whether or not the parse succeeded.
async fn ingest_one(
    kind: SourceKind,
    source: &dyn sources::Source,
    ctx: &IngestContext,
    run_id: &str,
) -> (SourceOutcome, RunRecord) {
    let started = Lake::now();
    let clock = Instant::now();
    tracing::info!(source = %kind, "ingesting");
    let (rows, mut errors) = match source.ingest(ctx).await {
        Ok(report) => (report.rows_written, report.failures),
        Err(e) => (0, vec![e]),
    };
    if let Err(error) = ctx.raw.finish(kind.as_str()).await {
        errors.push(SourceError::Lake {
            source_name: kind.as_str(),
            error,
        });
    }
    for e in &errors {
        tracing::error!(source = %kind, error = %e, "source failed");
    }
    let error = (!errors.is_empty()).then(|| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    });
    let record = ingest_record(run_id, Some(kind.to_string()), started, rows as i64, error);
    let outcome = SourceOutcome {
        kind,
        rows,
        errors,
        seconds: clock.elapsed().as_secs_f64(),
    };
    (outcome, record)
}

/// A `meta.runs` row of `macrolake ingest` ending now: one source's (`target`), or the whole
/// run's; failed when there is an `error`.
fn ingest_record(
    run_id: &str,
    target: Option<String>,
    started_at: chrono::DateTime<chrono::Utc>,
    rows_written: i64,
    error: Option<String>,
) -> RunRecord {
    RunRecord {
        scheduled_for: None,
        attempt: None,
        run_id: run_id.to_string(),
        kind: "ingest".into(),
        job: "ingest".into(),
        target,
        started_at,
        ended_at: Lake::now(),
        status: if error.is_none() {
            RunStatus::Ok
        } else {
            RunStatus::Failed
        },
        rows_written,
        error,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::newest_text;

    /// A timestamp on a whole millisecond prints as wide as any other (a plain cast prints
    /// `…:56.161Z` for it and `…:56.161794Z` for the next), and a date prints as a date.
    #[tokio::test]
    async fn status_prints_timestamps_with_a_fixed_width() {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE t AS SELECT \
             arrow_cast(TIMESTAMP '2026-12-06T03:50:56.161', 'Timestamp(Microsecond, Some(\"UTC\"))') AS ingested_at, \
             DATE '2026-01-30' AS as_of_date",
        )
        .await
        .unwrap();
        let schema = ctx.table("t").await.unwrap().schema().as_arrow().clone();
        let sql = format!(
            "SELECT {} AS a, {} AS b FROM t",
            newest_text(&schema, "ingested_at"),
            newest_text(&schema, "as_of_date")
        );
        let batches = crate::query::collect(&ctx, &sql).await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(
            text.contains("| 2026-12-06T03:50:56.161000Z | 2026-01-30 |"),
            "{text}"
        );
    }
}
