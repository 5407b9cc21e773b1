//! When a job fires: cron ticks read as wall-clock times in the job's zone, mapped to instants
//! the way crontab users expect across daylight-saving changes, and the misfire policy that
//! decides which of several due ticks run.
//!
//! The [`Crontab`] is evaluated on *naive* local (wall-clock) times, and each naive time is then
//! placed in the zone:
//!
//! - a local time that happens once is that instant;
//! - a local time that happens twice (the fall-back hour) is its **first** occurrence only, so it
//!   runs once;
//! - a local time skipped by a spring-forward gap runs once, at the first instant after the jump
//!   (several skipped ticks in one gap collapse into that single run).

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::crontab::Crontab;

/// What to do with ticks that passed while no daemon was running (more than the grace period
/// late).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Record the missed ticks as skipped; run nothing for them.
    Skip,
    /// Run once for the newest due tick; record older missed ticks as skipped.
    #[default]
    Latest,
    /// Run every missed tick, oldest first, at most `misfire_max_runs` of them (the newest ones);
    /// record the rest as skipped.
    All,
}

/// What the daemon decided for a set of due ticks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Ticks to run, oldest first.
    pub run: Vec<DateTime<Utc>>,
    /// Ticks recorded as skipped, oldest first.
    pub skip: Vec<DateTime<Utc>>,
}

/// Places a naive local time in `tz` per the module rules; `None` only if no valid local time
/// follows within a day (never for real zones).
pub fn place(tz: &Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(first) = tz.from_local_datetime(&naive).earliest() {
        return Some(first.with_timezone(&Utc));
    }
    // In a gap: the first valid minute after it is the instant of the jump.
    let start = naive - Duration::seconds(naive.and_utc().timestamp().rem_euclid(60));
    (1..=24 * 60).find_map(|m| {
        tz.from_local_datetime(&(start + Duration::minutes(m)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The instants `schedule` fires strictly after `after`, in `tz`, in order and without
/// duplicates.
pub fn ticks_after<'a>(
    schedule: &'a Crontab,
    tz: Tz,
    after: DateTime<Utc>,
) -> impl Iterator<Item = DateTime<Utc>> + 'a {
    // Start three hours of wall clock early so a tick placed at the end of a gap, or a first
    // occurrence before `after` in a repeated hour, is not missed; filter by instant below.
    let local_start = after.with_timezone(&tz).naive_local() - Duration::hours(3);
    let mut last: Option<DateTime<Utc>> = None;
    schedule
        .after(local_start)
        .filter_map(move |wall| place(&tz, wall))
        .filter(move |t| *t > after)
        .filter(move |t| {
            let fresh = last.is_none_or(|l| *t > l);
            if fresh {
                last = Some(*t);
            }
            fresh
        })
}

/// Most ticks [`ticks_between`] returns: a per-minute job whose daemon was down for months
/// keeps only its newest ticks.
pub const MAX_DUE: usize = 10_000;

/// The ticks in `(after, until]`, oldest first; at most [`MAX_DUE`], the newest ones.
pub fn ticks_between(
    schedule: &Crontab,
    tz: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut due = std::collections::VecDeque::new();
    for t in ticks_after(schedule, tz, after).take_while(|t| *t <= until) {
        if due.len() == MAX_DUE {
            due.pop_front();
        }
        due.push_back(t);
    }
    due.into()
}

impl Misfire {
    /// Splits the due ticks (oldest first) into runs and skips. Ticks at most `grace` old at `now`
    /// are on time and always run; older ones are misfires and follow the policy.
    pub fn plan(
        self,
        due: &[DateTime<Utc>],
        now: DateTime<Utc>,
        grace: Duration,
        max_runs: usize,
    ) -> Plan {
        let (missed, on_time): (Vec<_>, Vec<_>) = due.iter().partition(|t| now - **t > grace);
        let mut plan = Plan::default();
        match self {
            Misfire::Skip => {
                plan.skip = missed;
                plan.run = on_time;
            }
            Misfire::Latest => {
                let all: Vec<_> = missed.into_iter().chain(on_time).collect();
                if let Some((newest, older)) = all.split_last() {
                    plan.skip = older.to_vec();
                    plan.run = vec![*newest];
                }
            }
            Misfire::All => {
                let cut = missed.len().saturating_sub(max_runs);
                plan.skip = missed[..cut].to_vec();
                plan.run = missed[cut..].iter().copied().chain(on_time).collect();
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn sched(expr: &str) -> Crontab {
        Crontab::from_str(expr).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ny() -> Tz {
        "America/New_York".parse().unwrap()
    }

    #[test]
    fn spring_forward_gap_runs_once_right_after_the_jump() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist in New York.
        let s = sched("30 2 * * *");
        let ticks = ticks_between(
            &s,
            ny(),
            utc("2026-03-07T00:00:00Z"),
            utc("2026-03-10T00:00:00Z"),
        );
        assert_eq!(
            ticks,
            vec![
                utc("2026-03-07T07:30:00Z"), // 02:30 EST
                utc("2026-03-08T07:00:00Z"), // 03:00 EDT, the instant of the jump
                utc("2026-03-09T06:30:00Z"), // 02:30 EDT
            ]
        );
        // Every quarter hour through the gap: the four missing times collapse into one run at
        // the jump, and 03:00 itself (the same instant) is not run twice.
        let s = sched("*/15 * * * *");
        let ticks = ticks_between(
            &s,
            ny(),
            utc("2026-03-08T06:40:00Z"),
            utc("2026-03-08T07:20:00Z"),
        );
        assert_eq!(
            ticks,
            vec![
                utc("2026-03-08T06:45:00Z"), // 01:45 EST
                utc("2026-03-08T07:00:00Z"), // 03:00 EDT
                utc("2026-03-08T07:15:00Z"), // 03:15 EDT
            ]
        );
    }

    #[test]
    fn fall_back_repeated_time_runs_once() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        let s = sched("30 1 * * *");
        let ticks = ticks_between(
            &s,
            ny(),
            utc("2026-10-31T12:00:00Z"),
            utc("2026-11-02T12:00:00Z"),
        );
        assert_eq!(
            ticks,
            vec![
                utc("2026-11-01T05:30:00Z"), // 01:30 EDT, first occurrence only
                utc("2026-11-02T06:30:00Z"), // 01:30 EST the next day
            ]
        );
        // A daemon restarted inside the repeated hour (01:10 EST, after the first 01:30 ran)
        // does not run 01:30 again.
        let next = ticks_after(&s, ny(), utc("2026-11-01T06:10:00Z")).next();
        assert_eq!(next, Some(utc("2026-11-02T06:30:00Z")));
    }

    #[test]
    fn weekday_schedule_skips_weekends_across_year_end() {
        let s = sched("30 18 * * MON-FRI");
        let ticks = ticks_between(
            &s,
            ny(),
            utc("2026-12-30T00:00:00Z"),
            utc("2027-01-06T00:00:00Z"),
        );
        let days: Vec<String> = ticks
            .iter()
            .map(|t| t.with_timezone(&ny()).format("%a %F %H:%M").to_string())
            .collect();
        assert_eq!(
            days,
            [
                "Wed 2026-12-30 18:30",
                "Thu 2026-12-31 18:30",
                "Fri 2027-01-01 18:30",
                "Mon 2027-01-04 18:30",
                "Tue 2027-01-05 18:30",
            ]
        );
    }

    #[test]
    fn leap_day_schedule_waits_for_the_next_leap_year() {
        let s = sched("0 12 29 2 *");
        let next = ticks_after(&s, ny(), utc("2026-01-01T00:00:00Z")).next();
        assert_eq!(next, Some(utc("2028-02-29T17:00:00Z")));
    }

    #[test]
    fn misfire_policies() {
        let now = utc("2026-06-05T12:00:30Z");
        let due: Vec<_> = (8..=12)
            .map(|h| utc(&format!("2026-06-05T{h:02}:00:00Z")))
            .collect();
        let grace = Duration::seconds(60);
        let p = Misfire::Skip.plan(&due, now, grace, 3);
        assert_eq!(p.run, vec![due[4]], "the on-time tick still runs");
        assert_eq!(p.skip, due[..4].to_vec());
        let p = Misfire::Latest.plan(&due, now, grace, 3);
        assert_eq!((p.run, p.skip), (vec![due[4]], due[..4].to_vec()));
        let p = Misfire::All.plan(&due, now, grace, 3);
        assert_eq!(
            p.run,
            due[1..].to_vec(),
            "the 3 newest missed plus the on-time one"
        );
        assert_eq!(p.skip, vec![due[0]]);
        // All missed (nothing on time): latest runs the newest missed one.
        let late = utc("2026-06-05T15:00:00Z");
        let p = Misfire::Latest.plan(&due, late, grace, 3);
        assert_eq!(p.run, vec![due[4]]);
        assert!(Misfire::Skip.plan(&due, late, grace, 3).run.is_empty());
        assert_eq!(
            Misfire::All.plan(&due, late, grace, 3).run,
            due[2..].to_vec()
        );
    }
}
