//! `[sources.treasury]` settings.

use chrono::NaiveDate;
use serde::Deserialize;
use url::Url;

/// Treasury (Fiscal Data API, Daily Treasury Statement) connector settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TreasuryConfig {
    /// The DTS operating cash balance endpoint.
    pub url: Url,
    /// Rows per page (the API allows up to 10000).
    pub page_size: u32,
    /// Days re-requested before the watermark on incremental runs.
    pub lookback_days: u32,
    /// Earliest record date requested on a first or full-refresh run; unset = all history.
    pub start_date: Option<NaiveDate>,
}

impl Default for TreasuryConfig {
    fn default() -> Self {
        Self {
            url: Url::parse(
                "https://api.fiscaldata.treasury.gov/services/api/fiscal_service/v1/accounting/dts/operating_cash_balance",
            )
            .expect("valid"),
            page_size: 1000,
            lookback_days: 14,
            start_date: None,
        }
    }
}
