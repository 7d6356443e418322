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

# Two cores build this: one test binary at a time keeps memory and timing sane.
cargo test --workspace --locked "$@"
