#!/usr/bin/env bash
# Build gdb's index of a vmlinux's DWARF into klab's index cache ($KLAB_CACHE/gdb-index), which `klab gdb`
# reads from (set index-cache directory). gdb keys the cache by the vmlinux's build-id, so the index is built
# once per kernel, here, when the kernel is fetched or built: the first `klab gdb` then skips the indexing
# (13 s and 1.9 GB of RSS for Debian's 6.1 vmlinux, measured).
#
#   kernels/gdb-index.sh VMLINUX
set -euo pipefail
die() { echo "klab kernels: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: gdb-index.sh VMLINUX"
vmlinux=$1
[ -s "$vmlinux" ] || die "no vmlinux at $vmlinux"
command -v gdb-multiarch >/dev/null || die "gdb-multiarch not found: run scripts/deps.sh"
cache=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}/gdb-index
mkdir -p "$cache"
chmod 700 "$cache"
id=$(readelf -n "$vmlinux" 2>/dev/null | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p' | head -1)
[ -n "$id" ] || die "$vmlinux has no build-id: gdb cannot cache its index"
if ls "$cache"/*"$id"* >/dev/null 2>&1; then
  exit 0
fi
echo "klab kernels: indexing $(basename "$(dirname "$vmlinux")")'s vmlinux for gdb (once)" >&2
t0=$(date +%s)
# Loading the file builds the index, and gdb writes it to the cache before it exits.
gdb-multiarch -q -batch -nx -iex "set auto-load off" -iex "set index-cache directory $cache" \
  -iex "set index-cache enabled on" "$vmlinux" >/dev/null 2>&1 || true
ls "$cache"/*"$id"* >/dev/null 2>&1 || die "gdb wrote no index for $vmlinux into $cache"
echo "klab kernels: gdb index ready ($(( $(date +%s) - t0 )) s)" >&2
