#!/usr/bin/env bash
# Real clients against the binary `cargo test` just built (target/debug/macrolake): psql,
# SQLAlchemy + psycopg, pgjdbc, psqlODBC, node-postgres and Grafana's and Metabase's catalog
# queries over `macrolake serve` with TLS, and its status page in headless Chromium. Needs .ci/setup first. Exits non-zero
# on the first failure, saying what failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/debug/macrolake
PY=target/ci-venv/bin/python
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# `… | has PATTERN`: reads all of its input before matching. `grep -q` exits at the first match,
# and under pipefail the writer still writing (psql, tee) then dies of SIGPIPE and fails the line.
has() { local text; text=$(cat); grep -q -- "$1" <<< "$text"; }
step() { echo "== $*"; }

step "a lake from the bundled snapshot"
"$BIN" --lake "$WORK/lake" --config tests/fixtures/upstream/macrolake.toml \
  --replay tests/fixtures/upstream run nightly >"$WORK/nightly.log" 2>&1 \
  || { cat "$WORK/nightly.log"; fail "nightly run"; }

step "macrolake serve with TLS and one user"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/server.key" -out "$WORK/server.crt" 2>/dev/null
cat >"$WORK/macrolake.toml" <<TOML
[models]
dir = "$PWD/sql"
[serve]
tls_cert = "server.crt"
tls_key = "server.key"
[[serve.users]]
name = "bi"
password_env = "CI_BI_PASSWORD"
TOML
export CI_BI_PASSWORD="ci-$RANDOM-$RANDOM"
"$BIN" --lake "$WORK/lake" --config "$WORK/macrolake.toml" serve --listen 127.0.0.1:0 \
  --http 127.0.0.1:0 2>"$WORK/serve.log" &
PIDS+=($!)
for _ in $(seq 100); do
  grep -q "on postgresql://" "$WORK/serve.log" && break
  sleep 0.2
done
ADDR=$(grep -o "postgresql://[0-9.:]*" "$WORK/serve.log" | head -1 | sed 's#postgresql://##')
[ -n "$ADDR" ] || { cat "$WORK/serve.log"; fail "server did not start"; }
export PGHOST=${ADDR%:*} PGPORT=${ADDR##*:} PGUSER=bi PGDATABASE=macrolake
export PGPASSWORD=$CI_BI_PASSWORD PGSSLMODE=require

step "psql $(psql --version | awk '{print $3}') over TLS"
psql -c '\conninfo' | has "SSL connection" || fail "psql did not use TLS"
psql -c '\dt' | tee "$WORK/dt.txt" | has "liquidity_vs_risk" || fail "\\dt: $(cat "$WORK/dt.txt")"
psql -c '\dt marts.*' | has " marts  *| liquidity_vs_risk " || fail "\\dt marts.*"
psql -c '\d marts.liquidity_vs_risk' | tee "$WORK/d.txt" \
  | has "net_liquidity_musd *| double precision" || fail "\\d: $(cat "$WORK/d.txt")"
ROWS=$(psql -At -c "select count(*) from marts.liquidity_vs_risk where net_liquidity_musd is not null")
# Net liquidity needs a TGA level: the DTS (from 2021-06) or FRED's WDTGAL; the snapshot carries
# only WTREGEN (a week average) before the DTS, so ~1,800 days have it (2021-06-14 .. 2026-06).
[ "$ROWS" -gt 1700 ] || fail "mart rows with net liquidity: $ROWS (expected > 1700)"
psql -At -c "select version()" | has "^PostgreSQL 16\." || fail "version()"
OUT=$(psql -v VERBOSITY=verbose -c "COPY marts.co_highs TO '$WORK/stolen.csv'" 2>&1 || true)
echo "$OUT" | has "42501" || fail "COPY not refused with 42501: $OUT"
[ ! -e "$WORK/stolen.csv" ] || fail "COPY wrote a file"
PGPASSWORD=wrong psql -c "select 1" >/dev/null 2>&1 && fail "a wrong password got in"
echo "psql: \\dt, \\d, query, version(), COPY refused, wrong password refused"

step "SQLAlchemy + psycopg (what Superset runs when a dataset is added)"
MACROLAKE_PG_URL="postgresql+psycopg://bi:$CI_BI_PASSWORD@$ADDR/macrolake?sslmode=require" \
  "$PY" tests/clients/bi_clients.py

# The drivers BI tools ship, each verifying the server's certificate.
export MACROLAKE_CA="$WORK/server.crt"
step "pgjdbc (Metabase, DBeaver, Tableau)"
java -cp /usr/share/java/postgresql.jar tests/clients/Jdbc.java || fail "pgjdbc (tests/clients/Jdbc.java)"

step "psqlODBC through pyodbc (Excel, Power BI's gateway)"
"$PY" tests/clients/odbc_client.py || fail "psqlODBC (tests/clients/odbc_client.py)"

step "node-postgres"
NODE_PATH=target/ci-node/node_modules node tests/clients/node_pg.cjs \
  || fail "node-postgres (tests/clients/node_pg.cjs)"

step "Grafana's and Metabase's catalog queries"
MACROLAKE_PG_URL="postgresql://bi:$CI_BI_PASSWORD@$ADDR/macrolake?sslmode=require" \
  "$PY" tests/clients/catalog_queries.py || fail "catalog queries (tests/clients/catalog_queries.py)"

step "the status page in headless Chromium (playwright-core)"
WEB=$(grep -o "status page on https://[0-9.:]*/" "$WORK/serve.log" | head -1 | sed 's#status page on ##')
[ -n "$WEB" ] || { cat "$WORK/serve.log"; fail "no status page URL (TLS expected)"; }
"$BIN" --lake "$WORK/lake" sql --format csv \
  "select * from marts.liquidity_vs_risk order by date" >"$WORK/lvr-browser.csv"
MACROLAKE_WEB=$WEB MACROLAKE_WEB_PASSWORD=$CI_BI_PASSWORD MACROLAKE_REF_CSV="$WORK/lvr-browser.csv" \
  MACROLAKE_SHOTS=target/web-screenshots NODE_PATH=target/ci-node/node_modules \
  node tests/clients/browser.cjs || fail "status page in Chromium (tests/clients/browser.cjs)"

step "Python deltalake, polars, pyarrow and DuckDB read the same rows as macrolake sql"
mkdir -p "$WORK/ref"
"$BIN" --lake "$WORK/lake" sql --format parquet --output "$WORK/ref/lvr.parquet" \
  "select * from marts.liquidity_vs_risk"
"$BIN" --lake "$WORK/lake" sql --format parquet --output "$WORK/ref/fred.parquet" \
  "select * from staging.fred_observations"
"$BIN" --lake "$WORK/lake" export liquidity_vs_risk --format parquet --to "$WORK/ref/exports"
"$BIN" --lake "$WORK/lake" export liquidity_vs_risk --format csv --to "$WORK/ref/exports"
"$BIN" --lake "$WORK/lake" sql --format csv \
  "select * from marts.liquidity_vs_risk order by date" >"$WORK/ref/lvr.csv"
"$PY" tests/clients/read_exports.py "$WORK/ref/exports" "$WORK/ref/lvr.csv" \
  --table marts.liquidity_vs_risk
"$PY" tests/clients/interop.py "$WORK/lake" "$WORK/ref"

step "the nightly job on s3:// (moto's S3 server on loopback)"
S3_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/ci-venv/bin/moto_server -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" AWS_ACCESS_KEY_ID=ci AWS_SECRET_ACCESS_KEY=ci
export AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
"$PY" - <<'PYEOF'
import os, time, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for _ in range(100):
    try:
        s3.create_bucket(Bucket="macrolake")
        break
    except Exception:
        time.sleep(0.2)
else:
    raise SystemExit("S3 server did not start")
PYEOF
S3_LAKE=s3://macrolake/lake
# First a night on bitcoin's prices to 2026-06-02, then the whole snapshot: the second night
# appends bitcoin's new days to marts.asset_daily, and marts.asset_roles_daily finds them in the
# files asset_daily gained, read from S3 by their URLs, and appends them to the bitcoin role
# alone (its append query continues the role's level from its stored last row). The local lake, built in one night, is the
# reference for both (the S3 lake's run history has both nights: each job that ran, ran ok).
cp -r tests/fixtures/upstream "$WORK/replay-june"
"$PY" tests/cut_yahoo.py "$WORK/replay-june/query1.finance.yahoo.com" 2026-06-03 v8_finance_chart_BTC-USD
"$BIN" --lake "$S3_LAKE" --config tests/fixtures/upstream/macrolake.toml \
  --replay "$WORK/replay-june" run nightly >"$WORK/s3-june.log" 2>&1 \
  || { cat "$WORK/s3-june.log"; fail "nightly on S3, bitcoin to 2026-06-02"; }
MACROLAKE_LOG=macrolake=info "$BIN" --lake "$S3_LAKE" --config tests/fixtures/upstream/macrolake.toml \
  --replay tests/fixtures/upstream run nightly >"$WORK/s3-nightly.log" 2>&1 \
  || { cat "$WORK/s3-nightly.log"; fail "nightly on S3"; }
has "partitions recomputed and extended model=marts.asset_roles_daily recomputed=0 appended=1" <"$WORK/s3-nightly.log" \
  || { grep asset_roles_daily "$WORK/s3-nightly.log"; fail "bitcoin's new days were not appended to its role on S3"; }
for q in \
  "select * from marts.liquidity_vs_risk order by date" \
  "select * from marts.asset_roles_daily order by role, date" \
  "select * from marts.policy_path_meetings order by 1, 2" \
  "select series_id, count(*), round(sum(value), 6), min(date), max(date) from staging.fred_observations group by 1 order by 1" \
  "select symbol, source, count(*), round(sum(close), 6) from staging.prices_daily group by 1, 2 order by 1, 2" \
  "select distinct job, status from meta.runs where kind = 'job'"; do
  diff <("$BIN" --lake "$WORK/lake" sql --format csv "$q") <("$BIN" --lake "$S3_LAKE" sql --format csv "$q") \
    >"$WORK/diff.txt" || { head -20 "$WORK/diff.txt"; fail "S3 and local lakes differ on: $q"; }
done
echo "S3 lake: same rows as the local lake"

step "concurrent writers and the job lease on S3"
MACROLAKE_TEST_S3_LAKE=s3://macrolake/tests cargo test --locked --test it s3_ -- --ignored

step "crash consistency: kill -9 at random moments, 10 trials (tests/crash/run.sh)"
env -u AWS_ENDPOINT_URL bash tests/crash/run.sh 10 || fail "crash consistency (tests/crash/run.sh)"

echo "all client checks passed"
