//! What a workbook edition yields: its values ([`EpsRow`]) and the names of their kinds, shared by
//! the sheets' parsers ([`super::parse`], [`super::sector`]).

use chrono::NaiveDate;

/// Operating EPS ($ per index share).
pub const OPERATING_EPS: &str = "operating_eps";
/// As-reported (GAAP) EPS ($ per index share).
pub const REPORTED_EPS: &str = "reported_eps";
/// Estimated operating P/E for the year in `period`.
pub const OPERATING_PE: &str = "operating_pe";
/// Projected annual EPS growth over five years, in percent.
pub const PROJECTED_GROWTH_PCT: &str = "projected_growth_pct";
/// P/E divided by projected growth.
pub const PEG: &str = "peg";

/// One value of one edition.
#[derive(Debug, Clone, PartialEq)]
pub struct EpsRow {
    /// `SP500`, `SP400`, `SP600` (or a vendor's index).
    pub index: String,
    /// `2026` (calendar year), `2026Q1` (calendar quarter) or `5Y`.
    pub period: String,
    /// What the value is (see the constants of this module).
    pub kind: &'static str,
    /// The value.
    pub value: f64,
    /// Whether it is an estimate rather than a reported actual.
    pub is_estimate: bool,
    /// Where it was read: `ESTIMATES&PEs!I142`.
    pub origin: String,
}

/// One parsed workbook edition.
#[derive(Debug, Clone, PartialEq)]
pub struct Edition {
    /// The date the edition is as of.
    pub as_of_date: NaiveDate,
    /// The cell the date was read from.
    pub as_of_cell: String,
    /// Its values.
    pub rows: Vec<EpsRow>,
}
