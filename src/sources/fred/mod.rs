//! FRED connector: `staging.fred_observations` [series_id, date, realtime_start] and
//! `staging.fred_series` [series_id].
//!
//! Without a key it reads the keyless fredgraph CSV; with `FRED_API_KEY` set it reads the API
//! (observations with their real-time vintages, plus series metadata). Each series is fetched on
//! its own, so one failing series (a 404, a malformed body) fails only itself: the others land.
//!
//! Vintages: a value is stored with the first day it was seen (`realtime_start`; the API's own
//! for API data, the fetch day for CSV data). A fetched value identical to the newest stored
//! vintage of that (series, date) is not stored again; a revised value becomes a new vintage, and
//! `staging.fred_observations_latest` shows the newest vintage of each observation.

pub mod catalog;
pub mod config;
pub mod guard;
pub mod parse;

use datafusion::arrow::datatypes::Date32Type;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use futures::StreamExt;

pub use config::FredConfig;
use parse::{Observation, SeriesMeta};

use super::{IngestContext, Source, SourceError, SourceKind, SourceReport};
use crate::http::Request;
use crate::lake::{Lake, LakeError, TableName, ViewDef, WriteMode, column_as};

const NAME: &str = "fred";

/// `staging.fred_observations`.
pub fn observations_table() -> TableName {
    TableName::staging("fred_observations")
}

/// `staging.fred_series`.
pub fn series_table() -> TableName {
    TableName::staging("fred_series")
}

/// The FRED connector.
#[derive(Debug, Clone)]
pub struct Fred {
    config: FredConfig,
}

/// One series as fetched.
struct Fetched {
    id: String,
    observations: Vec<Observation>,
    meta: Option<SeriesMeta>,
    fetched_at: DateTime<Utc>,
    source: &'static str,
}

impl Fred {
    /// A connector with these settings.
    pub fn new(config: FredConfig) -> Self {
        Self { config }
    }

    fn api_key(&self) -> Option<String> {
        std::env::var(&self.config.api_key_env)
            .ok()
            .filter(|k| !k.trim().is_empty())
    }

    async fn fetch(
        &self,
        ctx: &IngestContext,
        id: &str,
        start: Option<NaiveDate>,
    ) -> Result<Fetched, SourceError> {
        let fetched = match self.api_key() {
            Some(key) => self.fetch_api(ctx, id, start, &key).await?,
            None => self.fetch_csv(ctx, id, start).await?,
        };
        let window = &ctx.window;
        let observations = fetched
            .observations
            .into_iter()
            .filter(|o| window.contains(start, o.date))
            .collect();
        Ok(Fetched {
            observations,
            ..fetched
        })
    }

    async fn fetch_csv(
        &self,
        ctx: &IngestContext,
        id: &str,
        start: Option<NaiveDate>,
    ) -> Result<Fetched, SourceError> {
        let mut req = Request::get(self.config.fredgraph_url.clone())
            .query("id", id)
            .window_param("cosd")
            .window_param("coed");
        if let Some(s) = start {
            req = req.window_query("cosd", &s.to_string());
        }
        if let Some(u) = ctx.window.until {
            req = req.window_query("coed", &u.to_string());
        }
        let resp = ctx
            .fetch(NAME, &format!("series {id}"), &req, &format!("{id}.csv"))
            .await?;
        let observations =
            parse::fredgraph_csv(&resp.body, id).map_err(|e| SourceError::Parse {
                source_name: NAME,
                item: format!("series {id}"),
                url: resp.url.clone(),
                line: e.line,
                message: e.message,
            })?;
        Ok(Fetched {
            id: id.to_string(),
            observations,
            meta: None,
            fetched_at: resp.fetched_at,
            source: "fredgraph_csv",
        })
    }

    async fn fetch_api(
        &self,
        ctx: &IngestContext,
        id: &str,
        start: Option<NaiveDate>,
        key: &str,
    ) -> Result<Fetched, SourceError> {
        let endpoint = |path: &str| self.config.api_url.join(path).expect("static path joins");
        let parse_err = |url: &str, e: parse::ParseError| SourceError::Parse {
            source_name: NAME,
            item: format!("series {id}"),
            url: url.to_string(),
            line: e.line,
            message: e.message,
        };
        let meta_req = Request::get(endpoint("series"))
            .query("series_id", id)
            .secret_query("api_key", key)
            .query("file_type", "json");
        let meta_resp = ctx
            .fetch(
                NAME,
                &format!("series {id}"),
                &meta_req,
                &format!("{id}-series.json"),
            )
            .await?;
        let meta =
            parse::api_series(&meta_resp.body, id).map_err(|e| parse_err(&meta_resp.url, e))?;

        const PAGE: u64 = 100_000;
        let mut observations = Vec::new();
        let mut offset = 0u64;
        let mut fetched_at;
        loop {
            let mut req = Request::get(endpoint("series/observations"))
                .query("series_id", id)
                .secret_query("api_key", key)
                .query("file_type", "json")
                .query("limit", &PAGE.to_string())
                .window_param("observation_start")
                .window_param("observation_end");
            if offset > 0 {
                req = req.query("offset", &offset.to_string());
            }
            if let Some(s) = start {
                req = req.window_query("observation_start", &s.to_string());
            }
            if let Some(u) = ctx.window.until {
                req = req.window_query("observation_end", &u.to_string());
            }
            let resp = ctx
                .fetch(
                    NAME,
                    &format!("series {id}"),
                    &req,
                    &format!("{id}-obs-{offset}.json"),
                )
                .await?;
            fetched_at = resp.fetched_at;
            let page = parse::api_observations(&resp.body).map_err(|e| parse_err(&resp.url, e))?;
            let got = page.observations.len() as u64;
            observations.extend(page.observations);
            offset = page.offset + got;
            if got == 0 || page.count.is_none_or(|c| offset >= c) {
                break;
            }
        }
        Ok(Fetched {
            id: id.to_string(),
            observations,
            meta: Some(meta),
            fetched_at,
            source: "fred_api",
        })
    }

    /// The unit-change guard ([`guard`]) for one fetched series against the stored values.
    fn unit_guard(
        &self,
        f: &Fetched,
        stored: &HashMap<(String, i32), Option<f64>>,
    ) -> Result<(), SourceError> {
        if self.config.rebased_series.iter().any(|s| s == &f.id) {
            return Ok(());
        }
        let history: Vec<(NaiveDate, f64)> = stored
            .iter()
            .filter(|((id, _), _)| id == &f.id)
            .filter_map(|((_, day), v)| {
                let date = NaiveDate::from_ymd_opt(1970, 1, 1)?
                    .checked_add_signed(chrono::Duration::days(i64::from(*day)))?;
                Some((date, (*v)?))
            })
            .collect();
        guard::check(
            &f.id,
            &f.observations,
            &history,
            self.config.max_magnitude_ratio,
        )
        .map_err(|message| SourceError::Refused {
            source_name: NAME,
            item: format!("series {}", f.id),
            message,
        })
    }

    /// Newest stored value of every (series, date), for the vintage rule.
    async fn latest_values(
        &self,
        lake: &Lake,
    ) -> Result<HashMap<(String, i32), Option<f64>>, LakeError> {
        let mut out = HashMap::new();
        if !lake.exists(&observations_table()).await? {
            return Ok(out);
        }
        let session = lake.session(None, &self.views()).await?;
        let df_err = |source| LakeError::DataFusion {
            context: "reading stored FRED vintages".into(),
            source: Box::new(source),
        };
        let batches = session
            .ctx
            .sql("SELECT series_id, date, value FROM staging.fred_observations_latest")
            .await
            .map_err(df_err)?
            .collect()
            .await
            .map_err(df_err)?;
        for b in batches {
            let ids: StringArray = column_as(&b, 0, &DataType::Utf8)?;
            let dates: Date32Array = column_as(&b, 1, &DataType::Date32)?;
            let values: Float64Array = column_as(&b, 2, &DataType::Float64)?;
            for i in 0..b.num_rows() {
                let v = (!values.is_null(i)).then(|| values.value(i));
                out.insert((ids.value(i).to_string(), dates.value(i)), v);
            }
        }
        Ok(out)
    }
}

/// Schema of `staging.fred_observations`.
pub fn observations_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
        Field::new("value", DataType::Float64, true),
        Field::new("units", DataType::Utf8, true),
        Field::new("value_musd", DataType::Float64, true),
        Field::new("realtime_start", DataType::Date32, false),
        Field::new("realtime_end", DataType::Date32, true),
        Field::new("source", DataType::Utf8, false),
        Field::new(
            "ingested_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

fn units_of(f: &Fetched) -> Option<String> {
    f.meta
        .as_ref()
        .map(|m| m.units.clone())
        .or_else(|| catalog::known(&f.id).map(|k| k.units.to_string()))
}

fn observations_batch(
    series: &[Fetched],
    latest: &HashMap<(String, i32), Option<f64>>,
    run_at: DateTime<Utc>,
) -> Result<RecordBatch, LakeError> {
    let (
        mut ids,
        mut dates,
        mut values,
        mut units,
        mut musd,
        mut rt_start,
        mut rt_end,
        mut sources,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for f in series {
        let unit = units_of(f);
        let factor = unit.as_deref().and_then(catalog::musd_factor);
        let seen_on = f.fetched_at.date_naive();
        for o in &f.observations {
            let day = Date32Type::from_naive_date(o.date);
            if let Some(stored) = latest.get(&(f.id.clone(), day))
                && stored.map(f64::to_bits) == o.value.map(f64::to_bits)
            {
                continue;
            }
            ids.push(f.id.clone());
            dates.push(day);
            values.push(o.value);
            units.push(unit.clone());
            musd.push(o.value.zip(factor).map(|(v, k)| v * k));
            rt_start.push(Date32Type::from_naive_date(
                o.realtime_start.unwrap_or(seen_on),
            ));
            rt_end.push(o.realtime_end.map(Date32Type::from_naive_date));
            sources.push(f.source);
        }
    }
    let n = ids.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(Date32Array::from(dates)),
        Arc::new(Float64Array::from(values)),
        Arc::new(StringArray::from(units)),
        Arc::new(Float64Array::from(musd)),
        Arc::new(Date32Array::from(rt_start)),
        Arc::new(Date32Array::from(rt_end)),
        Arc::new(StringArray::from(sources)),
        crate::lake::ingested_at_column(n, run_at),
    ];
    RecordBatch::try_new(observations_schema(), columns).map_err(|e| LakeError::Data {
        table: observations_table(),
        message: e.to_string(),
    })
}

fn series_batch(series: &[Fetched], run_at: DateTime<Utc>) -> Result<RecordBatch, LakeError> {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, true),
        Field::new("units", DataType::Utf8, true),
        Field::new("frequency", DataType::Utf8, true),
        Field::new("seasonal_adjustment", DataType::Utf8, true),
        Field::new("observation_start", DataType::Date32, true),
        Field::new("observation_end", DataType::Date32, true),
        Field::new("last_updated", ts.clone(), true),
        Field::new("source", DataType::Utf8, false),
        Field::new("ingested_at", ts, false),
    ]));
    let known = |f: &Fetched| catalog::known(&f.id);
    let text = |g: &dyn Fn(&Fetched) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(series.iter().map(g).collect::<Vec<_>>()))
    };
    // First/last observation dates come from the API's metadata only: a windowed fetch cannot
    // tell them, and deriving them from it would change the row on every incremental run.
    let meta_date = |f: &Fetched, last: bool| {
        let m = f.meta.as_ref()?;
        let raw = if last {
            &m.observation_end
        } else {
            &m.observation_start
        };
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .map(Date32Type::from_naive_date)
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|f| Some(f.id.clone())),
        text(&|f| {
            f.meta
                .as_ref()
                .map(|m| m.title.clone())
                .or_else(|| known(f).map(|k| k.title.to_string()))
        }),
        text(&|f| units_of(f)),
        text(&|f| {
            f.meta
                .as_ref()
                .map(|m| m.frequency.clone())
                .or_else(|| known(f).map(|k| k.frequency.to_string()))
        }),
        text(&|f| f.meta.as_ref().and_then(|m| m.seasonal_adjustment.clone())),
        Arc::new(Date32Array::from(
            series
                .iter()
                .map(|f| meta_date(f, false))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(
            series
                .iter()
                .map(|f| meta_date(f, true))
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(
                series
                    .iter()
                    .map(|f| {
                        f.meta
                            .as_ref()
                            .and_then(SeriesMeta::last_updated_utc)
                            .map(|t| t.timestamp_micros())
                    })
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        text(&|f| {
            Some(if f.meta.is_some() {
                "fred_api".into()
            } else {
                "macrolake_catalog".into()
            })
        }),
        crate::lake::ingested_at_column(series.len(), run_at),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| LakeError::Data {
        table: series_table(),
        message: e.to_string(),
    })
}

#[async_trait::async_trait]
impl Source for Fred {
    fn kind(&self) -> SourceKind {
        SourceKind::Fred
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let lake_err = |error| SourceError::Lake {
            source_name: NAME,
            error,
        };
        if let Some(key) = self.api_key() {
            crate::http::redact::register(&key);
        }
        let marks = ctx.lake.watermarks(NAME).await.map_err(lake_err)?;
        let jobs: Vec<(String, Option<NaiveDate>)> = self
            .config
            .series
            .iter()
            .map(|id| {
                let start = ctx.window.start_for(
                    marks.get(id).copied(),
                    self.config.lookback_days,
                    self.config.start_date,
                );
                (id.clone(), start)
            })
            .collect();
        let results: Vec<Result<Fetched, SourceError>> = futures::stream::iter(jobs)
            .map(|(id, start)| async move { self.fetch(ctx, &id, start).await })
            .buffered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut report = SourceReport::default();
        let mut fetched = Vec::new();
        for r in results {
            match r {
                Ok(f) => fetched.push(f),
                Err(e) => {
                    tracing::error!(source = NAME, error = %e, "series failed; the others still land");
                    report.failures.push(e);
                }
            }
        }
        let stored = self.latest_values(&ctx.lake).await.map_err(lake_err)?;
        fetched.retain(|f| match self.unit_guard(f, &stored) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(source = NAME, error = %e, "series refused; the others still land");
                report.failures.push(e);
                false
            }
        });
        if fetched.is_empty() {
            return Ok(report);
        }
        let latest = if ctx.window.full_refresh {
            HashMap::new()
        } else {
            stored
        };
        let batch = observations_batch(&fetched, &latest, ctx.run_at).map_err(lake_err)?;
        let mode = if ctx.window.full_refresh {
            let ids: Vec<String> = fetched
                .iter()
                .map(|f| format!("'{}'", f.id.replace('\'', "''")))
                .collect();
            WriteMode::ReplaceWhere(format!("series_id IN ({})", ids.join(", ")))
        } else {
            WriteMode::merge_on(&["series_id", "date", "realtime_start"])
        };
        let written = ctx
            .lake
            .write(&observations_table(), vec![batch], mode)
            .await
            .map_err(lake_err)?;
        report.rows_written += written.rows;
        let meta = series_batch(&fetched, ctx.run_at).map_err(lake_err)?;
        let written = ctx
            .lake
            .write(
                &series_table(),
                vec![meta],
                WriteMode::merge_on(&["series_id"]),
            )
            .await
            .map_err(lake_err)?;
        report.rows_written += written.rows;

        let mut new_marks = HashMap::new();
        for f in &fetched {
            if let Some(newest) = f.observations.iter().map(|o| o.date).max() {
                let old = marks.get(&f.id).copied();
                if old.is_none_or(|o| newest > o) {
                    new_marks.insert(f.id.clone(), newest);
                }
            }
        }
        ctx.lake
            .set_watermarks(NAME, &new_marks, ctx.run_at)
            .await
            .map_err(lake_err)?;
        tracing::info!(
            source = NAME,
            series = fetched.len(),
            rows = report.rows_written,
            "landed"
        );
        Ok(report)
    }

    fn views(&self) -> Vec<ViewDef> {
        vec![ViewDef {
            name: TableName::staging("fred_observations_latest"),
            requires: observations_table(),
            description: "newest vintage of every FRED observation",
            sql: "SELECT series_id, date, value, units, value_musd, realtime_start, source, ingested_at, available_at \
                  FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY series_id, date ORDER BY realtime_start DESC) AS vintage_rank \
                        FROM staging.fred_observations) WHERE vintage_rank = 1"
                .to_string(),
        }]
    }
}
