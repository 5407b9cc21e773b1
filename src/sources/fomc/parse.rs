//! Parsing the Federal Reserve Board's FOMC meeting calendar page
//! (`https://www.federalreserve.gov/monetarypolicy/fomccalendars.htm`) with an HTML parser
//! (`scraper`: html5ever + CSS selectors), never with patterns over the raw page.
//!
//! The page, as served on 2026-09-20 (recorded in `tests/fixtures/upstream/www.federalreserve.gov/`):
//!
//! * one `div.panel` per year, headed `<h4>2026 FOMC Meetings</h4>` in `.panel-heading`;
//! * in it one `div.fomc-meeting` row per meeting, with the month in `.fomc-meeting__month`
//!   (`January`, or `Apr/May` / `Jan/Feb` for a meeting that spans two months) and the days in
//!   `.fomc-meeting__date`: `27-28` (a two-day meeting: the decision is on the second day),
//!   `17-18*` (`*`: a Summary of Economic Projections, per the panel footer), `30-1` (across the
//!   month boundary), or one day with a parenthesis saying what it was: `22 (notation vote)`;
//!   older panels say `(unscheduled)` or `(cancelled)` the same way;
//! * after the panels, notes such as "A two-day meeting is scheduled for January 25-26, 2028."
//!   announcing a meeting of a year that has no panel yet;
//! * `div#lastUpdate`: "Last Update: September 16, 2026".
//!
//! Strict about what matters (a year panel's heading, month names, day numbers, real dates) and
//! tolerant of everything else (links, statements, minutes, added markup). A row whose month or
//! days cannot be read is an error naming the panel and the cell text, not a skipped meeting.

use chrono::{Datelike, NaiveDate};
use scraper::{ElementRef, Html, Selector};

/// A parse failure of the calendar page.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What is wrong, with the panel and cell text.
    pub message: String,
}

impl ParseError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// What a calendar entry is, from the parenthesis in its date cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeetingKind {
    /// A regularly scheduled meeting (no parenthesis).
    Scheduled,
    /// `(unscheduled)`: a meeting called between the scheduled ones (e.g. 2020-03-15).
    Unscheduled,
    /// `(notation vote)`: a written vote, not a meeting (e.g. 2025-08-22).
    NotationVote,
    /// `(cancelled)` / `(canceled)`: a scheduled meeting that did not take place.
    Cancelled,
    /// Any other parenthesis, kept as written (lower case).
    Other(String),
}

impl MeetingKind {
    fn from_note(note: Option<&str>) -> Self {
        let Some(note) = note else {
            return MeetingKind::Scheduled;
        };
        let n = note.trim().to_ascii_lowercase();
        match n.as_str() {
            "unscheduled" => MeetingKind::Unscheduled,
            "notation vote" => MeetingKind::NotationVote,
            "cancelled" | "canceled" => MeetingKind::Cancelled,
            _ => MeetingKind::Other(n),
        }
    }

    /// The name stored in `kind` columns: `scheduled`, `unscheduled`, `notation_vote`,
    /// `cancelled`, or the parenthesis with spaces as `_`.
    pub fn as_str(&self) -> String {
        match self {
            MeetingKind::Scheduled => "scheduled".into(),
            MeetingKind::Unscheduled => "unscheduled".into(),
            MeetingKind::NotationVote => "notation_vote".into(),
            MeetingKind::Cancelled => "cancelled".into(),
            MeetingKind::Other(s) => s.split_whitespace().collect::<Vec<_>>().join("_"),
        }
    }

    /// Whether the entry is a policy decision a rate path can move on: a scheduled or an
    /// unscheduled meeting (not a notation vote, not a cancelled meeting).
    pub fn is_decision(&self) -> bool {
        matches!(self, MeetingKind::Scheduled | MeetingKind::Unscheduled)
    }
}

/// Where on the page an entry was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A row of the "<year> FOMC Meetings" panel.
    Panel(i32),
    /// A note below the panels ("A two-day meeting is scheduled for …").
    Note,
}

/// One entry of the calendar page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMeeting {
    /// First day of the meeting (equals `meeting_date` for a one-day meeting or a vote).
    pub meeting_start_date: NaiveDate,
    /// Decision day: the last day of the meeting (the second day of a two-day meeting).
    pub meeting_date: NaiveDate,
    /// Marked with `*`: associated with a Summary of Economic Projections.
    pub has_sep: bool,
    /// What it is.
    pub kind: MeetingKind,
    /// Where it was read.
    pub origin: Origin,
    /// The cell (or note sentence) as written, e.g. `August 22 (notation vote)`.
    pub label: String,
}

/// What the page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarPage {
    /// Every entry, by decision day.
    pub meetings: Vec<PageMeeting>,
    /// The years that have a panel (every meeting of those years is on the page).
    pub panel_years: Vec<i32>,
    /// The page's own "Last Update" date, when present.
    pub last_update: Option<NaiveDate>,
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a valid CSS selector")
}

fn text_of(e: ElementRef<'_>) -> String {
    e.text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Month number of an English month name or its 3-letter abbreviation (`January`, `Jan`).
fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if n.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| *m == n || (n.len() == 3 && m.starts_with(&n)))
        .map(|i| i as u32 + 1)
}

fn day_number(s: &str) -> Option<u32> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The date cell split into days, SEP mark and parenthesis: `17-18*` → ([17, 18], true, None),
/// `22 (notation vote)` → ([22], false, Some("notation vote")).
fn split_date_cell(cell: &str) -> Result<(Vec<u32>, bool, Option<String>), String> {
    let has_sep = cell.contains('*');
    let cleaned = cell.replace('*', "");
    let (days, note) = match cleaned.split_once('(') {
        Some((before, after)) => {
            let note = after
                .split_once(')')
                .map(|(n, _)| n)
                .ok_or_else(|| format!("unclosed parenthesis in {cell:?}"))?;
            (before.to_string(), Some(note.trim().to_string()))
        }
        None => (cleaned, None),
    };
    let days: Vec<u32> = days
        .split(['-', '–'])
        .map(|d| day_number(d).ok_or_else(|| format!("{cell:?} is not a day or a day range")))
        .collect::<Result<_, _>>()?;
    if days.is_empty() || days.len() > 2 {
        return Err(format!("{cell:?} is not a day or a day range"));
    }
    Ok((days, has_sep, note))
}

fn date(year: i32, month: u32, day: u32, what: &str) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| format!("{what}: {year}-{month:02}-{day:02} is not a date"))
}

/// One panel row: the month cell (`March`, `Apr/May`) and the date cell (`17-18*`).
fn meeting_of_row(year: i32, month_cell: &str, date_cell: &str) -> Result<PageMeeting, String> {
    let label = format!("{month_cell} {date_cell}");
    let months: Vec<u32> = month_cell
        .split('/')
        .map(|m| month_number(m).ok_or_else(|| format!("{month_cell:?} is not a month")))
        .collect::<Result<_, _>>()?;
    let (days, has_sep, note) = split_date_cell(date_cell)?;
    let (start, end) = match (months.as_slice(), days.as_slice()) {
        ([m], [d]) => (date(year, *m, *d, &label)?, date(year, *m, *d, &label)?),
        ([m], [d1, d2]) if d2 > d1 => (date(year, *m, *d1, &label)?, date(year, *m, *d2, &label)?),
        ([m1, m2], [d1, d2]) if m2 > m1 => {
            (date(year, *m1, *d1, &label)?, date(year, *m2, *d2, &label)?)
        }
        // December into January: the decision falls in the next year.
        ([12], [d1, d2]) if d2 < d1 => (
            date(year, 12, *d1, &label)?,
            date(year + 1, 1, *d2, &label)?,
        ),
        ([12, 1], [d1, d2]) => (
            date(year, 12, *d1, &label)?,
            date(year + 1, 1, *d2, &label)?,
        ),
        _ => {
            return Err(format!(
                "{label:?}: month and day cells do not make a meeting"
            ));
        }
    };
    Ok(PageMeeting {
        meeting_start_date: start,
        meeting_date: end,
        has_sep,
        kind: MeetingKind::from_note(note.as_deref()),
        origin: Origin::Panel(year),
        label,
    })
}

/// A note announcing a meeting: "... scheduled for January 25-26, 2028." (also one day, or two
/// months: "January 31-February 1, 2028").
fn meeting_of_note(note: &str) -> Result<Option<PageMeeting>, String> {
    let Some((_, rest)) = note.split_once("scheduled for ") else {
        return Ok(None);
    };
    let Some((dates, tail)) = rest.split_once(',') else {
        return Err(format!("note {note:?}: no year after the meeting days"));
    };
    let year_text: String = tail
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let year: i32 = year_text
        .parse()
        .map_err(|_| format!("note {note:?}: {year_text:?} is not a year"))?;
    let (first, second) = match dates.split_once(['-', '–']) {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (dates.trim(), None),
    };
    let (m1, d1) = first
        .split_once(' ')
        .ok_or_else(|| format!("note {note:?}: {first:?} is not a month and day"))?;
    let m1 = month_number(m1).ok_or_else(|| format!("note {note:?}: {m1:?} is not a month"))?;
    let d1 = day_number(d1).ok_or_else(|| format!("note {note:?}: {d1:?} is not a day"))?;
    let start = date(year, m1, d1, note)?;
    let end = match second {
        None => start,
        Some(s) => match s.split_once(' ') {
            Some((m2, d2)) => date(
                year,
                month_number(m2).ok_or_else(|| format!("note {note:?}: {m2:?} is not a month"))?,
                day_number(d2).ok_or_else(|| format!("note {note:?}: {d2:?} is not a day"))?,
                note,
            )?,
            None => date(
                year,
                m1,
                day_number(s).ok_or_else(|| format!("note {note:?}: {s:?} is not a day"))?,
                note,
            )?,
        },
    };
    if end < start {
        return Err(format!("note {note:?}: the meeting ends before it starts"));
    }
    Ok(Some(PageMeeting {
        meeting_start_date: start,
        meeting_date: end,
        has_sep: false,
        kind: MeetingKind::Scheduled,
        origin: Origin::Note,
        label: note
            .split('.')
            .find(|s| s.contains("scheduled for"))
            .map(|s| format!("{}.", s.trim().trim_start_matches("Note:").trim()))
            .unwrap_or_else(|| note.to_string()),
    }))
}

/// The year and meetings of one "<year> FOMC Meetings" panel; `None` for any other panel.
fn year_panel(panel: ElementRef<'_>) -> Result<Option<(i32, Vec<PageMeeting>)>, ParseError> {
    let (month, day) = (
        selector(".fomc-meeting__month"),
        selector(".fomc-meeting__date"),
    );
    let Some(head) = panel
        .select(&selector(".panel-heading"))
        .next()
        .map(text_of)
    else {
        return Ok(None);
    };
    let Some(year) = head
        .strip_suffix(" FOMC Meetings")
        .and_then(|y| y.trim().parse::<i32>().ok())
    else {
        return Ok(None);
    };
    let mut meetings = Vec::new();
    for r in panel.select(&selector("div.fomc-meeting")) {
        let cell = |s: &Selector| r.select(s).next().map(text_of);
        let (Some(m), Some(d)) = (cell(&month), cell(&day)) else {
            return Err(ParseError::new(format!(
                "panel {head:?}: a meeting row without a month or a date cell: {:?}",
                text_of(r)
            )));
        };
        let meeting = meeting_of_row(year, &m, &d)
            .map_err(|e| ParseError::new(format!("panel {head:?}: {e}")))?;
        meetings.push(meeting);
    }
    if meetings.is_empty() {
        return Err(ParseError::new(format!(
            "panel {head:?} lists no meetings (no div.fomc-meeting rows)"
        )));
    }
    Ok(Some((year, meetings)))
}

/// Parses the calendar page. Errors when no "<year> FOMC Meetings" panel is found, when a
/// panel has no meeting rows, or when a row's month or days cannot be read.
pub fn calendar(html: &str) -> Result<CalendarPage, ParseError> {
    let doc = Html::parse_document(html);
    let paragraph = selector("p");
    let last_update = selector("#lastUpdate");
    let mut meetings = Vec::new();
    let mut panel_years = Vec::new();
    for panel in doc.select(&selector("div.panel")) {
        if let Some((year, rows)) = year_panel(panel)? {
            meetings.extend(rows);
            panel_years.push(year);
        }
    }
    if panel_years.is_empty() {
        return Err(ParseError::new(
            "no \"<year> FOMC Meetings\" panel: not the FOMC calendar page layout",
        ));
    }
    for p in doc.select(&paragraph) {
        let text = text_of(p);
        if !text.contains("meeting is scheduled for") {
            continue;
        }
        if let Some(m) = meeting_of_note(&text).map_err(ParseError::new)?
            && !panel_years.contains(&m.meeting_date.year())
            && !meetings.iter().any(|x| x.meeting_date == m.meeting_date)
        {
            meetings.push(m);
        }
    }
    let last_update = doc.select(&last_update).next().map(text_of).and_then(|t| {
        let d = t.trim_start_matches("Last Update:").trim().to_string();
        NaiveDate::parse_from_str(&d, "%B %d, %Y").ok()
    });
    meetings.sort_by_key(|m| m.meeting_date);
    if let Some(w) = meetings
        .windows(2)
        .find(|w| w[0].meeting_date == w[1].meeting_date)
    {
        return Err(ParseError::new(format!(
            "two entries for {}: {:?} and {:?}",
            w[0].meeting_date, w[0].label, w[1].label
        )));
    }
    panel_years.sort();
    Ok(CalendarPage {
        meetings,
        panel_years,
        last_update,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::d;

    const PAGE: &str = include_str!(
        "../../../tests/fixtures/upstream/www.federalreserve.gov/monetarypolicy_fomccalendars.htm.body.html"
    );

    fn year(page: &CalendarPage, y: i32) -> Vec<(String, bool)> {
        page.meetings
            .iter()
            .filter(|m| m.meeting_date.year() == y && m.kind == MeetingKind::Scheduled)
            .map(|m| (m.meeting_date.to_string(), m.has_sep))
            .collect()
    }

    #[test]
    fn the_real_page_gives_2026_and_2027_decision_days_with_sep_flags() {
        let page = calendar(PAGE).unwrap();
        assert_eq!(
            page.panel_years,
            vec![2021, 2022, 2023, 2024, 2025, 2026, 2027]
        );
        assert_eq!(page.last_update, Some(d("2026-09-16")));
        let want = |days: [(&str, bool); 8]| -> Vec<(String, bool)> {
            days.iter().map(|(s, sep)| (s.to_string(), *sep)).collect()
        };
        assert_eq!(
            year(&page, 2026),
            want([
                ("2026-01-28", false),
                ("2026-03-18", true),
                ("2026-04-29", false),
                ("2026-06-17", true),
                ("2026-07-29", false),
                ("2026-09-16", true),
                ("2026-10-28", false),
                ("2026-12-09", true),
            ])
        );
        assert_eq!(
            year(&page, 2027),
            want([
                ("2027-01-27", false),
                ("2027-03-17", true),
                ("2027-04-28", false),
                ("2027-06-09", true),
                ("2027-07-28", false),
                ("2027-09-15", true),
                ("2027-10-27", false),
                ("2027-12-08", true),
            ])
        );
        let jan27 = page
            .meetings
            .iter()
            .find(|m| m.meeting_date == d("2027-01-27"))
            .unwrap();
        assert_eq!(jan27.meeting_start_date, d("2027-01-26"));
        assert_eq!(jan27.origin, Origin::Panel(2027));
    }

    #[test]
    fn the_2028_note_is_the_january_2028_meeting() {
        let page = calendar(PAGE).unwrap();
        let m: Vec<&PageMeeting> = page
            .meetings
            .iter()
            .filter(|m| m.meeting_date.year() == 2028)
            .collect();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].meeting_start_date, d("2028-01-25"));
        assert_eq!(m[0].meeting_date, d("2028-01-26"));
        assert_eq!(m[0].origin, Origin::Note);
        assert_eq!(m[0].kind, MeetingKind::Scheduled);
        assert_eq!(
            m[0].label,
            "A two-day meeting is scheduled for January 25-26, 2028."
        );
        assert_eq!(page.meetings.last().unwrap().meeting_date, d("2028-01-26"));
    }

    #[test]
    fn the_2025_notation_vote_is_not_a_scheduled_meeting() {
        let page = calendar(PAGE).unwrap();
        let vote = page
            .meetings
            .iter()
            .find(|m| m.meeting_date == d("2025-08-22"))
            .expect("the notation vote is listed");
        assert_eq!(vote.kind, MeetingKind::NotationVote);
        assert_eq!(vote.kind.as_str(), "notation_vote");
        assert!(!vote.kind.is_decision());
        assert_eq!(vote.label, "August 22 (notation vote)");
        // 2025: the Fed's eight published decision days, the vote aside.
        let decisions: Vec<String> = page
            .meetings
            .iter()
            .filter(|m| m.meeting_date.year() == 2025 && m.kind.is_decision())
            .map(|m| m.meeting_date.format("%m-%d").to_string())
            .collect();
        assert_eq!(
            decisions,
            [
                "01-29", "03-19", "05-07", "06-18", "07-30", "09-17", "10-29", "12-10"
            ]
        );
        // 7 panels x 8 meetings + the vote + the 2028 note.
        assert_eq!(page.meetings.len(), 58);
    }

    #[test]
    fn meetings_across_a_month_boundary_end_in_the_second_month() {
        let page = calendar(PAGE).unwrap();
        let m = page
            .meetings
            .iter()
            .find(|m| m.label == "Apr/May 30-1")
            .unwrap();
        assert_eq!(
            (m.meeting_start_date, m.meeting_date),
            (d("2024-04-30"), d("2024-05-01"))
        );
        assert!(
            page.meetings
                .iter()
                .any(|m| m.meeting_date == d("2023-02-01")
                    && m.meeting_start_date == d("2023-01-31"))
        );
    }

    #[test]
    fn cells_and_notes_of_other_years_parse() {
        let m = meeting_of_row(2020, "March", "15 (unscheduled)").unwrap();
        assert_eq!(m.meeting_date, d("2020-03-15"));
        assert_eq!(m.kind, MeetingKind::Unscheduled);
        assert!(m.kind.is_decision());
        let m = meeting_of_row(2020, "March", "17-18 (cancelled)*").unwrap();
        assert_eq!(m.kind, MeetingKind::Cancelled);
        assert!(m.has_sep && !m.kind.is_decision());
        let m = meeting_of_note("A two-day meeting is scheduled for January 31-February 1, 2028.")
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.meeting_start_date, m.meeting_date),
            (d("2028-01-31"), d("2028-02-01"))
        );
    }

    #[test]
    fn bad_pages_and_cells_are_errors_not_silent_gaps() {
        let err = calendar("<html><body><p>Service unavailable</p></body></html>").unwrap_err();
        assert!(
            err.message.contains("no \"<year> FOMC Meetings\" panel"),
            "{err}"
        );
        let page = "<div class=\"panel\"><div class=\"panel-heading\"><h4>2026 FOMC Meetings</h4></div>\
                    <div class=\"row fomc-meeting\"><div class=\"fomc-meeting__month\">Januar</div>\
                    <div class=\"fomc-meeting__date\">27-28</div></div></div>";
        let err = calendar(page).unwrap_err();
        assert!(
            err.message.contains("2026 FOMC Meetings") && err.message.contains("\"Januar\""),
            "{err}"
        );
        assert!(meeting_of_row(2026, "February", "30-31").is_err());
        assert!(meeting_of_row(2026, "March", "18-17").is_err());
        assert!(meeting_of_row(2026, "March", "next week").is_err());
        let empty = "<div class=\"panel\"><div class=\"panel-heading\"><h4>2026 FOMC Meetings</h4></div></div>";
        assert!(
            calendar(empty)
                .unwrap_err()
                .message
                .contains("lists no meetings")
        );
    }
}
