//! Parsing S&P DJI `sp-500-eps-est.xlsx` workbooks (Howard Silverblatt's "S&P 500 earnings and
//! estimate report") into EPS, P/E and growth rows.
//!
//! Rows and columns drift between editions (the final 2026 edition even starts with a 14-row
//! retirement notice), so nothing is read from a fixed cell: every block of sheet
//! `ESTIMATES&PEs` is found by its labels (text compared trimmed, upper-cased, spaces collapsed).
//!
//! * **As-of date**: the first date right of a column-A label `Data as of the close of:` (2019
//!   editions) or `Date` (2020 on), above the quarterly table. Never the file name: the final
//!   edition, named 2026-01-29, says 2026-01-30.
//! * **Quarterly table**: column-A labels `QUARTER` (stacked header rows), `ESTIMATES` and
//!   `ACTUALS`. Rows between `ESTIMATES` and `ACTUALS` are estimates (including the partly
//!   reported current quarter, labelled e.g. `12/31/2025 (46.5%)`); the contiguous dated rows
//!   after `ACTUALS` are actuals. Columns come from the stacked header: quarterly EPS under
//!   `OPERATING … PER SHR` / `AS REPORTED … PER SHR`, trailing-12-month EPS right of
//!   `12 MONTH EARNINGS PER SHARE`; the 12-month value on a 12/31 row is the calendar-year EPS.
//!   Quarter labels are strings or date serials; they are snapped to calendar quarter ends and
//!   must run back one quarter per row.
//! * **P/E block**: the row holding both `MIDCAP` and `SMALLCAP`; per index the first column
//!   headed `S&P 500` / `MIDCAP` / `SMALLCAP` (`YYYY EST` / `OPER P/E` below it), the `… 5YR`
//!   column (`GROWTH %`, percent units) and the PEG column; values on the first labelled row
//!   below (`Index`, `Index*` or `S&P 500`).
//!
//! Output per edition (`index`, `period`, `kind`): `SP500`, `2026` / `2026Q1`,
//! `operating_eps` / `reported_eps`; `SP500`/`SP400`/`SP600`, `2025` (the P/E's year),
//! `operating_pe` and `peg`; the same indices, `5Y`, `projected_growth_pct`; and from the
//! `SECTOR EPS` sheet (see [`super::sector`]) `SP400`/`SP600`, `2026`, `operating_eps` /
//! `reported_eps`.

use std::io::Cursor;

use calamine::{Data, Range, Reader, Xlsx};
use chrono::{Datelike, NaiveDate};

use super::cells::{Sheet, is_blank, norm_str, to_date};
pub use super::cells::{cell_name, date_label};
pub use super::row::{
    Edition, EpsRow, OPERATING_EPS, OPERATING_PE, PEG, PROJECTED_GROWTH_PCT, REPORTED_EPS,
};

/// The sheet every row comes from.
pub const SHEET: &str = "ESTIMATES&PEs";

/// A row of the quarterly table: `(row, (year, quarter), is_estimate)`.
type QuarterRow = (u32, (i32, u32), bool);

/// Parses a workbook's bytes. Errors name the sheet and cell where the layout was not as expected.
pub fn workbook(body: &[u8]) -> Result<Edition, String> {
    // calamine panics on some damaged files (a cell reference with more digits than a u32 holds
    // overflows its arithmetic in debug builds; the fuzz test found it): an error, not a crash.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_workbook(body))).unwrap_or_else(
        |panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!(
                "the workbook is damaged: the xlsx reader failed: {why}"
            ))
        },
    )
}

fn read_workbook(body: &[u8]) -> Result<Edition, String> {
    let mut wb =
        Xlsx::new(Cursor::new(body)).map_err(|e| format!("not a readable xlsx workbook: {e}"))?;
    let mut range = |wanted: &str| {
        let names = wb.sheet_names();
        let name = names
            .iter()
            .find(|n| norm_str(n) == norm_str(wanted))
            .cloned()
            .ok_or_else(|| format!("no sheet {wanted} (sheets: {})", names.join(", ")))?;
        super::cells::sheet_range(&mut wb, &name, wanted)
    };
    let mut edition = estimates_sheet(&range(SHEET)?)?;
    edition.rows.extend(super::sector::sector_sheet(&range(
        super::sector::SECTOR_SHEET,
    )?)?);
    Ok(edition)
}

/// Parses the `ESTIMATES&PEs` sheet (cached values, absolute 0-based positions).
pub fn estimates_sheet(range: &Range<Data>) -> Result<Edition, String> {
    let sheet = Sheet { name: SHEET, range };
    let (as_of_date, as_of_cell) = sheet.as_of()?;
    let mut rows = sheet.quarterly_table()?;
    rows.extend(sheet.pe_block()?);
    Ok(Edition {
        as_of_date,
        as_of_cell,
        rows,
    })
}

/// Calendar quarter of a date as `(year, 1..=4)`.
fn quarter_of(d: NaiveDate) -> (i32, u32) {
    (d.year(), (d.month() - 1) / 3 + 1)
}

impl Sheet<'_> {
    fn as_of(&self) -> Result<(NaiveDate, String), String> {
        let start = self.first_row();
        let quarter = self
            .find_a(start, |s| s == "QUARTER")
            .unwrap_or(self.last_row());
        for row in start..quarter {
            let Some(label) = self.text(row, 0) else {
                continue;
            };
            if !(label.starts_with("DATA AS OF THE CLOSE OF") || label == "DATE") {
                continue;
            }
            if let Some(col) = (1..=8).find(|c| !is_blank(self.get(row, *c)))
                && let Some(date) = to_date(self.get(row, col))
            {
                return Ok((date, self.at(row, col)));
            }
        }
        Err(format!(
            "{SHEET}: no as-of date (no 'Date' or 'Data as of the close of:' label with a date right of it in column A above the QUARTER table)"
        ))
    }

    /// The S&P 500's quarterly and yearly EPS: the table under the `QUARTER` header, its
    /// `ESTIMATES` rows then its `ACTUALS` rows, newest quarter first.
    fn quarterly_table(&self) -> Result<Vec<EpsRow>, String> {
        let est = self
            .find_a(self.first_row(), |s| s == "ESTIMATES")
            .ok_or_else(|| format!("{SHEET}: no 'ESTIMATES' label in column A"))?;
        let act = self.find_a(est + 1, |s| s == "ACTUALS").ok_or_else(|| {
            format!(
                "{SHEET}: no 'ACTUALS' label in column A below {}",
                self.at(est, 0)
            )
        })?;
        let head = (est.saturating_sub(12)..est)
            .rev()
            .find(|r| self.text(*r, 0).as_deref() == Some("QUARTER"))
            .ok_or_else(|| {
                format!(
                    "{SHEET}: no 'QUARTER' header in column A above {}",
                    self.at(est, 0)
                )
            })?;
        let [q_op, q_ar, y_op, y_ar] = self.quarter_columns(head, est)?;
        let quarters = self.quarter_rows(est, act)?;
        let mut out = Vec::new();
        for (row, (year, q), is_estimate) in quarters {
            let mut emit = |col: u32, period: String, kind: &'static str| -> Result<(), String> {
                if let Some(value) = self.number(row, col)? {
                    out.push(EpsRow {
                        index: "SP500".into(),
                        period,
                        kind,
                        value,
                        is_estimate,
                        origin: self.at(row, col),
                    });
                }
                Ok(())
            };
            emit(q_op, format!("{year}Q{q}"), OPERATING_EPS)?;
            emit(q_ar, format!("{year}Q{q}"), REPORTED_EPS)?;
            if q == 4 {
                emit(y_op, year.to_string(), OPERATING_EPS)?;
                emit(y_ar, year.to_string(), REPORTED_EPS)?;
            }
        }
        Ok(out)
    }

    /// The columns of quarterly operating and as-reported EPS, and of the yearly ones (right of
    /// `12 MONTH`), found by their headers in rows `head..est`.
    fn quarter_columns(&self, head: u32, est: u32) -> Result<[u32; 4], String> {
        let header = |col: u32| -> String {
            (head..est)
                .filter_map(|r| self.text(r, col))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let headers: Vec<(u32, String)> = (1..=self.last_col()).map(|c| (c, header(c))).collect();
        let missing = |what: &str| {
            format!(
                "{SHEET}: no column headed {what} in the table header (rows {}-{})",
                head + 1,
                est
            )
        };
        let ttm = headers
            .iter()
            .find(|(_, h)| h.contains("12 MONTH"))
            .map(|(c, _)| *c)
            .ok_or_else(|| missing("'12 MONTH EARNINGS PER SHARE'"))?;
        let quarterly = |prefix: &str| {
            headers
                .iter()
                .find(|(c, h)| {
                    *c < ttm && !h.contains("P/E") && h.starts_with(prefix) && h.contains("PER SHR")
                })
                .map(|(c, _)| *c)
                .ok_or_else(|| missing(&format!("'{prefix} … PER SHR'")))
        };
        let yearly = |word: &str| {
            headers
                .iter()
                .find(|(c, h)| *c >= ttm && h.contains(word))
                .map(|(c, _)| *c)
                .ok_or_else(|| missing(&format!("'{word}' right of '12 MONTH'")))
        };
        Ok([
            quarterly("OPERATING")?,
            quarterly("AS REPORTED")?,
            yearly("OPERATING")?,
            yearly("AS REPORTED")?,
        ])
    }

    /// `(row, (year, quarter), is_estimate)` of every dated row under `ESTIMATES` (row `est`)
    /// and `ACTUALS` (row `act`), checked to run back one quarter at a time.
    fn quarter_rows(&self, est: u32, act: u32) -> Result<Vec<QuarterRow>, String> {
        let mut quarters: Vec<QuarterRow> = Vec::new();
        for row in est + 1..act {
            let label = self.get(row, 0);
            if is_blank(label) {
                continue; // the unlabelled "P/E on last quarter-end price" row
            }
            let date = to_date(label).ok_or_else(|| {
                format!(
                    "{}: estimate row label {label:?} is not a quarter date",
                    self.at(row, 0)
                )
            })?;
            quarters.push((row, quarter_of(date), true));
        }
        let mut row = act + 1;
        while let Some(date) = to_date(self.get(row, 0)) {
            quarters.push((row, quarter_of(date), false));
            row += 1;
        }
        if !quarters.iter().any(|q| !q.2) {
            return Err(format!(
                "{}: no dated quarter rows below 'ACTUALS'",
                self.at(act, 0)
            ));
        }
        for pair in quarters.windows(2) {
            let ((r1, (y1, q1), _), (r2, (y2, q2), _)) = (pair[0], pair[1]);
            if y1 * 4 + q1 as i32 - 1 != y2 * 4 + q2 as i32 {
                return Err(format!(
                    "{} ({y1}Q{q1}) is not followed by the previous quarter: {} is {y2}Q{q2}",
                    self.at(r1, 0),
                    self.at(r2, 0)
                ));
            }
        }
        Ok(quarters)
    }

    fn pe_block(&self) -> Result<Vec<EpsRow>, String> {
        let names = |row: u32| -> Vec<(u32, String)> {
            (0..=self.last_col())
                .filter_map(|c| self.text(row, c).map(|t| (c, t)))
                .collect()
        };
        let head = (self.first_row()..=self.last_row())
            .find(|r| {
                let n = names(*r);
                n.iter().any(|(_, t)| t == "MIDCAP") && n.iter().any(|(_, t)| t == "SMALLCAP")
            })
            .ok_or_else(|| {
                format!("{SHEET}: no P/E header row with both 'MIDCAP' and 'SMALLCAP'")
            })?;
        let header = names(head);
        let data = (head + 3..head + 8)
            .find(|r| !is_blank(self.get(*r, 0)))
            .ok_or_else(|| {
                format!(
                    "{SHEET}: no labelled row below the P/E header {}",
                    self.at(head, 0)
                )
            })?;
        let label = self.text(data, 0).unwrap_or_default();
        if !["INDEX", "INDEX*", "S&P 500"].contains(&label.as_str()) {
            return Err(format!(
                "{}: expected the index-level row ('Index', 'Index*' or 'S&P 500') below the P/E header, found {:?}",
                self.at(data, 0),
                self.get(data, 0)
            ));
        }
        let mut out = Vec::new();
        for (index, name) in [
            ("SP500", "S&P 500"),
            ("SP400", "MIDCAP"),
            ("SP600", "SMALLCAP"),
        ] {
            self.pe_index(head, data, &header, (index, name), &mut out)?;
        }
        Ok(out)
    }

    /// One index's P/E, growth and PEG cells of the block (header row `head`, values row
    /// `data`): checks the labels under its column and adds a row per value.
    fn pe_index(
        &self,
        head: u32,
        data: u32,
        header: &[(u32, String)],
        (index, name): (&str, &str),
        out: &mut Vec<EpsRow>,
    ) -> Result<(), String> {
        let col_of = |wanted: &str, after: u32| {
            header
                .iter()
                .find(|(c, t)| *c >= after && t == wanted)
                .map(|(c, _)| *c)
        };
        let not_found = |what: &str| {
            format!(
                "{SHEET}: no '{what}' column in the P/E header row {}",
                head + 1
            )
        };
        let pe = col_of(name, 0).ok_or_else(|| not_found(name))?;
        let growth =
            col_of(&format!("{name} 5YR"), 0).ok_or_else(|| not_found(&format!("{name} 5YR")))?;
        let peg = col_of(name, growth + 1);
        let year_label = self.text(head + 1, pe).unwrap_or_default();
        let year = year_label
            .strip_suffix("EST")
            .map(str::trim)
            .filter(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                format!(
                    "{}: expected 'YYYY EST' under {name}, found {year_label:?}",
                    self.at(head + 1, pe)
                )
            })?
            .to_string();
        for (col, expected) in [(pe, "OPER P/E"), (growth, "GROWTH %")] {
            if self.text(head + 2, col).as_deref() != Some(expected) {
                return Err(format!(
                    "{}: expected '{expected}' under {name}, found {:?}",
                    self.at(head + 2, col),
                    self.get(head + 2, col)
                ));
            }
        }
        let mut cols = vec![
            (pe, year.clone(), OPERATING_PE),
            (growth, "5Y".to_string(), PROJECTED_GROWTH_PCT),
        ];
        if let Some(peg) = peg {
            cols.push((peg, year.clone(), PEG));
        }
        for (col, period, kind) in cols {
            if let Some(value) = self.number(data, col)? {
                out.push(EpsRow {
                    index: index.into(),
                    period,
                    kind,
                    value,
                    is_estimate: true,
                    origin: self.at(data, col),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    fn archive() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream/eps_archive")
    }

    fn body(edition: &str) -> Vec<u8> {
        std::fs::read(archive().join(format!("sp-500-eps-est_asof_{edition}.xlsx"))).unwrap()
    }

    fn sheet_of(edition: &str) -> Range<Data> {
        let mut wb = Xlsx::new(Cursor::new(body(edition))).unwrap();
        wb.worksheet_range(SHEET).unwrap()
    }

    const FINAL: &str = "2026-01-29_final-edition";

    /// (index, period, kind) → (value, is_estimate, origin)
    type Values = BTreeMap<(String, String, String), (f64, bool, String)>;

    fn values(e: &Edition) -> Values {
        e.rows
            .iter()
            .map(|r| {
                (
                    (r.index.clone(), r.period.clone(), r.kind.to_string()),
                    (r.value, r.is_estimate, r.origin.clone()),
                )
            })
            .collect()
    }

    fn get(v: &Values, index: &str, period: &str, kind: &str) -> (f64, bool, String) {
        v.get(&(index.into(), period.into(), kind.into()))
            .cloned()
            .unwrap_or_else(|| panic!("no {index} {period} {kind}"))
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn final_edition_as_of_is_the_sheet_date_not_the_file_name() {
        let e = workbook(&body(FINAL)).unwrap();
        assert_eq!(e.as_of_date, date("2026-01-30"));
        assert_eq!(e.as_of_cell, "ESTIMATES&PEs!D127");
        let v = values(&e);
        let at = |p: &str, k: &str| get(&v, "SP500", p, k);
        assert_eq!(
            at("2026", OPERATING_EPS),
            (310.24, true, "ESTIMATES&PEs!I138".into())
        );
        assert_eq!(at("2025", OPERATING_EPS).0, 265.42);
        assert!(
            at("2025", OPERATING_EPS).1,
            "CY2025 still an estimate in Jan 2026"
        );
        assert_eq!(at("2025", REPORTED_EPS).0, 246.47335675548686);
        assert_eq!(
            at("2024", OPERATING_EPS),
            (233.36, false, "ESTIMATES&PEs!I148".into())
        );
        assert_eq!(
            at("2024", REPORTED_EPS).0,
            210.17000000000002,
            "as cached in J148"
        );
        assert_eq!(at("2026Q4", OPERATING_EPS).0, 83.31);
        assert_eq!(at("2026Q4", REPORTED_EPS).0, 81.37810834589327);
        assert_eq!(
            at("2025Q4", OPERATING_EPS),
            (71.87, true, "ESTIMATES&PEs!C142".into())
        );
        assert_eq!(
            at("2025Q3", OPERATING_EPS),
            (72.03, false, "ESTIMATES&PEs!C145".into())
        );
        assert_eq!(at("2025Q3", REPORTED_EPS).0, 63.52);
        assert_eq!(
            at("1988Q1", OPERATING_EPS),
            (5.48, false, "ESTIMATES&PEs!C295".into()),
            "actuals back to 1988"
        );
        let pe = |i: &str, p: &str, k: &str| get(&v, i, p, k).0;
        assert_eq!(pe("SP500", "2025", OPERATING_PE), 25.79);
        assert_eq!(pe("SP500", "2025", PEG), 1.4898530170142739);
        assert_eq!(pe("SP400", "2025", OPERATING_PE), 20.27);
        assert_eq!(pe("SP400", "5Y", PROJECTED_GROWTH_PCT), 15.1232107678358);
        assert_eq!(pe("SP600", "2025", OPERATING_PE), 22.0);
        assert_eq!(pe("SP600", "5Y", PROJECTED_GROWTH_PCT), 13.0288043783294);
        assert_eq!(
            get(&v, "SP600", "2025", OPERATING_PE).2,
            "ESTIMATES&PEs!K71"
        );
    }

    #[test]
    fn a_2019_edition_with_the_old_as_of_label() {
        let e = workbook(&body("2019-01-03")).unwrap();
        assert_eq!(
            (e.as_of_date, e.as_of_cell.as_str()),
            (date("2019-01-03"), "ESTIMATES&PEs!D117")
        );
        let v = values(&e);
        let at = |p: &str, k: &str| get(&v, "SP500", p, k);
        assert_eq!(
            at("2019", OPERATING_EPS),
            (171.04, true, "ESTIMATES&PEs!I128".into())
        );
        assert_eq!(at("2019", REPORTED_EPS).0, 156.38348724708925);
        assert_eq!(
            at("2018", OPERATING_EPS),
            (156.96, true, "ESTIMATES&PEs!I132".into())
        );
        assert_eq!(
            at("2017", OPERATING_EPS),
            (124.51000000000002, false, "ESTIMATES&PEs!I138".into())
        );
        assert_eq!(at("2017", REPORTED_EPS).0, 109.88);
        assert_eq!(at("1988", OPERATING_EPS).0, 24.12);
        assert_eq!(
            at("2018Q3", OPERATING_EPS),
            (41.38, false, "ESTIMATES&PEs!C135".into())
        );
        assert_eq!(
            at("2017Q4", REPORTED_EPS).0,
            26.96,
            "label is a date serial"
        );
        assert_eq!(get(&v, "SP400", "2019", OPERATING_PE).0, 13.51);
        assert_eq!(
            get(&v, "SP400", "5Y", PROJECTED_GROWTH_PCT).0,
            12.6733605588238
        );
        assert_eq!(get(&v, "SP600", "2019", OPERATING_PE).0, 14.56);
        assert_eq!(
            get(&v, "SP600", "5Y", PROJECTED_GROWTH_PCT).0,
            14.0174751328408
        );
    }

    #[test]
    fn mid_2023_and_mid_2021_editions() {
        let v = values(&workbook(&body("2023-05-31")).unwrap());
        let at = |p: &str, k: &str| get(&v, "SP500", p, k);
        assert_eq!(
            at("2024", OPERATING_EPS),
            (244.7, true, "ESTIMATES&PEs!I124".into())
        );
        assert_eq!(
            at("2023Q1", OPERATING_EPS),
            (52.8, true, "ESTIMATES&PEs!C131".into())
        );
        assert_eq!(
            at("2022Q4", OPERATING_EPS),
            (50.37, false, "ESTIMATES&PEs!C134".into())
        );
        assert_eq!(at("2022", REPORTED_EPS).0, 172.75);
        assert_eq!(get(&v, "SP400", "2023", OPERATING_PE).0, 14.44);
        assert_eq!(get(&v, "SP600", "2023", OPERATING_PE).0, 14.61);
        // 2021-07-15 mislabels Q4 2018 as 12/30/2018: snapped, so CY2018 is still there.
        let v = values(&workbook(&body("2021-07-15")).unwrap());
        assert_eq!(
            get(&v, "SP500", "2018", OPERATING_EPS),
            (151.6, false, "ESTIMATES&PEs!I146".into())
        );
        // 2021-01-21 has stale "(*index level data on 12/31/19" rows below: not taken.
        let v = values(&workbook(&body("2021-01-21")).unwrap());
        assert_eq!(get(&v, "SP400", "2021", OPERATING_PE).0, 20.93);
        assert_eq!(
            get(&v, "SP600", "5Y", PROJECTED_GROWTH_PCT).0,
            13.0414732381801
        );
    }

    /// Every value of every edition equals the independent openpyxl reference extractor's.
    #[test]
    fn all_13_editions_match_the_reference_extractor_exactly() {
        let reference = include_str!("../../../tests/fixtures/bodies/eps/extract_py_reference.csv");
        let mut expected: BTreeMap<NaiveDate, Values> = BTreeMap::new();
        for line in reference.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let (period, kind) = match f[3] {
                "eps_operating_q" | "eps_as_reported_q" => {
                    let d = date(f[2]);
                    let (y, q) = quarter_of(d);
                    let kind = if f[3] == "eps_operating_q" {
                        OPERATING_EPS
                    } else {
                        REPORTED_EPS
                    };
                    (format!("{y}Q{q}"), kind)
                }
                "eps_operating_cy" => (f[2].to_string(), OPERATING_EPS),
                "eps_as_reported_cy" => (f[2].to_string(), REPORTED_EPS),
                "pe_operating_est" => (f[2].to_string(), OPERATING_PE),
                "proj_annual_growth_pct" => (f[2].to_string(), PROJECTED_GROWTH_PCT),
                "peg" => (f[2].to_string(), PEG),
                other => panic!("unexpected kind {other}"),
            };
            expected.entry(date(f[0])).or_default().insert(
                (f[1].to_string(), period, kind.to_string()),
                (
                    f[4].parse().unwrap(),
                    f[5] == "true",
                    format!("{}!{}", f[6], f[7]),
                ),
            );
        }
        assert_eq!(expected.len(), 13);
        let mut files: Vec<_> = std::fs::read_dir(archive())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut total = 0;
        for path in files {
            let e = workbook(&std::fs::read(&path).unwrap()).unwrap();
            let want = expected
                .remove(&e.as_of_date)
                .expect("an edition the reference has");
            assert_eq!(
                e.rows.len(),
                want.len(),
                "{path:?}: no duplicate keys, same row count"
            );
            assert_eq!(values(&e), want, "{path:?}");
            total += e.rows.len();
        }
        assert!(expected.is_empty());
        assert_eq!(
            total,
            4727 + 753,
            "ESTIMATES&PEs + SECTOR EPS (S&P 400/600)"
        );
    }

    /// A copy of the sheet with blank rows inserted before `at_row` and blank columns before `at_col`.
    fn shifted(r: &Range<Data>, at_row: u32, rows: u32, at_col: u32, cols: u32) -> Range<Data> {
        let (end_r, end_c) = r.end().unwrap();
        let mut out = Range::new((0, 0), (end_r + rows, end_c + cols));
        for (row, col, v) in r.used_cells() {
            let (row, col) = (row as u32, col as u32);
            let row = if row >= at_row { row + rows } else { row };
            let col = if col >= at_col { col + cols } else { col };
            out.set_value((row, col), v.clone());
        }
        out
    }

    #[test]
    fn rows_and_columns_moving_changes_nothing_but_the_origins() {
        let original = estimates_sheet(&sheet_of(FINAL)).unwrap();
        // 7 rows inserted at the top, 2 columns inserted before E (table's F..J, P/E's G..M move).
        let moved = estimates_sheet(&shifted(&sheet_of(FINAL), 0, 7, 4, 2)).unwrap();
        assert_eq!(moved.as_of_date, original.as_of_date);
        assert_eq!(moved.as_of_cell, "ESTIMATES&PEs!D134", "D127 moved 7 down");
        let strip = |e: &Edition| {
            let mut v = values(e);
            v.values_mut().for_each(|x| x.2.clear());
            v
        };
        assert_eq!(strip(&moved), strip(&original));
        assert_eq!(
            get(&values(&moved), "SP500", "2026", OPERATING_EPS).2,
            "ESTIMATES&PEs!K145",
            "I138 → K145"
        );
    }

    fn broken(edit: impl FnOnce(&mut Range<Data>)) -> String {
        let mut r = sheet_of(FINAL);
        edit(&mut r);
        match estimates_sheet(&r) {
            Ok(e) => panic!("still parsed: as of {} from {}", e.as_of_date, e.as_of_cell),
            Err(e) => e,
        }
    }

    fn text(s: &str) -> Data {
        Data::String(s.into())
    }

    #[test]
    fn label_drift_is_an_error_naming_the_label_or_cell() {
        // Cells are 0-based here: A137 = (136, 0).
        let e = broken(|r| r.set_value((136, 0), text("ESTIMATE")));
        assert!(e.contains("no 'ESTIMATES' label"), "{e}");
        let e = broken(|r| r.set_value((143, 0), text("ACTUAL")));
        assert!(
            e.contains("no 'ACTUALS' label in column A below ESTIMATES&PEs!A137"),
            "{e}"
        );
        let e = broken(|r| r.set_value((126, 0), text("Day")));
        assert!(e.contains("no as-of date"), "{e}");
        let e = broken(|r| r.set_value((139, 0), text("Q2 2026")));
        assert!(
            e.contains("ESTIMATES&PEs!A140") && e.contains("not a quarter date"),
            "{e}"
        );
        let e = broken(|r| r.set_value((145, 0), text("3/31/2025")));
        assert!(
            e.contains("ESTIMATES&PEs!A145 (2025Q3) is not followed by the previous quarter: ESTIMATES&PEs!A146 is 2025Q1"),
            "{e}"
        );
        let e = broken(|r| r.set_value((137, 2), text("n/a")));
        assert!(e.contains("ESTIMATES&PEs!C138: expected a number"), "{e}");
        let e = broken(|r| r.set_value((131, 8), text("12 MTH EPS")));
        assert!(e.contains("'12 MONTH EARNINGS PER SHARE'"), "{e}");
        let e = broken(|r| r.set_value((69, 6), text("P/E")));
        assert!(
            e.contains("ESTIMATES&PEs!G70: expected 'OPER P/E' under MIDCAP"),
            "{e}"
        );
        let e = broken(|r| r.set_value((68, 10), text("FY2025")));
        assert!(
            e.contains("ESTIMATES&PEs!K69: expected 'YYYY EST' under SMALLCAP"),
            "{e}"
        );
        let e = broken(|r| r.set_value((70, 0), text("Communication Services")));
        assert!(
            e.contains("ESTIMATES&PEs!A71: expected the index-level row"),
            "{e}"
        );
        // Renamed P/E column: the PEG column (also headed MIDCAP) is not taken for it.
        let e = broken(|r| r.set_value((67, 6), text("MID CAP")));
        assert!(
            e.contains("ESTIMATES&PEs!I69: expected 'YYYY EST' under MIDCAP, found \"PEG\""),
            "{e}"
        );
        let e = broken(|r| {
            for col in [10, 12] {
                r.set_value((67, col), text("SMALL CAP"));
            }
        });
        assert!(
            e.contains("no P/E header row with both 'MIDCAP' and 'SMALLCAP'"),
            "{e}"
        );
    }

    #[test]
    fn not_a_workbook_or_no_estimates_sheet() {
        let full = body(FINAL);
        let e = workbook(&full[..full.len() / 2]).unwrap_err();
        assert!(e.starts_with("not a readable xlsx workbook"), "{e}");
        let e = workbook(b"<html>Page not found</html>").unwrap_err();
        assert!(e.starts_with("not a readable xlsx workbook"), "{e}");
    }

    #[test]
    fn quarter_labels_and_cell_names() {
        assert_eq!(date_label("12/31/2025 (46.5%)"), Some(date("2025-12-31")));
        assert_eq!(date_label("6/30/2025 (Prelim.)"), Some(date("2025-06-30")));
        assert_eq!(date_label(" 9/30/2019  "), Some(date("2019-09-30")));
        assert_eq!(date_label("09/30/2023"), Some(date("2023-09-30")));
        assert_eq!(date_label("2025 EST"), None);
        assert_eq!(date_label("13/31/2025"), None);
        assert_eq!(date_label("1/2/25"), None);
        assert_eq!(cell_name(126, 3), "D127");
        assert_eq!(cell_name(0, 25), "Z1");
        assert_eq!(cell_name(0, 26), "AA1");
    }
}
