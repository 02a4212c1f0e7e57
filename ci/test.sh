#!/usr/bin/env bash
# Runs every check the project carries, on a fresh machine too: installs what it needs, then
# rustfmt, clippy, rustdoc, the tests, the loom models, Miri, cargo-careful and the invariant
# trace.
# Each checker's own result lines are printed as they come. Usage: ./ci/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== %s\n' "$*"; }
started=$(date +%s)

step "install: nightly (if missing) with miri + rust-src, cargo-careful"
# An installed nightly is kept as it is (no update on every run); a missing one is installed.
rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
rustup component add miri rust-src --toolchain nightly
command -v cargo-careful >/dev/null 2>&1 || cargo install --locked cargo-careful

step "rustfmt"
cargo fmt --all -- --check

step "clippy (-D warnings), normal and loom builds"
cargo clippy --workspace --all-targets -- -D warnings
RUSTFLAGS="--cfg loom" cargo clippy -p xinterp -p xinterp-loom-tests --all-targets --target-dir target/loom -- -D warnings

step "rustdoc (-D warnings, broken intra-doc links): the library, the lab and the conformance runner"
RUSTDOCFLAGS="-D warnings -D rustdoc::broken_intra_doc_links" \
    cargo doc -p xinterp -p xinterp-lab -p xinterp-conformance --no-deps

step "tests"
cargo test --workspace

step "conformance: every scenario on xinterp; on CPython 3.13+ too when one is found (XINTERP_CPYTHON=path or none)"
cargo run -q -p xinterp-conformance -- --strict

step "loom models (release, debug assertions on, LOOM_MAX_PREEMPTIONS=2)"
# The models need none of the release profile's whole-program optimisation (that is for the
# lab and the benchmarks), and build much faster without it.
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 \
    cargo test --release --target-dir target/loom -p xinterp-loom-tests

step "loom: the wrong-interpreter touch without debug assertions is a race loom reports"
RUSTFLAGS="--cfg loom -C debug-assertions=off" LOOM_MAX_PREEMPTIONS=2 \
    cargo test --release --target-dir target/loom-nodebug -p xinterp-loom-tests \
    --test wrong_interpreter_touch

unset CARGO_PROFILE_RELEASE_LTO CARGO_PROFILE_RELEASE_CODEGEN_UNITS

step "miri (strict provenance, stacked borrows): library, integration and doc tests"
MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test -p xinterp

step "miri (tree borrows): library and integration tests"
MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-tree-borrows" cargo +nightly miri test -p xinterp \
    --lib --tests

step "miri (several schedules): the concurrent tests under seeds 0..4"
MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=0..4" cargo +nightly miri test -p xinterp \
    --test switching --test inbox --test channel --test proxy

step "miri on a big-endian target: the object-pointer encoding"
MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test \
    --target mips64-unknown-linux-gnuabi64 -p xinterp --lib message

step "cargo-careful: all library tests, the stress test at full size"
XINTERP_STRESS_OPS=200000 cargo +nightly careful test -p xinterp

step "invariants: every INV- id defined in design/, kept in src/, checked by a test"
skipped=""
if [ -x ../shared/tools/invariants ]; then
    ../shared/tools/invariants --strict
else
    echo "../shared/tools/invariants not found beside the project; skipped"
    skipped=", except the invariant trace (skipped: ../shared/tools/invariants not found)"
fi

step "all checks passed in $(( $(date +%s) - started ))s${skipped}"
