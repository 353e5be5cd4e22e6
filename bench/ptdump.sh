#!/usr/bin/env bash
# A full page-table dump (both halves, every table) of a booted Debian kernel, per architecture and paging
# mode, from the guest RAM file and through the gdb stub. The walk alone is timed by `klab ptdump --repeat`
# (median); printing is excluded. Goals (RAM file): x86_64 <= 6 ms, arm64 <= 45 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 5
REPEAT=${REPEAT:-51}
walk_ms() { sed -n 's/.*walk \([0-9.]*\) ms.*/\1/p'; }

echo "full page-table dump (median walk time; tables read once each)"
printf '  %-22s %10s %10s %8s %8s %9s %7s\n' kernel "RAM file" "gdb stub" tables leaves entries ranges
for spec in x86_64:max x86_64:qemu64 arm64:; do
  arch=${spec%%:*} cpu=${spec#*:}
  "$KLAB" rootfs --arch "$arch" -o "$work/$arch.cpio.gz" >/dev/null
  "$KLAB" boot --arch "$arch" --name d --initrd "$work/$arch.cpio.gz" ${cpu:+--cpu "$cpu"} --detach --no-wait >/dev/null 2>&1
  "$KLAB" wait d --timeout 120 >/dev/null
  sleep 1   # let the shell settle: the dump then describes an idle system
  ram=$("$KLAB" ptdump --vm d --quiet --repeat "$REPEAT" 2>&1 >/dev/null)
  stub=$("$KLAB" ptdump --vm d --quiet --via-stub --repeat 5 2>&1 >/dev/null)
  read -r tables leaves entries ranges < <(echo "$ram" | sed -n \
    's/.*: \([0-9]*\) tables.*, \([0-9]*\) entries, \([0-9]*\) leaves, \([0-9]*\) ranges.*/\1 \3 \2 \4/p')
  printf '  %-22s %7s ms %7s ms %8s %8s %9s %7s\n' "$arch${cpu:+ -cpu $cpu}" "$(echo "$ram" | walk_ms)" \
    "$(echo "$stub" | walk_ms)" "$tables" "$leaves" "$entries" "$ranges"
  "$KLAB" stop d >/dev/null
done
echo "  goals from the RAM file: x86_64 <= 6 ms, arm64 <= 45 ms (the fastest gdb plugin: 65 ms / 491 ms)"
