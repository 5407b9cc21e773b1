//! Parsing the NY Fed's reference-rate answers (`rates/{secured,unsecured}/<rate>/search.json`):
//! `{"refRates": [{"effectiveDate", "type", "percentRate", "percentPercentile1", …25, …75, …99,
//! "volumeInBillions", "targetRateFrom", "targetRateTo" (EFFR only), "revisionIndicator"}]}`,
//! newest first. Only `effectiveDate`, `type` and `percentRate` are required: the percentiles and
//! volume are absent from some days' entries.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::sources::pull::BodyError;

/// The `source` of every row this connector writes.
pub const SOURCE: &str = "nyfed_reference_rates";

crate::staging_row! {
    /// One published reference rate for one business day.
    #[derive(Debug, Clone, PartialEq)]
    pub struct RateRow in "reference_rates" keys [rate_type, effective_date] {
        /// The rate: `SOFR`, `TGCR`, `BGCR`, `EFFR` or `OBFR`.
        pub rate_type: String,
        /// The business day the rate is for (published the next business day).
        pub effective_date: NaiveDate,
        /// The rate, percent per year.
        pub percent_rate: f64,
        /// 1st percentile of the day's volume-weighted transaction rates, percent.
        pub percentile_1_pct: Option<f64>,
        /// 25th percentile, percent.
        pub percentile_25_pct: Option<f64>,
        /// 75th percentile, percent.
        pub percentile_75_pct: Option<f64>,
        /// 99th percentile, percent.
        pub percentile_99_pct: Option<f64>,
        /// Transaction volume underlying the rate, $ billions.
        pub volume_busd: Option<f64>,
        /// Lower bound of the FOMC's target range, percent (EFFR only).
        pub target_rate_from_pct: Option<f64>,
        /// Upper bound of the FOMC's target range, percent (EFFR only).
        pub target_rate_to_pct: Option<f64>,
        /// `revisionIndicator` as published: NULL when blank, else the NY Fed's mark of a
        /// revised rate.
        pub revision_indicator: Option<String>,
        /// Where the row came from: `nyfed_reference_rates`.
        pub source: &'static str,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    ref_rates: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    effective_date: String,
    #[serde(rename = "type")]
    rate_type: String,
    percent_rate: Option<f64>,
    percent_percentile1: Option<f64>,
    percent_percentile25: Option<f64>,
    percent_percentile75: Option<f64>,
    percent_percentile99: Option<f64>,
    volume_in_billions: Option<f64>,
    target_rate_from: Option<f64>,
    target_rate_to: Option<f64>,
    revision_indicator: Option<String>,
}

/// Parses one answer for the rate `code` (e.g. `SOFR`) into rows, oldest first. An entry of
/// another rate, a date listed twice, a missing or non-finite rate are errors: the body is not
/// the answer asked for.
pub fn rates(body: &[u8], code: &str) -> Result<Vec<RateRow>, BodyError> {
    let body: Body = serde_json::from_slice(body).map_err(|e| BodyError {
        line: Some(e.line()).filter(|l| *l > 0),
        message: format!("not the reference rates JSON layout: {e}"),
    })?;
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(body.ref_rates.len());
    for e in body.ref_rates {
        let day = &e.effective_date;
        let effective_date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| format!("effectiveDate {day:?} is not YYYY-MM-DD"))?;
        if !e.rate_type.eq_ignore_ascii_case(code) {
            return Err(format!("{day}: type {:?} in the answer for {code}", e.rate_type).into());
        }
        if !seen.insert(effective_date) {
            return Err(format!("{day}: listed twice").into());
        }
        let percent_rate = e
            .percent_rate
            .filter(|r| r.is_finite())
            .ok_or_else(|| format!("{day}: percentRate is missing"))?;
        rows.push(RateRow {
            rate_type: code.to_string(),
            effective_date,
            percent_rate,
            percentile_1_pct: e.percent_percentile1,
            percentile_25_pct: e.percent_percentile25,
            percentile_75_pct: e.percent_percentile75,
            percentile_99_pct: e.percent_percentile99,
            volume_busd: e.volume_in_billions,
            target_rate_from_pct: e.target_rate_from,
            target_rate_to_pct: e.target_rate_to,
            revision_indicator: e.revision_indicator.filter(|r| !r.trim().is_empty()),
            source: SOURCE,
        });
    }
    rows.sort_by_key(|r| r.effective_date);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    const SOFR: &[u8] = include_bytes!(
        "../../../tests/fixtures/bodies/refrates/nyfed_sofr_2024-06-01_2024-06-06.json"
    );
    const EFFR: &[u8] = include_bytes!(
        "../../../tests/fixtures/bodies/refrates/nyfed_effr_2023-01-01_2023-06-06.json"
    );

    #[test]
    fn real_sofr_answer() {
        let rows = rates(SOFR, "SOFR").unwrap();
        let days: Vec<_> = rows.iter().map(|r| r.effective_date).collect();
        assert_eq!(
            days,
            vec![
                d("2024-06-03"),
                d("2024-06-04"),
                d("2024-06-05"),
                d("2024-06-06")
            ]
        );
        let first = &rows[0];
        assert_eq!(first.percent_rate, 5.35);
        assert_eq!(
            (
                first.percentile_1_pct,
                first.percentile_25_pct,
                first.percentile_75_pct,
                first.percentile_99_pct
            ),
            (Some(5.29), Some(5.32), Some(5.40), Some(5.44))
        );
        assert_eq!(first.volume_busd, Some(1912.0));
        assert_eq!(
            (
                first.target_rate_from_pct,
                first.revision_indicator.as_deref()
            ),
            (None, None)
        );
        assert_eq!(rows[3].volume_busd, Some(2008.0));
    }

    #[test]
    fn real_effr_answer_carries_the_target_range() {
        let rows = rates(EFFR, "EFFR").unwrap();
        assert_eq!(rows.len(), 108);
        let last = rows.last().unwrap();
        assert_eq!(last.effective_date, d("2023-06-06"));
        assert_eq!(last.percent_rate, 5.08);
        assert_eq!(
            (last.target_rate_from_pct, last.target_rate_to_pct),
            (Some(5.0), Some(5.25))
        );
        let first = &rows[0];
        assert_eq!(
            (first.effective_date, first.percent_rate),
            (d("2023-01-03"), 4.33)
        );
        // The rate sits inside its target range every day.
        assert!(rows.iter().all(|r| {
            r.percent_rate >= r.target_rate_from_pct.unwrap()
                && r.percent_rate <= r.target_rate_to_pct.unwrap()
        }));
    }

    #[test]
    fn wrong_or_broken_answers_are_errors() {
        let e = rates(EFFR, "SOFR").unwrap_err();
        assert!(
            e.message.contains("type \"EFFR\" in the answer for SOFR"),
            "{e:?}"
        );
        let e = rates(&SOFR[..300], "SOFR").unwrap_err();
        assert!(
            e.message.contains("not the reference rates JSON layout"),
            "{e:?}"
        );
        let twice =
            br#"{"refRates":[{"effectiveDate":"2024-06-06","type":"SOFR","percentRate":5.33},
            {"effectiveDate":"2024-06-06","type":"SOFR","percentRate":5.31}]}"#;
        assert!(
            rates(twice, "SOFR")
                .unwrap_err()
                .message
                .contains("listed twice")
        );
        let no_rate = br#"{"refRates":[{"effectiveDate":"2024-06-06","type":"SOFR"}]}"#;
        assert!(
            rates(no_rate, "SOFR")
                .unwrap_err()
                .message
                .contains("percentRate is missing")
        );
        let bad_day =
            br#"{"refRates":[{"effectiveDate":"06/06/2024","type":"SOFR","percentRate":5}]}"#;
        assert!(
            rates(bad_day, "SOFR")
                .unwrap_err()
                .message
                .contains("not YYYY-MM-DD")
        );
        let bad_json = b"{\n\"refRates\": [\n{\"effectiveDate\": 5}]}";
        assert_eq!(rates(bad_json, "SOFR").unwrap_err().line, Some(3));
    }
}
