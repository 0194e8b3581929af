#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and prints, per
# target, how many inputs were executed and how many crashed:
#
#   decode_frames: 1234567 execs, 0 crashes
#
# Exits non-zero if any target crashed (or failed to run). Installs
# cargo-fuzz when it is missing. This machine has only a stable toolchain:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz's nightly flags (-Zsanitizer=address,
# coverage instrumentation) work on it.
#
# The committed seeds (fuzz/corpus/<target>/) are read but never written:
# what the fuzzer finds goes to a scratch corpus, fuzz/scratch/<target>/,
# kept between runs and ignored by git. Crashes land in
# fuzz/artifacts/<target>/ (also ignored); minimize one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin --debug-assertions <target> <artifact>
# and commit the reproducer under fuzz/crashes/<target>/.
#
# libFuzzer stops a target at its first crash, so a crashing target reports
# at most one per run.
#
# Replay mode (`scripts/fuzz.sh --replay`, or FUZZ_REPLAY=1), for CI: no
# fuzzing and no cargo-fuzz. Builds the targets with a plain `cargo build
# --release` and the flags cargo-fuzz would pass (coverage instrumentation,
# AddressSanitizer, debug assertions; RUSTC_BOOTSTRAP=1 for the -Z flag),
# then runs each target once over every file of its committed corpus
# (libFuzzer's `-runs=0` on fuzz/corpus/<target>/) and prints
#
#   decode_frames: 16 inputs replayed, ok
#
# Exits non-zero if the build fails or any input crashes, leaks past the
# memory limit or hangs past FUZZ_TIMEOUT. Measured on the 2-core dev VM:
# `cargo install cargo-fuzz --version 0.13.2 --locked` takes ~65 s and a cold
# `cargo fuzz build --debug-assertions` ~108 s, where this build alone takes
# ~85 s and the replay of all five corpora under a second.
#
# Environment:
#   FUZZ_SECONDS    time per target, default 60.
#   FUZZ_TARGETS    targets to run, default all (`cargo fuzz list`).
#   FUZZ_RSS_MB     libFuzzer's memory limit, default 2048.
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang,
#                   default 10.
#   FUZZ_REPLAY     1: replay mode (the same as --replay).
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2

cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
export RUSTC_BOOTSTRAP=1

FUZZ_REPLAY=${FUZZ_REPLAY:-0}
case "${1:-}" in
    --replay) FUZZ_REPLAY=1 ;;
    "") ;;
    *) echo "usage: scripts/fuzz.sh [--replay]" >&2; exit 2 ;;
esac

# replay: build with cargo-fuzz's flags, run every target over its corpus once.
replay() {
    local host target_dir targets target bin log count status failed=0 summary=()
    host=$(rustc -vV | sed -n 's/^host: //p')
    target_dir=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
    # What `cargo fuzz build --debug-assertions` passes (cargo-fuzz 0.13.2,
    # default sanitizer: address; read from its `-v` output), but for
    # -Ccodegen-units=1, which makes a cold build ~25% slower and changes no
    # outcome of a replay. `--target` keeps the flags off build scripts and
    # proc-macros (and the artifacts apart from the host's).
    local flags=(
        -Cpasses=sancov-module
        -Cllvm-args=-sanitizer-coverage-level=4
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
        -Cllvm-args=-sanitizer-coverage-pc-table
        -Cllvm-args=-sanitizer-coverage-trace-compares
        --cfg fuzzing
        -Cllvm-args=-simplifycfg-branch-fold-threshold=0
        -Zsanitizer=address
        -Cllvm-args=-sanitizer-coverage-stack-depth
        -Cdebug-assertions
    )
    if ! RUSTFLAGS="${flags[*]}" cargo build --release --locked --target "$host" --bins; then
        echo "fuzz targets failed to build" >&2
        return 2
    fi
    targets=${FUZZ_TARGETS:-$(cd fuzz_targets && ls -- *.rs | sed 's/\.rs$//')}
    mkdir -p scratch
    for target in $targets; do
        bin=$target_dir/$host/release/$target
        log=scratch/$target.replay.log
        count=$(find "corpus/$target" -type f ! -name '.*' | wc -l)
        status=0
        "$bin" -runs=0 -rss_limit_mb="$FUZZ_RSS_MB" -timeout="$FUZZ_TIMEOUT" "corpus/$target" >"$log" 2>&1 || status=$?
        # libFuzzer ends a clean replay with "Done N runs" (N: the inputs + 1).
        if ((status == 0)) && ! grep -q '^Done [0-9]* runs' "$log"; then
            echo "$target: exited 0 without replaying (log: fuzz/$log)" >&2
            status=1
        fi
        if ((status == 0)); then
            summary+=("$target: $count inputs replayed, ok")
        else
            failed=1
            summary+=("$target: $count inputs, FAILED (exit $status; log: fuzz/$log)")
            grep -m 1 -A 5 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)|Test unit written" "$log" | sed 's/^/    /' >&2 || tail -n 20 "$log" >&2
        fi
    done
    echo
    echo "fuzz corpus replay:"
    printf '%s\n' "${summary[@]}"
    return "$failed"
}

if [[ $FUZZ_REPLAY == 1 ]]; then
    status=0
    replay || status=$?
    exit "$status"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
echo "$(cargo fuzz --version), $(rustc --version)" >&2

TARGETS=${FUZZ_TARGETS:-$(cargo fuzz list)}

# One build for all targets. Debug assertions (and overflow checks) on: they
# turn silent arithmetic slips in silverback into crashes. (`cargo fuzz run`
# below rebuilds only if the sources changed meanwhile.)
if ! cargo fuzz build --debug-assertions; then
    echo "fuzz targets failed to build" >&2
    exit 2
fi

summary=()
failed=0
for target in $TARGETS; do
    scratch=scratch/$target
    artifacts=artifacts/$target
    log=scratch/$target.log
    mkdir -p "$scratch" "$artifacts"
    marker=$(mktemp)
    echo "== $target: ${FUZZ_SECONDS}s" >&2
    status=0
    # The scratch corpus comes first: libFuzzer writes new inputs there.
    cargo fuzz run --debug-assertions "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" \
        -rss_limit_mb="$FUZZ_RSS_MB" \
        -timeout="$FUZZ_TIMEOUT" \
        -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1 || true)
    if [[ -z $execs ]]; then
        # No final stats (a crash cuts them short): the last status line.
        execs=$(grep -o '^#[0-9]*' "$log" | tr -d '#' | tail -n 1 || true)
    fi
    found=$(find "$artifacts" -type f -newer "$marker")
    rm -f "$marker"
    crashes=$(grep -c . <<<"$found" || true)
    if ((status != 0 && crashes == 0)); then
        if grep -q 'failed to build fuzz script' "$log"; then
            echo "$target: failed to build (sources changed during the run?); see fuzz/$log" >&2
            summary+=("$target: build failed")
            failed=1
            continue
        fi
        echo "$target: exited with $status and left no artifact; see fuzz/$log" >&2
        crashes=1
    fi
    if ((crashes > 0)); then
        failed=1
        echo "$target crashed (log: fuzz/$log):" >&2
        [[ -n $found ]] && sed 's/^/    fuzz\//' <<<"$found" >&2
        grep -m 1 -A 3 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" | sed 's/^/    /' >&2 || true
    fi
    summary+=("$target: ${execs:-0} execs, $crashes crashes")
done

echo
echo "fuzzing summary (${FUZZ_SECONDS}s per target):"
printf '%s\n' "${summary[@]}"
exit "$failed"
