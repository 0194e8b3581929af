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
# Environment:
#   FUZZ_SECONDS    time per target, default 60.
#   FUZZ_TARGETS    targets to run, default all (`cargo fuzz list`).
#   FUZZ_RSS_MB     libFuzzer's memory limit, default 2048.
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang,
#                   default 10.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2

cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
export RUSTC_BOOTSTRAP=1

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
