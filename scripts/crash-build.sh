#!/usr/bin/env bash
# crash 8.0.6 built from source for the architecture of a guest's dumps, into the klab cache (once):
#   scripts/crash-build.sh x86_64|arm64      prints the crash binary's path
#
# Why not Debian 12's crash (8.0.2): it reads dumps of its host's architecture only (crash is built for one
# target; an x86_64 host reads arm64 dumps only with a crash built `make target=ARM64`, configure.c
# "ARM64 on X86_64"), it predates the module memory layout of Linux 6.4 (struct module's mem[], so it cannot
# start on a 6.12 dump), and it skips every task but the idle ones on Debian's 6.1.1xx kernels (struct pid's
# numbers[], fixed in 8.0.6; klab works around it for 8.0.2 with machine/crash_compat.c). Debian 13's crash is
# 8.0.6, but its binary needs Debian 13's glibc; its upstream source builds here as it is.
#
# The source is the orig tarball of Debian 13's crash package, from the Debian mirror apt uses, checked against
# the SHA-256 that Debian 13's signed InRelease -> main/source/Sources.xz gives for it. It bundles the gdb 10.2
# crash embeds. klab applies its own patches to it (scripts/crash-patches/). Nothing is installed on the
# host: the binary is $KLAB_CACHE/crash/ARCH/crash (its VERSION beside it), where klab crash looks first
# (vm/cmd/crash.c).
set -euo pipefail
die() { echo "klab crash: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: crash-build.sh x86_64|arm64"
case $1 in
  x86_64) target=X86_64 ;;
  arm64) target=ARM64 ;;
  *) die "unknown architecture '$1' (x86_64 or arm64)" ;;
esac
case $(uname -m) in
  x86_64) ;;
  aarch64) [ "$target" = ARM64 ] || die "crash reads x86_64 dumps only when built on an x86_64 host (configure.c)" ;;
  *) die "crash is built here on x86_64 or aarch64 hosts only, not $(uname -m)" ;;
esac
version=8.0.6
# klab's patches to it (scripts/crash-patches/, each says why), applied in name order; the built VERSION names
# the set, so a new patch rebuilds.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
patches=("$here"/crash-patches/*.patch)
# The compressed kdump formats it reads besides zlib (crash's Makefile goals: -DLZO -DSNAPPY -DZSTD), as
# Debian builds it: QEMU writes lzo and snappy, makedumpfile zstd too.
features=(lzo snappy zstd)
build_id="$version+klab.$( { cat "${patches[@]}"; echo "${features[*]}"; } | sha256sum | cut -c1-12)"
tarball=crash_$version.orig.tar.gz
sha256=097c6c94ded7e24db4af58de24744bd28276d6f5bae0828bc6b6a02664c4282a
cache=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}
dest=$cache/crash/$1
[ -x "$dest/crash" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$build_id" ] && { echo "$dest/crash"; exit 0; }

mkdir -p "$cache/crash/src"
src=$cache/crash/src/$tarball
if ! echo "$sha256  $src" | sha256sum -c --status 2>/dev/null; then
  # The mirror apt downloads from: the part of a package's URI before /pool/.
  uri=$(apt-get download --print-uris busybox-static 2>/dev/null | sed -n "s|^'\(.*\)/pool/.*|\1|p" | head -1)
  [ -n "$uri" ] || die "cannot tell which Debian mirror apt uses (apt-get download --print-uris)"
  echo "klab crash: downloading crash $version's source (Debian's $tarball, 41 MB)" >&2
  tmp=$(mktemp "$src.XXXXXX")
  curl -fsS --retry 2 -m 600 -o "$tmp" "$uri/pool/main/c/crash/$tarball" || { rm -f "$tmp"; die "cannot download $uri/pool/main/c/crash/$tarball"; }
  echo "$sha256  $tmp" | sha256sum -c --status || { rm -f "$tmp"; die "$tarball does not have the SHA-256 Debian publishes for it"; }
  mv -f "$tmp" "$src"
fi

work=$(mktemp -d "$cache/crash/build-$1-XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$src" -C "$work"
for p in "${patches[@]}"; do
  patch -d "$work/crash-$version" -p1 -s <"$p" >"$work/patch.log" 2>&1 || die "patch ${p##*/} does not apply: $(head -1 "$work/patch.log")"
done
log=$cache/crash/build-$1.log
echo "klab crash: building crash $version for $1 dumps (target=$target, with its gdb 10.2: about 6 minutes on 2 cores; log in $log)" >&2
t0=$(date +%s)
# crash's Makefile configures and builds its gdb in the tree; -j is passed down to gdb's build.
if ! make -C "$work/crash-$version" -j"$(nproc)" target="$target" "${features[@]}" >"$log" 2>&1; then
  die "building crash failed: $(grep -m1 -E 'error|Error' "$log" || tail -n1 "$log") (log: $log)"
fi
bin=$work/crash-$version/crash
"$bin" --version 2>/dev/null | grep -q "^crash $version" || die "the built crash does not run (log: $log)"
for lib in liblzo2 libsnappy libzstd; do
  ldd "$bin" | grep -q "$lib" || die "the built crash does not link $lib: the $lib kdump pages would be unreadable (log: $log)"
done
strip "$bin"   # 100 MB of crash's own debug info, which no one here reads
mkdir -p "$dest.tmp.$$"
mv "$bin" "$dest.tmp.$$/crash"
echo "$build_id" >"$dest.tmp.$$/VERSION"
rm -rf "$dest"
mv "$dest.tmp.$$" "$dest"
echo "klab crash: $dest/crash ready ($(( $(date +%s) - t0 )) s)" >&2
echo "$dest/crash"
