//! `[sources.fred]` settings.

use chrono::NaiveDate;
use serde::Deserialize;
use url::Url;

/// The series ingested by default (DESIGN §3).
pub const DEFAULT_SERIES: &[&str] = &[
    "WALCL",
    "TREAST",
    "WSHOBL",
    "WRESBAL",
    "WTREGEN",
    "RRPONTSYD",
    "EFFR",
    "DFEDTARU",
    "DFEDTARL",
    "DGS1",
    "DGS2",
];

/// FRED connector settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FredConfig {
    /// FRED series ids to ingest.
    pub series: Vec<String>,
    /// Days re-requested before each series' watermark on incremental runs, so revisions to
    /// recent observations are picked up.
    pub lookback_days: u32,
    /// Earliest observation requested on a first or full-refresh run; unset = all history.
    pub start_date: Option<NaiveDate>,
    /// The keyless CSV endpoint (used when no API key is set).
    pub fredgraph_url: Url,
    /// Base of the FRED API (used when the API key variable is set).
    pub api_url: Url,
    /// Name of the environment variable holding the FRED API key. The key itself never goes in
    /// this file.
    pub api_key_env: String,
    /// Most series fetched at once.
    pub concurrency: usize,
    /// The unit-change guard: a series whose new values' median magnitude differs from its stored
    /// recent median by more than this factor is refused (nothing of it is written). `0` turns
    /// the guard off. See `sources/fred/guard.rs`.
    pub max_magnitude_ratio: f64,
    /// Series exempt from the unit-change guard: list one that FRED genuinely rebased, run
    /// `macrolake ingest fred --full-refresh`, then take it off the list.
    pub rebased_series: Vec<String>,
}

impl Default for FredConfig {
    fn default() -> Self {
        Self {
            series: DEFAULT_SERIES.iter().map(|s| s.to_string()).collect(),
            lookback_days: 28,
            start_date: None,
            fredgraph_url: Url::parse("https://fred.stlouisfed.org/graph/fredgraph.csv")
                .expect("valid"),
            api_url: Url::parse("https://api.stlouisfed.org/fred/").expect("valid"),
            api_key_env: "FRED_API_KEY".to_string(),
            concurrency: 4,
            max_magnitude_ratio: 100.0,
            rebased_series: Vec::new(),
        }
    }
}
