//! `[sources.prices]` settings.

use chrono::NaiveDate;
use serde::Deserialize;
use url::Url;

/// Where one symbol's prices can come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum PriceSource {
    /// Yahoo chart v8, with the Yahoo symbol (`yahoo` alone = the symbol itself).
    Yahoo(String),
    /// Coinbase Exchange daily candles for a product (`coinbase:BTC-USD`).
    Coinbase(String),
    /// Stooq's keyless CSV (`stooq:iwm.us`, `stooq:^spx`, `stooq:btcusd`).
    Stooq(String),
    /// A FRED series holding the close (`fred:SP500`, `fred:CBBTCUSD`).
    Fred(String),
}

impl PriceSource {
    /// The name stored in `prices_daily.source`.
    pub fn name(&self) -> &'static str {
        match self {
            PriceSource::Yahoo(_) => "yahoo",
            PriceSource::Coinbase(_) => "coinbase",
            PriceSource::Stooq(_) => "stooq",
            PriceSource::Fred(_) => "fred",
        }
    }
}

impl TryFrom<String> for PriceSource {
    type Error = String;
    fn try_from(spec: String) -> Result<Self, String> {
        let (kind, arg) = match spec.split_once(':') {
            Some((k, a)) => (k, Some(a.trim().to_string()).filter(|a| !a.is_empty())),
            None => (spec.as_str(), None),
        };
        let need = |what: &str| {
            arg.clone().ok_or(format!(
                "price source {spec:?} needs {what}, e.g. {kind}:{what}"
            ))
        };
        Ok(match kind {
            "yahoo" => PriceSource::Yahoo(arg.clone().unwrap_or_default()),
            "coinbase" => PriceSource::Coinbase(need("PRODUCT")?),
            "stooq" => PriceSource::Stooq(need("SYMBOL")?),
            "fred" => PriceSource::Fred(need("SERIES")?),
            other => {
                return Err(format!(
                    "unknown price source {other:?} in {spec:?}; use yahoo, coinbase:…, stooq:… or fred:…"
                ));
            }
        })
    }
}

/// One symbol and its sources in priority order: the first that answers wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolConfig {
    /// The symbol as stored in `prices_daily.symbol` (Yahoo's spelling: `^RUT`, `BTC-USD`, `SI=F`).
    pub symbol: String,
    /// Sources to try in order: `yahoo`, `yahoo:SYM`, `coinbase:PRODUCT`, `stooq:SYM`, `fred:SERIES`.
    pub sources: Vec<PriceSource>,
}

fn sym(symbol: &str, sources: &[&str]) -> SymbolConfig {
    SymbolConfig {
        symbol: symbol.to_string(),
        sources: sources
            .iter()
            .map(|s| PriceSource::try_from(s.to_string()).expect("valid default"))
            .collect(),
    }
}

/// Prices connector settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricesConfig {
    /// Symbols to ingest, each with its sources in priority order.
    pub symbols: Vec<SymbolConfig>,
    /// Yahoo chart v8 base URL (the symbol is appended).
    pub yahoo_url: Url,
    /// Coinbase Exchange products base URL.
    pub coinbase_url: Url,
    /// Stooq CSV download URL.
    pub stooq_url: Url,
    /// FRED keyless CSV URL (for `fred:` sources).
    pub fredgraph_url: Url,
    /// Days re-requested before each symbol's watermark on incremental runs.
    pub lookback_days: u32,
    /// First day requested on a first or full-refresh run. `None` (the default): each source's
    /// earliest data — Yahoo is asked from 1900-01-01 ([`super::YAHOO_EARLIEST`]), Stooq and
    /// FRED without a start parameter, Coinbase from [`super::COINBASE_EARLIEST`].
    pub start_date: Option<NaiveDate>,
    /// Most symbols fetched at once (each host's own limit, `[http] max_concurrent_per_host`,
    /// still applies). Rows land in the configured order whatever order the answers come in.
    pub concurrency: usize,
}

impl Default for PricesConfig {
    fn default() -> Self {
        Self {
            symbols: vec![
                sym(
                    "BTC-USD",
                    &["yahoo", "coinbase:BTC-USD", "fred:CBBTCUSD", "stooq:btcusd"],
                ),
                sym("^RUT", &["yahoo"]),
                sym("IWM", &["yahoo", "stooq:iwm.us"]),
                sym("^GSPC", &["yahoo", "stooq:^spx", "fred:SP500"]),
                sym("SPY", &["yahoo", "stooq:spy.us"]),
                sym("^NDX", &["yahoo", "stooq:^ndx", "fred:NASDAQ100"]),
                sym("QQQ", &["yahoo", "stooq:qqq.us"]),
                sym("^DJI", &["yahoo", "stooq:^dji", "fred:DJIA"]),
                sym("DIA", &["yahoo", "stooq:dia.us"]),
                sym("SI=F", &["yahoo", "stooq:xagusd"]),
                sym("SLV", &["yahoo", "stooq:slv.us"]),
            ],
            yahoo_url: Url::parse("https://query1.finance.yahoo.com/v8/finance/chart/")
                .expect("valid"),
            coinbase_url: Url::parse("https://api.exchange.coinbase.com/products/").expect("valid"),
            stooq_url: Url::parse("https://stooq.com/q/d/l/").expect("valid"),
            fredgraph_url: Url::parse("https://fred.stlouisfed.org/graph/fredgraph.csv")
                .expect("valid"),
            lookback_days: 7,
            start_date: None,
            concurrency: 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs() {
        assert_eq!(
            PriceSource::try_from("yahoo".to_string()).unwrap(),
            PriceSource::Yahoo(String::new())
        );
        assert_eq!(
            PriceSource::try_from("fred:SP500".to_string()).unwrap(),
            PriceSource::Fred("SP500".into())
        );
        assert!(
            PriceSource::try_from("stooq".to_string())
                .unwrap_err()
                .contains("needs SYMBOL")
        );
        assert!(
            PriceSource::try_from("bloomberg:X".to_string())
                .unwrap_err()
                .contains("unknown price source")
        );
        assert_eq!(PricesConfig::default().symbols.len(), 11);
    }

    #[test]
    fn full_history_by_default_and_a_start_date_still_configurable() {
        assert_eq!(PricesConfig::default().start_date, None);
        let c: PricesConfig = toml::from_str("start_date = \"2015-01-01\"").unwrap();
        assert_eq!(c.start_date, NaiveDate::from_ymd_opt(2015, 1, 1));
        let c: PricesConfig = toml::from_str("lookback_days = 3").unwrap();
        assert_eq!(c.start_date, None);
        // The repository's documented configuration keeps the default.
        let repo = crate::config::Config::parse(
            include_str!("../../../macrolake.toml"),
            std::path::Path::new("macrolake.toml"),
        )
        .unwrap();
        assert_eq!(repo.sources.prices.start_date, None);
    }
}
