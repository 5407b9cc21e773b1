//! Parsing the Fiscal Data API's `dts/operating_cash_balance` pages into daily TGA balances.
//!
//! The table changed layout twice, and all three are in the API's history:
//!
//! | until      | rows                                                             | TGA balance                        |
//! |------------|------------------------------------------------------------------|------------------------------------|
//! | 2021-09-30 | `Federal Reserve Account`                                        | `open_today_bal`, `close_today_bal` |
//! | 2022-04-15 | `Treasury General Account (TGA)`                                  | `open_today_bal`, `close_today_bal` |
//! | now        | `Treasury General Account (TGA) Opening Balance` / `… Closing Balance`, `Total TGA Deposits (Table II)`, `Total TGA Withdrawals (Table II) (-)` | each row's `open_today_bal` holds its figure |
//!
//! Amounts are strings in $ millions; `"null"` marks a missing one.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

crate::staging_row! {
    /// One day of the Treasury General Account from the Daily Treasury Statement, $ millions.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct TgaDay in "tga_daily" keys [record_date, account] {
        /// Record date of the statement (a business day).
        pub record_date: NaiveDate,
        /// The account: always `TGA`.
        pub account: &'static str,
        /// Opening balance, $ millions.
        pub open_balance_musd: Option<f64>,
        /// Closing balance, $ millions; NULL when the day's statement gives none (some days of
        /// the pre-2022 layouts).
        pub close_balance_musd: Option<f64>,
        /// Total deposits (Table II), $ millions; from the 2022-04-18 layout on.
        pub deposits_musd: Option<f64>,
        /// Total withdrawals (Table II), $ millions; from the 2022-04-18 layout on.
        pub withdrawals_musd: Option<f64>,
        /// Which layout the day came in: `federal_reserve_account`, `tga_account`,
        /// `tga_open_close`.
        pub layout: &'static str,
        /// Where the row came from: `fiscaldata_dts`.
        pub source: &'static str,
    }
}

/// One page as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Days on this page, by date.
    pub days: Vec<TgaDay>,
    /// Page number of the next page, from `links.next`; `None` on the last page.
    pub next_page: Option<u32>,
    /// Total rows across all pages (`meta.total-count`).
    pub total_count: Option<u64>,
}

#[derive(Deserialize)]
struct Body {
    data: Vec<Row>,
    meta: Option<Meta>,
    links: Option<Links>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "total-count")]
    total_count: Option<u64>,
}

#[derive(Deserialize)]
struct Links {
    next: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    record_date: String,
    account_type: String,
    open_today_bal: Option<String>,
    close_today_bal: Option<String>,
}

fn amount(raw: &Option<String>, what: &str, date: &str) -> Result<Option<f64>, String> {
    match raw.as_deref().map(str::trim) {
        None | Some("") | Some("null") => Ok(None),
        Some(s) => s
            .replace(',', "")
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| format!("{date}: {what} {s:?} is not a number")),
    }
}

/// `page[number]` from a Fiscal Data paging link such as `&page%5Bnumber%5D=2&page%5Bsize%5D=1000`.
fn page_number(link: &str) -> Option<u32> {
    let decoded = link.replace("%5B", "[").replace("%5D", "]");
    decoded
        .split('&')
        .find_map(|kv| kv.strip_prefix("page[number]="))
        .and_then(|n| n.parse().ok())
}

/// Parses one page. Rows of other accounts (the Supplementary Financing Program, short-term
/// cash investments) are skipped; an unknown TGA-looking label is an error, so a fourth layout
/// is noticed rather than silently dropped.
pub fn page(body: &[u8]) -> Result<Page, String> {
    let body: Body =
        serde_json::from_slice(body).map_err(|e| format!("not the DTS JSON layout: {e}"))?;
    let mut days: BTreeMap<NaiveDate, TgaDay> = BTreeMap::new();
    for row in &body.data {
        let date = NaiveDate::parse_from_str(&row.record_date, "%Y-%m-%d")
            .map_err(|_| format!("record_date {:?} is not YYYY-MM-DD", row.record_date))?;
        let d = &row.record_date;
        let open = amount(&row.open_today_bal, "open_today_bal", d)?;
        let close = amount(&row.close_today_bal, "close_today_bal", d)?;
        let label = row.account_type.trim();
        let day = days.entry(date).or_insert_with(|| TgaDay {
            record_date: date,
            account: "TGA",
            source: "fiscaldata_dts",
            ..Default::default()
        });
        match label {
            "Federal Reserve Account" => {
                (day.open_balance_musd, day.close_balance_musd, day.layout) =
                    (open, close, "federal_reserve_account");
            }
            "Treasury General Account (TGA)" => {
                (day.open_balance_musd, day.close_balance_musd, day.layout) =
                    (open, close, "tga_account");
            }
            "Treasury General Account (TGA) Opening Balance" => {
                (day.open_balance_musd, day.layout) = (open, "tga_open_close");
            }
            "Treasury General Account (TGA) Closing Balance" => {
                (day.close_balance_musd, day.layout) = (open.or(close), "tga_open_close");
            }
            "Total TGA Deposits (Table II)" => day.deposits_musd = open,
            "Total TGA Withdrawals (Table II) (-)" => day.withdrawals_musd = open,
            "Supplementary Financing Program Account" | "Short-Term Cash Investments (Table V)" => {
            }
            other if other.contains("TGA") || other.contains("General Account") => {
                return Err(format!(
                    "{d}: unknown TGA account label {other:?} (a new table layout?)"
                ));
            }
            _ => {}
        }
    }
    let days: Vec<TgaDay> = days
        .into_values()
        .filter(|d| !d.layout.is_empty())
        .collect();
    let next_page = body
        .links
        .and_then(|l| l.next)
        .as_deref()
        .and_then(page_number);
    Ok(Page {
        days,
        next_page,
        total_count: body.meta.and_then(|m| m.total_count),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    const OPENBB: &[u8] = include_bytes!(
        "../../../tests/fixtures/bodies/treasury/openbb_dts_2025-07-07_2025-07-11.json"
    );

    #[test]
    fn real_recorded_body_2025_layout() {
        let p = page(OPENBB).unwrap();
        assert_eq!(p.days.len(), 5);
        let first = &p.days[0];
        assert_eq!(first.record_date, d("2025-07-07"));
        assert_eq!(first.open_balance_musd, Some(313162.0));
        assert_eq!(first.close_balance_musd, Some(332482.0));
        assert_eq!(first.deposits_musd, Some(38702.0));
        assert_eq!(first.withdrawals_musd, Some(19382.0));
        assert_eq!(first.layout, "tga_open_close");
        assert_eq!(
            p.days[1].open_balance_musd,
            Some(332482.0),
            "opening = previous closing"
        );
        assert_eq!(p.next_page, None);
        assert_eq!(p.total_count, Some(20));
    }

    #[test]
    fn older_layouts_and_paging_links() {
        let body = br#"{"data":[
          {"record_date":"2021-09-30","account_type":"Federal Reserve Account","open_today_bal":"173745","close_today_bal":"null","extra_field":"x"},
          {"record_date":"2021-09-30","account_type":"Supplementary Financing Program Account","open_today_bal":"0","close_today_bal":"0"},
          {"record_date":"2021-10-01","account_type":"Treasury General Account (TGA)","open_today_bal":"215160","close_today_bal":"null"}],
          "meta":{"total-count":4803},"links":{"next":"&page%5Bnumber%5D=3&page%5Bsize%5D=1000"}}"#;
        let p = page(body).unwrap();
        assert_eq!(
            p.days.len(),
            2,
            "unknown columns are fine; SFP rows skipped"
        );
        assert_eq!(
            (p.days[0].layout, p.days[0].open_balance_musd),
            ("federal_reserve_account", Some(173745.0))
        );
        assert_eq!(
            (p.days[1].layout, p.days[1].close_balance_musd),
            ("tga_account", None)
        );
        assert_eq!(p.next_page, Some(3));
    }

    #[test]
    fn broken_bodies_are_errors() {
        assert!(
            page(b"{\"data\":[{\"record_date\":\"2021-09-30\"}]}")
                .unwrap_err()
                .contains("account_type")
        );
        let bad = br#"{"data":[{"record_date":"2025-01-02","account_type":"Treasury General Account (TGA) Opening Balance","open_today_bal":"12x","close_today_bal":"null"}]}"#;
        assert!(page(bad).unwrap_err().contains("not a number"));
        let new_layout = br#"{"data":[{"record_date":"2027-01-04","account_type":"TGA Balance (new)","open_today_bal":"1","close_today_bal":"null"}]}"#;
        assert!(page(new_layout).unwrap_err().contains("new table layout"));
        assert!(page(&OPENBB[..500]).is_err());
    }
}
