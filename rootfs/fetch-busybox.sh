#!/usr/bin/env bash
# Fetch Debian's busybox-static for the guest architecture and unpack /bin/busybox (nothing is installed:
# the arm64 binary could not run on the host anyway).
#   rootfs/fetch-busybox.sh amd64|arm64 DEST_FILE
set -euo pipefail
die() { echo "klab busybox: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: fetch-busybox.sh amd64|arm64 DEST_FILE"
arch=$1 dest=$2
case "$arch" in amd64|arm64) ;; *) die "unknown architecture '$arch' (amd64 or arm64)";; esac
[ -s "$dest" ] && exit 0
# As root, apt's download sandbox user cannot write into our folders; download as root instead of warning.
apt_opts=()
[ "$(id -u)" -ne 0 ] || apt_opts=(-o APT::Sandbox::User=root)
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "klab busybox: downloading busybox-static:$arch"
(cd "$tmp" && apt-get download -q "${apt_opts[@]}" "busybox-static:$arch") \
  || die "apt-get download busybox-static:$arch failed (run scripts/deps.sh first)"
dpkg-deb --fsys-tarfile "$tmp"/busybox-static_*_"$arch".deb | tar -x -C "$tmp" ./bin/busybox
mv -f "$tmp/bin/busybox" "$dest"
chmod 0755 "$dest"
echo "klab busybox: $dest"
