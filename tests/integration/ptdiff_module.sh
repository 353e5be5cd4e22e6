#!/usr/bin/env bash
# A module load through klab ptdiff, from the shell: seed 002's hellodrv built against Debian's headers,
# inserted while klab keeps a snapshot of before. The guest's own /sys/module/hellodrv/sections say where its
# text and data went; ptdiff must report those pages as newly mapped with the rights the module loader gives
# them (kernel/module/strict_rwx.c: text r-x, data rw-; on new frames), and every new mapping's PA agree
# with QEMU's gva2gpa. On Debian's kernel of either architecture (arm64's module cross-built: kernels/module.sh).
#   tests/integration/ptdiff_module.sh [x86_64|arm64]
. "$(dirname "$0")/../lib.sh"
arch=${1:-x86_64}
case $arch in x86_64) kname=debian-amd64 ;; arm64) kname=debian-arm64 ;; *) echo "usage: ptdiff_module.sh [x86_64|arm64]"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
export KLAB_PTSNAP_DIR=$work/store
name=ptmod
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
ko=$(bash kernels/module.sh labs/hellodrv $kname "$work/hellodrv" 2>"$work/module.err") && [ -f "$ko" ] \
  || { fail "hellodrv build" "$ko $(tail -2 "$work/module.err")"; finish; }
"$KLAB" boot --arch "$arch" --name $name --add "$ko:/lib/modules/hellodrv.ko" --no-wait --detach >"$work/boot" 2>&1 \
  || { fail "boot" "$(cat "$work/boot")"; finish; }
timeout 300 "$KLAB" wait $name >/dev/null 2>&1 || { fail "banner" "no init banner"; finish; }
mon=$KLAB_RUN_DIR/$name/monitor.sock
hmp() { python3 tests/integration/hmp.py "$mon" "$1"; }
"$KLAB" ptsnap save before --vm $name >/dev/null 2>&1 || { fail "ptsnap save" "before insmod"; finish; }
python3 tests/integration/console.py "$KLAB_RUN_DIR/$name/console.sock" \
  'insmod /lib/modules/hellodrv.ko && for s in .text .data; do echo "SECTION $s $(cat /sys/module/hellodrv/sections/$s)"; done' 4 >/dev/null
# both lines on the console before the stop (a loaded machine prints them later than 4 s)
for i in $(seq 300); do grep -aq '^SECTION .data 0x' "$KLAB_RUN_DIR/$name/console.log" && break; sleep 0.1; done
hmp stop >/dev/null
"$KLAB" ptdiff before --vm $name >"$work/diff" 2>&1; rc=$?
[ $rc -eq 1 ] && ok "$arch: ptdiff across insmod: $(tail -1 "$work/diff")" || fail "ptdiff across insmod" "rc $rc: $(tail -3 "$work/diff")"
log=$(tr -d '\r' <"$KLAB_RUN_DIR/$name/console.log")
# after VA: the change over VA as "KIND RIGHTS-AFTER LINE": KIND new (mapped in B only) or moved (another frame);
# a freed module's area stays mapped until vmalloc's lazy purge (mm/vmalloc.c), so the loader may reuse it.
after() {
  python3 - "$1" "$work/diff" <<'PY'
import re, sys
va = int(sys.argv[1], 16)
rights = r"[-r][-w][-x]/[-r][-w][-x]"
for line in open(sys.argv[2]):
    m = re.match(r"([-+~]) 0x([0-9a-f]+)-0x([0-9a-f]+) +\S+ +(\S+) .*?  (%s)(?: -> (%s))?" % (rights, rights), line)
    if m and int(m.group(2), 16) <= va < int(m.group(3), 16):
        kind = "new" if m.group(1) == "+" else "moved" if m.group(1) == "~" and "moved" in m.group(4) else "other"
        print(kind, m.group(6) or m.group(5), line.rstrip())
        break
PY
}
for s in .text .data; do
  va=$(sed -n "s/^SECTION $s \(0x[0-9a-f]*\)\$/\1/p" <<<"$log" | tail -1)
  [ -n "$va" ] || { fail "hellodrv $s" "the guest printed no address for it: $(tail -3 <<<"$log")"; continue; }
  read -r kind rights line <<<"$(after "$va")"
  case $s in .text) want='r-x/---' ;; .data) want='rw-/---' ;; esac
  [[ ($kind == new || $kind == moved) && $rights == "$want" ]] \
    && ok "$arch: hellodrv $s at $va (/sys/module): on a new frame, $want: ${line:0:100}" \
    || fail "hellodrv $s at $va" "wanted a new frame with $want over it, got: ${kind:-no change} $rights $line"
done
# Every range mapped anew, or moved to one new frame, is where QEMU's gva2gpa says its first page is: the PA
# after the change ("+ VA-END SIZE mapped PA X", "~ VA-END SIZE moved PA OLD -> X"; a range moved to scattered
# frames names no one PA). Which of the two the module's pages are depends on whether the loader reused a
# freed, still-mapped area.
n=0 good=0
while read -r va pa; do
  q=$(hmp "gva2gpa $va" | tr -d '\r')
  n=$((n + 1)); same_pa "$(gpa_of <<<"$q")" "$pa" && good=$((good + 1))
done < <(sed -nE -e 's/^\+ (0x[0-9a-f]+)-0x[0-9a-f]+ +\S+ +mapped +PA (0x[0-9a-f]+)( .*)?$/\1 \2/p' \
                -e 's/^~ (0x[0-9a-f]+)-0x[0-9a-f]+ +\S+ +moved +PA \S+ -> (0x[0-9a-f]+)( .*)?$/\1 \2/p' "$work/diff")
[ $n -gt 0 ] && [ $good -eq $n ] && ok "$arch: the $n new or moved mappings are at the PA QEMU's gva2gpa gives" \
  || fail "new mappings vs gva2gpa" "$good of $n: $(grep -E '^[+~] ' "$work/diff" | head -5)"
[ -z "${KLAB_TEST_KEEP:-}" ] || cp "$work/diff" "$KLAB_TEST_KEEP"
hmp cont >/dev/null
finish
