//! Crontab semantics, checked against next fire times worked out by hand from crontab's rules
//! (calendar days looked up on a printed 2026-2028 calendar), not from this code's output.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::crontab::{CronError, Crontab};
use super::ticks::ticks_after;

/// (expression, zone, after (an instant), the next fire times in the zone's wall clock).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const NY: &str = "America/New_York";
const LDN: &str = "Europe/London";
const UTC: &str = "UTC";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Day-of-month and day-of-week both restricted: EITHER matches (the 1st, and every Monday).
    ("0 9 1 * MON", NY, "2026-06-27T00:00:00-04:00",
     &["2026-06-29 Mon 09:00 -04:00", "2026-07-01 Wed 09:00 -04:00", "2026-07-06 Mon 09:00 -04:00"]),
    // "1-7" is every day 1..7, not the first week: Sep 1-6 by date, then Mondays.
    ("0 9 1-7 * MON", UTC, "2026-08-31T12:00:00Z",
     &["2026-09-01 Tue 09:00 +00:00", "2026-09-02 Wed 09:00 +00:00", "2026-09-03 Thu 09:00 +00:00",
       "2026-09-04 Fri 09:00 +00:00", "2026-09-05 Sat 09:00 +00:00", "2026-09-06 Sun 09:00 +00:00",
       "2026-09-07 Mon 09:00 +00:00", "2026-09-14 Mon 09:00 +00:00"]),
    // Friday OR the 13th.
    ("0 0 13 * FRI", UTC, "2026-11-09T00:00:00Z",
     &["2026-11-13 Fri 00:00 +00:00", "2026-11-20 Fri 00:00 +00:00", "2026-11-27 Fri 00:00 +00:00",
       "2026-12-04 Fri 00:00 +00:00", "2026-12-11 Fri 00:00 +00:00", "2026-12-13 Sun 00:00 +00:00"]),
    // A day field starting with '*' makes it AND (Vixie): odd days that are Mondays.
    ("0 0 */2 * MON", UTC, "2026-06-01T00:00:00Z",
     &["2026-06-15 Mon 00:00 +00:00", "2026-06-29 Mon 00:00 +00:00", "2026-07-13 Mon 00:00 +00:00"]),
    // Day-of-month '*': month AND weekday — Mondays of February.
    ("0 9 * FEB MON", UTC, "2026-07-01T00:00:00Z",
     &["2027-02-01 Mon 09:00 +00:00", "2027-02-08 Mon 09:00 +00:00"]),
    // Weekdays, quarter hours in office hours.
    ("*/15 9-17 * * 1-5", UTC, "2026-07-03T17:40:00Z",
     &["2026-07-03 Fri 17:45 +00:00", "2026-07-06 Mon 09:00 +00:00", "2026-07-06 Mon 09:15 +00:00"]),
    ("0 9 * * MON-FRI", UTC, "2026-12-31T10:00:00Z",
     &["2027-01-01 Fri 09:00 +00:00", "2027-01-04 Mon 09:00 +00:00", "2027-01-05 Tue 09:00 +00:00"]),
    ("0 22 * * 1-5", UTC, "2026-07-03T22:00:00Z", &["2026-07-06 Mon 22:00 +00:00"]),
    // 1-7 is Monday..Sunday: every day.
    ("0 9 * * 1-7", LDN, "2026-07-03T12:00:00+01:00",
     &["2026-07-04 Sat 09:00 +01:00", "2026-07-05 Sun 09:00 +01:00", "2026-07-06 Mon 09:00 +01:00"]),
    // 7 is Sunday, as is 0; both written fires once.
    ("0 9 * * 7", UTC, "2026-07-01T00:00:00Z",
     &["2026-07-05 Sun 09:00 +00:00", "2026-07-12 Sun 09:00 +00:00"]),
    ("0 22 * * 0,7", UTC, "2026-07-01T00:00:00Z",
     &["2026-07-05 Sun 22:00 +00:00", "2026-07-12 Sun 22:00 +00:00"]),
    ("5 4 * * sun", UTC, "2026-07-01T00:00:00Z", &["2026-07-05 Sun 04:05 +00:00"]),
    ("0 9 * * SUN,SAT", UTC, "2026-07-01T00:00:00Z",
     &["2026-07-04 Sat 09:00 +00:00", "2026-07-05 Sun 09:00 +00:00", "2026-07-11 Sat 09:00 +00:00"]),
    // A range ending on Sunday: Friday to Sunday.
    ("0 0 * * FRI-SUN", UTC, "2026-07-01T00:00:00Z",
     &["2026-07-03 Fri 00:00 +00:00", "2026-07-04 Sat 00:00 +00:00", "2026-07-05 Sun 00:00 +00:00",
       "2026-07-10 Fri 00:00 +00:00"]),
    ("0 0 * * 5-7", UTC, "2026-07-01T00:00:00Z",
     &["2026-07-03 Fri 00:00 +00:00", "2026-07-04 Sat 00:00 +00:00", "2026-07-05 Sun 00:00 +00:00"]),
    // Leap day: the next leap year, then the one after.
    ("0 0 29 2 *", UTC, "2026-03-01T00:00:00Z",
     &["2028-02-29 Tue 00:00 +00:00", "2032-02-29 Sun 00:00 +00:00"]),
    // The 31st skips the short months.
    ("0 9 31 * *", UTC, "2026-03-31T10:00:00Z",
     &["2026-05-31 Sun 09:00 +00:00", "2026-07-31 Fri 09:00 +00:00", "2026-08-31 Mon 09:00 +00:00"]),
    ("59 23 31 12 *", UTC, "2026-06-01T00:00:00Z",
     &["2026-12-31 Thu 23:59 +00:00", "2027-12-31 Fri 23:59 +00:00"]),
    ("15 14 1 * *", UTC, "2026-07-01T14:15:00Z",
     &["2026-08-01 Sat 14:15 +00:00", "2026-09-01 Tue 14:15 +00:00"]),
    // Lists and steps over ranges.
    ("0,20,40 8 * * *", UTC, "2026-07-01T08:10:00Z",
     &["2026-07-01 Wed 08:20 +00:00", "2026-07-01 Wed 08:40 +00:00", "2026-07-02 Thu 08:00 +00:00"]),
    ("5-59/20 * * * *", UTC, "2026-07-01T10:50:00Z",
     &["2026-07-01 Wed 11:05 +00:00", "2026-07-01 Wed 11:25 +00:00", "2026-07-01 Wed 11:45 +00:00",
       "2026-07-01 Wed 12:05 +00:00"]),
    ("23 0-20/2 * * *", UTC, "2026-07-01T20:23:00Z",
     &["2026-07-02 Thu 00:23 +00:00", "2026-07-02 Thu 02:23 +00:00"]),
    // Month names, lists and ranges, any case.
    ("0 12 * JAN,JUL *", UTC, "2026-07-31T13:00:00Z",
     &["2027-01-01 Fri 12:00 +00:00", "2027-01-02 Sat 12:00 +00:00"]),
    ("0 0 1 jun-aug *", UTC, "2026-08-01T00:00:00Z",
     &["2027-06-01 Tue 00:00 +00:00", "2027-07-01 Thu 00:00 +00:00", "2027-08-01 Sun 00:00 +00:00"]),
    // Aliases.
    ("@hourly", UTC, "2026-07-01T10:00:00Z", &["2026-07-01 Wed 11:00 +00:00", "2026-07-01 Wed 12:00 +00:00"]),
    ("@weekly", UTC, "2026-07-01T00:00:00Z", &["2026-07-05 Sun 00:00 +00:00", "2026-07-12 Sun 00:00 +00:00"]),
    ("@monthly", NY, "2026-07-15T00:00:00-04:00",
     &["2026-08-01 Sat 00:00 -04:00", "2026-09-01 Tue 00:00 -04:00"]),
    ("@yearly", UTC, "2026-07-01T00:00:00Z", &["2027-01-01 Fri 00:00 +00:00", "2028-01-01 Sat 00:00 +00:00"]),
    ("@daily", LDN, "2026-03-28T12:00:00Z", &["2026-03-29 Sun 00:00 +00:00", "2026-03-30 Mon 00:00 +01:00"]),
    // New York, spring forward 2026-03-08 (02:00 EST -> 03:00 EDT): 02:30 runs once, at 03:00.
    ("30 2 * * *", NY, "2026-03-07T00:00:00-05:00",
     &["2026-03-07 Sat 02:30 -05:00", "2026-03-08 Sun 03:00 -04:00", "2026-03-09 Mon 02:30 -04:00"]),
    // Both 02:00 and 02:30 fall in the gap: one run at the jump.
    ("*/30 2 * * *", NY, "2026-03-08T00:00:00-05:00",
     &["2026-03-08 Sun 03:00 -04:00", "2026-03-09 Mon 02:00 -04:00", "2026-03-09 Mon 02:30 -04:00"]),
    ("0 */6 * * *", NY, "2026-03-07T23:00:00-05:00",
     &["2026-03-08 Sun 00:00 -05:00", "2026-03-08 Sun 06:00 -04:00", "2026-03-08 Sun 12:00 -04:00"]),
    // New York, fall back 2026-11-01 (02:00 EDT -> 01:00 EST): 02:30 happens once anyway; the
    // repeated 01:xx runs the first time only.
    ("30 2 * * *", NY, "2026-10-31T00:00:00-04:00",
     &["2026-10-31 Sat 02:30 -04:00", "2026-11-01 Sun 02:30 -05:00", "2026-11-02 Mon 02:30 -05:00"]),
    ("30 1 * * *", NY, "2026-10-31T00:00:00-04:00",
     &["2026-10-31 Sat 01:30 -04:00", "2026-11-01 Sun 01:30 -04:00", "2026-11-02 Mon 01:30 -05:00"]),
    ("*/20 1 * * *", NY, "2026-11-01T00:00:00-04:00",
     &["2026-11-01 Sun 01:00 -04:00", "2026-11-01 Sun 01:20 -04:00", "2026-11-01 Sun 01:40 -04:00",
       "2026-11-02 Mon 01:00 -05:00"]),
    // London, spring forward 2026-03-29 (01:00 GMT -> 02:00 BST): 02:30 exists; 01:30 does not
    // and runs at the jump, 02:00 BST.
    ("30 2 * * *", LDN, "2026-03-28T00:00:00Z",
     &["2026-03-28 Sat 02:30 +00:00", "2026-03-29 Sun 02:30 +01:00", "2026-03-30 Mon 02:30 +01:00"]),
    ("30 1 * * *", LDN, "2026-03-28T00:00:00Z",
     &["2026-03-28 Sat 01:30 +00:00", "2026-03-29 Sun 02:00 +01:00", "2026-03-30 Mon 01:30 +01:00"]),
    // London, fall back 2026-10-25 (02:00 BST -> 01:00 GMT): 02:30 once; 01:30 the first time.
    ("30 2 * * *", LDN, "2026-10-24T00:00:00+01:00",
     &["2026-10-24 Sat 02:30 +01:00", "2026-10-25 Sun 02:30 +00:00", "2026-10-26 Mon 02:30 +00:00"]),
    ("30 1 * * *", LDN, "2026-10-24T12:00:00+01:00",
     &["2026-10-25 Sun 01:30 +01:00", "2026-10-26 Mon 01:30 +00:00"]),
];

fn next(expr: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
    let c = Crontab::from_str(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let tz: Tz = zone.parse().unwrap();
    let after = DateTime::parse_from_rfc3339(after)
        .unwrap()
        .with_timezone(&Utc);
    ticks_after(&c, tz, after)
        .take(n)
        .map(|t| t.with_timezone(&tz).format("%F %a %H:%M %:z").to_string())
        .collect()
}

#[test]
fn next_fire_times_match_crontab_semantics() {
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
    let mut failures = Vec::new();
    for (expr, zone, after, want) in CASES {
        let got = next(expr, zone, after, want.len());
        if got != *want {
            failures.push(format!(
                "{expr:?} in {zone} after {after}:\n  want {want:?}\n  got  {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn equivalent_spellings_fire_alike() {
    let after = "2026-01-01T00:00:00Z";
    for (a, b) in [
        ("0 9 * * 0", "0 9 * * 7"),
        ("0 9 * * sun", "0 9 * * SUN"),
        ("0 9 * * 1-5", "0 9 * * MON-FRI"),
        ("0 9 * * 0-6", "0 9 * * *"),
        ("0 9 * 1-12 *", "0 9 * JAN-DEC *"),
        ("@midnight", "0 0 * * *"),
        ("@annually", "0 0 1 1 *"),
        ("*/1 * * * *", "* * * * *"),
    ] {
        assert_eq!(
            next(a, UTC, after, 20),
            next(b, UTC, after, 20),
            "{a} vs {b}"
        );
    }
}

/// Every error quotes the field as the user wrote it, never a translated number.
#[test]
fn bad_expressions_say_which_field_and_value() {
    let cases: &[(&str, &str)] = &[
        (
            "0 9 * *",
            "expected 5 fields (minute hour day-of-month month day-of-week) or an alias such as @daily, got 4",
        ),
        ("0 9 * * 1-5 x", "got 6"),
        (
            "61 * * * *",
            "minute field \"61\": 61 is out of range; use a number 0-59",
        ),
        (
            "0 24 * * *",
            "hour field \"24\": 24 is out of range; use a number 0-23",
        ),
        (
            "0 9 0 * *",
            "day-of-month field \"0\": 0 is out of range; use a number 1-31",
        ),
        (
            "0 9 * 13 *",
            "month field \"13\": 13 is out of range; use a number 1-12 or a name JAN-DEC",
        ),
        (
            "0 9 * * 8",
            "day-of-week field \"8\": 8 is out of range; use a number 0-7 (0 and 7 are Sunday) or a name SUN-SAT",
        ),
        (
            "0 9 * * 1-8",
            "day-of-week field \"1-8\": 8 is out of range",
        ),
        (
            "0 9 * * 1,9",
            "day-of-week field \"1,9\": 9 is out of range",
        ),
        (
            "0 9 * * MONDAY",
            "day-of-week field \"MONDAY\": \"MONDAY\" is not a number 0-7",
        ),
        (
            "0 9 * MON *",
            "month field \"MON\": \"MON\" is not a number 1-12 or a name JAN-DEC",
        ),
        (
            "0 9 * * FRI-MON",
            "day-of-week field \"FRI-MON\": range \"FRI-MON\" runs backwards",
        ),
        (
            "0 17-9 * * *",
            "hour field \"17-9\": range \"17-9\" runs backwards",
        ),
        (
            "*/0 * * * *",
            "minute field \"*/0\": step \"0\" in \"*/0\" is not a whole number ≥ 1",
        ),
        (
            "*/60 * * * *",
            "minute field \"*/60\": step 60 in \"*/60\" is larger than the field's largest value 59",
        ),
        (
            "5/10 * * * *",
            "minute field \"5/10\": \"5/10\": a step needs * or a range before the slash",
        ),
        (
            "0 9 1,,2 * *",
            "day-of-month field \"1,,2\": empty element in the list",
        ),
        (
            "0 9 1- * *",
            "day-of-month field \"1-\": a value is missing",
        ),
        (
            "+5 * * * *",
            "minute field \"+5\": \"+5\" is not a number 0-59",
        ),
        (
            "0 9 L * *",
            "day-of-month field \"L\": \"L\" is not a number 1-31",
        ),
        ("0 9 ? * MON", "day-of-month field \"?\""),
        ("0 9 * * MON#1", "day-of-week field \"MON#1\""),
        (
            "0 0 30 2 *",
            "never fires: no month in \"2\" has a day \"30\"",
        ),
        ("0 0 31 APR,JUN *", "never fires"),
        ("@reboot", "unknown alias \"@reboot\""),
    ];
    for (expr, want) in cases {
        let e = Crontab::from_str(expr).expect_err(expr).to_string();
        assert!(e.contains(want), "{expr:?}: {e}");
    }
    // Impossible as a date alone, but the weekday makes it fire (OR): accepted.
    assert!(Crontab::from_str("0 0 30 2 MON").is_ok());
    assert_eq!(
        Crontab::from_str("0 9 * * 8"),
        Err(CronError::Field {
            field: "day-of-week",
            text: "8".into(),
            message: "8 is out of range; use a number 0-7 (0 and 7 are Sunday) or a name SUN-SAT"
                .into()
        })
    );
}

#[test]
fn the_expression_displays_as_written() {
    for e in ["30 18 * * MON-FRI", "@daily", "0 9 * * 1-7"] {
        assert_eq!(Crontab::from_str(e).unwrap().to_string(), e);
    }
}
