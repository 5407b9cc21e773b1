//! How fresh each table is: its newest date against an age limit, measured from the reference
//! day (`[models] reference_date`, else today). A mart's limit is its model's `freshness` test;
//! a staging table's is [`STAGING_LIMITS`] (the cadence of its upstream, in step with the age
//! limits the marts apply to carried-forward values).

use chrono::{DateTime, NaiveDate, Utc};

use crate::app::{App, AppError};
use crate::lake::TableName;
use crate::models::DataTest;

/// Age limits of the staging tables, in days between a table's newest date and the reference
/// day, with the reason.
pub const STAGING_LIMITS: &[(&str, u32, &str)] = &[
    (
        "staging.fred_observations",
        10,
        "H.4.1 series are weekly (Wednesday levels, out Thursday); the marts carry them 10 days",
    ),
    (
        "staging.tga_daily",
        7,
        "the Daily Treasury Statement is out every business day; the marts carry it 7 days",
    ),
    (
        "staging.prices_daily",
        7,
        "daily closes; a week covers weekends and holidays",
    ),
    ("staging.futures_daily", 7, "daily settlements"),
    (
        "staging.policy_proxy",
        7,
        "daily Treasury yields (the proxy where no futures curve exists)",
    ),
    (
        "staging.fedwatch_probabilities",
        7,
        "computed from the daily futures settlements",
    ),
    (
        "staging.soma_holdings",
        10,
        "SOMA holdings are published weekly",
    ),
    (
        "staging.treasury_operations",
        14,
        "the Desk's bill purchase operations run weekly or more often",
    ),
    (
        "staging.eps_estimates",
        31,
        "S&P's estimates workbook gets a new edition within each month",
    ),
];

/// One table's freshness.
#[derive(Debug, Clone, PartialEq)]
pub struct Freshness {
    /// `zone.table`.
    pub table: String,
    /// Rows.
    pub rows: String,
    /// Newest date of the table's date column (or of the column its limit is on).
    pub newest: Option<NaiveDate>,
    /// The Delta version.
    pub version: String,
    /// When the newest version was committed.
    pub last_write: Option<DateTime<Utc>>,
    /// Age of `newest` in days on the reference day.
    pub age_days: Option<i64>,
    /// The limit in days and where it comes from.
    pub limit: Option<(u32, String)>,
}

impl Freshness {
    /// `ok`, `stale` (older than its limit, or no date while it has a limit) or `none` (no limit).
    pub fn state(&self) -> &'static str {
        match (&self.limit, self.age_days) {
            (None, _) => "none",
            (Some((limit, _)), Some(age)) if age <= i64::from(*limit) => "ok",
            _ => "stale",
        }
    }
}

/// The freshness of every table in the lake, by name.
pub async fn all(app: &App) -> Result<Vec<Freshness>, AppError> {
    let reference = app.reference_date();
    let batches = app.status().await?;
    let (models, _) = crate::models::discover(&app.sql_dir).unwrap_or_default();
    let mut out = Vec::new();
    for row in crate::query::render_rows(&batches) {
        let [table, rows, newest, _, version] = row.as_slice() else {
            continue;
        };
        let mut entry = Freshness {
            table: table.clone(),
            rows: rows.clone(),
            newest: parse_day(newest),
            version: version.clone(),
            last_write: None,
            age_days: None,
            limit: None,
        };
        let test = models
            .iter()
            .filter(|m| m.name.to_string() == *table)
            .flat_map(|m| m.tests.iter().map(move |(_, t)| (m, t)))
            .find_map(|(m, t)| match t {
                DataTest::Freshness {
                    column,
                    max_age_days,
                } => Some((m.path.display().to_string(), column.clone(), *max_age_days)),
                _ => None,
            });
        if let Some((path, column, days)) = test {
            entry.limit = Some((days, format!("test freshness({column}, {days}) in {path}")));
            let sql = format!("SELECT CAST(max(\"{column}\") AS VARCHAR) FROM {table}");
            let newest = app.query(&sql, None).await?;
            entry.newest = crate::query::render_rows(&newest)
                .first()
                .and_then(|r| r.first())
                .and_then(|v| parse_day(v));
        } else if let Some((_, days, why)) = STAGING_LIMITS.iter().find(|(t, _, _)| t == table) {
            entry.limit = Some((*days, (*why).to_string()));
        }
        entry.age_days = entry.newest.map(|d| (reference - d).num_days());
        if let Some((zone, name)) = table.split_once('.') {
            let name = match zone {
                "marts" => TableName::marts(name),
                "meta" => TableName::meta(name),
                _ => TableName::staging(name),
            };
            entry.last_write = app.lake.last_commit(&name).await.ok().flatten();
        }
        out.push(entry);
    }
    Ok(out)
}

fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(age: Option<i64>, limit: Option<u32>) -> Freshness {
        Freshness {
            table: "staging.x".into(),
            rows: "1".into(),
            newest: None,
            version: "0".into(),
            last_write: None,
            age_days: age,
            limit: limit.map(|d| (d, "why".into())),
        }
    }

    #[test]
    fn the_limit_decides_the_state() {
        assert_eq!(entry(Some(7), Some(7)).state(), "ok");
        assert_eq!(entry(Some(8), Some(7)).state(), "stale");
        assert_eq!(entry(None, Some(7)).state(), "stale");
        assert_eq!(entry(Some(900), None).state(), "none");
        assert_eq!(
            parse_day("2026-06-05T00:00:00Z"),
            NaiveDate::from_ymd_opt(2026, 6, 5)
        );
        assert_eq!(parse_day(""), None);
    }
}
