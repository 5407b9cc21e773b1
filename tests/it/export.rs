//! `macrolake export` on a lake built from the snapshot: Parquet and CSV files equal to what
//! `macrolake sql` returns, atomic replacement, object-store URLs, unknown names.

use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::common::*;

/// `macrolake --lake <lake> <args>` run from the repository root.
fn cli(lake: &Path, args: &[&str]) -> (i32, String, String) {
    run(bin(repo()).arg("--lake").arg(lake).args(args))
}

/// `macrolake sql --format csv` of a whole table sorted by every column (`ORDER BY 1, 2, …`).
fn sql_table_csv(lake: &Path, table: &str, columns: usize, extra: &[&str]) -> String {
    let order: Vec<String> = (1..=columns).map(|i| i.to_string()).collect();
    let query = format!("select * from {table} order by {}", order.join(", "));
    let mut args = vec!["sql", "--format", "csv"];
    args.extend_from_slice(extra);
    args.push(&query);
    let (code, out, err) = cli(lake, &args);
    assert_eq!(code, 0, "{query}\n{err}");
    out
}

/// Every batch of a Parquet file.
fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    reader.map(|b| b.unwrap()).collect()
}

/// Batches as CSV, formatted the way `macrolake sql --format csv` formats them.
fn to_csv(batches: &[RecordBatch]) -> String {
    let mut out = Vec::new();
    {
        let mut w = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        for b in batches {
            w.write(b).unwrap();
        }
    }
    String::from_utf8(out).unwrap()
}

/// The (location, rows, bytes) of each line `export` printed.
fn printed(stdout: &str) -> Vec<(String, usize, u64)> {
    stdout
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split("  ").collect();
            assert_eq!(parts.len(), 3, "{line}");
            let rows = parts[1].strip_suffix(" rows").unwrap().parse().unwrap();
            let bytes = parts[2].strip_suffix(" bytes").unwrap().parse().unwrap();
            (parts[0].to_string(), rows, bytes)
        })
        .collect()
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

fn sorted_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn export_writes_parquet_and_csv_equal_to_sql_atomically_and_refuses_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let lake = nightly_lake(dir.path());

    // Parquet into a folder that does not exist yet.
    let out = dir.path().join("exports/parquet");
    let (code, stdout, err) = cli(
        &lake,
        &[
            "export",
            "liquidity_vs_risk",
            "staging.prices_daily",
            "--format",
            "parquet",
            "--to",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{err}");
    let lines = printed(&stdout);
    let mart = out.join("marts.liquidity_vs_risk.parquet");
    let prices = out.join("staging.prices_daily.parquet");
    assert_eq!(lines[0].0, mart.display().to_string());
    assert_eq!(lines[1].0, prices.display().to_string());
    assert_eq!(
        sorted_files(&out),
        [
            "marts.liquidity_vs_risk.parquet",
            "staging.prices_daily.parquet"
        ]
    );

    for ((path, rows, bytes), table) in lines
        .iter()
        .zip(["marts.liquidity_vs_risk", "staging.prices_daily"])
    {
        assert_eq!(std::fs::metadata(path).unwrap().len(), *bytes, "{path}");
        let batches = read_parquet(Path::new(path));
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            *rows
        );
        assert!(*rows > 4000, "{table}: {rows} rows");
        // Every value, in order, equals what `macrolake sql` returns for the table.
        let columns = batches[0].num_columns();
        assert_eq!(
            to_csv(&batches),
            sql_table_csv(&lake, table, columns, &[]),
            "{table}"
        );
    }

    // Arrow types are kept: dates, decimals, booleans, UTC timestamps, plain strings.
    let schema = read_parquet(&mart)[0].schema();
    let type_of = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(type_of("date"), DataType::Date32);
    assert_eq!(type_of("net_liquidity_musd"), DataType::Float64);
    assert_eq!(
        type_of("bill_purchases_cum_usd"),
        DataType::Decimal128(38, 2)
    );
    assert_eq!(type_of("divergence"), DataType::Boolean);
    let schema = read_parquet(&prices)[0].schema();
    assert_eq!(
        schema.field_with_name("ingested_at").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        schema.field_with_name("symbol").unwrap().data_type(),
        &DataType::Utf8
    );

    // Exporting again replaces the files with identical ones and leaves no temporary file.
    let before = std::fs::read(&mart).unwrap();
    let (code, _, err) = cli(
        &lake,
        &["export", "liquidity_vs_risk", "--to", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&mart).unwrap(), before);
    assert_eq!(sorted_files(&out).len(), 2, "{:?}", sorted_files(&out));

    // CSV through an object-store URL (a file:// store: one put per file).
    let csv_dir = dir.path().join("exports/csv");
    let url = format!("file://{}", csv_dir.display());
    let (code, stdout, err) = cli(
        &lake,
        &[
            "export",
            "liquidity_vs_risk",
            "staging.prices_daily",
            "--format",
            "csv",
            "--to",
            &url,
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{err}");
    let lines = printed(&stdout);
    assert_eq!(
        lines[0].0,
        format!("{url}/marts.liquidity_vs_risk.csv"),
        "{stdout}"
    );
    let mart_csv = std::fs::read_to_string(csv_dir.join("marts.liquidity_vs_risk.csv")).unwrap();
    assert_eq!(mart_csv.len() as u64, lines[0].2);
    assert_eq!(mart_csv.lines().count(), lines[0].1 + 1);
    let header = mart_csv.lines().next().unwrap();
    assert!(
        header.starts_with("date,net_liquidity_musd,") && header.ends_with(",divergence"),
        "{header}"
    );
    assert!(
        mart_csv
            .lines()
            .skip(1)
            .all(|l| l.len() > 11 && is_iso_date(&l[..10]) && &l[10..11] == ","),
        "every row starts with an ISO date"
    );
    assert_eq!(
        mart_csv,
        sql_table_csv(
            &lake,
            "marts.liquidity_vs_risk",
            header.split(',').count(),
            &[]
        )
    );
    // Numbers use `.` and no thousands separators; timestamps are RFC 3339 in UTC.
    let prices_csv = std::fs::read_to_string(csv_dir.join("staging.prices_daily.csv")).unwrap();
    let first = prices_csv.lines().nth(1).unwrap();
    let fields: Vec<&str> = first.split(',').collect();
    assert_eq!(fields.len(), 12, "{first}");
    assert!(is_iso_date(fields[1]), "{first}");
    assert!(fields[5].parse::<f64>().is_ok(), "{first}");
    let ts = fields[10];
    assert!(
        ts.len() >= 20 && is_iso_date(&ts[..10]) && &ts[10..11] == "T" && ts.ends_with('Z'),
        "{ts}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");

    // --as-of: the run history as it was at version 0.
    let asof = dir.path().join("exports/asof");
    let (code, stdout, err) = cli(
        &lake,
        &[
            "export",
            "meta.runs",
            "--format",
            "csv",
            "--as-of",
            "0",
            "--to",
            asof.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{err}");
    let runs_then = std::fs::read_to_string(asof.join("meta.runs.csv")).unwrap();
    let columns = runs_then.lines().next().unwrap().split(',').count();
    assert_eq!(
        runs_then,
        sql_table_csv(&lake, "meta.runs", columns, &["--as-of", "0"])
    );
    let runs_now = sql_table_csv(&lake, "meta.runs", columns, &[]);
    assert!(runs_then.lines().count() < runs_now.lines().count());

    // An unknown name: exit 1, the tables listed, nothing written (not even the folder).
    let nowhere = dir.path().join("exports/never");
    let (code, stdout, err) = cli(
        &lake,
        &[
            "export",
            "liquidity_vs_risk",
            "prices_daily",
            "--to",
            nowhere.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stdout}\n{err}");
    assert!(
        err.contains("no table \"prices_daily\"")
            && err.contains("did you mean staging.prices_daily?")
            && err.contains("marts.liquidity_vs_risk, ")
            && err.contains("Nothing was written"),
        "{err}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!nowhere.exists());
}
