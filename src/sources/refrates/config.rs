//! `[sources.refrates]` settings.

use chrono::NaiveDate;
use serde::Deserialize;
use url::Url;

/// One of the NY Fed's reference rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rate {
    /// Secured Overnight Financing Rate.
    Sofr,
    /// Tri-Party General Collateral Rate.
    Tgcr,
    /// Broad General Collateral Rate.
    Bgcr,
    /// Effective Federal Funds Rate (with the FOMC's target range).
    Effr,
    /// Overnight Bank Funding Rate.
    Obfr,
}

impl Rate {
    /// The API's name of the rate (`type` in its answers, `rate_type` in the table).
    pub fn code(self) -> &'static str {
        match self {
            Rate::Sofr => "SOFR",
            Rate::Tgcr => "TGCR",
            Rate::Bgcr => "BGCR",
            Rate::Effr => "EFFR",
            Rate::Obfr => "OBFR",
        }
    }

    /// The rate's search endpoint below the API's base.
    pub fn search_path(self) -> &'static str {
        match self {
            Rate::Sofr => "rates/secured/sofr/search.json",
            Rate::Tgcr => "rates/secured/tgcr/search.json",
            Rate::Bgcr => "rates/secured/bgcr/search.json",
            Rate::Effr => "rates/unsecured/effr/search.json",
            Rate::Obfr => "rates/unsecured/obfr/search.json",
        }
    }
}

/// NY Fed reference rates connector settings (Markets Data API, no key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefratesConfig {
    /// Base of the Markets Data API; each rate's `rates/…/search.json` is resolved below it (a
    /// missing trailing slash is added).
    pub base_url: Url,
    /// The rates to fetch, by their lowercase names: `sofr`, `tgcr`, `bgcr`, `effr`, `obfr`.
    pub rates: Vec<Rate>,
    /// Days re-requested before each rate's watermark on incremental runs, so a rate the NY Fed
    /// revised after first publishing it (`revisionIndicator`) is picked up again.
    pub lookback_days: u32,
    /// Earliest effective date requested on a first or full-refresh run (the search needs a start
    /// date). The default is SOFR's first publication (for 2018-04-02); for EFFR history before
    /// it, set an earlier date.
    pub start_date: NaiveDate,
}

impl Default for RefratesConfig {
    fn default() -> Self {
        Self {
            base_url: Url::parse("https://markets.newyorkfed.org/api/").expect("valid"),
            rates: vec![Rate::Sofr],
            lookback_days: 14,
            start_date: NaiveDate::from_ymd_opt(2018, 4, 2).expect("valid"),
        }
    }
}

impl RefratesConfig {
    /// The search endpoint of one rate.
    pub fn search_url(&self, rate: Rate) -> Url {
        crate::http::below(&self.base_url, rate.search_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_from_toml_and_resolve_below_the_base() {
        let c: RefratesConfig =
            toml::from_str("rates = [\"sofr\", \"effr\"]\nbase_url = \"http://127.0.0.1:9/api\"")
                .unwrap();
        assert_eq!(c.rates, vec![Rate::Sofr, Rate::Effr]);
        assert_eq!(
            c.search_url(Rate::Effr).as_str(),
            "http://127.0.0.1:9/api/rates/unsecured/effr/search.json"
        );
        assert_eq!(
            RefratesConfig::default().search_url(Rate::Sofr).as_str(),
            "https://markets.newyorkfed.org/api/rates/secured/sofr/search.json"
        );
        let bad = toml::from_str::<RefratesConfig>("rates = [\"libor\"]").unwrap_err();
        assert!(bad.to_string().contains("unknown variant `libor`"), "{bad}");
    }
}
