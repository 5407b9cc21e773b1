//! Axis ticks and point thinning: calendar-aligned date ticks, "nice" value ticks on a linear
//! or (for rebased series that grow more than tenfold) a log scale.

use chrono::{Datelike, Duration, NaiveDate};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// Date ticks between `start` and `end` (inclusive), at most about `max` of them: days or
/// weeks for short ranges, else month starts every 1, 2, 3, 6, 12 … months, aligned to the
/// calendar (every 3 months: January, April, …; every 24: January of even years).
pub(super) fn date_ticks(start: NaiveDate, end: NaiveDate, max: usize) -> Vec<NaiveDate> {
    let max = max.max(2) as i64;
    let days = (end - start).num_days();
    if days <= 62 {
        let step = [1, 2, 7, 14, 28]
            .into_iter()
            .find(|s| days / s < max)
            .unwrap_or(28);
        // Weekly ticks fall on Mondays.
        let mut day = start;
        if step >= 7 {
            while day.weekday() != chrono::Weekday::Mon && day < end {
                day += Duration::days(1);
            }
        }
        let mut ticks = Vec::new();
        while day <= end {
            ticks.push(day);
            day += Duration::days(step);
        }
        return ticks;
    }
    let month_index = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
    let months = month_index(end) - month_index(start);
    let step = [1, 2, 3, 6, 12, 24, 60, 120, 240]
        .into_iter()
        .find(|s| months / s < max)
        .unwrap_or(600);
    let mut ticks = Vec::new();
    for index in month_index(start)..=month_index(end) {
        let date = i32::try_from(index.div_euclid(12))
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, index.rem_euclid(12) as u32 + 1, 1));
        if let Some(date) = date
            && index % step == 0
            && date >= start
            && date <= end
        {
            ticks.push(date);
        }
    }
    ticks
}

/// A value axis: its range and ticks in plotted units (log10 of the value on a log scale).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ValueAxis {
    /// Whether values are plotted as their log10.
    pub log: bool,
    /// Bottom of the axis, plotted units.
    pub lo: f64,
    /// Top of the axis, plotted units.
    pub hi: f64,
    /// Tick positions, plotted units.
    pub ticks: Vec<f64>,
    /// Decimals in linear tick labels.
    decimals: usize,
}

impl ValueAxis {
    /// An axis for `values` with about `max_ticks` ticks; a log scale when `allow_log`, every
    /// value is positive and the largest is more than ten times the smallest.
    pub fn new(values: &[f64], allow_log: bool, max_ticks: usize) -> Self {
        let max_ticks = max_ticks.max(2);
        let (min, max) = values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        if !min.is_finite() {
            return Self::linear(0.0, 1.0, max_ticks);
        }
        if allow_log && min > 0.0 && max / min > 10.0 {
            return Self::logarithmic(min, max, max_ticks);
        }
        let pad = if max > min {
            (max - min) * 0.05
        } else {
            min.abs().max(1.0) * 0.05
        };
        Self::linear(min - pad, max + pad, max_ticks)
    }

    fn linear(lo: f64, hi: f64, max_ticks: usize) -> Self {
        let raw = (hi - lo) / max_ticks as f64;
        let magnitude = 10f64.powf(raw.log10().floor());
        let (mantissa, step) = [1.0, 2.0, 2.5, 5.0, 10.0]
            .into_iter()
            .map(|m| (m, m * magnitude))
            .find(|(_, s)| *s >= raw)
            .unwrap_or((10.0, 10.0 * magnitude));
        let mut decimals = (-step.log10().floor()).max(0.0) as usize;
        if mantissa == 2.5 {
            decimals += 1;
        }
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        let ticks = (first..=last).map(|i| i as f64 * step).collect();
        Self {
            log: false,
            lo,
            hi,
            ticks,
            decimals,
        }
    }

    fn logarithmic(min: f64, max: f64, max_ticks: usize) -> Self {
        let (lo, hi) = (min.log10(), max.log10());
        let pad = (hi - lo) * 0.03;
        let (lo, hi) = (lo - pad, hi + pad);
        let decades = (lo.floor() as i32)..=(hi.ceil() as i32);
        let candidates = |mantissas: &[f64], every: i32| -> Vec<f64> {
            decades
                .clone()
                .filter(|d| d.rem_euclid(every) == 0)
                .flat_map(|d| mantissas.iter().map(move |m| (m * 10f64.powi(d)).log10()))
                .filter(|t| *t >= lo && *t <= hi)
                .collect()
        };
        let ticks = [
            candidates(&[1.0, 2.0, 5.0], 1),
            candidates(&[1.0, 3.0], 1),
            candidates(&[1.0], 1),
            candidates(&[1.0], 2),
        ]
        .into_iter()
        .find(|t| t.len() <= max_ticks)
        .unwrap_or_else(|| candidates(&[1.0], 3));
        Self {
            log: true,
            lo,
            hi,
            ticks,
            decimals: 0,
        }
    }

    /// A value in plotted units.
    pub fn plot(&self, value: f64) -> f64 {
        if self.log { value.log10() } else { value }
    }

    /// The label of a tick at `position` (plotted units).
    pub fn label(&self, position: f64) -> String {
        if !self.log {
            return format!("{position:.*}", self.decimals);
        }
        let value = 10f64.powf(position);
        if value >= 1.0 {
            format!("{value:.0}")
        } else {
            // Three significant digits, trailing zeros dropped.
            let digits = (2.0 - value.log10().floor()).max(0.0) as usize;
            let text = format!("{value:.digits$}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

/// The axis as a plotters coordinate: linear in plotted units, with exactly our ticks.
impl Ranged for ValueAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span == 0.0 || !span.is_finite() {
            return (limit.0 + limit.1) / 2;
        }
        let fraction = ((value - self.lo) / span).clamp(-10.0, 10.0);
        limit.0 + (f64::from(limit.1 - limit.0) * fraction + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// At most two points (the lowest and the highest, in date order) per `per` consecutive
/// points: a long daily series drawn a few pixels wide keeps its shape, peaks and troughs
/// included, without thousands of sub-pixel segments.
pub(super) fn thin(points: &[(NaiveDate, f64)], per: usize) -> Vec<(NaiveDate, f64)> {
    if per <= 2 {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(points.len() / per * 2 + 2);
    for chunk in points.chunks(per) {
        let by_value = |a: &&(NaiveDate, f64), b: &&(NaiveDate, f64)| a.1.total_cmp(&b.1);
        let (Some(low), Some(high)) =
            (chunk.iter().min_by(by_value), chunk.iter().max_by(by_value))
        else {
            continue;
        };
        let (a, b) = if low.0 <= high.0 {
            (low, high)
        } else {
            (high, low)
        };
        out.push(*a);
        if b.0 != a.0 {
            out.push(*b);
        }
    }
    if let (Some(last), Some(kept)) = (points.last(), out.last())
        && last.0 != kept.0
    {
        out.push(*last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn date_ticks_are_calendar_aligned_and_few_enough() {
        let year = date_ticks(day("2025-06-01"), day("2026-06-03"), 9);
        assert_eq!(
            year.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            [
                "2025-07-01",
                "2025-09-01",
                "2025-11-01",
                "2026-01-01",
                "2026-03-01",
                "2026-05-01"
            ]
        );
        let decade = date_ticks(day("2015-01-01"), day("2026-06-03"), 9);
        assert!(decade.len() <= 9 && decade.len() >= 4, "{decade:?}");
        assert!(decade.iter().all(|d| d.month() == 1 && d.day() == 1));
        let month = date_ticks(day("2026-03-04"), day("2026-04-03"), 8);
        assert!(month.iter().all(|d| d.weekday() == chrono::Weekday::Mon));
        assert_eq!(month.first(), Some(&day("2026-03-09")));
        let days = date_ticks(day("2026-03-04"), day("2026-03-06"), 8);
        assert_eq!(days.len(), 3);
    }

    #[test]
    fn linear_axes_get_round_ticks() {
        let axis = ValueAxis::new(&[5.57, 6.23], true, 8);
        assert!(!axis.log);
        assert!(axis.lo < 5.57 && axis.hi > 6.23);
        let labels: Vec<String> = axis.ticks.iter().map(|t| axis.label(*t)).collect();
        assert_eq!(labels, ["5.6", "5.7", "5.8", "5.9", "6.0", "6.1", "6.2"]);
        let axis = ValueAxis::new(&[60.0, 131.0], true, 8);
        let labels: Vec<String> = axis.ticks.iter().map(|t| axis.label(*t)).collect();
        assert_eq!(labels, ["60", "70", "80", "90", "100", "110", "120", "130"]);
        // A flat series still gets a range; no values give 0..1.
        let flat = ValueAxis::new(&[100.0, 100.0], true, 5);
        assert!(flat.lo < 100.0 && flat.hi > 100.0 && !flat.ticks.is_empty());
        assert_eq!(ValueAxis::new(&[], true, 5).hi, 1.0);
    }

    #[test]
    fn a_series_growing_more_than_tenfold_gets_a_log_axis() {
        let axis = ValueAxis::new(&[100.0, 40_000.0], true, 8);
        assert!(axis.log);
        assert!((axis.plot(1000.0) - 3.0).abs() < 1e-12);
        let labels: Vec<String> = axis.ticks.iter().map(|t| axis.label(*t)).collect();
        assert_eq!(
            labels,
            [
                "100", "200", "500", "1000", "2000", "5000", "10000", "20000"
            ]
        );
        assert!(!ValueAxis::new(&[100.0, 40_000.0], false, 8).log);
        assert!(!ValueAxis::new(&[-1.0, 40_000.0], true, 8).log);
        let small = ValueAxis::new(&[0.05, 2.0], true, 3);
        let labels: Vec<String> = small.ticks.iter().map(|t| small.label(*t)).collect();
        assert_eq!(labels, ["0.1", "0.3", "1"]);
    }

    #[test]
    fn thinning_keeps_extremes_in_order_and_the_last_point() {
        let points: Vec<(NaiveDate, f64)> = (0..10)
            .map(|i| {
                (
                    day("2026-01-01") + Duration::days(i),
                    [3.0, 9.0, 1.0][i as usize % 3],
                )
            })
            .collect();
        assert_eq!(thin(&points, 2), points);
        let thinned = thin(&points, 5);
        let values: Vec<f64> = thinned.iter().map(|p| p.1).collect();
        assert_eq!(values, [1.0, 9.0, 1.0, 9.0, 3.0]);
        assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
