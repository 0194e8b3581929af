#!/usr/bin/env bash
# Installs what tests/chat_browser.rs drives, idempotently:
#
#   chromium        Debian's package (apt-get; through sudo when not root)
#   playwright-core from npm, under $PREFIX/node_modules (no browser download:
#                   playwright-core never fetches one, we use /usr/bin/chromium)
#
# Usage: setup.sh [--check] [PREFIX]
#        (PREFIX default: ${CARGO_TARGET_DIR:-<repo>/target}/chat-e2e)
#
# scripts/conformance.sh runs it to install them; the test runs it with
# `--check`, which installs nothing and fails when something is missing.
# Returns at once when both are present. Every step is bounded in time
# (timeout(1)); concurrent callers are serialised with a lock file. On
# success prints, one per line:
#
#   CHROMIUM=<browser executable>
#   NODE=<node binary>
#   PLAYWRIGHT=<directory of the playwright-core package>
#
# Exits non-zero, with the reason on stderr, on any failure.
set -euo pipefail

CHECK=0
if [ "${1:-}" = "--check" ]; then
    CHECK=1
    shift
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PREFIX=${1:-$TARGET/chat-e2e}
case "$PREFIX" in
    /*) ;;
    *) PREFIX="$(pwd)/$PREFIX" ;;
esac
PKG="$PREFIX/node_modules/playwright-core"
APT_TIMEOUT=${CHAT_E2E_APT_TIMEOUT:-900}
NPM_TIMEOUT=${CHAT_E2E_NPM_TIMEOUT:-300}

log() { printf '[chat-e2e-setup] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$PREFIX"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$PREFIX/.setup.lock"
    flock -w 1200 9 || die "timed out waiting for $PREFIX/.setup.lock"
fi

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

apt_install() {
    [ "$CHECK" -eq 0 ] || die "$* not installed: bash scripts/conformance.sh installs it"
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get install -y $*"
    if ! as_root timeout "$APT_TIMEOUT" apt-get install -y --no-install-recommends "$@" >&2; then
        log "retrying after apt-get update"
        as_root timeout "$APT_TIMEOUT" apt-get update >&2 || die "apt-get update failed"
        as_root timeout "$APT_TIMEOUT" apt-get install -y --no-install-recommends "$@" >&2 \
            || die "apt-get install $* failed"
    fi
}

# ---------------------------------------------------------------- chromium
find_chromium() {
    for c in /usr/bin/chromium "$(command -v chromium 2>/dev/null || true)"; do
        if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
    done
    return 1
}
if ! CHROMIUM=$(find_chromium); then
    apt_install chromium
    CHROMIUM=$(find_chromium) || die "chromium not found after apt-get install"
fi
timeout 60 "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1 \
    || timeout 60 "$CHROMIUM" --version >/dev/null 2>&1 \
    || die "$CHROMIUM does not run"

# ---------------------------------------------------------------- node, npm
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
NODE=$(command -v node) || die "node not found"

pkg_ok() {
    [ -f "$PKG/package.json" ] && [ -f "$PKG/index.js" ] \
        && timeout 60 "$NODE" -e 'require(process.argv[1])' "$PKG" >/dev/null 2>&1
}
if ! pkg_ok; then
    [ "$CHECK" -eq 0 ] || die "playwright-core is not installed under $PREFIX: bash scripts/conformance.sh installs it"
    log "npm install --prefix $PREFIX playwright-core"
    # Keep the prefix its own project so npm does not walk up to a parent.
    [ -f "$PREFIX/package.json" ] || echo '{"private": true}' >"$PREFIX/package.json"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout "$NPM_TIMEOUT" npm install --prefix "$PREFIX" \
        --no-audit --no-fund --loglevel=error playwright-core >&2 \
        || die "npm install --prefix $PREFIX playwright-core failed"
    pkg_ok || die "playwright-core not loadable from $PKG after npm install"
fi

echo "CHROMIUM=$CHROMIUM"
echo "NODE=$NODE"
echo "PLAYWRIGHT=$PKG"
