#!/usr/bin/env bash
# Who wrote it: a recorded boot in which staledrv writes through a stale pointer into another object, found
# backwards in the replay with a watchpoint (gdb_whowrote.py), on Debian's kernel of either architecture
# (the arm64 module is cross-built against Debian's arm64 headers: kernels/module.sh).
#   tests/integration/replay_module.sh [x86_64|arm64]
. "$(dirname "$0")/../lib.sh"
arch=${1:-x86_64}
case $arch in x86_64) kname=debian-amd64 ;; arm64) kname=debian-arm64 ;; *) echo "usage: replay_module.sh [x86_64|arm64]"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
ko=$(bash kernels/module.sh labs/staledrv $kname "$work/staledrv" 2>"$work/module.err") && [ -f "$ko" ] \
  || { fail "staledrv build" "$ko $(tail -2 "$work/module.err")"; finish; }
rec=$work/rec
"$KLAB" boot --arch "$arch" --name rec --record "$rec" --add "$ko:/lib/modules/staledrv.ko" \
  --run 'insmod /lib/modules/staledrv.ko' --no-wait --detach >"$work/boot" 2>&1 || { fail "boot --record" "$(cat "$work/boot")"; finish; }
timeout 600 "$KLAB" wait rec --for 'staledrv: victim ' --timeout 600 >/dev/null 2>&1
for _ in $(seq 60); do
  line=$(tr -d '\r' <"$KLAB_RUN_DIR/rec/console.log" | grep -aE 'staledrv: victim .* (corrupted|intact)' | tail -1)
  [ -n "$line" ] && break; sleep 1
done
sleep 1
"$KLAB" stop rec >/dev/null 2>&1
case $line in
  *corrupted*) ok "$arch: recorded: ${line#*] }" ;;
  *intact*) skip "the stale write" "the slab gave the victim other memory this time: $line"; finish ;;
  *) fail "the recorded boot" "no staledrv line"; finish ;;
esac
"$KLAB" replay "$rec" --name rp --detach >"$work/replay" 2>&1 || { fail "klab replay" "$(cat "$work/replay")"; finish; }
export KLAB_TEST_ARCH=$arch KLAB_TEST_PAGEMAP=/bin/true KLAB_TEST_CONSOLE=$KLAB_RUN_DIR/rp/console.log
KLAB_MODULE_PATH=$work/staledrv timeout 900 "$KLAB" gdb rp --batch -ex "source $PWD/tests/integration/gdb_whowrote.py" \
  -ex disconnect >"$work/out" 2>&1
rc=$?
relay "$work/out"
[ -z "${KLAB_TEST_KEEP:-}" ] || cp "$work/out" "$KLAB_TEST_KEEP"
gdb_ran "$arch: who wrote it" $rc "$work/out" "# gdb_whowrote.py: done"
finish
