//! 30-day fed funds futures (CME ZQ) → `staging.futures_daily` [contract, date]: one row per
//! contract month and trade day, with the implied average rate (100 − price).
//!
//! * **Yahoo** `ZQ=F` — the continuous front month, for history (Yahoo serves no per-contract
//!   history). Stored as contract `ZQ=F` with `contract_month` = the trade date's month: ZQ
//!   contracts expire on their month's last business day, so the front month on day D is D's
//!   own month.
//! * **CME settlements** (`cme_enabled`) — every listed ZQ month (60 of them) for the latest
//!   trade date: the whole curve in one request, what a nightly run needs; a backfill
//!   (`--since`) asks for the last `cme_backfill_days` weekdays of its window (CME keeps about
//!   five business days; older ones answer empty).
//!   The snapshot has real recordings of four days (2026-09-14 … 17) and 2026-09-18 under
//!   `tests/fixtures/upstream/www.cmegroup.com/`.
//! * **Vendor folder** (`vendor_dir`) — per-contract history a user owns, CSV files with header
//!   `trade_date,contract,settle` and optional `volume,open_interest` (contract like `ZQZ25`).
//!   A bad row fails its file (named with file:line); the other files still land.
//!
//! When two sources give the same contract and day, CME wins over the vendor files.

pub mod config;
pub mod parse;

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate, Weekday};

pub use config::FuturesConfig;
use parse::Settle;

use super::{IngestContext, Source, SourceError, SourceReport, local};
use crate::http::Request;
use crate::lake::StagingRow;

const NAME: &str = "futures";

/// The futures connector.
#[derive(Debug, Clone)]
pub struct Futures {
    config: FuturesConfig,
}

impl Futures {
    /// A connector with these settings.
    pub fn new(config: FuturesConfig) -> Self {
        Self { config }
    }

    async fn yahoo(
        &self,
        ctx: &IngestContext,
        start: NaiveDate,
    ) -> Result<Vec<Settle>, SourceError> {
        let series = crate::sources::prices::fetch_yahoo(
            ctx,
            NAME,
            &self.config.yahoo_url,
            &self.config.yahoo_symbol,
            start,
        )
        .await?;
        Ok(series
            .bars
            .into_iter()
            .filter(|b| ctx.window.contains(Some(start), b.date))
            .map(|b| Settle {
                contract: self.config.yahoo_symbol.clone(),
                contract_month: b.date.with_day(1),
                date: b.date,
                open: b.open,
                high: b.high,
                low: b.low,
                settle: b.close,
                implied_rate_pct: parse::implied_rate_pct(b.close),
                volume: b.volume,
                open_interest: None,
                source: "yahoo".to_string(),
            })
            .collect())
    }

    /// CME settlements: on a backfill (`--since`) the last `cme_backfill_days` weekdays of the
    /// window, else the newest
    /// trade date at or before the run day that CME has settled (walking back over weekends and
    /// holidays, which CME answers with an empty list). CME's public service keeps only about the
    /// last five business days: older days answer empty and land nothing.
    async fn cme(&self, ctx: &IngestContext) -> Result<Vec<Settle>, SourceError> {
        let until = ctx.window.until.unwrap_or_else(|| ctx.run_at.date_naive());
        let url = self
            .config
            .cme_url
            .join(&format!("{}/FUT", self.config.cme_product_id))
            .map_err(|e| {
                SourceError::parse(
                    NAME,
                    "CME settlements",
                    self.config.cme_url.as_str(),
                    None,
                    e.to_string(),
                )
            })?;
        let weekday = |d: &NaiveDate| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        if let Some(since) = ctx.window.since {
            let days: Vec<NaiveDate> = since
                .iter_days()
                .take_while(|d| *d <= until)
                .filter(weekday)
                .collect();
            let skip = days
                .len()
                .saturating_sub(self.config.cme_backfill_days as usize);
            let mut out = Vec::new();
            for day in days.into_iter().skip(skip) {
                out.extend(self.cme_day(ctx, &url, day).await?);
            }
            return Ok(out);
        }
        let mut day = until;
        for _ in 0..=self.config.cme_max_days_back {
            if weekday(&day) {
                let rows = self.cme_day(ctx, &url, day).await?;
                if !rows.is_empty() {
                    return Ok(rows);
                }
            }
            day -= chrono::Duration::days(1);
        }
        Ok(Vec::new())
    }

    /// One trade date's settlements (`{cme_url}{product}/FUT?tradeDate=MM/DD/YYYY`).
    async fn cme_day(
        &self,
        ctx: &IngestContext,
        url: &url::Url,
        day: NaiveDate,
    ) -> Result<Vec<Settle>, SourceError> {
        let req = Request::get(url.clone()).query("tradeDate", &day.format("%m/%d/%Y").to_string());
        let item = format!("CME settlements {day}");
        let resp = ctx
            .fetch(NAME, &item, &req, &format!("cme-settlements-{day}.json"))
            .await?;
        parse::cme_settlements(&resp.body, day)
            .map_err(|m| SourceError::parse(NAME, &item, &resp.url, None, m))
    }

    fn vendor(&self, dir: &std::path::Path, report: &mut SourceReport) -> Vec<Settle> {
        let mut out = Vec::new();
        for path in local::list_or_report(NAME, dir, "csv", &mut report.failures) {
            let name = local::file_name(&path);
            match std::fs::read_to_string(&path)
                .map_err(|e| (0, e.to_string()))
                .and_then(|t| parse::vendor_csv(&t))
            {
                Ok(rows) => out.extend(rows.into_iter().map(|s| Settle {
                    source: format!("vendor:{name}"),
                    ..s
                })),
                Err((line, message)) => report.failures.push(local::file_error(
                    NAME,
                    &path,
                    (line > 0).then_some(line),
                    message,
                )),
            }
        }
        out
    }
}

#[async_trait::async_trait]
impl Source for Futures {
    fn tables(&self) -> Vec<crate::lake::row::TableDoc> {
        vec![Settle::doc()]
    }

    async fn ingest(&self, ctx: &IngestContext) -> Result<SourceReport, SourceError> {
        let mut report = SourceReport::default();
        let start = ctx
            .start_for(
                NAME,
                &self.config.yahoo_symbol,
                self.config.lookback_days,
                Some(self.config.start_date),
            )
            .await?
            .unwrap_or(self.config.start_date);
        // Priority order: CME, vendor files, Yahoo's continuous series (a different contract code).
        let mut rows: Vec<Settle> = Vec::new();
        if self.config.cme_enabled {
            match self.cme(ctx).await {
                Ok(r) => rows.extend(r),
                Err(e) => report.failures.push(e),
            }
        }
        if let Some(dir) = &self.config.vendor_dir {
            rows.extend(self.vendor(dir, &mut report));
        }
        let mut newest_front = None;
        match self.yahoo(ctx, start).await {
            Ok(r) => {
                newest_front = r.iter().map(|s| s.date).max();
                rows.extend(r);
            }
            Err(e) => report.failures.push(e),
        }
        let mut seen = HashSet::new();
        rows.retain(|s| seen.insert((s.contract.clone(), s.date)));
        if rows.is_empty() {
            return Ok(report);
        }
        let mode = ctx
            .window
            .write_mode(ctx.window.since, "date", Settle::KEYS);
        let front = [(self.config.yahoo_symbol.clone(), newest_front)];
        report.rows_written = ctx.land(NAME, &rows, mode, front).await?;
        Ok(report)
    }
}
