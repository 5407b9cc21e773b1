//! `[sources.fomc]` settings.

use serde::Deserialize;
use url::Url;

/// FOMC calendar connector settings (the Federal Reserve Board's meeting calendar page).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FomcConfig {
    /// The Fed's "Meeting calendars and information" page: one panel per year with every
    /// meeting, plus notes announcing meetings of the following year.
    pub url: Url,
}

impl Default for FomcConfig {
    fn default() -> Self {
        Self {
            url: Url::parse("https://www.federalreserve.gov/monetarypolicy/fomccalendars.htm")
                .expect("valid"),
        }
    }
}
