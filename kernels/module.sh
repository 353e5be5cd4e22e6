#!/usr/bin/env bash
# Build an out-of-tree kernel module for one of klab's kernels, without touching the source folder.
#
#   kernels/module.sh MODULE_DIR KERNEL [OUT_DIR]
#
# MODULE_DIR holds the module's .c files and its Kbuild (e.g. labs/hellodrv). KERNEL is a registered
# kernel: a source build (x86_64, arm64-64k, ... from kernels/build.sh: built against its build folder,
# cross-compiled for arm64), or debian-amd64 / debian-6.12-amd64 (against Debian's linux-headers package of the fetched ABI,
# installed here if missing; Debian's arm64 headers carry arm64 host tools, so debian-arm64 cannot be
# built for here). The sources are copied to OUT_DIR (default build/modules/KERNEL/NAME) and built there; the
# .ko path is printed on success. The full make output is kept in OUT_DIR/build.log; a failure prints
# its first error line and names the log.
set -euo pipefail

die() { echo "klab module: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: module.sh MODULE_DIR KERNEL [OUT_DIR] | module.sh --prepare KERNEL"
src=${1%/} kernel=$2
# --prepare KERNEL: only make sure the kernel's build folder is there (Debian's headers installed), and print
# it. The exam grader does this with its own rights before the candidate's build runs sandboxed.
prepare=; [ "$src" = --prepare ] && prepare=1
if [ -z "$prepare" ]; then
  [ -d "$src" ] || die "no module folder $src"
  [ -f "$src/Kbuild" ] || [ -f "$src/Makefile" ] || die "$src has no Kbuild or Makefile"
fi
name=$(basename -- "$src")
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
      sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
      # apt's own chatter (debconf's notes) stays out of the one-line answers; its log is kept for a failure.
      apt_log=$(mktemp)
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "linux-headers-$release" >"$apt_log" 2>&1 \
        || die "apt-get install linux-headers-$release failed: $(grep -m1 -E '^E: ' "$apt_log")"
      rm -f "$apt_log"
    fi
    make_args=()
    ;;
  debian-arm64|debian-6.12-arm64) die "modules for $kernel cannot be built here (Debian's arm64 headers carry arm64 build tools); use a source kernel: make kernel PROFILE=arm64-4k" ;;
  *)
    version_file=$cache/kernels/$kernel/VERSION
    [ -f "$version_file" ] && grep -q '^profile=' "$version_file" \
      || die "unknown kernel '$kernel' (debian-amd64, or a source build: make kernel PROFILE=$kernel)"
    kdir=$cache/kernels/$kernel/build
    make_args=(ARCH="$(sed -n 's/^arch=//p' "$version_file")")
    [ "${make_args[0]}" = ARCH=arm64 ] && make_args+=(CROSS_COMPILE=aarch64-linux-gnu-)
    ;;
esac

[ -z "$prepare" ] || { echo "$kdir"; exit 0; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Copy only the sources: a stale .o or .ko from elsewhere must not leak into this build.
find "$src" -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' -o -name Kbuild -o -name Makefile \) \
  -exec cp -p {} "$out"/ \;
if ! make -C "$kdir" M="$out" "${make_args[@]}" modules >"$out/build.log" 2>&1; then
  first=$(grep -m1 -E 'error|Error' "$out/build.log" || tail -n1 "$out/build.log")
  die "building $name for $kernel failed: $first (full log: $out/build.log)"
fi
ko=$out/$name.ko
# A folder named otherwise than its module (an exam workspace): the one .ko its Kbuild made.
if [ ! -f "$ko" ] && [ "$(ls "$out"/*.ko 2>/dev/null | wc -l)" -eq 1 ]; then ko=$(ls "$out"/*.ko); fi
[ -f "$ko" ] || die "the build made no $name.ko (full log: $out/build.log)"
echo "$ko"
