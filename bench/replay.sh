#!/usr/bin/env bash
# Record/replay's cost (klab boot --record, klab replay), per architecture, medians of RUNS: launch -> init
# banner of a plain TCG boot with one CPU, of the same boot recorded, and of its replay (launched paused, then
# continued at once); and the recording's size. One CPU for all three: a recording runs one.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 3

# ms until the console log of VM $1 shows the banner (the replay's run state ends with QEMU: poll the log).
banner_ms() {
  local t0=$2 log=$KLAB_RUN_DIR/$1/console.log
  for _ in $(seq 6000); do
    grep -aq 'klab: init ready, kernel ' "$log" 2>/dev/null && { ms "$t0"; return; }
    sleep 0.05
  done
  echo "no banner from $1" >&2; exit 1
}

for arch in x86_64 arm64; do
  "$KLAB" rootfs --arch $arch -o "$work/$arch.cpio.gz" >/dev/null
  plain=() rec=() rep=() size=()
  for i in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    "$KLAB" boot --arch $arch --name p$i --smp 1 --initrd "$work/$arch.cpio.gz" --no-wait --detach >/dev/null 2>&1
    plain+=("$(banner_ms p$i "$t0")")
    "$KLAB" stop p$i >/dev/null
    t0=$(date +%s%N)
    "$KLAB" boot --arch $arch --name r$i --record "$work/rec-$arch-$i" --initrd "$work/$arch.cpio.gz" --no-wait --detach >/dev/null 2>&1
    rec+=("$(banner_ms r$i "$t0")")
    sleep 1
    "$KLAB" stop r$i >/dev/null
    size+=("$(du -k "$work/rec-$arch-$i/replay.bin" | cut -f1)")
    t0=$(date +%s%N)
    "$KLAB" replay "$work/rec-$arch-$i" --name q$i --no-wait --detach >/dev/null 2>&1
    rep+=("$(banner_ms q$i "$t0")")
    "$KLAB" stop q$i >/dev/null 2>&1 || true
  done
  printf '%-7s plain TCG boot (1 CPU) -> banner  median %6s ms  (runs: %s)\n' $arch "$(printf '%s\n' "${plain[@]}" | median)" "${plain[*]}"
  printf '%-7s recorded boot -> banner           median %6s ms  (runs: %s)\n' $arch "$(printf '%s\n' "${rec[@]}" | median)" "${rec[*]}"
  printf '%-7s replay -> banner                  median %6s ms  (runs: %s)\n' $arch "$(printf '%s\n' "${rep[@]}" | median)" "${rep[*]}"
  printf '%-7s recording to the banner + 1 s     median %6s KiB of events\n' $arch "$(printf '%s\n' "${size[@]}" | median)"
done
