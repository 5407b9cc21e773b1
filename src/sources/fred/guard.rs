//! The unit-change guard: a series whose new values are a different order of magnitude from
//! what is stored (FRED switching a series from millions to billions, a scaled or garbled body)
//! is refused, not landed.
//!
//! The rule: the median of |value| over the stored history's most recent [`HISTORY`]
//! observations before the batch's first date (the most recent ones overall when the batch starts
//! before them) is compared with the median of |value| over the new batch's observations on those
//! same dates (a full refresh or a look-back re-sends them), or over the whole batch when it has
//! none of them. When
//! one median exceeds the other by more than `max_magnitude_ratio` (default 100; `0` turns the
//! guard off), the series fails with an error naming both medians and the way out. A genuine
//! rebase is accepted by listing the series in `[sources.fred] rebased_series` and running
//! `ingest fred --full-refresh` (which replaces the stored history), then removing it.

use chrono::NaiveDate;

use super::parse::Observation;

/// Stored observations the new batch is compared with (about a year of a weekly series).
pub const HISTORY: usize = 52;

fn median_abs(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().map(f64::abs).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Checks one series' new observations against its stored `(date, value)` history (any order).
/// `Err` says what jumped, by how much, and how to accept a genuine rebase.
pub fn check(
    series_id: &str,
    new: &[Observation],
    stored: &[(NaiveDate, f64)],
    max_ratio: f64,
) -> Result<(), String> {
    if max_ratio <= 0.0 || stored.is_empty() {
        return Ok(());
    }
    let Some(first) = new.iter().map(|o| o.date).min() else {
        return Ok(());
    };
    let mut history: Vec<&(NaiveDate, f64)> = stored.iter().collect();
    history.sort_by_key(|(d, _)| *d);
    let before: Vec<(NaiveDate, f64)> = history
        .iter()
        .filter(|(d, _)| *d < first)
        .rev()
        .take(HISTORY)
        .map(|p| **p)
        .collect();
    let reference = if before.is_empty() {
        history.iter().rev().take(HISTORY).map(|p| **p).collect()
    } else {
        before
    };
    // Like with like: where the batch re-sends the reference dates (a full refresh, a look-back),
    // those values are compared; else the whole batch.
    let same_dates: Vec<f64> = new
        .iter()
        .filter(|o| reference.iter().any(|(d, _)| *d == o.date))
        .filter_map(|o| o.value)
        .collect();
    let batch = if same_dates.is_empty() {
        new.iter().filter_map(|o| o.value).collect()
    } else {
        same_dates
    };
    let (Some(old), Some(now)) = (
        median_abs(reference.iter().map(|(_, v)| *v)),
        median_abs(batch),
    ) else {
        return Ok(());
    };
    if old == 0.0 || now == 0.0 {
        return Ok(());
    }
    let ratio = (now / old).max(old / now);
    if ratio > max_ratio {
        return Err(format!(
            "refused: the new values' median magnitude {now} is {ratio:.0}x the stored history's \
             recent median {old} (limit {max_ratio}x): a unit change upstream? Nothing of {series_id} \
             was written. If the series was genuinely rebased, add \"{series_id}\" to \
             [sources.fred] rebased_series and run `macrolake ingest fred --full-refresh`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(d: &str, v: f64) -> Observation {
        Observation {
            date: NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap(),
            value: Some(v),
            realtime_start: None,
            realtime_end: None,
        }
    }

    #[test]
    fn a_thousandfold_jump_is_refused_a_normal_move_is_not() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let stored = vec![
            (d("2026-01-07"), 6_500_000.0),
            (d("2026-01-14"), 6_600_000.0),
        ];
        let jump = [obs("2026-01-21", 6_600.0), obs("2026-01-28", 6_500.0)];
        let err = check("WALCL", &jump, &stored, 100.0).unwrap_err();
        assert!(
            err.contains("1000x") && err.contains("rebased_series"),
            "{err}"
        );
        let normal = [obs("2026-01-21", 6_700_000.0)];
        assert!(check("WALCL", &normal, &stored, 100.0).is_ok());
        assert!(
            check("WALCL", &jump, &stored, 0.0).is_ok(),
            "0 turns it off"
        );
        assert!(
            check("WALCL", &jump, &[], 100.0).is_ok(),
            "no history: nothing to compare"
        );
    }
}
