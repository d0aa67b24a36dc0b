#!/usr/bin/env bash
# Build the RPM from this source tree with rpmbuild.
#
#   packaging/rpm/build-rpm.sh                    # Source0 + vendored crates (Source1)
#   packaging/rpm/build-rpm.sh --without vendor   # crates from ~/.cargo or the network
#   packaging/rpm/build-rpm.sh --without vendor --nodeps
#                                                 # on Debian: cargo, pam-devel and
#                                                 # systemd-devel are not rpm packages there
#
# Arguments are passed to rpmbuild. The RPMs land in target/rpmbuild/RPMS/.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
top=${RPM_TOPDIR:-$PWD/target/rpmbuild}
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}

# Source0: the tree as it is (build output and VCS data left out).
tar --exclude=./target --exclude=./.git --exclude=./fuzz/target \
    --transform "s,^\.,pam_twofactor-$version," \
    -czf "$top/SOURCES/pam_twofactor-$version.tar.gz" .

if ! printf '%s\n' "$@" | grep -qx -- 'vendor'; then
    # Source1: every crate of Cargo.lock, for a build without network.
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cargo vendor --locked --versioned-dirs "$work/vendor" >/dev/null
    tar -C "$work" -czf "$top/SOURCES/pam_twofactor-$version-vendor.tar.gz" vendor
fi

cp packaging/rpm/pam_twofactor.spec "$top/SPECS/"
rpmbuild --define "_topdir $top" -bb "$@" "$top/SPECS/pam_twofactor.spec"
ls "$top"/RPMS/*/pam_twofactor-"$version"-*.rpm
