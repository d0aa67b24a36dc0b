#!/usr/bin/env bash
# Fuzz every parser and the typed answer for a bounded time each (default
# 60 s; `scripts/fuzz.sh 300` for longer). New interesting inputs land in
# fuzz/corpus/<target>/ — commit them: the test suite replays every corpus
# file (pam_twofactor/tests/fuzz_corpus.rs). Any crash, hang (5 s) or
# out-of-memory stops the script with a non-zero status and the reproducer
# in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes nightly-only flags (sanitizers, coverage); this lets the
# one stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

summary=()
for target in config module_args enrollment state answer origins fido2_authenticator_data fido2_helper_line u2f_keys google_authenticator; do
    log=$(mktemp)
    cargo fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tee "$log" | grep -E "^(#[0-9]+\s+DONE|Done|==[0-9]+==ERROR|SUMMARY)" || true
    status=${PIPESTATUS[0]}
    runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
    files=$(find "fuzz/corpus/$target" -type f | wc -l)
    rm -f "$log"
    summary+=("$target: $runs executions in ${seconds} s, exit $status")
    if [ "$status" -ne 0 ]; then
        printf '%s\n' "${summary[@]}"
        echo "fuzz target $target failed: see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
# Keep only inputs that add coverage, so the committed corpora stay small.
for target in config module_args enrollment state answer origins fido2_authenticator_data fido2_helper_line u2f_keys google_authenticator; do
    cargo fuzz cmin --fuzz-dir fuzz "$target" "fuzz/corpus/$target" >/dev/null 2>&1
    summary+=("$target corpus after minimisation: $(find "fuzz/corpus/$target" -type f | wc -l) files")
done
printf '%s\n' "${summary[@]}"
