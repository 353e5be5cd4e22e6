#!/usr/bin/env bash
# Fetch Debian's prebuilt cloud kernel for one architecture together with its debug vmlinux, without
# installing anything: `apt-get download` the -unsigned image and the -dbg package of the newest ABI the
# mirror carries both of, then unpack only the files klab needs with `dpkg-deb --fsys-tarfile | tar -x`.
#
#   kernels/fetch-debian.sh amd64|arm64 DEST_DIR [KLAB_BINARY] [SERIES]
#
# SERIES is the kernel generation, 6.1 (default: linux-image-6.1.0-N-cloud-*) or 6.12
# (linux-image-6.12.N+deb12-cloud-*, Debian 12's newer kernels).
#
# DEST_DIR ends up with: vmlinuz, vmlinux, config, System.map, VERSION (ABI and package version), and
# modules/: the virtio block driver and what it needs (Debian builds them as modules), uncompressed, with
# load.order, for `klab boot --swap`.
# Already-fetched kernels of the same ABI are kept as they are. With KLAB_BINARY the pair is verified
# (`klab inspect`: the image's banner must equal linux_banner in vmlinux) before it is declared ready.
set -euo pipefail

die() { echo "klab kernels: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
# What the gdb side needs of a fetched kernel, once: its DWARF index (the first `klab gdb` is then fast) and
# Debian's source of the same version unpacked (source lines in gdb; kernels/build.sh --source).
for_gdb() {
  cd "$dest"   # the download folder is gone by now
  bash "$here/gdb-index.sh" "$dest/vmlinux"
  bash "$here/build.sh" --source "$series" >/dev/null
}
# The virtio block driver for `klab boot --swap`, from the image package: virtio_blk and the virtio core and
# PCI transport where this kernel builds them as modules, decompressed (6.12's are .ko.xz), in load order
# (each after the modules `modinfo -F depends` names).
# And qemu_fw_cfg, which hands the kernel's VMCOREINFO to QEMU's vmcoreinfo device for dumps
# (vm/machine/vmcoreinfo.h), into modules/fw_cfg/ when the kernel builds it as a module. And virtio_console
# for the snapshot file channel (vm/machine/file_channel.h) in load.order when it is a module.
fw_cfg_wanted() { grep -qx CONFIG_FW_CFG_SYSFS=m "$dest/config"; }
console_module() { grep -qx 'CONFIG_VIRTIO_CONSOLE=m' "$dest/config"; }
modules_done() {
  [ -f "$dest/modules/load.order" ] && grep -qx "# $release" "$dest/modules/load.order" \
    && { ! console_module || grep -qx virtio_console.ko "$dest/modules/load.order"; } \
    && { ! fw_cfg_wanted || [ -f "$dest/modules/fw_cfg/qemu_fw_cfg.ko" ]; }
}
modules() {
  local deb=$1 out="$dest/modules" tmpm
  modules_done && return 0
  tmpm=$(mktemp -d "$dest/.modules.XXXXXX")
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmpm" --wildcards \
    "./lib/modules/$release/kernel/drivers/virtio/*" "./lib/modules/$release/kernel/drivers/block/virtio_blk.ko*" \
    "./lib/modules/$release/kernel/drivers/firmware/qemu_fw_cfg.ko*" \
    "./lib/modules/$release/kernel/drivers/char/virtio_console.ko*" 2>/dev/null || true
  find "$tmpm" -name '*.ko.xz' -exec xz -d {} +
  rm -rf "$out" && mkdir -p "$out"
  local order=()
  # add NAME [dep]: NAME after what it depends on; a top-level module that is not there is built in.
  add() {
    local m=$1 f d
    [[ " ${order[*]} " == *" $m "* ]] && return 0
    f=$(find "$tmpm" -name "$m.ko" | head -n 1)
    if [ -z "$f" ]; then
      [ -z "${2:-}" ] || die "$release: a virtio module needs $m, which is not in drivers/virtio"
      grep -qx "CONFIG_$(echo "$m" | tr a-z A-Z)=y" "$dest/config" || die "$release has no $m (module or built in)"
      return 0
    fi
    for d in $("$modinfo" -F depends "$f" | tr , ' '); do add "$d" dep; done
    cp "$f" "$out/" && order+=("$m")
  }
  add virtio_blk
  add virtio_pci
  # klab boot --snapshot's file channel (vm/machine/file_channel.h): virtio-serial.
  ! console_module || add virtio_console
  if fw_cfg_wanted; then
    local fw
    fw=$(find "$tmpm" -name qemu_fw_cfg.ko | head -n 1)
    [ -n "$fw" ] || die "$release builds qemu_fw_cfg as a module and its image package has none"
    [ -z "$("$modinfo" -F depends "$fw")" ] || die "$release's qemu_fw_cfg needs other modules: $("$modinfo" -F depends "$fw")"
    mkdir -p "$out/fw_cfg" && cp "$fw" "$out/fw_cfg/"
  fi
  rm -rf "$tmpm"
  { echo "# $release"; printf '%s.ko\n' "${order[@]}"; } > "$out/load.order"
}
modinfo=$(command -v modinfo || echo /usr/sbin/modinfo)

[ $# -ge 2 ] || die "usage: fetch-debian.sh amd64|arm64 DEST_DIR [KLAB_BINARY] [SERIES]"
arch=$1 dest=$2 klab=${3:-} series=${4:-6.1}
case "$series" in 6.1|6.12) ;; *) die "unknown kernel series '$series' (6.1 or 6.12)";; esac
# The script changes folder below: make both paths absolute first (a relative build/klab was lost on the
# first fetch of a fresh machine, after the download).
if [ -n "$klab" ]; then
  [ -x "$klab" ] || die "no klab program at $klab (make build/klab first)"
  klab=$(cd "$(dirname "$klab")" && pwd)/$(basename "$klab")
fi
mkdir -p "$dest" && dest=$(cd "$dest" && pwd)
case "$arch" in amd64|arm64) ;; *) die "unknown architecture '$arch' (amd64 or arm64)";; esac
command -v apt-cache >/dev/null || die "apt-cache not found: this fetcher needs Debian's apt"

flavour="cloud-$arch"
# The newest release of the series with both linux-image-<release>-<flavour>-unsigned and -dbg for this arch:
# 6.1.0-N (6.1) or 6.12.N+deb12 (6.12).
esc=${series//./\\.}
abi=$(apt-cache pkgnames "linux-image-$series." 2>/dev/null \
      | sed -n "s/^linux-image-\($esc\.[0-9][^-]*\(-[0-9][0-9]*\)\{0,1\}\)-$flavour-dbg\$/\1/p" | sort -V -u \
      | while read -r a; do
          apt-cache show "linux-image-$a-$flavour-unsigned:$arch" >/dev/null 2>&1 &&
          apt-cache show "linux-image-$a-$flavour-dbg:$arch" >/dev/null 2>&1 && echo "$a"
        done | tail -n 1)
[ -n "$abi" ] || die "no linux-image-$series.*-$flavour-unsigned/-dbg pair on the mirror (run scripts/deps.sh: it adds arm64 and runs apt-get update)"
release="$abi-$flavour"

# download PKG: PKG's .deb for this arch into $dest/.debs (kept while this run needs it). As root, apt's
# download sandbox user cannot write into our folders; download as root instead of warning.
apt_opts=()
[ "$(id -u)" -ne 0 ] || apt_opts=(-o APT::Sandbox::User=root)
download() {
  mkdir -p "$dest/.debs"
  ls "$dest/.debs/$1"_*_"$arch".deb >/dev/null 2>&1 && return 0
  echo "klab kernels: downloading $1 ($arch)"
  (cd "$dest/.debs" && apt-get download -q "${apt_opts[@]}" "$1:$arch") || die "apt-get download $1:$arch failed"
}

if [ -f "$dest/VERSION" ] && grep -qx "release=$release" "$dest/VERSION" \
   && [ -s "$dest/vmlinuz" ] && [ -s "$dest/vmlinux" ]; then
  echo "klab kernels: $release already in $dest"
  if ! modules_done; then
    download "linux-image-$release-unsigned"   # a kernel fetched before the modules were unpacked
    modules "$(ls "$dest/.debs/linux-image-$release-unsigned_"*"_$arch.deb")"
    rm -rf "$dest/.debs"
  fi
  for_gdb
  exit 0
fi

download "linux-image-$release-unsigned"
download "linux-image-$release-dbg"
cd "$dest/.debs"
image_deb=$(ls linux-image-"$release"-unsigned_*_"$arch".deb)
dbg_deb=$(ls linux-image-"$release"-dbg_*_"$arch".deb)
version=$(dpkg-deb -f "$image_deb" Version)

echo "klab kernels: unpacking $release"
tmp=$(mktemp -d "$dest/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$image_deb" | tar -x -C "$tmp" \
  "./boot/vmlinuz-$release" "./boot/config-$release" "./boot/System.map-$release"
dpkg-deb --fsys-tarfile "$dbg_deb" | tar -x -C "$tmp" "./usr/lib/debug/boot/vmlinux-$release"
mv -f "$tmp/boot/vmlinuz-$release" "$dest/vmlinuz"
mv -f "$tmp/boot/config-$release" "$dest/config"
mv -f "$tmp/boot/System.map-$release" "$dest/System.map"
mv -f "$tmp/usr/lib/debug/boot/vmlinux-$release" "$dest/vmlinux"

if [ -n "$klab" ]; then
  "$klab" inspect --kernel "$dest/vmlinuz" --vmlinux "$dest/vmlinux" >/dev/null \
    || die "the image and vmlinux of $release do not match; refusing them"
fi
modules "$dest/.debs/$image_deb"
printf 'release=%s\npackage_version=%s\narch=%s\n' "$release" "$version" "$arch" > "$dest/VERSION"
rm -rf "$dest/.debs"
echo "klab kernels: $release ready in $dest"
for_gdb
