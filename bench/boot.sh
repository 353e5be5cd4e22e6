#!/usr/bin/env bash
# Launch → gdb stub listening and launch → init banner, per architecture; medians of RUNS boots (TCG here).
# "Stub listening" is taken when `klab boot --detach` returns (it returns once QEMU's main loop answers) and
# is confirmed by connecting to the port; the banner is taken from the console log by `klab wait`.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 5

for arch in x86_64 arm64; do
  "$KLAB" rootfs --arch $arch -o "$work/$arch.cpio.gz" >/dev/null
  # Warm the one-time costs (kernel pair check, KVM probe memory) outside the timing, as a second boot has them.
  "$KLAB" boot --arch $arch --name warm --initrd "$work/$arch.cpio.gz" --detach >/dev/null 2>&1; "$KLAB" stop warm >/dev/null
  stub=() banner=()
  for i in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    "$KLAB" boot --arch $arch --name b$i --initrd "$work/$arch.cpio.gz" --detach >/dev/null 2>&1
    stub+=("$(ms "$t0")")
    port=$(sed -n 's/^gdb_port=//p' "$KLAB_RUN_DIR/b$i/state")
    (exec 3<>/dev/tcp/127.0.0.1/"$port") || { echo "stub not listening after klab boot returned" >&2; exit 1; }
    "$KLAB" stop b$i >/dev/null
    t0=$(date +%s%N)
    "$KLAB" boot --arch $arch --name n$i --initrd "$work/$arch.cpio.gz" --detach --no-wait >/dev/null 2>&1
    "$KLAB" wait n$i --timeout 60 >/dev/null
    banner+=("$(ms "$t0")")
    "$KLAB" stop n$i >/dev/null
  done
  printf '%-7s launch->stub   median %5s ms  (runs: %s)  goal <= 150 ms\n' $arch \
    "$(printf '%s\n' "${stub[@]}" | median)" "${stub[*]}"
  printf '%-7s launch->banner median %5s ms  (runs: %s)  goal <= 2500 ms\n' $arch \
    "$(printf '%s\n' "${banner[@]}" | median)" "${banner[*]}"
done
