#!/usr/bin/env bash
# klab current / ps / page / pfn / ptov / initmem-watch / vtop --pid in real gdb-multiarch on a Debian kernel
# booted from its first instruction: the checks run inside the gdb session (gdb_kernel.py) against QEMU's
# monitor, gdb's own reads and what the guest printed of itself.
#   tests/integration/gdb_kernel.sh x86_64|arm64 [CPU]
. "$(dirname "$0")/../lib.sh"
arch=$1 cpu=${2:-}
case $arch in x86_64|arm64) ;; *) echo "usage: gdb_kernel.sh x86_64|arm64 [CPU]"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=gdbk-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
pagemap=$PWD/build/labs/pagemap-$arch
[ -x "$pagemap" ] || { fail "$arch: $pagemap" "not built (make labs)"; finish; }
# The guest prints its own task list, starts pagemap (which prints where its stack is, then spins in user
# mode) and its VmRSS once it spins, and makes one system call gdb stops in (after a pause: the console
# drains the tty's output asynchronously, and gdb reads the log when it stops).
cat >"$work/50-probe.sh" <<'HOOK'
for f in /proc/[0-9]*/stat; do read -r l <"$f" && echo "STAT $l"; done
/bin/pagemap --spin &
sleep 2
echo "RSSOF $! $(grep VmRSS /proc/$!/status)"
sleep 1
sync
HOOK
"$KLAB" rootfs --arch "$arch" -o "$work/initrd.cpio.gz" --add "$pagemap:/bin/pagemap" \
  --add "$work/50-probe.sh:/etc/klab.d/50-probe.sh" >/dev/null
"$KLAB" boot --arch "$arch" "${test_kernel[@]}" --name "$name" --initrd "$work/initrd.cpio.gz" ${cpu:+--cpu "$cpu"} --detach \
  >/dev/null 2>&1 || { fail "$arch: boot" "klab boot failed"; finish; }
export KLAB_TEST_ARCH=$arch${cpu:+/$cpu} KLAB_TEST_PAGEMAP=$pagemap KLAB_TEST_CONSOLE=$KLAB_RUN_DIR/$name/console.log
timeout 400 "$KLAB" gdb "$name" --batch -ex "source $PWD/tests/integration/gdb_kernel.py" -ex disconnect >"$work/out" 2>&1
rc=$?
relay "$work/out"
gdb_ran "$arch" $rc "$work/out" "# gdb_kernel.py: done"
grep -q 'Traceback\|Python Exception' "$work/out" && fail "$arch: no Python traceback" "$(grep -m1 -A5 'Traceback\|Python Exception' "$work/out")"
finish
