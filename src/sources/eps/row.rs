//! What a workbook edition yields: its values ([`EpsRow`]) and the names of their kinds, shared by
//! the sheets' parsers ([`super::parse`], [`super::sector`]); and the row the connector lands
//! in `staging.eps_estimates` ([`EstimateRow`]), from workbooks and vendor files alike.

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

crate::staging_row! {
    /// One row of `staging.eps_estimates`: one value of one workbook edition or one line of a
    /// vendor file.
    #[derive(Debug, Clone, PartialEq)]
    pub struct EstimateRow in "eps_estimates" keys [as_of_date, index, period, kind, source] {
        /// The date the value is as of: the workbook edition's date, or the date a vendor made
        /// the estimate.
        pub as_of_date: NaiveDate,
        /// `SP500`, `SP400`, `SP600`, or a vendor file's index (e.g. `RUT`).
        pub index: String,
        /// `2026` (calendar year), `2026Q1` (calendar quarter), `5Y` (projected growth), or a
        /// vendor file's `NTM` / `LTM` (next / last twelve months).
        pub period: String,
        /// What the value is: `operating_eps`, `reported_eps`, `operating_pe`, `peg`,
        /// `projected_growth_pct`, or a vendor file's kind.
        pub kind: String,
        /// The value: $ per index share for EPS kinds, a ratio for `operating_pe` and `peg`,
        /// percent for `projected_growth_pct`.
        pub value: f64,
        /// Whether it is an estimate rather than a reported actual (vendor rows always are).
        pub is_estimate: bool,
        /// `spdji_workbook` for rows of S&P DJI workbooks, else the vendor named in the file.
        pub source: String,
        /// The name of the file the row was read from (workbook or vendor CSV).
        pub file: String,
        /// Where in the file: sheet and cell (`ESTIMATES&PEs!I142`), or `line <n>` of a vendor
        /// CSV.
        pub origin: String,
    }
}
