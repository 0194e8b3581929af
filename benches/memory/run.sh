#!/usr/bin/env bash
# Server memory per compressed connection: 1 000 Python `websockets` clients
# (their default offer) against silverback's echo_server (default
# DeflateConfig, then --deflate-low-memory), Node `ws` and Python
# `websockets` as servers, one after the other in one run. Prints a
# Markdown table (KiB of server RSS per connection).
#
#   bash benches/memory/run.sh [N]
#
# Needs Python 3 with pip and Node with npm (installs `websockets` and `ws`).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
TARGET=${CARGO_TARGET_DIR:-target}
ulimit -n 8192
python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q 'websockets>=13'
NODE_DIR=$TARGET/memory-node
if [ ! -d "$NODE_DIR/node_modules/ws" ]; then
    mkdir -p "$NODE_DIR" && (cd "$NODE_DIR" && npm init -y >/dev/null && npm install --silent ws@8 >/dev/null)
fi
cp benches/memory/ws_server.mjs "$NODE_DIR/"
cargo build -q --release --example echo_server
PORT=${PORT:-9311}

measure() {
    local name=$1; shift
    "$@" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
        sleep 0.1
    done
    local row
    row=$(python3 benches/memory/clients.py "$PORT" "$pid" "$N")
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    IFS=$'\t' read -r handshake message many agreed <<<"$row"
    printf '| %s | %s | %s | %s | `%s` |\n' "$name" "$handshake" "$message" "$many" "$agreed"
    PORT=$((PORT + 1))
}

echo "| server | KiB per connection after the handshake | after one 1 KiB message each | after 41 each | agreed |"
echo "|---|--:|--:|--:|---|"
if [ -n "${BEFORE_ECHO_SERVER:-}" ]; then
    measure "silverback before (76565ed), default DeflateConfig" "$BEFORE_ECHO_SERVER" "127.0.0.1:$PORT"
fi
measure "silverback, default DeflateConfig" "$TARGET/release/examples/echo_server" "127.0.0.1:$PORT"
measure "silverback, DeflateConfig::low_memory()" "$TARGET/release/examples/echo_server" "127.0.0.1:$PORT" --deflate-low-memory
measure "Node ws 8 (perMessageDeflate: true)" node "$NODE_DIR/ws_server.mjs" "$PORT"
measure "Python websockets $(python3 -c 'import websockets; print(websockets.__version__)') (defaults)" python3 benches/memory/py_server.py "$PORT"
