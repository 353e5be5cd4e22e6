#!/usr/bin/env bash
# fork, mprotect and copy-on-write seen through klab ptsnap --pid / ptdiff in gdb, against the guest's own
# /proc (gdb_ptlab.py): the ptlab program (labs/ptlab) runs its phases while gdb stops at each and snapshots
# its tables.
#   tests/integration/gdb_ptlab.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64|arm64) ;; *) echo "usage: gdb_ptlab.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=ptlab-$arch
cleanup() { [ -n "${gdb_pid:-}" ] && kill "$gdb_pid" 2>/dev/null; "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
ptlab=$PWD/build/labs/ptlab-$arch
[ -x "$ptlab" ] || { fail "$arch: $ptlab" "not built (make labs)"; finish; }
"$KLAB" boot --arch "$arch" --name "$name" --add "$ptlab:/bin/ptlab" --no-wait --detach >"$work/boot" 2>&1 \
  || { fail "$arch: boot" "$(cat "$work/boot")"; finish; }
timeout 300 "$KLAB" wait "$name" >/dev/null 2>&1 || { fail "$arch: banner" "no init banner"; finish; }
mkdir -m 700 "$work/store"
export KLAB_TEST_ARCH=$arch KLAB_TEST_PAGEMAP=$ptlab KLAB_TEST_CONSOLE=$KLAB_RUN_DIR/$name/console.log \
  KLAB_TEST_READY=$work/ready KLAB_TEST_STORE=$work/store
timeout 600 "$KLAB" gdb "$name" --batch -ex "source $PWD/tests/integration/gdb_ptlab.py" -ex disconnect >"$work/out" 2>&1 &
gdb_pid=$!
# ptlab starts once gdb's breakpoint is in: its phases must not run before gdb can stop them.
for _ in $(seq 300); do [ -e "$work/ready" ] || ! kill -0 $gdb_pid 2>/dev/null && break; sleep 1; done
# Kernel messages off the console (dmesg -n 1): one printed mid-line would cut a line the checks read.
[ -e "$work/ready" ] && python3 tests/integration/console.py "$KLAB_RUN_DIR/$name/console.sock" 'dmesg -n 1; /bin/ptlab &' 1 >/dev/null
wait $gdb_pid; rc=$?; gdb_pid=
relay "$work/out"
[ -z "${KLAB_TEST_KEEP:-}" ] || cp -r "$work" "$KLAB_TEST_KEEP"
gdb_ran "$arch" $rc "$work/out" "# gdb_ptlab.py: done"
finish
