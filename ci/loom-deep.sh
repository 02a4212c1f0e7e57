#!/usr/bin/env bash
# A deeper loom run than the test command's: every model in loom-tests/ with
# LOOM_MAX_PREEMPTIONS (default 3; the test command uses 2), release build with debug
# assertions, then a table of the interleavings each model explored and how long it took.
# Usage: ci/loom-deep.sh [PREEMPTIONS]   (the README's reliability figures come from it)
set -euo pipefail
cd "$(dirname "$0")/.."

bound=${1:-3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$(date +%s)
echo "loom: every model, LOOM_MAX_PREEMPTIONS=$bound (release, debug assertions on)"
set +e
# As in the test command: the models need none of the release profile's LTO.
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=$bound \
    cargo test --release --target-dir target/loom -p xinterp-loom-tests -- \
    --nocapture --test-threads 1 2>&1 | tee "$log" | grep -E '^(test |loom model|test result)'
status=${PIPESTATUS[0]}
set -e

# The harness prints "test NAME ... " and the model its count on the same line.
counts=$(grep -oE 'loom model [^:]+: [0-9]+ interleavings explored' "$log" |
    sed -E 's/^loom model (.*): ([0-9]+) interleavings explored$/\1 \2/' | sort)
echo
echo "| model | interleavings explored |"
echo "|---|---|"
awk '{ printf "| %s | %s |\n", $1, $2 }' <<< "$counts"
models=$(grep -c . <<< "$counts" || true)
total=$(awk '{ n += $2 } END { print n + 0 }' <<< "$counts")
echo
echo "$models models, $total interleavings in all, $(( $(date +%s) - started )) s"
if [ "$status" -ne 0 ]; then
    echo "FAILED: see the output above"
    exit 1
fi
