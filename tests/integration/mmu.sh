#!/usr/bin/env bash
# libklab's walks on a booted Debian kernel, checked against QEMU's own translation (the gva2gpa monitor
# command, asked on QEMU's monitor socket directly) and the dump against gdb's raw reads of the entries.
#   tests/integration/mmu.sh x86_64 max      5-level paging (CR4.LA57)
#   tests/integration/mmu.sh x86_64 qemu64   4-level paging
#   tests/integration/mmu.sh arm64           4K granule, 48-bit VA
# The guest boots to its shell, gdb stops it at a breakpoint in the timer tick (paging long on), and
# disconnects without resuming. Addresses come from vmlinux's symbols (text, data) and from the dump's own
# ranges inside each region of the kernel's documented layout; every one is translated by klab and by QEMU.
. "$(dirname "$0")/../lib.sh"
arch=$1 cpu=${2:-}
case $arch in x86_64) deb=amd64 ;; arm64) deb=arm64 ;; *) echo "usage: mmu.sh x86_64 [max|qemu64] | arm64"; exit 2 ;; esac
label="$arch${cpu:+ -cpu $cpu}"
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=mmu-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
vmlinux=$KLAB_CACHE/kernels/debian-$deb/vmlinux

"$KLAB" rootfs --arch "$arch" -o "$work/initrd.cpio.gz" >/dev/null
out=$("$KLAB" boot --arch "$arch" --name "$name" --initrd "$work/initrd.cpio.gz" ${cpu:+--cpu "$cpu"} \
      --detach --no-wait 2>&1) || { fail "$label: boot" "$out"; finish; }
"$KLAB" wait "$name" --timeout 120 >/dev/null 2>&1 || { fail "$label: guest reached its shell" "no banner"; finish; }

# Stop at a breakpoint after boot: the timer tick runs on every CPU all the time. gdb reads the paging
# registers there (its own target description), the independent truth for the paging mode.
case $arch in x86_64) pregs=(-ex 'p/x $cr4') ;; arm64) pregs=(-ex 'p/x $TCR_EL1') ;; esac
gdb_out=$(timeout 120 "$KLAB" gdb "$name" --batch -ex 'hbreak scheduler_tick' -ex continue \
          -ex 'info symbol $pc' "${pregs[@]}" -ex disconnect 2>&1)
echo "$gdb_out" | grep -q "^scheduler_tick in section" && ok "$label: stopped at a breakpoint in scheduler_tick" \
  || { fail "$label: breakpoint" "$(echo "$gdb_out" | tail -3)"; finish; }
preg=$(echo "$gdb_out" | sed -n 's/^\$[0-9]* = \(0x[0-9a-f]*\)$/\1/p' | tail -1)

# The paging mode the registers describe, as the manuals define it: x86 CR4.LA57 (bit 12, SDM Vol. 3A 4.1);
# arm64 TCR_EL1.T1SZ (bits 21:16) and TG1 (bits 31:30: 1 16K, 2 4K, 3 64K), Arm ARM D8.2.
if [ $arch = x86_64 ]; then
  if (( (preg >> 12) & 1 )); then want='CR3: 4K granule, 57-bit VA, 5 levels \(PML5..PT\)'; else want='CR3: 4K granule, 48-bit VA, 4 levels \(PML4..PT\)'; fi
else
  t1sz=$(( (preg >> 16) & 63 )) tg1=$(( (preg >> 30) & 3 ))
  case $tg1 in 1) g=14 gn=16K ;; 2) g=12 gn=4K ;; 3) g=16 gn=64K ;; esac
  vab=$((64 - t1sz)) levels=$(( (vab - g + g - 4) / (g - 3) ))
  want="TTBR1_EL1: $gn granule, $vab-bit VA, $levels levels"
fi
regs=$("$KLAB" regs --vm "$name" 2>&1)
[ -n "$preg" ] && echo "$regs" | grep -qE "$want" && ok "$label: klab regs: $(echo "$regs" | grep -oE "$want" | tr -d '\\') (gdb: $preg)" \
  || fail "$label: paging mode" "gdb's register ${preg:-?}, want /$want/: $(echo "$regs" | tail -2)"

# The whole kernel page table, from the RAM file and through the stub: two memory sources, one answer.
"$KLAB" ptdump --vm "$name" >"$work/dump" 2>"$work/dump.err" && [ -s "$work/dump" ] \
  && ok "$label: ptdump from the RAM file ($(grep -c '^0x' "$work/dump") ranges)" || fail "$label: ptdump" "$(cat "$work/dump.err")"
"$KLAB" ptdump --vm "$name" --via-stub >"$work/dump.stub" 2>&1
cmp -s "$work/dump" "$work/dump.stub" && ok "$label: ptdump through the gdb stub is identical" \
  || fail "$label: ptdump via stub" "$(diff "$work/dump" "$work/dump.stub" | head -3)"
grep -q ' BAD ' "$work/dump" && fail "$label: no bad entries" "$(grep -m1 ' BAD ' "$work/dump")" || ok "$label: no bad entries in a live kernel's tables"
# The two dumps agreeing is klab against klab: the dump itself is checked against QEMU and gdb's raw reads.
KLAB_TEST_DUMP=$work/dump KLAB_TEST_LABEL=$label timeout 300 "$KLAB" gdb "$name" --batch \
  -ex "source $PWD/tests/integration/ptdump_oracle.py" -ex disconnect >"$work/oracle" 2>&1
rc=$?
relay "$work/oracle"
gdb_ran "$label: ptdump oracle" $rc "$work/oracle" "# ptdump_oracle.py: done"

# Region bounds from the kernel's documentation (Documentation/x86/x86_64/mm.rst, Documentation/arm64/memory.rst
# for 6.1, 48-bit VA, nokaslr).
case "$label" in
  "x86_64 -cpu max")
    regions="linear:ff11000000000000:ff90ffffffffffff vmalloc:ffa0000000000000:ffd1ffffffffffff
             vmemmap:ffd4000000000000:ffd5ffffffffffff text:ffffffff80000000:ffffffff9fffffff
             modules:ffffffffa0000000:fffffffffeffffff fixmap:ffffffffff000000:ffffffffff5fffff" ;;
  "x86_64 -cpu qemu64")
    regions="linear:ffff888000000000:ffffc87fffffffff vmalloc:ffffc90000000000:ffffe8ffffffffff
             vmemmap:ffffea0000000000:ffffeaffffffffff text:ffffffff80000000:ffffffff9fffffff
             modules:ffffffffa0000000:fffffffffeffffff fixmap:ffffffffff000000:ffffffffff5fffff" ;;
  arm64)
    regions="linear:ffff000000000000:ffff7fffffffffff modules:ffff800000000000:ffff800007ffffff
             text:ffff800008000000:ffff80000bffffff vmalloc:ffff80000c000000:fffffbffefffffff
             fixmap:fffffbfffdc00000:fffffbfffe7fffff vmemmap:fffffc0000000000:fffffdffffffffff" ;;
esac

# Addresses: symbols of text and data, then per region the first byte, the middle and the last byte of the
# dump's first range there (or the region's first address when nothing is mapped in it: both must say so).
addrs=()
for sym in _stext schedule _etext jiffies init_task linux_banner __bss_start; do
  a=$(nm "$vmlinux" | awk -v s="$sym" '$3 == s { print $1; exit }')
  [ -n "$a" ] && addrs+=("0x$a") && kinds+=("$sym")   # nm prints 16 lowercase digits
done
for r in $regions; do
  IFS=: read -r rname lo hi <<<"$r"
  # Dump lines start with 0x + 16 lowercase digits: string order is address order.
  line=$(grep '^0x' "$work/dump" | while read -r span _; do
           s=${span%-*}; e=${span#*-}
           if [[ ! "$s" < "0x$lo" && ! "$s" > "0x$hi" ]]; then echo "$s $e"; break; fi
         done)
  if [ -n "$line" ]; then
    read -r s e <<<"$line"
    addrs+=("$s" "$(printf '0x%016x' $(( (s + (e - s) / 2) & ~7 )))" "$(printf '0x%016x' $(( e - 1 )))")
    kinds+=("$rname-first" "$rname-middle" "$rname-last")
  else
    addrs+=("0x$lo"); kinds+=("$rname-empty")
  fi
done
[ "${#addrs[@]}" -ge 12 ] && ok "$label: ${#addrs[@]} addresses across text, data and $(echo $regions | wc -w) regions" \
  || fail "$label: enough addresses" "${#addrs[@]}"

# klab's translation (through the RAM file and through the stub) and QEMU's, asked on QEMU's own monitor
# socket (tests/integration/hmp.py: no klab code on the way).
"$KLAB" vtop --vm "$name" "${addrs[@]}" >"$work/vtop" 2>&1
"$KLAB" vtop --vm "$name" --via-stub "${addrs[@]}" >"$work/vtop.stub" 2>&1
hmp=()
for a in "${addrs[@]}"; do hmp+=("gva2gpa $a"); done
python3 tests/integration/hmp.py "$KLAB_RUN_DIR/$name/monitor.sock" "${hmp[@]}" >"$work/qemu" 2>&1
# crash's layout: the line after each "VIRTUAL PHYSICAL" header is the address and its PA, or "(not mapped)".
pa_of() { awk -v h="$(printf '%x' "$1")" 'prev ~ /^VIRTUAL / && $1 == h { print ($2 == "(not" ? "unmapped" : "0x" $2); exit }
                                         { prev = $0 }' "$2"; }
agree=0 disagree=0 mapped=0
for i in "${!addrs[@]}"; do
  a=${addrs[$i]}
  mine=$(pa_of "$a" "$work/vtop"); stub=$(pa_of "$a" "$work/vtop.stub")
  ans=$(grep -m1 -F "gva2gpa $a => " "$work/qemu" | sed 's/.* => //')
  # QEMU prints PA 0 as "gpa: 0"
  case $ans in "gpa: "*) qemu=$(printf '0x%x' "${ans#gpa: }") ;; *"Unmapped"*|*"unmapped"*) qemu=unmapped ;; *) qemu= ;; esac
  [ -n "$mine" ] && [ "$mine" != unmapped ] && mine=$(printf '0x%x' "$mine")
  [ -n "$stub" ] && [ "$stub" != unmapped ] && stub=$(printf '0x%x' "$stub")
  if [ -n "$mine" ] && [ -n "$qemu" ] && [ "$mine" = "$qemu" ] && [ "$mine" = "$stub" ]; then
    agree=$((agree + 1)); [ "$mine" != unmapped ] && mapped=$((mapped + 1))
  else
    disagree=$((disagree + 1))
    fail "$label: ${kinds[$i]} $a" "klab ${mine:-?} (via stub ${stub:-?}), QEMU gva2gpa ${qemu:-?} (${ans:-no answer})"
  fi
done
[ "$disagree" -eq 0 ] && ok "$label: all $agree translations equal QEMU's gva2gpa ($mapped mapped, $((agree - mapped)) unmapped)"
[ "$mapped" -ge 10 ] && ok "$label: at least 10 of them mapped" || fail "$label: mapped addresses" "only $mapped"

# A translation's levels are the tables' contents as gdb itself reads them: the last entry of the first
# mapped address, read with gdb's x/gx at its physical address (QEMU's physical mode).
first=$(awk '/^   PAGE: / { print last; exit } /^ +[A-Z0-9]+: [0-9a-f]+ => / { last = $0 }' "$work/vtop")
epa=$(echo "$first" | sed -n 's/^ *[A-Z0-9]*: \([0-9a-f]*\) => .*/0x\1/p')
raw=$(echo "$first" | sed -n 's/.* => \([0-9a-f]*\) .*/0x\1/p')
gx=$(timeout 60 "$KLAB" gdb "$name" --batch -ex 'maintenance packet Qqemu.PhyMemMode:1' -ex "x/gx $epa" \
     -ex 'maintenance packet Qqemu.PhyMemMode:0' -ex disconnect 2>&1 | awk -v e="$epa" 'index($0, e ":") == 1 { print $2 }')
[ -n "$raw" ] && [ "$((gx))" = "$((raw))" ] && ok "$label: entry at PA $epa reads $raw in gdb too" \
  || fail "$label: entry through gdb" "klab $raw, gdb ${gx:-nothing}"
finish
