//! Crontab expressions with the meaning crontab (Vixie cron / cronie) gives them, evaluated on
//! naive wall-clock times; [`super::ticks`] places those times in a zone.
//!
//! - Five fields: minute `0-59`, hour `0-23`, day-of-month `1-31`, month `1-12` or `JAN`-`DEC`,
//!   day-of-week `0-7` or `SUN`-`SAT` (0 and 7 are both Sunday). Names are case-insensitive.
//! - Each field is `*` or a comma list of `N`, `A-B` (low to high), `*/S` or `A-B/S`.
//!   A day-of-week range may end in `SUN` (`FRI-SUN`, meaning 5-7).
//! - Day-of-month and day-of-week: when **both** are restricted (neither field starts with `*`),
//!   a day matches if **either** matches — `0 9 1 * MON` fires on the 1st and on every Monday.
//!   When either starts with `*` (including `*/2`), both must match, as in Vixie cron.
//! - Aliases: `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`.
//! - An expression that can never fire (`0 0 30 2 *`) is rejected.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

/// Why a crontab expression was rejected; each names the field and the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five fields (and not an alias).
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week) or an alias such as @daily, got {count}"
    )]
    FieldCount {
        /// Fields found.
        count: usize,
    },
    /// An `@` word that is not a known alias.
    #[error(
        "unknown alias {alias:?}; known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
    )]
    Alias {
        /// As written.
        alias: String,
    },
    /// One field is malformed or out of range.
    #[error("{field} field {text:?}: {message}")]
    Field {
        /// `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
        field: &'static str,
        /// The field as written.
        text: String,
        /// What is wrong, quoting the part as written.
        message: String,
    },
    /// Valid syntax that no date satisfies.
    #[error("never fires: no month in {month:?} has a day {dom:?}")]
    Never {
        /// Day-of-month as written.
        dom: String,
        /// Month as written.
        month: String,
    },
}

/// One field's bounds and names.
struct Spec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min`, `min + 1`, …
    names: &'static [&'static str],
}

const MINUTE: Spec = Spec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Spec = Spec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Spec = Spec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Spec = Spec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DOW: Spec = Spec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

/// A parsed crontab expression (see the module docs for its meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crontab {
    text: String,
    minutes: u64,
    hours: u64,
    doms: u64,
    months: u64,
    /// Bits 0 (Sunday) to 6 (Saturday); a written 7 sets bit 0.
    dows: u64,
    dom_star: bool,
    dow_star: bool,
}

fn has(bits: u64, v: u32) -> bool {
    bits & (1u64 << v) != 0
}

impl Spec {
    fn err(&self, text: &str, message: String) -> CronError {
        CronError::Field {
            field: self.name,
            text: text.into(),
            message,
        }
    }

    /// What a value of this field may be, for messages.
    fn allowed(&self) -> String {
        match self.names {
            [] => format!("a number {}-{}", self.min, self.max),
            [first, .., last] if self.name == "day-of-week" => format!(
                "a number {}-{} (0 and 7 are Sunday) or a name {first}-{last}",
                self.min, self.max
            ),
            [first, .., last] => format!(
                "a number {}-{} or a name {first}-{last}",
                self.min, self.max
            ),
            [_] => unreachable!("no field has one name"),
        }
    }

    /// One value as written: digits or a name.
    fn value(&self, field: &str, v: &str, range_end: bool) -> Result<u32, CronError> {
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            return match v.parse::<u32>() {
                Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
                _ => Err(self.err(
                    field,
                    format!("{v} is out of range; use {}", self.allowed()),
                )),
            };
        }
        let upper = v.to_ascii_uppercase();
        match self.names.iter().position(|n| *n == upper) {
            // `FRI-SUN`: Sunday closing a range is 7.
            Some(0) if range_end && self.name == "day-of-week" => Ok(7),
            Some(i) => Ok(self.min + i as u32),
            None if v.is_empty() => Err(self.err(field, "a value is missing".into())),
            None => Err(self.err(field, format!("{v:?} is not {}", self.allowed()))),
        }
    }

    /// One comma-separated element: `*`, `N`, `A-B`, `*/S`, `A-B/S`.
    fn element(&self, field: &str, el: &str) -> Result<u64, CronError> {
        let (base, step) = match el.split_once('/') {
            Some((b, s)) => {
                let ok = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
                let n: u32 = s.parse().ok().filter(|n| ok && *n >= 1).ok_or_else(|| {
                    self.err(
                        field,
                        format!("step {s:?} in {el:?} is not a whole number ≥ 1"),
                    )
                })?;
                if n > self.max {
                    return Err(self.err(
                        field,
                        format!(
                            "step {n} in {el:?} is larger than the field's largest value {}",
                            self.max
                        ),
                    ));
                }
                (b, Some(n))
            }
            None => (el, None),
        };
        let (lo, hi) = if base == "*" {
            (self.min, self.max)
        } else if let Some((a, b)) = base.split_once('-') {
            let (lo, hi) = (self.value(field, a, false)?, self.value(field, b, true)?);
            if lo > hi {
                return Err(self.err(
                    field,
                    format!(
                        "range {base:?} runs backwards; write low-high, or a list of two ranges"
                    ),
                ));
            }
            (lo, hi)
        } else {
            if step.is_some() {
                return Err(self.err(
                    field,
                    format!(
                        "{el:?}: a step needs * or a range before the slash (e.g. {base}-{}/…)",
                        self.max
                    ),
                ));
            }
            let v = self.value(field, base, false)?;
            (v, v)
        };
        let step = step.unwrap_or(1) as usize;
        Ok((lo..=hi).step_by(step).fold(0, |bits, v| bits | 1 << v))
    }

    /// A whole field: a comma list of elements.
    fn parse(&self, field: &str) -> Result<u64, CronError> {
        field.split(',').try_fold(0u64, |bits, el| {
            if el.is_empty() {
                return Err(self.err(field, "empty element in the list".into()));
            }
            Ok(bits | self.element(field, el)?)
        })
    }
}

/// The five-field form of an alias.
fn alias(word: &str) -> Result<&'static str, CronError> {
    Ok(match word.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            return Err(CronError::Alias { alias: word.into() });
        }
    })
}

/// Days in `month` at most (February counts 29).
fn max_days(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl FromStr for Crontab {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, CronError> {
        let trimmed = text.trim();
        let expanded = if trimmed.starts_with('@') {
            alias(trimmed)?
        } else {
            trimmed
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = f[..] else {
            return Err(CronError::FieldCount { count: f.len() });
        };
        let mut dows = DOW.parse(dow)?;
        if has(dows, 7) {
            dows = (dows & !(1 << 7)) | 1;
        }
        let c = Crontab {
            text: trimmed.into(),
            minutes: MINUTE.parse(minute)?,
            hours: HOUR.parse(hour)?,
            doms: DOM.parse(dom)?,
            months: MONTH.parse(month)?,
            dows,
            dom_star: dom.starts_with('*'),
            dow_star: dow.starts_with('*'),
        };
        // Only "day-of-month AND any weekday" can miss every date (restricted weekdays recur).
        let possible = (1..=12)
            .filter(|m| has(c.months, *m))
            .any(|m| (1..=max_days(m)).any(|d| has(c.doms, d)));
        if c.dow_star && !possible {
            return Err(CronError::Never {
                dom: dom.into(),
                month: month.into(),
            });
        }
        Ok(c)
    }
}

impl fmt::Display for Crontab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Longest search for a next date: Feb 29 on a given weekday can be 40 years away.
const HORIZON_DAYS: i64 = 366 * 60;

impl Crontab {
    /// Whether the expression fires on `date` (month, then the day-of-month/day-of-week rule).
    pub fn matches_day(&self, date: NaiveDate) -> bool {
        if !has(self.months, date.month()) {
            return false;
        }
        let dom = has(self.doms, date.day());
        let dow = has(self.dows, date.weekday().num_days_from_sunday());
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first (hour, minute) at or after `from` the expression fires in a day.
    fn first_time(&self, (h0, m0): (u32, u32)) -> Option<(u32, u32)> {
        (h0..24).filter(|h| has(self.hours, *h)).find_map(|h| {
            let start = if h == h0 { m0 } else { 0 };
            (start..60).find(|m| has(self.minutes, *m)).map(|m| (h, m))
        })
    }

    /// The first wall-clock minute strictly after `t` that the expression fires (`None` if none
    /// within 60 years).
    pub fn next_after(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = t.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let end = start
            .date()
            .checked_add_signed(Duration::days(HORIZON_DAYS))?;
        let mut date = start.date();
        let mut from = (start.hour(), start.minute());
        while date <= end {
            if !has(self.months, date.month()) {
                // Skip to the first of the next month.
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                date = NaiveDate::from_ymd_opt(y, m, 1)?;
                from = (0, 0);
                continue;
            }
            if self.matches_day(date)
                && let Some((h, m)) = self.first_time(from)
            {
                return date.and_hms_opt(h, m, 0);
            }
            date = date.succ_opt()?;
            from = (0, 0);
        }
        None
    }

    /// Every firing wall-clock minute strictly after `t`, in order.
    pub fn after(&self, t: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        std::iter::successors(self.next_after(t), |p| self.next_after(*p))
    }
}
