#!/usr/bin/env bash
# The module lab loop, seed 002 in one command each: edit one line of hellodrv -> module rebuilt -> image
# repacked -> VM booted -> guest insmods and opens /dev/myhello -> gdb stops in hello_open. Timed per phase,
# median of RUNS loops, per source profile (PROFILES, default arm64-64k x86_64; each built first, cached).
# Goal: <= 8 s per loop on TCG. Then the loop with gdb kept (a snapshot's VM, `klab reset` inside one gdb after
# each rebuild, bench/loop_reset.py): goal <= 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 3
PROFILES=${PROFILES:-arm64-64k x86_64}

for profile in $PROFILES; do
  bash kernels/build.sh "$profile" >/dev/null
  mkdir -p "$work/hellodrv"
  cp labs/hellodrv/* "$work/hellodrv/"
  out=$work/build-$profile
  bash kernels/module.sh "$work/hellodrv" "$profile" "$out" >/dev/null      # the first build is not the loop
  build=() boot=() hit=() total=()
  for i in $(seq "$RUNS"); do
    sed -i "s/myhello open[^,]*,/myhello open (edit $i),/" "$work/hellodrv/hellodrv.c"   # the one-line edit
    t0=$(date +%s%N)
    bash kernels/module.sh "$work/hellodrv" "$profile" "$out" >/dev/null
    build+=("$(ms "$t0")")
    t1=$(date +%s%N)
    # klab boot packs the image (busybox + the module + the --run hook) and starts QEMU paused.
    "$KLAB" boot --kernel "$profile" --name loop$i --add "$out/hellodrv.ko:/lib/modules/hellodrv.ko" \
      --run 'insmod /lib/modules/hellodrv.ko' --run 'cat /dev/myhello' --detach >/dev/null 2>&1
    boot+=("$(ms "$t1")")
    t2=$(date +%s%N)
    KLAB_MODULE_PATH=$out "$KLAB" gdb loop$i --no-start --batch -ex 'break hello_open' -ex continue \
      -ex 'info symbol $pc' >"$work/gdb.out" 2>&1
    grep -q '^hello_open in section' "$work/gdb.out" || { echo "loop $i: gdb did not stop in hello_open" >&2; tail -5 "$work/gdb.out" >&2; exit 1; }
    hit+=("$(ms "$t2")")
    total+=("$(ms "$t0")")
    "$KLAB" stop loop$i >/dev/null
  done
  printf 'module loop %-10s edit->rebuilt %5s ms  image+QEMU up %5s ms  boot->insmod->break hello_open %5s ms  total %5s ms (median of %s; goal 8000)\n' \
    "$profile" "$(printf '%s\n' "${build[@]}" | median)" "$(printf '%s\n' "${boot[@]}" | median)" \
    "$(printf '%s\n' "${hit[@]}" | median)" "$(printf '%s\n' "${total[@]}" | median)" "$RUNS"
  # The same loop as a developer keeps it: the VM restored from its snapshot, one gdb, `klab reset` in it after
  # each rebuild (bench/loop_reset.py; the first boot saves the snapshot and is not the loop).
  mkdir -p -m 700 "$work/snaps"
  "$KLAB" boot --kernel "$profile" --snapshot --snapshot-dir "$work/snaps" --name kept-$profile --detach \
    --add "$out/hellodrv.ko:/lib/modules/hellodrv.ko" --run 'insmod /lib/modules/hellodrv.ko' \
    --run 'cat /dev/myhello' >/dev/null 2>&1
  RUNS=$RUNS LOOP_SRC=$work/hellodrv LOOP_OUT_DIR=$out LOOP_KERNEL=$profile LOOP_OUT=$work/kept.txt \
    KLAB_MODULE_PATH=$out "$KLAB" gdb kept-$profile --no-start --batch -ex "source bench/loop_reset.py" \
    >"$work/kept.out" 2>&1 || { echo "$profile: the loop with gdb kept failed:" >&2; tail -5 "$work/kept.out" >&2; exit 1; }
  col() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$work/kept.txt" | median; }
  printf 'module loop %-10s gdb kept: edit->rebuilt %5s ms, then klab reset in gdb %5s ms, continue->break hello_open %5s ms: total %5s ms (median of %s)\n' \
    "$profile" "$(col seq 2)" "$(col seq 3)" "$(col seq 4)" "$(col seq 5)" "$RUNS"
  printf 'module loop %-10s gdb kept: edit, klab reset --build (rebuilt while restored) %5s ms, continue->break hello_open %5s ms: total %5s ms (median of %s; goal 1000)\n' \
    "$profile" "$(col overlap 3)" "$(col overlap 4)" "$(col overlap 5)" "$RUNS"
  "$KLAB" stop kept-$profile >/dev/null
done
