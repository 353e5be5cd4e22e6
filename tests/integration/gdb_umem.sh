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
# The shell's klab vtop and ptdump on the same stop (the CPU runs pagemap in user mode): its own tables, the
# kernel's facts from vmlinux's symbol table and the config beside the image, no gdb.
cpu=$(sed -n 's/^# user-stop cpu \([0-9]*\)$/\1/p' "$work/out")
log=$KLAB_RUN_DIR/$name/console.log
if [ -n "$cpu" ]; then
  pages=$(tr -d '\r' <"$log" | grep -oE 'um[0-9]{2} +0x[0-9a-f]+ pfn .* swapped 1 .* swap-type [0-9]+ swap-offset 0x[0-9a-f]+')
  n=0 good=0
  while read -r _ va _ _ _ _ _ _ _ _ _ _ _ _ _ type _ off; do
    n=$((n + 1))
    "$KLAB" vtop --vm "$name" --cpu "$cpu" "$va" >"$work/vtop" 2>&1
    grep -qE "^   SWAP: type $type  offset $off( |\$)" "$work/vtop" && good=$((good + 1))
  done <<<"$pages"
  if [ "$n" -eq 12 ] && [ "$good" -eq 12 ]; then ok "$arch: shell klab vtop: 12 swapped pages decoded as pagemap says"
  else fail "$arch: shell klab vtop: swapped pages as pagemap says" "$good of $n; last: $(cat "$work/vtop")"; fi
  first=$(sed -n '1s/^um00 *\(0x[0-9a-f]*\) .*/\1/p' <<<"$pages")
  "$KLAB" ptdump --vm "$name" --cpu "$cpu" --non-present --range "$first-$(printf '0x%x' $((first + 0x10000 - 1)))" \
    >"$work/ptdump" 2>&1
  lines=$(grep -cE ' pte +entry 0x[0-9a-f]+: SWAP: type [0-9]+  offset 0x[0-9a-f]+' "$work/ptdump")
  # 4K pages on every kernel here: 16 pages span 64K; the swapped 12 and nothing else non-present
  if [ "$lines" -eq 12 ]; then ok "$arch: shell klab ptdump --non-present: the 12 swapped pages"
  else fail "$arch: shell klab ptdump --non-present" "$(cat "$work/ptdump")"; fi
else
  fail "$arch: shell klab vtop" "gdb left no user-mode stop"
fi
grep -q 'Traceback\|Python Exception' "$work/out" && fail "$arch: no Python traceback" "$(grep -m1 -A5 'Traceback\|Python Exception' "$work/out")"
finish
