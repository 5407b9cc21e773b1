//! `[sources.futures]` settings.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Deserialize;
use url::Url;

/// 30-day fed funds futures connector settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FuturesConfig {
    /// Yahoo's continuous front-month symbol (history; Yahoo has no per-contract history).
    pub yahoo_symbol: String,
    /// Yahoo chart v8 base URL.
    pub yahoo_url: Url,
    /// Fetch CME's daily settlements for every listed ZQ month (the whole curve, one request a
    /// trade date). Off in the offline snapshot's nightly (its CME recordings are for
    /// 2026-09-14 … 18 only; replay them with `--since 2026-09-14 --until 2026-09-18`).
    pub cme_enabled: bool,
    /// CME settlements service base URL (`{cme_url}{product_id}/FUT?tradeDate=MM/DD/YYYY`, the
    /// URL CME's own settlements page calls).
    pub cme_url: Url,
    /// CME product id of 30-Day Federal Funds futures.
    pub cme_product_id: u32,
    /// Trade days to walk back from the run date to find the latest settlements (weekends,
    /// holidays, runs before CME publishes).
    pub cme_max_days_back: u32,
    /// On a backfill (`--since`), how many of the window's last weekdays to ask CME for, one
    /// request each (its public service keeps about five business days; older days are empty).
    pub cme_backfill_days: u32,
    /// Folder of per-contract history CSV files a user owns (schema in the module doc).
    pub vendor_dir: Option<PathBuf>,
    /// Days re-requested before the watermark on incremental runs.
    pub lookback_days: u32,
    /// First day requested on a first or full-refresh run.
    pub start_date: NaiveDate,
}

impl Default for FuturesConfig {
    fn default() -> Self {
        Self {
            yahoo_symbol: "ZQ=F".to_string(),
            yahoo_url: Url::parse("https://query1.finance.yahoo.com/v8/finance/chart/")
                .expect("valid"),
            cme_enabled: true,
            cme_url: Url::parse(
                "https://www.cmegroup.com/CmeWS/mvc/Settlements/Futures/Settlements/",
            )
            .expect("valid"),
            cme_product_id: 305,
            cme_max_days_back: 5,
            cme_backfill_days: 10,
            vendor_dir: None,
            lookback_days: 7,
            start_date: NaiveDate::from_ymd_opt(2015, 1, 1).expect("valid"),
        }
    }
}
