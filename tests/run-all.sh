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
# --test-threads: the machine has two cores; the sshd tests start servers.
cargo test --workspace --locked -- --test-threads=4
