#!/usr/bin/env bash
# FIDO2 end to end, with the real HID transport: boots Debian's kernel in
# QEMU (software emulation, TCG: no KVM needed) with a busybox initramfs in
# which our software authenticator is a USB HID FIDO device (/dev/uhid ->
# /dev/hidraw0), and runs `twofactor fido2 add` and logins through libpam and
# the module (tests/fido2-vm/init). Prints the guest's console; the last
# line is "E2E: RESULT PASS" or "E2E: RESULT FAIL".
#
# Usage: tests/fido2-vm/run.sh TARGET_DIR WORK_DIR
#   TARGET_DIR holds debug/{twofactor,twofactor-fido2-helper,soft-fido2-uhid,
#   pam_login} and test-module/pam_twofactor_production.so (tests/run-all.sh
#   builds them). The kernel is downloaded once (apt-get download, unpacked
#   with dpkg-deb: nothing is installed) into TARGET_DIR/fido2-vm-kernel.
# Needs: qemu-system-x86, busybox-static, binutils (scripts/install-deps.sh --test).
set -euo pipefail
target=$(realpath "$1")
work=$2
here=$(dirname "$(realpath "$0")")

kernel_dir=$target/fido2-vm-kernel
if [ ! -f "$kernel_dir/vmlinuz" ]; then
    package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$package" ] || { echo "run.sh: no linux-image package found (apt-get update?)" >&2; exit 1; }
    rm -rf "$kernel_dir.tmp" && mkdir -p "$kernel_dir.tmp"
    (cd "$kernel_dir.tmp" && apt-get download -q "$package" >/dev/null 2>&1 && dpkg-deb -x ./*.deb root)
    release=${package#linux-image-}
    cp "$kernel_dir.tmp/root/boot/vmlinuz-$release" "$kernel_dir.tmp/vmlinuz"
    for m in hid hid-generic uhid; do
        find "$kernel_dir.tmp/root/lib/modules/$release" -name "$m.ko*" -exec cp {} "$kernel_dir.tmp/" \;
        # Compressed modules (newer Debian kernels) are unpacked for busybox insmod.
        if [ -f "$kernel_dir.tmp/$m.ko.xz" ]; then xz -d "$kernel_dir.tmp/$m.ko.xz"; fi
        if [ -f "$kernel_dir.tmp/$m.ko.zst" ]; then zstd -q -d --rm "$kernel_dir.tmp/$m.ko.zst"; fi
        [ -f "$kernel_dir.tmp/$m.ko" ] || { echo "run.sh: module $m not found in $package" >&2; exit 1; }
    done
    rm -rf "$kernel_dir.tmp/root" "$kernel_dir.tmp"/*.deb "$kernel_dir"
    mv "$kernel_dir.tmp" "$kernel_dir"
fi

root=$work/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc/security,etc/pam-test,lib/modules,lib/security,usr/local/bin,usr/libexec/pam_twofactor,var/lib,home/alice}
cp /bin/busybox "$root/bin/busybox"
cp "$here/init" "$root/init"
cp "$kernel_dir"/*.ko "$root/lib/modules/"

binaries=(
    "$target/debug/twofactor:/usr/local/bin/twofactor"
    "$target/debug/pam_login:/usr/local/bin/pam_login"
    "$target/debug/soft-fido2-uhid:/usr/local/bin/soft-fido2-uhid"
    "$target/debug/twofactor-fido2-helper:/usr/libexec/pam_twofactor/twofactor-fido2-helper"
    "$target/test-module/pam_twofactor_production.so:/lib/security/pam_twofactor.so"
)
for entry in "${binaries[@]}"; do
    source=${entry%%:*}
    dest=$root${entry#*:}
    [ -f "$source" ] || { echo "run.sh: $source is missing (build first: tests/run-all.sh)" >&2; exit 1; }
    # Without debug information: the guest's memory holds the initramfs.
    strip -o "$dest" "$source"
    chmod 755 "$dest"
    # The shared libraries each needs, at the same paths as here.
    ldd "$source" | awk '/=> \// { print $3 } /^\t\/[^ ]*ld-linux/ { print $1 }' | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        [ -f "$root$lib" ] || cp -L "$lib" "$root$lib"
    done
done
chmod 644 "$root/lib/security/pam_twofactor.so"

cat > "$root/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:FIDO2 test:/home/alice:/bin/sh
PASSWD
cat > "$root/etc/group" <<GROUP
root:x:0:
alice:x:1000:
GROUP
chown 1000:1000 "$root/home/alice"
chmod 755 "$root/home/alice"
cat > "$root/etc/security/pam_twofactor.toml" <<CONFIG
# Defaults, but for the relying-party id, which the guest's host name makes
# pam://fido2-vm anyway: said here to show where it is set.
fido2_rp_id = "pam://fido2-vm"
fido2_timeout = 20
CONFIG
chmod 644 "$root/etc/security/pam_twofactor.toml"
echo "auth required /lib/security/pam_twofactor.so" > "$root/etc/pam-test/fido2"
: > "$root/etc/pam-test/other"
cat > "$root/etc/soft-key.toml" <<KEY
secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
KEY

(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.cpio.gz"

timeout 300 qemu-system-x86_64 \
    -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
    -kernel "$kernel_dir/vmlinuz" -initrd "$work/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3" \
    -nic none </dev/null
