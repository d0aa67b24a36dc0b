#!/usr/bin/env bash
# Build pam_twofactor from source and install it on this (Debian) machine:
#   the module   /usr/lib/<multiarch>/security/pam_twofactor.so
#   the tool     /usr/local/bin/twofactor
#   the config   /etc/security/pam_twofactor.toml (kept if it already exists)
#   the state    /var/lib/pam_twofactor (root only)
# No PAM stack is changed: enabling the module is a separate, deliberate step
# (see README.md), so installing can never lock anybody out.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/install.sh: run as root" >&2
    exit 1
fi

scripts/install-deps.sh
cargo build --release --locked

multiarch=$(gcc -print-multiarch 2>/dev/null || true)
security_dir=/usr/lib/${multiarch:+$multiarch/}security
if [ ! -d "$security_dir" ]; then
    security_dir=/lib/security
fi
install -D -m 0644 target/release/libpam_twofactor.so "$security_dir/pam_twofactor.so"
strip --strip-unneeded "$security_dir/pam_twofactor.so"
install -D -m 0755 target/release/twofactor /usr/local/bin/twofactor
# The FIDO2 helper the module runs for security keys (config: fido2_helper).
install -D -m 0755 target/release/twofactor-fido2-helper \
    /usr/libexec/pam_twofactor/twofactor-fido2-helper
if [ ! -e /etc/security/pam_twofactor.toml ]; then
    install -D -m 0644 config/pam_twofactor.toml /etc/security/pam_twofactor.toml
fi
install -d -m 0711 -o root -g root /var/lib/pam_twofactor

echo "installed: $security_dir/pam_twofactor.so, /usr/local/bin/twofactor, /etc/security/pam_twofactor.toml"
echo "next: every user runs 'twofactor enroll'; then add the module to a PAM stack (README.md)."
