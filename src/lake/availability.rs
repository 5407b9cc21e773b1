//! When a value became public: the `available_at` column (UTC) every staging row carries, from
//! its upstream's publication schedule, and the cut-off that turns it into the first day a mart
//! row may use it (`known_on`).
//!
//! The rules, per staging table (New York time unless said otherwise; "next business day" skips
//! Saturdays and Sundays — US holidays are not modelled, so a value published the day after a
//! holiday is taken as known one day early):
//!
//! | table | key date | public at |
//! |---|---|---|
//! | `fred_observations` WALCL, TREAST, WSHOBL, WRESBAL, WTREGEN, WDTGAL (H.4.1, week to Wednesday) | date | date + 1 day, 16:30 |
//! | `fred_observations` RRPONTSYD (ON RRP results) | date | date, 13:30 |
//! | `fred_observations` EFFR, DFF, OBFR, SOFR (NY Fed rates) | date | next business day, 09:00 |
//! | `fred_observations` DFEDTARL, DFEDTARU (target range, decided beforehand) | date | date, 00:00 |
//! | `fred_observations` any other series (H.15 yields DGS1, DGS2 …) | date | next business day, 16:15 |
//! | `prices_daily` crypto (`*-USD`, UTC-day candles) | date | date + 1 day, 00:00 UTC |
//! | `prices_daily` other symbols (US close) | date | date, 17:00 |
//! | `tga_daily` (Daily Treasury Statement) | record_date | next business day, 16:00 |
//! | `treasury_operations` (NY Fed results) | operation_date | date, 15:00 |
//! | `soma_holdings` (weekly, Wednesday) | as_of_date | date + 1 day, 16:30 |
//! | `reference_rates` (NY Fed SOFR, EFFR …) | effective_date | next business day, 09:00 |
//! | `futures_daily`, `fedwatch_probabilities` (settlements) | date / as_of_date | date, 17:00 |
//! | `policy_proxy` (uses the H.15 yield of the day) | as_of_date | next business day, 16:15 |
//! | `eps_estimates` S&P DJI workbook | as_of_date | date + 3 days, 00:00 (editions are posted days after their "as of" close) |
//! | `eps_estimates` vendor files | as_of_date | date + 1 day, 00:00 |
//!
//! A connector that knows better (e.g. the time it read a page) writes `available_at` itself;
//! [`stamp`] leaves such a column alone. A FRED revision (a new vintage of a stored observation)
//! is public no earlier than when it was fetched ([`stamp_at_least`]). Tables without a rule get
//! no column.

use datafusion::arrow::datatypes::Date32Type;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::name::TableName;

const NEW_YORK: Tz = chrono_tz::America::New_York;

/// Errors of stamping rows with their availability.
#[derive(Debug, thiserror::Error)]
pub enum AvailabilityError {
    /// The batch lacks a column the table's rule reads.
    #[error("{table}: cannot compute available_at: {message}")]
    Column {
        /// The table.
        table: TableName,
        /// What is missing or mistyped.
        message: String,
    },
}

/// When during a day a value is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// `days` calendar days after the key date, at `time` in New York.
    After { days: i64, time: (u32, u32) },
    /// The next business day after the key date, at `time` in New York.
    NextBusinessDay { time: (u32, u32) },
    /// `days` calendar days after the key date, at midnight UTC.
    AfterUtc { days: i64 },
}

fn fred_rule(series: &str) -> Rule {
    match series {
        "WALCL" | "TREAST" | "WSHOBL" | "WRESBAL" | "WTREGEN" | "WDTGAL" => Rule::After {
            days: 1,
            time: (16, 30),
        },
        "RRPONTSYD" => Rule::After {
            days: 0,
            time: (13, 30),
        },
        "EFFR" | "DFF" | "OBFR" | "SOFR" => Rule::NextBusinessDay { time: (9, 0) },
        "DFEDTARL" | "DFEDTARU" => Rule::After {
            days: 0,
            time: (0, 0),
        },
        _ => Rule::NextBusinessDay { time: (16, 15) },
    }
}

fn price_rule(symbol: &str) -> Rule {
    if symbol.ends_with("-USD") {
        Rule::AfterUtc { days: 1 }
    } else {
        Rule::After {
            days: 0,
            time: (17, 0),
        }
    }
}

fn new_york(day: NaiveDate, (h, m): (u32, u32)) -> DateTime<Utc> {
    let local = day.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("valid time"));
    NEW_YORK
        .from_local_datetime(&local)
        .earliest()
        // A time inside a spring-forward gap: the instant right after the gap.
        .unwrap_or_else(|| NEW_YORK.from_utc_datetime(&(local + Duration::hours(5))))
        .with_timezone(&Utc)
}

fn next_business_day(day: NaiveDate) -> NaiveDate {
    let mut d = day + Duration::days(1);
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d += Duration::days(1);
    }
    d
}

impl Rule {
    fn apply(self, day: NaiveDate) -> DateTime<Utc> {
        match self {
            Rule::After { days, time } => new_york(day + Duration::days(days), time),
            Rule::NextBusinessDay { time } => new_york(next_business_day(day), time),
            Rule::AfterUtc { days } => (day + Duration::days(days))
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc(),
        }
    }
}

/// A table's key date column, the column the rule depends on (series, symbol or source), and the
/// rule for a row given that column's value.
type TableRule = (&'static str, Option<&'static str>, fn(&str) -> Rule);

/// Whether the lake stamps the table's rows with `available_at` on write (it has a rule).
pub fn stamped(table: &str) -> bool {
    rule_for(table).is_some()
}

/// The rule of a staging table, if it has one.
fn rule_for(table: &str) -> Option<TableRule> {
    Some(match table {
        "fred_observations" => ("date", Some("series_id"), fred_rule),
        "prices_daily" => ("date", Some("symbol"), price_rule),
        "tga_daily" => ("record_date", None, |_| Rule::NextBusinessDay {
            time: (16, 0),
        }),
        "treasury_operations" => ("operation_date", None, |_| Rule::After {
            days: 0,
            time: (15, 0),
        }),
        "soma_holdings" => ("as_of_date", None, |_| Rule::After {
            days: 1,
            time: (16, 30),
        }),
        "reference_rates" => ("effective_date", None, |_| Rule::NextBusinessDay {
            time: (9, 0),
        }),
        "futures_daily" => ("date", None, |_| Rule::After {
            days: 0,
            time: (17, 0),
        }),
        "fedwatch_probabilities" => ("as_of_date", None, |_| Rule::After {
            days: 0,
            time: (17, 0),
        }),
        "policy_proxy" => ("as_of_date", None, |_| Rule::NextBusinessDay {
            time: (16, 15),
        }),
        "eps_estimates" => ("as_of_date", Some("source"), |source| {
            if source == "spdji_workbook" {
                Rule::After {
                    days: 3,
                    time: (0, 0),
                }
            } else {
                Rule::After {
                    days: 1,
                    time: (0, 0),
                }
            }
        }),
        _ => return None,
    })
}

/// When a row of `table` keyed by `day` (and `what`: series, symbol or source) became public;
/// `None` for tables without a rule.
pub fn available_at(table: &str, day: NaiveDate, what: &str) -> Option<DateTime<Utc>> {
    rule_for(table).map(|(_, _, rule)| rule(what).apply(day))
}

/// Adds `available_at` to a staging batch by its table's rule (unchanged when the table has no
/// rule or the batch already has the column).
pub fn stamp(table: &TableName, batch: RecordBatch) -> Result<RecordBatch, AvailabilityError> {
    stamp_at_least(table, batch, &[])
}

/// [`stamp`], with each row's `available_at` no earlier than its floor in `floors` (by row; a
/// missing or `None` floor leaves the rule's time): a value seen later than its rule says, such as
/// a revised FRED value, became public when it was seen, not when the first print did.
pub fn stamp_at_least(
    table: &TableName,
    batch: RecordBatch,
    floors: &[Option<DateTime<Utc>>],
) -> Result<RecordBatch, AvailabilityError> {
    let Some((date_col, what_col, rule)) = rule_for(&table.name) else {
        return Ok(batch);
    };
    if batch.schema().index_of("available_at").is_ok() {
        return Ok(batch);
    }
    let err = |message: String| AvailabilityError::Column {
        table: table.clone(),
        message,
    };
    let column = |name: &str, ty: &DataType| -> Result<ArrayRef, AvailabilityError> {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| err(format!("no column {name}")))?;
        datafusion::arrow::compute::cast(c, ty).map_err(|e| err(format!("{name}: {e}")))
    };
    let dates = column(date_col, &DataType::Date32)?;
    let dates = dates
        .as_any()
        .downcast_ref::<Date32Array>()
        .expect("cast to Date32");
    let whats = what_col.map(|c| column(c, &DataType::Utf8)).transpose()?;
    let whats = whats.as_ref().map(|a| {
        a.as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8")
    });
    let values: Vec<Option<i64>> = (0..batch.num_rows())
        .map(|i| {
            if dates.is_null(i) {
                return None;
            }
            let what = whats.map(|w| w.value(i)).unwrap_or("");
            let published = rule(what).apply(dates.value_as_date(i)?);
            let floor = floors.get(i).copied().flatten();
            Some(
                floor
                    .map_or(published, |f| f.max(published))
                    .timestamp_micros(),
            )
        })
        .collect();
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("available_at", ts, true));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(values).with_timezone("UTC"),
    ));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| err(e.to_string()))
}

/// The daily cut-off a mart row uses: a value is usable on day D when it was public by D at
/// `time` in `zone` (default 18:30 New York, after the US close and the nightly's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoff {
    /// Local time of the cut-off.
    pub time: NaiveTime,
    /// Its time zone.
    pub zone: Tz,
}

impl Default for Cutoff {
    fn default() -> Self {
        Self {
            time: NaiveTime::from_hms_opt(18, 30, 0).expect("valid"),
            zone: NEW_YORK,
        }
    }
}

impl Cutoff {
    /// The cut-off instant of a day.
    pub fn instant(&self, day: NaiveDate) -> DateTime<Utc> {
        let local = day.and_time(self.time);
        self.zone
            .from_local_datetime(&local)
            .earliest()
            .unwrap_or_else(|| self.zone.from_utc_datetime(&local))
            .with_timezone(&Utc)
    }

    /// The first day whose cut-off is at or after `at`: the day a value public at `at` may first
    /// be used.
    pub fn known_on(&self, at: DateTime<Utc>) -> NaiveDate {
        let day = at.with_timezone(&self.zone).date_naive();
        if self.instant(day) >= at {
            day
        } else {
            day + Duration::days(1)
        }
    }
}

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// Most UTC days [`CutoffDays`] keeps (about 550 years, 7 MB); instants beyond them are
/// converted one by one.
const CUTOFF_DAYS_MAX: usize = 200_000;

/// `known_on` of every instant of one UTC day from three numbers: the day's first instant is
/// known on `first`, and an instant `at` of the day on `first` while `at ≤ first_until`, on
/// `first + 1` while `at ≤ second_until`, else on `first + 2`. (Where each day's cut-off falls
/// on that local day, `known_on` is the first day whose cut-off is at or after `at`, and
/// consecutive cut-offs are at least 23 hours apart: a UTC day meets at most two of them.)
#[derive(Debug, Clone, Copy)]
struct UtcDay {
    first: i32,
    first_until: i64,
    second_until: i64,
}

/// [`Cutoff::known_on`] by UTC day, for the SQL function: a price table's timestamps fall on
/// some thousands of days, and each row then costs a division and two comparisons instead of two
/// time-zone conversions (0.5 s of a 13M-row build with a hash map of timestamps).
#[derive(Debug)]
struct CutoffDays {
    cutoff: Cutoff,
    /// The UTC day (days since 1970-01-01) of `days[0]`.
    base: i64,
    /// `None`: not computed yet, or a day the three numbers cannot describe (then exact).
    days: Vec<Option<UtcDay>>,
}

impl CutoffDays {
    fn new(cutoff: Cutoff) -> Self {
        Self {
            cutoff,
            base: 0,
            days: Vec::new(),
        }
    }

    fn exact(&self, micros: i64) -> Option<i32> {
        DateTime::from_timestamp_micros(micros)
            .map(|at| Date32Type::from_naive_date(self.cutoff.known_on(at)))
    }

    /// The three numbers of UTC day `u`, or `None` when they do not describe it.
    fn describe(&self, u: i64) -> Option<UtcDay> {
        let start = DateTime::from_timestamp_micros(u.checked_mul(DAY_MICROS)?)?;
        let first = self.cutoff.known_on(start);
        let until = |days| {
            self.cutoff
                .instant(first + Duration::days(days))
                .timestamp_micros()
        };
        let (first_until, second_until, third_until) = (until(0), until(1), until(2));
        // The lookup is `known_on` when each day's cut-off falls on that local day: not so for a
        // cut-off inside a daylight-saving gap (02:30 on a spring-forward night is taken as UTC)
        // or on a day a zone skipped; such UTC days are converted instant by instant.
        let aligned = (-1..=2).all(|d| {
            let day = first + Duration::days(d);
            self.cutoff
                .instant(day)
                .with_timezone(&self.cutoff.zone)
                .date_naive()
                == day
        });
        let spaced = first_until >= start.timestamp_micros()
            && second_until > first_until
            && third_until >= start.timestamp_micros() + DAY_MICROS;
        (aligned && spaced).then(|| UtcDay {
            first: Date32Type::from_naive_date(first),
            first_until,
            second_until,
        })
    }

    /// `known_on` of an instant given in microseconds since the epoch (UTC).
    fn known_on(&mut self, micros: i64) -> Option<i32> {
        let u = micros.div_euclid(DAY_MICROS);
        if self.days.is_empty() {
            self.base = u;
        }
        let low = self.base.min(u);
        let high = (self.base + self.days.len() as i64).max(u + 1);
        if high - low > CUTOFF_DAYS_MAX as i64 {
            return self.exact(micros);
        }
        if low < self.base {
            let mut grown = vec![None; (self.base - low) as usize];
            grown.append(&mut self.days);
            self.days = grown;
            self.base = low;
        }
        let i = (u - self.base) as usize;
        if i >= self.days.len() {
            self.days.resize(i + 1, None);
        }
        let day = match self.days[i] {
            Some(day) => day,
            None => match self.describe(u) {
                Some(day) => *self.days[i].insert(day),
                None => return self.exact(micros),
            },
        };
        Some(if micros <= day.first_until {
            day.first
        } else if micros <= day.second_until {
            day.first + 1
        } else {
            day.first + 2
        })
    }
}

/// The SQL function `known_on(available_at)`: the first day whose cut-off is at or after the
/// timestamp (a DATE), for marts that must use only what was public by each day's cut-off.
/// Each UTC day's cut-offs are converted once ([`CutoffDays`]).
pub fn known_on_udf(cutoff: Cutoff) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use std::sync::{Mutex, PoisonError};
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let days = Mutex::new(CutoffDays::new(cutoff));
    create_udf(
        "known_on",
        vec![ts.clone()],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let scalar = matches!(args[0], ColumnarValue::Scalar(_));
            let arr = args[0].to_array(1)?;
            let arr = datafusion::arrow::compute::cast(&arr, &ts)?;
            let arr = arr
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .expect("cast to timestamp");
            // Held for one batch: concurrent partitions wait a batch, not a row.
            let mut days = days.lock().unwrap_or_else(PoisonError::into_inner);
            let out: Date32Array = arr
                .iter()
                .map(|v| v.and_then(|micros| days.known_on(micros)))
                .collect();
            Ok(if scalar {
                ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
            } else {
                ColumnarValue::Array(Arc::new(out))
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn publication_schedules() {
        // WALCL for Wednesday 2026-05-27 is released Thursday 16:30 New York (20:30 UTC, EDT).
        let walcl = available_at("fred_observations", d("2026-05-27"), "WALCL").unwrap();
        assert_eq!(walcl.to_rfc3339(), "2026-05-28T20:30:00+00:00");
        // EFFR for a Friday is published Monday 09:00 New York (winter: 14:00 UTC).
        let effr = available_at("fred_observations", d("2026-01-09"), "EFFR").unwrap();
        assert_eq!(effr.to_rfc3339(), "2026-01-12T14:00:00+00:00");
        // The DTS of Friday 2026-06-05 comes out Monday 16:00.
        let dts = available_at("tga_daily", d("2026-06-05"), "").unwrap();
        assert_eq!(dts.to_rfc3339(), "2026-06-08T20:00:00+00:00");
        // Bitcoin's UTC-day candle closes at midnight UTC.
        let btc = available_at("prices_daily", d("2026-06-05"), "BTC-USD").unwrap();
        assert_eq!(btc.to_rfc3339(), "2026-06-06T00:00:00+00:00");
        let spx = available_at("prices_daily", d("2026-06-05"), "^GSPC").unwrap();
        assert_eq!(spx.to_rfc3339(), "2026-06-05T21:00:00+00:00");
        let eps = available_at("eps_estimates", d("2025-09-30"), "spdji_workbook").unwrap();
        assert_eq!(eps.date_naive(), d("2025-10-03"));
        assert!(available_at("fred_series", d("2026-01-01"), "").is_none());
    }

    #[test]
    fn cutoff_maps_publication_to_the_first_usable_day() {
        let c = Cutoff::default();
        // Thursday 16:30 release: usable on Thursday (18:30 cut-off).
        let walcl = available_at("fred_observations", d("2026-05-27"), "WALCL").unwrap();
        assert_eq!(c.known_on(walcl), d("2026-05-28"));
        // Bitcoin's Friday close (20:00 New York) misses Friday's cut-off: usable Saturday.
        let btc = available_at("prices_daily", d("2026-06-05"), "BTC-USD").unwrap();
        assert_eq!(c.known_on(btc), d("2026-06-06"));
        // The S&P 500's Friday close is usable on Friday.
        let spx = available_at("prices_daily", d("2026-06-05"), "^GSPC").unwrap();
        assert_eq!(c.known_on(spx), d("2026-06-05"));
        // Exactly at the cut-off counts; a microsecond later does not.
        let at = c.instant(d("2026-03-09"));
        assert_eq!(c.known_on(at), d("2026-03-09"));
        assert_eq!(c.known_on(at + Duration::microseconds(1)), d("2026-03-10"));
    }

    /// The SQL function agrees with [`Cutoff::known_on`] row by row, remembered values included:
    /// around both daylight-saving changes, repeated instants, nulls, two queries in a row.
    /// The by-day lookup against the exact conversion: odd cut-offs (in a daylight-saving gap, at
    /// midnight, a minute before it), zones with half-hour changes or a skipped day, instants
    /// from 1900 to 2100 in a scattered order, and every 13 minutes around each zone's changes.
    #[test]
    fn known_on_by_day_agrees_with_the_exact_conversion() {
        let zones = [
            ("America/New_York", (18, 30)),
            ("America/New_York", (2, 30)),
            ("America/New_York", (0, 0)),
            ("Europe/London", (1, 30)),
            ("Europe/London", (23, 59)),
            ("Australia/Lord_Howe", (2, 15)),
            ("Pacific/Apia", (12, 0)),
            ("Pacific/Apia", (0, 0)),
            ("Asia/Kolkata", (18, 30)),
            ("UTC", (0, 0)),
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (from, to) = (-2_208_988_800_000_000_i64, 4_102_444_800_000_000_i64);
        for (zone, (h, m)) in zones {
            let cutoff = Cutoff {
                time: NaiveTime::from_hms_opt(h, m, 0).unwrap(),
                zone: zone.parse().unwrap(),
            };
            let mut days = CutoffDays::new(cutoff);
            let mut instants: Vec<i64> = (0..20_000)
                .map(|_| from + (next() % (to - from) as u64) as i64)
                .collect();
            for start in [
                "2011-12-28",
                "2026-03-06",
                "2026-10-02",
                "2026-10-30",
                "2026-03-27",
            ] {
                let t0 = NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap();
                let t0 = t0
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    .and_utc()
                    .timestamp_micros();
                instants.extend((0..5 * 24 * 60 / 13).map(|i| t0 + i * 13 * 60_000_000));
                for d in 0..5 {
                    let day = DateTime::from_timestamp_micros(t0).unwrap().date_naive();
                    let at = cutoff.instant(day + Duration::days(d)).timestamp_micros();
                    instants.extend([at - 1, at, at + 1]);
                }
            }
            for micros in instants {
                let want = DateTime::from_timestamp_micros(micros)
                    .map(|at| Date32Type::from_naive_date(cutoff.known_on(at)));
                assert_eq!(days.known_on(micros), want, "{zone} {h}:{m} at {micros}");
            }
        }
    }

    #[tokio::test]
    async fn the_sql_function_remembers_without_changing_an_answer() {
        use datafusion::arrow::array::Array;
        let c = Cutoff::default();
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udf(known_on_udf(c));
        // Every 7 minutes over three days around each change, and the cut-off instants exactly.
        let mut instants = Vec::new();
        for start in ["2026-03-07T12:00:00Z", "2026-10-31T12:00:00Z"] {
            let t0 = DateTime::parse_from_rfc3339(start).unwrap().to_utc();
            instants.extend((0..3 * 24 * 60 / 7).map(|i| t0 + Duration::minutes(7 * i)));
            for d in 0..4 {
                let at = c.instant(t0.date_naive() + Duration::days(d));
                instants.extend([at, at + Duration::microseconds(1)]);
            }
        }
        let sql: Vec<String> = instants
            .iter()
            .map(|t| format!("(TIMESTAMP '{}')", t.format("%Y-%m-%dT%H:%M:%S%.6f")))
            .chain(["(NULL)".to_string()])
            .collect();
        let query = format!(
            "select known_on(arrow_cast(t, 'Timestamp(Microsecond, Some(\"UTC\"))')) as k \
             from (values {}) as v(t)",
            sql.join(", ")
        );
        for _ in 0..2 {
            let batches = ctx.sql(&query).await.unwrap().collect().await.unwrap();
            let got: Vec<Option<NaiveDate>> = batches
                .iter()
                .flat_map(|b| {
                    let a = b.column(0).as_any().downcast_ref::<Date32Array>().unwrap();
                    (0..a.len()).map(|i| a.is_valid(i).then(|| a.value_as_date(i).unwrap()))
                })
                .collect();
            let want: Vec<Option<NaiveDate>> = instants
                .iter()
                .map(|t| Some(c.known_on(*t)))
                .chain([None])
                .collect();
            assert_eq!(got, want);
        }
    }

    /// The first `n` columns of a batch.
    fn batch_of(batch: &RecordBatch, n: usize) -> RecordBatch {
        batch.project(&(0..n).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn stamp_adds_the_column_and_respects_an_existing_one() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("series_id", DataType::Utf8, false),
            Field::new("date", DataType::Date32, false),
        ]));
        let days = Date32Type::from_naive_date(d("2026-05-27"));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["WALCL", "RRPONTSYD"])),
                Arc::new(Date32Array::from(vec![days, days])),
            ],
        )
        .unwrap();
        let t = TableName::staging("fred_observations");
        let stamped = stamp(&t, batch).unwrap();
        let col = stamped
            .column_by_name("available_at")
            .unwrap()
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap()
            .clone();
        assert_ne!(col.value(0), col.value(1));
        // A floor later than the rule wins (a revision seen on 2026-06-12); an earlier one, or
        // none, leaves the rule's time.
        let seen = "2026-06-12T16:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let early = "2026-05-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let plain = batch_of(&stamped, 2);
        for (floors, want) in [
            (
                vec![Some(seen), None],
                [seen.timestamp_micros(), col.value(1)],
            ),
            (vec![Some(early), Some(early)], [col.value(0), col.value(1)]),
        ] {
            let got = stamp_at_least(&t, plain.clone(), &floors).unwrap();
            let got = got
                .column_by_name("available_at")
                .unwrap()
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap()
                .values()
                .to_vec();
            assert_eq!(got, want);
        }
        let again = stamp(&t, stamped.clone()).unwrap();
        assert_eq!(again.num_columns(), stamped.num_columns());
        let bad = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(vec!["a"]))],
        )
        .unwrap();
        assert!(
            stamp(&t, bad)
                .unwrap_err()
                .to_string()
                .contains("no column date")
        );
    }
}
