//! Property tests ("fuzzing") of every parser of upstream bytes, the recordings' meta files and
//! the model-file header parser: over random bytes, random text, and mutations of the real
//! recorded bodies (byte flips, truncation at any point, lines deleted, duplicated or swapped,
//! fields swapped or replaced by hostile tokens such as `NaN`, `inf`, `1e400`, multi-byte
//! characters). Each must return rows or an error — never panic — and rows must hold what the
//! tables promise (finite numbers, sorted and unique keys where the parser says so).
//!
//! Cases per parser: `MACROLAKE_PROPTEST_CASES` when set, else each test's default (256 for the
//! cheap parsers, fewer for the workbook and the calendar page). The long run:
//!
//! ```text
//! MACROLAKE_PROPTEST_CASES=100000 cargo test --release --lib fuzz
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

use super::SourceError;

/// Cases for one parser: the env var, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("MACROLAKE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A real JSON body with every array cut to its first `n` elements: still the upstream's own
/// values and layout, small enough that a case costs microseconds, not milliseconds.
fn shortened_json(rel: &str, n: usize) -> Vec<u8> {
    fn cut(v: &mut serde_json::Value, n: usize) {
        match v {
            serde_json::Value::Array(a) => {
                a.truncate(n);
                a.iter_mut().for_each(|x| cut(x, n));
            }
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| cut(x, n)),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(&read(rel)).expect("real JSON");
    cut(&mut v, n);
    serde_json::to_vec_pretty(&v).expect("serialises")
}

/// Values a hostile or drifting upstream puts in a field.
const TOKENS: &[&str] = &[
    "",
    "-",
    ".",
    "NaN",
    "inf",
    "-inf",
    "infinity",
    "1e400",
    "-1e308",
    "0",
    "null",
    "\"\"",
    "é",
    "ZQ",
    "ZQé5",
    "202é5",
    "9999-12-31",
    "0000-01-01",
    "2024-02-30",
    "99999999999999999999999999",
    "-9223372036854775808",
    "9223372036854775807",
    "1.5",
    "Total",
    "<html><body>Consent</body></html>",
    "{}",
    "[]",
    "true",
    "\n",
    ",",
    "\"",
    "*",
    "(",
    "Dec/Jan",
    "31-1",
];

/// One change to a body.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    SwapFields(Index, Index, Index),
    SetField(Index, Index, Index),
    Insert(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = any::<Index>;
    prop_oneof![
        (i(), 1u8..=255).prop_map(|(a, x)| Mutation::Flip(a, x)),
        i().prop_map(Mutation::Truncate),
        i().prop_map(Mutation::DeleteLine),
        i().prop_map(Mutation::DuplicateLine),
        (i(), i()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (i(), i(), i()).prop_map(|(l, a, b)| Mutation::SwapFields(l, a, b)),
        (i(), i(), i()).prop_map(|(l, f, t)| Mutation::SetField(l, f, t)),
        (i(), i()).prop_map(|(a, t)| Mutation::Insert(a, t)),
    ]
}

fn split_lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|c| *c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A line's fields split on `,` (its line break kept apart).
fn fields(line: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let (body, end) = match line.strip_suffix(b"\n") {
        Some(b) => (b, b"\n".to_vec()),
        None => (line, Vec::new()),
    };
    (
        body.split(|c| *c == b',').map(<[u8]>::to_vec).collect(),
        end,
    )
}

/// A field with its value replaced by `token`, keeping a JSON key (`"key": `) and quotes.
fn replace_value(field: &[u8], token: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(field);
    let (key, value) = match text.rfind("\":") {
        Some(k) => text.split_at(k + 2),
        None => ("", text.as_ref()),
    };
    let quoted = value.trim().starts_with('"');
    let token = if quoted {
        format!("\"{token}\"")
    } else {
        token.to_string()
    };
    format!("{key}{token}").into_bytes()
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    let with_lines = |body: &mut Vec<u8>, f: &dyn Fn(&mut Vec<Vec<u8>>)| {
        let mut lines = split_lines(body);
        if !lines.is_empty() {
            f(&mut lines);
        }
        *body = lines.concat();
    };
    match m {
        Mutation::Flip(at, x) if !body.is_empty() => {
            let i = at.index(body.len());
            body[i] ^= x;
        }
        Mutation::Truncate(at) => body.truncate(at.index(body.len() + 1)),
        Mutation::DeleteLine(l) => with_lines(body, &|ls| {
            ls.remove(l.index(ls.len()));
        }),
        Mutation::DuplicateLine(l) => with_lines(body, &|ls| {
            let i = l.index(ls.len());
            ls.insert(i, ls[i].clone());
        }),
        Mutation::SwapLines(a, b) => with_lines(body, &|ls| {
            let n = ls.len();
            ls.swap(a.index(n), b.index(n));
        }),
        Mutation::SwapFields(l, a, b) => with_lines(body, &|ls| {
            let i = l.index(ls.len());
            let (mut fs, end) = fields(&ls[i]);
            let n = fs.len();
            fs.swap(a.index(n), b.index(n));
            ls[i] = [fs.join(&b','), end].concat();
        }),
        Mutation::SetField(l, f, t) => with_lines(body, &|ls| {
            let i = l.index(ls.len());
            let (mut fs, end) = fields(&ls[i]);
            let k = f.index(fs.len());
            fs[k] = replace_value(&fs[k], TOKENS[t.index(TOKENS.len())]);
            ls[i] = [fs.join(&b','), end].concat();
        }),
        Mutation::Insert(at, t) => {
            let i = at.index(body.len() + 1);
            let token = TOKENS[t.index(TOKENS.len())].as_bytes();
            body.splice(i..i, token.iter().copied());
        }
        Mutation::Flip(..) => {}
    }
}

/// Random bytes, random text over the characters bodies are made of, or a real body mutated.
fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let seeds = Arc::new(seeds);
    let mutated =
        (any::<Index>(), prop::collection::vec(mutation(), 1..5)).prop_map(move |(s, muts)| {
            let mut body = seeds[s.index(seeds.len())].clone();
            muts.iter().for_each(|m| apply(&mut body, m));
            body
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => "[-0-9A-Za-z,.:\"{}\\[\\] \n/*()<>é]{0,300}".prop_map(String::into_bytes),
        6 => mutated,
    ]
}

/// Runs `property` on `cases(default)` inputs; a panic or an `Err` fails the test, shrunk.
fn fuzz(default: u32, seeds: Vec<Vec<u8>>, property: impl Fn(&[u8]) -> Result<(), String>) -> u32 {
    let n = cases(default);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&input(seeds), |body| {
        property(&body).map_err(TestCaseError::fail)
    });
    if let Err(proptest::test_runner::TestError::Fail(why, body)) = result {
        panic!("{why}; minimal input: {:?}", String::from_utf8_lossy(&body));
    }
    n
}

/// The connector's error for a parse failure must name the source and say what is wrong.
fn named(source_name: &'static str, line: Option<usize>, message: &str) -> Result<(), String> {
    let e = SourceError::parse(source_name, "fuzz", "http://127.0.0.1/", line, message);
    let shown = e.to_string();
    if message.trim().is_empty() || !shown.starts_with(source_name) {
        return Err(format!("an error without a message: {shown:?}"));
    }
    Ok(())
}

fn finite(what: &str, values: impl IntoIterator<Item = Option<f64>>) -> Result<(), String> {
    match values.into_iter().flatten().find(|v| !v.is_finite()) {
        Some(v) => Err(format!("{what}: a non-finite number {v} was accepted")),
        None => Ok(()),
    }
}

fn strictly_sorted<T: PartialOrd + std::fmt::Debug>(what: &str, keys: &[T]) -> Result<(), String> {
    match keys.windows(2).find(|w| w[0] >= w[1]) {
        Some(w) => Err(format!("{what}: keys not sorted and unique: {w:?}")),
        None => Ok(()),
    }
}

mod local;
mod upstream;

/// Inputs that panicked or landed non-finite numbers before the fixes that came with these tests.
#[test]
fn fuzz_regressions() {
    use crate::sources::{eps, futures, prices, treasury};
    // `split_at(1)` after `ZQ` on an empty or multi-byte rest.
    for code in ["ZQ", "ZQé5", "zq"] {
        assert_eq!(futures::parse::contract_month(code), None, "{code}");
    }
    let vendor = "trade_date,contract,settle\n2026-09-14,ZQ,96.2\n";
    assert_eq!(futures::parse::vendor_csv(vendor).unwrap_err().0, 2);
    // A six-byte period whose fourth byte is inside a character.
    let eps_csv =
        "as_of_date,index,period,eps,kind,source\n2026-01-02,SP500,202é5,1,operating_eps,v\n";
    assert!(
        eps::vendor::parse(eps_csv)
            .unwrap_err()
            .message
            .contains("period")
    );
    // A gmtoffset beyond chrono's range.
    let yahoo = r#"{"chart":{"result":[{"meta":{"symbol":"X","gmtoffset":9223372036854775807},"timestamp":[1700000000],"indicators":{"quote":[{"close":[1.0]}]}}]}}"#;
    assert!(prices::parse::yahoo_chart(yahoo.as_bytes()).is_err());
    // Non-finite numbers: `"NaN"`, `"inf"` parse as f64 but are not prices or balances.
    assert!(prices::parse::stooq_csv(b"Date,Close\n2026-01-02,NaN\n").is_err());
    assert!(prices::parse::stooq_csv(b"Date,Open,Close\n2026-01-02,inf,1\n").is_err());
    let dts = r#"{"data":[{"record_date":"2025-07-07","account_type":"Treasury General Account (TGA) Opening Balance","open_today_bal":"NaN","close_today_bal":null}]}"#;
    assert!(treasury::parse::page(dts.as_bytes()).is_err());
    let vendor = "trade_date,contract,settle,volume\n2026-09-14,ZQU26,96.2,inf\n";
    assert!(futures::parse::vendor_csv(vendor).is_err());
    let cme = r#"{"settlements":[{"month":"SEP 26","settle":"inf"}],"tradeDate":"09/14/2026"}"#;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 9, 14).unwrap();
    assert!(
        futures::parse::cme_settlements(cme.as_bytes(), day)
            .unwrap()
            .is_empty()
    );
    // A recording whose body file is outside its folder.
    let meta = r#"{"method":"GET","url":"https://x.test/a","status":200,"recorded_at":"2026-01-01T00:00:00Z","body_file":"../../secret"}"#;
    let err = crate::http::recording::parse_meta(meta, Path::new("d/x.meta.json")).unwrap_err();
    assert!(err.to_string().contains("without a folder"), "{err}");
}
