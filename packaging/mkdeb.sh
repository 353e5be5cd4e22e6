#!/usr/bin/env bash
# Turns a staged `make install PREFIX=/usr DESTDIR=ROOT` into klab_VERSION_ARCH.deb with dpkg-deb.
#
#   packaging/mkdeb.sh ROOT VERSION ARCH OUT_DIR
#
# Why dpkg-deb on a staged install rather than dpkg-buildpackage and debhelper: the package holds exactly
# what `make install` installs (one install path to test, not two), it builds in seconds from the clone's
# own build/ without writing beside the clone, and it needs nothing beyond dpkg-dev, which klab already
# uses to unpack kernels. What debhelper would do is done here: stripped binaries, gzip'd man pages and
# changelog, copyright, md5sums, Depends from dpkg-shlibdeps, the shlibs file and ldconfig trigger for
# libklab. lintian checks the result (tests/integration/package.sh).
set -euo pipefail
die() { echo "klab deb: $*" >&2; exit 1; }
[ $# -eq 4 ] || die "usage: mkdeb.sh ROOT VERSION ARCH OUT_DIR"
root=$1 version=$2 arch=$3 out=$4
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$root/usr/bin/klab" ] || die "$root has no usr/bin/klab (make install PREFIX=/usr DESTDIR=$root first)"
[ ! -e "$root/DEBIAN" ] || die "$root was packaged already (make deb stages a fresh one)"
root=$(cd "$root" && pwd)
top=$(sed -n '1s/^klab (\([^)]*\)).*/\1/p' "$here/changelog")
[ "$top" = "$version" ] || die "packaging/changelog's top entry is $top, the Makefile's KLAB_VERSION is $version"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
lib=$root/usr/lib/$multiarch

# Binaries without debug sections (Debian Policy 10.1), man pages and the changelog compressed with gzip -9n.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/klab" "$lib/libklab.so.$version"
strip --strip-debug --remove-section=.comment --enable-deterministic-archives "$lib/libklab.a"
gzip -9nf "$root"/usr/share/man/man1/*.1
doc=$root/usr/share/doc/klab
install -m 0644 "$here/copyright" "$doc/copyright"
gzip -9nc "$here/changelog" > "$doc/changelog.gz"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/usr/bin/klab"
find "$root/usr/share/klab" -name '*.sh' -exec chmod 0755 {} +

# Depends: the shared libraries klab links (dpkg-shlibdeps wants a debian/control to read), then what it runs.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/debian"
printf 'Source: klab\n\nPackage: klab\nArchitecture: any\n' > "$tmp/debian/control"
shlibs=$(cd "$tmp" && dpkg-shlibdeps -O -e"$root/usr/bin/klab" -e"$lib/libklab.so.$version" 2>/dev/null \
         | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependencies for usr/bin/klab"
# qemu-system-*: the VMs; gdb-multiarch: klab gdb (its Python runs klab's package); crash and python3-drgn:
# klab crash / klab drgn, binutils: objcopy for klab crash's indexed vmlinux; apt, dpkg and kmod, xz-utils: klab
# fetch (apt-get download, dpkg-deb, modinfo); libvirt0: the libvirt backend, which klab loads when it is used
# (dlopen: vm/backend/libvirt_api.c), so dpkg-shlibdeps does not see it.
runs="qemu-system-x86, qemu-system-arm, qemu-utils, gdb-multiarch, python3, crash, python3-drgn, binutils, apt, kmod, xz-utils, libvirt0"
# binutils for the other architecture's vmlinux (klab crash's indexed copy of an arm64 vmlinux on amd64).
case $arch in amd64) other_binutils=binutils-aarch64-linux-gnu ;; arm64) other_binutils=binutils-x86-64-linux-gnu ;; esac
size=$(du -sk --apparent-size "$root" | cut -f1)

mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: klab
Version: $version
Architecture: $arch
Maintainer: klab developers <klab@example.org>
Installed-Size: $size
Depends: $shlibs, $runs
Recommends: build-essential, libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients${other_binutils:+, $other_binutils}
Section: devel
Priority: optional
Description: QEMU + gdb kernel debug lab for arm64 and x86_64
 klab boots a Linux kernel (Debian's, with its debug vmlinux, or a source
 build) under QEMU, stopped at its first instruction with a gdb stub on
 127.0.0.1, and attaches gdb-multiarch with the kernel's symbols and klab's
 commands: page-table walks that agree with QEMU, task lists, backtraces,
 slab and dmesg triage, user memory.
 .
 libklab, its C library, walks arm64 and x86_64 page tables from QEMU's RAM
 file, the gdb stub or an ELF dump, so klab regs, vtop and ptdump work with
 no gdb; klab dump writes dumps that crash and drgn open; klab exam runs
 exam rooms of isolated VMs, one per candidate.
CONTROL
echo "libklab 0 klab (>= $version)" > "$root/DEBIAN/shlibs"
echo "activate-noawait ldconfig" > "$root/DEBIAN/triggers"
chmod 0644 "$root/DEBIAN"/*
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
mkdir -p "$out"
deb=$out/klab_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
