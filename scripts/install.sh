#!/usr/bin/env bash
# Build pam_twofactor from source and install it on this (Debian) machine:
#   the module   /usr/lib/<multiarch>/security/pam_twofactor.so
#   the tool     /usr/local/bin/twofactor
#   the helper   /usr/libexec/pam_twofactor/twofactor-fido2-helper
#   the config   /etc/security/pam_twofactor.toml (kept if it already exists)
#   the state    /var/lib/pam_twofactor (root only)
#   man pages    /usr/local/share/man: twofactor(1) and one page per command,
#                pam_twofactor.toml(5), pam_twofactor(8) (as the .deb ships)
# No PAM stack is changed: enabling the module is a separate, deliberate step
# (see README.md), so installing can never lock anybody out.
#
#   scripts/install.sh                          # install-deps, cargo build --release, install
#   scripts/install.sh --module M --tool T [--helper H]
#                                               # install binaries built elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."

module="" tool="" helper=""
while [ $# -gt 0 ]; do
    case "$1" in
        --module) module=$2; shift 2 ;;
        --tool) tool=$2; shift 2 ;;
        --helper) helper=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "scripts/install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/install.sh: run as root" >&2
    exit 1
fi

if [ -z "$module" ] || [ -z "$tool" ]; then
    scripts/install-deps.sh
    cargo build --release --locked
    module=${module:-target/release/libpam_twofactor.so}
    tool=${tool:-target/release/twofactor}
    helper=${helper:-target/release/twofactor-fido2-helper}
fi
for file in "$module" "$tool" ${helper:+"$helper"}; do
    [ -f "$file" ] || { echo "scripts/install.sh: $file does not exist" >&2; exit 1; }
done

multiarch=$(gcc -print-multiarch 2>/dev/null || true)
security_dir=/usr/lib/${multiarch:+$multiarch/}security
if [ ! -d "$security_dir" ]; then
    security_dir=/lib/security
fi
install -D -m 0644 "$module" "$security_dir/pam_twofactor.so"
strip --strip-unneeded "$security_dir/pam_twofactor.so"
install -D -m 0755 "$tool" /usr/local/bin/twofactor
if [ -n "$helper" ]; then
    # The FIDO2 helper the module runs for security keys (config: fido2_helper).
    install -D -m 0755 "$helper" /usr/libexec/pam_twofactor/twofactor-fido2-helper
fi
if [ ! -e /etc/security/pam_twofactor.toml ]; then
    install -D -m 0644 config/pam_twofactor.toml /etc/security/pam_twofactor.toml
fi
install -d -m 0711 -o root -g root /var/lib/pam_twofactor

# The same pages as the package, beside the tool: man(1) looks in
# /usr/local/share/man for commands in /usr/local/bin.
man_dir=/usr/local/share/man
install -d -m 0755 "$man_dir/man1" "$man_dir/man5" "$man_dir/man8"
for page in enroll-tool/man/*.1; do
    gzip -9n < "$page" > "$man_dir/man1/$(basename "$page").gz"
done
gzip -9n < enroll-tool/man/pam_twofactor.toml.5 > "$man_dir/man5/pam_twofactor.toml.5.gz"
gzip -9n < packaging/man/pam_twofactor.8 > "$man_dir/man8/pam_twofactor.8.gz"
chmod 0644 "$man_dir"/man1/twofactor*.1.gz "$man_dir/man5/pam_twofactor.toml.5.gz" \
    "$man_dir/man8/pam_twofactor.8.gz"

echo "installed: $security_dir/pam_twofactor.so, /usr/local/bin/twofactor, /etc/security/pam_twofactor.toml,"
echo "           man pages twofactor(1), pam_twofactor.toml(5), pam_twofactor(8) in $man_dir"
echo "next: every user runs 'twofactor enroll'; then add the module to a PAM stack (README.md)."
