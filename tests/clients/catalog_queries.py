"""The catalog queries Grafana and Metabase send when a PostgreSQL data source is added, as
their public source writes them, against `macrolake serve` with psycopg (the same wire
protocol). Run by tests/clients/run.sh with MACROLAKE_PG_URL=postgresql://…; exits non-zero
on the first query that fails or does not list the marts.

Grafana: public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts
(getVersion, showSchemas, showTables, getSchema).
Metabase: src/metabase/driver/postgres.clj (`get-tables-sql`, rendered by HoneySQL for the
schema `marts`) and the session set-up Metabase 0.55's JDBC connection sends.
"""

import os
import sys

import psycopg


def check(cond, message):
    if not cond:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


SEARCH_PATH = """
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )"""

TIMESCALE = """('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')"""

GRAFANA = {
    "getVersion": "SELECT current_setting('server_version_num')::int/100 as version",
    "showSchemas": """SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name""",
    "showTables(marts)": """SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'marts'
      ORDER BY 1""",
    "showTables()": f"""SELECT
    CASE WHEN {SEARCH_PATH}
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN {TIMESCALE}
    ORDER BY CASE WHEN {SEARCH_PATH} THEN 0 ELSE 1 END, 1""",
    "getSchema(marts.liquidity_vs_risk)": f"""SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('marts.liquidity_vs_risk'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('marts.liquidity_vs_risk'))[1]
          AND quote_ident(table_name) = (parse_ident('marts.liquidity_vs_risk'))[2]
        ELSE quote_ident(table_name) = 'marts.liquidity_vs_risk'
          AND {SEARCH_PATH}
      END""",
}

METABASE_SETUP = [
    "SET extra_float_digits = 2",
    "SET application_name = 'Metabase v0.55.1'",
    "SHOW TRANSACTION ISOLATION LEVEL",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
]
METABASE_SCHEMAS = """SELECT nspname AS "TABLE_SCHEM", current_database() AS "TABLE_CATALOG" FROM pg_catalog.pg_namespace  WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_'  OR nspname = (pg_catalog.current_schemas(true))[1]) AND (nspname !~ '^pg_toast_temp_'  OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_'))  ORDER BY "TABLE_SCHEM\""""
METABASE_TABLES = """SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type", "d"."description" AS "description", "stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = '0') AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema') AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('marts')) ORDER BY "type" ASC, "schema" ASC, "name" ASC"""


def rows(conn, name, sql):
    try:
        return conn.execute(sql).fetchall()
    except psycopg.Error as e:
        check(False, f"{name}: {e}")


with psycopg.connect(os.environ["MACROLAKE_PG_URL"], autocommit=True) as conn:
    version = rows(conn, "Grafana getVersion", GRAFANA["getVersion"])
    check(version == [(1600,)], f"Grafana getVersion: {version}")
    schemas = [r[0] for r in rows(conn, "Grafana showSchemas", GRAFANA["showSchemas"])]
    check({"marts", "staging", "meta"} <= set(schemas), f"Grafana showSchemas: {schemas}")
    tables = [r[0] for r in rows(conn, "Grafana showTables(marts)", GRAFANA["showTables(marts)"])]
    check("liquidity_vs_risk" in tables, f"Grafana showTables(marts): {tables}")
    every = [r[0] for r in rows(conn, "Grafana showTables()", GRAFANA["showTables()"])]
    check("marts.liquidity_vs_risk" in every, f"Grafana showTables(): {every[:10]}")
    cols = dict(rows(conn, "Grafana getSchema", GRAFANA["getSchema(marts.liquidity_vs_risk)"]))
    check("date" in cols and "net_liquidity_musd" in cols, f"Grafana getSchema: {sorted(cols)}")

    for sql in METABASE_SETUP:
        rows(conn, "Metabase set-up", sql) if sql.upper().startswith("SHOW") else conn.execute(sql)
    mb_schemas = [r[0] for r in rows(conn, "Metabase schemas", METABASE_SCHEMAS)]
    check("marts" in mb_schemas, f"Metabase schemas: {mb_schemas}")
    mb_tables = rows(conn, "Metabase get-tables-sql", METABASE_TABLES)
    check(("marts", "liquidity_vs_risk", "TABLE") in [r[:3] for r in mb_tables], f"Metabase tables: {mb_tables[:5]}")

print("Grafana's and Metabase's catalog queries: schemas, tables and columns of marts listed")
