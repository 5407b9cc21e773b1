//! Reading cells of a calamine sheet: labels, numbers, dates, `A1` names.

use calamine::{Cell, Data, DataRef, DataType, Range, Xlsx};
use chrono::NaiveDate;

/// Most cells a sheet's bounding box may span. A real edition's sheets span some 10,000; calamine
/// allocates the whole box, so one stray far-away cell (`XFD1048576`) in a damaged workbook asked
/// for 26 GB and aborted the process.
pub const MAX_SHEET_CELLS: u64 = 4_000_000;

/// Reads sheet `name` (`wanted` in messages) of a workbook, refusing a sheet whose cells span more
/// than [`MAX_SHEET_CELLS`] with an error naming the cell that stretched it.
pub fn sheet_range<R: std::io::Read + std::io::Seek>(
    wb: &mut Xlsx<R>,
    name: &str,
    wanted: &str,
) -> Result<Range<Data>, String> {
    let unreadable = |e: calamine::XlsxError| format!("sheet {wanted}: cannot be read: {e}");
    let mut reader = wb.worksheet_cells_reader(name).map_err(unreadable)?;
    let mut cells: Vec<Cell<Data>> = Vec::new();
    let (mut top, mut left, mut bottom, mut right) = (u32::MAX, u32::MAX, 0, 0);
    while let Some(cell) = reader.next_cell().map_err(unreadable)? {
        if matches!(cell.get_value(), DataRef::Empty) {
            continue;
        }
        let (row, col) = cell.get_position();
        (top, left) = (top.min(row), left.min(col));
        (bottom, right) = (bottom.max(row), right.max(col));
        let span = u64::from(bottom - top + 1) * u64::from(right - left + 1);
        if span > MAX_SHEET_CELLS {
            return Err(format!(
                "sheet {wanted}: cell {} stretches the sheet to {} rows × {} columns, more than \
                 {MAX_SHEET_CELLS} cells: the workbook is damaged or not an S&P edition",
                cell_name(row, col),
                bottom - top + 1,
                right - left + 1
            ));
        }
        cells.push(Cell::new((row, col), Data::from(cell.get_value().clone())));
    }
    Ok(Range::from_sparse(cells))
}

/// Text of a label: trimmed, spaces collapsed, upper case.
pub fn norm_str(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// `A1`-style name of an absolute 0-based position.
pub fn cell_name(row: u32, col: u32) -> String {
    let mut letters = String::new();
    let mut c = col + 1;
    while c > 0 {
        let rem = (c - 1) % 26;
        letters.insert(0, (b'A' + rem as u8) as char);
        c = (c - 1) / 26;
    }
    format!("{letters}{}", row + 1)
}

/// A quarter label as a date: `12/31/2025`, `9/30/2019  `, `12/31/2025 (46.5%)`, `6/30/2025 (Prelim.)`.
pub fn date_label(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let date = s.split('(').next().unwrap_or("").trim();
    let parts: Vec<&str> = date.split('/').collect();
    let [m, d, y] = parts.as_slice() else {
        return None;
    };
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    if !(digits(m, 2) && digits(d, 2) && y.len() == 4 && digits(y, 4)) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// A cell as a date: a date-formatted serial, a bare serial in the plausible range (1954 to
/// 2119, so a value is not taken for a date), an ISO text or a quarter label. Serials are
/// converted by calamine (the 1900 and 1904 epochs).
pub fn to_date(v: &Data) -> Option<NaiveDate> {
    match v {
        Data::Float(f) if !(20_000.0..80_000.0).contains(f) => None,
        Data::Int(i) if !(20_000..80_000).contains(i) => None,
        // A duration, not a date; or a serial outside Excel's dates (calamine's conversion
        // panics far outside them).
        Data::DateTime(dt) if !dt.is_datetime() || !(0.0..2_958_466.0).contains(&dt.as_f64()) => {
            None
        }
        Data::String(s) => date_label(s),
        _ => v.as_date(),
    }
}

/// Whether a cell is empty or only spaces.
pub fn is_blank(v: &Data) -> bool {
    match v {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A sheet's cells, addressed by absolute 0-based (row, column).
pub struct Sheet<'a> {
    /// The sheet's name, for cell references in errors.
    pub name: &'a str,
    /// Its cached values.
    pub range: &'a Range<Data>,
}

const EMPTY: Data = Data::Empty;

impl Sheet<'_> {
    /// The cell's value (empty outside the used range).
    pub fn get(&self, row: u32, col: u32) -> &Data {
        self.range.get_value((row, col)).unwrap_or(&EMPTY)
    }

    /// A text cell's label, normalised by [`norm_str`]; `None` for blanks and non-text.
    pub fn text(&self, row: u32, col: u32) -> Option<String> {
        match self.get(row, col) {
            Data::String(s) => Some(norm_str(s)).filter(|s| !s.is_empty()),
            _ => None,
        }
    }

    /// First row of the used range.
    pub fn first_row(&self) -> u32 {
        self.range.start().map_or(0, |s| s.0)
    }

    /// Last row of the used range.
    pub fn last_row(&self) -> u32 {
        self.range.end().map_or(0, |e| e.0)
    }

    /// Last column of the used range.
    pub fn last_col(&self) -> u32 {
        self.range.end().map_or(0, |e| e.1)
    }

    /// `SHEET!A1` reference of a cell.
    pub fn at(&self, row: u32, col: u32) -> String {
        format!("{}!{}", self.name, cell_name(row, col))
    }

    /// First row in `from..=last` whose column-A label satisfies `pred`.
    pub fn find_a(&self, from: u32, pred: impl Fn(&str) -> bool) -> Option<u32> {
        (from..=self.last_row()).find(|r| self.text(*r, 0).is_some_and(|s| pred(&s)))
    }

    /// A numeric cell: `None` when blank, an error naming the cell when it holds anything else.
    pub fn number(&self, row: u32, col: u32) -> Result<Option<f64>, String> {
        let v = self.get(row, col);
        match v {
            Data::Float(f) if f.is_finite() => Ok(Some(*f)),
            Data::Int(i) => Ok(Some(*i as f64)),
            v if is_blank(v) => Ok(None),
            Data::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    format!("{}: expected a number, found text {s:?}", self.at(row, col))
                }),
            other => Err(format!(
                "{}: expected a number, found {other:?}",
                self.at(row, col)
            )),
        }
    }
}
