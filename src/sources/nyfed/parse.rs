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

/// US dollars in cents (exact; Arrow `Decimal128(20, 2)`).
pub type Cents = i128;

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

/// One row of `staging.treasury_operations`: one CUSIP of an operation, or the operation itself
/// ([`NO_CUSIP`]) when the body lists no details. Operation-level fields repeat on every CUSIP row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OperationRow {
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
    pub total_par_submitted: Cents,
    /// `totalParAmtAccepted`, the operation's total.
    pub total_par_accepted: Cents,
    /// `details[].securityDescription`.
    pub security_description: Option<String>,
    /// `details[].inclusionIndicator`.
    pub inclusion_indicator: Option<String>,
    /// `details[].parAmountSubmitted` (not published by every layout).
    pub par_submitted: Option<Cents>,
    /// `details[].parAmountAccepted`.
    pub par_accepted: Option<Cents>,
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
}

/// Whether an operation type is an outright purchase of Treasury bills (`Outright Bill
/// Purchase`; matched on the words `bill` and `purchase`, case-insensitively). These are the
/// reserve-management purchases of 2019–2020 and from 2025-12-12 on, among others.
pub fn is_bill_purchase(operation_type: &str) -> bool {
    let t = operation_type.to_ascii_lowercase();
    let words: Vec<&str> = t.split_whitespace().collect();
    words.contains(&"bill") && words.contains(&"purchase")
}

/// Parses an amount of US dollars (`"8167000000"`, `"2045638704812.80"`, `"24542350120.9"`) into
/// cents. At most 2 decimals and 18 integer digits; no exponent, no thousands separators.
pub fn parse_cents(s: &str) -> Option<Cents> {
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

    fn required(&self, field: &str) -> Result<String, ParseError> {
        self.text(field)?
            .ok_or_else(|| self.err(field, "is missing"))
    }

    fn date(&self, field: &str) -> Result<Option<NaiveDate>, ParseError> {
        self.text(field)?
            .map(|s| {
                NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map_err(|_| self.err(field, format!("{s:?} is not a date (YYYY-MM-DD)")))
            })
            .transpose()
    }

    fn required_date(&self, field: &str) -> Result<NaiveDate, ParseError> {
        self.date(field)?
            .ok_or_else(|| self.err(field, "is missing"))
    }

    fn usd(&self, field: &str) -> Result<Option<Cents>, ParseError> {
        self.text(field)?
            .map(|s| {
                parse_cents(&s)
                    .ok_or_else(|| self.err(field, format!("{s:?} is not an amount of dollars")))
            })
            .transpose()
    }

    fn required_usd(&self, field: &str) -> Result<Cents, ParseError> {
        self.usd(field)?
            .ok_or_else(|| self.err(field, "is missing"))
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
        let mut f = Fields {
            what: format!("operation #{} (no operationId)", i + 1),
            obj: op,
        };
        let operation_id = f.required("operationId")?;
        f.what = format!("operation {operation_id:?}");
        let operation_type = f.required("operationType")?;
        let base = OperationRow {
            cusip: NO_CUSIP.to_string(),
            operation_date: f.required_date("operationDate")?,
            settlement_date: f.required_date("settlementDate")?,
            is_bill_purchase: is_bill_purchase(&operation_type),
            operation_type,
            operation_direction: f.text("operationDirection")?,
            auction_method: f.text("auctionMethod")?,
            auction_status: f.text("auctionStatus")?,
            maturity_range_start: f.date("maturityRangeStart")?,
            maturity_range_end: f.date("maturityRangeEnd")?,
            total_par_submitted: f.required_usd("totalParAmtSubmitted")?,
            total_par_accepted: f.required_usd("totalParAmtAccepted")?,
            release_time: f.text("releaseTime")?,
            close_time: f.text("closeTime")?,
            note: f.text("note")?,
            last_updated: f.text("lastUpdated")?,
            operation_id,
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
                cusip: df.required("cusip")?,
                security_description: df.text("securityDescription")?,
                inclusion_indicator: df.text("inclusionIndicator")?,
                par_submitted: df.usd("parAmountSubmitted")?,
                par_accepted: df.usd("parAmountAccepted")?,
                weighted_avg_accepted_price: df.price("weightedAvgAccptPrice")?,
                least_favorable_accepted_price: df.price("leastFavoriteAccptPrice")?,
                ..base.clone()
            });
        }
        if op_rows.is_empty() {
            op_rows.push(base);
        }
        for row in op_rows {
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

/// One row of `staging.soma_holdings`: one category on one as-of date.
#[derive(Debug, Clone, PartialEq)]
pub struct SomaRow {
    /// `asOfDate` (weekly, usually a Wednesday).
    pub as_of_date: NaiveDate,
    /// One of [`SECURITY_TYPES`].
    pub security_type: &'static str,
    /// Par (face) value held; `None` where the API gives `""`.
    pub value: Option<Cents>,
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
        let as_of_date = f.required_date("asOfDate")?;
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
                value: f.usd(security_type)?,
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
