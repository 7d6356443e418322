#!/usr/bin/env bash
# Installs the pinned buf CLI (npm package @bufbuild/buf, which ships the binary for this
# platform) into target/tools/buf, only when it is missing, checks its version and prints its
# path. scripts/test.sh lints the protos with it and checks them against the last published
# state (`buf lint`, `buf breaking`).
set -euo pipefail

VERSION=1.75.0
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$root/target/tools/buf"

find_binary() {
    # Nothing installed yet is not an error: the caller installs then.
    [[ -d "$target/node_modules/@bufbuild" ]] || return 0
    find "$target/node_modules/@bufbuild" -path '*/bin/buf' -type f -perm -u+x 2>/dev/null \
        | head -n 1 || true
}

binary="$(find_binary)"
if [[ -z "$binary" ]] || [[ "$("$binary" --version 2>/dev/null)" != "$VERSION" ]]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-buf: npm not found; install Node.js and npm (apt-get install -y npm)" >&2
        exit 1
    fi
    rm -rf "$target"
    mkdir -p "$target"
    npm install --silent --no-audit --no-fund --no-save --prefix "$target" \
        "@bufbuild/buf@$VERSION" >&2
    binary="$(find_binary)"
fi
if [[ -z "$binary" ]]; then
    echo "install-buf: no buf binary for this platform inside @bufbuild/buf@$VERSION" >&2
    exit 1
fi
reported="$("$binary" --version)"
if [[ "$reported" != "$VERSION" ]]; then
    echo "install-buf: $binary reports '$reported', expected $VERSION" >&2
    exit 1
fi
echo "$binary"
