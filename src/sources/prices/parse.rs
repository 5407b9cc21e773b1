//! Parsing daily bars from Yahoo chart v8 JSON, Coinbase Exchange candles and Stooq CSV.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

crate::column_group! {
    /// One daily bar: the columns a price row and a futures settlement both start from.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Bar {
        /// Trading day, in the exchange's own calendar (UTC days for crypto).
        pub date: NaiveDate,
        /// Opening price, in `currency`; NULL when the source gives none.
        pub open: Option<f64>,
        /// High price, in `currency`; NULL when the source gives none.
        pub high: Option<f64>,
        /// Low price, in `currency`; NULL when the source gives none.
        pub low: Option<f64>,
        /// Closing price, in `currency` (for a FRED source: the series' value). Required: an
        /// upstream bar without one is skipped.
        pub close: f64,
        /// Close adjusted for splits and dividends, in `currency`; NULL unless the source gives
        /// it (Yahoo does).
        pub adj_close: Option<f64>,
        /// Volume traded (shares, contracts or coins, as the source counts); NULL when not given.
        pub volume: Option<f64>,
    }
}

#[derive(Deserialize)]
struct YahooBody {
    chart: YahooChart,
}

#[derive(Deserialize)]
struct YahooChart {
    result: Option<Vec<YahooResult>>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct YahooMeta {
    symbol: String,
    currency: Option<String>,
    exchange_timezone_name: Option<String>,
    gmtoffset: Option<i64>,
}

#[derive(Deserialize)]
struct YahooResult {
    meta: YahooMeta,
    #[serde(default)]
    timestamp: Vec<i64>,
    indicators: YahooIndicators,
}

#[derive(Deserialize)]
struct YahooIndicators {
    quote: Vec<YahooQuote>,
    #[serde(default)]
    adjclose: Vec<YahooAdj>,
}

#[derive(Deserialize)]
struct YahooQuote {
    #[serde(default)]
    open: Vec<Option<f64>>,
    #[serde(default)]
    high: Vec<Option<f64>>,
    #[serde(default)]
    low: Vec<Option<f64>>,
    close: Vec<Option<f64>>,
    #[serde(default)]
    volume: Vec<Option<f64>>,
}

#[derive(Deserialize)]
struct YahooAdj {
    adjclose: Vec<Option<f64>>,
}

/// A Yahoo chart answer: the bars and the currency.
#[derive(Debug, Clone, PartialEq)]
pub struct YahooSeries {
    /// Symbol as Yahoo names it.
    pub symbol: String,
    /// Quote currency.
    pub currency: Option<String>,
    /// Daily bars, oldest first.
    pub bars: Vec<Bar>,
}

/// The exchange-local date of a Unix timestamp: by the exchange's IANA zone when Yahoo names
/// one (DST-correct), else by its fixed `gmtoffset`.
fn local_date(ts: i64, tz: Option<&str>, gmtoffset: i64) -> Option<NaiveDate> {
    let utc = DateTime::<Utc>::from_timestamp(ts, 0)?;
    if let Some(tz) = tz.and_then(|t| t.parse::<Tz>().ok()) {
        return Some(utc.with_timezone(&tz).date_naive());
    }
    // An offset beyond a day is not a time zone: checked arithmetic, so a garbled body is an
    // error, never an overflow.
    let offset = chrono::Duration::try_seconds(gmtoffset).filter(|d| d.num_hours().abs() <= 26)?;
    Some(utc.checked_add_signed(offset)?.date_naive())
}

/// Parses a Yahoo chart v8 body. Entries can be null (a holiday row): a bar without a close is
/// skipped. Arrays of different lengths, or an `error` object, are errors.
pub fn yahoo_chart(body: &[u8]) -> Result<YahooSeries, String> {
    let body: YahooBody =
        serde_json::from_slice(body).map_err(|e| format!("not the Yahoo chart layout: {e}"))?;
    if let Some(err) = body.chart.error.filter(|e| !e.is_null()) {
        return Err(format!("Yahoo answered an error: {err}"));
    }
    let result = body
        .chart
        .result
        .and_then(|r| r.into_iter().next())
        .ok_or("chart.result is empty")?;
    let quote = result
        .indicators
        .quote
        .first()
        .ok_or("indicators.quote is empty")?;
    let n = result.timestamp.len();
    if quote.close.len() != n {
        return Err(format!("{} timestamps but {} closes", n, quote.close.len()));
    }
    let adj = result.indicators.adjclose.first().map(|a| &a.adjclose);
    let at = |v: &Vec<Option<f64>>, i: usize| v.get(i).copied().flatten();
    let tz = result.meta.exchange_timezone_name.as_deref();
    let offset = result.meta.gmtoffset.unwrap_or(0);
    let mut bars: Vec<Bar> = Vec::with_capacity(n);
    for (i, ts) in result.timestamp.iter().enumerate() {
        let Some(close) = quote.close[i] else {
            continue;
        };
        let date =
            local_date(*ts, tz, offset).ok_or_else(|| format!("timestamp {ts} is out of range"))?;
        let bar = Bar {
            date,
            open: at(&quote.open, i),
            high: at(&quote.high, i),
            low: at(&quote.low, i),
            close,
            adj_close: adj.and_then(|a| at(a, i)),
            volume: at(&quote.volume, i),
        };
        // Yahoo repeats today's bar with a live timestamp: keep the last bar of a date.
        match bars.last_mut() {
            Some(prev) if prev.date == date => *prev = bar,
            _ => bars.push(bar),
        }
    }
    Ok(YahooSeries {
        symbol: result.meta.symbol,
        currency: result.meta.currency,
        bars,
    })
}

/// Parses Coinbase Exchange candles `[[time, low, high, open, close, volume], …]` (newest first,
/// UTC days) into bars, oldest first.
pub fn coinbase_candles(body: &[u8]) -> Result<Vec<Bar>, String> {
    let rows: Vec<Vec<f64>> =
        serde_json::from_slice(body).map_err(|e| format!("not a Coinbase candles array: {e}"))?;
    let mut bars = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        if r.len() < 6 {
            return Err(format!("candle #{i} has {} fields, expected 6", r.len()));
        }
        let date = DateTime::<Utc>::from_timestamp(r[0] as i64, 0)
            .ok_or(format!("candle #{i}: bad time"))?
            .date_naive();
        bars.push(Bar {
            date,
            low: Some(r[1]),
            high: Some(r[2]),
            open: Some(r[3]),
            close: r[4],
            adj_close: None,
            volume: Some(r[5]),
        });
    }
    bars.sort_by_key(|b| b.date);
    bars.dedup_by_key(|b| b.date);
    Ok(bars)
}

/// Parses a Stooq daily CSV (`Date,Open,High,Low,Close,Volume`). Stooq answers an HTML page or
/// a plain "No data" when it refuses: both are errors, never data.
pub fn stooq_csv(body: &[u8]) -> Result<Vec<Bar>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    let t = text.trim_start();
    if t.starts_with('<') {
        return Err("Stooq answered HTML, not CSV (a captcha or an API-key page?)".into());
    }
    if t.is_empty() || t.starts_with("No data") {
        return Err(format!(
            "Stooq has no data: {:?}",
            t.lines().next().unwrap_or("")
        ));
    }
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(d), Some(c)) = (col("Date"), col("Close")) else {
        return Err(format!(
            "expected Date and Close columns, got {:?}",
            headers.iter().collect::<Vec<_>>()
        ));
    };
    let (o, h, l, v) = (col("Open"), col("High"), col("Low"), col("Volume"));
    let mut bars = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let num = |idx: Option<usize>| -> Result<Option<f64>, String> {
            match idx.and_then(|k| rec.get(k)).map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) => s
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(Some)
                    .ok_or_else(|| format!("line {line}: {s:?} is not a number")),
            }
        };
        let date = NaiveDate::parse_from_str(rec.get(d).unwrap_or("").trim(), "%Y-%m-%d")
            .map_err(|_| format!("line {line}: bad date"))?;
        let close = num(Some(c))?.ok_or(format!("line {line}: no close"))?;
        bars.push(Bar {
            date,
            open: num(o)?,
            high: num(h)?,
            low: num(l)?,
            close,
            adj_close: None,
            volume: num(v)?,
        });
    }
    Ok(bars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    const BTC_1D: &[u8] = include_bytes!(
        "../../../tests/fixtures/bodies/prices/yahoo_chart_v8_BTC-USD_range1d_2025-02-19.json"
    );
    const IWM: &[u8] = include_bytes!(
        "../../../tests/fixtures/upstream/query1.finance.yahoo.com/v8_finance_chart_IWM.body.json"
    );

    #[test]
    fn real_yahoo_body() {
        let s = yahoo_chart(BTC_1D).unwrap();
        assert_eq!(s.symbol, "BTC-USD");
        assert_eq!(s.currency.as_deref(), Some("USD"));
        assert_eq!(s.bars.len(), 1);
        assert_eq!(s.bars[0].date, d("2025-02-19"));
        assert_eq!(s.bars[0].close, 95219.0234375);
        assert_eq!(s.bars[0].volume, Some(38503645184.0));
    }

    #[test]
    fn session_start_timestamps_map_to_the_new_york_date_across_dst() {
        let s = yahoo_chart(IWM).unwrap();
        // 2015-03-09 is the first session after the DST change; 09:30 EDT = 13:30 UTC.
        assert!(s.bars.iter().any(|b| b.date == d("2015-03-09")));
        assert!(
            s.bars
                .iter()
                .all(|b| b.date.format("%a").to_string() != "Sat"),
            "no weekend dates"
        );
        assert_eq!(s.bars.last().unwrap().date, d("2026-06-05"));
        assert_eq!(s.bars.last().unwrap().close, 281.6499938964844);
    }

    #[test]
    fn yahoo_nulls_errors_and_mismatches() {
        let body = br#"{"chart":{"result":[{"meta":{"symbol":"X","exchangeTimezoneName":"UTC","newField":1},"timestamp":[86400,172800],
            "indicators":{"quote":[{"close":[null,2.5],"open":[1,null]}]}}],"error":null}}"#;
        let s = yahoo_chart(body).unwrap();
        assert_eq!(s.bars.len(), 1, "a null close is a holiday, skipped");
        assert_eq!((s.bars[0].close, s.bars[0].open), (2.5, None));
        let err = br#"{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}"#;
        assert!(yahoo_chart(err).unwrap_err().contains("delisted"));
        let short = br#"{"chart":{"result":[{"meta":{"symbol":"X"},"timestamp":[1,2],"indicators":{"quote":[{"close":[1.0]}]}}],"error":null}}"#;
        assert!(
            yahoo_chart(short)
                .unwrap_err()
                .contains("2 timestamps but 1 closes")
        );
        assert!(yahoo_chart(&IWM[..1000]).is_err());
        let missing = br#"{"chart":{"result":[{"meta":{"symbol":"X"},"timestamp":[1],"indicators":{"quote":[{"open":[1.0]}]}}],"error":null}}"#;
        assert!(
            yahoo_chart(missing).unwrap_err().contains("close"),
            "close is required"
        );
    }

    #[test]
    fn coinbase_and_stooq() {
        let cb =
            b"[[1739923200,95028.49,95783.42,95607.87,95219.02,1234.5],[1739836800,1,2,3,4,5]]";
        let bars = coinbase_candles(cb).unwrap();
        assert_eq!(bars[0].date, d("2025-02-18"), "oldest first");
        assert_eq!(bars[1].close, 95219.02);
        assert!(coinbase_candles(b"[[1,2,3]]").is_err());
        let csv =
            b"Date,Open,High,Low,Close,Volume\n2026-06-05,289.1,289.37,280.15,281.65,35403374\n";
        assert_eq!(stooq_csv(csv).unwrap()[0].close, 281.65);
        assert!(
            stooq_csv(b"<html>captcha</html>")
                .unwrap_err()
                .contains("HTML")
        );
        assert!(stooq_csv(b"No data").is_err());
        assert!(stooq_csv(b"Date,Open\n2026-01-01,1\n").is_err());
    }
}
