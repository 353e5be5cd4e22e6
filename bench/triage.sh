#!/usr/bin/env bash
# Live triage in gdb on a stopped VM, per architecture (Debian 6.1 kernels; Debian 6.12 too when fetched):
# a guest at its shell with ~100 sleeping tasks and a printk ringbuffer written full through /dev/kmsg, then
# medians of RUNS runs of each command inside one gdb session (bench/triage_gdb.py):
#   klab dmesg (the whole ringbuffer), klab bt --all, klab slab (every cache), klab slab task_struct --objects
#   (the struct page scan), klab search over the 1 GiB linear map (600 MiB of it written by the guest once, so
#   read: memory never written is a hole of the RAM file, not read).
# Goals (issue 14): each <= 0.5 s on a stopped VM.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 5
cache=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}
cat >"$work/50-bench.sh" <<'HOOK'
for i in $(seq 100); do sleep 100000 & done
# write 600 MiB once and free it: the RAM file then holds data, not holes, where the search must read
dd if=/dev/zero of=/fill bs=1M count=600 2>/dev/null; rm -f /fill
# ~600 KiB of records: more than Debian's ringbuffer holds (CONFIG_LOG_BUF_SHIFT), so it wraps
i=0; while [ $i -lt 6000 ]; do echo "klab bench line $i: the quick brown fox jumps over the lazy dog 0123456789" >/dev/kmsg; i=$((i + 1)); done
echo "BENCH READY"
HOOK
kernels=(debian-amd64 debian-arm64)
for k in debian-6.12-amd64 debian-6.12-arm64; do [ -s "$cache/kernels/$k/vmlinuz" ] && kernels+=("$k"); done
for kernel in "${kernels[@]}"; do
  [ -s "$cache/kernels/$kernel/vmlinux" ] || { echo "$kernel: not fetched, skipped"; continue; }
  "$KLAB" boot --kernel "$kernel" --name tb --no-wait --detach --add "$work/50-bench.sh:/etc/klab.d/50-bench.sh" >/dev/null 2>&1
  "$KLAB" wait tb --for "BENCH READY" --timeout 600 >/dev/null
  BENCH_NAME=$kernel RUNS=$RUNS "$KLAB" gdb tb --batch -ex "source $PWD/bench/triage_gdb.py" -ex detach 2>&1 \
    | grep "^$kernel " || { echo "$kernel: the gdb session failed"; exit 1; }
  "$KLAB" stop tb >/dev/null
done
