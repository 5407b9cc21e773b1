//! The FRED connector's rows: `staging.fred_observations` and `staging.fred_series`, made from
//! the fetched series.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::datatypes::Date32Type;

use super::catalog;
use super::parse::{Observation, SeriesMeta};

crate::staging_row! {
    /// One vintage of one observation of one series: a row of `staging.fred_observations`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ObservationRow in "fred_observations" keys [series_id, date, realtime_start] {
        /// FRED series id, e.g. `WALCL`.
        pub series_id: String,
        /// Observation date (for weekly series: the day FRED dates the week by).
        pub date: NaiveDate,
        /// The value, in `units`; NULL where FRED has no value (`.` or a blank).
        pub value: Option<f64>,
        /// FRED's units of the series, e.g. `Millions of U.S. Dollars`, `Percent`; from the API's
        /// metadata, else from macrolake's catalog of known series; NULL when neither knows.
        pub units: Option<String>,
        /// The value in millions of U.S. dollars (scaled from thousands, billions, trillions);
        /// NULL for non-dollar units or no value.
        pub value_musd: Option<f64>,
        /// First day this value was current: the API's real-time start, or the fetch day (UTC)
        /// for the keyless CSV.
        pub realtime_start: NaiveDate,
        /// Last day this value was current (API only; `9999-12-31` = still current); NULL for
        /// the keyless CSV.
        pub realtime_end: Option<NaiveDate>,
        /// Where it came from: `fred_api` or `fredgraph_csv`.
        pub source: &'static str,
    }
}

crate::staging_row! {
    /// What is known about one series: a row of `staging.fred_series`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct SeriesRow in "fred_series" keys [series_id] {
        /// FRED series id, e.g. `WALCL`.
        pub series_id: String,
        /// FRED's title of the series.
        pub title: Option<String>,
        /// FRED's units, e.g. `Millions of U.S. Dollars`, `Percent`.
        pub units: Option<String>,
        /// FRED's frequency, e.g. `Weekly, As of Wednesday`.
        pub frequency: Option<String>,
        /// FRED's seasonal adjustment, e.g. `Not Seasonally Adjusted` (API only).
        pub seasonal_adjustment: Option<String>,
        /// Date of the series' first observation (API only).
        pub observation_start: Option<NaiveDate>,
        /// Date of the series' last observation (API only).
        pub observation_end: Option<NaiveDate>,
        /// When FRED last updated the series, UTC (API only).
        pub last_updated: Option<DateTime<Utc>>,
        /// Where the metadata came from: `fred_api`, or `macrolake_catalog` (the catalog of known
        /// series, when no API key is set).
        pub source: &'static str,
    }
}

/// One series as fetched.
pub(super) struct Fetched {
    pub(super) id: String,
    pub(super) observations: Vec<Observation>,
    pub(super) meta: Option<SeriesMeta>,
    pub(super) fetched_at: DateTime<Utc>,
    pub(super) source: &'static str,
}

fn units_of(f: &Fetched) -> Option<String> {
    f.meta
        .as_ref()
        .map(|m| m.units.clone())
        .or_else(|| catalog::known(&f.id).map(|k| k.units.to_string()))
}

/// The `fred_observations` rows of the fetched series, without the observations whose value
/// equals the newest stored vintage of their (series, date) in `latest`; beside each row, the
/// earliest its `available_at` may be: the fetch time for a revision (a stored vintage with
/// another value), which became public when it was seen, not when the first print did; `None`
/// for a first vintage, public by its series' publication rule.
pub(super) fn observation_rows(
    series: &[Fetched],
    latest: &HashMap<(String, i32), Option<f64>>,
) -> (Vec<ObservationRow>, Vec<Option<DateTime<Utc>>>) {
    let (mut rows, mut floors) = (Vec::new(), Vec::new());
    for f in series {
        let units = units_of(f);
        let factor = units.as_deref().and_then(catalog::musd_factor);
        let seen_on = f.fetched_at.date_naive();
        for o in &f.observations {
            let day = Date32Type::from_naive_date(o.date);
            let stored = latest.get(&(f.id.clone(), day));
            if stored.is_some_and(|v| v.map(f64::to_bits) == o.value.map(f64::to_bits)) {
                continue;
            }
            floors.push(stored.map(|_| f.fetched_at));
            rows.push(ObservationRow {
                series_id: f.id.clone(),
                date: o.date,
                value: o.value,
                units: units.clone(),
                value_musd: o.value.zip(factor).map(|(v, k)| v * k),
                realtime_start: o.realtime_start.unwrap_or(seen_on),
                realtime_end: o.realtime_end,
                source: f.source,
            });
        }
    }
    (rows, floors)
}

/// The `fred_series` row of each fetched series: the API's metadata, else the catalog's.
pub(super) fn series_rows(series: &[Fetched]) -> Vec<SeriesRow> {
    // First/last observation dates come from the API's metadata only: a windowed fetch cannot
    // tell them, and deriving them from it would change the row on every incremental run.
    let meta_date = |raw: &str| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok();
    series
        .iter()
        .map(|f| {
            let meta = f.meta.as_ref();
            let known = catalog::known(&f.id);
            SeriesRow {
                series_id: f.id.clone(),
                title: meta
                    .map(|m| m.title.clone())
                    .or_else(|| known.map(|k| k.title.to_string())),
                units: units_of(f),
                frequency: meta
                    .map(|m| m.frequency.clone())
                    .or_else(|| known.map(|k| k.frequency.to_string())),
                seasonal_adjustment: meta.and_then(|m| m.seasonal_adjustment.clone()),
                observation_start: meta.and_then(|m| meta_date(&m.observation_start)),
                observation_end: meta.and_then(|m| meta_date(&m.observation_end)),
                last_updated: meta.and_then(SeriesMeta::last_updated_utc),
                source: if meta.is_some() {
                    "fred_api"
                } else {
                    "macrolake_catalog"
                },
            }
        })
        .collect()
}
