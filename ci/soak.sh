#!/usr/bin/env bash
# Soaks the stress test: builds it once, then runs it N times, each run with its own seed,
# and ends with a summary of the runs that failed (their seeds and the last lines of their
# output). Exit status: 0 if every run passed, 1 if any failed, 2 on a usage or build error.
#
# Usage: ci/soak.sh [N [JOBS]]      N runs (default 100), JOBS at a time (default 1)
#
# Environment:
#   SOAK_JOBS        runs at a time, if not given as the second argument (default 1)
#   SOAK_TIMEOUT     seconds a run may take before it is killed and counted failed (120)
#   SOAK_DIR         where the logs of failing runs are kept (target/soak/<date>-<pid>)
#   SOAK_TAIL        lines of each failing run's output shown in the summary (25)
#   SOAK_CARGO_LOCK  a lock file to build under (flock), when builds must not overlap
#   XINTERP_SEED     set: every run uses this seed (to repeat a failure; the seed fixes each
#                    thread's operations, not the interleaving). Unset: run i gets base + i,
#                    the base taken from the date.
#   XINTERP_STRESS_OPS, XINTERP_WATCHDOG_SECS  passed through to the test (defaults: the
#                    test's own, 2,000 operations per thread and 60 s)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
esac
runs=${1:-100}
jobs=${2:-${SOAK_JOBS:-1}}
limit=${SOAK_TIMEOUT:-120}
tail_lines=${SOAK_TAIL:-25}
for value in "$runs" "$jobs" "$limit" "$tail_lines"; do
    if ! [[ $value =~ ^[0-9]+$ ]] || [ "$value" -eq 0 ]; then
        echo "soak: expected positive whole numbers, got '$value'" >&2
        usage >&2
        exit 2
    fi
done
for tool in cargo timeout; do
    command -v "$tool" >/dev/null 2>&1 || { echo "soak: $tool not found" >&2; exit 2; }
done

# ---- build once, and find the test binary from cargo's own report of it
cargo_build=(cargo test --test stress --no-run --message-format=json-render-diagnostics)
if [ -n "${SOAK_CARGO_LOCK:-}" ]; then
    cargo_build=(flock "$SOAK_CARGO_LOCK" "${cargo_build[@]}")
fi
echo "soak: building the stress test: ${cargo_build[*]}"
if ! build_json=$("${cargo_build[@]}"); then
    echo "soak: the build failed" >&2
    exit 2
fi
# The last compiler-artifact line with an executable is the stress test binary.
binary=$(printf '%s\n' "$build_json" |
    grep '"reason":"compiler-artifact"' |
    grep '"name":"stress"' |
    grep -o '"executable":"[^"]*"' |
    tail -n 1 | sed 's/^"executable":"//; s/"$//' || true)
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    echo "soak: cargo did not report the stress test binary" >&2
    exit 2
fi

started=$(date +%s)
out=${SOAK_DIR:-target/soak/$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# A copy, so that a rebuild during the soak (cargo overwrites the file) changes nothing.
cp "$binary" "$out/stress"
binary="$out/stress"

if [ -n "${XINTERP_SEED:-}" ]; then
    fixed_seed=$XINTERP_SEED
    echo "soak: every run with XINTERP_SEED=$fixed_seed (set by the caller)"
else
    fixed_seed=
    # Seconds since the epoch times 100,000: soaks started in different seconds never share
    # a seed unless one runs 100,000 times or more.
    base=$(( $(date +%s) * 100000 ))
    echo "soak: seeds $base + run index (0 to $((runs - 1)))"
fi
echo "soak: $runs runs, $jobs at a time, ${limit}s timeout each, binary $binary"
echo "soak: failing runs' output kept in $out"

seed_of() {
    if [ -n "$fixed_seed" ]; then echo "$fixed_seed"; else echo $((base + $1)); fi
}

# One run: its output goes to run-<i>.log, its exit status to run-<i>.status; a passing
# run's log is removed. Never fails itself (under set -e, a failing run must not end the
# loop).
one_run() {
    local i=$1 seed status=0
    seed=$(seed_of "$i")
    # The shell's own notice of a run killed by a signal ("Aborted") goes to its log too.
    {
        XINTERP_SEED=$seed timeout -k 10 "$limit" "$binary" --nocapture -q \
            >"$out/run-$i.log" 2>&1 || status=$?
    } 2>>"$out/run-$i.log"
    echo "$status" >"$out/run-$i.status.tmp"
    mv "$out/run-$i.status.tmp" "$out/run-$i.status"
    if [ "$status" -eq 0 ]; then rm -f "$out/run-$i.log"; fi
    return 0
}

# On an interrupt, stop the runs this script started (and only those): each run's
# `timeout` (which passes the signal on to the test), then the subshell around it.
pids=()
stop_runs() {
    trap - INT TERM
    for pid in "${pids[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    echo "soak: interrupted; logs so far in $out" >&2
    exit 130
}
trap stop_runs INT TERM

finished=0
failed=0
# Counts the runs whose status file appeared since the last call, printing a progress line
# every 50 finished runs.
collect() {
    local i
    while [ "$finished" -lt "$started_runs" ] && [ -e "$out/run-$finished.status" ]; do
        i=$finished
        if [ "$(cat "$out/run-$i.status")" != 0 ]; then
            failed=$((failed + 1))
            echo "soak: run $i FAILED (XINTERP_SEED=$(seed_of "$i"), status $(cat "$out/run-$i.status"))"
        fi
        finished=$((finished + 1))
        if [ $((finished % 50)) -eq 0 ]; then
            echo "soak: $finished/$runs runs done, $failed failed, $(( $(date +%s) - started ))s"
        fi
    done
}

started_runs=0
for ((i = 0; i < runs; i++)); do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
        collect
    done
    one_run "$i" &
    pids+=("$!")
    started_runs=$((started_runs + 1))
done
wait || true
collect

# ---- summary
elapsed=$(( $(date +%s) - started ))
echo
echo "==== soak summary: $runs runs, $failed failed, ${elapsed}s"
for ((i = 0; i < runs; i++)); do
    status=$(cat "$out/run-$i.status")
    [ "$status" = 0 ] && continue
    case "$status" in
        124 | 137) why="timed out after ${limit}s" ;;
        134) why="aborted (SIGABRT: the watchdog, or a panic while panicking)" ;;
        101) why="test failed" ;;
        *) why="exit status $status" ;;
    esac
    echo
    echo "---- run $i: XINTERP_SEED=$(seed_of "$i"): $why; log $out/run-$i.log"
    # The failure itself (the test's own message, the watchdog's header, the panics) may sit
    # above a backtrace: show those lines first, then the end of the output.
    key=$(grep -E -A1 '^stress failed with|^stress watchdog|a worker failed|panicked at' \
        "$out/run-$i.log" | grep -v '^--$' | head -n 12 || true)
    if [ -n "$key" ]; then
        echo "  the failure:"
        printf '%s\n' "$key" | sed 's/^/    /'
    fi
    echo "  the last lines:"
    tail -n "$tail_lines" "$out/run-$i.log" | sed 's/^/    /'
done
rm -f "$out"/run-*.status
if [ "$failed" -gt 0 ]; then
    echo
    echo "soak: $failed of $runs runs failed; repeat one with XINTERP_SEED=<seed> cargo test --test stress"
    exit 1
fi
rm -f "$binary"
rmdir "$out" 2>/dev/null || true
echo "soak: all $runs runs passed"
