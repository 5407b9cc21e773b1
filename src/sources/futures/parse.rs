//! Parsing fed funds futures: CME settlements JSON, contract codes, and vendor CSV files.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

crate::staging_row! {
    /// One settlement of one contract on one day: a row of `staging.futures_daily`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Settle in "futures_daily" keys [contract, date] {
        /// Contract code, e.g. `ZQZ25` (or the continuous front month `ZQ=F`).
        pub contract: String,
        /// First day of the delivery month (for `ZQ=F`: the trade date's own month).
        pub contract_month: Option<NaiveDate>,
        /// Trade date.
        pub date: NaiveDate,
        /// Opening price, in points (100 − rate); NULL when not published.
        pub open: Option<f64>,
        /// High price, in points (100 − rate); NULL when not published.
        pub high: Option<f64>,
        /// Low price, in points (100 − rate); NULL when not published.
        pub low: Option<f64>,
        /// Settlement price (Yahoo: the close), in points (100 − rate).
        pub settle: f64,
        /// Implied average fed funds rate over the delivery month, in percent: 100 − `settle`,
        /// rounded to 6 decimals.
        pub implied_rate_pct: f64,
        /// Contracts traded that day; NULL when not published.
        pub volume: Option<f64>,
        /// Contracts open at the end of the day; NULL when not published.
        pub open_interest: Option<f64>,
        /// Where the row came from: `cme`, `vendor:<file name>` or `yahoo`.
        pub source: String,
    }
}

/// The implied rate of a settlement price, in percent: `100 − settle`, rounded to 6 decimals
/// (the subtraction's float noise does not show).
pub fn implied_rate_pct(settle: f64) -> f64 {
    ((100.0 - settle) * 1e6).round() / 1e6
}

const MONTH_CODES: &[u8] = b"FGHJKMNQUVXZ";

/// `ZQ` + month code + 2-digit year for a delivery month: 2025-12 → `ZQZ25`.
pub fn contract_code(month: NaiveDate) -> String {
    format!(
        "ZQ{}{:02}",
        MONTH_CODES[month.month0() as usize] as char,
        month.year() % 100
    )
}

/// Delivery month of a code like `ZQZ25` or `ZQZ2025`.
pub fn contract_month(code: &str) -> Option<NaiveDate> {
    let rest = code.strip_prefix("ZQ")?;
    let code_char = rest.chars().next()?.to_ascii_uppercase();
    let y = &rest[code_char.len_utf8()..];
    if !(y.len() == 2 || y.len() == 4) || !y.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month = MONTH_CODES.iter().position(|c| *c as char == code_char)? as u32 + 1;
    let year: i32 = y.parse().ok()?;
    let year = if y.len() == 2 { 2000 + year } else { year };
    NaiveDate::from_ymd_opt(year, month, 1)
}

fn cme_number(raw: &str) -> Option<f64> {
    let s = raw.trim().trim_end_matches(['A', 'B']).replace(',', "");
    if s.is_empty() || s == "-" {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CmeBody {
    #[serde(default)]
    settlements: Vec<CmeRow>,
    trade_date: Option<String>,
    /// CME answers a weekend, holiday or not-yet-settled day with `"empty": true`.
    #[serde(default)]
    empty: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CmeRow {
    month: String,
    #[serde(default)]
    open: String,
    #[serde(default)]
    high: String,
    #[serde(default)]
    low: String,
    settle: String,
    #[serde(default)]
    volume: String,
    #[serde(default)]
    open_interest: String,
}

/// Parses CME's settlements JSON for one trade date, as CME serves it: `month` like `DEC 25`,
/// every number a string — `A`/`B` suffixes for ask/bid quotes (`95.3050B`), `-` for none,
/// thousands commas in volume and open interest — and a final `Total` row (skipped). A row
/// without a settlement price is skipped; `"empty": true` or an empty list (a weekend, a
/// holiday, a day not settled yet) gives no rows. Rows carry `source` = `cme`.
pub fn cme_settlements(body: &[u8], trade_date: NaiveDate) -> Result<Vec<Settle>, String> {
    let body: CmeBody =
        serde_json::from_slice(body).map_err(|e| format!("not the CME settlements layout: {e}"))?;
    if body.empty {
        return Ok(Vec::new());
    }
    if let Some(td) = body.trade_date.as_deref().filter(|t| !t.is_empty())
        && let Ok(d) = NaiveDate::parse_from_str(td, "%m/%d/%Y")
        && d != trade_date
    {
        return Err(format!(
            "asked for {trade_date}, CME answered trade date {d}"
        ));
    }
    let mut out = Vec::new();
    for row in &body.settlements {
        let label = row.month.trim();
        if label.eq_ignore_ascii_case("total") {
            continue;
        }
        let month = NaiveDate::parse_from_str(&format!("01 {label}"), "%d %b %y")
            .map_err(|_| format!("contract month {label:?} is not like 'DEC 25'"))?;
        let Some(settle) = cme_number(&row.settle) else {
            continue;
        };
        out.push(Settle {
            contract: contract_code(month),
            contract_month: Some(month),
            date: trade_date,
            open: cme_number(&row.open),
            high: cme_number(&row.high),
            low: cme_number(&row.low),
            settle,
            implied_rate_pct: implied_rate_pct(settle),
            volume: cme_number(&row.volume),
            open_interest: cme_number(&row.open_interest),
            source: "cme".to_string(),
        });
    }
    Ok(out)
}

/// Parses one vendor CSV of per-contract history: header `trade_date,contract,settle` plus
/// optional `volume,open_interest`; `contract` like `ZQZ25`. Errors name the line. Rows carry
/// `source` = `vendor`; the connector adds the file's name (`vendor:<file>`).
pub fn vendor_csv(text: &str) -> Result<Vec<Settle>, (usize, String)> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| (1, e.to_string()))?.clone();
    let col = |n: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(n))
    };
    let (Some(d), Some(c), Some(s)) = (col("trade_date"), col("contract"), col("settle")) else {
        return Err((
            1,
            format!(
                "expected columns trade_date,contract,settle[,volume,open_interest]; got {:?}",
                headers.iter().collect::<Vec<_>>()
            ),
        ));
    };
    let (v, oi) = (col("volume"), col("open_interest"));
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| (line, e.to_string()))?;
        let get = |k: usize| rec.get(k).unwrap_or("").trim();
        let date = NaiveDate::parse_from_str(get(d), "%Y-%m-%d")
            .map_err(|_| (line, format!("trade_date {:?} is not YYYY-MM-DD", get(d))))?;
        let code = get(c).to_ascii_uppercase();
        let month =
            contract_month(&code).ok_or((line, format!("contract {code:?} is not like ZQZ25")))?;
        let settle: f64 = get(s)
            .parse()
            .map_err(|_| (line, format!("settle {:?} is not a number", get(s))))?;
        if !(50.0..=101.0).contains(&settle) {
            return Err((
                line,
                format!("settle {settle} is outside 50..101: not a fed funds futures price"),
            ));
        }
        let opt = |k: Option<usize>| -> Result<Option<f64>, (usize, String)> {
            match k.map(get).filter(|x| !x.is_empty()) {
                None => Ok(None),
                Some(x) => x
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Some)
                    .ok_or_else(|| (line, format!("{x:?} is not a number"))),
            }
        };
        out.push(Settle {
            contract: contract_code(month),
            contract_month: Some(month),
            date,
            open: None,
            high: None,
            low: None,
            settle,
            implied_rate_pct: implied_rate_pct(settle),
            volume: opt(v)?,
            open_interest: opt(oi)?,
            source: "vendor".to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    #[test]
    fn contract_codes_round_trip() {
        assert_eq!(contract_code(d("2025-12-01")), "ZQZ25");
        assert_eq!(contract_code(d("2026-01-01")), "ZQF26");
        assert_eq!(contract_month("ZQZ25"), Some(d("2025-12-01")));
        assert_eq!(contract_month("ZQH2026"), Some(d("2026-03-01")));
        assert_eq!(contract_month("ESZ25"), None);
    }

    #[test]
    fn cme_layout() {
        let body = br#"{"settlements":[
            {"month":"DEC 25","open":"96.1100","high":"96.1200","low":"96.1000","last":"96.1150","change":"+.005","settle":"96.1150","volume":"12,345","openInterest":"210,111","newField":"x"},
            {"month":"JAN 26","open":"-","high":"-","low":"-","last":"-","change":"UNCH","settle":"96.2800","volume":"0","openInterest":"99"},
            {"month":"Total","settle":"","volume":"12,345","openInterest":"210,210"}],"tradeDate":"11/24/2025"}"#;
        let rows = cme_settlements(body, d("2025-11-24")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].contract.as_str(), rows[0].settle, rows[0].volume),
            ("ZQZ25", 96.115, Some(12345.0))
        );
        assert_eq!(rows[1].open, None);
        assert_eq!(
            (rows[0].implied_rate_pct, rows[0].source.as_str()),
            (3.885, "cme"),
            "100 - settle, without float noise"
        );
        assert!(
            cme_settlements(body, d("2025-11-25"))
                .unwrap_err()
                .contains("trade date")
        );
        assert!(
            cme_settlements(
                br#"{"settlements":[{"month":"13 25","settle":"1"}]}"#,
                d("2025-11-24")
            )
            .is_err()
        );
    }

    /// The real answers recorded in the snapshot: 60 contract months, SEP 26 … AUG 31, each day.
    #[test]
    fn real_cme_answers() {
        const DIR: &str = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/upstream/www.cmegroup.com/"
        );
        for day in 14..=18 {
            let path = format!(
                "{DIR}CmeWS_mvc_Settlements_Futures_Settlements_305_FUT--tradeDate=09_2F{day}_2F2026.body.json"
            );
            let body = std::fs::read(&path).unwrap();
            let date = d(&format!("2026-09-{day}"));
            let rows = cme_settlements(&body, date).unwrap();
            assert_eq!(rows.len(), 60, "{path}");
            assert_eq!(rows[0].contract, "ZQU26");
            assert_eq!(rows[59].contract, "ZQQ31");
            assert_eq!(rows[59].contract_month, Some(d("2031-08-01")));
            assert!(
                rows.iter()
                    .all(|r| r.date == date && (90.0..100.0).contains(&r.settle))
            );
            // Thousands commas: the volumes add up to the Total row's.
            let total: f64 = rows.iter().filter_map(|r| r.volume).sum();
            let expected = match day {
                14 => 747_523.0,
                15 => 627_147.0,
                16 => 1_533_715.0,
                17 => 703_700.0,
                _ => 290_392.0,
            };
            assert_eq!(total, expected, "{path}");
        }
        let body = std::fs::read(format!(
            "{DIR}CmeWS_mvc_Settlements_Futures_Settlements_305_FUT--tradeDate=09_2F18_2F2026.body.json"
        ))
        .unwrap();
        let rows = cme_settlements(&body, d("2026-09-18")).unwrap();
        let nov27 = rows.iter().find(|r| r.contract == "ZQX27").unwrap();
        // "high": "95.4150B" (a bid), "settle": "95.3300", "openInterest": "1,844"
        assert_eq!(
            (nov27.high, nov27.settle, nov27.open_interest),
            (Some(95.415), 95.33, Some(1844.0))
        );
        let jan28 = rows.iter().find(|r| r.contract == "ZQF28").unwrap();
        assert_eq!(
            (jan28.open, jan28.settle),
            (None, 95.36),
            "\"-\" is no value"
        );
        assert!(
            cme_settlements(
                br#"{"settlements":[],"tradeDate":"09/19/2026","empty":true}"#,
                d("2026-09-19")
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn vendor_rows_are_validated_by_line() {
        let ok = "trade_date,contract,settle,volume\n2025-10-01,ZQX25,96.10,100\n2025-10-01,zqz25,96.25,\n";
        let rows = vendor_csv(ok).unwrap();
        assert_eq!(rows[1].contract, "ZQZ25");
        assert_eq!(rows[1].volume, None);
        assert_eq!(rows[1].source, "vendor");
        assert_eq!(
            vendor_csv("trade_date,contract,settle\n2025-10-01,ZQX25,abc\n")
                .unwrap_err()
                .0,
            2
        );
        assert!(
            vendor_csv("trade_date,contract,settle\n2025-10-01,ESZ25,96\n")
                .unwrap_err()
                .1
                .contains("ZQZ25")
        );
        assert!(
            vendor_csv("trade_date,contract,settle\n2025-10-01,ZQZ25,4.25\n")
                .unwrap_err()
                .1
                .contains("outside")
        );
        assert_eq!(vendor_csv("date,price\n").unwrap_err().0, 1);
    }
}
