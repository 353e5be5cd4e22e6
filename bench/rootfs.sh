#!/usr/bin/env bash
# klab rootfs vs `find . | cpio -o -H newc | gzip` on the same tree (the tree klab's own image holds).
# Medians of RUNS builds; sizes in bytes. Goal: >= 5x faster at equal or smaller size.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 11

for arch in x86_64 arm64; do
  "$KLAB" rootfs --arch $arch --compress none -o "$work/ref.cpio" >/dev/null
  mkdir -p "$work/tree-$arch" && (cd "$work/tree-$arch" && cpio -idm --quiet < "$work/ref.cpio" 2>/dev/null)
  "$KLAB" rootfs --arch $arch -o "$work/warm.cpio.gz" >/dev/null   # fills the segment cache
  klab_warm=() klab_cold=() baseline=()
  for i in $(seq "$RUNS"); do
    t0=$(date +%s%N); "$KLAB" rootfs --arch $arch -o "$work/k.cpio.gz" >/dev/null; klab_warm+=("$(ms "$t0")")
    t0=$(date +%s%N); "$KLAB" rootfs --arch $arch --no-cache -o "$work/kc.cpio.gz" >/dev/null; klab_cold+=("$(ms "$t0")")
    t0=$(date +%s%N); (cd "$work/tree-$arch" && find . | cpio -o -H newc --quiet | gzip > "$work/b.cpio.gz"); baseline+=("$(ms "$t0")")
  done
  w=$(printf '%s\n' "${klab_warm[@]}" | median) c=$(printf '%s\n' "${klab_cold[@]}" | median)
  b=$(printf '%s\n' "${baseline[@]}" | median)
  printf '%-7s find|cpio|gzip %7s ms %8d bytes\n' $arch "$b" "$(stat -c %s "$work/b.cpio.gz")"
  printf '%-7s klab rootfs    %7s ms %8d bytes  (%sx faster; segment cache warm)\n' $arch "$w" \
    "$(stat -c %s "$work/k.cpio.gz")" "$(echo "scale=1; $b / $w" | bc)"
  printf '%-7s klab --no-cache %6s ms %8d bytes  (%sx; every segment compressed, level 9)\n' $arch "$c" \
    "$(stat -c %s "$work/kc.cpio.gz")" "$(echo "scale=1; $b / $c" | bc)"
done
