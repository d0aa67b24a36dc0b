#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian), builds, runs every
# test. Must run as root (PAM stacks, mount namespaces, test accounts).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run-all.sh: run as root (the tests use mount namespaces and real PAM stacks)" >&2
    exit 1
fi

scripts/install-deps.sh --test

export CARGO_TERM_COLOR=never
mkdir -p target/test-module

# The module as shipped (no test clock) and with the test clock, side by side.
cargo build --workspace --locked
cp target/debug/libpam_twofactor.so target/test-module/pam_twofactor_production.so
cargo build -p pam_twofactor --features test-clock --locked
cp target/debug/libpam_twofactor.so target/test-module/pam_twofactor_test_clock.so

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Unit and integration tests of every crate (the crates have no doc tests);
# the last line sums up every test binary's result.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-targets --locked --no-fail-fast -- --test-threads=4 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
totals=$(awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed", passed, failed }' "$log")
echo
echo "all: $totals"
exit "$status"
