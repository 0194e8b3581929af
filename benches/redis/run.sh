#!/usr/bin/env bash
# Cross-process fan-out through Redis, against one process: the chat
# example (`examples/chat.rs`, release build) driven by the fan-out bench's
# load generator in its chat mode (`SB_FANOUT_CHAT`, see
# benches/compare/benches/fanout/chat.rs).
#
#   bash benches/redis/run.sh
#
# Rows (each on fresh processes, CONNS connections in all):
#   1. one chat process, the in-process Topic (`chat ADDR`);
#   2. one chat process through Redis (`chat ADDR --redis URL`): the relay's
#      own cost;
#   3. two chat processes through one Redis, CONNS/2 connections each.
# A publisher client sends 64-byte stamped messages to the first process,
# at most SB_FANOUT_CHAT_WINDOW (64) in flight; latency is its send to
# receipt on every connection; server CPU counts the chat processes and
# redis-server.
#
# Needs redis-server on PATH (apt-get install -y redis-server). Prints the
# table and writes it to ${CARGO_TARGET_DIR:-target}/redis-bench.md.
#
# Environment: SB_REDIS_CONNS (default 10000), SB_FANOUT_SECS (measured
# seconds per row, default 6), SB_FANOUT_WARMUP (default 0.5),
# SB_FANOUT_CHAT_WINDOW (default 64).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

TARGET=${CARGO_TARGET_DIR:-$PWD/target}
CONNS=${SB_REDIS_CONNS:-10000}
WORK=$(mktemp -d)
PIDS=()

log() { printf '[redis-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap 'cleanup; rm -rf "$WORK"' EXIT

command -v redis-server >/dev/null 2>&1 || die "redis-server not found: apt-get install -y redis-server"
# Each chat process and the load generator hold a socket per connection.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((CONNS + 200)) ] || die "open-files limit $(ulimit -n) is too low for $CONNS connections"

log "building (release chat example, fan-out bench)"
cargo build -q --release --example chat
cargo bench -q -p silverback-compare --bench fanout --no-run
CHAT=$TARGET/release/examples/chat

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_chat NAME ARGS...: starts the chat example; sets CHAT_ADDR, CHAT_PID.
start_chat() {
    local name=$1 out
    shift
    out=$WORK/$name.out
    "$CHAT" 127.0.0.1:0 "$@" >"$out" 2>&1 &
    CHAT_PID=$!
    PIDS+=("$CHAT_PID")
    for _ in $(seq 100); do
        CHAT_ADDR=$(sed -n 's|^listening on http://||p' "$out" | head -n1)
        [ -n "$CHAT_ADDR" ] && return 0
        sleep 0.1
    done
    die "$name did not start: $(cat "$out")"
}

# wait_line FILE TEXT: waits up to 20 s for TEXT in FILE.
wait_line() {
    for _ in $(seq 200); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    die "no '$2' in $1"
}

start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.out" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_line "$WORK/redis.out" "Ready to accept connections"
}

# bench LABEL ADDRS PIDS: one row of the table.
bench() {
    log "$1"
    SB_FANOUT_CHAT=$2 SB_FANOUT_CHAT_PIDS=$3 SB_FANOUT_CHAT_LABEL=$1 SB_FANOUT_CONNS=$CONNS \
        cargo bench -q -p silverback-compare --bench fanout 2>>"$WORK/bench.err" | grep '^|' >>"$WORK/rows" \
        || die "bench failed: $(tail -n 20 "$WORK/bench.err")"
    local dropped
    dropped=$(cat "$WORK"/chat-*.out | grep -c 'dropped' || true)
    [ "$dropped" -eq 0 ] || log "warning: $dropped 'dropped' lines from the chat processes"
}

: >"$WORK/rows"

start_chat chat-local
bench "1 × $CONNS, in-process Topic" "$CHAT_ADDR" "$CHAT_PID"
cleanup
sleep 1

start_redis
start_chat chat-one --redis "redis://127.0.0.1:$REDIS_PORT/"
wait_line "$WORK/chat-one.out" "redis connected"
bench "1 × $CONNS, through Redis" "$CHAT_ADDR" "$CHAT_PID,$REDIS_PID"
cleanup
sleep 1

start_redis
start_chat chat-a --redis "redis://127.0.0.1:$REDIS_PORT/"
A_ADDR=$CHAT_ADDR A_PID=$CHAT_PID
start_chat chat-b --redis "redis://127.0.0.1:$REDIS_PORT/"
wait_line "$WORK/chat-a.out" "redis connected"
wait_line "$WORK/chat-b.out" "redis connected"
bench "2 × $((CONNS / 2)), through Redis" "$A_ADDR,$CHAT_ADDR" "$A_PID,$CHAT_PID,$REDIS_PID"
cleanup

REPORT=$TARGET/redis-bench.md
{
    echo "## Cross-process fan-out (chat example)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $(redis-server --version | cut -d' ' -f1-3); 64-byte text messages, window ${SB_FANOUT_CHAT_WINDOW:-64}; ${SB_FANOUT_SECS:-6} s measured per row."
    echo
    echo "| setup | connections | processes | delivered msgs/s | p50 ms | p99 ms | server CPU µs/msg | ended early / stalled |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
    cat "$WORK/rows"
} | tee "$REPORT"
log "written to $REPORT"
