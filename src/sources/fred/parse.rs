//! Parsing FRED bodies: the keyless fredgraph CSV and the API's JSON. Strict about what matters
//! (dates, numbers, which series a column holds), tolerant of fields added upstream. FRED marks a
//! missing value with `.` (API, old CSV) or an empty field (current CSV): both become `None`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

/// A parse failure, with the body line when known.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line of the body (CSV only).
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            message: message.into(),
        }
    }
    fn body(message: impl Into<String>) -> Self {
        Self {
            line: None,
            message: message.into(),
        }
    }
}

/// One observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Observation date.
    pub date: NaiveDate,
    /// Value; `None` where FRED has no value.
    pub value: Option<f64>,
    /// First day this value was current (API only).
    pub realtime_start: Option<NaiveDate>,
    /// Last day this value was current (API only; `9999-12-31` = still current).
    pub realtime_end: Option<NaiveDate>,
}

fn parse_value(raw: &str) -> Result<Option<f64>, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "." {
        return Ok(None);
    }
    let v: f64 = raw
        .parse()
        .map_err(|_| format!("value {raw:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!("value {raw:?} is not finite"));
    }
    Ok(Some(v))
}

fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| format!("date {raw:?} is not YYYY-MM-DD"))
}

/// The body as text, refusing what cannot be a whole fredgraph CSV: not UTF-8, empty, an HTML
/// page, or cut mid-line.
fn csv_text(body: &[u8]) -> Result<&str, ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError::body("body is not UTF-8 text"))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(ParseError::body("body is empty"));
    }
    if trimmed.starts_with('<') {
        return Err(ParseError::body(
            "upstream answered HTML, not CSV (an error page or a captcha?)",
        ));
    }
    if !text.ends_with('\n') {
        // fredgraph always ends its body with a line break; without one the last value may be
        // cut mid-number and still parse, so refuse the body instead.
        let line = text.lines().count();
        return Err(ParseError::at(
            line,
            "the body ends mid-line: it looks truncated",
        ));
    }
    Ok(text)
}

/// Observations (with their lines) by date; a date listed twice must have the same value.
fn one_value_per_date(mut out: Vec<(usize, Observation)>) -> Result<Vec<Observation>, ParseError> {
    out.sort_by_key(|(line, o)| (o.date, *line));
    let mut kept: Vec<(usize, Observation)> = Vec::with_capacity(out.len());
    for (line, o) in out {
        match kept.last() {
            Some((first, prev)) if prev.date == o.date => {
                if prev.value.map(f64::to_bits) != o.value.map(f64::to_bits) {
                    return Err(ParseError::at(
                        line,
                        format!(
                            "date {} is listed twice with different values (line {first}: {:?}, line {line}: {:?})",
                            o.date, prev.value, o.value
                        ),
                    ));
                }
            }
            _ => kept.push((line, o)),
        }
    }
    Ok(kept.into_iter().map(|(_, o)| o).collect())
}

/// Parses a fredgraph CSV holding one series. The header is `observation_date,<ID>` (older files:
/// `DATE,<ID>`); the value column must be the series asked for. Rows out of date order are
/// sorted; a date listed twice with the same value is kept once, with two different values it is
/// an error naming both lines.
pub fn fredgraph_csv(body: &[u8], series_id: &str) -> Result<Vec<Observation>, ParseError> {
    let text = csv_text(body)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ParseError::at(1, e.to_string()))?
        .clone();
    let date_ok = headers.get(0).is_some_and(|h| {
        let h = h.trim().trim_start_matches('\u{feff}');
        h.eq_ignore_ascii_case("observation_date") || h.eq_ignore_ascii_case("date")
    });
    if !date_ok || headers.len() != 2 {
        return Err(ParseError::at(
            1,
            format!(
                "expected header observation_date,{series_id}; got {:?}",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let column = headers.get(1).unwrap_or("").trim();
    if !column.eq_ignore_ascii_case(series_id) {
        return Err(ParseError::at(
            1,
            format!("expected a {series_id} column; got {column:?}"),
        ));
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| ParseError::at(line, e.to_string()))?;
        if record.len() != 2 {
            return Err(ParseError::at(
                line,
                format!("expected 2 fields, got {}", record.len()),
            ));
        }
        let date = parse_date(&record[0]).map_err(|m| ParseError::at(line, m))?;
        let value = parse_value(&record[1]).map_err(|m| ParseError::at(line, m))?;
        out.push((
            line,
            Observation {
                date,
                value,
                realtime_start: None,
                realtime_end: None,
            },
        ));
    }
    one_value_per_date(out)
}

#[derive(Deserialize)]
struct ApiObservations {
    count: Option<u64>,
    offset: Option<u64>,
    observations: Vec<ApiObservation>,
}

#[derive(Deserialize)]
struct ApiObservation {
    realtime_start: String,
    realtime_end: String,
    date: String,
    value: String,
}

/// One page of `fred/series/observations`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationsPage {
    /// The observations on this page.
    pub observations: Vec<Observation>,
    /// Total observations across pages, when given.
    pub count: Option<u64>,
    /// Offset of this page.
    pub offset: u64,
}

/// Parses a `fred/series/observations` JSON page.
pub fn api_observations(body: &[u8]) -> Result<ObservationsPage, ParseError> {
    let parsed: ApiObservations = serde_json::from_slice(body)
        .map_err(|e| ParseError::body(format!("not the observations JSON layout: {e}")))?;
    let mut observations = Vec::with_capacity(parsed.observations.len());
    for (i, o) in parsed.observations.iter().enumerate() {
        let ctx = |m: String| ParseError::body(format!("observation #{i} ({}): {m}", o.date));
        observations.push(Observation {
            date: parse_date(&o.date).map_err(ctx)?,
            value: parse_value(&o.value).map_err(ctx)?,
            realtime_start: Some(parse_date(&o.realtime_start).map_err(ctx)?),
            realtime_end: Some(parse_date(&o.realtime_end).map_err(ctx)?),
        });
    }
    Ok(ObservationsPage {
        observations,
        count: parsed.count,
        offset: parsed.offset.unwrap_or(0),
    })
}

/// Series metadata from `fred/series`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SeriesMeta {
    /// Series id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Units, e.g. `Millions of U.S. Dollars`.
    pub units: String,
    /// Frequency, e.g. `Weekly, As of Wednesday`.
    pub frequency: String,
    /// Seasonal adjustment.
    #[serde(default)]
    pub seasonal_adjustment: Option<String>,
    /// First observation date.
    pub observation_start: String,
    /// Last observation date.
    pub observation_end: String,
    /// When FRED last updated it, e.g. `2024-06-26 15:17:50-05`.
    pub last_updated: String,
}

impl SeriesMeta {
    /// `last_updated` as a UTC time.
    pub fn last_updated_utc(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_str(&self.last_updated, "%Y-%m-%d %H:%M:%S%#z")
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[derive(Deserialize)]
struct ApiSeries {
    seriess: Vec<SeriesMeta>,
}

/// Parses a `fred/series` JSON body for one series.
pub fn api_series(body: &[u8], series_id: &str) -> Result<SeriesMeta, ParseError> {
    let parsed: ApiSeries = serde_json::from_slice(body)
        .map_err(|e| ParseError::body(format!("not the series JSON layout: {e}")))?;
    parsed
        .seriess
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(series_id))
        .ok_or_else(|| ParseError::body(format!("no metadata for {series_id} in the answer")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    const DFF_OBS: &[u8] = include_bytes!(
        "../../../tests/fixtures/upstream/api.stlouisfed.org/fred_series_observations--series_id=DFF.body.json"
    );
    const DFF_META: &[u8] = include_bytes!(
        "../../../tests/fixtures/upstream/api.stlouisfed.org/fred_series--series_id=DFF.body.json"
    );

    #[test]
    fn current_and_legacy_csv_layouts() {
        let now = b"observation_date,WALCL\n2002-12-18,719542\n2002-12-25,\n";
        let obs = fredgraph_csv(now, "WALCL").unwrap();
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[0].value, Some(719542.0));
        assert_eq!(obs[1].value, None, "blank is missing, not zero");
        let legacy = b"DATE,WTREGEN\n2013-06-05,30.230\n2013-06-12,.\n";
        let obs = fredgraph_csv(legacy, "WTREGEN").unwrap();
        assert_eq!(obs[0].value, Some(30.23));
        assert_eq!(obs[1].value, None, "'.' is missing, not an error");
    }

    #[test]
    fn malformed_csv_is_a_clear_error() {
        let wrong_series =
            fredgraph_csv(b"observation_date,TREAST\n2020-01-01,1\n", "WALCL").unwrap_err();
        assert!(wrong_series.message.contains("expected a WALCL column"));
        let truncated =
            fredgraph_csv(b"observation_date,WALCL\n2020-01-01,1\n2020-01-", "WALCL").unwrap_err();
        assert_eq!(truncated.line, Some(3));
        let junk = fredgraph_csv(b"observation_date,WALCL\n2020-01-01,abc\n", "WALCL").unwrap_err();
        assert!(junk.message.contains("not a number"), "{junk:?}");
        let html = fredgraph_csv(b"<!DOCTYPE html><html>", "WALCL").unwrap_err();
        assert!(html.message.contains("HTML"));
        assert!(fredgraph_csv(b"", "WALCL").is_err());
    }

    #[test]
    fn real_api_observations_body() {
        let page = api_observations(DFF_OBS).unwrap();
        assert_eq!(page.count, Some(157));
        assert_eq!(page.observations.len(), 157);
        let first = &page.observations[0];
        assert_eq!(first.date, d("2023-01-01"));
        assert_eq!(first.value, Some(4.33));
        assert_eq!(first.realtime_start, Some(d("2024-06-27")));
        assert!(
            api_observations(&DFF_OBS[..DFF_OBS.len() / 2]).is_err(),
            "truncated JSON fails"
        );
    }

    #[test]
    fn real_api_series_metadata() {
        let meta = api_series(DFF_META, "DFF").unwrap();
        assert_eq!(meta.title, "Federal Funds Effective Rate");
        assert_eq!(meta.units, "Percent");
        assert_eq!(
            meta.last_updated_utc().unwrap().to_rfc3339(),
            "2024-06-26T20:17:50+00:00"
        );
        assert!(api_series(DFF_META, "WALCL").is_err());
    }
}
