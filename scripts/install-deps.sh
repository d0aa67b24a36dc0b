#!/usr/bin/env bash
# Debian packages pam_twofactor needs. `--test` adds what the test suite uses.
set -euo pipefail

# libudev-dev: hidapi's hidraw backend (FIDO2 security keys: `twofactor fido2`
# and the twofactor-fido2-helper the module runs).
packages=(libpam0g-dev pkg-config gcc libudev-dev)
if [ "${1:-}" = "--test" ]; then
    packages+=(openssh-server openssh-client oathtool pamtester expect)
    # Packaging, console logins and migration (tests/tests/{package,console,
    # migration}.rs): dpkg-dev and binutils build the .deb, rpm parses the
    # spec, sudo/login/util-linux are driven on a terminal, and the real
    # google-authenticator writes the files that are imported.
    packages+=(dpkg-dev binutils rpm sudo login util-linux libpam-google-authenticator)
    # The package test: lintian judges the .deb; man-db's `man -w` finds the
    # pages that the .deb and scripts/install.sh install.
    packages+=(lintian man-db)
    # FIDO2 end to end (tests/fido2-vm): a QEMU guest (software emulation)
    # with a busybox initramfs; the kernel is fetched with apt-get download.
    packages+=(qemu-system-x86 busybox-static)
    # The fleet state on Redis (tests/src/redis_servers.rs): real
    # redis-server and redis-sentinel processes, and openssl to make the CA
    # and server certificate of the TLS tests.
    packages+=(redis-server redis-sentinel openssl)
fi
# `--bench` (scripts/bench.sh): callgrind and memcheck, the modules it
# compares against, and a redis-server for the fleet-state backend.
if [ "${1:-}" = "--bench" ]; then
    packages+=(valgrind libpam-google-authenticator libpam-oath binutils redis-server)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
