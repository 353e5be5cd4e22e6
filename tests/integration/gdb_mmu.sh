#!/usr/bin/env bash
# klab's gdb commands vtop / pte / ptdump in real gdb-multiarch, on a booted Debian kernel stopped at a
# breakpoint: every translation is checked against QEMU's gva2gpa asked in the same session (`monitor`), a
# raw entry against the value gdb itself reads at the entry's physical address, and bad input gets one gdb
# error line, never a Python traceback.
#   tests/integration/gdb_mmu.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64|arm64) ;; *) echo "usage: gdb_mmu.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=gdbmmu-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
"$KLAB" rootfs --arch "$arch" -o "$work/initrd.cpio.gz" >/dev/null
"$KLAB" boot --arch "$arch" "${test_kernel[@]}" --name "$name" --initrd "$work/initrd.cpio.gz" --detach --no-wait >/dev/null 2>&1 \
  && "$KLAB" wait "$name" --timeout 120 >/dev/null 2>&1 || { fail "$arch: boot to the shell" "no banner"; finish; }

syms=(jiffies init_task linux_banner schedule)
# The timer tick (update_process_times: it calls scheduler_tick, sched_tick since 6.10).
cmds=(-ex 'hbreak update_process_times' -ex continue -ex 'delete')
# QEMU's monitor parses its own expressions: give it the address as a number (gdb's eval formats it).
for s in "${syms[@]}"; do
  cmds+=(-ex "echo @@ $s\n" -ex "klab vtop $s" -ex "eval \"monitor gva2gpa 0x%lx\", (unsigned long)&$s")
done
cmds+=(-ex 'echo @@ sp\n' -ex 'klab vtop $sp' -ex 'eval "monitor gva2gpa 0x%lx", (unsigned long)$sp')
# The stack (vmalloc'ed, 4K pages) walks every level; gdb reads the paging registers for the shape.
case $arch in x86_64) pregs=(-ex 'p/x $cr4') ;; arm64) pregs=(-ex 'p/x $TCR_EL1') ;; esac
cmds+=(-ex 'echo @@ pregs\n' "${pregs[@]}")
cmds+=(-ex 'echo @@ explain\n' -ex 'klab vtop $sp --explain')
cmds+=(-ex 'echo @@ pte\n' -ex 'klab pte 0x68000061020713 --granule 64K --arch arm64')
cmds+=(-ex 'echo @@ pte-x86\n' -ex 'klab pte 0x80000000010001e3 --level 2 --arch x86_64')
cmds+=(-ex 'echo @@ ptdump\n' -ex 'klab ptdump --filter x')
# The dump's oracle in this session, on this CPU (tests/integration/ptdump_oracle.py runs the same command).
cmds+=(-ex 'echo @@ oracle\n' -ex "source $PWD/tests/integration/ptdump_oracle.py")
for bad in 'klab vtop nosuchsym' 'klab vtop' 'klab pte' 'klab pte 12 --level' 'klab ptdump --filter q' \
           'klab ptdump --range 2-1' 'klab vtop 0x10 --frob'; do
  cmds+=(-ex "echo @@ bad $bad\n" -ex "$bad")
done
# Without klab gdb's run state there is no RAM file: the tables come through the stub in physical mode.
cmds+=(-ex 'python import os; os.environ.pop("KLAB_STATE", None)' -ex 'echo @@ via-stub\n' -ex 'klab vtop jiffies'
       -ex 'echo @@ after-stub\n' -ex 'p/x (unsigned long)&jiffies' -ex 'x/gx &jiffies')
cmds+=(-ex 'echo @@ end\n' -ex disconnect)
KLAB_TEST_DUMP_CMD='klab ptdump --filter x' KLAB_TEST_LABEL="$arch ptdump --filter x" \
  timeout 300 "$KLAB" gdb "$name" --batch "${cmds[@]}" >"$work/out" 2>&1
gdb_ran "$arch" $? "$work/out" "@@ end"
section() { gdb_section "$work/out" "$1"; }
grep -q "Traceback" "$work/out" && fail "$arch: no Python traceback" "$(grep -m1 -A3 Traceback "$work/out")" \
  || ok "$arch: no Python traceback in the session"

# vtop vs QEMU gva2gpa, for symbols (a variable name means its address) and the stack pointer.
for s in "${syms[@]}" sp; do
  out=$(section "$s")
  mine=$(echo "$out" | vtop_pa)
  qemu=$(echo "$out" | gpa_of)
  [ -n "$mine" ] && [ -n "$qemu" ] && [ "$((16#$mine))" = "$((16#$qemu))" ] && ok "$arch: klab vtop $s = gva2gpa (0x$mine)" \
    || fail "$arch: klab vtop $s" "klab ${mine:-?}, QEMU ${qemu:-?}: $(echo "$out" | tail -3)"
done

# The same walk through the stub, and gdb's virtual reads work afterwards (physical mode switched back).
mine=$(section via-stub | vtop_pa)
qemu=$(section jiffies | gpa_of)
[ -n "$mine" ] && [ "$mine" = "$qemu" ] && ok "$arch: klab vtop through the stub (no RAM file) = gva2gpa" \
  || fail "$arch: vtop via stub" "klab ${mine:-?}, QEMU ${qemu:-?}: $(section via-stub | tail -2)"
addr=$(section after-stub | sed -n 's/^\$[0-9]* = \(0x[0-9a-f]*\)/\1/p')
section after-stub | grep -Eq "^$addr <jiffies(_64)?>:" && ok "$arch: virtual reads work again after the stub walk" \
  || fail "$arch: after stub walk" "$(section after-stub)"

# --explain shows, per level, the index taken from the address bits. The level count and each level's shift
# and mask come from the paging registers gdb read, by the manuals' rules: x86 4 or 5 levels of 9 bits above
# 12 (CR4.LA57, SDM Vol. 3A 4.5); arm64 granule G = 2^g from TG1, g-3 bits a level, VA bits 64 - T1SZ
# (Arm ARM D8.2).
preg=$(section pregs | sed -n 's/^\$[0-9]* = \(0x[0-9a-f]*\)$/\1/p')
shifts=() masks=()
if [ $arch = x86_64 ]; then
  if (( (preg >> 12) & 1 )); then shifts=(48 39 30 21 12); else shifts=(39 30 21 12); fi
  for _ in "${shifts[@]}"; do masks+=(511); done
else
  t1sz=$(( (preg >> 16) & 63 )) tg1=$(( (preg >> 30) & 3 ))
  case $tg1 in 1) g=14 ;; 2) g=12 ;; 3) g=16 ;; *) g=0 ;; esac
  vab=$((64 - t1sz)); levels=$(( (vab - g + g - 4) / (g - 3) ))
  for ((l = levels - 1; l >= 0; l--)); do
    sh=$(( g + (g - 3) * l )); shifts+=($sh)
    bits=$(( l == levels - 1 ? vab - sh : g - 3 )); masks+=($(( (1 << bits) - 1 )))
  done
fi
exp=$(section explain)
va=$(echo "$exp" | awk '/^VIRTUAL/ { getline; print $1; exit }')
n=0 bad=""
while read -r shift mask idx; do
  if [ "$shift" != "${shifts[$n]:-x}" ] || [ "$mask" != "${masks[$n]:-x}" ] || [ $(( (16#$va >> shift) & mask )) -ne "$idx" ]; then
    bad+=" level $n: (>>$shift)&$mask=$idx, want (>>${shifts[$n]:-?})&${masks[$n]:-?};"
  fi
  n=$((n + 1))
done < <(echo "$exp" | sed -n 's/.*_index = (addr >> \([0-9]*\)) & \([0-9]*\) = \([0-9]*\)/\1 \2 \3/p')
[ -n "$preg" ] && [ "$n" -eq "${#shifts[@]}" ] && [ -z "$bad" ] \
  && ok "$arch: --explain gives ${#shifts[@]} indices (the registers' shape), each (addr >> shift) & mask by the manual" \
  || fail "$arch: --explain" "$n lines, want ${#shifts[@]} (register ${preg:-?});$bad $exp"

# pte: seed 002's arm64 64K value; the output address is bits [47:16] (Arm ARM D8.3), computed here.
pte=$(section pte)
oa=$(printf '%x' $(( 0x68000061020713 & 0xffffffff0000 )))
echo "$pte" | grep -q "output address: $oa$" && echo "$pte" | grep -q "AttrIndx=4 AP=00" && echo "$pte" | grep -q "PXN UXN" \
  && ok "$arch: klab pte 0x68000061020713 (64K) -> $oa, AttrIndx=4, AP=00, PXN UXN" || fail "$arch: pte seed" "$pte"
pte=$(section pte-x86)
echo "$pte" | grep -q "output address: $(printf '%x' $(( 0x10001e3 & 0xfffffffe00000 )))$" && echo "$pte" | grep -q "2M-page.* NX" \
  && ok "$arch: klab pte x86 2M entry decoded" || fail "$arch: pte x86" "$pte"

# ptdump: executable ranges exist, all marked executable; and each range's pages are what QEMU (gva2gpa)
# and the raw entries gdb reads say (tests/integration/ptdump_oracle.py, in the same session and CPU).
dump=$(section ptdump)
nx=$(echo "$dump" | grep -c '^0x')
[ "$nx" -gt 0 ] && ! echo "$dump" | grep '^0x' | grep -qv ' r.x/\| .../..x ' \
  && ok "$arch: klab ptdump --filter x: $nx ranges, all executable" || fail "$arch: ptdump --filter x" "$(echo "$dump" | head -3)"
section oracle >"$work/oracle"
relay "$work/oracle"
grep -qx "# ptdump_oracle.py: done" "$work/oracle" && ok "$arch: the ptdump oracle ran to its end" \
  || fail "$arch: ptdump oracle" "$(tail -3 "$work/oracle")"

# Bad input: one gdb error line each.
for bad in 'klab vtop nosuchsym' 'klab vtop' 'klab pte' 'klab pte 12 --level' 'klab ptdump --filter q' \
           'klab ptdump --range 2-1' 'klab vtop 0x10 --frob'; do
  out=$(section "bad $bad")
  [ "$(echo "$out" | grep -c .)" -eq 1 ] && echo "$out" | grep -q '^klab ' && ok "$arch: '$bad': $out" \
    || fail "$arch: '$bad'" "$out"
done
finish
