//! What macrolake knows about common FRED series without asking the API: the keyless CSV carries
//! no metadata, so titles, units and frequencies of well-known series come from here (the
//! `fred_series.source` column says so). With an API key the API's own metadata is used.

/// Known facts about one series.
#[derive(Debug, Clone, Copy)]
pub struct KnownSeries {
    /// FRED id.
    pub id: &'static str,
    /// FRED title.
    pub title: &'static str,
    /// FRED units.
    pub units: &'static str,
    /// FRED frequency.
    pub frequency: &'static str,
}

const KNOWN: &[KnownSeries] = &[
    KnownSeries {
        id: "WALCL",
        title: "Assets: Total Assets: Total Assets (Less Eliminations from Consolidation): Wednesday Level",
        units: "Millions of U.S. Dollars",
        frequency: "Weekly, As of Wednesday",
    },
    KnownSeries {
        id: "TREAST",
        title: "Assets: Securities Held Outright: U.S. Treasury Securities: Wednesday Level",
        units: "Millions of U.S. Dollars",
        frequency: "Weekly, As of Wednesday",
    },
    KnownSeries {
        id: "WSHOBL",
        title: "Assets: Securities Held Outright: U.S. Treasury Securities: Bills: Wednesday Level",
        units: "Millions of U.S. Dollars",
        frequency: "Weekly, As of Wednesday",
    },
    KnownSeries {
        id: "WRESBAL",
        title: "Liabilities and Capital: Other Factors Draining Reserve Balances: Reserve Balances with Federal Reserve Banks: Week Average",
        units: "Millions of U.S. Dollars",
        frequency: "Weekly, As of Wednesday",
    },
    KnownSeries {
        id: "WTREGEN",
        title: "Liabilities and Capital: Liabilities: Deposits with F.R. Banks, Other Than Reserve Balances: U.S. Treasury, General Account: Week Average",
        units: "Millions of U.S. Dollars",
        frequency: "Weekly, As of Wednesday",
    },
    KnownSeries {
        id: "RRPONTSYD",
        title: "Overnight Reverse Repurchase Agreements: Treasury Securities Sold by the Federal Reserve in the Temporary Open Market Operations",
        units: "Billions of U.S. Dollars",
        frequency: "Daily",
    },
    KnownSeries {
        id: "EFFR",
        title: "Effective Federal Funds Rate",
        units: "Percent",
        frequency: "Daily",
    },
    KnownSeries {
        id: "DFF",
        title: "Federal Funds Effective Rate",
        units: "Percent",
        frequency: "Daily, 7-Day",
    },
    KnownSeries {
        id: "DFEDTARU",
        title: "Federal Funds Target Range - Upper Limit",
        units: "Percent",
        frequency: "Daily, 7-Day",
    },
    KnownSeries {
        id: "DFEDTARL",
        title: "Federal Funds Target Range - Lower Limit",
        units: "Percent",
        frequency: "Daily, 7-Day",
    },
    KnownSeries {
        id: "DGS1",
        title: "Market Yield on U.S. Treasury Securities at 1-Year Constant Maturity, Quoted on an Investment Basis",
        units: "Percent",
        frequency: "Daily",
    },
    KnownSeries {
        id: "DGS2",
        title: "Market Yield on U.S. Treasury Securities at 2-Year Constant Maturity, Quoted on an Investment Basis",
        units: "Percent",
        frequency: "Daily",
    },
    KnownSeries {
        id: "DGS10",
        title: "Market Yield on U.S. Treasury Securities at 10-Year Constant Maturity, Quoted on an Investment Basis",
        units: "Percent",
        frequency: "Daily",
    },
    KnownSeries {
        id: "SOFR",
        title: "Secured Overnight Financing Rate",
        units: "Percent",
        frequency: "Daily",
    },
    KnownSeries {
        id: "IORB",
        title: "Interest Rate on Reserve Balances",
        units: "Percent",
        frequency: "Daily, 7-Day",
    },
    KnownSeries {
        id: "SP500",
        title: "S&P 500",
        units: "Index",
        frequency: "Daily, Close",
    },
    KnownSeries {
        id: "DJIA",
        title: "Dow Jones Industrial Average",
        units: "Index",
        frequency: "Daily, Close",
    },
    KnownSeries {
        id: "NASDAQ100",
        title: "NASDAQ 100 Index",
        units: "Index Feb 5, 1971=100",
        frequency: "Daily, Close",
    },
    KnownSeries {
        id: "CBBTCUSD",
        title: "Coinbase Bitcoin",
        units: "U.S. Dollars",
        frequency: "Daily, 7-Day",
    },
];

/// Facts about a series, when known.
pub fn known(id: &str) -> Option<&'static KnownSeries> {
    KNOWN.iter().find(|k| k.id.eq_ignore_ascii_case(id))
}

/// Factor turning a value in `units` into millions of U.S. dollars; `None` for non-dollar units.
pub fn musd_factor(units: &str) -> Option<f64> {
    let u = units.to_ascii_lowercase();
    if !u.contains("dollars") || u.contains("index") {
        return None;
    }
    if u.starts_with("millions of") {
        Some(1.0)
    } else if u.starts_with("billions of") {
        Some(1_000.0)
    } else if u.starts_with("thousands of") {
        Some(0.001)
    } else if u.starts_with("trillions of") {
        Some(1_000_000.0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_units_scale_to_millions() {
        assert_eq!(musd_factor("Millions of U.S. Dollars"), Some(1.0));
        assert_eq!(musd_factor("Billions of U.S. Dollars"), Some(1000.0));
        assert_eq!(musd_factor("Percent"), None);
        assert_eq!(
            musd_factor("U.S. Dollars"),
            None,
            "a price in dollars is not an amount in $M"
        );
        assert_eq!(
            known("rrpontsyd").unwrap().units,
            "Billions of U.S. Dollars"
        );
    }
}
