#!/usr/bin/env bash
# A source-built lab kernel end to end: build the profile (cached), build hellodrv against it, boot with the
# module and a --run hook, stop in gdb in hello_open (symbols loaded by klab when the kernel loads the
# module), check the kernel's own lx-* commands loaded beside klab's, and read /dev/myhello. On arm64-64k
# also check from TCR_EL1 and the config that the kernel runs seed 002's 64K pages, 48-bit VA, 3 levels.
#   tests/integration/source_kernel.sh PROFILE [CPU]
. "$(dirname "$0")/../lib.sh"
profile=$1 cpu=${2:-}
case $profile in x86_64) arch=x86_64 ;; arm64-*) arch=arm64 ;; *) echo "usage: source_kernel.sh PROFILE [CPU]"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=src-$profile
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
start=$(date +%s)
if ! out=$(bash kernels/build.sh "$profile" 2>&1); then
  fail "$profile: kernel build" "$(echo "$out" | tail -1)"; finish
fi
ok "$profile: kernel built or cached ($(( $(date +%s) - start )) s): $(echo "$out" | tail -1 | sed 's/^klab kernel: //')"
dest=$KLAB_CACHE/kernels/$profile
ko=$(bash kernels/module.sh labs/hellodrv "$profile" "$work/hellodrv" 2>"$work/module.err") && [ -f "$ko" ] \
  && ok "$profile: hellodrv builds against the kernel's build folder" || { fail "$profile: hellodrv" "$ko $(tail -2 "$work/module.err")"; finish; }
"$KLAB" boot --kernel "$profile" --name "$name" ${cpu:+--cpu "$cpu"} --add "$ko:/lib/modules/hellodrv.ko" \
  --run 'insmod /lib/modules/hellodrv.ko' --run 'echo "READ $(cat /dev/myhello)"' --detach >/dev/null 2>&1 \
  || { fail "$profile: klab boot --kernel $profile" "boot failed"; finish; }
case $arch in
  arm64) regs=(-ex 'p/x $TCR_EL1') ;;
  x86_64) regs=(-ex 'p/x $cr4') ;;
esac
KLAB_MODULE_PATH=$work/hellodrv timeout 300 "$KLAB" gdb "$name" --batch -ex 'break hello_open' -ex continue \
  -ex 'echo @@ stop\n' -ex 'info symbol $pc' -ex 'klab current' \
  -ex 'echo @@ regs\n' "${regs[@]}" -ex 'klab vtop jiffies --explain' \
  -ex 'eval "monitor gva2gpa 0x%lx", (unsigned long)&jiffies' \
  -ex 'echo @@ lx\n' -ex 'lx-version' -ex 'lx-lsmod' -ex 'echo @@ end\n' -ex delete -ex detach >"$work/out" 2>&1
gdb_ran "$profile" $? "$work/out" "@@ end"
section() { gdb_section "$work/out" "$1"; }
grep -q "klab: symbols of module hellodrv" "$work/out" && section stop | grep -q '^hello_open in section .text' \
  && ok "$profile: module symbols loaded by themselves; break hello_open hit" \
  || fail "$profile: break hello_open" "$(tail -12 "$work/out")"
section stop | grep -q '^current: PID [0-9]* "cat"' \
  && ok "$profile: $(section stop | grep '^current:')" || fail "$profile: current in hello_open" "$(section stop)"
v=$(section regs | vtop_pa)
q=$(section regs | gpa_of)
[ -n "$v" ] && [ "$v" = "$q" ] && ok "$profile: klab vtop jiffies = gva2gpa (0x$v)" || fail "$profile: vtop" "klab ${v:-?} QEMU ${q:-?}"
banner=$(strings "$dest/vmlinux" | grep -m1 '^Linux version ')
section lx | grep -qF "${banner%% (*}" && ok "$profile: the kernel's lx-version loaded beside klab ($(section lx | head -1 | cut -c1-40)...)" \
  || fail "$profile: lx-* commands" "$(section lx | head -3)"
section lx | grep -q '^0x[0-9a-f]* *hellodrv ' && ok "$profile: lx-lsmod lists hellodrv" || fail "$profile: lx-lsmod" "$(section lx)"
if [ "$arch" = arm64 ]; then
  # What each profile must run: TG1 of TCR_EL1 (Arm ARM D19.2.139: 0b10 4K, 0b01 16K, 0b11 64K), VA bits
  # (64 - T1SZ, bits [21:16]) and the levels that leaves: (VA bits - page shift) / (page shift - 3), rounded up.
  case $profile in
    arm64-4k) want="2 48 4 12" ;; arm64-16k) want="1 47 3 14" ;; arm64-64k) want="3 48 3 16" ;; arm64-64k-52) want="3 52 3 16" ;;
  esac
  read -r want_tg1 want_va want_levels shift <<<"$want"
  tcr=$(section regs | sed -n 's/^\$[0-9]* = \(0x[0-9a-f]*\)/\1/p' | head -1)
  tg1=$(( (tcr >> 30) & 3 )) vabits=$(( 64 - ((tcr >> 16) & 63) ))
  levels=$(( (vabits - shift + shift - 4) / (shift - 3) ))
  [ "$tg1" = "$want_tg1" ] && [ "$vabits" = "$want_va" ] && [ "$levels" = "$want_levels" ] \
    && ok "$profile: TCR_EL1 $tcr: $((1 << (shift - 10)))K granule, $vabits-bit VA, $levels levels" \
    || fail "$profile: TCR_EL1" "tcr=$tcr tg1=$tg1 va=$vabits levels=$levels (want $want)"
  grep -qx "CONFIG_PGTABLE_LEVELS=$want_levels" "$dest/config" \
    && ok "$profile: config has CONFIG_PGTABLE_LEVELS=$want_levels" || fail "$profile: config" "$(grep PGTABLE_LEVELS "$dest/config")"
  exp=$(section regs)
  pgdir=$(( shift + (want_levels - 1) * (shift - 3) ))
  echo "$exp" | grep -q "PGDIR_SHIFT = $pgdir  PTRS_PER_PGD = $((1 << (vabits - pgdir))) " \
    && ok "$profile: vtop --explain derives PGDIR_SHIFT = $pgdir, PTRS_PER_PGD = $((1 << (vabits - pgdir)))" \
    || fail "$profile: --explain" "$(echo "$exp" | grep SHIFT)"
fi
if [ "$profile" = x86_64 ]; then
  cr4=$(section regs | sed -n 's/^\$[0-9]* = \(0x[0-9a-f]*\)/\1/p' | head -1)
  want=$([ "${cpu:-max}" = max ] && echo 1 || echo 0)
  [ $(( (cr4 >> 12) & 1 )) = "$want" ] && ok "x86_64: CR4.LA57 = $want with -cpu ${cpu:-max} (CONFIG_X86_5LEVEL kernel)" \
    || fail "x86_64: paging mode" "cr4=$cr4"
fi
"$KLAB" wait "$name" --for "READ " --timeout 120 >/dev/null 2>&1
grep -aq '^READ 1111111111111111111122222222' "$KLAB_RUN_DIR/$name/console.log" \
  && ok "$profile: insmod + cat /dev/myhello from --run returns the vmalloc'ed string" \
  || fail "$profile: /dev/myhello" "$(grep -a 'READ\|myhello\|insmod' "$KLAB_RUN_DIR/$name/console.log" | head -5)"
# The walk as a picture on this profile's own tables (on arm64-64k seed 002's: 3 levels, pgd_index = (addr >>
# 42) & 63): every drawn entry is QEMU's xp of it, the indices are the VA's bits at the granule's shifts, the
# PA is gva2gpa; xmllint and chromium take the file.
mon=$KLAB_RUN_DIR/$name/monitor.sock
jiffies_va=$(nm "$dest/vmlinux" | awk '$3 == "jiffies" { print $1; exit }')
python3 tests/integration/hmp.py "$mon" stop >/dev/null
if "$KLAB" vtop jiffies --vm "$name" --svg "$work/jiffies.svg" >"$work/svg.out" 2>&1 \
   && out=$(python3 tests/integration/svg_check.py walk "$work/jiffies.svg" "$jiffies_va" "$arch" "$mon"); then
  ok "$profile: vtop jiffies --svg: $out"
else fail "$profile: vtop jiffies --svg vs QEMU" "$(tail -2 "$work/svg.out") ${out:-}"; fi
if [ "$profile" = arm64-64k ]; then
  grep -q 'pgd_index = (addr &gt;&gt; 42) &amp; 63' "$work/jiffies.svg" \
    && ok "$profile: the picture derives seed 002's pgd_index = (addr >> 42) & 63" \
    || fail "$profile: seed 002's pgd_index in the picture" "$(grep -o 'pgd_index[^<]*' "$work/jiffies.svg" | head -2)"
fi
if ! out=$(xmllint --noout "$work/jiffies.svg" 2>&1); then fail "$profile: the picture is valid SVG" "$out"
elif out=$(python3 tests/integration/svg_check.py render "$work/jiffies.svg" "$work/jiffies.png"); then
  ok "$profile: the picture is valid SVG, chromium draws it: $out"
else fail "$profile: chromium draws the picture" "$out"; fi
python3 tests/integration/hmp.py "$mon" cont >/dev/null
# A dump of the lab kernel carries its VMCOREINFO (CONFIG_FW_CFG_SYSFS and KEXEC_CORE in the lab configs), and
# klab vtop --dump finds jiffies where QEMU's gva2gpa put it on the live VM.
"$KLAB" dump "$name" -o "$work/src.vmcore" >"$work/dump.out" 2>&1
d=$("$KLAB" vtop --dump "$work/src.vmcore" --vmlinux "$dest/vmlinux" jiffies 2>&1 | awk 'prev ~ /^VIRTUAL/ { print $2 } { prev = $0 }')
[ -n "$v" ] && [ "$d" = "$v" ] && ! grep -q 'no VMCOREINFO' "$work/dump.out" \
  && ok "$profile: its dump has VMCOREINFO; klab vtop --dump jiffies = the live gva2gpa (0x$d)" \
  || fail "$profile: vtop --dump" "dump ${d:-?} live ${v:-?}; $(cat "$work/dump.out"; "$KLAB" vtop --dump "$work/src.vmcore" jiffies 2>&1 | tail -1)"
finish
