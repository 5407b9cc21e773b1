"""psqlODBC (the driver behind Excel, Power BI's gateway and most Windows BI tools) through
pyodbc against `macrolake serve`: SQLTables, SQLColumns, a parameterised query, and writes
refused with 42501. Run by tests/clients/run.sh with the PG* variables set and MACROLAKE_CA
pointing at the server's certificate. Exits non-zero with a message on the first failure.
"""

import datetime
import os
import sys

import pyodbc


def check(cond, message):
    if not cond:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


env = os.environ
conn = pyodbc.connect(
    "DRIVER={PostgreSQL Unicode};"
    f"SERVER={env['PGHOST']};PORT={env['PGPORT']};DATABASE={env['PGDATABASE']};"
    f"UID={env['PGUSER']};PWD={env['PGPASSWORD']};"
    # TLS with the server's certificate checked.
    f"SSLmode=verify-ca;pqopt={{sslrootcert={env['MACROLAKE_CA']}}}",
    autocommit=True,
)
cur = conn.cursor()
check(conn.getinfo(pyodbc.SQL_DBMS_NAME) == "PostgreSQL", f"DBMS {conn.getinfo(pyodbc.SQL_DBMS_NAME)}")

# SQLTables: what Excel's "From ODBC" navigator lists.
tables = [(t.table_schem, t.table_name) for t in cur.tables(schema="marts", tableType="TABLE")]
check(("marts", "liquidity_vs_risk") in tables, f"SQLTables(marts): {tables}")

# SQLColumns, with the ODBC types a spreadsheet maps to cells.
columns = {c.column_name: c.data_type for c in cur.columns(table="liquidity_vs_risk", schema="marts")}
check(columns.get("date") in (pyodbc.SQL_TYPE_DATE, 9), f"date column type {columns.get('date')}")
check(columns.get("net_liquidity_musd") in (pyodbc.SQL_DOUBLE, pyodbc.SQL_FLOAT), f"net liquidity type {columns.get('net_liquidity_musd')}")

# A parameterised query (psqlODBC binds the parameter; the server plans with its type).
rows = cur.execute(
    "SELECT date, net_liquidity_musd FROM marts.liquidity_vs_risk WHERE date >= ? ORDER BY date",
    datetime.date(2025, 1, 1),
).fetchall()
check(len(rows) > 300, f"rows since 2025: {len(rows)}")
check(isinstance(rows[0][0], datetime.date) and rows[0][0] >= datetime.date(2025, 1, 1), f"first row {rows[0]}")
check(any(isinstance(r[1], float) for r in rows), "net liquidity values are floats")

for sql in ("CREATE TABLE marts.x (a int)", "DELETE FROM marts.co_highs"):
    try:
        cur.execute(sql)
    except pyodbc.Error as e:
        check(e.args[0] == "42501", f"{sql}: SQLSTATE {e.args[0]} ({e}), expected 42501")
    else:
        check(False, f"{sql} was not refused")
check(cur.execute("SELECT 1").fetchone()[0] == 1, "query after refusals")
print(f"psqlODBC {conn.getinfo(pyodbc.SQL_DRIVER_VER)} via pyodbc {pyodbc.version}: SQLTables, SQLColumns, parameterised query, writes refused")
