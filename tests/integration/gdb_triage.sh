#!/usr/bin/env bash
# Live triage in gdb (klab dmesg / bt / slab / whatis / search) on a real Debian kernel at its shell, every
# answer against what the guest itself printed before the stop (console log, /proc/PID/stack,
# /proc/slabinfo) or what QEMU translates; on x86 also seed 001's soft lockup (labs/softlockup) end to end.
#   tests/integration/gdb_triage.sh x86_64|arm64 [KERNEL]
. "$(dirname "$0")/../lib.sh"
arch=$1 kname=${2:-${KLAB_TEST_KERNEL:-}}
case $arch in x86_64) kname=${kname:-debian-amd64} ;; arm64) kname=${kname:-debian-arm64} ;;
  *) echo "usage: gdb_triage.sh x86_64|arm64 [KERNEL]"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=triage-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
add=()
# The soft-lockup lab needs the module built against the kernel's headers: Debian's x86 kernels here.
if [ "$arch" = x86_64 ]; then
  ko=$(bash kernels/module.sh labs/softlockup "$kname" "$work/softlockup" 2>"$work/module.err") && [ -f "$ko" ] \
    && ok "$arch: labs/softlockup builds against $kname's headers" \
    || { fail "$arch: labs/softlockup build" "$(tail -2 "$work/module.err")"; finish; }
  add=(--add "$ko:/lib/modules/softlockup.ko" --append watchdog_thresh=1)
fi
cat >"$work/50-triage.sh" <<'HOOK'
sleep 1000 &
pid=$!
sleep 1
echo "SLEEP $pid"
echo "STACK-BEGIN"; cat /proc/$pid/stack; echo "STACK-END"
echo "SLABINFO-BEGIN"; cat /proc/slabinfo; echo "SLABINFO-END"
# the lockup last: its reports would cut the lines above on the console
if [ -f /lib/modules/softlockup.ko ]; then
  insmod /lib/modules/softlockup.ko spin_seconds=600
  sleep 6
fi
echo "TRIAGE READY"
HOOK
"$KLAB" boot --arch "$arch" --kernel "$kname" --name "$name" --no-wait --detach "${add[@]}" \
  --add "$work/50-triage.sh:/etc/klab.d/50-triage.sh" >"$work/boot" 2>&1 \
  || { fail "$arch: boot" "$(cat "$work/boot")"; finish; }
"$KLAB" wait "$name" --for "TRIAGE READY" --timeout 400 >/dev/null 2>&1 \
  || { fail "$arch: guest reached the triage point" "$(tail -5 "$KLAB_RUN_DIR/$name/console.log")"; finish; }
sleep 2   # the shell's prompt after the hook
export KLAB_TEST_ARCH=$arch KLAB_TEST_PAGEMAP=/bin/true KLAB_TEST_CONSOLE=$KLAB_RUN_DIR/$name/console.log
[ -n "${ko:-}" ] && export KLAB_TEST_SOFTLOCKUP=1
KLAB_MODULE_PATH=$work/softlockup timeout 400 "$KLAB" gdb "$name" --batch -ex "source $PWD/tests/integration/gdb_triage.py" -ex detach >"$work/out" 2>&1
rc=$?
relay "$work/out"
[ -z "${KLAB_TEST_KEEP:-}" ] || cp "$work/out" "$KLAB_TEST_KEEP"
gdb_ran "$arch" $rc "$work/out" "# gdb_triage.py: done"
grep -q 'Traceback\|Python Exception' "$work/out" && fail "$arch: no Python traceback" "$(grep -m1 -A5 'Traceback\|Python Exception' "$work/out")"
finish
