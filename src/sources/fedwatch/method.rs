//! CME FedWatch's method: meeting-by-meeting probabilities of target-range outcomes from 30-day
//! fed funds futures.
//!
//! For a meeting on day `d` of an `N`-day month `M` (the decision takes effect the next day), the
//! month's contract prices the average effective rate `r̄ = 100 − price`:
//! `r̄·N = r_start·d + r_end·(N − d)`, so `r_end = (r̄·N − r_start·d) / (N − d)`.
//!
//! * `r_start` is the rate in force before the meeting: the previous month's implied rate when
//!   that month has no meeting (its average *is* the rate in force), else the previous meeting's
//!   `r_end` (meetings are chained), else — for the first meeting — the effective rate today.
//! * When the meeting is late in the month (fewer than [`LATE_DAYS`] days after it) and the next
//!   month has no meeting and a contract, `r_end` is that month's implied rate instead (the
//!   formula divides by a small `N − d` and would magnify noise).
//! * The expected move `r_end − r_start` in 25 bp steps splits between the two neighbouring whole
//!   steps (e.g. −1.13 steps = 13% of −2 and 87% of −1); each meeting's distribution is the
//!   previous one's shifted by that two-point move. Differences of rates cancel the spread between
//!   the effective rate and the target range's midpoint.

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, NaiveDate};

/// A meeting this close to the month's end uses the next month's contract for `r_end`.
pub const LATE_DAYS: u32 = 7;
const STEP_PCT: f64 = 0.25;

/// The futures curve on one day: implied average rate (%) by delivery month (first of month).
pub type Curve = BTreeMap<NaiveDate, f64>;

/// One meeting's outcome distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingOdds {
    /// Decision date.
    pub meeting_date: NaiveDate,
    /// Rate in force before the meeting (%), on the futures' basis.
    pub rate_start_pct: f64,
    /// Expected rate after the meeting (%), on the futures' basis.
    pub rate_end_pct: f64,
    /// Probability by target range lower bound (bp).
    pub probabilities: BTreeMap<i64, f64>,
    /// How `r_end` was found: `meeting_month` or `next_month`.
    pub method: &'static str,
}

fn days_in_month(first: NaiveDate) -> u32 {
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    (next.expect("valid") - first).num_days() as u32
}

fn month_of(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

fn add_months(first: NaiveDate, k: i32) -> NaiveDate {
    let total = first.year() * 12 + first.month0() as i32 + k;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .expect("valid")
}

/// Probabilities for every upcoming meeting (decision date on or after `as_of`) that the curve
/// covers, in order; stops at the first meeting whose month has no contract.
///
/// `target_low_bps` is the current target range's lower bound; `effr_pct` the effective rate.
pub fn meeting_odds(
    as_of: NaiveDate,
    meetings: &[NaiveDate],
    curve: &Curve,
    target_low_bps: i64,
    effr_pct: f64,
) -> Vec<MeetingOdds> {
    let meeting_months: HashSet<NaiveDate> = meetings.iter().map(|m| month_of(*m)).collect();
    let mut out: Vec<MeetingOdds> = Vec::new();
    let mut dist: BTreeMap<i64, f64> = BTreeMap::from([(target_low_bps, 1.0)]);
    let mut prev_end: Option<f64> = None;
    for meeting in meetings.iter().filter(|m| **m >= as_of) {
        let month = month_of(*meeting);
        let Some(&avg) = curve.get(&month) else { break };
        let n = days_in_month(month) as f64;
        let d = meeting.day() as f64;
        let prev_month = add_months(month, -1);
        let rate_start = match (curve.get(&prev_month), meeting_months.contains(&prev_month)) {
            (Some(p), false) if prev_month >= month_of(as_of) => *p,
            _ => prev_end.unwrap_or(effr_pct),
        };
        let next_month = add_months(month, 1);
        let late = days_in_month(month) - meeting.day() < LATE_DAYS;
        let (rate_end, method) = match curve.get(&next_month) {
            Some(next) if late && !meeting_months.contains(&next_month) => (*next, "next_month"),
            _ if n - d >= 1.0 => ((avg * n - rate_start * d) / (n - d), "meeting_month"),
            _ => break,
        };
        let steps = (rate_end - rate_start) / STEP_PCT;
        let lo = steps.floor();
        let frac = steps - lo;
        let mut next_dist = BTreeMap::new();
        for (low, p) in &dist {
            for (k, q) in [(lo, 1.0 - frac), (lo + 1.0, frac)] {
                if q > 1e-12 {
                    *next_dist.entry(low + (k as i64) * 25).or_insert(0.0) += p * q;
                }
            }
        }
        dist = next_dist;
        prev_end = Some(rate_end);
        out.push(MeetingOdds {
            meeting_date: *meeting,
            rate_start_pct: rate_start,
            rate_end_pct: rate_end,
            probabilities: dist.clone(),
            method,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const MEETINGS: &[&str] = &["2025-09-17", "2025-10-29", "2025-12-10", "2026-01-28"];

    fn meetings() -> Vec<NaiveDate> {
        MEETINGS.iter().map(|m| d(m)).collect()
    }

    fn curve(points: &[(&str, f64)]) -> Curve {
        points.iter().map(|(m, r)| (d(m), *r)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Worked by hand. As of 2025-09-02 the target range is 4.25–4.50 % and the effective rate
    /// 4.33 %. The September contract settles at 95.7925, so r̄ = 4.2075 %. September has 30 days
    /// and the decision is on the 17th (17 days at the old rate, 13 at the new):
    ///   r_end = (4.2075·30 − 4.33·17) / 13 = (126.225 − 73.61) / 13 = 52.615 / 13 = 4.047308 %
    ///   move  = 4.047308 − 4.33 = −0.282692 % = −1.130769 steps of 25 bp
    ///   → 13.0769 % chance of −2 steps (3.75–4.00) and 86.9231 % of −1 step (4.00–4.25).
    #[test]
    fn hand_worked_single_meeting() {
        let odds = meeting_odds(
            d("2025-09-02"),
            &meetings(),
            &curve(&[("2025-09-01", 100.0 - 95.7925)]),
            425,
            4.33,
        );
        assert_eq!(odds.len(), 1, "no October contract: the chain stops");
        let sep = &odds[0];
        assert!(
            close(sep.rate_end_pct, 52.615 / 13.0),
            "{}",
            sep.rate_end_pct
        );
        assert_eq!(sep.probabilities.len(), 2);
        assert!(
            (sep.probabilities[&375] - 0.130769).abs() < 1e-6,
            "{:?}",
            sep.probabilities
        );
        assert!((sep.probabilities[&400] - 0.869231).abs() < 1e-6);
        assert_eq!(sep.method, "meeting_month");
    }

    /// Chained: October's meeting is on the 29th (2 days left) and November has no meeting, so
    /// October's r_end is November's rate, 3.80 %; its r_start is September's r_end (4.047308 %):
    /// move −0.247308 % = −0.989231 steps → 98.9231 % one cut, 1.0769 % none, applied to
    /// September's distribution {375: 0.130769, 400: 0.869231}:
    ///   350: 0.130769·0.989231 = 0.129361   375: 0.130769·0.010769 + 0.869231·0.989231 = 0.861278
    ///   400: 0.869231·0.010769 = 0.009361
    #[test]
    fn hand_worked_chain_with_late_meeting() {
        let c = curve(&[
            ("2025-09-01", 4.2075),
            ("2025-10-01", 3.95),
            ("2025-11-01", 3.80),
        ]);
        let odds = meeting_odds(d("2025-09-02"), &meetings(), &c, 425, 4.33);
        assert_eq!(odds.len(), 2);
        let oct = &odds[1];
        assert_eq!(oct.method, "next_month");
        assert!(close(oct.rate_start_pct, odds[0].rate_end_pct));
        assert!(close(oct.rate_end_pct, 3.80));
        let p = &oct.probabilities;
        assert!((p[&350] - 0.129361).abs() < 1e-6, "{p:?}");
        assert!((p[&375] - 0.861278).abs() < 1e-6, "{p:?}");
        assert!((p[&400] - 0.009361).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn every_meeting_sums_to_one() {
        let c = curve(&[
            ("2025-09-01", 4.21),
            ("2025-10-01", 4.02),
            ("2025-11-01", 3.86),
            ("2025-12-01", 3.75),
            ("2026-01-01", 3.61),
        ]);
        let odds = meeting_odds(d("2025-09-02"), &meetings(), &c, 425, 4.33);
        assert_eq!(odds.len(), 4);
        for m in &odds {
            let total: f64 = m.probabilities.values().sum();
            assert!((total - 1.0).abs() < 1e-9, "{}: {total}", m.meeting_date);
            assert!(m.probabilities.values().all(|p| *p >= 0.0));
        }
    }

    #[test]
    fn flat_curve_means_no_change() {
        let c = curve(&[
            ("2025-09-01", 4.33),
            ("2025-10-01", 4.33),
            ("2025-11-01", 4.33),
            ("2025-12-01", 4.33),
            ("2026-01-01", 4.33),
        ]);
        for m in meeting_odds(d("2025-09-02"), &meetings(), &c, 425, 4.33) {
            assert!(
                (m.probabilities[&425] - 1.0).abs() < 1e-9,
                "{}: {:?}",
                m.meeting_date,
                m.probabilities
            );
        }
    }

    #[test]
    fn a_curve_25bp_lower_after_the_meeting_means_a_cut() {
        // September: 17 days at 4.33, 13 at 4.08 → average (4.33·17 + 4.08·13)/30.
        let sep = (4.33 * 17.0 + 4.08 * 13.0) / 30.0;
        let c = curve(&[("2025-09-01", sep), ("2025-10-01", 4.08)]);
        let odds = meeting_odds(d("2025-09-02"), &meetings(), &c, 425, 4.33);
        assert!(
            (odds[0].probabilities[&400] - 1.0).abs() < 1e-9,
            "{:?}",
            odds[0].probabilities
        );
        assert!(
            (odds[1].probabilities[&400] - 1.0).abs() < 1e-9,
            "no further move: {:?}",
            odds[1].probabilities
        );
    }

    #[test]
    fn past_meetings_are_skipped_and_a_missing_month_stops_the_chain() {
        let c = curve(&[("2025-10-01", 4.10)]);
        let odds = meeting_odds(d("2025-09-20"), &meetings(), &c, 400, 4.10);
        assert_eq!(odds.len(), 1);
        assert_eq!(odds[0].meeting_date, d("2025-10-29"));
        assert!(meeting_odds(d("2025-09-20"), &meetings(), &Curve::new(), 400, 4.1).is_empty());
    }
}
