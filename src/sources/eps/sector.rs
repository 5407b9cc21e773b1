//! The workbook's `SECTOR EPS` sheet: calendar-year operating and as-reported EPS of the
//! S&P 400 (`SP400`) and S&P 600 (`SP600`). (The S&P 500's come from `ESTIMATES&PEs`; the two
//! agree on every shared value of the 13 known editions.)
//!
//! Found by labels, like the main sheet: `Estimates:` in column A of the first rows with the
//! first estimated quarter end right of it (`12/31/2025` … `and forward`); blocks titled
//! `OPERATING EARNINGS PER SHARE …` / `AS REPORTED EARNINGS PER SHARE …` in column A, each with an
//! `INDEX NAME` header row whose annual columns read `2025 EPS` (also spelled `2019EPS`,
//! `2018  EPS`, `2021E EPS`), and index rows `S&P 400` / `S&P 600`. A year is an estimate when
//! its December 31 is on or after the `Estimates:` date. Blank cells (as-reported estimates of
//! the two indices are not published) give no row.

use std::collections::HashSet;

use calamine::{Data, Range};
use chrono::NaiveDate;

use super::cells::{Sheet, is_blank, to_date};
use super::row::{EpsRow, OPERATING_EPS, REPORTED_EPS};

/// The sheet's name.
pub const SECTOR_SHEET: &str = "SECTOR EPS";

/// `2025` from an annual EPS header (`2025 EPS`, `2019EPS`, `2021E EPS`; already normalised).
fn year_eps(label: &str) -> Option<i32> {
    let rest = label.strip_suffix("EPS")?.trim_end();
    let rest = rest.strip_suffix('E').unwrap_or(rest).trim_end();
    (rest.len() == 4 && rest.bytes().all(|b| b.is_ascii_digit()))
        .then(|| rest.parse().ok())
        .flatten()
}

/// The first day the sheet's values are estimates: the date right of its `Estimates:` label.
fn estimates_from(sheet: &Sheet<'_>, first: u32) -> Result<NaiveDate, String> {
    let est_row = (first..=first + 10)
        .find(|r| {
            sheet
                .text(*r, 0)
                .is_some_and(|s| s.starts_with("ESTIMATES:"))
        })
        .ok_or_else(|| {
            format!("{SECTOR_SHEET}: no 'Estimates:' label in column A of the first rows")
        })?;
    (1..=8)
        .map(|c| sheet.get(est_row, c))
        .find(|v| !is_blank(v))
        .and_then(to_date)
        .ok_or_else(|| format!("{}: no date right of 'Estimates:'", sheet.at(est_row, 0)))
}

/// Both indices must have operating EPS: otherwise the sheet's layout is not the one expected.
fn both_indices_found(out: &[EpsRow]) -> Result<(), String> {
    for index in ["SP400", "SP600"] {
        if !out
            .iter()
            .any(|r| r.index == index && r.kind == OPERATING_EPS)
        {
            return Err(format!(
                "{SECTOR_SHEET}: no operating EPS for {index} (labels 'OPERATING EARNINGS PER SHARE', 'INDEX NAME' with 'YYYY EPS' columns, and an 'S&P {}' row expected)",
                &index[2..]
            ));
        }
    }
    Ok(())
}

/// Parses the sheet's S&P 400 and S&P 600 annual EPS.
pub fn sector_sheet(range: &Range<Data>) -> Result<Vec<EpsRow>, String> {
    let sheet = Sheet {
        name: SECTOR_SHEET,
        range,
    };
    let first = sheet.first_row();
    let est_from = estimates_from(&sheet, first)?;
    let mut kind = None;
    let mut years: Vec<(u32, i32)> = Vec::new();
    let mut out = Vec::new();
    let mut keys = HashSet::new();
    for row in first..=sheet.last_row() {
        let Some(label) = sheet.text(row, 0) else {
            continue;
        };
        if label == "INDEX NAME" {
            years = (1..=sheet.last_col())
                .filter_map(|c| {
                    sheet
                        .text(row, c)
                        .and_then(|t| year_eps(&t))
                        .map(|y| (c, y))
                })
                .collect();
        }
        if label.contains("EARNINGS PER SHARE") {
            kind = if label.starts_with("OPERATING") {
                Some(OPERATING_EPS)
            } else if label.starts_with("AS REPORTED") {
                Some(REPORTED_EPS)
            } else {
                None
            };
        }
        let index = match label.as_str() {
            "S&P 400" => "SP400",
            "S&P 600" => "SP600",
            _ => continue,
        };
        let Some(kind) = kind else { continue };
        for &(col, year) in &years {
            let Some(value) = sheet.number(row, col)? else {
                continue;
            };
            if !keys.insert((index, year, kind)) {
                return Err(format!(
                    "{}: a second {year} {kind} value for {index}",
                    sheet.at(row, col)
                ));
            }
            let dec31 = NaiveDate::from_ymd_opt(year, 12, 31).expect("valid");
            out.push(EpsRow {
                index: index.into(),
                period: year.to_string(),
                kind,
                value,
                is_estimate: dec31 >= est_from,
                origin: sheet.at(row, col),
            });
        }
    }
    both_indices_found(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use calamine::{Reader, Xlsx};

    use super::*;

    fn final_sheet() -> Range<Data> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "tests/fixtures/upstream/eps_archive/sp-500-eps-est_asof_2026-01-29_final-edition.xlsx",
        );
        let mut wb = Xlsx::new(Cursor::new(std::fs::read(path).unwrap())).unwrap();
        wb.worksheet_range(SECTOR_SHEET).unwrap()
    }

    fn find<'a>(rows: &'a [EpsRow], index: &str, period: &str, kind: &str) -> &'a EpsRow {
        rows.iter()
            .find(|r| r.index == index && r.period == period && r.kind == kind)
            .unwrap_or_else(|| panic!("no {index} {period} {kind}"))
    }

    #[test]
    fn final_edition_small_and_mid_cap_annual_eps() {
        let rows = sector_sheet(&final_sheet()).unwrap();
        let at = |i, p, k| {
            let r = find(&rows, i, p, k);
            (r.value, r.is_estimate, r.origin.as_str())
        };
        assert_eq!(
            at("SP400", "2025", OPERATING_EPS),
            (163.04, true, "SECTOR EPS!DJ21")
        );
        assert_eq!(
            at("SP400", "2026", OPERATING_EPS),
            (203.08, true, "SECTOR EPS!DL21")
        );
        assert_eq!(
            at("SP400", "2024", OPERATING_EPS),
            (148.36, false, "SECTOR EPS!DH21")
        );
        assert_eq!(
            at("SP600", "2025", OPERATING_EPS),
            (66.72, true, "SECTOR EPS!DJ34")
        );
        assert_eq!(
            at("SP600", "2026", OPERATING_EPS),
            (96.39, true, "SECTOR EPS!DL34")
        );
        assert_eq!(
            at("SP600", "2024", OPERATING_EPS),
            (61.86, false, "SECTOR EPS!DH34")
        );
        assert!(
            rows.iter().all(|r| r.index != "SP500"),
            "S&P 500 comes from ESTIMATES&PEs"
        );
        assert!(
            !rows.iter().any(|r| r.kind == REPORTED_EPS && r.is_estimate),
            "no as-reported estimates are published for the 400/600"
        );
    }

    #[test]
    fn annual_headers_and_label_drift() {
        assert_eq!(year_eps("2025 EPS"), Some(2025));
        assert_eq!(year_eps("2019EPS"), Some(2019));
        assert_eq!(year_eps("2021E EPS"), Some(2021));
        assert_eq!(year_eps("2025 P/E"), None);
        assert_eq!(year_eps("2008 Q1"), None);
        let mut r = final_sheet();
        r.set_value((3, 0), Data::String("Forecasts:".into()));
        let e = sector_sheet(&r).unwrap_err();
        assert!(e.contains("no 'Estimates:' label"), "{e}");
        let mut r = final_sheet();
        r.set_value((33, 0), Data::String("S&P SmallCap 600".into()));
        let e = sector_sheet(&r).unwrap_err();
        assert!(e.contains("no operating EPS for SP600"), "{e}");
        let mut r = final_sheet();
        r.set_value((20, 113), Data::String("n/a".into()));
        let e = sector_sheet(&r).unwrap_err();
        assert!(e.contains("SECTOR EPS!DJ21: expected a number"), "{e}");
    }
}
