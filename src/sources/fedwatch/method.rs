//! CME FedWatch's method: meeting-by-meeting probabilities of target-range outcomes from 30-day
//! fed funds futures, as CME documents it ("Fed Funds futures probability tree calculator" and
//! its worked examples).
//!
//! A contract prices the month's average effective rate `r̄ = 100 − price`. For a meeting on day
//! `d` of a `D`-day month (CME counts the decision day itself at the old rate, so `d` days at the
//! start rate `S` and `D − d` days at the end rate `E`):
//!
//! ```text
//! r̄·D = S·d + E·(D − d)      so   E = (r̄·D − S·d) / (D − d)   and   S = (r̄·D − E·(D − d)) / d
//! ```
//!
//! One equation, two unknowns: CME solves the curve from **anchor months**, months with no
//! meeting, whose contract prices one flat rate:
//!
//! 1. An anchor month's rate is the end rate of the month before it and the start rate of the
//!    month after it (`E[t−1] = S[t]`: the end of one month is the start of the next).
//! 2. **Backward** (CME's "start here: the nearest month without a meeting"): in reverse
//!    chronological order, a meeting month whose end is known gets its start from its own
//!    contract, and hands it to the month before as that month's end.
//! 3. **Forward**: a meeting month whose start is known but whose end is still unknown gets its
//!    end from its own contract, and hands it on as the next month's start.
//! 4. Only for the first upcoming meeting, when neither gives a start rate (no contract for the
//!    months before it, e.g. with the front month only): the **effective rate as published by the
//!    as-of day** (see the step's module doc) — no meeting lies between today and that meeting,
//!    so the rate in force today is the rate before it.
//!
//! Months after the calendar's last known meeting are not anchors (a month whose meetings are not
//! yet known cannot be told from a month without one).
//!
//! **Guard.** A rate solved by dividing by fewer than [`GUARD_DAYS`] days is not used: the error of
//! the monthly average (a 0.25 bp tick, the effective rate's drift, month-end spikes) is
//! multiplied by `D / days` — ×4.4 at 7 days of a 31-day month, ×15 at 2 days, i.e. 1 bp of noise
//! becomes 18 or 62 percentage points of probability. So a meeting fewer than 7 days before its
//! month's end is priced only when the month after it resolves its end rate (an anchor, or a
//! chain from one); otherwise the chain stops there, with a [`Gap`] saying why.
//!
//! **Outcomes.** Each meeting's expected move `(E − S) / 25 bp` splits between the two bracketing
//! whole steps (−1.13 steps = 13% of −2 and 87% of −1); each meeting's distribution is the
//! previous one's convolved with that two-point move, so later meetings span several ranges. A
//! range below zero is folded into 0–25 bp (the rate is bounded below by zero). Differences of
//! rates cancel the spread between the effective rate and the target range's midpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{Datelike, NaiveDate};

/// Fewest days a solved start or end rate may rest on (see the module doc).
pub const GUARD_DAYS: u32 = 7;
const STEP_PCT: f64 = 0.25;

/// The futures curve on one day: implied average rate (%) by delivery month (first of month).
pub type Curve = BTreeMap<NaiveDate, f64>;

/// The effective rate as published by the as-of day: the print's own date and its value (%).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishedEffr {
    /// The day the rate is for (published the next business day, ~9:00 New York).
    pub date: NaiveDate,
    /// The rate, %.
    pub pct: f64,
}

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
    /// Where the start and end rates came from, e.g.
    /// `start: back-solved from OCT 26; end: anchor NOV 26`.
    pub method: String,
}

/// Why the chain of meetings stopped (for the first meeting it could not price).
#[derive(Debug, Clone, PartialEq)]
pub enum Gap {
    /// No contract for the meeting's month, and its neighbours do not fix both its rates.
    NoContract {
        /// The meeting.
        meeting: NaiveDate,
    },
    /// The meeting is fewer than [`GUARD_DAYS`] days before its month's end and the next month
    /// does not resolve the end rate.
    LateInMonth {
        /// The meeting.
        meeting: NaiveDate,
        /// Days of the month after the decision day.
        days_after: u32,
        /// Whether the next month's contract is listed (it then lies in an unresolved chain).
        next_listed: bool,
    },
    /// The meeting is fewer than [`GUARD_DAYS`] days into its month and nothing before it gives
    /// the start rate.
    EarlyInMonth {
        /// The meeting.
        meeting: NaiveDate,
    },
    /// No start rate: no contract before the first meeting and no effective rate published.
    NoStartRate {
        /// The meeting.
        meeting: NaiveDate,
    },
}

/// CME's label of a contract month: 2025-11 → `NOV 25`.
pub fn month_label(month: NaiveDate) -> String {
    month.format("%b %y").to_string().to_uppercase()
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::NoContract { meeting } => write!(
                f,
                "no futures contract for the {} meeting month (meeting {meeting})",
                month_label(month_of(*meeting))
            ),
            Gap::LateInMonth {
                meeting,
                days_after,
                next_listed,
            } => {
                let next = month_label(add_months(month_of(*meeting), 1));
                let plural = if *days_after == 1 { "" } else { "s" };
                if *next_listed {
                    write!(
                        f,
                        "meeting {meeting} is {days_after} day{plural} before month end and the \
                         {next} contract does not fix its end rate (no later month without a \
                         meeting is priced); fewer than {GUARD_DAYS} days would magnify noise"
                    )
                } else {
                    write!(
                        f,
                        "meeting {meeting} is {days_after} day{plural} before month end and the \
                         {next} contract is missing; fewer than {GUARD_DAYS} days would magnify \
                         noise"
                    )
                }
            }
            Gap::EarlyInMonth { meeting } => write!(
                f,
                "meeting {meeting} is fewer than {GUARD_DAYS} days into its month and the {} \
                 contract does not fix its start rate",
                month_label(add_months(month_of(*meeting), -1))
            ),
            Gap::NoStartRate { meeting } => write!(
                f,
                "no start rate for meeting {meeting}: no contract for the months before it and \
                 no effective rate published in the 7 days before the day"
            ),
        }
    }
}

/// What the method found on one day: the meetings it priced, in order, and why it stopped
/// (`None` when it priced every upcoming meeting of the calendar).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Priced {
    /// Priced meetings, next meeting first.
    pub meetings: Vec<MeetingOdds>,
    /// Why the next meeting after the last priced one has no odds.
    pub gap: Option<Gap>,
}

fn days_in_month(first: NaiveDate) -> u32 {
    (add_months(first, 1) - first).num_days() as u32
}

fn month_of(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

fn add_months(first: NaiveDate, k: i32) -> NaiveDate {
    let total = first.year() * 12 + first.month0() as i32 + k;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .expect("valid")
}

type Known = BTreeMap<NaiveDate, (f64, String)>;

/// Probabilities for every upcoming meeting (decision on or after `as_of`) the curve prices, in
/// order, by CME's method (module doc).
///
/// `meetings` is the whole FOMC calendar (past meetings matter: a month with a meeting is never an
/// anchor); `target_low_bps` the target range's lower bound in force on `as_of`; `effr` the newest
/// effective rate published by `as_of`, used only as the first meeting's start rate when no
/// contract gives one.
///
/// Long on purpose: the body follows the module doc's numbered steps in order (1. anchors,
/// 2. backward, 3. forward, 4. the first meeting's start, then the outcomes), each marked with
/// its number, so it can be checked against CME's description line by line.
pub fn meeting_odds(
    as_of: NaiveDate,
    meetings: &[NaiveDate],
    curve: &Curve,
    target_low_bps: i64,
    effr: Option<PublishedEffr>,
) -> Priced {
    let upcoming: Vec<NaiveDate> = meetings.iter().copied().filter(|m| *m >= as_of).collect();
    let Some(&first) = upcoming.first() else {
        return Priced::default();
    };
    let meeting_in: BTreeMap<NaiveDate, NaiveDate> = upcoming
        .iter()
        .map(|m| (month_of(*m), *m))
        .rev() // two meetings in one month: keep the first (none in the modern calendar)
        .collect();
    let meeting_months: BTreeSet<NaiveDate> = meetings.iter().map(|m| month_of(*m)).collect();
    let horizon = meetings.iter().max().map(|m| month_of(*m));
    let is_anchor = |m: NaiveDate| {
        !meeting_months.contains(&m) && horizon.is_some_and(|h| m <= h) && curve.contains_key(&m)
    };

    let (mut start, mut end): (Known, Known) = (Known::new(), Known::new());
    // 1. Anchors pin their neighbours.
    for (&month, &avg) in curve.range(month_of(as_of)..) {
        if !is_anchor(month) {
            continue;
        }
        let label = format!("anchor {}", month_label(month));
        let (prev, next) = (add_months(month, -1), add_months(month, 1));
        if meeting_in.contains_key(&prev) {
            end.entry(prev).or_insert((avg, label.clone()));
        }
        if meeting_in.contains_key(&next) {
            start.entry(next).or_insert((avg, label));
        }
    }
    let solve = |start: &mut Known, end: &mut Known| {
        let mut changed = true;
        while changed {
            changed = false;
            // 2. Backward from each anchor.
            for (&month, &meeting) in meeting_in.iter().rev() {
                let (Some(&avg), Some(&(e, _)), None) =
                    (curve.get(&month), end.get(&month), start.get(&month))
                else {
                    continue;
                };
                let (n, d) = (days_in_month(month), meeting.day());
                if d < GUARD_DAYS {
                    continue;
                }
                let s = (avg * n as f64 - e * (n - d) as f64) / d as f64;
                start.insert(
                    month,
                    (s, format!("back-solved from {}", month_label(month))),
                );
                let prev = add_months(month, -1);
                if meeting_in.contains_key(&prev) && !end.contains_key(&prev) {
                    end.insert(prev, (s, format!("chain from {}", month_label(month))));
                }
                changed = true;
            }
            // 3. Forward where only the start is known.
            for (&month, &meeting) in meeting_in.iter() {
                let (Some(&avg), Some(&(s, _)), None) =
                    (curve.get(&month), start.get(&month), end.get(&month))
                else {
                    continue;
                };
                let (n, d) = (days_in_month(month), meeting.day());
                if n - d < GUARD_DAYS {
                    continue;
                }
                let e = (avg * n as f64 - s * d as f64) / (n - d) as f64;
                end.insert(
                    month,
                    (e, format!("forward-solved from {}", month_label(month))),
                );
                let next = add_months(month, 1);
                if meeting_in.contains_key(&next) && !start.contains_key(&next) {
                    start.insert(next, (e, format!("chain from {}", month_label(month))));
                }
                changed = true;
            }
        }
    };
    solve(&mut start, &mut end);
    // 4. The first meeting's start from the published effective rate, when nothing else gives it.
    let first_month = month_of(first);
    if !start.contains_key(&first_month)
        && let Some(e) = effr
    {
        start.insert(first_month, (e.pct, format!("EFFR of {}", e.date)));
        solve(&mut start, &mut end);
    }

    let mut out = Priced::default();
    let mut dist: BTreeMap<i64, f64> = BTreeMap::from([(target_low_bps, 1.0)]);
    for meeting in upcoming {
        let month = month_of(meeting);
        if meeting_in.get(&month) != Some(&meeting) {
            break; // a second meeting in one month cannot be priced month by month
        }
        let (Some((s, s_from)), Some((e, e_from))) = (start.get(&month), end.get(&month)) else {
            let (n, d) = (days_in_month(month), meeting.day());
            let gap = if !curve.contains_key(&month) {
                Gap::NoContract { meeting }
            } else if start.contains_key(&month) {
                // A known start and a listed contract leave the end unknown only when the
                // forward solution would rest on fewer than GUARD_DAYS days.
                Gap::LateInMonth {
                    meeting,
                    days_after: n - d,
                    next_listed: curve.contains_key(&add_months(month, 1)),
                }
            } else if month != first_month && d < GUARD_DAYS {
                Gap::EarlyInMonth { meeting }
            } else {
                Gap::NoStartRate { meeting }
            };
            out.gap = Some(gap);
            break;
        };
        let steps = (e - s) / STEP_PCT;
        let lo = steps.floor();
        let frac = steps - lo;
        let mut next_dist = BTreeMap::new();
        for (low, p) in &dist {
            for (k, q) in [(lo, 1.0 - frac), (lo + 1.0, frac)] {
                if q > 1e-12 {
                    let l = (low + (k as i64) * 25).max(0);
                    *next_dist.entry(l).or_insert(0.0) += p * q;
                }
            }
        }
        dist = next_dist;
        out.meetings.push(MeetingOdds {
            meeting_date: meeting,
            rate_start_pct: *s,
            rate_end_pct: *e,
            probabilities: dist.clone(),
            method: format!("start: {s_from}; end: {e_from}"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    /// The odds on 2025-09-02 (target 4.25–4.50 %, EFFR 4.33 % published for 08-29) over the
    /// test calendar.
    fn on_sep_2(c: &Curve) -> Priced {
        meeting_odds(
            d("2025-09-02"),
            &meetings(),
            c,
            425,
            effr("2025-08-29", 4.33),
        )
    }

    const MEETINGS: &[&str] = &[
        "2025-07-30",
        "2025-09-17",
        "2025-10-29",
        "2025-12-10",
        "2026-01-28",
    ];

    fn meetings() -> Vec<NaiveDate> {
        MEETINGS.iter().map(|m| d(m)).collect()
    }

    fn curve(points: &[(&str, f64)]) -> Curve {
        points.iter().map(|(m, r)| (d(m), *r)).collect()
    }

    fn effr(date: &str, pct: f64) -> Option<PublishedEffr> {
        Some(PublishedEffr { date: d(date), pct })
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Worked by hand. As of 2025-09-02 the target range is 4.25–4.50 % and the effective rate
    /// published that morning (for 2025-08-29) 4.33 %. The September contract settles at 95.7925,
    /// so r̄ = 4.2075 %. September has 30 days and the decision is on the 17th (17 days at the
    /// old rate, 13 at the new):
    ///   r_end = (4.2075·30 − 4.33·17) / 13 = (126.225 − 73.61) / 13 = 52.615 / 13 = 4.047308 %
    ///   move  = 4.047308 − 4.33 = −0.282692 % = −1.130769 steps of 25 bp
    ///   → 13.0769 % chance of −2 steps (3.75–4.00) and 86.9231 % of −1 step (4.00–4.25).
    #[test]
    fn hand_worked_single_meeting_from_the_published_effr() {
        let p = on_sep_2(&curve(&[("2025-09-01", 100.0 - 95.7925)]));
        assert_eq!(p.meetings.len(), 1, "no October contract: the chain stops");
        assert_eq!(
            p.gap,
            Some(Gap::NoContract {
                meeting: d("2025-10-29")
            })
        );
        let sep = &p.meetings[0];
        assert!(close(sep.rate_start_pct, 4.33));
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
        assert_eq!(
            sep.method,
            "start: EFFR of 2025-08-29; end: forward-solved from SEP 25"
        );
    }

    /// The chain with an anchor, by hand. As of 2025-09-02: September (meeting on the 17th),
    /// October (meeting on the 29th), November (no meeting: the anchor) at 3.80 %.
    ///   October: end = November's 3.80 (anchor); start back-solved from October's 3.95:
    ///     S = (3.95·31 − 3.80·2) / 29 = (122.45 − 7.6) / 29 = 3.960345 %
    ///   September: end = October's start 3.960345 (chain); start back-solved from 4.2075:
    ///     S = (4.2075·30 − 3.960345·13) / 17 = (126.225 − 51.484483) / 17 = 4.396501 %
    ///   September's move −0.436156 % = −1.744625 steps → 74.4625 % of −2, 25.5375 % of −1.
    ///   October's move −0.160345 % = −0.641379 steps → 64.1379 % of −1, 35.8621 % of 0.
    /// The effective rate (4.33 %) is not used: the contracts fix every rate.
    #[test]
    fn hand_worked_chain_back_from_an_anchor() {
        let c = curve(&[
            ("2025-09-01", 4.2075),
            ("2025-10-01", 3.95),
            ("2025-11-01", 3.80),
        ]);
        let p = on_sep_2(&c);
        assert_eq!(p.meetings.len(), 2);
        assert_eq!(
            p.gap,
            Some(Gap::NoContract {
                meeting: d("2025-12-10")
            })
        );
        let (sep, oct) = (&p.meetings[0], &p.meetings[1]);
        assert!(close(oct.rate_end_pct, 3.80));
        assert!((oct.rate_start_pct - 3.960345).abs() < 1e-6);
        assert!(close(sep.rate_end_pct, oct.rate_start_pct));
        assert!((sep.rate_start_pct - 4.396501).abs() < 1e-6);
        assert_eq!(
            sep.method,
            "start: back-solved from SEP 25; end: chain from OCT 25"
        );
        assert_eq!(
            oct.method,
            "start: back-solved from OCT 25; end: anchor NOV 25"
        );
        let s = &sep.probabilities;
        assert!((s[&375] - 0.744625).abs() < 1e-6, "{s:?}");
        assert!((s[&400] - 0.255375).abs() < 1e-6, "{s:?}");
        // October applied to September's distribution:
        //   350: 0.744625·0.641379 = 0.477587   375: 0.744625·0.358621 + 0.255375·0.641379 = 0.430830
        //   400: 0.255375·0.358621 = 0.091583
        let o = &oct.probabilities;
        assert!((o[&350] - 0.477587).abs() < 1e-5, "{o:?}");
        assert!((o[&375] - 0.430830).abs() < 1e-5, "{o:?}");
        assert!((o[&400] - 0.091583).abs() < 1e-5, "{o:?}");
    }

    /// Item 5 of issue 11: 2025-10-27 with the front month only. The October meeting is on the
    /// 29th (2 days after it), there is no November contract: no odds, and the reason says so.
    #[test]
    fn a_late_meeting_without_the_next_contract_gets_no_odds() {
        let p = meeting_odds(
            d("2025-10-27"),
            &meetings(),
            &curve(&[("2025-10-01", 4.0)]),
            400,
            effr("2025-10-24", 4.11),
        );
        assert!(p.meetings.is_empty());
        let gap = p.gap.unwrap();
        assert_eq!(
            gap,
            Gap::LateInMonth {
                meeting: d("2025-10-29"),
                days_after: 2,
                next_listed: false
            }
        );
        assert!(
            gap.to_string().starts_with(
                "meeting 2025-10-29 is 2 days before month end and the NOV 25 contract is missing"
            ),
            "{gap}"
        );
        // 2025-07-30: one day after the decision.
        let p = meeting_odds(
            d("2025-07-30"),
            &meetings(),
            &curve(&[("2025-07-01", 4.33)]),
            425,
            effr("2025-07-29", 4.33),
        );
        assert!(p.meetings.is_empty());
        assert!(
            p.gap
                .unwrap()
                .to_string()
                .starts_with("meeting 2025-07-30 is 1 day before month end and the AUG 25"),
        );
        // With the November contract (no meeting in November) the late meeting is priced from it.
        let p = meeting_odds(
            d("2025-10-27"),
            &meetings(),
            &curve(&[("2025-10-01", 4.0), ("2025-11-01", 3.87)]),
            400,
            effr("2025-10-24", 4.11),
        );
        assert_eq!(p.meetings.len(), 1);
        assert!(close(p.meetings[0].rate_end_pct, 3.87));
    }

    #[test]
    fn no_published_effr_and_no_earlier_contract_means_no_start() {
        let p = meeting_odds(
            d("2025-09-02"),
            &meetings(),
            &curve(&[("2025-09-01", 4.2075)]),
            425,
            None,
        );
        assert!(p.meetings.is_empty());
        assert_eq!(
            p.gap,
            Some(Gap::NoStartRate {
                meeting: d("2025-09-17")
            })
        );
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
        let p = on_sep_2(&c);
        // January 2026 (meeting on the 28th, 3 days left) is the calendar's last month: February
        // is past its horizon, so nothing fixes January's end rate.
        assert_eq!(p.meetings.len(), 3);
        assert!(matches!(p.gap, Some(Gap::LateInMonth { .. })));
        for m in &p.meetings {
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
        ]);
        let p = on_sep_2(&c);
        assert_eq!(p.meetings.len(), 3);
        for m in p.meetings {
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
        let c = curve(&[
            ("2025-09-01", sep),
            ("2025-10-01", 4.08),
            ("2025-11-01", 4.08),
        ]);
        let p = on_sep_2(&c);
        let odds = &p.meetings;
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
        let p = meeting_odds(
            d("2025-10-02"),
            &meetings(),
            &c,
            400,
            effr("2025-10-01", 4.10),
        );
        // October's meeting is 2 days before month end and November is not listed.
        assert!(p.meetings.is_empty());
        let p = meeting_odds(
            d("2025-09-20"),
            &meetings(),
            &Curve::new(),
            400,
            effr("2025-09-19", 4.1),
        );
        assert!(p.meetings.is_empty());
        assert_eq!(
            p.gap,
            Some(Gap::NoContract {
                meeting: d("2025-10-29")
            })
        );
    }

    fn recorded_curve(day: u32) -> Curve {
        let path = format!(
            "{}/tests/fixtures/upstream/www.cmegroup.com/CmeWS_mvc_Settlements_Futures_Settlements_305_FUT--tradeDate=09_2F{day}_2F2026.body.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read(path).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 9, day).unwrap();
        crate::sources::futures::parse::cme_settlements(&body, date)
            .unwrap()
            .into_iter()
            .map(|s| (s.contract_month.unwrap(), 100.0 - s.settle))
            .collect()
    }

    fn calendar() -> Vec<NaiveDate> {
        super::super::parse_meetings(include_str!("../../../sql/seeds/fomc_meetings.csv")).unwrap()
    }

    /// CME's published FedWatch odds for the 2026-09-18 settlement (read off the tool on
    /// 2026-09-20; tjdwls101010/CME-FedWatch tests/test_calc_against_cme.py), from the real
    /// recorded curve, in percent: October 3.75–4.00 42.4, 4.00–4.25 57.6; December 9.9, 46.0,
    /// 44.1. CME prints one decimal, so ±0.05 is rounding; the issue's bar is 0.5.
    /// The previous method (start = the effective rate 3.88 %, December's end solved forward from
    /// December's own contract) gave October 42.0 / 58.0 and December 8.9 / 45.4 / 45.8: 0.4 and
    /// 1.7 percentage points off.
    #[test]
    fn matches_cme_published_odds_on_2026_09_18() {
        let p = meeting_odds(
            d("2026-09-18"),
            &calendar(),
            &recorded_curve(18),
            375,
            effr("2026-09-17", 3.88),
        );
        let pct = |k: usize, low: i64| {
            100.0
                * p.meetings[k]
                    .probabilities
                    .get(&low)
                    .copied()
                    .unwrap_or(0.0)
        };
        assert_eq!(p.meetings[0].meeting_date, d("2026-10-28"));
        assert_eq!(p.meetings[1].meeting_date, d("2026-12-09"));
        let published = [
            (0, 375, 42.4),
            (0, 400, 57.6),
            (1, 375, 9.9),
            (1, 400, 46.0),
            (1, 425, 44.1),
        ];
        for (k, low, cme) in published {
            let ours = pct(k, low);
            assert!(
                (ours - cme).abs() <= 0.06,
                "meeting {k}, {low} bp: ours {ours:.2}, CME {cme}"
            );
        }
        assert_eq!(
            p.meetings[0].method,
            "start: back-solved from OCT 26; end: anchor NOV 26"
        );
        assert_eq!(
            p.meetings[1].method,
            "start: anchor NOV 26; end: chain from JAN 27"
        );
    }

    /// The whole curve on each recorded day: every meeting within 12 months is priced and each
    /// distribution sums to 1; after the 2026-09-16 hike the start range is 3.75–4.00.
    #[test]
    fn whole_curve_prices_every_meeting_within_a_year() {
        let meetings = calendar();
        for (day, low) in [(14, 350), (15, 350), (16, 350), (17, 375), (18, 375)] {
            let as_of = NaiveDate::from_ymd_opt(2026, 9, day).unwrap();
            let p = meeting_odds(as_of, &meetings, &recorded_curve(day), low, None);
            let within: Vec<NaiveDate> = meetings
                .iter()
                .copied()
                .filter(|m| *m >= as_of && (*m - as_of).num_days() <= 365)
                .collect();
            assert!(within.len() >= 8, "{as_of}: {within:?}");
            let priced: Vec<NaiveDate> = p.meetings.iter().map(|m| m.meeting_date).collect();
            assert_eq!(priced[..within.len()], within[..], "{as_of}: {:?}", p.gap);
            for m in &p.meetings {
                let total: f64 = m.probabilities.values().sum();
                assert!(
                    (total - 1.0).abs() < 1e-9,
                    "{as_of} {}: {total}",
                    m.meeting_date
                );
            }
            // The next meeting's outcomes are "no change" from the range in force and one step
            // (on the decision day itself the settlements already price the hike).
            let first: Vec<i64> = p.meetings[0].probabilities.keys().copied().collect();
            if day != 16 {
                assert_eq!(first, vec![low, low + 25], "{as_of}");
            }
        }
    }

    #[test]
    fn rates_are_bounded_below_by_zero() {
        // A 60 bp cut priced from the 0–25 bp range folds into 0–25.
        let c = curve(&[("2025-12-01", 0.05 - 0.6 * 21.0 / 31.0)]);
        let p = meeting_odds(
            d("2025-12-01"),
            &meetings(),
            &c,
            0,
            effr("2025-11-28", 0.05),
        );
        assert_eq!(
            p.meetings[0]
                .probabilities
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![0]
        );
    }
}
