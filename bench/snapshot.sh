#!/usr/bin/env bash
# Snapshots (klab boot --snapshot), per architecture on its Debian kernel, medians of RUNS:
#   save          the first boot of the machine: a cold boot to the shell, saved, then restored
#   restore       launch -> the shell answers a command (klab boot --snapshot --no-wait --detach, then the
#                 console computes $((N+1))): goal <= 300 ms
#   reset         klab reset -> the shell answers: goal <= 300 ms
#   size          what the snapshot takes on disk for a 1 GiB guest at its shell (RAM image allocated + state)
# and the module loop on x86_64 (seed 002's hellodrv against Debian's headers):
#   rebuilt       one-line edit -> hellodrv.ko rebuilt (kernels/module.sh; kbuild's own time, not klab's)
#   loaded        launch -> restored, the .ko added, insmod'ed and /dev/myhello opened (--run): goal <= 1000 ms
#   gdb stop      launch -> restored paused with the .ko, `klab gdb` attached, break hello_open hit
#   gdb kept      (both arches) the whole loop in one gdb (bench/loop_reset.py): edit -> rebuilt -> `klab
#                 reset` inside gdb -> continue -> break hello_open hits in the new module: goal <= 1000 ms
# PARTS (default "snapshot loop kept"): which of the three to run: the per-arch snapshot figures, the module
# loop with a new gdb each time, the module loop with gdb kept.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 5
PARTS=${PARTS:-snapshot loop kept}
part() { [[ " $PARTS " == *" $1 "* ]]; }
snaps=$work/snaps
mkdir -m 700 "$snaps"
boot() { "$KLAB" boot --snapshot-dir "$snaps" "$@" >/dev/null 2>&1; }
answers() { $PY bench/shell_ready.py "$KLAB_RUN_DIR/$1/console.sock" 60; }

for arch in $(part snapshot && echo x86_64 arm64); do
  t0=$(date +%s%N)
  boot --arch $arch --name save-$arch --no-wait --detach
  answers save-$arch
  save=$(ms "$t0")
  restore=() reset=()
  for i in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    boot --arch $arch --name r$i --no-wait --detach
    answers r$i
    restore+=("$(ms "$t0")")
    t0=$(date +%s%N)
    "$KLAB" reset r$i >/dev/null
    answers r$i
    reset+=("$(ms "$t0")")
    "$KLAB" stop r$i >/dev/null
  done
  "$KLAB" stop save-$arch >/dev/null
  slot=$(grep -l "qemu-system-$([ $arch = arm64 ] && echo aarch64 || echo x86_64)" "$snaps"/*/manifest | head -1)
  slot=${slot%/manifest}
  printf '%-7s snapshot: first boot (cold + save + restore) -> shell %6s ms\n' $arch "$save"
  printf '%-7s snapshot: restore -> shell answers  median %5s ms  (runs: %s)  goal <= 300 ms\n' $arch \
    "$(printf '%s\n' "${restore[@]}" | median)" "${restore[*]}"
  printf '%-7s snapshot: klab reset -> shell answers median %5s ms  (runs: %s)  goal <= 300 ms\n' $arch \
    "$(printf '%s\n' "${reset[@]}" | median)" "${reset[*]}"
  printf '%-7s snapshot: size for a 1 GiB guest at its shell: RAM image %s MiB allocated, device state %s KiB\n' $arch \
    "$(( $(du -k "$slot/ram" | cut -f1) / 1024 ))" "$(( $(stat -c %s "$slot/state") / 1024 ))"
done

# The module loop on the Debian x86_64 kernel.
mkdir -p "$work/hellodrv"
cp labs/hellodrv/* "$work/hellodrv/"
out=$work/hello
bash kernels/module.sh "$work/hellodrv" debian-amd64 "$out" >/dev/null   # the first build is not the loop
ko=$out/hellodrv.ko
boot --arch x86_64 --name warm --no-wait --detach --add "$ko:/lib/modules/"   # saves the base machine once
"$KLAB" stop warm >/dev/null
rebuilt=() loaded=() stopped=()
for i in $(part loop && seq "$RUNS"); do
  sed -i "s/myhello open[^,]*,/myhello open (edit $i),/" "$work/hellodrv/hellodrv.c"
  t0=$(date +%s%N)
  bash kernels/module.sh "$work/hellodrv" debian-amd64 "$out" >/dev/null
  rebuilt+=("$(ms "$t0")")
  t0=$(date +%s%N)
  boot --arch x86_64 --name m$i --no-wait --detach --add "$ko:/lib/modules/" \
    --run 'insmod /lib/modules/hellodrv.ko' --run 'cat /dev/myhello >/dev/null'
  until grep -aq "myhello open (edit $i)" "$KLAB_RUN_DIR/m$i/console.log"; do sleep 0.005; done
  loaded+=("$(ms "$t0")")
  "$KLAB" stop m$i >/dev/null
  t0=$(date +%s%N)
  boot --arch x86_64 --name g$i --detach --add "$ko:/lib/modules/" \
    --run 'insmod /lib/modules/hellodrv.ko' --run 'cat /dev/myhello'
  KLAB_MODULE_PATH=$out "$KLAB" gdb g$i --no-start --batch -ex 'break hello_open' -ex continue \
    -ex 'info symbol $pc' >"$work/gdb.out" 2>&1
  grep -q '^hello_open in section' "$work/gdb.out" || { echo "loop $i: gdb did not stop in hello_open" >&2; tail -5 "$work/gdb.out" >&2; exit 1; }
  stopped+=("$(ms "$t0")")
  "$KLAB" stop g$i >/dev/null
done
part loop && printf 'module loop x86_64 (snapshot): edit->rebuilt %5s ms (kbuild)  launch->insmod+open %5s ms (goal <= 1000)  launch->gdb stops in hello_open %5s ms (median of %s)\n' \
  "$(printf '%s\n' "${rebuilt[@]}" | median)" "$(printf '%s\n' "${loaded[@]}" | median)" \
  "$(printf '%s\n' "${stopped[@]}" | median)" "$RUNS"

# The loop as a developer runs it, gdb kept: per arch one paused VM, one klab gdb, RUNS edits
# (bench/loop_reset.py).
part kept || exit 0
for arch in x86_64 arm64; do
  kernel=debian-amd64; [ $arch = arm64 ] && kernel=debian-arm64
  src=$work/kept-src-$arch build=$work/kept-$arch
  mkdir -p "$src"
  cp labs/hellodrv/* "$src/"
  bash kernels/module.sh "$src" $kernel "$build" >/dev/null
  boot --arch $arch --kernel $kernel --name kept-$arch --detach --add "$build/hellodrv.ko:/lib/modules/" \
    --run 'insmod /lib/modules/hellodrv.ko' --run 'cat /dev/myhello'
  RUNS=$RUNS LOOP_SRC=$src LOOP_OUT_DIR=$build LOOP_KERNEL=$kernel LOOP_OUT=$work/kept-$arch.txt \
    KLAB_MODULE_PATH=$build "$KLAB" gdb kept-$arch --no-start --batch -ex "source bench/loop_reset.py" \
    >"$work/kept-$arch.out" 2>&1 \
    || { echo "module loop with gdb kept failed on $arch:" >&2; tail -5 "$work/kept-$arch.out" >&2; exit 1; }
  "$KLAB" wait kept-$arch --for "myhello open (loop $((2 * RUNS)))" --timeout 60 >/dev/null \
    || { echo "module loop with gdb kept: the $arch guest never ran loop $((2 * RUNS))'s module" >&2; exit 1; }
  col() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$work/kept-$arch.txt" | median; }
  printf 'module loop %-7s (gdb kept): edit->rebuilt %5s ms, then klab reset in gdb %5s ms, continue->hello_open %5s ms: edit->break %5s ms (median of %s)\n' \
    $arch "$(col seq 2)" "$(col seq 3)" "$(col seq 4)" "$(col seq 5)" "$RUNS"
  printf 'module loop %-7s (gdb kept): edit, klab reset --build (rebuilt while restored) %5s ms, continue->hello_open %5s ms: edit->break %5s ms (median of %s; goal <= 1000)\n' \
    $arch "$(col overlap 3)" "$(col overlap 4)" "$(col overlap 5)" "$RUNS"
  "$KLAB" stop kept-$arch >/dev/null
done
