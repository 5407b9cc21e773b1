//! The FOMC calendar's seed: the decision days known before the Fed's page is read (built in,
//! or a file given in the configuration), `meeting_date,scheduled,source`.

use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

use super::NAME;
use crate::sources::SourceError;

/// The built-in seed: FOMC decision days committed with the code (`sql/seeds/fomc_meetings.csv`).
pub const SEED: &str = include_str!("../../../sql/seeds/fomc_meetings.csv");
/// How the built-in seed is named in errors and `source` columns.
pub const SEED_NAME: &str = "sql/seeds/fomc_meetings.csv";

/// One row of the built-in (or configured) seed: `meeting_date,scheduled,source`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SeedRow {
    /// Decision day.
    pub meeting_date: NaiveDate,
    /// `false` for an unscheduled meeting.
    pub scheduled: bool,
    /// Where the date came from.
    pub source: String,
}

/// Parses a seed CSV (`meeting_date,scheduled,source`, one meeting a line). Errors name the line.
pub fn parse_seed(text: &str) -> Result<Vec<SeedRow>, (Option<usize>, String)> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.deserialize::<SeedRow>() {
        let row = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize);
            (line, e.to_string())
        })?;
        rows.push(row);
    }
    rows.sort_by_key(|r| r.meeting_date);
    if let Some(w) = rows
        .windows(2)
        .find(|w| w[0].meeting_date == w[1].meeting_date)
    {
        return Err((None, format!("{} is listed twice", w[0].meeting_date)));
    }
    Ok(rows)
}

/// Reads the seed: the file given, else the built-in one. Returns its name and rows.
pub fn load_seed(path: Option<&Path>) -> Result<(String, Vec<SeedRow>), SourceError> {
    let (name, text) = match path {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(|e| SourceError::File {
                source_name: NAME,
                path: p.to_path_buf(),
                line: None,
                message: format!("cannot read the FOMC calendar seed: {e}"),
            })?,
        ),
        None => (SEED_NAME.to_string(), SEED.to_string()),
    };
    let rows = parse_seed(&text).map_err(|(line, message)| SourceError::File {
        source_name: NAME,
        path: name.clone().into(),
        line,
        message: format!("not an FOMC calendar seed (meeting_date,scheduled,source): {message}"),
    })?;
    Ok((name, rows))
}
