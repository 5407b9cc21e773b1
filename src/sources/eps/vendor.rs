//! Vendor estimate CSV files (the `vendor_dir` drop folder): EPS estimates that are not
//! published free, such as a bank's Russell 2000 forward EPS, typed in or exported by the user.
//!
//! Schema (UTF-8, comma-separated, one header line, one record per line (a double-quoted field
//! may hold a line break), fields trimmed and optionally double-quoted, blank lines ignored):
//!
//! ```text
//! as_of_date,index,period,eps,kind,source
//! 2026-02-13,RUT,2026,98.40,operating_eps,examplebank
//! ```
//!
//! (A format example: the number is made up, not a real estimate.)
//!
//! | column | rule |
//! |---|---|
//! | `as_of_date` | `YYYY-MM-DD`: the date the vendor made the estimate |
//! | `index` | upper-case letters, digits, `_` (`RUT`, `SP500`, `NDX`) |
//! | `period` | `YYYY` (calendar year), `YYYYQ1`..`YYYYQ4` (calendar quarter), `NTM` or `LTM` (next / last twelve months) |
//! | `eps` | a number ($ per index share) |
//! | `kind` | lower-case letters, digits, `_` (`operating_eps`, `reported_eps`, `forward_eps`) |
//! | `source` | the vendor, lower-case letters, digits, `_`; not `spdji_workbook` (reserved for the S&P workbook) |
//!
//! Every row of a file is validated before any lands: a bad row fails its whole file with an
//! error naming `file:line` and the problem (other files still land). A key
//! (`as_of_date, index, period, kind, source`) repeated within a file is an error too. Vendor
//! rows are estimates (`is_estimate = true`).

use std::collections::HashMap;

use chrono::NaiveDate;

/// The required header.
pub const HEADER: [&str; 6] = ["as_of_date", "index", "period", "eps", "kind", "source"];

/// The `source` value of workbook rows, which vendor files may not use.
pub const RESERVED_SOURCE: &str = "spdji_workbook";

/// One validated row.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorRow {
    /// When the estimate was made.
    pub as_of_date: NaiveDate,
    /// The index (`RUT`).
    pub index: String,
    /// `2026`, `2026Q1`, `NTM` or `LTM`.
    pub period: String,
    /// The EPS value.
    pub eps: f64,
    /// What the value is (`operating_eps`).
    pub kind: String,
    /// The vendor.
    pub source: String,
    /// 1-based line in the file.
    pub line: usize,
}

/// The natural key: `(as_of_date, index, period, kind, source)`.
pub type Key = (NaiveDate, String, String, String, String);

impl VendorRow {
    /// The natural key, for duplicate checks.
    pub fn key(&self) -> Key {
        (
            self.as_of_date,
            self.index.clone(),
            self.period.clone(),
            self.kind.clone(),
            self.source.clone(),
        )
    }
}

/// A validation failure: the line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// The line of the file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn ident(s: &str, upper: bool) -> bool {
    let mut bytes = s.bytes();
    let ok_first = |b: u8| {
        if upper {
            b.is_ascii_uppercase() || b.is_ascii_digit()
        } else {
            b.is_ascii_lowercase() || b.is_ascii_digit()
        }
    };
    bytes.next().is_some_and(ok_first) && bytes.all(|b| ok_first(b) || b == b'_') && s.len() <= 64
}

fn period_ok(p: &str) -> bool {
    let year = |y: &str| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit());
    match p.len() {
        3 => p == "NTM" || p == "LTM",
        4 => year(p),
        6 => p
            .split_at_checked(4)
            .is_some_and(|(y, q)| year(y) && matches!(q, "Q1" | "Q2" | "Q3" | "Q4")),
        _ => false,
    }
}

fn row(fields: &[&str], line: usize) -> Result<VendorRow, String> {
    let [as_of, index, period, eps, kind, source] = fields else {
        return Err(format!(
            "expected {} fields ({}), found {}",
            HEADER.len(),
            HEADER.join(","),
            fields.len()
        ));
    };
    let as_of_date = NaiveDate::parse_from_str(as_of, "%Y-%m-%d")
        .ok()
        .filter(|_| as_of.len() == 10)
        .ok_or_else(|| format!("as_of_date {as_of:?} is not a YYYY-MM-DD date"))?;
    if !ident(index, true) {
        return Err(format!(
            "index {index:?} must be upper-case letters, digits or _ (e.g. RUT, SP500)"
        ));
    }
    if !period_ok(period) {
        return Err(format!(
            "period {period:?} must be YYYY, YYYYQ1..YYYYQ4, NTM or LTM"
        ));
    }
    let value = eps
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("eps {eps:?} is not a number"))?;
    if !ident(kind, false) {
        return Err(format!(
            "kind {kind:?} must be lower-case letters, digits or _ (e.g. operating_eps)"
        ));
    }
    if !ident(source, false) {
        return Err(format!(
            "source {source:?} must be lower-case letters, digits or _ (the vendor's name)"
        ));
    }
    if *source == RESERVED_SOURCE {
        return Err(format!(
            "source {RESERVED_SOURCE:?} is reserved for the S&P DJI workbook"
        ));
    }
    Ok(VendorRow {
        as_of_date,
        index: index.to_string(),
        period: period.to_string(),
        eps: value,
        kind: kind.to_string(),
        source: source.to_string(),
        line,
    })
}

/// Validates one file's text; the first problem found is returned with its line (where its
/// record starts: a quoted field may span lines).
pub fn parse(text: &str) -> Result<Vec<VendorRow>, RowError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut seen: HashMap<Key, usize> = HashMap::new();
    let mut header_seen = false;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        let record = record.map_err(|e| RowError {
            line: e
                .position()
                .map_or(1, |p| crate::sources::csv_line::line_of(text, p)),
            message: format!("not valid CSV: {e}"),
        })?;
        let line = record
            .position()
            .map_or(1, |p| crate::sources::csv_line::line_of(text, p));
        // A line of spaces only (the reader itself skips empty lines).
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        let fields: Vec<&str> = record.iter().collect();
        if !header_seen {
            let lower: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
            if lower != HEADER {
                return Err(RowError {
                    line,
                    message: format!(
                        "header must be `{}`, found `{}`",
                        HEADER.join(","),
                        fields.join(",")
                    ),
                });
            }
            header_seen = true;
            continue;
        }
        let parsed = row(&fields, line).map_err(|message| RowError { line, message })?;
        if let Some(first) = seen.insert(parsed.key(), line) {
            return Err(RowError {
                line,
                message: format!(
                    "duplicate of line {first} (same as_of_date, index, period, kind, source)"
                ),
            });
        }
        rows.push(parsed);
    }
    if !header_seen {
        return Err(RowError {
            line: 1,
            message: format!("empty file: expected the header `{}`", HEADER.join(",")),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "as_of_date,index,period,eps,kind,source\n";

    fn err(body: &str) -> RowError {
        parse(&format!("{HEAD}{body}")).unwrap_err()
    }

    #[test]
    fn valid_rows_parse_with_their_lines() {
        let rows = parse(&format!(
            "\u{feff}{HEAD}2026-02-13,RUT,2026,98.4,operating_eps,examplebank\n\n 2026-02-13 , RUT , 2027Q1 , -1.5 , forward_eps , examplebank \n2026-02-13,RUT,NTM,101,forward_eps,examplebank\n"
        ))
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].eps, 98.4);
        assert_eq!(
            rows[0].as_of_date,
            NaiveDate::from_ymd_opt(2026, 2, 13).unwrap()
        );
        assert_eq!(rows[1].line, 4, "blank line 3 skipped, line numbers kept");
        assert_eq!(
            (rows[1].period.as_str(), rows[1].eps, rows[1].kind.as_str()),
            ("2027Q1", -1.5, "forward_eps")
        );
        assert_eq!(rows[2].period, "NTM");
    }

    #[test]
    fn a_quoted_field_may_span_lines_and_later_lines_keep_their_numbers() {
        let e = parse(&format!(
            "{HEAD}2026-02-13,RUT,2026,98.4,operating_eps,examplebank\n\n\"2026-02-13\",\"RU\nT\",2026,1,operating_eps,b\n2026-02-13,RUT,2027,1,operating_eps,b\n\r\nbad\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, 4, "the record starting on line 4: {e:?}");
        assert!(e.message.contains("index \"RU\\nT\""), "{e:?}");
        let e = parse(&format!(
            "{HEAD}\"2026-02-13\",RUT,2026,98.4,\"operating_eps\",\"example\nbank\"\n\n\nbad\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        let rows = parse(&format!(
            "{HEAD}2026-02-13,RUT,2026,98.4,operating_eps,b\n\"2026-02-13\",RUT,2027,1,operating_eps,b\n\n\n2026-02-13,RUT,2028,1,operating_eps,b\n"
        ))
        .unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 6]);
    }

    #[test]
    fn each_rule_names_the_line_and_the_problem() {
        let ok = "2026-02-13,RUT,2026,98.4,operating_eps,examplebank\n";
        let cases = [
            (
                "13/02/2026,RUT,2026,1,operating_eps,b\n",
                "as_of_date \"13/02/2026\"",
            ),
            ("2026-02-13,rut,2026,1,operating_eps,b\n", "index \"rut\""),
            (
                "2026-02-13,RUT,2026Q5,1,operating_eps,b\n",
                "period \"2026Q5\"",
            ),
            ("2026-02-13,RUT,FY26,1,operating_eps,b\n", "period \"FY26\""),
            ("2026-02-13,RUT,2026,n/a,operating_eps,b\n", "eps \"n/a\""),
            ("2026-02-13,RUT,2026,,operating_eps,b\n", "eps \"\""),
            (
                "2026-02-13,RUT,2026,1,Operating EPS,b\n",
                "kind \"Operating EPS\"",
            ),
            ("2026-02-13,RUT,2026,1,operating_eps,\n", "source \"\""),
            (
                "2026-02-13,RUT,2026,1,operating_eps,spdji_workbook\n",
                "reserved",
            ),
            ("2026-02-13,RUT,2026,1,operating_eps\n", "expected 6 fields"),
        ];
        for (bad, expected) in cases {
            let e = err(&format!("{ok}{bad}"));
            assert_eq!(e.line, 3, "{bad}");
            assert!(e.message.contains(expected), "{bad}: {}", e.message);
        }
        let dup = err(&format!("{ok}{ok}"));
        assert_eq!(dup.line, 3);
        assert!(
            dup.message.contains("duplicate of line 2"),
            "{}",
            dup.message
        );
    }

    #[test]
    fn header_is_required_and_checked() {
        let e = parse("date,index,period,eps,kind,source\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("header must be"), "{}", e.message);
        assert!(parse("").unwrap_err().message.contains("empty file"));
        assert_eq!(parse(HEAD).unwrap(), Vec::new(), "header only: no rows");
    }
}
