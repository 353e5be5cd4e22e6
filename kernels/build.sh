#!/usr/bin/env bash
# Build a lab kernel from source and register it next to the fetched Debian ones.
#
#   kernels/build.sh PROFILE            (make kernel PROFILE=...)
#   KSRC=/path/to/linux kernels/build.sh PROFILE
#   KLAB_EXTRA_CONFIG=my.config kernels/build.sh PROFILE     (your own fragment, merged last)
#
# PROFILE: x86_64 | arm64-4k | arm64-16k | arm64-64k | arm64-64k-52 (kernels/configs/*.config on top of
# tinyconfig). Source: $KSRC, else Debian's linux-source-6.1 unpacked once into the cache. The build is out
# of tree (O=) in $KLAB_CACHE/kernels/PROFILE/build and kept: an unchanged profile and source is not rebuilt,
# a changed one rebuilds incrementally. Registered as $KLAB_CACHE/kernels/PROFILE/{vmlinuz,vmlinux,config,
# VERSION}, so `klab boot --kernel PROFILE` and `make vm-arm KERNEL=PROFILE` find it; vmlinux-gdb.py (the
# kernel's lx-* commands) sits beside the build's vmlinux. Progress goes to stdout; the full make output to
# build.log, named with the first error when a step fails.
set -euo pipefail

die() { echo "klab kernel: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || die "usage: build.sh x86_64|arm64-4k|arm64-16k|arm64-64k|arm64-64k-52 | --source [6.1|6.12]"
profile=$1
# --source [SERIES]: only make sure Debian's linux-source-SERIES (6.1 by default) is installed and unpacked,
# and print its folder (klab gdb reads a Debian kernel's source lines there).
source_only= series=${KVER:-6.1}
if [ "$profile" = --source ]; then source_only=1 profile=x86_64 series=${2:-$series}; fi
case "$series" in 6.1|6.12) ;; *) die "unknown kernel series '$series' (6.1 or 6.12)" ;; esac
case $profile in
  x86_64) arch=x86_64 karch=x86 cross= image=arch/x86/boot/bzImage target=bzImage ;;
  arm64-4k|arm64-16k|arm64-64k|arm64-64k-52)
    arch=arm64 karch=arm64 cross=aarch64-linux-gnu- image=arch/arm64/boot/Image target=Image ;;
  *) die "unknown profile '$profile' (x86_64, arm64-4k, arm64-16k, arm64-64k, arm64-64k-52)" ;;
esac
fragments=("$here/configs/common.config" "$here/configs/$arch.config")
[ -f "$here/configs/$profile.config" ] && [ "$profile" != "$arch" ] && fragments+=("$here/configs/$profile.config")
if [ -n "${KLAB_EXTRA_CONFIG:-}" ]; then
  [ -f "$KLAB_EXTRA_CONFIG" ] || die "KLAB_EXTRA_CONFIG=$KLAB_EXTRA_CONFIG not found"
  fragments+=("$(cd "$(dirname "$KLAB_EXTRA_CONFIG")" && pwd)/$(basename "$KLAB_EXTRA_CONFIG")")
fi

if [ -n "$cross" ] && ! command -v "${cross}gcc" >/dev/null; then
  die "cross compiler ${cross}gcc not found: run scripts/deps.sh (Debian package gcc-aarch64-linux-gnu)"
fi
for tool in flex bison bc; do
  command -v $tool >/dev/null || die "$tool not found: run scripts/deps.sh"
done

cache=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}
dest=$cache/kernels/$profile
out=$dest/build
log=$dest/build.log
mkdir -p "$out"

# The source: the user's tree, or Debian's linux-source-$series unpacked once.
if [ -n "${KSRC:-}" ]; then
  src=$(cd "$KSRC" 2>/dev/null && pwd) || die "KSRC=$KSRC is not a folder"
  [ -f "$src/Makefile" ] && [ -d "$src/arch/$karch" ] || die "KSRC=$KSRC is not a kernel source tree"
  [ ! -f "$src/.config" ] || die "KSRC=$src has a .config: an out-of-tree build (O=) needs a clean tree (make mrproper there)"
else
  tarball=/usr/src/linux-source-$series.tar.xz
  if [ ! -f "$tarball" ]; then
    echo "klab kernel: installing linux-source-$series (Debian's kernel source)" >&2
    sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "linux-source-$series" >/dev/null \
      || die "apt-get install linux-source-$series failed"
  fi
  src=$cache/src/linux-source-$series
  stamp="$(stat -c '%s %Y' "$tarball")"
  if [ ! -f "$src/.klab-unpacked" ] || [ "$(cat "$src/.klab-unpacked")" != "$stamp" ]; then
    echo "klab kernel: unpacking $tarball (once)" >&2
    rm -rf "$src" && mkdir -p "$cache/src"
    tar -xJf "$tarball" -C "$cache/src" || die "cannot unpack $tarball"
    echo "$stamp" >"$src/.klab-unpacked"
  fi
  # Which Debian version this tree is (klab gdb maps a Debian kernel's source lines only to its own version).
  dpkg-query -W -f='${Version}\n' "linux-source-$series" >"$src/.klab-version" 2>/dev/null || rm -f "$src/.klab-version"
fi

[ -z "$source_only" ] || { echo "$src"; exit 0; }
make_k=(make -C "$src" O="$out" ARCH="$karch" ${cross:+CROSS_COMPILE=$cross} -j"$(nproc)")
step() { # step N TEXT CMD...: run CMD into the log; on failure, one line naming the first error and the log
  local n=$1 text=$2; shift 2
  echo "klab kernel: [$n/4] $text"
  if ! "$@" >>"$log" 2>&1; then
    local first
    first=$(grep -m1 -E '(error|Error)[: ]' "$log" || tail -n1 "$log")
    die "$profile: $text failed: $first (full log: $log)"
  fi
}

# What this build is made of: skip everything when neither the source nor a fragment changed.
identity=$( (echo "$src"; [ -f "$src/.klab-unpacked" ] && cat "$src/.klab-unpacked"; \
             [ -n "${KSRC:-}" ] && (cd "$src" && git rev-parse HEAD 2>/dev/null; true); cat "${fragments[@]}") | sha256sum | cut -c1-16)
if [ -f "$dest/VERSION" ] && grep -qx "identity=$identity" "$dest/VERSION" && [ -s "$out/$image" ] && [ -s "$out/vmlinux" ]; then
  echo "klab kernel: $profile is built ($(sed -n 's/^release=//p' "$dest/VERSION")) in $out"
  bash "$here/gdb-index.sh" "$out/vmlinux"
  exit 0
fi

: >"$log"
step 1 "configuring (tinyconfig + ${fragments[*]##*/})" "${make_k[@]}" tinyconfig
step 1 "merging the fragments" "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}"
step 1 "resolving dependencies (olddefconfig)" "${make_k[@]}" olddefconfig
# Refuse a .config that lost a fragment line (an unmet dependency drops it silently).
lost=()
while IFS= read -r line; do
  case $line in
    CONFIG_*=*) grep -qx -- "$line" "$out/.config" || lost+=("$line") ;;
    "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
      grep -q "^$opt=" "$out/.config" && lost+=("$line") ;;
  esac
done < <(cat "${fragments[@]}")
[ ${#lost[@]} -eq 0 ] || die "$profile: these fragment lines did not survive into .config: ${lost[*]} (see $out/.config)"

step 2 "building $target and vmlinux (make -j$(nproc); output in $log)" "${make_k[@]}" "$target" vmlinux
step 3 "preparing for out-of-tree modules" "${make_k[@]}" modules_prepare
step 4 "building the kernel's gdb scripts (scripts_gdb)" "${make_k[@]}" scripts_gdb

release=$(cat "$out/include/config/kernel.release")
ln -sfn "build/$image" "$dest/vmlinuz"
ln -sfn build/vmlinux "$dest/vmlinux"
cp "$out/.config" "$dest/config"
printf 'release=%s\nprofile=%s\nsource=%s\nidentity=%s\narch=%s\n' "$release" "$profile" "$src" "$identity" "$arch" \
  >"$dest/VERSION"
echo "klab kernel: $profile built: $release, $(du -h "$out/$image" | cut -f1) $target in $dest"
bash "$here/gdb-index.sh" "$out/vmlinux"
