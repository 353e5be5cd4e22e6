#!/usr/bin/env bash
# Module symbols load by themselves: seed 002's hellodrv, built against Debian's headers for the fetched x86
# kernel, is insmod'ed by the guest while gdb waits on a pending `break hello_open`; the breakpoint must hit
# at the address the guest's own /proc/kallsyms gives, in the process that opened /dev/myhello.
#   tests/integration/gdb_module.sh
. "$(dirname "$0")/../lib.sh"
arch=x86_64
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=gdbmod
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
ko=$(bash kernels/module.sh labs/hellodrv "${KLAB_TEST_KERNEL:-debian-amd64}" "$work/hellodrv" 2>"$work/module.err") && [ -f "$ko" ] \
  && ok "hellodrv builds against Debian's headers" || { fail "hellodrv build" "$ko $(tail -2 "$work/module.err")"; finish; }
cat >"$work/50-hello.sh" <<'HOOK'
insmod /lib/modules/hellodrv.ko
echo "KALLSYMS $(grep ' hello_open' /proc/kallsyms)"
sleep 1
echo "READ $(cat /dev/myhello)"
HOOK
# klab's fresh image (its hooks load qemu_fw_cfg first, so a dump carries VMCOREINFO for klab crash below)
"$KLAB" boot --arch $arch "${test_kernel[@]}" --name $name --add "$ko:/lib/modules/hellodrv.ko" \
  --add "$work/50-hello.sh:/etc/klab.d/50-hello.sh" --detach >/dev/null 2>&1 \
  || { fail "boot" "klab boot failed"; finish; }
# gdb stops at start_kernel, leaves `break hello_open` pending, and resumes; the guest's hook insmods and
# opens /dev/myhello. After the checks gdb deletes the breakpoint and detaches, so the guest goes on.
KLAB_MODULE_PATH=$work/hellodrv timeout 300 "$KLAB" gdb $name --batch -ex 'break hello_open' -ex continue \
  -ex 'echo @@ stop\n' -ex 'p/x $pc' -ex 'info symbol $pc' -ex 'klab current' \
  -ex 'echo @@ modules\n' -ex 'klab modules' \
  -ex 'delete' -ex 'break vfree if $_caller_is("hello_open")' -ex continue -ex 'echo @@ vfree\n' -ex 'p/x $rdi' \
  -ex 'klab whatis $rdi' -ex 'echo @@ search\n' -ex 'klab search *(unsigned long *)$rdi --max 0' \
  -ex 'eval "monitor cpu %d", $_thread - 1' -ex 'eval "monitor gva2gpa 0x%lx", $rdi' -ex 'echo @@ end\n' -ex delete -ex detach >"$work/out" 2>&1
gdb_ran "hellodrv" $? "$work/out" "@@ end"
section() { gdb_section "$work/out" "$1"; }
grep -q "klab: symbols of module hellodrv from $work/hellodrv/hellodrv.ko" "$work/out" \
  && ok "klab loaded hellodrv's symbols when the kernel loaded it" || fail "module symbols" "$(tail -15 "$work/out")"
"$KLAB" wait $name --for "READ " --timeout 120 >/dev/null 2>&1 || fail "guest read /dev/myhello" "no READ line"
log=$KLAB_RUN_DIR/$name/console.log
guest=$(grep -a -m1 '^KALLSYMS ' "$log" | awk '{print $2}')
pc=$(section stop | sed -n 's/^\$[0-9]* = 0x\([0-9a-f]*\)/\1/p')
section stop | grep -q '^hello_open in section .text of .*hellodrv.ko' \
  && ok "the pending breakpoint hit in hello_open (gdb: $(section stop | grep '^hello_open'))" \
  || fail "break hello_open" "$(section stop | head -5)"
# gdb may stop after the function's entry (prologue analysis); it must be within hello_open's first bytes.
[ -n "$guest" ] && [ -n "$pc" ] && [ $((16#$pc - 16#$guest)) -ge 0 ] && [ $((16#$pc - 16#$guest)) -lt 64 ] \
  && ok "stop pc $pc is hello_open as the guest's /proc/kallsyms places it ($guest)" \
  || fail "pc vs kallsyms" "pc ${pc:-?}, kallsyms ${guest:-?}"
section stop | grep -q '^current: PID [0-9]* "cat"' && ok "the task in hello_open is cat (klab current)" \
  || fail "current in hello_open" "$(section stop | tail -4)"
section modules | grep -q "^hellodrv .*hellodrv.ko" && ok "klab modules lists hellodrv with its .ko" \
  || fail "klab modules" "$(section modules)"
# hello_open's vmalloc'ed buffer, at the vfree that hello_open calls: the guest printed its address (%px)
psz=$(grep -a -m1 'myhello open, psz=' "$log" | sed 's/.*psz=\([0-9a-f]*\).*/\1/')
rdi=$(section vfree | sed -n 's/^\$[0-9]* = 0x\([0-9a-f]*\)/\1/p')
[ -n "$psz" ] && [ "$rdi" = "$psz" ] && ok "stopped in vfree of hello_open's buffer $psz (the guest's psz)" \
  || fail "vfree of psz" "rdi ${rdi:-?} psz ${psz:-?}"
section vfree | grep -qE "^$psz: vmalloc, vmap area $psz-[0-9a-f]+, vm_struct [0-9a-f]+ size $((192 * 1024 + 4096)) \(with guard\) VM_ALLOC[^,]*, caller hello_open\+0x[0-9a-f]+ in \.text" \
  && ok "klab whatis psz: vmalloc, 192K + guard, VM_ALLOC, caller hello_open" || fail "klab whatis psz" "$(section vfree)"
# the buffer's first 8 bytes, searched in the whole kernel half: at psz and at the linear-map address of
# the PA QEMU translates psz to
gpa=$(section search | gpa_of)
hits=$(section search | sed -n 's/^\([0-9a-f]*\): 3131313131313131  (PA \([0-9a-f]*\))$/\1 \2/p')
if [ -n "$gpa" ] && grep -q "^$psz $gpa$" <<<"$hits" && [ "$(awk -v p="$gpa" '$2 == p' <<<"$hits" | wc -l)" -ge 2 ]; then
  ok "klab search finds the buffer's bytes at psz and at its linear-map alias (PA $gpa)"
else fail "klab search of the vmalloc'ed string" "gpa ${gpa:-?}; $(section search | tail -5)"; fi
grep -aq '^READ 1111111111111111111122222222' "$log" && ok "cat /dev/myhello returns the vmalloc'ed string" \
  || fail "hellodrv read" "$(grep -a 'READ\|myhello' "$log")"
# klab crash NAME: crash's mod -S gets the .ko from klab's module path, so crash knows the module's symbols;
# hello_open's address there is the guest's own /proc/kallsyms one.
printf 'mod\nsym hello_open\nquit\n' | KLAB_MODULE_PATH=$work/hellodrv timeout 300 "$KLAB" crash $name -- -s >"$work/crash.out" 2>&1
csym=$(awk '$3 == "hello_open" && $4 == "[hellodrv]" { print $1; exit }' "$work/crash.out")
if grep -q 'module_core_size\|cannot handle' "$work/crash.out"; then
  skip "klab crash: mod -S with klab's module path" "Debian 12's crash 8.0.2 cannot read this kernel ($(grep -m1 'module_core_size\|cannot handle' "$work/crash.out"))"
elif grep -q '^ffff[0-9a-f]* *hellodrv .*/hellodrv.ko' "$work/crash.out" && [ -n "$csym" ] && [ "$csym" = "$guest" ]; then
  ok "klab crash: mod -S loaded hellodrv.ko from klab's module path; crash's sym hello_open is the guest's kallsyms $guest"
else
  fail "klab crash: mod -S" "sym ${csym:-?} kallsyms ${guest:-?}; $(grep -E 'hellodrv|mod:' "$work/crash.out" | head -4)"
fi
finish
