#!/usr/bin/env bash
# The cost of the auditor's and the publisher's queries against answering the same table live,
# in one run (the "Publications, as-of, diff and explain" section of BENCHMARKS.md): publishing
# a quarter, an as-of query (by position and by date), a diff of a publication against live,
# and explaining a figure. Usage:
#   bash scripts/bench-queries.sh [SCALE] [BIN_DIR] [SNAPSHOT_EVERY]
# SCALE copies of the 2019–2020 dataset (default 8, about 1.02M events); BIN_DIR holds the
# `gryning` binary (default target/release); SNAPSHOT_EVERY the projections' snapshot interval
# (default 1000000, the setting's default). Each call is timed three times through a running
# `gryning up` (the CLI as the client, so process start is in every figure alike), then the
# offline calls and, as a second baseline, a full replay of the projections (`rebuild`). The
# as-of answers are checked: by position and by time they must be the same table.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-8}
bin=${2:-target/release}
every=${3:-1000000}
work=$(mktemp -d)
trap 'kill "${up_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
export GRYNING_SNAPSHOT_EVERY=$every

nproc; uptime
"$bin/gryning" generate --scale "$scale" --output "$work/events.ndjson"
# Imported in two halves a second apart, so that the time between them is an as-of time that
# holds half the log (every event is recorded at import time).
head=$(wc -l <"$work/events.ndjson")
half=$((head / 2))
head -n "$half" "$work/events.ndjson" >"$work/first.ndjson"
tail -n +"$((half + 1))" "$work/events.ndjson" >"$work/second.ndjson"
"$bin/gryning" --data-dir "$work/data" import "$work/first.ndjson"
sleep 1
between=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 1
"$bin/gryning" --data-dir "$work/data" import "$work/second.ndjson"
echo "events stored: $head, snapshot every $every"
# Wall-clock and CPU time of the client process (the server's CPU is in the wall clock only).
time3() {
  local what=$1
  shift
  local TIMEFORMAT="$what: %R s real, %U s user, %S s sys"
  for _ in 1 2 3; do
    time "$@" >"$work/out"
    echo "  ($(wc -l <"$work/out") lines of output)"
  done
}
echo "== publish 2020-Q4 offline (opens the store and the checkpoint, computes 16 tables, records)"
time3 "publish offline" "$bin/gryning" --data-dir "$work/data" publish --quarter 2020-Q4 --note bench

GRYNING_PUBLISH_AUTOMATICALLY=false "$bin/gryning" up --listen 127.0.0.1:0 --data-dir "$work/data" \
  >"$work/up.out" 2>"$work/up.log" &
up_pid=$!
until grep -q "^listening on" "$work/up.out" 2>/dev/null; do sleep 0.2; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/up.out")
# A first start on a standard output that is not a terminal writes its tokens to a private file.
token() { awk -v r="role=$1" '$1 == "token" && $2 == r {print $NF}' "$(sed -n 's/^tokens in //p' "$work/up.out")"; }
analyst=$(token analyst)
auditor=$(token auditor)
admin=$(token admin)
server=(--server "http://127.0.0.1:$port")
cell=(clearance --period 2020 --group "Brott i nära relation" --measure percent)
# Ready: the live projections have applied every stored event.
until "$bin/gryning" table care "${server[@]}" --token "$analyst" --format json >/dev/null 2>&1; do sleep 0.5; done

echo "== the same table live (baseline): Insight.GetTable case-flow by code, year"
time3 "table live" "$bin/gryning" table case-flow "${server[@]}" --token "$analyst"
echo "== publish 2020-Q4 through the server (Insight.Publish, from the live projections)"
time3 "publish server" "$bin/gryning" publish --quarter 2020-Q4 --note bench "${server[@]}" --token "$admin"
echo "== as of position $half (half the log) through the server"
time3 "as-of position" "$bin/gryning" table case-flow --as-of "$half" "${server[@]}" --token "$analyst"
echo "== as of the time between the two imports ($between: the same half) through the server"
time3 "as-of time" "$bin/gryning" table case-flow --as-of "$between" "${server[@]}" --token "$analyst"
echo "== explain one cell live: clearance 2020, Brott i nära relation, percent"
time3 "explain live" "$bin/gryning" explain "${cell[@]}" "${server[@]}" --token "$auditor"
echo "== the same cell as published for 2020-Q4 (year to date)"
time3 "explain published" "$bin/gryning" explain clearance --period 2020-Q1..Q4 \
  --group "Brott i nära relation" --measure percent --published 2020-Q4@1 "${server[@]}" --token "$auditor"
"$bin/gryning" table case-flow --as-of "$half" "${server[@]}" --token "$analyst" --format csv >"$work/a"
"$bin/gryning" table case-flow --as-of "$between" "${server[@]}" --token "$analyst" --format csv >"$work/b"
cmp -s "$work/a" "$work/b" || { echo "error: as of position $half and as of $between differ" >&2; exit 1; }
echo "as of position $half and as of $between: the same $(wc -l <"$work/a") lines"
kill "$up_pid"
wait "$up_pid" || true
echo "== offline: the table, as of half the log, the diff of 2020-Q4@1 against live, explain"
time3 "table offline" "$bin/gryning" --data-dir "$work/data" table case-flow
time3 "as-of position offline" "$bin/gryning" --data-dir "$work/data" table case-flow --as-of "$half"
time3 "as-of time offline" "$bin/gryning" --data-dir "$work/data" table case-flow --as-of "$between"
time3 "diff offline" "$bin/gryning" --data-dir "$work/data" diff --published 2020-Q4@1 --against live
time3 "explain offline" "$bin/gryning" --data-dir "$work/data" explain "${cell[@]}"
echo "== second baseline: replay every projection from the store (gryning rebuild)"
time3 "rebuild" "$bin/gryning" --data-dir "$work/data" rebuild
ls -l "$work/data/snapshots" 2>/dev/null || echo "no snapshots"
