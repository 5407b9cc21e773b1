//! The synthetic universe `macrolake bench` ingests: N symbols × Y years of daily bars whose
//! returns are resampled from the real snapshot's daily returns, written as Yahoo chart v8
//! recordings beside a copy of the real snapshot (FRED, TGA, NY Fed, futures, EPS), so ingest
//! runs the real connector path through replay.
//!
//! Two replay folders come out: `next/`, prices through the snapshot's last day (its last
//! weekday), and `base/`, the same without that day. The day comes to every symbol, as a real
//! night's does: each synthetic one, and each real recording (bitcoin, the indices and ETFs,
//! silver, the fed funds future), whose `base/` copy ends before it — so the roles, the
//! correlations and the product table all have a new day to compute. (A recording that runs
//! past the last day is cut to it in both.)
//!
//! In `next/` every Yahoo body holds only its last 30 sessions, as Yahoo answers an incremental
//! request (`period1` a week back): the synthetic ones as written, the real ones cut down from
//! the snapshot's whole-history recordings (same values, fewer of them; their meta says so).
//! Replay serves a recording whatever window is asked, so without the cut the next night would
//! parse and archive the real symbols' whole histories (10 MB of JSON), which no real next night
//! does. Every synthetic recording says it is synthetic.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use url::Url;

use super::BenchError;
use crate::http::recording::RecordingMeta;
use crate::sources::prices::config::{PriceSource, SymbolConfig};

/// Host folder of the Yahoo recordings.
const YAHOO_HOST: &str = "query1.finance.yahoo.com";
/// Sessions an incremental answer holds.
const NEXT_DAY_WINDOW: usize = 30;

/// What was generated.
#[derive(Debug, Clone)]
pub struct Universe {
    /// Replay folder with history up to `last_day`.
    pub base: PathBuf,
    /// Replay folder with one more session, `next_day`, for every symbol.
    pub next: PathBuf,
    /// The synthetic symbols, as configured for the prices connector.
    pub symbols: Vec<SymbolConfig>,
    /// Bars written per synthetic symbol in `base` (summed).
    pub rows: usize,
    /// The last session in `base`.
    pub last_day: NaiveDate,
    /// The session `next` adds.
    pub next_day: NaiveDate,
    /// Size of the pool of real daily returns the bars are drawn from.
    pub return_pool: usize,
}

/// Generates the universe under `dir` from the real snapshot at `snapshot`, whose last day is
/// `snapshot_day`: the next night adds its last weekday.
pub fn generate(
    snapshot: &Path,
    dir: &Path,
    symbols: usize,
    years: u32,
    snapshot_day: NaiveDate,
) -> Result<Universe, BenchError> {
    let base = dir.join("base");
    let next = dir.join("next");
    for d in [&base, &next] {
        copy_tree(snapshot, d)?;
    }
    let yahoo = snapshot.join(YAHOO_HOST);
    let (pool, template) = real_returns(&yahoo)?;
    let next_day = match snapshot_day.weekday() {
        Weekday::Sat | Weekday::Sun => previous_weekday(snapshot_day),
        _ => snapshot_day,
    };
    let last_day = previous_weekday(next_day);
    // A bar is stamped at its session's start (bitcoin's at 00:00 UTC): the bars of a day start
    // before the next day's midnight UTC.
    let midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp())
    };
    cut_sessions(&base.join(YAHOO_HOST), midnight(next_day), None)?;
    let after_next = midnight(next_day + Duration::days(1));
    cut_sessions(&next.join(YAHOO_HOST), after_next, Some(NEXT_DAY_WINDOW))?;
    let first = NaiveDate::from_ymd_opt(last_day.year() - years as i32, last_day.month(), 1)
        .unwrap_or(last_day);
    let days: Vec<NaiveDate> = first
        .iter_days()
        .take_while(|d| *d <= next_day)
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .collect();
    let mut rows = 0;
    let mut configs = Vec::with_capacity(symbols);
    for i in 0..symbols {
        let symbol = format!("SYN{:04}", i + 1);
        let bars = simulate(&pool, days.len(), 0x6d61_6372_6f00 + i as u64);
        let full = days.len() - 1;
        rows += full;
        write_recording(&base, &template, &symbol, &days[..full], &bars[..full])?;
        let from = days.len().saturating_sub(NEXT_DAY_WINDOW);
        write_recording(&next, &template, &symbol, &days[from..], &bars[from..])?;
        configs.push(SymbolConfig {
            symbol,
            sources: vec![PriceSource::Yahoo(String::new())],
        });
    }
    Ok(Universe {
        base,
        next,
        symbols: configs,
        rows,
        last_day,
        next_day,
        return_pool: pool.len(),
    })
}

fn previous_weekday(day: NaiveDate) -> NaiveDate {
    let mut d = day - Duration::days(1);
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d -= Duration::days(1);
    }
    d
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies a folder tree (the real snapshot) file by file.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    for entry in std::fs::read_dir(from).map_err(io_err(from))? {
        let entry = entry.map_err(io_err(from))?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(io_err(&entry.path()))?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(io_err(&target))?;
        }
    }
    Ok(())
}

/// Every daily close-to-close return of the snapshot's Yahoo recordings (moves beyond ±50% and
/// non-positive closes left out), and one recording's URL as the template for the synthetic ones.
fn real_returns(yahoo: &Path) -> Result<(Vec<f64>, Url), BenchError> {
    let mut pool = Vec::new();
    let mut template = None;
    let mut names: Vec<PathBuf> = std::fs::read_dir(yahoo)
        .map_err(io_err(yahoo))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    names.sort();
    for meta_path in names {
        let text = std::fs::read_to_string(&meta_path).map_err(io_err(&meta_path))?;
        let (meta, url) = crate::http::recording::parse_meta(&text, &meta_path)
            .map_err(|e| BenchError::Snapshot(e.to_string()))?;
        let body_path = meta_path.with_file_name(&meta.body_file);
        let body = std::fs::read(&body_path).map_err(io_err(&body_path))?;
        let Ok(series) = crate::sources::prices::parse::yahoo_chart(&body) else {
            continue;
        };
        if series.symbol.ends_with("=F") {
            continue; // futures rolls are not returns
        }
        template.get_or_insert(url);
        pool.extend(series.bars.windows(2).filter_map(|w| {
            let r = w[1].close / w[0].close - 1.0;
            (w[0].close > 0.0 && w[1].close > 0.0 && r.abs() < 0.5).then_some(r)
        }));
    }
    match template {
        Some(url) if pool.len() > 100 => Ok((pool, url)),
        _ => Err(BenchError::Snapshot(format!(
            "{} holds no Yahoo chart recordings to draw returns from",
            yahoo.display()
        ))),
    }
}

/// Cuts every Yahoo chart recording in `folder` to its sessions stamped before `before` (Unix
/// seconds), and of those to the last `keep` (the arrays of timestamps, quotes and adjusted
/// closes alike), and says so in its meta.
fn cut_sessions(folder: &Path, before: i64, keep: Option<usize>) -> Result<(), BenchError> {
    use serde_json::Value;
    let bad = |path: &Path, e: String| BenchError::Snapshot(format!("{}: {e}", path.display()));
    for entry in std::fs::read_dir(folder).map_err(io_err(folder))? {
        let meta_path = entry.map_err(io_err(folder))?.path();
        if !meta_path.to_string_lossy().ends_with(".meta.json") {
            continue;
        }
        let text = std::fs::read_to_string(&meta_path).map_err(io_err(&meta_path))?;
        let (mut meta, _) = crate::http::recording::parse_meta(&text, &meta_path)
            .map_err(|e| BenchError::Snapshot(e.to_string()))?;
        let body_path = meta_path.with_file_name(&meta.body_file);
        let body = std::fs::read(&body_path).map_err(io_err(&body_path))?;
        let mut chart: Value =
            serde_json::from_slice(&body).map_err(|e| bad(&body_path, e.to_string()))?;
        let Some(result) = chart.pointer_mut("/chart/result/0") else {
            continue; // an error answer: nothing to cut
        };
        let stamps: Vec<i64> = match result.get("timestamp") {
            Some(Value::Array(t)) => t.iter().filter_map(Value::as_i64).collect(),
            _ => Vec::new(),
        };
        let end = stamps.iter().take_while(|t| **t < before).count();
        let start = keep.map_or(0, |k| end.saturating_sub(k));
        let cut = |v: Option<&mut Value>| {
            if let Some(Value::Array(items)) = v {
                items.truncate(end);
                items.drain(..start.min(items.len()));
            }
        };
        cut(result.get_mut("timestamp"));
        for field in ["open", "high", "low", "close", "volume"] {
            cut(result.pointer_mut(&format!("/indicators/quote/0/{field}")));
        }
        cut(result.pointer_mut("/indicators/adjclose/0/adjclose"));
        // Dividends and splits are keyed by their time: only those in the kept sessions stay.
        let first = result
            .pointer("/timestamp/0")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX);
        if let Some(Value::Object(kinds)) = result.get_mut("events") {
            for by_time in kinds.values_mut() {
                if let Value::Object(items) = by_time {
                    items.retain(|t, _| t.parse::<i64>().is_ok_and(|t| t >= first && t < before));
                }
            }
        }
        let out = serde_json::to_vec(&chart).map_err(|e| bad(&body_path, e.to_string()))?;
        std::fs::write(&body_path, out).map_err(io_err(&body_path))?;
        let day = chrono::DateTime::from_timestamp(before - 1, 0).map(|t| t.date_naive());
        let day = day.map_or_else(String::new, |d| d.to_string());
        let note = match keep {
            Some(keep) => format!(
                "cut by macrolake bench to the sessions through {day}, and of those the last \
                 {keep}, as Yahoo answers an incremental request; the values are the real \
                 recording's"
            ),
            None => format!(
                "cut by macrolake bench to the sessions through {day} (the next night adds the \
                 day after); the values are the real recording's"
            ),
        };
        meta.note = Some(match meta.note.take() {
            Some(n) => format!("{n}; {note}"),
            None => note,
        });
        let text =
            serde_json::to_string_pretty(&meta).map_err(|e| bad(&meta_path, e.to_string()))?;
        std::fs::write(&meta_path, text).map_err(io_err(&meta_path))?;
    }
    Ok(())
}

/// One synthetic day: open, high, low, close, volume.
#[derive(Debug, Clone, Copy)]
struct Bar {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: u64,
}

/// A price path of `n` sessions with returns drawn from `pool`, reproducible from `seed`.
fn simulate(pool: &[f64], n: usize, seed: u64) -> Vec<Bar> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut close: f64 = rng.random_range(5.0f64.ln()..500.0f64.ln()).exp();
    let scale = rng.random_range(1.0e5..5.0e7);
    (0..n)
        .map(|_| {
            let prev = close;
            close = prev * (1.0 + pool[rng.random_range(0..pool.len())]);
            let open = prev * (1.0 + 0.3 * pool[rng.random_range(0..pool.len())]);
            let wick = |r: &mut StdRng| pool[r.random_range(0..pool.len())].abs() * 0.5;
            let high = open.max(close) * (1.0 + wick(&mut rng));
            let low = open.min(close) * (1.0 - wick(&mut rng));
            let volume = (scale * rng.random_range(0.5..1.5)) as u64;
            Bar {
                open,
                high,
                low,
                close,
                volume,
            }
        })
        .collect()
}

/// Writes one symbol's Yahoo chart v8 recording (meta + body) into `replay`.
fn write_recording(
    replay: &Path,
    template: &Url,
    symbol: &str,
    days: &[NaiveDate],
    bars: &[Bar],
) -> Result<(), BenchError> {
    let new_york = chrono_tz::America::New_York;
    let mut url = template.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop().push(symbol);
    }
    let slug = format!("v8_finance_chart_{symbol}");
    let folder = replay.join(YAHOO_HOST);
    let meta = RecordingMeta {
        method: "GET".into(),
        url: url.to_string(),
        status: 200,
        content_type: Some("application/json".into()),
        recorded_at: chrono::Utc::now(),
        body_file: format!("{slug}.body.json"),
        note: Some(
            "SYNTHETIC (macrolake bench): not market data; daily returns resampled from the real \
             snapshot's Yahoo histories"
                .into(),
        ),
    };
    let meta_path = folder.join(format!("{slug}.meta.json"));
    let text =
        serde_json::to_string_pretty(&meta).map_err(|e| BenchError::Snapshot(e.to_string()))?;
    std::fs::write(&meta_path, text).map_err(io_err(&meta_path))?;

    let timestamps = days.iter().map(|d| {
        let at = d.and_hms_opt(9, 30, 0).expect("valid time");
        new_york
            .from_local_datetime(&at)
            .earliest()
            .map_or(0, |t| t.timestamp())
    });
    let mut body = String::with_capacity(days.len() * 64 + 512);
    body.push_str(&format!(
        "{{\"chart\":{{\"result\":[{{\"meta\":{{\"currency\":\"USD\",\"symbol\":\"{symbol}\",\
         \"exchangeName\":\"BENCH\",\"instrumentType\":\"EQUITY\",\"gmtoffset\":-14400,\
         \"timezone\":\"EDT\",\"exchangeTimezoneName\":\"America/New_York\",\
         \"dataGranularity\":\"1d\",\"range\":\"\"}},\"timestamp\":["
    ));
    join(&mut body, timestamps.map(|t| t.to_string()));
    body.push_str("],\"indicators\":{\"quote\":[{\"open\":[");
    join(&mut body, bars.iter().map(|b| format!("{:.4}", b.open)));
    body.push_str("],\"high\":[");
    join(&mut body, bars.iter().map(|b| format!("{:.4}", b.high)));
    body.push_str("],\"low\":[");
    join(&mut body, bars.iter().map(|b| format!("{:.4}", b.low)));
    body.push_str("],\"close\":[");
    join(&mut body, bars.iter().map(|b| format!("{:.4}", b.close)));
    body.push_str("],\"volume\":[");
    join(&mut body, bars.iter().map(|b| b.volume.to_string()));
    body.push_str("]}],\"adjclose\":[{\"adjclose\":[");
    join(&mut body, bars.iter().map(|b| format!("{:.4}", b.close)));
    body.push_str("]}]}}],\"error\":null}}");
    let body_path = folder.join(&meta.body_file);
    let mut file = std::fs::File::create(&body_path).map_err(io_err(&body_path))?;
    file.write_all(body.as_bytes())
        .map_err(io_err(&body_path))?;
    Ok(())
}

fn join(out: &mut String, items: impl Iterator<Item = String>) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_universe_replays_through_the_real_yahoo_parser_and_the_next_day_extends_it() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream");
        // The snapshot's last day, a Friday: the base ends Thursday, the next night adds Friday.
        let snapshot_day = NaiveDate::from_ymd_opt(2026, 6, 5).unwrap();
        let u = generate(&snapshot, dir.path(), 3, 2, snapshot_day).unwrap();
        let last = NaiveDate::from_ymd_opt(2026, 6, 4).unwrap();
        assert_eq!((u.last_day, u.next_day), (last, snapshot_day));
        assert_eq!(u.symbols.len(), 3);
        let read = |root: &Path, sym: &str| {
            let body = std::fs::read(
                root.join(YAHOO_HOST)
                    .join(format!("v8_finance_chart_{sym}.body.json")),
            )
            .unwrap();
            crate::sources::prices::parse::yahoo_chart(&body).unwrap()
        };
        let base = read(&u.base, "SYN0002");
        let next = read(&u.next, "SYN0002");
        assert_eq!(base.symbol, "SYN0002");
        assert_eq!(base.bars.last().unwrap().date, last);
        assert_eq!(
            base.bars.first().unwrap().date,
            NaiveDate::from_ymd_opt(2024, 6, 3).unwrap()
        );
        assert_eq!(next.bars.len(), NEXT_DAY_WINDOW);
        assert_eq!(next.bars.last().unwrap().date, u.next_day);
        // The sessions both answers hold are the same bars: the next day revises nothing.
        let overlap = &base.bars[base.bars.len() - (NEXT_DAY_WINDOW - 1)..];
        assert_eq!(overlap, &next.bars[..NEXT_DAY_WINDOW - 1]);
        assert_eq!(u.rows, 3 * base.bars.len());
        // Two symbols are two different paths, and prices stay positive with sane bars.
        assert_ne!(read(&u.base, "SYN0001").bars, base.bars);
        for b in &base.bars {
            assert!(b.close > 0.0 && b.low.unwrap() <= b.close && b.close <= b.high.unwrap());
        }
        // The real recordings are copied alongside: through the last day in base/, their last
        // sessions through the next day in next/ (the same values), so the real symbols get the
        // next day too.
        assert!(u.base.join("api.stlouisfed.org").is_dir());
        let whole = read(&snapshot, "SPY");
        let (through_last, cut) = (read(&u.base, "SPY"), read(&u.next, "SPY"));
        assert!(
            through_last.bars.len() > 5000,
            "{}",
            through_last.bars.len()
        );
        assert_eq!(through_last.bars.last().unwrap().date, last);
        assert_eq!(through_last.bars, whole.bars[..through_last.bars.len()]);
        assert_eq!(cut.bars.len(), NEXT_DAY_WINDOW);
        assert_eq!(cut.bars.last().unwrap().date, u.next_day);
        let n = through_last.bars.len() + 1;
        assert_eq!(cut.bars, whole.bars[n - NEXT_DAY_WINDOW..n]);
        // Bitcoin (stamped at 00:00 UTC) gets the day too; ^GSPC, recorded into July, is cut.
        let btc = (read(&u.base, "BTC-USD"), read(&u.next, "BTC-USD"));
        assert_eq!(btc.0.bars.last().unwrap().date, last);
        assert_eq!(btc.1.bars.last().unwrap().date, u.next_day);
        assert_eq!(read(&u.next, "_GSPC").bars.last().unwrap().date, u.next_day);
        assert!(u.return_pool > 10_000);
    }
}
