#!/usr/bin/env python3
"""The outside references of `macrolake bench` (run by it; not meant to be run alone).

Reads the manifest the bench wrote (every lake table's live Parquet files, the session's views,
the seeds, the models in build order, the daily cut-off, where `macrolake serve` listens) and:

1. DuckDB: registers each table as a view over the same Parquet files, the seeds from the same
   CSVs, `known_on` as a macro with the same cut-off, then runs each model's SQL as written,
   `COPY (...) TO` Parquet, timed. A model whose SQL DuckDB cannot run is reported with the
   error, never rewritten.
2. PostgreSQL (Debian's server, `initdb` in the work folder, or under the system temporary
   folder when run as root, loopback only): loads the marts the dashboard reads with COPY, adds the indexes a DBA would (date; symbol, date), ANALYZE.
3. The dashboard queries, over pgwire with psycopg, against both servers: warm-up, then `runs`
   timed executions each (fetching every row); p50/p95 per server. Then again with each
   execution's text made distinct by a comment, so macrolake's result cache and both servers'
   prepared statements never answer: the cost of a query seen for the first time. Both servers
   must return the same number of rows, or the run fails.

Writes the results as JSON to --out.
"""

import argparse
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb
import psycopg

# Marts loaded into PostgreSQL: what the dashboard queries read.
PG_TABLES = {
    "marts.liquidity_vs_risk": ["date"],
    "marts.asset_daily": ["symbol, date", "date"],
}


def dashboard(max_date):
    """The five dashboard queries of the issue plus the per-symbol query, as literal SQL both
    servers run unchanged."""
    year_ago = f"DATE '{max_date.fromordinal(max_date.toordinal() - 365)}'"
    d90 = f"DATE '{max_date.fromordinal(max_date.toordinal() - 90)}'"
    day = f"DATE '{max_date.fromordinal(max_date.toordinal() - 30)}'"
    since = f"DATE '{max_date.replace(year=max_date.year - 1, month=1, day=1)}'"
    return [
        ("last 90 days", f"SELECT * FROM marts.liquidity_vs_risk WHERE date >= {d90} ORDER BY date"),
        (
            "one year by week",
            "SELECT date_trunc('week', date) AS week, avg(net_liquidity_musd) AS net_liquidity, "
            "avg(btc_close) AS btc, avg(rut_close) AS rut FROM marts.liquidity_vs_risk "
            f"WHERE date >= {year_ago} GROUP BY 1 ORDER BY 1",
        ),
        (
            "full-history aggregate",
            "SELECT extract(year FROM date) AS year, count(*) AS days, avg(net_liquidity_musd) AS nl, "
            "min(btc_drawdown_pct) AS worst_btc, max(rut_close) AS top_rut "
            "FROM marts.liquidity_vs_risk GROUP BY 1 ORDER BY 1",
        ),
        ("point lookup", f"SELECT * FROM marts.liquidity_vs_risk WHERE date = {day}"),
        (
            "chart",
            "SELECT date, CAST(net_liquidity_musd AS DOUBLE PRECISION), CAST(btc_close AS DOUBLE PRECISION), "
            "CAST(CASE WHEN rut_close IS NOT NULL THEN rut_level END AS DOUBLE PRECISION), "
            f"coalesce(divergence, false) FROM marts.liquidity_vs_risk WHERE date BETWEEN {year_ago} "
            f"AND DATE '{max_date}' ORDER BY date",
        ),
        (
            "one symbol since last year (asset_daily)",
            "SELECT date, close, drawdown_pct FROM marts.asset_daily "
            f"WHERE symbol = 'SYN0001' AND date >= {since} ORDER BY date",
        ),
    ]


def quoted(name):
    schema, table = name.split(".", 1)
    return f'"{schema}"."{table}"'


def duckdb_models(manifest, work):
    con = duckdb.connect()
    schemas = {t["name"].split(".")[0] for t in manifest["tables"] + manifest["seeds"]}
    for s in sorted(schemas | {"marts", "staging", "seeds"}):
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{s}"')
    for t in manifest["tables"]:
        if t["files"]:
            files = ", ".join("'" + f.replace("'", "''") + "'" for f in t["files"])
            con.execute(f"CREATE VIEW {quoted(t['name'])} AS SELECT * FROM read_parquet([{files}])")
    for s in manifest["seeds"]:
        con.execute(
            f"CREATE VIEW {quoted(s['name'])} AS SELECT * FROM read_csv('{s['files'][0]}', header = true)"
        )
    hh, mm, ss = manifest["cutoff_time"].split(":")
    zone = manifest["cutoff_zone"]
    # known_on(available_at): the first day whose cut-off (local time in the zone) is at or
    # after the instant — macrolake's UDF, the same rule.
    con.execute(
        f"""CREATE MACRO known_on(ts) AS (
              CASE WHEN CAST(timezone('{zone}', ts) AS TIME) <= TIME '{hh}:{mm}:{ss}'
                   THEN CAST(timezone('{zone}', ts) AS DATE)
                   ELSE CAST(timezone('{zone}', ts) AS DATE) + 1 END)"""
    )
    for v in manifest["views"]:
        try:
            con.execute(f"CREATE OR REPLACE VIEW {quoted(v['name'])} AS\n{v['sql']}\n")
        except duckdb.Error as e:
            print(f"compare: DuckDB cannot create view {v['name']}: {e}", file=sys.stderr)
    out = os.path.join(work, "duckdb")
    os.makedirs(out, exist_ok=True)
    results = []
    for m in manifest["models"]:
        target = os.path.join(out, m["name"] + ".parquet")
        sql = m["sql"].strip().rstrip(";")
        start = time.perf_counter()
        try:
            con.execute(f"COPY (\n{sql}\n) TO '{target}' (FORMAT parquet)")
            seconds = time.perf_counter() - start
            rows = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
            results.append({"model": m["name"], "seconds": seconds, "rows": rows, "error": None})
        except duckdb.Error as e:
            results.append({"model": m["name"], "seconds": None, "rows": None, "error": str(e).splitlines()[0]})
    return results, duckdb.__version__


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    sys.exit("compare: no PostgreSQL server (initdb) found: apt-get install postgresql")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway PostgreSQL cluster on loopback, run as the `postgres` user when we are root
    (initdb refuses root)."""

    def __init__(self, work):
        self.bin = pg_bin()
        self.as_user = []
        if os.geteuid() == 0:
            # The cluster lives under the system temporary folder: `postgres` cannot reach a
            # checkout under a private folder (e.g. one made by `mktemp -d`, mode 0700).
            self.root = tempfile.mkdtemp(prefix="macrolake-bench-pg-")
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        else:
            self.root = tempfile.mkdtemp(prefix="pg-", dir=work)
        self.data = os.path.join(self.root, "data")
        self.port = free_port()

    def run(self, *args):
        subprocess.run(self.as_user + list(args), check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self.run(f"{self.bin}/initdb", "-D", self.data, "-A", "trust", "-U", "bench", "--no-sync")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(f"{self.bin}/pg_ctl", "-D", self.data, "-o", opts, "-l", os.path.join(self.root, "log"), "-w", "start")

    def stop(self):
        try:
            self.run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self):
        return f"host=127.0.0.1 port={self.port} user=bench dbname=postgres"


PG_TYPES = {
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIMESTAMP": "timestamp",
}


def pg_type(duck):
    if duck.startswith("DECIMAL"):
        return "numeric" + duck[len("DECIMAL"):]
    return PG_TYPES.get(duck, "text")


def load_postgres(pg, manifest, work):
    """The dashboard's marts, from the same Parquet files, into PostgreSQL with COPY."""
    con = duckdb.connect()
    files = {t["name"]: t["files"] for t in manifest["tables"]}
    start = time.perf_counter()
    rows = {}
    with psycopg.connect(pg.dsn(), autocommit=True) as pgc:
        pgc.execute("CREATE SCHEMA marts")
        for name, indexes in PG_TABLES.items():
            listed = ", ".join(f"'{f}'" for f in files[name])
            rel = con.sql(f"SELECT * FROM read_parquet([{listed}])")
            cols = ", ".join(f'"{c}" {pg_type(str(t))}' for c, t in zip(rel.columns, rel.types))
            pgc.execute(f"CREATE TABLE {name} ({cols})")
            csv = os.path.join(work, name + ".csv")
            rel.write_csv(csv, header=False)
            with pgc.cursor() as cur, open(csv, "rb") as f:
                with cur.copy(f"COPY {name} FROM STDIN (FORMAT csv)") as copy:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
            for i, idx in enumerate(indexes):
                pgc.execute(f"CREATE INDEX {name.split('.')[1]}_{i} ON {name} ({idx})")
            pgc.execute(f"ANALYZE {name}")
            rows[name] = pgc.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        version = pgc.execute("SHOW server_version").fetchone()[0]
    return time.perf_counter() - start, rows, version


def timed(conn, sql, runs, distinct=False):
    """p50/p95 of `runs` executions after a warm-up. With `distinct`, each execution's text
    differs by a comment (`/* run N */`), so no result cache or prepared statement answers it:
    every run is parsed, planned and executed, as a dashboard's first view is."""
    def text(i):
        return f"{sql} /* run {i} */" if distinct else sql

    with conn.cursor() as cur:
        for i in range(max(3, runs // 20)):
            cur.execute(text(-1 - i))
            cur.fetchall()
        times = []
        n = 0
        for i in range(runs):
            start = time.perf_counter()
            cur.execute(text(i))
            n = len(cur.fetchall())
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"p50_ms": statistics.median(times), "p95_ms": p95, "rows": n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.manifest) as f:
        manifest = json.load(f)
    work = manifest["work_dir"]
    runs = manifest["runs"]
    result = {}
    print("compare: DuckDB over the same Parquet files", file=sys.stderr)
    result["duckdb"], result["duckdb_version"] = duckdb_models(manifest, work)
    for d in result["duckdb"]:
        if d["error"]:
            print(f"compare: DuckDB cannot run {d['model']}: {d['error']}", file=sys.stderr)

    pg = Postgres(work)
    print(f"compare: PostgreSQL from {pg.bin}", file=sys.stderr)
    pg.start()
    try:
        result["postgres_load_seconds"], result["postgres_rows"], result["postgres_version"] = load_postgres(
            pg, manifest, work
        )
        ml = manifest["macrolake"]
        host, port = ml["addr"].rsplit(":", 1)
        ours = psycopg.connect(
            host=host, port=port, user=ml["user"], password=os.environ["MACROLAKE_BENCH_PASSWORD"],
            dbname="macrolake", sslmode="disable", autocommit=True,
        )
        theirs = psycopg.connect(pg.dsn(), autocommit=True)
        max_date = theirs.execute("SELECT max(date) FROM marts.liquidity_vs_risk").fetchone()[0]
        queries = []
        for name, sql in dashboard(max_date):
            print(f"compare: {name}", file=sys.stderr)
            a = timed(ours, sql, runs)
            b = timed(theirs, sql, runs)
            a_fresh = timed(ours, sql, runs, distinct=True)
            b_fresh = timed(theirs, sql, runs, distinct=True)
            if not (a["rows"] == b["rows"] == a_fresh["rows"] == b_fresh["rows"]):
                sys.exit(f"compare: {name}: macrolake returned {a['rows']} rows, PostgreSQL {b['rows']}\n{sql}")
            queries.append({
                "name": name, "sql": sql, "runs": runs, "macrolake": a, "postgres": b,
                "macrolake_distinct": a_fresh, "postgres_distinct": b_fresh,
            })
        result["queries"] = queries
        ours.close()
        theirs.close()
    finally:
        pg.stop()
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2, default=str)


if __name__ == "__main__":
    main()
