"""Other engines read macrolake's Delta tables: Python's deltalake (delta-rs), polars through it,
pyarrow and DuckDB. Each must see exactly the rows `macrolake sql` returns.

Usage: interop.py LAKE_DIR REF_DIR, where REF_DIR holds `macrolake sql --format parquet` outputs
lvr.parquet (marts.liquidity_vs_risk) and fred.parquet (staging.fred_observations), and
optionally exports/ from `macrolake export`. Exits non-zero on the first difference.
"""

import math
import os
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

lake, ref = sys.argv[1], sys.argv[2]


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def same_value(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def compare(name, got: pa.Table, want: pa.Table, keys):
    if got.column_names != want.column_names:
        fail(f"{name}: columns {got.column_names} != {want.column_names}")
    if got.num_rows != want.num_rows:
        fail(f"{name}: {got.num_rows} rows != {want.num_rows}")
    order = [(k, "ascending") for k in keys]
    got, want = got.sort_by(order), want.sort_by(order)
    for col in got.column_names:
        g, w = got[col].to_pylist(), want[col].to_pylist()
        for i, (a, b) in enumerate(zip(g, w)):
            if not same_value(a, b):
                fail(f"{name}.{col} row {i}: {a!r} != {b!r}")


checks = [
    ("marts/liquidity_vs_risk", "lvr.parquet", ["date"], "net_liquidity_musd"),
    ("staging/fred_observations", "fred.parquet", ["series_id", "date", "realtime_start"], "value"),
]
for rel, ref_file, keys, numeric in checks:
    want = pq.read_table(os.path.join(ref, ref_file))
    dt = DeltaTable(os.path.join(lake, rel))
    got = dt.to_pyarrow_table()
    compare(f"deltalake {rel}", got, want, keys)
    df = pl.read_delta(os.path.join(lake, rel))
    if df.height != want.num_rows or df.columns != want.column_names:
        fail(f"polars {rel}: {df.height} rows, columns {df.columns}")
    p_sum = df[numeric].sum()
    w_sum = pa.compute.sum(want[numeric]).as_py()
    if not math.isclose(p_sum, w_sum, rel_tol=1e-12):
        fail(f"polars {rel}: sum({numeric}) {p_sum} != {w_sum}")
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{os.path.join(ref, ref_file)}')").fetchall()[0][0]
    if n != want.num_rows:
        fail(f"duckdb {ref_file}: {n} rows")
    print(f"ok: {rel}: deltalake (version {dt.version()}), polars and duckdb agree with macrolake sql "
          f"on {want.num_rows} rows")

exports = os.path.join(ref, "exports")
if os.path.isdir(exports):
    for f in sorted(os.listdir(exports)):
        path = os.path.join(exports, f)
        if f.endswith(".parquet"):
            t = pq.read_table(path)
            n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
            if n != t.num_rows or t.num_rows == 0:
                fail(f"export {f}: pyarrow {t.num_rows} rows, duckdb {n}")
            print(f"ok: export {f}: {t.num_rows} rows in pyarrow and duckdb")
        elif f.endswith(".csv"):
            n = duckdb.sql(f"SELECT count(*) FROM read_csv_auto('{path}')").fetchall()[0][0]
            if n == 0:
                fail(f"export {f}: empty")
            print(f"ok: export {f}: {n} rows in duckdb")
