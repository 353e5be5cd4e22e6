#!/usr/bin/env bash
# Seed 004 through klab ptdiff, from the shell: memfd_secret(2) pages (labs/ptlab --secret 1024; Debian's 6.1
# needs secretmem.enable=1) leave the kernel's direct map when first written. ptdiff must report the last one's
# alias unmapped (the frame from the guest's /proc/PID/pagemap) and QEMU's gva2gpa must agree; on
# x86_64, a split of the mapping around it must show exactly when the guest's /proc/meminfo DirectMap4k grew
# by 2 MiB over the fault (arm64 maps its linear map with pages already, rodata=full: no split to see, and
# no DirectMap lines).
#   tests/integration/ptdiff_secret.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64|arm64) ;; *) echo "usage: ptdiff_secret.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
export KLAB_PTSNAP_DIR=$work/store
name=secret-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
ptlab=$PWD/build/labs/ptlab-$arch
[ -x "$ptlab" ] || { fail "$arch: $ptlab" "not built (make labs)"; finish; }
"$KLAB" boot --arch "$arch" --name "$name" --add "$ptlab:/bin/ptlab" --append secretmem.enable=1 --no-wait --detach \
  >"$work/boot" 2>&1 || { fail "$arch: boot" "$(cat "$work/boot")"; finish; }
timeout 300 "$KLAB" wait "$name" >/dev/null 2>&1 || { fail "$arch: banner" "no init banner"; finish; }
mon=$KLAB_RUN_DIR/$name/monitor.sock
hmp() { python3 tests/integration/hmp.py "$mon" "$1"; }
# The guest's own count of direct-map bytes by leaf size, next to the snapshot (x86: arch_report_meminfo).
python3 tests/integration/console.py "$KLAB_RUN_DIR/$name/console.sock" 'grep DirectMap /proc/meminfo' 2 | tr -d '\r' >"$work/meminfo0"
"$KLAB" ptsnap save before --vm "$name" >/dev/null 2>&1 || { fail "$arch: ptsnap save" "before"; finish; }
python3 tests/integration/console.py "$KLAB_RUN_DIR/$name/console.sock" 'dmesg -n 1; /bin/ptlab --secret 1024 &' 6 >/dev/null
hmp stop >/dev/null
"$KLAB" ptdiff before --vm "$name" >"$work/diff" 2>&1
log=$(tr -d '\r' <"$KLAB_RUN_DIR/$name/console.log")
pfn=$(sed -n 's/.*ptlab: secret 0x[0-9a-f]* pfn \(0x[0-9a-f]*\) (page .*/\1/p' <<<"$log" | tail -1)
[ -n "$pfn" ] && [ "$pfn" != 0x0 ] || { fail "$arch: the secret page" "ptlab said: $(grep 'ptlab:' <<<"$log" | tail -3)"; finish; }
ps=$(getconf PAGESIZE)
pa=$(printf '0x%x' $((pfn * ps)))
# The "- VA-VA SIZE unmapped was PA P" change whose frames hold pa (neighbouring secret pages join into one),
# and the VA it gives pa: its alias.
read -r va line <<<"$(python3 - "$work/diff" "$pa" <<'PY'
import re, sys
pa = int(sys.argv[2], 16)
for line in open(sys.argv[1]):
    m = re.match(r"- 0x([0-9a-f]+)-0x([0-9a-f]+) +\S+ +unmapped +was PA 0x([0-9a-f]+) ", line)
    if m:
        s, e, p = (int(x, 16) for x in m.groups())
        if p <= pa < p + (e - s):
            print("0x%x" % (s + pa - p), line.strip())
            break
PY
)"
[ -n "$va" ] && ok "$arch: ptdiff: the secret frame $pa (pagemap) left the direct map at $va: ${line:0:90}" \
  || fail "$arch: the secret frame's alias" "no '- ... unmapped was PA' change holds $pa: $(grep '^- ' "$work/diff" | tail -3)"
if [ -n "$va" ]; then
  q=$(hmp "gva2gpa $va" | tr -d '\r')
  [[ $q == *nmapped* ]] && ok "$arch: QEMU's gva2gpa agrees: $va is unmapped" || fail "$arch: gva2gpa $va" "$q"
fi
if [ "$arch" = x86_64 ] && [ -n "$va" ]; then
  # DirectMap4k grows by 2 MiB for each 2M leaf of the direct map split into 4K ones (set_memory.c
  # split_large_page: update_page_count), whatever split it: the guest's count from the snapshot to after the
  # fault against the 2M leaves ptdiff saw split (or unmapped from a 2M) in [page_offset_base, +max_pfn).
  k0=$(sed -n 's/.*DirectMap4k: *\([0-9]*\) kB.*/\1/p' "$work/meminfo0" | tail -1)
  k1=$(sed -n 's/.*ptlab: after DirectMap4k: *\([0-9]*\) kB$/\1/p' <<<"$log" | tail -1)
  base=$(hmp "x /1gx 0x$(nm "$(sed -n 's/^vmlinux=//p' "$KLAB_RUN_DIR/$name/state")" | awk '$3 == "page_offset_base" { print $1 }')" \
    | sed -n 's/.*: *0x\([0-9a-f]*\).*/\1/p')
  pages=$(python3 - "$work/diff" "$base" <<'PY'
import re, sys
base = int(sys.argv[2], 16)
split = set()
for line in open(sys.argv[1]):
    m = re.match(r"[-~] 0x([0-9a-f]+)-0x([0-9a-f]+) .*part of a 2M pmd", line)
    if m and ("-> 4K" in line or line.startswith("- ")) and base <= int(m.group(1), 16) < base + (1 << 46):
        split.add(int(m.group(1), 16) >> 21)
print(len(split))
PY
)
  if [ -n "$k0" ] && [ -n "$k1" ] && [ -n "$pages" ] && [ $((k1 - k0)) -eq $((pages * 2048)) ]; then
    ok "$arch: DirectMap4k grew by $((k1 - k0)) kB (/proc/meminfo) as the $pages 2M direct-map leaves ptdiff shows split into 4K"
  else
    fail "$arch: the split vs /proc/meminfo" "DirectMap4k $k0 -> $k1 kB; ptdiff: $pages 2M leaves split (page_offset_base ${base:-?})"
  fi
fi
hmp cont >/dev/null
[ -z "${KLAB_TEST_KEEP:-}" ] || { cp "$work/diff" "$KLAB_TEST_KEEP.diff"; printf '%s\n' "$log" | grep 'ptlab:' >"$KLAB_TEST_KEEP.log"; }
finish
