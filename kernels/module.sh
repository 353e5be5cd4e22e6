#!/usr/bin/env bash
# Build an out-of-tree kernel module for one of klab's kernels, without touching the source folder.
#
#   kernels/module.sh MODULE_DIR KERNEL [OUT_DIR]
#
# MODULE_DIR holds the module's .c files and its Kbuild (e.g. labs/hellodrv). KERNEL is a registered
# kernel: a source build (x86_64, arm64-64k, ... from kernels/build.sh: built against its build folder,
# cross-compiled for arm64), debian-amd64 / debian-6.12-amd64 (against Debian's linux-headers package of the
# fetched ABI, installed here if missing), or debian-arm64 / debian-6.12-arm64 (Debian's arm64 headers
# unpacked under the cache, with this host's kbuild tools: see arm64_headers). The sources are copied to
# OUT_DIR (default build/modules/KERNEL/NAME) and built there; the
# .ko path is printed on success. The full make output is kept in OUT_DIR/build.log; a failure prints
# its first error line and names the log.
set -euo pipefail

die() { echo "klab module: $*" >&2; exit 1; }
sudo_cmd=(); [ "$EUID" -eq 0 ] || sudo_cmd=(sudo)
# apt_install PKG...: installed quietly (apt's own chatter, debconf's notes, stays out of the one-line answers;
# its first error is the failure's line).
apt_install() {
  local log; log=$(mktemp)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "$@" >"$log" 2>&1 \
    || { local e; e=$(grep -m1 -E '^E: ' "$log"); rm -f "$log"; die "apt-get install $* failed: $e"; }
  rm -f "$log"
}

# arm64_headers RELEASE DIR: Debian's linux-headers-RELEASE:arm64 unpacked into DIR (once), ready for a cross
# build here. The package's scripts and tools are symlinks into linux-kbuild-N, whose programs (fixdep,
# modpost, genksyms) run on the build machine: that is why the arm64 package cannot be installed on an amd64
# host. They point instead at this host's linux-kbuild-N of the same version (the same sources built for
# amd64; modpost reads an arm64 module as it reads its own, scripts/mod/modpost.c handles either ELF); the
# package's Makefile includes the arch-independent linux-headers-N-common from /usr/src, installed on the host.
arm64_headers() {
  local release=$1 dir=$2 tmp deb ver kbuild common
  tmp=$(mktemp -d "${dir%/*}/.headers-XXXXXX")
  echo "klab module: fetching linux-headers-$release:arm64 (Debian's arm64 headers, unpacked under the cache)" >&2
  (cd "$tmp" && apt-get download -q "linux-headers-$release:arm64" >"$tmp/apt.log" 2>&1) \
    || { rm -rf "$tmp"; die "apt-get download linux-headers-$release:arm64 failed (is the arm64 architecture added? make deps)"; }
  deb=$(ls "$tmp"/*.deb)
  ver=$(dpkg-deb -f "$deb" Version)
  kbuild=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-kbuild-[0-9.]*\).*/\1/p')
  dpkg-deb -x "$deb" "$tmp/root"
  local src=$tmp/root/usr/src/linux-headers-$release
  common=$(sed -n 's|^include /usr/src/\([^/]*\)/Makefile$|\1|p' "$src/Makefile")
  [ -n "$kbuild" ] && [ -n "$common" ] || { rm -rf "$tmp"; die "linux-headers-$release:arm64 is not laid out as Debian 12's are"; }
  [ "$(dpkg-query -W -f '${Version}' "$kbuild" 2>/dev/null)" = "$ver" ] && [ -f "/usr/src/$common/Makefile" ] \
    || apt_install "$kbuild=$ver" "$common=$ver"
  ln -sfn "/usr/lib/$kbuild/scripts" "$src/scripts"
  ln -sfn "/usr/lib/$kbuild/tools" "$src/tools"
  rm -rf "$dir"
  mv "$src" "$dir"
  rm -rf "$tmp"
}
[ $# -ge 2 ] || die "usage: module.sh MODULE_DIR KERNEL [OUT_DIR] | module.sh --prepare KERNEL"
src=${1%/} kernel=$2
# --prepare KERNEL: only make sure the kernel's build folder is there (Debian's headers installed), and print
# it. The exam grader does this with its own rights before the candidate's build runs sandboxed.
prepare=; [ "$src" = --prepare ] && prepare=1
if [ -z "$prepare" ]; then
  [ -d "$src" ] || die "no module folder $src"
  [ -f "$src/Kbuild" ] || [ -f "$src/Makefile" ] || die "$src has no Kbuild or Makefile"
fi
name=${src##*/}
cache=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}
out=${3:-build/modules/$kernel/$name}

case $kernel in
  debian-amd64|debian-6.12-amd64)
    version_file=$cache/kernels/$kernel/VERSION
    kver=; [ "$kernel" = debian-amd64 ] || kver=" KVER=6.12"
    [ -f "$version_file" ] || die "kernel $kernel is not fetched yet (make kernel-x86$kver)"
    release=$(sed -n 's/^release=//p' "$version_file")
    kdir=/usr/src/linux-headers-$release
    if [ ! -f "$kdir/Makefile" ]; then
      # Progress on stderr: stdout is the .ko path alone, which callers read.
      echo "klab module: installing linux-headers-$release (Debian's headers for the fetched kernel)" >&2
      apt_install "linux-headers-$release"
    fi
    make_args=()
    ;;
  debian-arm64|debian-6.12-arm64)
    version_file=$cache/kernels/$kernel/VERSION
    kver=; [ "$kernel" = debian-arm64 ] || kver=" KVER=6.12"
    [ -f "$version_file" ] || die "kernel $kernel is not fetched yet (make kernel-arm$kver)"
    release=$(sed -n 's/^release=//p' "$version_file")
    kdir=$cache/kernels/$kernel/headers
    [ -f "$kdir/Makefile" ] && grep -q "KERNELRELEASE = $release\$" "$kdir/.kernelvariables" 2>/dev/null \
      || arm64_headers "$release" "$kdir"
    make_args=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
    ;;
  *)
    version_file=$cache/kernels/$kernel/VERSION
    [ -f "$version_file" ] && grep -q '^profile=' "$version_file" \
      || die "unknown kernel '$kernel' (debian-amd64, or a source build: make kernel PROFILE=$kernel)"
    kdir=$cache/kernels/$kernel/build
    # The build folder (O=) holds the objects; its Makefile includes the source tree's, by absolute path.
    tree=$(sed -n 's/^source=//p' "$version_file")
    [ -f "$kdir/source/Makefile" ] \
      || die "kernel $kernel was built from ${tree:-a source tree} that is gone: build it again (make kernel PROFILE=$kernel)"
    make_args=(ARCH="$(sed -n 's/^arch=//p' "$version_file")")
    [ "${make_args[0]}" = ARCH=arm64 ] && make_args+=(CROSS_COMPILE=aarch64-linux-gnu-)
    ;;
esac

[ -z "$prepare" ] || { echo "$kdir"; exit 0; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Copy only the sources (regular files, not links): a stale .o or .ko from elsewhere must not leak into this
# build. Globs and one cp: the module loop runs this on every edit, and each process costs it.
sources=()
shopt -s nullglob dotglob
for f in "$src"/*.c "$src"/*.h "$src"/Kbuild "$src"/Makefile; do
  [ -f "$f" ] && [ ! -L "$f" ] && sources+=("$f")
done
shopt -u nullglob dotglob
if [ "${#sources[@]}" -gt 0 ] && ! err=$(cp -p -- "${sources[@]}" "$out"/ 2>&1); then
  die "copying the sources of $name: ${err%%$'\n'*}"
fi
# The kernel Makefiles' compiler probes answered from OUT_DIR/.probes after the first build (kernels/probe-cache.mk
# says why and how). Its first line names the toolchain it was made with; another toolchain starts it afresh.
# KLAB_PROBE_CACHE=0 builds without it.
probe_env=()
if [ "${KLAB_PROBE_CACHE:-1}" != 0 ]; then
  cross=; for a in "${make_args[@]}"; do case $a in CROSS_COMPILE=*) cross=${a#CROSS_COMPILE=};; esac; done
  # The kernel's Makefile may name a versioned compiler (Debian's headers: CC = gcc-12): every
  # ${cross}gcc-N beside ${cross}gcc is part of the stamp, so installing or upgrading one starts afresh.
  gcc_path=$(command -v "${cross}gcc" || echo "/usr/bin/${cross}gcc")
  stamp="# toolchain $(stat -L --printf '%n:%s:%Y ' "$gcc_path" "${gcc_path%/*}/${cross}"gcc-[0-9]* \
    "$(command -v "${cross}as")" "$(command -v "${cross}ld")" 2>/dev/null || true)"
  db=$out/.probes
  # The cache is this user's own regular file that no one else can write, or it is made again: a link, a
  # folder, another user's file or a group-writable one is not read (a lying cache would change the flags).
  first=
  if [ "$(stat -c '%F %u %a' "$db" 2>/dev/null)" != "regular file $EUID 600" ] \
     || { IFS= read -r first <"$db" || true; [ "$first" != "$stamp" ]; }; then
    rm -rf "$db"
    (umask 077 && printf '%s\n' "$stamp" >"$db")
  fi
  here=.; case ${BASH_SOURCE[0]} in */*) here=${BASH_SOURCE[0]%/*} ;; esac
  here=$(cd "$here" && pwd)
  probe_env=(MAKEFILES="$here/probe-cache.mk${MAKEFILES:+ $MAKEFILES}" KLAB_PROBE_DB="$db")
fi
# Linux 5.16-6.6's Makefile exports PAHOLE_FLAGS as a recursive variable, `$(shell scripts/pahole-flags.sh)`,
# so make runs that script (and pahole --version in it) for every command it starts: 6 times in a rebuild of
# a one-file module (with this script's fewer processes: a rebuild 0.99 s -> 0.92 s here). Its answer depends
# on pahole alone: asked once, given on make's command line, which every sub-make inherits and the Makefile's
# own assignment does not override. (Kbuild's own fix, "kbuild: avoid too many execution of
# scripts/pahole-flags.sh", moved the flags to scripts/Makefile.btf in 6.7.)
# The script is in the source tree: Debian's headers link it under scripts/, a source build's folder (O=)
# names the tree through its `source` link.
flags_sh=$kdir/scripts/pahole-flags.sh
[ -x "$flags_sh" ] || flags_sh=$kdir/source/scripts/pahole-flags.sh
if [ -x "$flags_sh" ]; then
  make_args+=(PAHOLE_FLAGS="$(PAHOLE=pahole "$flags_sh" 2>/dev/null || true)")
fi
if ! env "${probe_env[@]}" make -C "$kdir" M="$out" "${make_args[@]}" modules >"$out/build.log" 2>&1; then
  # the compiler's first error, else make's own (*** ...), else the log's last line
  first=$(grep -m1 -E 'error|Error' "$out/build.log" || grep -m1 -F '***' "$out/build.log" || tail -n1 "$out/build.log")
  die "building $name for $kernel failed: $first (full log: $out/build.log)"
fi
ko=$out/$name.ko
# A folder named otherwise than its module (an exam workspace): the one .ko its Kbuild made.
if [ ! -f "$ko" ] && [ "$(ls "$out"/*.ko 2>/dev/null | wc -l)" -eq 1 ]; then ko=$(ls "$out"/*.ko); fi
[ -f "$ko" ] || die "the build made no $name.ko (full log: $out/build.log)"
echo "$ko"
