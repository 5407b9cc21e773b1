//! Parsing NY Fed Markets Data API bodies: Treasury outright operations and the SOMA summary.
//!
//! Both are strict about what matters (ids, dates, dollar amounts) and tolerant of what does not:
//! fields added upstream are ignored, and fields the real data shows can be absent are optional.
//!
//! **Operations** (`tsy/…/results/details/search.json`): `{"treasury":{"auctions":[…]}}`. Every
//! value may come as a JSON string or number (the API is documented with strings); `null` and
//! `""` mean absent. Required per operation: `operationId`, `operationDate`, `settlementDate`,
//! `operationType`, `totalParAmtSubmitted`, `totalParAmtAccepted`; required per `details[]`
//! entry: `cusip`. Everything else (`operationDirection`, `auctionMethod`, `auctionStatus`,
//! maturity range, times, `note`, `lastUpdated`, per-CUSIP amounts and prices) is optional.
//! Prices are parsed when numeric; the API sends `"NA"` or blank before they are final, which
//! becomes `None`.
//!
//! **SOMA** (`soma/summary.json`): `{"soma":{"summary":[{asOfDate, mbs, cmbs, tips, frn,
//! tipsInflationCompensation, notesbonds, bills, agencies, total}]}}`, every value a string of
//! US dollars with 0, 1 or 2 decimals. `""` means the category did not exist that week (e.g. FRNs
//! in 2003) and becomes `None`, distinct from `"0"`. `total` excludes
//! `tipsInflationCompensation`.
//!
//! Dollar amounts are exact: they are kept as cents (`i128`, Arrow `Decimal128(20, 2)`), never as
//! floating point.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value};

pub use crate::lake::row::Cents;

/// A parse failure, with the body line when known.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line of the body, for JSON syntax errors.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            line: None,
            message: message.into(),
        }
    }

    fn json(what: &str, e: serde_json::Error) -> Self {
        Self {
            line: Some(e.line()).filter(|l| *l > 0),
            message: format!("not the {what} JSON layout: {e}"),
        }
    }
}

/// `cusip` of the one row an operation gets when it has no `details[]`: the natural key
/// [operation_id, cusip] stays non-NULL.
pub const NO_CUSIP: &str = "";

/// The `source` of every row this connector writes.
pub const SOURCE: &str = "nyfed_markets_api";

crate::staging_row! {
    /// One row of `staging.treasury_operations`: one CUSIP of an operation, or the operation itself
    /// ([`NO_CUSIP`]) when the body lists no details. Operation-level fields repeat on every CUSIP row.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct OperationRow in "treasury_operations" keys [operation_id, cusip] {
        /// `operationId`, e.g. `OR 121225 1`.
        pub operation_id: String,
        /// `details[].cusip`, or [`NO_CUSIP`].
        pub cusip: String,
        /// `operationDate`.
        pub operation_date: NaiveDate,
        /// `settlementDate`.
        pub settlement_date: NaiveDate,
        /// `operationType`, e.g. `Outright Bill Purchase`.
        pub operation_type: String,
        /// `operationDirection` as published (e.g. `P`/`S`).
        pub operation_direction: Option<String>,
        /// `auctionMethod`.
        pub auction_method: Option<String>,
        /// `auctionStatus` (e.g. `Results`).
        pub auction_status: Option<String>,
        /// `maturityRangeStart`.
        pub maturity_range_start: Option<NaiveDate>,
        /// `maturityRangeEnd`.
        pub maturity_range_end: Option<NaiveDate>,
        /// `totalParAmtSubmitted`, the operation's total.
        pub total_par_submitted_usd: Cents,
        /// `totalParAmtAccepted`, the operation's total.
        pub total_par_accepted_usd: Cents,
        /// `details[].securityDescription`.
        pub security_description: Option<String>,
        /// `details[].inclusionIndicator`.
        pub inclusion_indicator: Option<String>,
        /// `details[].parAmountSubmitted` (not published by every layout).
        pub par_submitted_usd: Option<Cents>,
        /// `details[].parAmountAccepted`.
        pub par_accepted_usd: Option<Cents>,
        /// `details[].weightedAvgAccptPrice` (a discount rate in % for bills).
        pub weighted_avg_accepted_price: Option<f64>,
        /// `details[].leastFavoriteAccptPrice` (a rate in % for bills).
        pub least_favorable_accepted_price: Option<f64>,
        /// `releaseTime` as published.
        pub release_time: Option<String>,
        /// `closeTime` as published.
        pub close_time: Option<String>,
        /// `note`.
        pub note: Option<String>,
        /// `lastUpdated` as published.
        pub last_updated: Option<String>,
        /// Derived: [`is_bill_purchase`] of the operation type.
        pub is_bill_purchase: bool,
        /// Where the row came from: `nyfed_markets_api`.
        pub source: &'static str,
    }
}

/// Whether an operation type is an outright purchase of Treasury bills (`Outright Bill
/// Purchase`; matched on the words `bill` and `purchase`, case-insensitively). Not every such
/// operation is a reserve-management purchase: small-value exercises (test operations of
/// $50–75 M) are published as ordinary bill purchases, and since December 2025 the Desk buys the
/// reserve-management amount and the reinvestment of agency principal in the same operations,
/// which no operation field tells apart. `marts.bill_purchases` classifies them by the rule the
/// data allows (`purpose`: small-value exercise below $100 M accepted, else reserve management
/// or reinvestment).
pub fn is_bill_purchase(operation_type: &str) -> bool {
    let t = operation_type.to_ascii_lowercase();
    let words: Vec<&str> = t.split_whitespace().collect();
    words.contains(&"bill") && words.contains(&"purchase")
}

/// Parses an amount of US dollars (`"8167000000"`, `"2045638704812.80"`, `"24542350120.9"`) into
/// a number of cents. At most 2 decimals and 18 integer digits; no exponent, no thousands separators.
pub fn parse_cents(s: &str) -> Option<i128> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) if !f.is_empty() => (i, f),
        Some(_) => return None,
        None => (digits, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 18 || frac.len() > 2 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let whole: i128 = int.parse().ok()?;
    let fraction: i128 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i128>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    let cents = whole * 100 + fraction;
    Some(if negative { -cents } else { cents })
}

/// A JSON value as text: strings trimmed, numbers as written; `null` and `""` are `None`.
fn text_of(v: Option<&Value>) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("is not a string or number: {other}")),
    }
}

/// Field access with errors that name the record (`what`) and the field.
struct Fields<'a> {
    what: String,
    obj: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn err(&self, field: &str, message: impl std::fmt::Display) -> ParseError {
        ParseError::new(format!("{}: {field} {message}", self.what))
    }

    fn text(&self, field: &str) -> Result<Option<String>, ParseError> {
        text_of(self.obj.get(field)).map_err(|m| self.err(field, m))
    }

    /// A field read by `get` (e.g. [`Fields::date`]) that must be present.
    fn required<T>(
        &self,
        field: &str,
        get: fn(&Self, &str) -> Result<Option<T>, ParseError>,
    ) -> Result<T, ParseError> {
        get(self, field)?.ok_or_else(|| self.err(field, "is missing"))
    }

    /// A field's text turned into a value by `parse`; text it cannot parse is an error that
    /// says the field is not `kind`.
    fn parsed<T>(
        &self,
        field: &str,
        kind: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ParseError> {
        self.text(field)?
            .map(|s| parse(&s).ok_or_else(|| self.err(field, format!("{s:?} is not {kind}"))))
            .transpose()
    }

    fn date(&self, field: &str) -> Result<Option<NaiveDate>, ParseError> {
        self.parsed(field, "a date (YYYY-MM-DD)", |s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
        })
    }

    fn usd(&self, field: &str) -> Result<Option<Cents>, ParseError> {
        self.parsed(field, "an amount of dollars", |s| parse_cents(s).map(Cents))
    }

    /// A price or rate: `None` unless it is a finite number (the API sends `NA` or blank until
    /// prices are final).
    fn price(&self, field: &str) -> Result<Option<f64>, ParseError> {
        Ok(self
            .text(field)?
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|p| p.is_finite()))
    }
}

#[derive(Deserialize)]
struct OperationsBody {
    treasury: OperationsList,
}

#[derive(Deserialize)]
struct OperationsList {
    auctions: Vec<Map<String, Value>>,
}

/// Parses an operations body into rows: one per CUSIP of each operation, or one per operation
/// without details. The same key twice with different contents is an error.
pub fn operations(body: &[u8]) -> Result<Vec<OperationRow>, ParseError> {
    let body: OperationsBody =
        serde_json::from_slice(body).map_err(|e| ParseError::json("treasury operations", e))?;
    let mut rows: Vec<OperationRow> = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, op) in body.treasury.auctions.iter().enumerate() {
        for row in operation_rows(i, op)? {
            let key = (row.operation_id.clone(), row.cusip.clone());
            match seen.get(&key) {
                Some(&k) if rows[k] == row => {}
                Some(_) => {
                    return Err(ParseError::new(format!(
                        "operation {:?} CUSIP {:?} is listed twice with different contents",
                        key.0, key.1
                    )));
                }
                None => {
                    seen.insert(key, rows.len());
                    rows.push(row);
                }
            }
        }
    }
    Ok(rows)
}

/// The rows of the `i`-th operation of a body: one per CUSIP of its details, or the operation
/// alone when it has none.
fn operation_rows(i: usize, op: &Map<String, Value>) -> Result<Vec<OperationRow>, ParseError> {
    let mut f = Fields {
        what: format!("operation #{} (no operationId)", i + 1),
        obj: op,
    };
    let operation_id = f.required("operationId", Fields::text)?;
    f.what = format!("operation {operation_id:?}");
    let operation_type = f.required("operationType", Fields::text)?;
    let base = OperationRow {
        cusip: NO_CUSIP.to_string(),
        operation_date: f.required("operationDate", Fields::date)?,
        settlement_date: f.required("settlementDate", Fields::date)?,
        is_bill_purchase: is_bill_purchase(&operation_type),
        operation_type,
        operation_direction: f.text("operationDirection")?,
        auction_method: f.text("auctionMethod")?,
        auction_status: f.text("auctionStatus")?,
        maturity_range_start: f.date("maturityRangeStart")?,
        maturity_range_end: f.date("maturityRangeEnd")?,
        total_par_submitted_usd: f.required("totalParAmtSubmitted", Fields::usd)?,
        total_par_accepted_usd: f.required("totalParAmtAccepted", Fields::usd)?,
        release_time: f.text("releaseTime")?,
        close_time: f.text("closeTime")?,
        note: f.text("note")?,
        last_updated: f.text("lastUpdated")?,
        operation_id,
        source: SOURCE,
        ..Default::default()
    };
    let details = match op.get("details") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(d)) => d.as_slice(),
        Some(_) => return Err(f.err("details", "is not an array")),
    };
    let mut op_rows = Vec::new();
    for (j, d) in details.iter().enumerate() {
        let Some(obj) = d.as_object() else {
            return Err(f.err(&format!("details[{j}]"), "is not an object"));
        };
        let df = Fields {
            what: format!("operation {:?} details[{j}]", base.operation_id),
            obj,
        };
        op_rows.push(OperationRow {
            cusip: df.required("cusip", Fields::text)?,
            security_description: df.text("securityDescription")?,
            inclusion_indicator: df.text("inclusionIndicator")?,
            par_submitted_usd: df.usd("parAmountSubmitted")?,
            par_accepted_usd: df.usd("parAmountAccepted")?,
            weighted_avg_accepted_price: df.price("weightedAvgAccptPrice")?,
            least_favorable_accepted_price: df.price("leastFavoriteAccptPrice")?,
            ..base.clone()
        });
    }
    if op_rows.is_empty() {
        op_rows.push(base);
    }
    Ok(op_rows)
}

/// The SOMA summary's categories, as `security_type` values (the API's field names).
pub const SECURITY_TYPES: [&str; 9] = [
    "bills",
    "notesbonds",
    "frn",
    "tips",
    "tipsInflationCompensation",
    "agencies",
    "mbs",
    "cmbs",
    "total",
];

crate::staging_row! {
    /// One row of `staging.soma_holdings`: one category on one as-of date.
    #[derive(Debug, Clone, PartialEq)]
    pub struct SomaRow in "soma_holdings" keys [as_of_date, security_type] {
        /// `asOfDate` (weekly, usually a Wednesday).
        pub as_of_date: NaiveDate,
        /// One of [`SECURITY_TYPES`].
        pub security_type: &'static str,
        /// Par (face) value held; `None` where the API gives `""`.
        pub value_usd: Option<Cents>,
        /// Where the row came from: `nyfed_markets_api`.
        pub source: &'static str,
    }
}

/// A parsed SOMA summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SomaSummary {
    /// Rows by as-of date, then in [`SECURITY_TYPES`] order.
    pub rows: Vec<SomaRow>,
    /// Fields seen that are not `asOfDate` or a known category (ignored; reported so a new
    /// category is noticed).
    pub unknown_fields: Vec<String>,
}

#[derive(Deserialize)]
struct SomaBody {
    soma: SomaList,
}

#[derive(Deserialize)]
struct SomaList {
    summary: Vec<Map<String, Value>>,
}

/// Parses a SOMA summary body. A known category missing from a record is an error (the layout
/// changed); `""` is `None`; a date listed twice is an error.
pub fn soma_summary(body: &[u8]) -> Result<SomaSummary, ParseError> {
    let body: SomaBody =
        serde_json::from_slice(body).map_err(|e| ParseError::json("SOMA summary", e))?;
    let mut rows = Vec::with_capacity(body.soma.summary.len() * SECURITY_TYPES.len());
    let mut unknown: Vec<String> = Vec::new();
    let mut dates = std::collections::HashSet::new();
    for (i, rec) in body.soma.summary.iter().enumerate() {
        let mut f = Fields {
            what: format!("SOMA record #{}", i + 1),
            obj: rec,
        };
        let as_of_date = f.required("asOfDate", Fields::date)?;
        f.what = format!("SOMA as of {as_of_date}");
        if !dates.insert(as_of_date) {
            return Err(ParseError::new(format!("{}: date listed twice", f.what)));
        }
        for security_type in SECURITY_TYPES {
            if !rec.contains_key(security_type) {
                return Err(f.err(security_type, "is missing (a new layout?)"));
            }
            rows.push(SomaRow {
                as_of_date,
                security_type,
                value_usd: f.usd(security_type)?,
                source: SOURCE,
            });
        }
        for key in rec.keys() {
            if key != "asOfDate"
                && !SECURITY_TYPES.contains(&key.as_str())
                && !unknown.contains(key)
            {
                unknown.push(key.clone());
            }
        }
    }
    rows.sort_by_key(|r| r.as_of_date);
    Ok(SomaSummary {
        rows,
        unknown_fields: unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    /// The replay snapshot's operations body, rebuilt from the real CSV below.
    const OPS: &[u8] = include_bytes!(
        "../../../tests/fixtures/upstream/markets.newyorkfed.org/api_tsy_all_results_details_search.json--startDate=2008-03-07_endDate=2026-08-06.body.json"
    );
    /// The real derived CSV (heliar-k/market-base@1c63da0c), amounts in $ billions.
    const OPS_CSV: &str = include_str!(
        "../../../tests/fixtures/bodies/nyfed/tsy_operations_heliar-k_market-base_1c63da0.csv"
    );
    /// The replay snapshot's SOMA summary: real records from a cached real response.
    const SOMA: &[u8] = include_bytes!(
        "../../../tests/fixtures/upstream/markets.newyorkfed.org/api_soma_summary.json.body.json"
    );

    /// `$bn` with up to 9 decimals → cents, by string arithmetic (independent of `parse_cents`).
    fn billions_to_cents(b: &str) -> Cents {
        let (int, frac) = b.split_once('.').unwrap_or((b, ""));
        let dollars = format!("{int}{frac:0<9}");
        Cents(dollars.parse::<i128>().unwrap() * 100)
    }

    fn op<'a>(rows: &'a [OperationRow], id: &str) -> &'a OperationRow {
        rows.iter().find(|r| r.operation_id == id).unwrap()
    }

    #[test]
    fn rebuilt_operations_body_matches_the_real_csv_row_for_row() {
        let rows = operations(OPS).unwrap();
        let mut csv = csv::Reader::from_reader(OPS_CSV.as_bytes());
        let mut n = 0;
        for rec in csv.records() {
            let rec = rec.unwrap();
            let r = op(&rows, &rec[0]);
            assert_eq!(r.operation_date, d(&rec[1]), "{}", &rec[0]);
            assert_eq!(r.settlement_date, d(&rec[2]));
            assert_eq!(r.operation_type, &rec[3]);
            assert_eq!(r.is_bill_purchase, &rec[3] == "Outright Bill Purchase");
            assert_eq!(r.maturity_range_start, Some(d(&rec[5])));
            assert_eq!(r.maturity_range_end, Some(d(&rec[6])));
            assert_eq!(r.total_par_submitted_usd, billions_to_cents(&rec[7]));
            assert_eq!(r.total_par_accepted_usd, billions_to_cents(&rec[8]));
            assert_eq!((r.cusip.as_str(), r.par_accepted_usd), (NO_CUSIP, None));
            n += 1;
        }
        assert_eq!((n, rows.len()), (431, 431));
        assert_eq!(rows.iter().filter(|r| r.is_bill_purchase).count(), 57);
    }

    #[test]
    fn first_reserve_management_bill_purchase_2025_12_12() {
        let rows = operations(OPS).unwrap();
        let r = op(&rows, "OR 121225 1");
        assert_eq!(r.operation_type, "Outright Bill Purchase");
        assert!(r.is_bill_purchase);
        assert_eq!(r.operation_date, d("2025-12-12"));
        assert_eq!(r.settlement_date, d("2025-12-15"));
        assert_eq!(
            r.total_par_accepted_usd,
            Cents(8_167_000_000 * 100),
            "$8.167bn accepted"
        );
        assert_eq!(
            r.total_par_submitted_usd,
            Cents(27_458_000_000 * 100),
            "of $27.458bn"
        );
        assert_eq!(
            (r.maturity_range_start, r.maturity_range_end),
            (Some(d("2026-01-13")), Some(d("2026-04-09")))
        );
        assert_eq!(
            (&r.operation_direction, &r.auction_method, &r.note),
            (&None, &None, &None),
            "not in the rebuilt body, so absent"
        );
        // $38.099bn accepted 2025-12-12 .. 12-22 (the published figures).
        let sum: i128 = rows
            .iter()
            .filter(|r| r.is_bill_purchase)
            .filter(|r| (d("2025-12-12")..=d("2025-12-22")).contains(&r.operation_date))
            .map(|r| r.total_par_accepted_usd.0)
            .sum();
        assert_eq!(sum, 38_099_000_000 * 100);
        let sale = op(&rows, "OR 030708 1");
        assert_eq!(sale.operation_type, "Outright Bill Sale");
        assert!(!sale.is_bill_purchase);
    }

    #[test]
    fn numbers_added_fields_and_nulls_are_tolerated() {
        // The real 2025-12-12 operation with amounts as JSON numbers, `null`/"" optional fields
        // and fields macrolake does not know.
        let body = br#"{"treasury":{"auctions":[{"operationId":"OR 121225 1","auctionStatus":"Results",
          "operationType":"Outright Bill Purchase","operationDate":"2025-12-12","settlementDate":"2025-12-15",
          "maturityRangeStart":"2026-01-13","maturityRangeEnd":"2026-04-09","operationDirection":null,
          "auctionMethod":"","totalParAmtSubmitted":27458000000,"totalParAmtAccepted":8167000000.0,
          "note":"","details":[],"someNewField":{"nested":[1,2]},"anotherOne":true}]},"meta":{"x":1}}"#;
        let rows = operations(body).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.total_par_submitted_usd, Cents(27_458_000_000 * 100));
        assert_eq!(r.total_par_accepted_usd, Cents(8_167_000_000 * 100));
        assert_eq!(r.auction_status.as_deref(), Some("Results"));
        assert_eq!((r.auction_method.as_ref(), r.note.as_ref()), (None, None));
        assert_eq!(r.cusip, NO_CUSIP);
    }

    /// The 2014-10-27 Outright Coupon Purchase as published on newyorkfed.org (permanent OMO
    /// results page): CUSIP, par accepted ($), weighted average and least favourable price.
    /// The page does not show the operation id; `TEST 102714` is a label for this test only.
    const POMO_2014_10_27: &str = "\
912810FT0 T_04.500_02/15/36 6000000 127.594 127.59765625
912810QA9 T_03.500_02/15/39 0 NA NA
912810QH4 T_04.375_05/15/40 0 NA NA
912810QK7 T_03.875_08/15/40 42000000 116.974 116.99218750
912810QL5 T_04.250_11/15/40 0 NA NA
912810QN1 T_04.750_02/15/41 0 NA NA
912810QQ4 T_04.375_05/15/41 0 NA NA
912810QS0 T_03.750_08/15/41 0 NA NA
912810QT8 T_03.125_11/15/41 150000000 102.565 102.57031250
912810QU5 T_03.125_02/15/42 82000000 102.385 102.44140625
912810QW1 T_03.000_05/15/42 200000000 99.888 99.90625000
912810QX9 T_02.750_08/15/42 186000000 94.831 94.89062500
912810QY7 T_02.750_11/15/42 35000000 94.708 94.71875000
912810QZ4 T_03.125_02/15/43 52000000 101.949 101.95312500
912810RB6 T_02.875_05/15/43 0 NA NA
912810RC4 T_03.625_08/15/43 150000000 111.737 111.74218750
912810RD2 T_03.750_11/15/43 25000000 114.242 114.24218750
912810RE0 T_03.625_02/15/44 3000000 111.773 111.77343750
912810RG5 T_03.375_05/15/44 0 NA NA
912810RH3 T_03.125_08/15/44 0 NA NA";

    fn pomo_body() -> String {
        let details: Vec<String> = POMO_2014_10_27
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                format!(
                    r#"{{"inclusionIndicator":"I","cusip":"{}","securityDescription":"{}","parAmountAccepted":"{}","weightedAvgAccptPrice":"{}","leastFavoriteAccptPrice":"{}"}}"#,
                    f[0],
                    f[1].replace('_', " "),
                    f[2],
                    f[3],
                    f[4]
                )
            })
            .collect();
        format!(
            r#"{{"treasury":{{"auctions":[{{"operationId":"TEST 102714","operationDate":"2014-10-27",
              "settlementDate":"2014-10-28","operationType":"Outright Coupon Purchase","releaseTime":"10:15 AM",
              "closeTime":"11:00 AM","maturityRangeStart":"2036-02-15","maturityRangeEnd":"2044-08-15",
              "totalParAmtSubmitted":"2717000000","totalParAmtAccepted":"931000000","details":[{}]}}]}}}}"#,
            details.join(",")
        )
    }

    #[test]
    fn details_give_one_row_per_cusip_with_the_totals_repeated() {
        let rows = operations(pomo_body().as_bytes()).unwrap();
        assert_eq!(rows.len(), 20, "20 CUSIPs, no operation-level row");
        assert!(
            rows.iter()
                .all(|r| r.total_par_accepted_usd == Cents(931_000_000 * 100))
        );
        assert!(
            rows.iter()
                .all(|r| r.cusip != NO_CUSIP && !r.is_bill_purchase)
        );
        let accepted: i128 = rows
            .iter()
            .filter_map(|r| r.par_accepted_usd.map(|c| c.0))
            .sum();
        assert_eq!(accepted, 931_000_000 * 100, "CUSIPs add up to the total");
        let partial = rows.iter().find(|r| r.cusip == "912810QZ4").unwrap();
        assert_eq!(partial.par_accepted_usd, Some(Cents(52_000_000 * 100)));
        assert_eq!(partial.weighted_avg_accepted_price, Some(101.949));
        assert_eq!(partial.least_favorable_accepted_price, Some(101.953125));
        assert_eq!(
            partial.security_description.as_deref(),
            Some("T 03.125 02/15/43")
        );
        assert_eq!(partial.release_time.as_deref(), Some("10:15 AM"));
        let none = rows.iter().find(|r| r.cusip == "912810QA9").unwrap();
        assert_eq!(
            (none.par_accepted_usd, none.weighted_avg_accepted_price),
            (Some(Cents(0)), None),
            "zero accepted, price NA"
        );
        assert_eq!(none.par_submitted_usd, None, "not published per CUSIP");
        // The same page before prices were final.
        let early = pomo_body().replacen("127.594", "Data is not yet available.", 1);
        let rows = operations(early.as_bytes()).unwrap();
        assert_eq!(rows[0].weighted_avg_accepted_price, None);
        assert_eq!(rows[0].par_accepted_usd, Some(Cents(6_000_000 * 100)));
    }

    #[test]
    fn missing_or_broken_required_fields_name_operation_and_field() {
        let real = r#"{"operationId":"OR 121225 1","operationDate":"2025-12-12","settlementDate":"2025-12-15","operationType":"Outright Bill Purchase","totalParAmtSubmitted":"27458000000","totalParAmtAccepted":"8167000000"}"#;
        let body = |op: String| format!(r#"{{"treasury":{{"auctions":[{op}]}}}}"#);
        assert!(operations(body(real.to_string()).as_bytes()).is_ok());
        let err = |from: &str, to: &str| {
            operations(body(real.replacen(from, to, 1)).as_bytes())
                .unwrap_err()
                .message
        };
        assert_eq!(
            err(r#","totalParAmtAccepted":"8167000000""#, ""),
            r#"operation "OR 121225 1": totalParAmtAccepted is missing"#
        );
        assert_eq!(
            err(r#""settlementDate":"2025-12-15""#, r#""settlementDate":"""#),
            r#"operation "OR 121225 1": settlementDate is missing"#
        );
        assert_eq!(
            err("2025-12-12", "12/12/2025"),
            r#"operation "OR 121225 1": operationDate "12/12/2025" is not a date (YYYY-MM-DD)"#
        );
        assert_eq!(
            err("8167000000", "8,167,000,000"),
            r#"operation "OR 121225 1": totalParAmtAccepted "8,167,000,000" is not an amount of dollars"#
        );
        assert_eq!(
            err(r#""operationId":"OR 121225 1","#, ""),
            "operation #1 (no operationId): operationId is missing"
        );
        let no_cusip = pomo_body().replacen(r#""cusip":"912810QA9","#, "", 1);
        assert_eq!(
            operations(no_cusip.as_bytes()).unwrap_err().message,
            r#"operation "TEST 102714" details[1]: cusip is missing"#
        );
        let twice = body(format!(
            "{real},{}",
            real.replace("8167000000", "8167000001")
        ));
        assert!(
            operations(twice.as_bytes())
                .unwrap_err()
                .message
                .contains("listed twice")
        );
        let same_twice = body(format!("{real},{real}"));
        assert_eq!(operations(same_twice.as_bytes()).unwrap().len(), 1);
        let cut = operations(&OPS[..OPS.len() / 2]).unwrap_err();
        assert!(
            cut.message
                .starts_with("not the treasury operations JSON layout")
        );
        assert!(cut.line.is_some_and(|l| l > 100), "{cut:?}");
        assert!(operations(br#"{"data":[]}"#).is_err());
    }

    #[test]
    fn real_soma_summary_long_format_with_empty_as_null() {
        let s = soma_summary(SOMA).unwrap();
        assert!(s.unknown_fields.is_empty());
        assert_eq!(s.rows.len(), 148 * 9);
        let v = |date: &str, ty: &str| {
            s.rows
                .iter()
                .find(|r| r.as_of_date == d(date) && r.security_type == ty)
                .unwrap()
                .value_usd
                .map(|c| c.0)
        };
        assert_eq!(v("2025-12-17", "bills"), Some(210_460_926_700 * 100));
        assert_eq!(v("2025-12-17", "mbs"), Some(2_045_638_704_812 * 100 + 80));
        assert_eq!(v("2025-12-17", "cmbs"), Some(7_837_683_456 * 100 + 70));
        assert_eq!(v("2025-12-17", "total"), Some(6_146_028_978_269 * 100 + 50));
        // One decimal ("23601359107.4": the trailing zero is dropped upstream).
        assert_eq!(
            v("2019-07-03", "tipsInflationCompensation"),
            Some(23_601_359_107 * 100 + 40)
        );
        // "" is NULL, distinct from "0": FRNs did not exist in 2003; agencies went 10M → 0 → "".
        assert_eq!(v("2003-07-09", "frn"), None);
        assert_eq!(v("2003-12-03", "agencies"), Some(10_000_000 * 100));
        assert_eq!(v("2003-12-10", "agencies"), Some(0));
        assert_eq!(v("2003-12-24", "agencies"), None);
        assert_eq!(v("2019-08-07", "bills"), Some(0));
        // total = every category but tipsInflationCompensation, to within $1 (upstream rounding).
        for date in s
            .rows
            .iter()
            .map(|r| r.as_of_date)
            .collect::<std::collections::BTreeSet<_>>()
        {
            let parts: i128 = [
                "mbs",
                "cmbs",
                "tips",
                "frn",
                "notesbonds",
                "bills",
                "agencies",
            ]
            .iter()
            .map(|t| v(&date.to_string(), t).unwrap_or(0))
            .sum();
            let total = v(&date.to_string(), "total").unwrap();
            assert!((parts - total).abs() <= 100, "{date}: {parts} vs {total}");
        }
    }

    #[test]
    fn soma_added_field_is_reported_and_broken_records_are_errors() {
        let rec = r#"{"asOfDate":"2025-12-17","mbs":"2045638704812.80","cmbs":"7837683456.70","tips":"309716153400","frn":"14298365000","tipsInflationCompensation":"113973762966.08","notesbonds":"3555730144900","bills":"210460926700","agencies":"2347000000","total":"6146028978269.50"}"#;
        let body = |r: &str| format!(r#"{{"soma":{{"summary":[{r}]}}}}"#);
        let added =
            soma_summary(body(&rec.replace(r#""total""#, r#""newThing":"1","total""#)).as_bytes())
                .unwrap();
        assert_eq!(added.rows.len(), 9);
        assert_eq!(added.unknown_fields, vec!["newThing".to_string()]);
        let err = |r: String| soma_summary(body(&r).as_bytes()).unwrap_err().message;
        assert_eq!(
            err(rec.replace(r#","bills":"210460926700""#, "")),
            "SOMA as of 2025-12-17: bills is missing (a new layout?)"
        );
        assert_eq!(
            err(rec.replace("210460926700", "2.1e11")),
            r#"SOMA as of 2025-12-17: bills "2.1e11" is not an amount of dollars"#
        );
        assert_eq!(
            err(rec.replace("2025-12-17", "")),
            "SOMA record #1: asOfDate is missing"
        );
        assert!(err(format!("{rec},{rec}")).contains("listed twice"));
        assert!(soma_summary(&SOMA[..SOMA.len() - 20]).is_err());
    }

    #[test]
    fn cents_parsing_is_exact_and_strict() {
        assert_eq!(parse_cents("24542350120.9"), Some(2_454_235_012_090));
        assert_eq!(parse_cents("0.00"), Some(0));
        assert_eq!(parse_cents("-5"), Some(-500));
        for bad in [
            "",
            "1.",
            ".5",
            "1.234",
            "1e9",
            "1,000",
            "NA",
            "0x10",
            "1234567890123456789",
        ] {
            assert_eq!(parse_cents(bad), None, "{bad}");
        }
        assert!(is_bill_purchase("Outright Bill Purchase"));
        assert!(!is_bill_purchase("Outright Bill Sale"));
        assert!(!is_bill_purchase("Outright Coupon Purchase"));
    }
}
