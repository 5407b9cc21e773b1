//! `[sources.nyfed]` settings.

use chrono::NaiveDate;
use serde::Deserialize;
use url::Url;

/// NY Fed Markets Data API connector settings (Treasury outright operations, SOMA summary).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NyfedConfig {
    /// Base of the Markets Data API; `tsy/all/results/details/search.json` and
    /// `soma/summary.json` are resolved below it (a missing trailing slash is added).
    pub base_url: Url,
    /// Days re-requested before each table's watermark on incremental runs, so operations whose
    /// results were revised and re-stated SOMA weeks are picked up again.
    pub lookback_days: u32,
    /// Earliest operation date / SOMA as-of date requested on a first or full-refresh run. The
    /// operations search needs a start date; the default predates everything the API has been
    /// seen to publish (operations from 2008, SOMA weeks from 2003-07-09).
    pub start_date: NaiveDate,
}

impl Default for NyfedConfig {
    fn default() -> Self {
        Self {
            base_url: Url::parse("https://markets.newyorkfed.org/api/").expect("valid"),
            lookback_days: 14,
            start_date: NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid"),
        }
    }
}

impl NyfedConfig {
    fn endpoint(&self, path: &str) -> Url {
        crate::http::below(&self.base_url, path)
    }

    /// The Treasury operations search endpoint (results, with per-CUSIP details).
    pub fn operations_url(&self) -> Url {
        self.endpoint("tsy/all/results/details/search.json")
    }

    /// The SOMA holdings summary endpoint.
    pub fn soma_summary_url(&self) -> Url {
        self.endpoint("soma/summary.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_below_the_base_with_or_without_slash() {
        let mut c = NyfedConfig::default();
        assert_eq!(
            c.operations_url().as_str(),
            "https://markets.newyorkfed.org/api/tsy/all/results/details/search.json"
        );
        c.base_url = Url::parse("http://127.0.0.1:9/mock/api").unwrap();
        assert_eq!(
            c.soma_summary_url().as_str(),
            "http://127.0.0.1:9/mock/api/soma/summary.json"
        );
    }
}
