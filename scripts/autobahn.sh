#!/usr/bin/env bash
# Runs the Autobahn|Testsuite (wstest 0.8.2) against silverback, both ways:
#
#   server run: wstest -m fuzzingclient  -> examples/echo_server      (port 9001)
#   client run: examples/autobahn_client -> wstest -m fuzzingserver   (port 9002)
#
# and checks the two reports (target/autobahn/{server,client}/index.json).
# Installs wstest (Python 2.7 from Debian bullseye + pip) when it is missing.
#
# Environment:
#   AUTOBAHN_RUNS                which runs to do, default "server client".
#   AUTOBAHN_EXPECTED_CASES      expected case count per report, default 517
#                                (the full suite of autobahntestsuite 0.8.2).
#   AUTOBAHN_RUN_TIMEOUT         seconds allowed for one whole run, default 2400
#                                (wstest itself is slow on the permessage-deflate
#                                cases 12.* / 13.*: most of a run's time).
#   AUTOBAHN_PARALLEL            1 (default): the two runs at the same time (each
#                                is bound by the single-threaded wstest); 0: one
#                                after the other.
#   WSTEST                       path of an already installed wstest to use.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

AUTOBAHN_RUNS=${AUTOBAHN_RUNS:-server client}
AUTOBAHN_EXPECTED_CASES=${AUTOBAHN_EXPECTED_CASES:-517}
AUTOBAHN_RUN_TIMEOUT=${AUTOBAHN_RUN_TIMEOUT:-2400}
AUTOBAHN_PARALLEL=${AUTOBAHN_PARALLEL:-1}

SERVER_PORT=9001
CLIENT_PORT=9002
AGENT=silverback
OUT="$ROOT/target/autobahn"

# Debian's python2.7, never a pyenv shim that may come first on PATH.
PYTHON2=/usr/bin/python2.7
PIP_BOOTSTRAP=(pip==20.3.4 setuptools==44.1.1 wheel==0.37.1)

log() { printf '[autobahn] %s\n' "$*" >&2; }

# --------------------------------------------------------------------------
# background processes: started by us only, killed on any exit
# --------------------------------------------------------------------------
BG_PIDS=()

stop_pid() {
    local pid=$1
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        stop_pid "$pid"
    done
    BG_PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_bounded SECONDS LOG CMD...: run CMD under `timeout`, output to LOG, and
# wait for it in a way that lets INT/TERM traps (and so cleanup) run at once.
run_bounded() {
    local secs=$1 logfile=$2 pid rc=0
    shift 2
    timeout "$secs" "$@" > "$logfile" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    wait "$pid" || rc=$?
    return "$rc"
}

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_port PORT PID SECONDS: wait until PORT accepts connections while PID lives.
wait_port() {
    local port=$1 pid=$2 secs=$3 i
    for i in $(seq 1 $((secs * 5))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "process $pid exited before port $port opened"
            return 1
        fi
        if port_open "$port"; then
            return 0
        fi
        sleep 0.2
    done
    log "port $port did not open within ${secs}s"
    return 1
}

ensure_port_free() {
    if port_open "$1"; then
        log "port $1 is already in use by another process; cannot run"
        return 1
    fi
}

# --------------------------------------------------------------------------
# wstest install
# --------------------------------------------------------------------------
wstest_works() {
    [ -n "${1:-}" ] && [ -x "$1" ] && "$1" -a >/dev/null 2>&1
}

find_wstest() {
    local c
    for c in "${WSTEST:-}" /usr/local/bin/wstest "$(command -v wstest 2>/dev/null || true)"; do
        if wstest_works "$c"; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

# The machine's Debian sources entry for the main archive: URIs and Signed-By.
debian_source_field() {
    local field=$1 default=$2 f v=""
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        case "$f" in */bullseye.sources) continue ;; esac
        v=$(awk -v want="$field" '
            BEGIN { RS=""; FS="\n" }
            {
                uris=""; val=""
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^#/) continue
                    split(line, kv, ":")
                    key = kv[1]; rest = substr(line, length(key) + 2)
                    gsub(/^[ \t]+|[ \t]+$/, "", rest)
                    if (key == "URIs") uris = rest
                    if (key == want) val = rest
                }
                if (uris ~ /\/debian\/?$/) { print val; exit }
            }' "$f")
        [ -n "$v" ] && break
    done
    echo "${v:-$default}"
}

# retry CMD...: up to 3 tries, for steps that need a package registry.
retry() {
    local n
    for n in 1 2 3; do
        "$@" && return 0
        [ "$n" -lt 3 ] && { log "failed (try $n of 3): $*; retrying in 10s"; sleep 10; }
    done
    return 1
}

install_python2() {
    export DEBIAN_FRONTEND=noninteractive
    local uris signed_by
    uris=$(debian_source_field URIs http://deb.debian.org/debian)
    signed_by=$(debian_source_field Signed-By /usr/share/keyrings/debian-archive-keyring.gpg)
    log "adding Debian bullseye (URIs: $uris) with apt pin priority 100"
    cat > /etc/apt/sources.list.d/bullseye.sources <<EOF
Types: deb
URIs: $uris
Suites: bullseye
Components: main
Signed-By: $signed_by
EOF
    # Priority 100: nothing already installed is ever upgraded/downgraded
    # from bullseye; only packages absent from bookworm (python2.7 and its
    # libraries) can come from there.
    cat > /etc/apt/preferences.d/bullseye-pin <<'EOF'
Package: *
Pin: release n=bullseye
Pin-Priority: 100
EOF
    retry apt-get update -q
    retry apt-get install -y -q --no-install-recommends python2.7 python2.7-dev
}

install_wstest() {
    log "wstest not found: installing autobahntestsuite 0.8.2 (Python 2.7)"
    command -v gcc >/dev/null || { log "gcc is needed to build wstest's C extensions"; return 1; }
    if ! [ -x "$PYTHON2" ]; then
        install_python2
    fi
    local pip_version
    pip_version=$("$PYTHON2" -m pip --version 2>/dev/null || true)
    if [[ "$pip_version" != "pip 20.3.4 "* ]]; then
        local tmp
        tmp=$(mktemp -d)
        retry python3 -m pip download --no-deps --disable-pip-version-check -q -d "$tmp" "${PIP_BOOTSTRAP[@]}"
        # pip, easy_install and wheel without a version suffix would shadow
        # python3's in /usr/local/bin: only keep the ones that were there.
        local keep=() n
        for n in pip easy_install wheel; do
            [ -e "/usr/local/bin/$n" ] && keep+=("$n")
        done
        "$PYTHON2" "$tmp"/pip-20.3.4-py2.py3-none-any.whl/pip install \
            --no-index --disable-pip-version-check -q \
            "$tmp"/pip-20.3.4-*.whl "$tmp"/setuptools-44.1.1-*.whl "$tmp"/wheel-0.37.1-*.whl
        rm -rf "$tmp"
        for n in pip easy_install wheel; do
            if [ -e "/usr/local/bin/$n" ] && [[ " ${keep[*]:-} " != *" $n "* ]] \
                && head -n1 "/usr/local/bin/$n" | grep -q python2; then
                rm -f "/usr/local/bin/$n"
            fi
        done
    fi
    retry "$PYTHON2" -m pip install --disable-pip-version-check -q --no-warn-script-location \
        -c scripts/autobahn/constraints.txt autobahntestsuite==0.8.2
}

# --------------------------------------------------------------------------
# report check
# --------------------------------------------------------------------------
check_report() {
    local name=$1 index=$2 totals=$3
    python3 - "$name" "$index" "$AGENT" "$AUTOBAHN_EXPECTED_CASES" "$totals" <<'PY'
import json, os, sys

name, index, agent, expected, totals = sys.argv[1:6]
expected = int(expected)
PASS = ("OK", "INFORMATIONAL")

def write_totals(passed, failed, skipped):
    # accumulated by the shell into the closing "N passed, N failed" line
    with open(totals, "a") as f:
        f.write("%d %d %d\n" % (passed, failed, skipped))

if not os.path.isfile(index):
    print("%s: FAILED: report %s is missing" % (name, index))
    write_totals(0, expected, 0)
    sys.exit(1)
with open(index) as f:
    report = json.load(f)
if agent not in report:
    print("%s: FAILED: no results for agent %r in %s (agents: %s)"
          % (name, agent, index, ", ".join(sorted(report)) or "none"))
    write_totals(0, expected, 0)
    sys.exit(1)
cases = report[agent]

def key(case_id):
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))

counts = {b: 0 for b in ("OK", "INFORMATIONAL", "NON-STRICT", "FAILED", "UNIMPLEMENTED")}
failures = []
skipped = 0
for case_id in sorted(cases, key=key):
    r = cases[case_id]
    behavior = r.get("behavior")
    close = r.get("behaviorClose")
    counts[behavior] = counts.get(behavior, 0) + 1
    if behavior not in PASS or close not in PASS:
        failures.append((case_id, behavior, close))

print("%s: %d cases: %s" % (name, len(cases), ", ".join("%s %d" % kv for kv in counts.items())))
failed = False
for case_id, behavior, close in failures:
    print("  %s: FAILED case %s: behavior %s, behaviorClose %s" % (name, case_id, behavior, close))
    failed = True
missing = 0
if len(cases) != expected:
    print("  %s: FAILED: expected %d cases, report has %d" % (name, expected, len(cases)))
    missing = max(0, expected - len(cases))
    failed = True
write_totals(len(cases) - len(failures) - skipped, len(failures) + missing, skipped)
if not failed:
    print("  %s: passed" % name)
sys.exit(1 if failed else 0)
PY
}

# --------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------
run_server() {
    local dir="$OUT/server" rc=0 pid
    rm -rf "$dir"
    mkdir -p "$dir"
    ensure_port_free "$SERVER_PORT" || return 1
    log "server run: echo_server on 127.0.0.1:$SERVER_PORT, wstest -m fuzzingclient"
    target/release/examples/echo_server "127.0.0.1:$SERVER_PORT" > "$OUT/echo_server.log" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    wait_port "$SERVER_PORT" "$pid" 30 || { tail -n 20 "$OUT/echo_server.log" >&2; return 1; }
    local start=$SECONDS
    run_bounded "$AUTOBAHN_RUN_TIMEOUT" "$OUT/wstest_fuzzingclient.log" \
        "$WSTEST" -m fuzzingclient -s scripts/autobahn/fuzzingclient.json || rc=$?
    log "server run took $((SECONDS - start))s (wstest exit status $rc; log: $OUT/wstest_fuzzingclient.log)"
    if ! kill -0 "$pid" 2>/dev/null; then
        log "echo_server exited during the run (log: $OUT/echo_server.log):"
        tail -n 20 "$OUT/echo_server.log" >&2
        rc=1
    fi
    stop_pid "$pid"
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && log "wstest fuzzingclient timed out after ${AUTOBAHN_RUN_TIMEOUT}s"
        tail -n 20 "$OUT/wstest_fuzzingclient.log" >&2
    fi
    return "$rc"
}

run_client() {
    local dir="$OUT/client" rc=0 pid
    rm -rf "$dir"
    mkdir -p "$dir"
    ensure_port_free "$CLIENT_PORT" || return 1
    log "client run: wstest -m fuzzingserver on 127.0.0.1:$CLIENT_PORT, autobahn_client"
    # -u 0: no extra web server on port 8080.
    # Outlives the client's own timeout, so that a slow client is reported as
    # a client timeout rather than as a vanished fuzzing server.
    timeout $((AUTOBAHN_RUN_TIMEOUT + 120)) "$WSTEST" -m fuzzingserver -u 0 -s scripts/autobahn/fuzzingserver.json \
        > "$OUT/wstest_fuzzingserver.log" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    wait_port "$CLIENT_PORT" "$pid" 60 || { tail -n 20 "$OUT/wstest_fuzzingserver.log" >&2; return 1; }
    local start=$SECONDS
    run_bounded "$AUTOBAHN_RUN_TIMEOUT" "$OUT/autobahn_client.log" \
        target/release/examples/autobahn_client "ws://127.0.0.1:$CLIENT_PORT" "$AGENT" || rc=$?
    log "client run took $((SECONDS - start))s (autobahn_client exit status $rc; log: $OUT/autobahn_client.log)"
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && log "autobahn_client timed out after ${AUTOBAHN_RUN_TIMEOUT}s"
        tail -n 20 "$OUT/autobahn_client.log" >&2
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        log "wstest fuzzingserver exited during the run (log: $OUT/wstest_fuzzingserver.log):"
        tail -n 20 "$OUT/wstest_fuzzingserver.log" >&2
        rc=1
    fi
    stop_pid "$pid"
    return "$rc"
}

main() {
    if ! WSTEST=$(find_wstest); then
        local start=$SECONDS
        install_wstest
        WSTEST=$(find_wstest) || { log "wstest still not usable after install"; exit 1; }
        log "installed wstest in $((SECONDS - start))s"
    fi
    log "using $WSTEST"

    cargo build --release --example echo_server --example autobahn_client
    mkdir -p "$OUT"

    local status=0 run
    declare -A run_rc=() run_pid=()
    for run in $AUTOBAHN_RUNS; do
        case "$run" in
            server | client) ;;
            *) log "unknown run '$run' in AUTOBAHN_RUNS"; exit 2 ;;
        esac
        if [ "$AUTOBAHN_PARALLEL" = 1 ]; then
            # A subshell per run, with its own cleanup of what it started.
            ( BG_PIDS=(); trap cleanup EXIT; "run_$run" ) &
            run_pid[$run]=$!
            BG_PIDS+=("${run_pid[$run]}")
        else
            "run_$run" || run_rc[$run]=$?
        fi
    done
    for run in "${!run_pid[@]}"; do
        wait "${run_pid[$run]}" || run_rc[$run]=$?
    done

    echo "== Autobahn results =="
    local totals="$OUT/totals.txt"
    : > "$totals"
    for run in $AUTOBAHN_RUNS; do
        if [ -n "${run_rc[$run]:-}" ]; then
            echo "$run: FAILED: the run itself failed (status ${run_rc[$run]}), see logs in $OUT"
            status=1
        fi
        check_report "$run" "$OUT/$run/index.json" "$totals" || status=1
    done
    if [ "$status" -eq 0 ]; then
        echo "Autobahn: all runs passed"
    else
        echo "Autobahn: FAILED"
    fi
    # Plain closing line, last (cases of both runs).
    awk '{ p += $1; f += $2; s += $3 } END { printf "autobahn: %d passed, %d failed, %d skipped\n", p, f, s }' "$totals"
    return "$status"
}

main "$@"
