#!/usr/bin/env bash
# Crash-consistency harness: SIGKILL the real pipeline at random moments and check the lake.
#
#   bash tests/crash/run.sh [TRIALS]        # TRIALS (or $CRASH_TRIALS), default 10
#
# Once: a replay folder with the history cut at $CRASH_CUT (default 2026-03-02; FRED series and
# Yahoo prices end the day before), a "prepared" lake from one nightly run on it, and a reference
# lake = the prepared lake + an uninterrupted nightly on the full snapshot (new rows to MERGE into
# staging, every mart rebuilt). Each trial copies the prepared lake and kills one of, in turn:
#   run      `macrolake run nightly` on the full snapshot (ingest MERGEs, model publish, tests)
#   optimize `macrolake optimize` (every table compacted: new versions with the same rows)
#   vacuum   `macrolake vacuum --retention-hours 0` (deleting the files no version needs)
#   daemon   `macrolake daemon` holding the nightly lease while it runs the job
# at a random moment within that command's measured duration, with kill -9. Then every table of
# the catalogue must open and read (every row: exported), `macrolake run nightly` must start at
# once (the killed holder's lease is taken over: same host, process gone) and finish, and every
# staging table and mart must equal the reference (rows sorted; columns that record when or by
# which run a row was written are left out). Prints `trials=N unreadable=U diverged=D` and
# exits 1 if U or D is not 0. $BIN (default target/debug/macrolake), $CRASH_SEED (random seed),
# $CRASH_WORK (work folder, default a temporary one, removed at exit unless $CRASH_KEEP=1).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
TRIALS=${1:-${CRASH_TRIALS:-10}}
BIN=${BIN:-$REPO/target/debug/macrolake}
CUT=${CRASH_CUT:-2026-03-02}
SNAP=$REPO/tests/fixtures/upstream
CONFIG=$SNAP/macrolake.toml
# Columns that legitimately differ between two runs over the same data.
VOLATILE=${CRASH_VOLATILE:-ingested_at|run_id}
RANDOM=${CRASH_SEED:-$$}
[ -x "$BIN" ] || { echo "crash: no binary $BIN (cargo build first)" >&2; exit 2; }
WORK=${CRASH_WORK:-$(mktemp -d)}
mkdir -p "$WORK"
[ "${CRASH_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
ml() { "$BIN" --lake "$1" --config "$CONFIG" "${@:2}"; }
now_ms() { date +%s%3N; }

# --- once: the cut replay folder, the prepared lake and the reference -------------------------
cut_replay() {
  local out=$WORK/replay-cut
  cp -r "$SNAP" "$out"
  for f in "$out"/fred.stlouisfed.org/*.body.csv; do
    awk -F, -v cut="$CUT" 'NR == 1 || $1 < cut' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
  done
  # The snapshot's config, with freshness measured from the cut day and its relative paths
  # (models, EPS archive) made absolute.
  sed -e "s|^reference_date = .*|reference_date = \"$CUT\"|" \
    -e "s|^dir = .*|dir = \"$REPO/sql\"|" \
    -e "s|^archive_dir = .*|archive_dir = \"$SNAP/eps_archive\"|" "$CONFIG" >"$WORK/config-cut.toml"
  python3 "$REPO/tests/cut_yahoo.py" "$out/query1.finance.yahoo.com" "$CUT"
}

# Every table of the lake (zone.name), from the catalogue.
tables() {
  "$BIN" --lake "$1" sql --format csv "select table_schema || '.' || table_name from \
    information_schema.tables where table_schema in ('staging','marts','meta','seeds') order by 1" \
    | tail -n +2
}

# 0 when every table opens and reads, every row and column (an export to Parquet: `select
# count(*)` alone is answered from the Delta log's statistics without opening a data file);
# names the unreadable tables otherwise.
readable() {
  local lake=$1 out=$WORK/readable t bad=0 list
  list=$(tables "$lake") || { echo "    the catalogue does not list" >&2; return 1; }
  [ -n "$list" ] || return 0
  rm -rf "$out"
  # shellcheck disable=SC2086
  "$BIN" --lake "$lake" export $list --format parquet --to "$out" >/dev/null 2>&1 && return 0
  for t in $list; do
    "$BIN" --lake "$lake" export "$t" --format parquet --to "$out" >/dev/null 2>"$WORK/err" \
      || { bad=1; echo "    unreadable: $t: $(tail -c 300 "$WORK/err")" >&2; }
  done
  return $bad
}

# Every staging table and mart as sorted CSV without the volatile columns, one file each.
dump() {
  local lake=$1 out=$2 t
  rm -rf "$out" && mkdir -p "$out/raw"
  local list
  list=$(tables "$lake" | grep -E '^(staging|marts)\.') || return 1
  # shellcheck disable=SC2086
  "$BIN" --lake "$lake" export $list --format csv --to "$out/raw" >/dev/null || return 1
  for t in $list; do
    awk -v vol="^($VOLATILE)\$" -F, '
      NR == 1 { for (i = 1; i <= NF; i++) keep[i] = ($i !~ vol) }
      { s = ""; for (i = 1; i <= NF; i++) if (keep[i]) s = s (s == "" ? "" : ",") $i; print s }' \
      "$out/raw/$t.csv" | LC_ALL=C sort >"$out/$t.csv"
  done
  rm -rf "$out/raw"
}

# The lake a trial of `$1` starts from: the prepared one (the run has new rows to write), the
# reference (optimize has small files to compact), or the reference optimized (vacuum has
# files no version needs to delete).
origin() {
  case $1 in
    run | daemon) echo "$PREP" ;;
    optimize) echo "$WORK/reference" ;;
    vacuum) echo "$WORK/optimized" ;;
  esac
}

# The command a trial of `$1` kills, as arguments after `--lake LAKE --config CONFIG`.
killed_args() {
  case $1 in
    run) echo "--replay $SNAP run nightly --dir $WORK/schedules" ;;
    optimize) echo "optimize" ;;
    vacuum) echo "vacuum --retention-hours 0 --allow-short-retention" ;;
    daemon) echo "--replay $SNAP daemon --dir $WORK/schedules" ;;
  esac
}

# Starts the killed command of `$mode` on `$lake` in the background (the binary itself, so the
# kill hits it and not a shell); sets PID.
start() {
  local mode=$1 lake=$2
  if [ "$mode" = daemon ]; then
    # The job's last tick long ago: the daemon takes the lease and runs it at once.
    mkdir -p "$lake/_macrolake/schedule/nightly"
    printf '{"last_tick":"%s","holder":"crash-harness"}' "$(date -u -d '-2 min' +%FT%TZ)" \
      >"$lake/_macrolake/schedule/nightly/state.json"
  fi
  # shellcheck disable=SC2046
  "$BIN" --lake "$lake" --config "$CONFIG" $(killed_args "$mode") >"$WORK/killed.log" 2>&1 &
  PID=$!
}

echo "crash: preparing (cut at $CUT) in $WORK"
# The nightly job, due every minute (a daemon started with an old last tick runs it at once),
# with no retries (a failure shows at once instead of after minutes of back-off).
mkdir -p "$WORK/schedules"
sed -e 's/^cron = .*/cron = "* * * * *"/' -e 's/^timezone = .*/timezone = "UTC"/' \
  -e 's/^retries = .*/retries = { count = 0, base_secs = 1, cap_secs = 1 }/' \
  "$REPO/schedules/nightly.toml" >"$WORK/schedules/nightly.toml"
START=$(date +%s)
cut_replay
PREP=$WORK/prepared
"$BIN" --lake "$PREP" --config "$WORK/config-cut.toml" --replay "$WORK/replay-cut" \
  run nightly --dir "$WORK/schedules" >"$WORK/prepare.log" 2>&1 \
  || { tail -20 "$WORK/prepare.log"; echo "crash: the prepared lake failed" >&2; exit 2; }
cp -a "$PREP" "$WORK/reference"
declare -A DUR
t0=$(now_ms)
ml "$WORK/reference" --replay "$SNAP" run nightly --dir "$WORK/schedules" >"$WORK/reference.log" 2>&1 \
  || { tail -20 "$WORK/reference.log"; echo "crash: the reference run failed" >&2; exit 2; }
DUR[run]=$(($(now_ms) - t0))
dump "$WORK/reference" "$WORK/ref" || { echo "crash: cannot dump the reference" >&2; exit 2; }
cp -a "$WORK/reference" "$WORK/optimized"
for op in optimize vacuum; do
  cp -a "$(origin $op)" "$WORK/timing"
  t0=$(now_ms)
  # shellcheck disable=SC2046
  ml "$WORK/timing" $(killed_args $op) >"$WORK/$op.log" 2>&1 \
    || { tail -5 "$WORK/$op.log"; echo "crash: $op failed" >&2; exit 2; }
  DUR[$op]=$(($(now_ms) - t0))
  rm -rf "$WORK/timing"
  [ $op = optimize ] && ml "$WORK/optimized" optimize >/dev/null
done
DUR[daemon]=${DUR[run]}
echo "crash: durations (ms): run ${DUR[run]}, optimize ${DUR[optimize]}, vacuum ${DUR[vacuum]}"


UNREADABLE=0 DIVERGED=0 MODES=(run optimize vacuum daemon)
for ((i = 1; i <= TRIALS; i++)); do
  mode=${MODES[$(((i - 1) % 4))]}
  lake=$WORK/trial
  rm -rf "$lake" && cp -a "$(origin "$mode")" "$lake"
  delay=$(((RANDOM * 32768 + RANDOM) % (DUR[$mode] + 1)))
  start "$mode" "$lake"
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -9 "$PID" 2>/dev/null && killed=killed || killed="already done"
  wait "$PID" 2>/dev/null
  lease=$(find "$lake/_macrolake/schedule/nightly" -name 'lease-*.json' 2>/dev/null | sort | tail -1)
  grep -qs '"released": false' "$lease" && held=", lease left held" || held=""
  line="trial $i: $mode, kill -9 at ${delay} ms ($killed$held)"
  if ! readable "$lake"; then
    UNREADABLE=$((UNREADABLE + 1)); echo "$line: UNREADABLE"; continue
  fi
  t0=$(now_ms)
  if ! ml "$lake" --replay "$SNAP" run nightly --dir "$WORK/schedules" >"$WORK/rerun.log" 2>&1; then
    DIVERGED=$((DIVERGED + 1)); echo "$line: the re-run failed:"; tail -5 "$WORK/rerun.log"
    continue
  fi
  rerun=$(($(now_ms) - t0))
  if ! dump "$lake" "$WORK/got"; then
    UNREADABLE=$((UNREADABLE + 1)); echo "$line: cannot export after the re-run"; continue
  fi
  if ! diff -rq "$WORK/ref" "$WORK/got" >"$WORK/diff.txt"; then
    DIVERGED=$((DIVERGED + 1)); echo "$line: DIVERGED"; head -5 "$WORK/diff.txt"
    for f in $(diff -rq "$WORK/ref" "$WORK/got" 2>/dev/null | awk '/^Files/ {print $2}' | head -2); do
      diff "$f" "$WORK/got/$(basename "$f")" | head -6
    done
    [ "${CRASH_KEEP:-0}" = 1 ] && cp -a "$lake" "$WORK/diverged-$i"
    continue
  fi
  echo "$line: readable, re-run ok in ${rerun} ms, same as the reference"
done
echo "crash: $(($(date +%s) - START)) s"
echo "trials=$TRIALS unreadable=$UNREADABLE diverged=$DIVERGED"
[ "$UNREADABLE" = 0 ] && [ "$DIVERGED" = 0 ]
