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

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::NaiveDate;
use datafusion::arrow::array::{Date32Array, Float64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use serde::Deserialize;

use super::{IngestContext, Source, SourceError, SourceReport};
use crate::lake::{LakeError, StagingRow, TableName, column_as};

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

crate::staging_row! {
    /// One row of `staging.fedwatch_probabilities`: the probability of one target range after
    /// one meeting, as priced by the fed funds futures on one day.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ProbabilityRow in "fedwatch_probabilities"
        keys [as_of_date, meeting_date, target_low_bps]
    {
        /// The day the futures settled (the odds are as of its close).
        pub as_of_date: NaiveDate,
        /// The FOMC decision day the odds are for.
        pub meeting_date: NaiveDate,
        /// 1 for the next meeting on or after `as_of_date`, 2 for the one after, …
        pub meeting_index: i64,
        /// Lower bound of the target range, in basis points (e.g. 425 for 4.25%).
        pub target_low_bps: i64,
        /// Upper bound of the target range, in basis points: `target_low_bps + 25`.
        pub target_high_bps: i64,
        /// Probability (0 to 1) that the range is in force after the meeting, rounded to 9
        /// decimals.
        pub probability: f64,
        /// Rate in force before the meeting, in percent, on the futures' basis.
        pub rate_start_pct: f64,
        /// Expected rate after the meeting, in percent, on the futures' basis.
        pub rate_end_pct: f64,
        /// Where the start and end rates came from, e.g.
        /// `start: back-solved from OCT 26; end: anchor NOV 26`.
        pub method: String,
        /// The contracts of the day's curve, comma-separated.
        pub contracts: String,
        /// Always `futures`.
        pub source: &'static str,
    }
}

crate::staging_row! {
    /// One row of `staging.policy_proxy`: a day whose futures do not price the next meeting,
    /// with the yield-curve proxy and why there are no odds.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ProxyRow in "policy_proxy" keys [as_of_date] {
        /// The day.
        pub as_of_date: NaiveDate,
        /// The next FOMC decision day on or after `as_of_date`; NULL when the calendar has none.
        pub next_meeting_date: Option<NaiveDate>,
        /// The newest effective fed funds rate (EFFR) dated on or before the day, in percent;
        /// NULL when there is none.
        pub effr_pct: Option<f64>,
        /// The newest 1-year Treasury yield (DGS1) dated on or before the day, in percent; NULL
        /// when there is none.
        pub dgs1_pct: Option<f64>,
        /// The newest 2-year Treasury yield (DGS2) dated on or before the day, in percent; NULL
        /// when there is none.
        pub dgs2_pct: Option<f64>,
        /// The yield named by `proxy` minus `effr_pct`, in basis points, rounded to 6 decimals;
        /// NULL when `proxy` is `none` or there is no EFFR.
        pub priced_change_bp: Option<f64>,
        /// `DGS2 - EFFR` (the 2-year yield is dated within 7 days before the day), else
        /// `DGS1 - EFFR` (the 1-year is), else `none`.
        pub proxy: &'static str,
        /// Why the futures gave no odds for the day (and, when `proxy` is `none`, that no 1- or
        /// 2-year yield is within 7 days).
        pub reason: String,
    }
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
        let read = [
            crate::sources::futures::parse::Settle::table(),
            crate::sources::fred::ObservationRow::table(),
        ];
        let session = ctx.lake.session_of(&read, &views).await?;
        let names: Vec<TableName> = session.tables.iter().map(|(t, _)| t.clone()).collect();
        let q = |sql: String| {
            let ctx = session.ctx.clone();
            async move { crate::lake::collect_sql(&ctx, &sql, "reading FedWatch inputs").await }
        };
        let mut curves: BTreeMap<NaiveDate, (method::Curve, BTreeSet<String>)> = BTreeMap::new();
        if names.contains(&crate::sources::futures::parse::Settle::table()) {
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
        if names.contains(&crate::sources::fred::ObservationRow::table()) {
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

#[async_trait::async_trait]
impl Source for Fedwatch {
    fn tables(&self) -> Vec<crate::lake::row::TableDoc> {
        vec![ProbabilityRow::doc(), ProxyRow::doc()]
    }

    fn reads(&self) -> Vec<super::SourceKind> {
        use super::SourceKind::{Fomc, Fred, Futures};
        // futures_daily, the FOMC calendar, FRED's target range, EFFR and yields
        vec![Futures, Fomc, Fred]
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
        let mut probs: Vec<ProbabilityRow> = Vec::new();
        let mut proxies: Vec<ProxyRow> = Vec::new();
        for day in days
            .into_iter()
            .filter(|d| ctx.window.contains(Some(start), *d))
        {
            let next = meetings.iter().find(|m| **m >= day).copied();
            let (priced, no_odds) = inputs.odds(day, &meetings);
            // Odds when the futures price the next meeting; else the yield-curve proxy says why.
            if next.is_some() && priced.first().map(|o| o.meeting_date) == next {
                probs.extend(probability_rows(day, &priced, &inputs.contracts(day)));
            } else {
                proxies.push(proxy_row(&inputs, day, next, no_odds));
            }
        }
        let report = land(ctx, start, &probs, &proxies)
            .await
            .map_err(&lake_err)?;
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

/// One row per meeting and target range priced on `day`.
fn probability_rows(
    day: NaiveDate,
    priced: &[method::MeetingOdds],
    contracts: &str,
) -> Vec<ProbabilityRow> {
    let mut rows = Vec::new();
    for (k, o) in priced.iter().enumerate() {
        for (l, p) in &o.probabilities {
            rows.push(ProbabilityRow {
                as_of_date: day,
                meeting_date: o.meeting_date,
                meeting_index: k as i64 + 1,
                target_low_bps: *l,
                target_high_bps: l + 25,
                probability: (p * 1e9).round() / 1e9,
                rate_start_pct: o.rate_start_pct,
                rate_end_pct: o.rate_end_pct,
                method: o.method.clone(),
                contracts: contracts.to_string(),
                source: "futures",
            });
        }
    }
    rows
}

/// `day`'s proxy row: the 2-year (else 1-year) yield minus EFFR when one is fresh, and why
/// the futures gave no odds (`no_odds`, else the missing meeting or contract).
fn proxy_row(
    inputs: &Inputs,
    day: NaiveDate,
    next: Option<NaiveDate>,
    no_odds: Option<String>,
) -> ProxyRow {
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
    ProxyRow {
        as_of_date: day,
        next_meeting_date: next,
        effr_pct: effr_now,
        dgs1_pct: dgs1,
        dgs2_pct: dgs2,
        priced_change_bp: yield_pct
            .zip(effr_now)
            .map(|(y, e)| ((y - e) * 100.0 * 1e6).round() / 1e6),
        proxy,
        reason,
    }
}

/// Writes both tables for the window from `start`. Both always exist after a run (the marts
/// read both), even when one has no rows: e.g. a window where every day has odds writes no
/// proxy row.
async fn land(
    ctx: &IngestContext,
    start: NaiveDate,
    probs: &[ProbabilityRow],
    proxies: &[ProxyRow],
) -> Result<SourceReport, LakeError> {
    let mut report = SourceReport::default();
    let writes = [
        (
            ProbabilityRow::table(),
            probs.len(),
            ProbabilityRow::batch(probs, ctx.run_at)?,
            ProbabilityRow::KEYS,
        ),
        (
            ProxyRow::table(),
            proxies.len(),
            ProxyRow::batch(proxies, ctx.run_at)?,
            ProxyRow::KEYS,
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
