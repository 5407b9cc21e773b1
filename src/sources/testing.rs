//! Helpers shared by the connectors' unit tests.

use chrono::NaiveDate;

/// A date written `YYYY-MM-DD` (panics otherwise: test input).
pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}
