//! Parsers of files: vendor CSVs, the S&P DJI EPS workbook (bytes, sheet XML, cells), the
//! recordings' meta files, and model-file headers.

use std::io::{Read, Write};

use calamine::{Cell, Data, Range, Reader, Xlsx};

use super::*;
use crate::sources::{eps, futures};

/// The oldest (smallest) archived S&P DJI workbook: real bytes.
const WORKBOOK: &str = "upstream/eps_archive/sp-500-eps-est_asof_2019-01-03.xlsx";

/// Vendor CSV seeds rebuilt from real data (no vendor file is recorded): the CME settlements of
/// 2026-09-14 as a futures vendor file, the workbook's values as an EPS vendor file.
fn vendor_seeds() -> Vec<Vec<u8>> {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 9, 14).unwrap();
    let cme = read(
        "upstream/www.cmegroup.com/CmeWS_mvc_Settlements_Futures_Settlements_305_FUT--tradeDate=09_2F14_2F2026.body.json",
    );
    let mut fut = String::from("trade_date,contract,settle,volume,open_interest\n");
    for s in futures::parse::cme_settlements(&cme, day).expect("real body") {
        let n = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        fut += &format!(
            "{},{},{},{},{}\n",
            s.date,
            s.contract,
            s.settle,
            n(s.volume),
            n(s.open_interest)
        );
    }
    let edition = eps::parse::workbook(&read(WORKBOOK)).expect("real workbook");
    let mut eps_csv = eps::vendor::HEADER.join(",") + "\n";
    for r in edition.rows.iter().filter(|r| r.period != "5Y").take(40) {
        eps_csv += &format!(
            "{},{},{},{},{},spdji_copy\n",
            edition.as_of_date, r.index, r.period, r.value, r.kind
        );
    }
    vec![fut.into_bytes(), eps_csv.into_bytes()]
}

#[test]
fn fuzz_vendor_csvs() {
    fuzz(256, vendor_seeds(), |body| {
        let text = String::from_utf8_lossy(body);
        match futures::parse::vendor_csv(&text) {
            Ok(rows) => {
                if let Some(r) = rows.iter().find(|r| !(50.0..=101.0).contains(&r.settle)) {
                    return Err(format!("settle {} landed", r.settle));
                }
                finite(
                    "vendor",
                    rows.iter().flat_map(|r| [r.volume, r.open_interest]),
                )?;
            }
            Err((line, m)) => named("futures", Some(line), &m)?,
        }
        match eps::vendor::parse(&text) {
            Ok(rows) => finite("eps vendor", rows.iter().map(|r| Some(r.eps)))?,
            Err(e) => named("eps", Some(e.line), &e.message)?,
        }
        Ok(())
    });
}

fn check_edition(result: Result<eps::parse::Edition, String>) -> Result<(), String> {
    match result {
        Ok(e) => finite("eps", e.rows.iter().map(|r| Some(r.value))),
        Err(m) => named("eps", None, &m),
    }
}

/// The workbook's bytes, mutated (most mutations break the zip: its errors are tested too).
#[test]
fn fuzz_eps_workbook_bytes() {
    fuzz(64, vec![read(WORKBOOK)], |body| {
        check_edition(eps::parse::workbook(body))
    });
}

/// The workbook unzipped once; each case mutates one XML part (a sheet, the shared strings, the
/// workbook) and zips it again (stored, uncompressed), so the mutations reach calamine's XML
/// reading and our cell reading instead of failing at the zip's checksums.
#[test]
fn fuzz_eps_workbook_xml() {
    let parts = workbook_parts();
    let xml: Vec<usize> = (0..parts.len())
        .filter(|i| {
            let n = &parts[*i].0;
            n.ends_with("sharedStrings.xml") || n.ends_with("workbook.xml") || n.contains("sheet")
        })
        .collect();
    let n = cases(48);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (any::<Index>(), prop::collection::vec(mutation(), 1..4));
    runner
        .run(&strategy, |(part, muts)| {
            let target = xml[part.index(xml.len())];
            let mut parts = parts.clone();
            muts.iter().for_each(|m| apply(&mut parts[target].1, m));
            let body = zipped(&parts);
            check_edition(eps::parse::workbook(&body)).map_err(TestCaseError::fail)
        })
        .unwrap();
}

/// The real workbook's parts (name, bytes), unzipped.
fn workbook_parts() -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(read(WORKBOOK))).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().unwrap().into_owned(), bytes)
        })
        .collect()
}

/// `parts` zipped again, stored (uncompressed).
fn zipped(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in parts {
        out.start_file(name.as_str(), stored).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// The real workbook with `row` added at the end of every worksheet's cells.
fn workbook_with_row(row: &str) -> Vec<u8> {
    let mut parts = workbook_parts();
    let mut changed = 0;
    for (name, bytes) in &mut parts {
        let text = String::from_utf8_lossy(bytes);
        if name.contains("worksheets/sheet") && text.contains("</sheetData>") {
            *bytes = text
                .replace("</sheetData>", &format!("{row}</sheetData>"))
                .into_bytes();
            changed += 1;
        }
    }
    assert!(changed > 0);
    zipped(&parts)
}

/// Two cases the fuzz test found, each of which crashed the process: one cell at the sheet's far
/// corner (calamine allocates the whole box, 26 GB, and aborts), and a cell reference with more
/// digits than a u32 holds (calamine's arithmetic overflows: a panic in a debug build). Both are
/// errors now.
#[test]
fn a_stray_far_cell_or_an_overlong_reference_is_an_error_not_a_crash() {
    let far = workbook_with_row(r#"<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#);
    let e = eps::parse::workbook(&far).unwrap_err();
    assert!(
        e.contains("cell XFD1048576 stretches the sheet") && e.contains("damaged"),
        "{e}"
    );
    let long = workbook_with_row(r#"<row r="7"><c r="A99999999999"><v>1</v></c></row>"#);
    let e = eps::parse::workbook(&long).unwrap_err();
    assert!(e.contains("damaged"), "{e}");
}

/// One change to a sheet's cells.
#[derive(Debug, Clone)]
enum CellChange {
    Set(Index, Data),
    DeleteRow(Index),
    DuplicateRow(Index),
    Swap(Index, Index),
}

fn cell_value() -> impl Strategy<Value = Data> {
    prop_oneof![
        Just(Data::Empty),
        any::<f64>().prop_map(Data::Float),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(45_000.5),
            Just(-1e300)
        ]
        .prop_map(Data::Float),
        any::<i64>().prop_map(Data::Int),
        any::<bool>().prop_map(Data::Bool),
        any::<Index>().prop_map(|t| Data::String(TOKENS[t.index(TOKENS.len())].to_string())),
        "[A-Z0-9/ ().*:&%-]{0,24}".prop_map(Data::String),
        any::<Index>().prop_map(|t| Data::DateTimeIso(TOKENS[t.index(TOKENS.len())].to_string())),
        (any::<f64>(), any::<bool>()).prop_map(|(v, dt)| {
            let kind = if dt {
                calamine::ExcelDateTimeType::DateTime
            } else {
                calamine::ExcelDateTimeType::TimeDelta
            };
            Data::DateTime(calamine::ExcelDateTime::new(v, kind, false))
        }),
    ]
}

fn cell_change() -> impl Strategy<Value = CellChange> {
    let i = any::<Index>;
    prop_oneof![
        3 => (i(), cell_value()).prop_map(|(a, v)| CellChange::Set(a, v)),
        1 => i().prop_map(CellChange::DeleteRow),
        1 => i().prop_map(CellChange::DuplicateRow),
        1 => (i(), i()).prop_map(|(a, b)| CellChange::Swap(a, b)),
    ]
}

fn cells_of(range: &Range<Data>) -> Vec<Cell<Data>> {
    let (r0, c0) = range.start().unwrap_or((0, 0));
    range
        .used_cells()
        .map(|(r, c, v)| Cell::new((r0 + r as u32, c0 + c as u32), v.clone()))
        .collect()
}

/// Applies a change; rows are shifted as a person editing the sheet would.
fn change(cells: &mut Vec<Cell<Data>>, ch: &CellChange) {
    if cells.is_empty() {
        return;
    }
    let pos = |i: &Index, cells: &Vec<Cell<Data>>| cells[i.index(cells.len())].get_position();
    match ch {
        CellChange::Set(i, v) => {
            let k = i.index(cells.len());
            cells[k] = Cell::new(cells[k].get_position(), v.clone());
        }
        CellChange::DeleteRow(i) => {
            let row = pos(i, cells).0;
            cells.retain(|c| c.get_position().0 != row);
            for c in cells.iter_mut().filter(|c| c.get_position().0 > row) {
                let (r, col) = c.get_position();
                *c = Cell::new((r - 1, col), c.get_value().clone());
            }
        }
        CellChange::DuplicateRow(i) => {
            let row = pos(i, cells).0;
            let mut copy: Vec<Cell<Data>> = Vec::new();
            for c in cells.iter_mut() {
                let (r, col) = c.get_position();
                if r == row {
                    copy.push(Cell::new((r + 1, col), c.get_value().clone()));
                }
                if r > row {
                    *c = Cell::new((r + 1, col), c.get_value().clone());
                }
            }
            cells.extend(copy);
        }
        CellChange::Swap(a, b) => {
            let (ka, kb) = (a.index(cells.len()), b.index(cells.len()));
            let (va, vb) = (cells[ka].get_value().clone(), cells[kb].get_value().clone());
            cells[ka] = Cell::new(cells[ka].get_position(), vb);
            cells[kb] = Cell::new(cells[kb].get_position(), va);
        }
    }
}

/// The two sheets' cells, read once; each case edits cells (values of every type, including
/// NaN, infinities, dates of any serial, text tokens), deletes, duplicates or swaps rows.
#[test]
fn fuzz_eps_sheet_cells() {
    let mut wb = Xlsx::new(std::io::Cursor::new(read(WORKBOOK))).unwrap();
    let est = cells_of(&wb.worksheet_range(eps::parse::SHEET).unwrap());
    let sector = cells_of(&wb.worksheet_range(eps::sector::SECTOR_SHEET).unwrap());
    let n = cases(256);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (any::<bool>(), prop::collection::vec(cell_change(), 1..6));
    runner
        .run(&strategy, |(which, changes)| {
            let mut cells = if which { est.clone() } else { sector.clone() };
            changes.iter().for_each(|c| change(&mut cells, c));
            let range = Range::from_sparse(cells);
            let result = if which {
                eps::parse::estimates_sheet(&range)
            } else {
                eps::sector::sector_sheet(&range).map(|rows| eps::parse::Edition {
                    as_of_date: chrono::NaiveDate::MIN,
                    as_of_cell: String::new(),
                    rows,
                })
            };
            check_edition(result).map_err(TestCaseError::fail)
        })
        .unwrap();
}

#[test]
fn fuzz_recording_meta() {
    let mut seeds = Vec::new();
    let mut stack = vec![fixtures().join("upstream")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".meta.json") {
                seeds.push(std::fs::read(p).unwrap());
            }
        }
    }
    seeds.truncate(12);
    let path = Path::new("rec/host/x.meta.json");
    fuzz(256, seeds, |body| {
        let text = String::from_utf8_lossy(body);
        match crate::http::recording::parse_meta(&text, path) {
            Ok((meta, _)) if meta.body_file.contains(['/', '\\']) || meta.body_file == ".." => {
                Err(format!("body_file {:?} escapes its folder", meta.body_file))
            }
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("x.meta.json") => Ok(()),
            Err(e) => Err(format!("an error without the file: {e}")),
        }
    });
}

#[test]
fn fuzz_model_header() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/marts");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    seeds.push(
        b"-- materialized: incremental\n-- unique_key: symbol, date\n-- partition_by: symbol\n-- test: accepted_range(close, 0, 1e9)\n-- test: freshness(date, 5)\n-- test: relationships(symbol, staging.prices_daily.symbol)\n-- test: no_rows_where(close < 0)\nSELECT 1\n"
            .to_vec(),
    );
    let path = Path::new("sql/marts/m.sql");
    fuzz(256, seeds, |body| {
        let text = String::from_utf8_lossy(body);
        let name = crate::lake::TableName::marts("m");
        match crate::models::spec::Model::parse(name, path, &text) {
            Ok(m)
                if m.materialized == crate::models::spec::Materialized::Incremental
                    && (m.unique_key.is_empty() || m.partition_by.is_empty()) =>
            {
                Err("an incremental model without its keys".into())
            }
            Ok(_) => Ok(()),
            Err(e) if e.to_string().starts_with("sql/marts/m.sql:") => Ok(()),
            Err(e) => Err(format!("an error without file and line: {e}")),
        }
    });
}
