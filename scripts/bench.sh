#!/usr/bin/env bash
# The login benchmark (docs/benchmarks.md): pam_twofactor through the
# real libpam, side by side with pam_permit, pam_google_authenticator and
# pam_oath. Must run as root (mount namespace, test accounts, PAM stacks).
#
#   sudo scripts/bench.sh            # everything (about 3 minutes on 2 cores after the first build)
#   sudo scripts/bench.sh --quick    # fewer iterations (about 1.5 minutes)
#
# Other options are passed to the bench binary (tests/src/bin/pam_bench/, `--help` lists them):
# --iterations N, --cold N, --callgrind-iterations N, --leak-logins N,
# --memcheck-logins N, --workers N, --skip wall,cold,callgrind,crosscheck,load,
# concurrency,leak,memcheck,fleet (fleet: the login state on a redis-server
# that the bench starts on 127.0.0.1). The report is printed and kept in
# target/bench/report.txt and target/bench/report.json.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/bench.sh: run as root (the benchmark uses a mount namespace and real PAM stacks)" >&2
    exit 1
fi

scripts/install-deps.sh --bench

# A target directory of its own: the release builds below never replace a
# module that the test suite (target/test-module) or an install is using.
export CARGO_TARGET_DIR="$PWD/target/bench"
export CARGO_TERM_COLOR=never
modules="$CARGO_TARGET_DIR/module"
mkdir -p "$modules" "$CARGO_TARGET_DIR/out"

# Copy next to the destination, then rename: a process that has the old file
# mapped keeps its copy.
put() {
    cp "$1" "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
}

# The module with the test clock, built like tests/run-all.sh builds
# target/test-module/pam_twofactor_test_clock.so, but in the release profile
# that is installed (the test clock only adds one pam_getenv per login).
cargo build --release --locked -p pam_twofactor --features test-clock
put "$CARGO_TARGET_DIR/release/libpam_twofactor.so" "$modules/pam_twofactor_test_clock.so"
# The module as installed by scripts/install.sh (stripped), for its size.
cargo build --release --locked -p pam_twofactor
put "$CARGO_TARGET_DIR/release/libpam_twofactor.so" "$modules/pam_twofactor.so"
put "$modules/pam_twofactor.so" "$modules/pam_twofactor.stripped.so"
strip --strip-unneeded "$modules/pam_twofactor.stripped.so"
cargo build --release --locked -p twofactor-integration-tests --bin pam_bench

# A C program that only dlopens and dlcloses a module, with libpam loaded and
# (unlike the Rust bench binary) no libgcc_s: the load cost as sshd, su or
# login pay it, once per process.
probe="$CARGO_TARGET_DIR/dlopen_probe"
cat > "$probe.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>
extern const char *pam_strerror(void *pamh, int errnum);
static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
/* libpam opens modules with RTLD_NOW. */
__attribute__((noinline)) void *probe_load(const char *path) { return dlopen(path, RTLD_NOW); }
__attribute__((noinline)) int probe_unload(void *handle) { return dlclose(handle); }
int main(int argc, char **argv) {
    if (argc != 2 || pam_strerror(NULL, 0) == NULL)
        return 2;
    long long t0 = now_ns();
    void *handle = probe_load(argv[1]);
    long long t1 = now_ns();
    if (handle == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    probe_unload(handle);
    long long t2 = now_ns();
    printf("%lld %lld\n", t1 - t0, t2 - t1);
    return 0;
}
C
gcc -O2 -Wall -o "$probe" "$probe.c" -ldl -lpam

report="$CARGO_TARGET_DIR/report.txt"
{
    echo "module files:"
    for f in pam_twofactor.so pam_twofactor.stripped.so; do
        printf '  %-28s %9d bytes\n' "$f" "$(stat -c %s "$modules/$f")"
    done
    stripped="$modules/pam_twofactor.stripped.so"
    echo "  stripped module: needs $(readelf -d "$stripped" | awk '/NEEDED/ { gsub(/[][]/, "", $5); printf "%s ", $5 }')"
    echo "  dynamic relocations: $(readelf -r "$stripped" | grep -c 'R_X86_64' || true)," \
        "exported symbols: $(readelf --dyn-syms -W "$stripped" | awk '$7 != "UND" && $5 == "GLOBAL"' | grep -c . || true)," \
        "flags: $(readelf -d "$stripped" | awk '/FLAGS_1/ { $1=""; $2=""; print }' | xargs)"
    for m in pam_google_authenticator.so pam_oath.so pam_permit.so; do
        for d in /usr/lib/x86_64-linux-gnu/security /lib/x86_64-linux-gnu/security; do
            if [ -e "$d/$m" ]; then
                printf '  %-28s %9d bytes (Debian package, stripped)\n' "$m" "$(stat -c %s "$d/$m")"
                break
            fi
        done
    done
} | tee "$report"

"$CARGO_TARGET_DIR/release/pam_bench" \
    --module "$modules/pam_twofactor_test_clock.so" \
    --production-module "$modules/pam_twofactor.stripped.so" \
    --dlopen-probe "$probe" \
    --out-dir "$CARGO_TARGET_DIR/out" \
    --json "$CARGO_TARGET_DIR/report.json" \
    "$@" | tee -a "$report"
echo "report: $report, $CARGO_TARGET_DIR/report.json"
