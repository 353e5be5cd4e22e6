#!/usr/bin/env bash
# User memory as seed 003 sees it: a real Debian kernel with a swap disk (klab boot --swap), the pagemap lab's
# --user-memory process (pages swapped out, soft-dirty, migrated by MADV_SOFT_OFFLINE), and klab's decode of
# every non-present entry checked inside gdb (gdb_umem.py) against what /proc/PID/pagemap said of the same pages.
#   tests/integration/gdb_umem.sh x86_64|arm64 [CPU]
. "$(dirname "$0")/../lib.sh"
arch=$1 cpu=${2:-}
case $arch in x86_64|arm64) ;; *) echo "usage: gdb_umem.sh x86_64|arm64 [CPU]"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=umem-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
pagemap=$PWD/build/labs/pagemap-$arch
[ -x "$pagemap" ] || { fail "$arch: $pagemap" "not built (make labs)"; finish; }
case $arch in x86_64) kname=debian-amd64 ;; arm64) kname=debian-arm64 ;; esac
kname=${KLAB_TEST_KERNEL:-$kname}
config=$KLAB_CACHE/kernels/$kname/config
[ -f "$config" ] || { fail "$arch: $config" "no config of $kname (make kernels)"; finish; }
# The hook waits while pagemap prints, so that the shell's prompt does not land among its lines.
cat >"$work/50-umem.sh" <<'HOOK'
/bin/pagemap --user-memory &
sleep 3
HOOK
"$KLAB" boot --arch "$arch" --kernel "$kname" --name "$name" --swap 64M --add "$pagemap:/bin/pagemap" \
  --add "$work/50-umem.sh:/etc/klab.d/50-umem.sh" ${cpu:+--cpu "$cpu"} --detach >"$work/boot" 2>&1 \
  || { fail "$arch: boot --swap" "$(cat "$work/boot")"; finish; }
# What the kernel was built with decides which entries it can make: MADV_SOFT_OFFLINE needs
# CONFIG_MEMORY_FAILURE, the swap soft-dirty bit CONFIG_MEM_SOFT_DIRTY (x86 only).
grep -qx CONFIG_MEMORY_FAILURE=y "$config" && export KLAB_TEST_MIGRATION=1
grep -qx CONFIG_MEM_SOFT_DIRTY=y "$config" && export KLAB_TEST_SOFT_DIRTY=1
export KLAB_TEST_ARCH=$arch${cpu:+/$cpu} KLAB_TEST_PAGEMAP=$pagemap KLAB_TEST_CONSOLE=$KLAB_RUN_DIR/$name/console.log
timeout 500 "$KLAB" gdb "$name" --batch -ex "source $PWD/tests/integration/gdb_umem.py" -ex disconnect >"$work/out" 2>&1
rc=$?
relay "$work/out"
[ -z "${KLAB_TEST_KEEP:-}" ] || cp "$work/out" "$KLAB_TEST_KEEP"
gdb_ran "$arch" $rc "$work/out" "# gdb_umem.py: done"
grep -q 'Traceback\|Python Exception' "$work/out" && fail "$arch: no Python traceback" "$(grep -m1 -A5 'Traceback\|Python Exception' "$work/out")"
finish
