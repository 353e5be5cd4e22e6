#!/usr/bin/env bash
# KASLR: two --kaslr boots of one Debian kernel; klab gdb finds each slide from the machine (arm64 VBAR_EL1,
# x86 the IDT), and the symbols it loads must equal the guest's own /proc/kallsyms, breakpoints must hit,
# vtop must equal QEMU's gva2gpa, and the linear map must sit at a different place in each boot.
#   tests/integration/gdb_kaslr.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64) ram_pa=0x1000000 ;; arm64) ram_pa=0x41000000 ;; *) echo "usage: gdb_kaslr.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
echo 'echo "KALLSYMS $(grep " start_kernel$" /proc/kallsyms)"' >"$work/50-kallsyms.sh"
"$KLAB" rootfs --arch "$arch" -o "$work/initrd.cpio.gz" --add "$work/50-kallsyms.sh:/etc/klab.d/50-kallsyms.sh" >/dev/null
for b in a b; do
  "$KLAB" boot --arch "$arch" "${test_kernel[@]}" --name "kaslr-$b" --initrd "$work/initrd.cpio.gz" --kaslr --detach --no-wait >/dev/null 2>&1 \
    || fail "$arch: --kaslr boot $b" "klab boot failed"
done
for b in a b; do
  "$KLAB" wait "kaslr-$b" --for "KALLSYMS " --timeout 150 >/dev/null 2>&1 || { fail "$arch: boot $b to the shell" "no banner"; finish; }
done
linear=()
for b in a b; do
  guest=$(grep -a -m1 '^KALLSYMS ' "$KLAB_RUN_DIR/kaslr-$b/console.log" | awk '{print $2}')
  timeout 200 "$KLAB" gdb "kaslr-$b" --batch -ex 'echo @@ slide\n' -ex 'klab kaslr' \
    -ex 'echo @@ start\n' -ex "info symbol 0x${guest:-0}" \
    -ex 'echo @@ break\n' -ex 'hbreak update_process_times' -ex continue -ex delete \
    -ex 'echo @@ vtop\n' -ex 'klab vtop jiffies' -ex 'eval "monitor gva2gpa 0x%lx", (unsigned long)&jiffies' \
    -ex 'echo @@ current\n' -ex 'klab current' \
    -ex 'echo @@ stack\n' -ex 'p $_thread' -ex 'p ((struct task_struct *)$klab_current())->on_cpu' \
    -ex 'p ((struct task_struct *)$klab_current())->thread_info.cpu' \
    -ex 'echo @@ ptov\n' -ex "klab ptov $ram_pa" \
    -ex 'echo @@ ptovq\n' -ex "python import re; o = gdb.execute('klab ptov $ram_pa', to_string=True); v = re.search(r'^([0-9a-f]+) .*\(linear map\)', o, re.M).group(1); gdb.execute('monitor gva2gpa 0x' + v)" \
    -ex 'echo @@ end\n' -ex disconnect >"$work/out-$b" 2>&1
  gdb_ran "$arch boot $b" $? "$work/out-$b" "@@ end"
  section() { gdb_section "$work/out-$b" "$1"; }
  slide=$(section slide | sed -n 's/^klab kaslr: slide 0x\([0-9a-f]*\) .*/\1/p')
  [ -n "$slide" ] && [ "$slide" != 0 ] && ok "$arch boot $b: slide 0x$slide ($(section slide | sed 's/.*(\(.*\)).*/\1/'))" \
    || fail "$arch boot $b: klab kaslr" "$(section slide)"
  # the guest's own kallsyms minus vmlinux's link address is the slide; gdb names that address start_kernel
  link=$(nm "$(sed -n 's/^vmlinux=//p' "$KLAB_RUN_DIR/kaslr-$b/state")" | awk '$3 == "start_kernel" { print $1 }')
  [ -n "$guest" ] && [ -n "$slide" ] && [ "$(printf '%x' $(( 16#$guest - 16#$link )))" = "$slide" ] \
    && ok "$arch boot $b: slide = the guest's /proc/kallsyms start_kernel $guest - vmlinux's $link" \
    || fail "$arch boot $b: slide vs kallsyms" "kallsyms ${guest:-?}, link ${link:-?}, slide ${slide:-?}"
  section start | grep -q "^start_kernel in section" && ok "$arch boot $b: gdb's symbols put start_kernel at $guest" \
    || fail "$arch boot $b: symbols at the slide" "$(section start)"
  section break | grep -Eq "Breakpoint 1(\.[0-9]+)?, .*update_process_times" && ok "$arch boot $b: a breakpoint at a slid address hits" \
    || fail "$arch boot $b: breakpoint" "$(section break | tail -3)"
  v=$(section vtop | vtop_pa)
  q=$(section vtop | gpa_of)
  [ -n "$v" ] && [ "$v" = "$q" ] && ok "$arch boot $b: klab vtop jiffies = gva2gpa (0x$v)" || fail "$arch boot $b: vtop" "klab ${v:-?}, QEMU ${q:-?}"
  # current against the CPU itself (stopped in the timer interrupt, on the IRQ stack, so not by the stack
  # pointer): the task klab names is running (on_cpu, kernel/sched/core.c) on the CPU gdb stopped, by its
  # own cpu field; gdb's thread N is QEMU's vCPU N-1.
  read -r thr oncpu tcpu < <(section stack | sed -n 's/^\$[0-9]* = \(.*\)$/\1/p' | tr '\n' ' ')
  [ -n "$tcpu" ] && [ "$oncpu" = 1 ] && [ "$tcpu" = "$((thr - 1))" ] \
    && ok "$arch boot $b: klab current's task is running on the stopped CPU $tcpu (its on_cpu and cpu fields)" \
    || fail "$arch boot $b: current vs the CPU" "thread ${thr:-?}, on_cpu ${oncpu:-?}, cpu ${tcpu:-?}: $(section current | tail -2)"
  # ptov against QEMU: the linear address it gives translates back to the PA in QEMU's gva2gpa.
  l=$(section ptov | awk '/\(linear map\)/ { print $1 }')
  q=$(section ptovq | gpa_of)
  [ -n "$l" ] && [ -n "$q" ] && [ "$((16#$q))" = "$((ram_pa))" ] && ok "$arch boot $b: ptov $ram_pa -> $l, and QEMU's gva2gpa of $l is $ram_pa" \
    || fail "$arch boot $b: ptov" "ptov ${l:-?}, gva2gpa ${q:-?}: $(section ptov; section ptovq)"
  linear+=("$l")
done
# Each address was checked against QEMU in its own boot above; that they differ is the move.
[ -n "${linear[0]}" ] && [ -n "${linear[1]}" ] && [ "${linear[0]}" != "${linear[1]}" ] \
  && ok "$arch: the linear map moved between the two boots (${linear[0]} vs ${linear[1]}, each = gva2gpa)" \
  || fail "$arch: linear map moves" "${linear[*]}"
finish
