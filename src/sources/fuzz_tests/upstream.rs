//! Parsers of HTTP bodies: FRED, the DTS, the NY Fed, Yahoo, Coinbase, Stooq, CME, the FOMC page.

use super::*;
use crate::sources::{fomc, fred, futures, nyfed, prices, refrates, treasury};

const UP: &str = "upstream";

fn fred_csv_seeds() -> Vec<Vec<u8>> {
    vec![
        read(&format!(
            "{UP}/fred.stlouisfed.org/graph_fredgraph.csv--id=WALCL.body.csv"
        )),
        read("cme-2026-09/fred.stlouisfed.org/graph_fredgraph.csv--id=DFEDTARL.body.csv"),
    ]
}

#[test]
fn fuzz_fred_fredgraph_csv() {
    fuzz(256, fred_csv_seeds(), |body| {
        for id in ["WALCL", "DFEDTARL"] {
            match fred::parse::fredgraph_csv(body, id) {
                Ok(obs) => finite("fredgraph", obs.iter().map(|o| o.value))?,
                Err(e) => named("fred", e.line, &e.message)?,
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_fred_api_json() {
    let api = format!("{UP}/api.stlouisfed.org");
    let seeds = vec![
        shortened_json(
            &format!("{api}/fred_series_observations--series_id=DFF.body.json"),
            40,
        ),
        read("bodies/fred/fred_dfedtar_2026-09.json"),
        read(&format!("{api}/fred_series--series_id=DFF.body.json")),
    ];
    fuzz(256, seeds, |body| {
        match fred::parse::api_observations(body) {
            Ok(page) => finite("observations", page.observations.iter().map(|o| o.value))?,
            Err(e) => named("fred", e.line, &e.message)?,
        }
        match fred::parse::api_series(body, "DFF") {
            Ok(meta) => {
                let _ = meta.last_updated_utc();
            }
            Err(e) => named("fred", e.line, &e.message)?,
        }
        Ok(())
    });
}

#[test]
fn fuzz_treasury_dts_page() {
    let seeds = vec![
        read("bodies/treasury/openbb_dts_2025-07-07_2025-07-11.json"),
        shortened_json(
            &format!(
                "{UP}/api.fiscaldata.treasury.gov/dts_operating_cash_balance--sort=record_date-page1.body.json"
            ),
            30,
        ),
    ];
    fuzz(256, seeds, |body| match treasury::parse::page(body) {
        Ok(page) => {
            let dates: Vec<_> = page.days.iter().map(|d| d.record_date).collect();
            strictly_sorted("DTS days", &dates)?;
            finite(
                "DTS",
                page.days.iter().flat_map(|d| {
                    [
                        d.open_balance_musd,
                        d.close_balance_musd,
                        d.deposits_musd,
                        d.withdrawals_musd,
                    ]
                }),
            )
        }
        Err(m) => named("treasury", None, &m),
    });
}

#[test]
fn fuzz_nyfed_operations_and_soma() {
    let ny = format!("{UP}/markets.newyorkfed.org");
    let seeds = vec![
        shortened_json(
            &format!(
                "{ny}/api_tsy_all_results_details_search.json--startDate=2008-03-07_endDate=2026-08-06.body.json"
            ),
            12,
        ),
        shortened_json(&format!("{ny}/api_soma_summary.json.body.json"), 12),
    ];
    fuzz(256, seeds, |body| {
        match nyfed::parse::operations(body) {
            Ok(rows) => {
                let mut keys: Vec<_> = rows.iter().map(|r| (&r.operation_id, &r.cusip)).collect();
                keys.sort();
                strictly_sorted("operation keys", &keys)?;
                finite(
                    "operations",
                    rows.iter().flat_map(|r| {
                        [
                            r.weighted_avg_accepted_price,
                            r.least_favorable_accepted_price,
                        ]
                    }),
                )?;
            }
            Err(e) => named("nyfed", e.line, &e.message)?,
        }
        match nyfed::parse::soma_summary(body) {
            Ok(s) => {
                let dates: Vec<_> = s.rows.iter().map(|r| r.as_of_date).collect();
                if dates.windows(2).any(|w| w[0] > w[1]) {
                    return Err("SOMA rows not sorted by date".into());
                }
            }
            Err(e) => named("nyfed", e.line, &e.message)?,
        }
        Ok(())
    });
}

#[test]
fn fuzz_nyfed_reference_rates() {
    let seeds = vec![
        read("bodies/refrates/nyfed_sofr_2024-06-01_2024-06-06.json"),
        shortened_json(
            &format!(
                "{UP}/markets.newyorkfed.org/api_rates_secured_sofr_search.json--startDate=2018-04-03_endDate=2026-06-04.body.json"
            ),
            12,
        ),
    ];
    fuzz(256, seeds, |body| {
        match refrates::parse::rates(body, "SOFR") {
            Ok(rows) => {
                let days: Vec<_> = rows.iter().map(|r| r.effective_date).collect();
                strictly_sorted("effective dates", &days)?;
                finite("rates", rows.iter().map(|r| Some(r.percent_rate)))?;
            }
            Err(e) => named("refrates", e.line, &e.message)?,
        }
        Ok(())
    });
}

fn yahoo_seeds() -> Vec<Vec<u8>> {
    vec![
        read("bodies/prices/yahoo_chart_v8_BTC-USD_range1d_2025-02-19.json"),
        shortened_json(
            &format!("{UP}/query1.finance.yahoo.com/v8_finance_chart_ZQ_F.body.json"),
            25,
        ),
        shortened_json(
            &format!("{UP}/query1.finance.yahoo.com/v8_finance_chart__GSPC.body.json"),
            25,
        ),
    ]
}

fn bar_numbers(b: &prices::parse::Bar) -> [Option<f64>; 6] {
    [b.open, b.high, b.low, Some(b.close), b.adj_close, b.volume]
}

#[test]
fn fuzz_yahoo_chart() {
    fuzz(
        256,
        yahoo_seeds(),
        |body| match prices::parse::yahoo_chart(body) {
            Ok(s) => finite("yahoo", s.bars.iter().flat_map(bar_numbers)),
            Err(m) => named("prices", None, &m),
        },
    );
}

/// Coinbase and Stooq bodies: no recorded answer of either is available, so the seeds are
/// Yahoo's real BTC-USD / S&P 500 bars rebuilt in each one's documented layout.
fn rebuilt_bars() -> (Vec<u8>, Vec<u8>) {
    let bars = prices::parse::yahoo_chart(&shortened_json(
        &format!("{UP}/query1.finance.yahoo.com/v8_finance_chart_BTC-USD.body.json"),
        30,
    ))
    .expect("real body")
    .bars;
    let n = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut candles: Vec<String> = bars
        .iter()
        .map(|b| {
            let t = b.date.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
            let (l, h, o, v) = (n(b.low), n(b.high), n(b.open), n(b.volume));
            format!("[{t},{l},{h},{o},{},{v}]", b.close)
        })
        .collect();
    candles.reverse();
    let mut stooq = String::from("Date,Open,High,Low,Close,Volume\n");
    for b in &bars {
        let (o, h, l, v) = (n(b.open), n(b.high), n(b.low), n(b.volume));
        stooq += &format!("{},{o},{h},{l},{},{v}\n", b.date, b.close);
    }
    (
        format!("[\n{}\n]", candles.join(",\n")).into_bytes(),
        stooq.into_bytes(),
    )
}

#[test]
fn fuzz_coinbase_and_stooq() {
    let (coinbase, stooq) = rebuilt_bars();
    fuzz(256, vec![coinbase, stooq], |body| {
        match prices::parse::coinbase_candles(body) {
            Ok(bars) => {
                let dates: Vec<_> = bars.iter().map(|b| b.date).collect();
                strictly_sorted("coinbase days", &dates)?;
                finite("coinbase", bars.iter().flat_map(bar_numbers))?;
            }
            Err(m) => named("prices", None, &m)?,
        }
        match prices::parse::stooq_csv(body) {
            Ok(bars) => finite("stooq", bars.iter().flat_map(bar_numbers))?,
            Err(m) => named("prices", None, &m)?,
        }
        Ok(())
    });
}

#[test]
fn fuzz_cme_settlements() {
    let cme = format!(
        "{UP}/www.cmegroup.com/CmeWS_mvc_Settlements_Futures_Settlements_305_FUT--tradeDate=09_2F14_2F2026.body.json"
    );
    let day = chrono::NaiveDate::from_ymd_opt(2026, 9, 14).unwrap();
    fuzz(
        256,
        vec![read(&cme)],
        |body| match futures::parse::cme_settlements(body, day) {
            Ok(rows) => {
                if rows.iter().any(|r| r.date != day) {
                    return Err("a settlement of another day".into());
                }
                finite(
                    "cme",
                    rows.iter().flat_map(|r| {
                        [
                            r.open,
                            r.high,
                            r.low,
                            Some(r.settle),
                            r.volume,
                            r.open_interest,
                        ]
                    }),
                )
            }
            Err(m) => named("futures", None, &m),
        },
    );
}

#[test]
fn fuzz_fomc_calendar_page() {
    let page = read(&format!(
        "{UP}/www.federalreserve.gov/monetarypolicy_fomccalendars.htm.body.html"
    ));
    fuzz(128, vec![page], |body| {
        match fomc::parse::calendar(&String::from_utf8_lossy(body)) {
            Ok(p) => {
                let dates: Vec<_> = p.meetings.iter().map(|m| m.meeting_date).collect();
                strictly_sorted("meeting days", &dates)?;
                if p.meetings
                    .iter()
                    .any(|m| m.meeting_start_date > m.meeting_date)
                {
                    return Err("a meeting that ends before it starts".into());
                }
                Ok(())
            }
            Err(e) => named("fomc", None, &e.message),
        }
    });
}
