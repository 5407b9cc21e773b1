#!/usr/bin/env bash
# Behaviour check for refactors: runs the nightly job on the bundled snapshot with two builds of
# macrolake and compares what they leave — every mart exported as CSV (byte for byte) and every
# staging table's schema and rows (ingested_at, the run's own timestamp, left out).
#
#   git worktree add /tmp/before <rev> && (cd /tmp/before && cargo build)   # the old build
#   cargo build && bench/compare-exports.sh /tmp/before/target/debug/macrolake target/debug/macrolake
#
# Exits 0 when everything is identical; prints each difference otherwise. Tables only one build
# writes (a new connector's) are listed, not counted as differences.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OLD=$(realpath "$1"); NEW=$(realpath "$2")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export MACROLAKE_CONFIG=$REPO/tests/fixtures/upstream/macrolake.toml
sql() { "$BIN" --lake "$OUT/lake" sql --format csv "$1" | tail -n +2; }
dump() {
  BIN=$1; OUT=$2; mkdir -p "$OUT"
  (cd "$REPO" && "$BIN" --lake "$OUT/lake" run nightly --replay tests/fixtures/upstream > "$OUT/nightly.log" 2>&1) \
    || { echo "nightly failed with $BIN:"; tail -20 "$OUT/nightly.log"; exit 1; }
  "$BIN" --lake "$OUT/lake" export $(ls "$REPO/sql/marts" | sed 's/\.sql$//') --format csv --to "$OUT/marts" > /dev/null
  mkdir -p "$OUT/staging"
  for t in $(sql "select table_name from information_schema.tables where table_schema = 'staging' and table_type = 'BASE TABLE'"); do
    cols=$(sql "select column_name from information_schema.columns where table_schema = 'staging' and table_name = '$t' and column_name <> 'ingested_at' order by ordinal_position" | paste -sd, -)
    sql "select column_name, data_type, is_nullable from information_schema.columns where table_schema = 'staging' and table_name = '$t' order by ordinal_position" > "$OUT/staging/$t.schema.csv"
    sql "select $cols from staging.$t order by $cols" > "$OUT/staging/$t.rows.csv"
  done
}
dump "$OLD" "$WORK/old"
dump "$NEW" "$WORK/new"
status=0
for f in $(cd "$WORK/old" && find marts staging -type f | sort); do
  if [ ! -e "$WORK/new/$f" ]; then echo "only in the old build: $f"; status=1
  elif ! cmp -s "$WORK/old/$f" "$WORK/new/$f"; then echo "differs: $f"; status=1
  else echo "identical: $f ($(wc -c < "$WORK/new/$f") bytes)"; fi
done
for f in $(cd "$WORK/new" && find marts staging -type f | sort); do
  [ -e "$WORK/old/$f" ] || echo "new table, only in the new build: $f"
done
exit $status
