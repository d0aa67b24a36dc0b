#!/usr/bin/env bash
# Debian packages pam_twofactor needs. `--test` adds what the test suite uses.
set -euo pipefail

packages=(libpam0g-dev pkg-config gcc)
if [ "${1:-}" = "--test" ]; then
    packages+=(openssh-server openssh-client oathtool pamtester expect)
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
