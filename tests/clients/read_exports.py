#!/usr/bin/env python3
"""Check that `macrolake export` files read back in Python exactly as `macrolake sql` sees them.

Usage:
    macrolake export liquidity_vs_risk --format parquet --to out/
    macrolake export liquidity_vs_risk --format csv --to out/
    macrolake sql --format csv "select * from marts.liquidity_vs_risk order by date" > lvr.csv
    python3 tests/clients/read_exports.py out/ lvr.csv [--table marts.liquidity_vs_risk]

For `<table>.parquet` in the folder (required): read with pyarrow; same columns, same number of
rows, and every value equal to the reference CSV, row by row (floats within 1e-9, relative or
absolute; dates, timestamps, decimals, booleans and NULLs compared as values).

For `<table>.csv` (checked when present): parsed with the standard `csv` module, header and every
row equal to the reference; and parsed by `pyarrow.csv.read_csv` with no options, which must
find the same columns and rows and infer numbers as numbers and dates as dates.

Needs only pyarrow (`pip install pyarrow`). Exits 0 when everything matches, 1 with one line per
mismatch (at most 20) otherwise, 2 on bad arguments or missing files.
"""

import argparse
import csv
import datetime
import decimal
import math
import pathlib
import sys

try:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
except ImportError:
    sys.exit("read_exports.py needs pyarrow: pip install pyarrow")

MAX_REPORTED = 20


def read_reference(path):
    """The reference CSV as (header, rows of strings)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise SystemExit(f"{path}: empty file, expected a header row")
    return rows[0], rows[1:]


def same_value(value, text, arrow_type):
    """Whether a value read by pyarrow equals a cell of `macrolake sql --format csv`."""
    if value is None:
        return text == ""
    if text == "":
        return False
    try:
        if pa.types.is_floating(arrow_type):
            expected = float(text)
            if math.isnan(value) or math.isnan(expected):
                return math.isnan(value) and math.isnan(expected)
            return math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-9)
        if pa.types.is_integer(arrow_type):
            return value == int(text)
        if pa.types.is_boolean(arrow_type):
            return text in ("true", "false") and value == (text == "true")
        if pa.types.is_decimal(arrow_type):
            return value == decimal.Decimal(text)
        if pa.types.is_date(arrow_type):
            return value == datetime.date.fromisoformat(text)
        if pa.types.is_timestamp(arrow_type):
            expected = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if (value.tzinfo is None) != (expected.tzinfo is None):
                return False
            return value == expected
    except (ValueError, decimal.InvalidOperation):
        return False
    return str(value) == text


class Report:
    """Collects mismatches and prints the first few."""

    def __init__(self):
        self.problems = 0

    def fail(self, message):
        self.problems += 1
        if self.problems <= MAX_REPORTED:
            print(f"MISMATCH {message}", file=sys.stderr)


def check_parquet(path, header, rows, report):
    before = report.problems
    table = pq.read_table(path)
    names = table.schema.names
    if names != header:
        report.fail(f"{path}: columns {names} != reference {header}")
        return
    if table.num_rows != len(rows):
        report.fail(f"{path}: {table.num_rows} rows != reference {len(rows)}")
        return
    for index, field in enumerate(table.schema):
        values = table.column(index).to_pylist()
        for row_number, (value, row) in enumerate(zip(values, rows), start=1):
            if not same_value(value, row[index], field.type):
                report.fail(
                    f"{path.name} row {row_number} column {field.name} ({field.type}): "
                    f"parquet {value!r} != reference {row[index]!r}"
                )
    if report.problems == before:
        print(f"{path}: {table.num_rows} rows x {len(names)} columns match the reference")


def check_csv(path, header, rows, parquet_schema, report):
    before = report.problems
    exported_header, exported_rows = read_reference(path)
    if exported_header != header:
        report.fail(f"{path}: header {exported_header} != reference {header}")
        return
    if len(exported_rows) != len(rows):
        report.fail(f"{path}: {len(exported_rows)} rows != reference {len(rows)}")
        return
    for row_number, (got, want) in enumerate(zip(exported_rows, rows), start=1):
        if got == want:
            continue
        if len(got) != len(want):
            report.fail(f"{path.name} row {row_number}: {len(got)} fields != reference {len(want)}")
            continue
        for name, a, b in zip(header, got, want):
            if a != b:
                report.fail(f"{path.name} row {row_number} column {name}: {a!r} != reference {b!r}")
    # What a reader without options makes of it.
    table = pacsv.read_csv(path)
    if table.schema.names != header or table.num_rows != len(rows):
        report.fail(
            f"{path}: pyarrow.csv read {table.num_rows} rows, columns {table.schema.names}"
        )
        return
    if parquet_schema is not None:
        for field in parquet_schema:
            inferred = table.schema.field(field.name).type
            if table.column(field.name).null_count == table.num_rows:
                continue  # an all-empty column has no type to infer
            numeric = pa.types.is_floating(field.type) or pa.types.is_integer(field.type)
            numeric = numeric or pa.types.is_decimal(field.type)
            if numeric and not (
                pa.types.is_floating(inferred)
                or pa.types.is_integer(inferred)
                or pa.types.is_decimal(inferred)
            ):
                report.fail(f"{path.name} column {field.name}: pyarrow.csv inferred {inferred}")
            if pa.types.is_date(field.type) and not (
                pa.types.is_date(inferred) or pa.types.is_timestamp(inferred)
            ):
                report.fail(f"{path.name} column {field.name}: pyarrow.csv inferred {inferred}")
    if report.problems == before:
        print(f"{path}: {len(rows)} rows match the reference; pyarrow.csv reads it without options")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exports", type=pathlib.Path, help="folder given to `export --to`")
    parser.add_argument("reference", type=pathlib.Path, help="`macrolake sql --format csv` output")
    parser.add_argument("--table", default="marts.liquidity_vs_risk", help="zone.table")
    args = parser.parse_args()

    parquet_path = args.exports / f"{args.table}.parquet"
    csv_path = args.exports / f"{args.table}.csv"
    if not parquet_path.is_file():
        print(f"error: {parquet_path} does not exist (run macrolake export first)", file=sys.stderr)
        return 2
    if not args.reference.is_file():
        print(f"error: {args.reference} does not exist", file=sys.stderr)
        return 2
    header, rows = read_reference(args.reference)
    report = Report()
    check_parquet(parquet_path, header, rows, report)
    if csv_path.is_file():
        check_csv(csv_path, header, rows, pq.read_schema(parquet_path), report)
    if report.problems:
        hidden = report.problems - MAX_REPORTED
        more = f" ({hidden} more not shown)" if hidden > 0 else ""
        print(
            f"FAILED: {report.problems} mismatch(es) between {args.exports} and "
            f"{args.reference}{more}",
            file=sys.stderr,
        )
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
