#!/usr/bin/env bash
# Installs the interop peers used by tests/interop.rs, idempotently:
#
#   Python `websockets` 17.x  in $TARGET/interop/venv   (a venv; where venv is
#   and `h2` 4.x (HTTP/2,     unavailable: pip install --target $TARGET/interop/pylib)
#   tests/http2_interop.rs)
#   and `aioquic` 1.x (HTTP/3, tests/interop_http3.rs)
#   Node   `ws` 8.x           in $TARGET/interop/node/node_modules
#
# where $TARGET is $CARGO_TARGET_DIR if set, else <repo>/target.
# scripts/conformance.sh runs it to install them; the test runs it with
# `--check`, which installs nothing and fails when a peer is missing.
# Checks first and returns at once when both are already installed.
# Serialised with a lock file so concurrent callers do not race. On success
# prints, one per line:
#
#   PYTHON=<interpreter to run tests/interop/peer.py with>
#   PYTHONPATH=<extra import path, empty with a venv>
#   NODE=<node binary>
#   NODE_PREFIX=<npm prefix: node_modules/ws lives below it>
#
# Exits non-zero (with the reason on stderr) on any failure.
#
# Usage: setup.sh [--check]
# Environment: INTEROP_PYTHON (default python3), INTEROP_NODE (default node),
# INTEROP_NPM (default npm).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in
    /*) ;;
    *) TARGET="$(pwd)/$TARGET" ;; # cargo resolves a relative one from the cwd
esac
DIR="$TARGET/interop"
VENV="$DIR/venv"
PYLIB="$DIR/pylib"
NODE_PREFIX="$DIR/node"

PYTHON_BOOT=${INTEROP_PYTHON:-python3}
NODE=${INTEROP_NODE:-node}
NPM=${INTEROP_NPM:-npm}
PY_REQ=('websockets>=17,<18' 'h2>=4.1,<5' 'aioquic>=1.2,<2')
NODE_REQ='ws@8'

log() { printf '[interop-setup] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

CHECK=0
case "${1:-}" in
    --check) CHECK=1 ;;
    "") ;;
    *) die "usage: setup.sh [--check]" ;;
esac
# In --check mode: a missing peer is an error, never installed here.
need_install() {
    [ "$CHECK" -eq 0 ] || die "$1 is not installed under $DIR: bash scripts/conformance.sh installs it"
}

mkdir -p "$DIR"

# One installer at a time (cargo runs test functions in parallel threads).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DIR/.setup.lock"
    flock -w 600 9 || die "timed out waiting for $DIR/.setup.lock"
fi

# python_ok PYTHON [PYTHONPATH]: websockets 17.x, h2 4.x (with extended
# CONNECT) and aioquic importable?
python_ok() {
    PYTHONPATH="${2:-}" "$1" - <<'EOF' >/dev/null 2>&1
import sys
import websockets
from websockets.asyncio.server import serve
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory)
import h2
from h2.settings import SettingCodes
assert SettingCodes.ENABLE_CONNECT_PROTOCOL == 8
from aioquic.asyncio import connect as quic_connect, serve as quic_serve
from aioquic.h3.connection import H3Connection
sys.exit(0 if websockets.version.version.split(".")[0] == "17" and h2.__version__.split(".")[0] == "4" else 1)
EOF
}

node_ok() {
    local pkg="$NODE_PREFIX/node_modules/ws/package.json"
    [ -f "$pkg" ] || return 1
    "$NODE" -e 'const v = require(process.argv[1]).version; process.exit(v.split(".")[0] === "8" ? 0 : 1)' "$pkg" >/dev/null 2>&1
}

# ---------------------------------------------------------------- python
PYTHON="" PYPATH=""
if [ -x "$VENV/bin/python" ] && python_ok "$VENV/bin/python"; then
    PYTHON="$VENV/bin/python"
elif [ -d "$PYLIB" ] && python_ok "$(command -v "$PYTHON_BOOT")" "$PYLIB"; then
    PYTHON="$(command -v "$PYTHON_BOOT")" PYPATH="$PYLIB"
else
    need_install "Python ${PY_REQ[*]}"
    command -v "$PYTHON_BOOT" >/dev/null 2>&1 || die "$PYTHON_BOOT not found"
    log "installing ${PY_REQ[*]}"
    if rm -rf "$VENV" && "$PYTHON_BOOT" -m venv "$VENV" >&2 2>&1; then
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${PY_REQ[@]}" >&2 \
            || die "pip install ${PY_REQ[*]} into $VENV failed"
        python_ok "$VENV/bin/python" || die "websockets 17, h2 4 or aioquic not importable from $VENV"
        PYTHON="$VENV/bin/python"
    else
        log "python3 -m venv unavailable; falling back to pip install --target $PYLIB"
        rm -rf "$VENV" "$PYLIB"
        "$PYTHON_BOOT" -m pip install --disable-pip-version-check -q --target "$PYLIB" "${PY_REQ[@]}" >&2 \
            || die "pip install --target $PYLIB ${PY_REQ[*]} failed"
        PYTHON="$(command -v "$PYTHON_BOOT")" PYPATH="$PYLIB"
        python_ok "$PYTHON" "$PYPATH" || die "websockets 17, h2 4 or aioquic not importable from $PYLIB"
    fi
fi

# ---------------------------------------------------------------- node
command -v "$NODE" >/dev/null 2>&1 || die "$NODE not found"
if ! node_ok; then
    need_install "Node $NODE_REQ"
    command -v "$NPM" >/dev/null 2>&1 || die "$NPM not found"
    log "installing $NODE_REQ"
    mkdir -p "$NODE_PREFIX"
    "$NPM" install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error "$NODE_REQ" >&2 \
        || die "npm install --prefix $NODE_PREFIX $NODE_REQ failed"
    node_ok || die "ws 8 not found under $NODE_PREFIX after npm install"
fi

echo "PYTHON=$PYTHON"
echo "PYTHONPATH=$PYPATH"
echo "NODE=$(command -v "$NODE")"
echo "NODE_PREFIX=$NODE_PREFIX"
