//! FedWatch step: meeting probabilities from the futures in the lake →
//! `staging.fedwatch_probabilities` [as_of_date, meeting_date, target_low_bps], and for days
//! where no futures cover the next meeting, a clearly labelled proxy → `staging.policy_proxy`
//! [as_of_date] (2-year, else 1-year, Treasury yield minus the effective rate, in bp). Every day
//! in the domain (days with an effective-rate print or a futures settlement, from `start_date`)
//! gets one or the other — never a silent gap: a day with no input at all gets a proxy row that
//! says why it has no value.
//!
//! Inputs: `staging.futures_daily` (per-contract rows, and the continuous front month as its
//! own month), the FOMC calendar (the Fed's calendar page in `staging.fomc_meetings` merged over
//! the built-in seed `sql/seeds/fomc_meetings.csv` or a file, see [`super::fomc`]), and
//! FRED's DFEDTARL, EFFR, DGS2 and DGS1 (`staging.fred_observations_latest`). The method is in
//! [`method`] (CME's anchor-month method, with a guard against meetings in the last days of a
//! month). CME's paid FedWatch API is not wired: its layout could not be verified.
//!
//! Point in time: the futures settle at the day's close; the target range in force is the newest
//! DFEDTARL print at most [`MAX_TARGET_AGE_DAYS`] old; the effective rate — used only as the first
//! meeting's start rate when no contract gives one — is the newest print *published* by the day:
//! the New York Fed publishes EFFR for day t on the next business day at about 9:00, so it is the
//! print dated before the day, never the day's own ([`published_effr`]). Without a target range or
//! a start rate the day gets the proxy, with the reason. The proxy spread itself pairs the day's
//! yield with the day's EFFR (the row is known the next business day, when both are out).

pub mod method;

use datafusion::arrow::datatypes::Date32Type;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde::Deserialize;

use super::{IngestContext, Source, SourceError, SourceKind, SourceReport};
use crate::lake::{LakeError, TableName, column_as};

const NAME: &str = "fedwatch";

/// `[sources.fedwatch]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FedwatchConfig {
    /// First as-of day computed.
    pub start_date: NaiveDate,
    /// FOMC calendar seed CSV (`meeting_date,scheduled,source`); unset = the built-in seed.
    /// The Fed's calendar page (`staging.fomc_meetings`, the `fomc` source) is merged over it.
    pub meetings_csv: Option<PathBuf>,
}

impl Default for FedwatchConfig {
    fn default() -> Self {
        Self {
            start_date: NaiveDate::from_ymd_opt(2015, 1, 1).expect("valid"),
            meetings_csv: None,
        }
    }
}

/// `staging.fedwatch_probabilities`.
pub fn probabilities_table() -> TableName {
    TableName::staging("fedwatch_probabilities")
}

/// `staging.policy_proxy`.
pub fn proxy_table() -> TableName {
    TableName::staging("policy_proxy")
}

/// Parses the FOMC calendar CSV (a header, then the decision date in the first column; errors
/// name the line).
pub fn parse_meetings(text: &str) -> Result<Vec<NaiveDate>, String> {
    let mut out = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        let record = record.map_err(|e| format!("not valid CSV: {e}"))?;
        let field = record.get(0).unwrap_or("");
        if field.is_empty() {
            continue;
        }
        let line = record
            .position()
            .map_or(0, |p| crate::sources::csv_line::line_of(text, p));
        out.push(
            NaiveDate::parse_from_str(field, "%Y-%m-%d")
                .map_err(|_| format!("line {line}: {field:?} is not a date"))?,
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The FedWatch step.
#[derive(Debug, Clone)]
pub struct Fedwatch {
    config: FedwatchConfig,
}

/// A daily series by date.
pub type Series = BTreeMap<NaiveDate, f64>;

/// Days a target range (DFEDTARL, a 7-day daily series) may be carried to a day.
pub const MAX_TARGET_AGE_DAYS: i64 = 7;
/// Days an effective-rate print may be carried as the start rate (weekends, holidays).
pub const MAX_EFFR_AGE_DAYS: i64 = 7;

fn as_of(series: Option<&Series>, day: NaiveDate) -> Option<f64> {
    series.and_then(|s| s.range(..=day).next_back().map(|(_, v)| *v))
}

/// The newest value dated on or before `day` and at most `max_age` days older.
fn latest_within(
    series: Option<&Series>,
    day: NaiveDate,
    max_age: i64,
) -> Option<(NaiveDate, f64)> {
    series
        .and_then(|s| s.range(..=day).next_back())
        .filter(|(d, _)| (day - **d).num_days() <= max_age)
        .map(|(d, v)| (*d, *v))
}

/// The effective rate as published by `day`: the New York Fed publishes the rate for day `t` on
/// the next business day at about 9:00, so by the close of `day` (when the futures settle) the
/// newest print is dated *before* `day` — never `day` itself. At most [`MAX_EFFR_AGE_DAYS`] old.
pub fn published_effr(series: Option<&Series>, day: NaiveDate) -> Option<method::PublishedEffr> {
    series
        .and_then(|s| s.range(..day).next_back())
        .filter(|(d, _)| (day - **d).num_days() <= MAX_EFFR_AGE_DAYS)
        .map(|(d, v)| method::PublishedEffr { date: *d, pct: *v })
}

struct Inputs {
    curves: BTreeMap<NaiveDate, (method::Curve, BTreeSet<String>)>,
    fred: BTreeMap<String, Series>,
}

impl Fedwatch {
    /// The step with these settings.
    pub fn new(config: FedwatchConfig) -> Self {
        Self { config }
    }

    /// The FOMC decision days: the Fed's calendar page as landed by the `fomc` source merged
    /// over the seed (`meetings_csv`, else the built-in one); the seed alone when the page was
    /// never landed. Notation votes and cancelled meetings are not decision days.
    async fn meetings(&self, ctx: &IngestContext) -> Result<Vec<NaiveDate>, SourceError> {
        super::fomc::decision_days(&ctx.lake, self.config.meetings_csv.as_deref()).await
    }

    async fn inputs(&self, ctx: &IngestContext) -> Result<Inputs, LakeError> {
        let views = crate::sources::fred::Fred::new(Default::default()).views();
        let session = ctx.lake.session(None, &views).await?;
        let names: Vec<TableName> = session.tables.iter().map(|(t, _)| t.clone()).collect();
        let q = |sql: String| {
            let ctx = session.ctx.clone();
            async move {
                let df_err = |source| LakeError::DataFusion {
                    context: "reading FedWatch inputs".into(),
                    source: Box::new(source),
                };
                ctx.sql(&sql)
                    .await
                    .map_err(df_err)?
                    .collect()
                    .await
                    .map_err(df_err)
            }
        };
        let mut curves: BTreeMap<NaiveDate, (method::Curve, BTreeSet<String>)> = BTreeMap::new();
        if names.contains(&crate::sources::futures::table()) {
            let sql = "SELECT date, contract_month, implied_rate_pct, contract FROM staging.futures_daily WHERE contract_month IS NOT NULL ORDER BY date, source";
            for b in q(sql.to_string()).await? {
                let dates: Date32Array = column_as(&b, 0, &DataType::Date32)?;
                let months: Date32Array = column_as(&b, 1, &DataType::Date32)?;
                let rates: Float64Array = column_as(&b, 2, &DataType::Float64)?;
                let contracts: StringArray = column_as(&b, 3, &DataType::Utf8)?;
                for i in 0..b.num_rows() {
                    let (Some(day), Some(month)) =
                        (dates.value_as_date(i), months.value_as_date(i))
                    else {
                        continue;
                    };
                    let entry = curves.entry(day).or_default();
                    entry.0.entry(month).or_insert(rates.value(i));
                    entry.1.insert(contracts.value(i).to_string());
                }
            }
        }
        let mut fred: BTreeMap<String, Series> = BTreeMap::new();
        if names.contains(&crate::sources::fred::observations_table()) {
            let sql = "SELECT series_id, date, value FROM staging.fred_observations_latest \
                       WHERE series_id IN ('EFFR', 'DFEDTARL', 'DGS1', 'DGS2') AND value IS NOT NULL";
            for b in q(sql.to_string()).await? {
                let ids: StringArray = column_as(&b, 0, &DataType::Utf8)?;
                let dates: Date32Array = column_as(&b, 1, &DataType::Date32)?;
                let values: Float64Array = column_as(&b, 2, &DataType::Float64)?;
                for i in 0..b.num_rows() {
                    let Some(day) = dates.value_as_date(i) else {
                        continue;
                    };
                    fred.entry(ids.value(i).to_string())
                        .or_default()
                        .insert(day, values.value(i));
                }
            }
        }
        Ok(Inputs { curves, fred })
    }
}

#[derive(Default)]
struct ProbRows {
    as_of: Vec<i32>,
    meeting: Vec<i32>,
    index: Vec<i64>,
    low: Vec<i64>,
    prob: Vec<f64>,
    start: Vec<f64>,
    end: Vec<f64>,
    method: Vec<String>,
    contracts: Vec<String>,
}

#[derive(Default)]
struct ProxyRows {
    as_of: Vec<i32>,
    next_meeting: Vec<Option<i32>>,
    effr: Vec<Option<f64>>,
    dgs1: Vec<Option<f64>>,
    dgs2: Vec<Option<f64>>,
    change_bp: Vec<Option<f64>>,
    proxy: Vec<&'static str>,
    reason: Vec<String>,
}

fn stamp(n: usize, run_at: DateTime<Utc>) -> ArrayRef {
    crate::lake::ingested_at_column(n, run_at)
}

fn ts_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )
}

impl ProbRows {
    fn batch(self, run_at: DateTime<Utc>) -> Result<RecordBatch, LakeError> {
        let n = self.as_of.len();
        let schema = Arc::new(Schema::new(vec![
            Field::new("as_of_date", DataType::Date32, false),
            Field::new("meeting_date", DataType::Date32, false),
            Field::new("meeting_index", DataType::Int64, false),
            Field::new("target_low_bps", DataType::Int64, false),
            Field::new("target_high_bps", DataType::Int64, false),
            Field::new("probability", DataType::Float64, false),
            Field::new("rate_start_pct", DataType::Float64, false),
            Field::new("rate_end_pct", DataType::Float64, false),
            Field::new("method", DataType::Utf8, false),
            Field::new("contracts", DataType::Utf8, false),
            Field::new("source", DataType::Utf8, false),
            ts_field("ingested_at"),
        ]));
        let high: Vec<i64> = self.low.iter().map(|l| l + 25).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(self.as_of)),
            Arc::new(Date32Array::from(self.meeting)),
            Arc::new(Int64Array::from(self.index)),
            Arc::new(Int64Array::from(self.low)),
            Arc::new(Int64Array::from(high)),
            Arc::new(Float64Array::from(self.prob)),
            Arc::new(Float64Array::from(self.start)),
            Arc::new(Float64Array::from(self.end)),
            Arc::new(StringArray::from(self.method)),
            Arc::new(StringArray::from(self.contracts)),
            Arc::new(StringArray::from(vec!["futures"; n])),
            stamp(n, run_at),
        ];
        RecordBatch::try_new(schema, columns).map_err(|e| LakeError::Data {
            table: probabilities_table(),
            message: e.to_string(),
        })
    }
}

impl ProxyRows {
    fn batch(self, run_at: DateTime<Utc>) -> Result<RecordBatch, LakeError> {
        let n = self.as_of.len();
        let schema = Arc::new(Schema::new(vec![
            Field::new("as_of_date", DataType::Date32, false),
            Field::new("next_meeting_date", DataType::Date32, true),
            Field::new("effr_pct", DataType::Float64, true),
            Field::new("dgs1_pct", DataType::Float64, true),
            Field::new("dgs2_pct", DataType::Float64, true),
            Field::new("priced_change_bp", DataType::Float64, true),
            Field::new("proxy", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
            ts_field("ingested_at"),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(self.as_of)),
            Arc::new(Date32Array::from(self.next_meeting)),
            Arc::new(Float64Array::from(self.effr)),
            Arc::new(Float64Array::from(self.dgs1)),
            Arc::new(Float64Array::from(self.dgs2)),
            Arc::new(Float64Array::from(self.change_bp)),
            Arc::new(StringArray::from(self.proxy)),
            Arc::new(StringArray::from(self.reason)),
            stamp(n, run_at),
        ];
        RecordBatch::try_new(schema, columns).map_err(|e| LakeError::Data {
            table: proxy_table(),
            message: e.to_string(),
        })
    }
}

#[async_trait::async_trait]
impl Source for Fedwatch {
    fn kind(&self) -> SourceKind {
        SourceKind::Fedwatch
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let lake_err = SourceError::lake(NAME);
        let meetings = self.meetings(ctx).await?;
        let inputs = self.inputs(ctx).await.map_err(&lake_err)?;
        let mut days: BTreeSet<NaiveDate> = inputs
            .fred
            .get("EFFR")
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default();
        days.extend(inputs.curves.keys().copied());
        let start = ctx
            .window
            .since
            .unwrap_or(self.config.start_date)
            .max(self.config.start_date);
        let (mut probs, mut proxies) = (ProbRows::default(), ProxyRows::default());
        for day in days
            .into_iter()
            .filter(|d| ctx.window.contains(Some(start), *d))
        {
            let next = meetings.iter().find(|m| **m >= day).copied();
            let (priced, no_odds) = inputs.odds(day, &meetings);
            // Odds when the futures price the next meeting; else the yield-curve proxy says why.
            if next.is_some() && priced.first().map(|o| o.meeting_date) == next {
                probs.push_day(day, &priced, &inputs.contracts(day));
            } else {
                proxies.push_day(&inputs, day, next, no_odds);
            }
        }
        let report = land(ctx, start, probs, proxies).await.map_err(&lake_err)?;
        tracing::info!(source = NAME, rows = report.rows_written, "computed");
        Ok(report)
    }
}

impl Inputs {
    /// The meetings priced on `day`, or why there are none although the day has a curve.
    fn odds(
        &self,
        day: NaiveDate,
        meetings: &[NaiveDate],
    ) -> (Vec<method::MeetingOdds>, Option<String>) {
        let effr = self.fred.get("EFFR");
        let low = latest_within(self.fred.get("DFEDTARL"), day, MAX_TARGET_AGE_DAYS)
            .map(|(_, l)| (l * 100.0).round() as i64);
        match (self.curves.get(&day), low) {
            (Some((c, _)), Some(low)) => {
                let p = method::meeting_odds(day, meetings, c, low, published_effr(effr, day));
                let gap = p.gap.as_ref().map(ToString::to_string);
                (p.meetings, gap)
            }
            (None, _) => (Vec::new(), None),
            (Some(_), None) => (
                Vec::new(),
                Some(format!(
                    "no target range (DFEDTARL) dated within {MAX_TARGET_AGE_DAYS} days \
                     before the day"
                )),
            ),
        }
    }

    /// The contracts of `day`'s curve, comma-separated.
    fn contracts(&self, day: NaiveDate) -> String {
        self.curves
            .get(&day)
            .map(|(_, names)| names.iter().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    }

    /// Whether `series` has a value dated within 7 days before `day`.
    fn fresh(&self, series: &str, day: NaiveDate) -> bool {
        latest_within(self.fred.get(series), day, 7).is_some()
    }
}

impl ProbRows {
    /// One row per meeting and target range priced on `day`.
    fn push_day(&mut self, day: NaiveDate, priced: &[method::MeetingOdds], contracts: &str) {
        for (k, o) in priced.iter().enumerate() {
            for (l, p) in &o.probabilities {
                self.as_of.push(Date32Type::from_naive_date(day));
                self.meeting
                    .push(Date32Type::from_naive_date(o.meeting_date));
                self.index.push(k as i64 + 1);
                self.low.push(*l);
                self.prob.push((p * 1e9).round() / 1e9);
                self.start.push(o.rate_start_pct);
                self.end.push(o.rate_end_pct);
                self.method.push(o.method.clone());
                self.contracts.push(contracts.to_string());
            }
        }
    }
}

impl ProxyRows {
    /// `day`'s proxy row: the 2-year (else 1-year) yield minus EFFR when one is fresh, and why
    /// the futures gave no odds (`no_odds`, else the missing meeting or contract).
    fn push_day(
        &mut self,
        inputs: &Inputs,
        day: NaiveDate,
        next: Option<NaiveDate>,
        no_odds: Option<String>,
    ) {
        let effr_now = as_of(inputs.fred.get("EFFR"), day);
        let dgs1 = as_of(inputs.fred.get("DGS1"), day);
        let dgs2 = as_of(inputs.fred.get("DGS2"), day);
        let (proxy, yield_pct) = match (dgs2, dgs1) {
            (Some(y), _) if inputs.fresh("DGS2", day) => ("DGS2 - EFFR", Some(y)),
            (_, Some(y)) if inputs.fresh("DGS1", day) => ("DGS1 - EFFR", Some(y)),
            _ => ("none", None),
        };
        let why_no_futures = match (next, no_odds) {
            (None, _) => "no upcoming FOMC meeting in the calendar".to_string(),
            (Some(_), Some(gap)) => gap,
            (Some(m), None) => format!(
                "no futures contract for the {} meeting month",
                m.format("%Y-%m")
            ),
        };
        let reason = if proxy == "none" {
            format!("{why_no_futures}; no 1- or 2-year yield within 7 days")
        } else {
            why_no_futures
        };
        self.as_of.push(Date32Type::from_naive_date(day));
        self.next_meeting
            .push(next.map(Date32Type::from_naive_date));
        self.effr.push(effr_now);
        self.dgs1.push(dgs1);
        self.dgs2.push(dgs2);
        self.change_bp.push(
            yield_pct
                .zip(effr_now)
                .map(|(y, e)| ((y - e) * 100.0 * 1e6).round() / 1e6),
        );
        self.proxy.push(proxy);
        self.reason.push(reason);
    }
}

/// Writes both tables for the window from `start`. Both always exist after a run (the marts
/// read both), even when one has no rows: e.g. a window where every day has odds writes no
/// proxy row.
async fn land(
    ctx: &IngestContext,
    start: NaiveDate,
    probs: ProbRows,
    proxies: ProxyRows,
) -> Result<SourceReport, LakeError> {
    let mut report = SourceReport::default();
    let writes = [
        (
            probabilities_table(),
            probs.as_of.len(),
            probs.batch(ctx.run_at)?,
            &["as_of_date", "meeting_date", "target_low_bps"][..],
        ),
        (
            proxy_table(),
            proxies.as_of.len(),
            proxies.batch(ctx.run_at)?,
            &["as_of_date"][..],
        ),
    ];
    for (table, rows, batch, keys) in writes {
        let mode = if rows == 0 && !ctx.lake.exists(&table).await? {
            crate::lake::WriteMode::Overwrite
        } else {
            ctx.window.write_mode(Some(start), "as_of_date", keys)
        };
        report.rows_written += ctx.lake.write(&table, vec![batch], mode).await?.rows;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EFFR for day t is published on the next business day at ~9:00 New York: on the as-of day
    /// the newest print is the previous business day's, never the day's own.
    #[test]
    fn the_start_rate_is_the_effr_published_by_the_day() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Real EFFR prints (the snapshot's FRED body) around the 2025-09-17 cut.
        let effr: Series = [
            (d("2025-09-16"), 4.33),
            (d("2025-09-17"), 4.33),
            (d("2025-09-18"), 4.08),
            (d("2025-09-19"), 4.08),
            (d("2025-09-22"), 4.09),
        ]
        .into_iter()
        .collect();
        // On 2025-09-18 the 4.08 print for that day is not out yet (published 09-19, 9:00).
        let p = published_effr(Some(&effr), d("2025-09-18")).unwrap();
        assert_eq!(
            (p.date, p.pct),
            (d("2025-09-17"), 4.33),
            "not the same-day print"
        );
        // Monday 09-22: Friday's print.
        let p = published_effr(Some(&effr), d("2025-09-22")).unwrap();
        assert_eq!((p.date, p.pct), (d("2025-09-19"), 4.08));
        // Too old: nothing rather than a stale rate.
        assert_eq!(published_effr(Some(&effr), d("2025-10-01")), None);
        assert_eq!(published_effr(None, d("2025-09-22")), None);
        assert_eq!(
            latest_within(Some(&effr), d("2025-09-18"), MAX_TARGET_AGE_DAYS),
            Some((d("2025-09-18"), 4.08)),
            "a target range is in force on its own date"
        );
    }

    #[test]
    fn seed_has_the_published_calendar() {
        let m = parse_meetings(crate::sources::fomc::SEED).unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(
            m.contains(&d("2026-04-29")),
            "the Fed's published 2026 date"
        );
        assert!(
            !m.contains(&d("2026-05-06")),
            "the wrong projected date is gone"
        );
        assert!(m.contains(&d("2020-03-15")), "unscheduled meetings count");
        assert_eq!(
            m.iter()
                .filter(|x| x.format("%Y").to_string() == "2025")
                .count(),
            8
        );
        assert!(
            parse_meetings("meeting_date\n2025-13-01\n")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(
            parse_meetings("meeting_date\n2025-01-29\n\n\n2025-13-01\n")
                .unwrap_err()
                .contains("line 5")
        );
        // Quoted fields, commas inside them, and a quoted line break in a later column.
        assert_eq!(
            parse_meetings(
                "meeting_date,label\n\"2026-01-28\",\"Jan 27-28,\n2026\"\n2026-03-18,x\n"
            )
            .unwrap(),
            [d("2026-01-28"), d("2026-03-18")]
        );
    }
}
