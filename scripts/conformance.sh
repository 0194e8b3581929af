#!/usr/bin/env bash
# Conformance against real peers: everything `cargo test` leaves out to stay
# hermetic. Installs what it needs, then runs it:
#
#   1. Chromium and chromium-driver (Debian apt; as root, or through sudo),
#      redis-server, Python 3 and Node with npm when missing;
#   2. the interop peers, Python `websockets` 17, `h2` 4 and `aioquic` (pip)
#      and Node `ws` 8 (npm), under ${CARGO_TARGET_DIR:-target}/interop
#      (tests/interop/setup.sh);
#   3. `playwright-core` (npm) under ${CARGO_TARGET_DIR:-target}/chat-e2e
#      (tests/chat_browser/setup.sh);
#   4. the tests that need them, with SILVERBACK_CONFORMANCE=1 (without it
#      they print one line and pass): tests/interop.rs against both peers,
#      tests/http2_interop.rs (WebSockets over HTTP/2 against Node's
#      `http2` and Python's `h2`), tests/interop_http3.rs against aioquic
#      (WebSockets over HTTP/3, both ways), tests/chat_browser.rs with two
#      headless Chromium pages, tests/http2_browser.rs with Chromium sending
#      WebSockets over HTTP/2 to examples/wss_server.rs, and
#      tests/chat_redis.rs with two chat processes over a redis-server that
#      it starts itself (and kills and restarts);
#   5. the Autobahn testsuite, both ways (scripts/autobahn.sh, which installs
#      wstest itself).
#
# Any tool that cannot be installed, and any failing test, fails the run:
# under SILVERBACK_CONFORMANCE=1 a missing tool is a test failure, never a
# skip.
#
# Environment:
#   CONFORMANCE_AUTOBAHN   1 (default): run step 5; 0: stop after step 4
#                          (for a quick local run; .ci/run keeps the default).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONFORMANCE_AUTOBAHN=${CONFORMANCE_AUTOBAHN:-1}

log() { printf '[conformance] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# as_root CMD...: run as root, through sudo -n when we are not root.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "not root and no sudo: cannot run $*"
    fi
}

APT_UPDATED=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get update -q >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    as_root apt-get install -y -q --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

started=$SECONDS

# ---------------------------------------------------------------- 1. system tools
missing=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# ---------------------------------------------------------------- 2, 3. peers
log "interop peers (tests/interop/setup.sh)"
bash tests/interop/setup.sh >&2
log "browser driver (tests/chat_browser/setup.sh)"
bash tests/chat_browser/setup.sh >&2
log "tools ready after $((SECONDS - started))s"

# ---------------------------------------------------------------- 4. gated tests
SILVERBACK_CONFORMANCE=1 cargo test --all-features --test interop --test http2_interop --test interop_http3 \
    --test chat_browser --test http2_browser --test chat_redis
log "gated tests passed after $((SECONDS - started))s"

# ---------------------------------------------------------------- 5. Autobahn
if [ "$CONFORMANCE_AUTOBAHN" = 1 ]; then
    bash scripts/autobahn.sh
    log "Autobahn passed after $((SECONDS - started))s"
else
    log "Autobahn not run (CONFORMANCE_AUTOBAHN=$CONFORMANCE_AUTOBAHN)"
fi
