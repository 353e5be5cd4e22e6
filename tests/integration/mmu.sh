#!/usr/bin/env bash
# libklab's walks on a booted Debian kernel, checked against QEMU's own translation (the gva2gpa monitor
# command, asked through libklab's RSP client with qRcmd) and against a second memory source.
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

# Stop at a breakpoint after boot: the timer tick runs on every CPU all the time.
gdb_out=$(timeout 120 "$KLAB" gdb "$name" --batch -ex 'hbreak scheduler_tick' -ex continue \
          -ex 'info symbol $pc' -ex disconnect 2>&1)
echo "$gdb_out" | grep -q "^scheduler_tick in section" && ok "$label: stopped at a breakpoint in scheduler_tick" \
  || { fail "$label: breakpoint" "$(echo "$gdb_out" | tail -3)"; finish; }

# The paging mode the registers describe.
regs=$("$KLAB" regs --vm "$name" 2>&1)
case "$label" in
  "x86_64 -cpu max")    want='CR3: 4K granule, 57-bit VA, 5 levels \(PML5..PT\)' ;;
  "x86_64 -cpu qemu64") want='CR3: 4K granule, 48-bit VA, 4 levels \(PML4..PT\)' ;;
  arm64)                want='TTBR1_EL1: 4K granule, 48-bit VA, 4 levels \(L0..L3\)' ;;
esac
echo "$regs" | grep -qE "$want" && ok "$label: klab regs: $(echo "$regs" | grep -oE "$want" | tr -d '\\')" \
  || fail "$label: paging mode" "$(echo "$regs" | tail -2)"

# The whole kernel page table, from the RAM file and through the stub: two memory sources, one answer.
"$KLAB" ptdump --vm "$name" >"$work/dump" 2>"$work/dump.err" && [ -s "$work/dump" ] \
  && ok "$label: ptdump from the RAM file ($(grep -c '^0x' "$work/dump") ranges)" || fail "$label: ptdump" "$(cat "$work/dump.err")"
"$KLAB" ptdump --vm "$name" --via-stub >"$work/dump.stub" 2>&1
cmp -s "$work/dump" "$work/dump.stub" && ok "$label: ptdump through the gdb stub is identical" \
  || fail "$label: ptdump via stub" "$(diff "$work/dump" "$work/dump.stub" | head -3)"
grep -q ' BAD ' "$work/dump" && fail "$label: no bad entries" "$(grep -m1 ' BAD ' "$work/dump")" || ok "$label: no bad entries in a live kernel's tables"

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

# klab's translation and QEMU's, for every address (through the RAM file and through the stub).
"$KLAB" vtop --vm "$name" --qemu "${addrs[@]}" >"$work/vtop" 2>&1
"$KLAB" vtop --vm "$name" --via-stub "${addrs[@]}" >"$work/vtop.stub" 2>&1
agree=0 disagree=0 mapped=0
for i in "${!addrs[@]}"; do
  a=${addrs[$i]}
  block=$(awk -v a="VIRTUAL $a" 'index($0, a) == 1 { on = 1; next } /^VIRTUAL / { on = 0 } on' "$work/vtop")
  mine=$(echo "$block" | sed -n 's/^PHYSICAL \(0x[0-9a-f]*\).*/\1/p')
  echo "$block" | grep -q '^NOT MAPPED' && mine=unmapped
  qemu=$(echo "$block" | sed -n 's/^QEMU gva2gpa: \(0x[0-9a-f]*\|unmapped\).*/\1/p')
  stub=$(awk -v a="VIRTUAL $a" 'index($0, a) == 1 { on = 1; next } /^VIRTUAL / { on = 0 } on' "$work/vtop.stub" \
         | sed -n 's/^PHYSICAL \(0x[0-9a-f]*\).*/\1/p')
  [ "$mine" != unmapped ] && [ -z "$stub" ] && stub=missing
  [ "$mine" = unmapped ] && stub=${stub:-unmapped}
  if [ -n "$mine" ] && [ "$mine" = "$qemu" ] && [ "$mine" = "$stub" ]; then
    agree=$((agree + 1)); [ "$mine" != unmapped ] && mapped=$((mapped + 1))
  else
    disagree=$((disagree + 1))
    fail "$label: ${kinds[$i]} $a" "klab ${mine:-?} (via stub ${stub:-?}), QEMU gva2gpa ${qemu:-?}"
  fi
done
[ "$disagree" -eq 0 ] && ok "$label: all $agree translations equal QEMU's gva2gpa ($mapped mapped, $((agree - mapped)) unmapped)"
[ "$mapped" -ge 10 ] && ok "$label: at least 10 of them mapped" || fail "$label: mapped addresses" "only $mapped"

# A translation's levels are the tables' contents as gdb itself reads them: the last entry of the first
# mapped address, read with gdb's x/gx at its physical address (QEMU's physical mode).
first=$(awk '/^PHYSICAL/ { found = 1 } !found && /^  [a-z]+ / { last = $0 } found { print last; exit }' "$work/vtop")
epa=$(echo "$first" | sed -n 's/.*entry PA \(0x[0-9a-f]*\).*/\1/p')
raw=$(echo "$first" | sed -n 's/.*entry PA 0x[0-9a-f]* *\(0x[0-9a-f]*\).*/\1/p')
gx=$(timeout 60 "$KLAB" gdb "$name" --batch -ex 'maintenance packet Qqemu.PhyMemMode:1' -ex "x/gx $epa" \
     -ex 'maintenance packet Qqemu.PhyMemMode:0' -ex disconnect 2>&1 | awk -v e="$epa" 'index($0, e ":") == 1 { print $2 }')
[ -n "$raw" ] && [ "$((gx))" = "$((raw))" ] && ok "$label: entry at PA $epa reads $raw in gdb too" \
  || fail "$label: entry through gdb" "klab $raw, gdb ${gx:-nothing}"
finish
