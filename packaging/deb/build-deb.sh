#!/usr/bin/env bash
# Build the Debian package libpam-twofactor: stage the installed tree, write
# DEBIAN/ (control, conffiles, md5sums, maintainer scripts), `dpkg-deb --build`.
#
#   packaging/deb/build-deb.sh                 # cargo build --release, then package
#   packaging/deb/build-deb.sh --module M --tool T [--helper H] [--out DIR]
#                                              # package binaries built elsewhere
#   ... --fast                                 # gzip -1 instead of xz (tests)
#
# Needs dpkg-dev (dpkg-shlibdeps, dpkg-architecture) and binutils (strip).
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."

module="" tool="" helper="" out="target/debian" compression=(-Zxz)
while [ $# -gt 0 ]; do
    case "$1" in
        --module) module=$2; shift 2 ;;
        --tool) tool=$2; shift 2 ;;
        --helper) helper=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --fast) compression=(-Zgzip -z1); shift ;;  # for tests: quick, larger
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$module" ] || [ -z "$tool" ]; then
    cargo build --release --locked
    module=${module:-target/release/libpam_twofactor.so}
    tool=${tool:-target/release/twofactor}
    if [ -z "$helper" ] && [ -x target/release/twofactor-fido2-helper ]; then
        helper=target/release/twofactor-fido2-helper
    fi
fi
for file in "$module" "$tool" ${helper:+"$helper"}; do
    [ -f "$file" ] || { echo "build-deb.sh: $file does not exist" >&2; exit 1; }
done

package=libpam-twofactor
upstream=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
version="${upstream}-1"
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
# Reproducible: file times and gzip headers do not depend on when it was built.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/debian/$package"
doc="$root/usr/share/doc/$package"
umask 022

install -D -m 0644 "$module" "$root/usr/lib/$multiarch/security/pam_twofactor.so"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/lib/$multiarch/security/pam_twofactor.so"
install -D -m 0755 "$tool" "$root/usr/bin/twofactor"
strip --strip-unneeded --remove-section=.comment "$root/usr/bin/twofactor"
if [ -n "$helper" ]; then
    # The FIDO2 helper, where fido2_helper in the configuration expects it.
    install -D -m 0755 "$helper" "$root/usr/libexec/pam_twofactor/twofactor-fido2-helper"
    strip --strip-unneeded --remove-section=.comment "$root/usr/libexec/pam_twofactor/twofactor-fido2-helper"
fi
install -D -m 0644 config/pam_twofactor.toml "$root/etc/security/pam_twofactor.toml"
install -d -m 0711 "$root/var/lib/pam_twofactor"
install -D -m 0644 packaging/pam-configs/twofactor "$root/usr/share/pam-configs/twofactor"

install -d -m 0755 "$root/usr/share/man/man1" "$root/usr/share/man/man5" "$root/usr/share/man/man8"
for page in enroll-tool/man/*.1; do
    gzip -9n < "$page" > "$root/usr/share/man/man1/$(basename "$page").gz"
done
gzip -9n < enroll-tool/man/pam_twofactor.toml.5 > "$root/usr/share/man/man5/pam_twofactor.toml.5.gz"
gzip -9n < packaging/man/pam_twofactor.8 > "$root/usr/share/man/man8/pam_twofactor.8.gz"

install -d -m 0755 "$doc/examples" "$doc/docs"
gzip -9n < README.md > "$doc/README.md.gz"
# The manual the README links to, at the same relative place.
for page in docs/*.md; do
    gzip -9n < "$page" > "$doc/docs/$(basename "$page").gz"
done
install -m 0644 config/examples/* "$doc/examples/"
install -m 0644 packaging/deb/copyright "$doc/copyright"
install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/$package"
date_rfc2822=$(date -R -u -d "@$SOURCE_DATE_EPOCH")
gzip -9n > "$doc/changelog.Debian.gz" <<EOF
$package ($version) unstable; urgency=medium

  * Package built from the pam_twofactor source tree
    (packaging/deb/build-deb.sh).

 -- pam_twofactor maintainers <maintainers@pam-twofactor.invalid>  $date_rfc2822
EOF
chmod 0644 "$doc/changelog.Debian.gz" "$doc/README.md.gz" "$doc"/docs/*.md.gz "$root"/usr/share/man/man*/*.gz

# Library dependencies of the binaries, as Debian's own packages compute them.
mkdir -p "$work/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" > "$work/debian/control"
shlibs=$(cd "$work" && find "debian/$package" -type f \( -name '*.so' -o -perm -0100 \) \
    -exec printf -- '-e%s\n' {} + | xargs dpkg-shlibdeps -O 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
depends="${shlibs:+$shlibs, }libpam-runtime (>= 1.0.1-6)"
installed_size=$(du -k -s --apparent-size "$root" | cut -f1)

install -d -m 0755 "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: pam_twofactor maintainers <maintainers@pam-twofactor.invalid>
Installed-Size: $installed_size
Depends: $depends
Section: admin
Priority: optional
Description: PAM module asking for a second factor: TOTP codes and backup codes
 pam_twofactor asks for a second factor at login (SSH, console, su, sudo):
 a TOTP code from any authenticator app (each time step accepted once) or a
 single-use backup code, stored only as salted hashes. Users enroll with the
 'twofactor' command, which draws a QR code in the terminal.
 .
 Installing changes no PAM stack. Enable the module for every service that
 includes common-auth with 'pam-auth-update --enable twofactor' (a code is
 then asked after the password), and check the setup with 'twofactor doctor'.
EOF
echo /etc/security/pam_twofactor.toml > "$root/DEBIAN/conffiles"
for script in preinst postinst prerm postrm; do
    install -m 0755 "packaging/deb/$script" "$root/DEBIAN/$script"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/${package}_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compression[@]}" --build "$root" "$deb" >/dev/null
echo "$deb"
