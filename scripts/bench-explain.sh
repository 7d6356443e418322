#!/usr/bin/env bash
# The cost of explaining a figure against answering the same table live, in one run (the
# "Explain a figure" section of BENCHMARKS.md). Usage:
#   bash scripts/bench-explain.sh [SCALE] [BIN_DIR]
# SCALE copies of the 2019–2020 dataset (default 8, about 1.02M events); BIN_DIR holds the
# `gryning` binary (default target/release). Each call is timed three times through a running
# `gryning up` (the CLI as the client, so process start is in every figure alike), then the
# offline explain and, as a second baseline, a full replay of the projections (`rebuild`).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-8}
bin=${2:-target/release}
work=$(mktemp -d)
trap 'kill "${up_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

nproc; uptime
"$bin/gryning" generate --scale "$scale" --output "$work/events.ndjson"
"$bin/gryning" --data-dir "$work/data" import "$work/events.ndjson"
"$bin/gryning" --data-dir "$work/data" publish --quarter 2020-Q4
GRYNING_PUBLISH_AUTOMATICALLY=false "$bin/gryning" up --listen 127.0.0.1:0 --data-dir "$work/data" \
  >"$work/up.out" 2>"$work/up.log" &
up_pid=$!
until grep -q "^listening on" "$work/up.out" 2>/dev/null; do sleep 0.2; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/up.out")
analyst=$(awk '/^token role=analyst/ {print $NF}' "$work/up.out")
auditor=$(awk '/^token role=auditor/ {print $NF}' "$work/up.out")
server=(--server "http://127.0.0.1:$port")
cell=(clearance --period 2020 --group "Brott i nära relation" --measure percent)

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

echo "== the same table live (baseline): Insight.GetTable clearance by group, year"
time3 "table live" "$bin/gryning" table clearance --by group "${server[@]}" --token "$analyst"
echo "== explain one cell of it live: clearance 2020, Brott i nära relation, percent"
time3 "explain live" "$bin/gryning" explain "${cell[@]}" "${server[@]}" --token "$auditor"
echo "== the same cell as published for 2020-Q4 (year to date)"
time3 "explain published" "$bin/gryning" explain clearance --period 2020-Q1..Q4 \
  --group "Brott i nära relation" --measure percent --published 2020-Q4 "${server[@]}" --token "$auditor"
kill "$up_pid"
wait "$up_pid" || true
echo "== offline explain on the data directory (replay from the embedded store)"
time3 "explain offline" "$bin/gryning" --data-dir "$work/data" explain "${cell[@]}"
echo "== second baseline: replay every projection from the store (gryning rebuild)"
time3 "rebuild" "$bin/gryning" --data-dir "$work/data" rebuild
