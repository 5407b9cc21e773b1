"""What a BI tool does when a dataset is added, against `macrolake serve`.

Superset (and most Python BI tools) go through SQLAlchemy: connect, read the server version,
list a schema's tables, read a table's columns, run the dashboard query. Run by
tests/clients/run.sh with MACROLAKE_PG_URL=postgresql+psycopg://user:password@host:port/db.
Exits non-zero with a message on the first thing that does not work.
"""

import datetime
import os
import sys

import psycopg
import sqlalchemy as sa


def check(cond, message):
    if not cond:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


url = os.environ["MACROLAKE_PG_URL"]
engine = sa.create_engine(url)
with engine.connect() as conn:
    # SQLAlchemy parses version() on connect; a non-PostgreSQL string would have failed above.
    check(engine.dialect.server_version_info[:2] == (16, 6), f"server_version_info {engine.dialect.server_version_info}")

insp = sa.inspect(engine)
tables = insp.get_table_names(schema="marts")
check("liquidity_vs_risk" in tables, f"marts tables: {tables}")
check("net_liquidity_daily" in tables, f"marts tables: {tables}")
schemas = insp.get_schema_names()
check({"marts", "staging", "meta"} <= set(schemas), f"schemas: {schemas}")
check(not any(s.startswith("pg_") for s in schemas), f"pg_ schemas not filtered: {schemas}")
columns = insp.get_columns("liquidity_vs_risk", schema="marts")
names = [c["name"] for c in columns]
check(names[0] == "date", f"columns: {names}")
types = {c["name"]: c["type"] for c in columns}
check(isinstance(types["date"], sa.Date), f"date column type {types['date']!r}")
check(isinstance(types["net_liquidity_musd"], sa.Float), f"net liquidity type {types['net_liquidity_musd']!r}")
check(isinstance(types["divergence"], sa.Boolean), f"divergence type {types['divergence']!r}")

with engine.connect() as conn:
    rows = conn.execute(
        sa.text(
            "SELECT date, net_liquidity_musd, btc_close, rut_close, divergence "
            "FROM marts.liquidity_vs_risk WHERE date >= :since ORDER BY date"
        ),
        {"since": datetime.date(2025, 1, 1)},
    ).fetchall()
    check(len(rows) > 200, f"dashboard rows: {len(rows)}")
    check(isinstance(rows[0][0], datetime.date), f"date value {rows[0][0]!r}")
    check(isinstance(rows[0][1], float), f"float value {rows[0][1]!r}")

# Plain psycopg: server-side parameters, and the read-only guard's SQLSTATE.
plain = url.replace("postgresql+psycopg://", "postgresql://")
with psycopg.connect(plain) as conn:
    n = conn.execute("SELECT count(*) FROM marts.liquidity_vs_risk WHERE date > %s", (datetime.date(2024, 1, 1),)).fetchone()[0]
    check(n > 400, f"count {n}")
    try:
        conn.execute("DROP TABLE marts.liquidity_vs_risk")
        check(False, "DROP TABLE was accepted")
    except psycopg.errors.InsufficientPrivilege:
        pass

print(f"ok: SQLAlchemy {sa.__version__} + psycopg {psycopg.__version__}: {len(schemas)} schemas, "
      f"{len(tables)} marts tables, "
      f"{len(columns)} columns, {len(rows)} dashboard rows")
