#!/usr/bin/env bash
# Reproduces the figures of BENCHMARKS.md in one run, so every figure and its baseline are
# measured on the same machine under the same load. Usage: bash scripts/bench.sh [SCALE]
# (SCALE copies of the 2019–2020 dataset for import and rebuild; default 10, about 1.28M events).
# First `gryning bench` (BENCH_SCALE, default 8; its JSON to BENCH_OUT, default
# target/bench-results.json), then the examples for the rows it does not cover.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-10}

cargo build --release --locked -p gryning -p gryning-proto -p gryning-store -p gryning-projections -p gryning-recording -p gryning-store-nats -p gryning-domain --bins --examples
GRYNING_NATS_SERVER="$(bash scripts/install-nats-server.sh)"
export GRYNING_NATS_SERVER
bin=target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== machine"
nproc; uptime

echo "== gryning bench: one table answered (vs DuckDB), store open, rebuild (vs the scan floor), import (vs the SQLite ceiling and plain layout), Watch lag, memory per live crime"
"$bin/gryning" bench --scale "${BENCH_SCALE:-8}" --repeat 3 --out "${BENCH_OUT:-target/bench-results.json}"

echo "== store appends: plain SQLite layout (baseline) vs the embedded store, 1M events, 200k streams"
"$bin/examples/append_bench" --events 1000000 --streams 200000

echo "== import: gryning import of the generated dataset at scale $scale (parse, validate, append durably)"
"$bin/gryning" generate --scale "$scale" --output "$work/events.ndjson"
"$bin/gryning" --data-dir "$work/data" import "$work/events.ndjson"

echo "== rebuild: replay every projection from the store"
"$bin/gryning" --data-dir "$work/data" rebuild
echo "-- replay phases one at a time (baselines: scan, decode, apply)"
"$bin/examples/replay_phases" "$work/data"

echo "== dates: jiff against hand-written calendar code on the per-event paths (parse, bucket)"
"$bin/examples/date_measure"

echo "== projection memory per live crime"
"$bin/examples/measure"

echo "== police service: unary recording, 32 clients over 4 channels (baseline: gRPC health Check)"
"$bin/examples/police_bench" 10
echo "-- second baseline: the same single-event recording in-process, 32 tasks, no gRPC"
"$bin/examples/record_concurrency"

echo "== event log service: bulk Append, client streaming (baseline: Recorder::record_batch in-process)"
"$bin/examples/bulk_append_bench" 4

echo "== gryning import --server: the CLI streaming NDJSON through a separate gryning up (baseline: the same file imported offline)"
"$bin/gryning" generate --scale 4 --output "$work/remote.ndjson"
"$bin/gryning" --data-dir "$work/offline" import "$work/remote.ndjson"
"$bin/gryning" up --listen 127.0.0.1:0 --data-dir "$work/served" >"$work/up.out" 2>"$work/up.log" &
up_pid=$!
until grep -q "^listening on" "$work/up.out"; do sleep 0.2; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/up.out")
# A first start on a standard output that is not a terminal writes its tokens to a private file.
token=$(awk '/^token role=admin/ {print $NF}' "$(sed -n 's/^tokens in //p' "$work/up.out")")
"$bin/gryning" import "$work/remote.ndjson" --server "http://127.0.0.1:$port" --token "$token"
echo "-- the same file again: every event a duplicate"
"$bin/gryning" import "$work/remote.ndjson" --server "http://127.0.0.1:$port" --token "$token"
kill "$up_pid"; wait "$up_pid" || true

echo "== publish, as-of, diff and explain at scale 8 (about 1M events) against the same table live"
bash scripts/bench-queries.sh 8 "$bin"

echo "== NATS JetStream backend vs raw JetStream publishes (one per message, atomic batches), one server and R3, sync_interval always and default"
"$bin/examples/nats_bench" 100000
echo "-- the same with the servers' batch limit raised to 10,000 messages"
"$bin/examples/nats_bench" 100000 10000
echo "-- start-up: connect time and memory on a stream of 1M events (baseline: an empty stream)"
"$bin/examples/nats_startup" 1000000

echo "== hand-written parts against the libraries they are kept instead of"
echo "-- wire reader vs prost decode (+ from_pb), the generated dataset at scale 8"
"$bin/examples/wire_bench"
echo "-- checkpoint format vs postcard, the state after the same dataset"
"$bin/examples/checkpoint_bench"
echo "-- id index vs std and hashbrown hash maps, 1M and 10M ids"
"$bin/examples/index_bench"
