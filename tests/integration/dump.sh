#!/usr/bin/env bash
# klab dump and klab drgn on a real guest at its shell: the dump carries the kernel's VMCOREINFO; drgn (Debian's
# 0.0.22) finds in it the tasks the guest listed in /proc just before, and reads through its own translation
# the bytes at the physical address QEMU's gva2gpa gives, and klab vtop / ptdump --dump give those PAs;
# klab crash opens it in crash (sys, log, ps = the guest's /proc, bt of a sleeping task), and a fresh dump of
# the VM; the VM runs on; bad input gets one line.
#   tests/integration/dump.sh x86_64|arm64 [CPU] [kaslr]
. "$(dirname "$0")/../lib.sh"
arch=$1 cpu=${2:-} kaslr=${3:-}
case $arch in x86_64) kname=debian-amd64 ;; arm64) kname=debian-arm64 ;; *) echo "usage: dump.sh x86_64|arm64 [CPU] [kaslr]"; exit 2 ;; esac
case $kaslr in ""|kaslr) ;; *) echo "usage: dump.sh x86_64|arm64 [CPU] [kaslr]"; exit 2 ;; esac
kname=${KLAB_TEST_KERNEL:-$kname}
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=dump-$arch
tag=$arch${cpu:+/$cpu}${kaslr:+/kaslr}
work=$(mktemp -d /var/tmp/klab-dump-test-XXXXXX)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; mountpoint -q "$work/tiny" && umount "$work/tiny"; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
vmlinux=$KLAB_CACHE/kernels/$kname/vmlinux
cat >"$work/50-dump.sh" <<'HOOK'
sleep 100000 &
echo "SLEEPER $!"
sleep 1
# the shell's own glob and echo: no process of the listing's own is in the list
set -- /proc/[0-9]*
echo "PIDS ${*//\/proc\//}"
echo "HOOKPID $$"
echo "UNAME $(uname -r)"
echo "DUMP READY"
HOOK
"$KLAB" boot --arch "$arch" --kernel "$kname" --name "$name" --no-wait --detach ${cpu:+--cpu "$cpu"} ${kaslr:+--kaslr} \
  --add "$work/50-dump.sh:/etc/klab.d/50-dump.sh" >"$work/boot" 2>&1 || { fail "$tag: boot" "$(cat "$work/boot")"; finish; }
"$KLAB" wait "$name" --for "DUMP READY" --timeout 400 >/dev/null 2>&1 \
  || { fail "$tag: the guest reached its shell" "$(tail -3 "$KLAB_RUN_DIR/$name/console.log")"; finish; }
sleep 2
log=$KLAB_RUN_DIR/$name/console.log
guest_pids=$(tr -d '\r' <"$log" | sed -n 's/^PIDS //p' | tail -1)
release=$(tr -d '\r' <"$log" | sed -n 's/^UNAME //p' | tail -1)
sleeper=$(tr -d '\r' <"$log" | sed -n 's/^SLEEPER //p' | tail -1)

# --- klab dump ---------------------------------------------------------------------------------------------
if "$KLAB" dump "$name" -o "$work/a.vmcore" >"$work/dump.out" 2>&1; then
  ok "$tag: klab dump: $(cat "$work/dump.out")"
else fail "$tag: klab dump" "$(cat "$work/dump.out")"; finish; fi
grep -q "no VMCOREINFO" "$work/dump.out" && fail "$tag: the dump has VMCOREINFO" "$(cat "$work/dump.out")" \
  || ok "$tag: the dump carries the kernel's VMCOREINFO (qemu_fw_cfg loaded, vmcoreinfo device)"
grep -aq "OSRELEASE=$release" <(head -c 1048576 "$work/a.vmcore") && ok "$tag: its VMCOREINFO names the guest's uname -r ($release)" \
  || fail "$tag: VMCOREINFO OSRELEASE" "no OSRELEASE=$release in the first MiB"
[ "$(stat -c %a "$work/a.vmcore")" -le 600 ] && ok "$tag: the dump is readable by its owner only ($(stat -c %a "$work/a.vmcore"))" \
  || fail "$tag: dump mode" "$(stat -c %a "$work/a.vmcore")"
"$KLAB" status | grep -E "^$name +.* running " >/dev/null && ok "$tag: the VM runs on after the dump" \
  || fail "$tag: VM state after the dump" "$("$KLAB" status)"

# --- drgn: the tasks and the translation ---------------------------------------------------------------------
cat >"$work/tasks.py" <<'EOF2'
from drgn.helpers.linux.pid import for_each_task
procs = sorted({int(t.tgid) for t in for_each_task(prog) if int(t.pid) == int(t.tgid) and int(t.pid) > 0})
print("DRGN-PIDS " + " ".join(map(str, procs)))
print("DRGN-COMM " + prog["init_task"].comm.string_().decode())
names = {int(t.pid): t.comm.string_().decode() for t in for_each_task(prog)}
print("DRGN-NAMES " + " ".join("%d:%s" % kv for kv in sorted(names.items())))
import sys
sleeper = int(sys.argv[1])
t = [t for t in for_each_task(prog) if int(t.pid) == sleeper][0]
for label, va in (("banner", prog["linux_banner"].address_of_().value_()), ("init_task", prog["init_task"].address_of_().value_()),
                  ("sleeper", t.value_()), ("sleeper-stack", t.stack.value_() + 0x100)):
    print("DRGN-VA %s %x" % (label, va))
EOF2
"$KLAB" drgn "$work/a.vmcore" --vmlinux "$vmlinux" -- "$work/tasks.py" "$sleeper" >"$work/drgn.out" 2>&1
drgn_pids=$(sed -n 's/^DRGN-PIDS //p' "$work/drgn.out")
if [ -z "$drgn_pids" ]; then fail "$tag: klab drgn ran the script" "$(tail -5 "$work/drgn.out")"; finish; fi
grep -qx "DRGN-COMM swapper/0" "$work/drgn.out" && ok "$tag: drgn: init_task.comm is swapper/0" || fail "$tag: drgn init_task.comm" "$(cat "$work/drgn.out")"
# The guest listed /proc a few seconds before the dump: only kernel workers may have come or gone since.
# Processes newer than the listing (the shell init starts after the hooks, what it runs) and the hook's own
# shell (unless it is init itself) are not part of the comparison.
hookpid=$(tr -d '\r' <"$log" | sed -n 's/^HOOKPID //p' | tail -1)
maxpid=$(tr ' ' '\n' <<<"$guest_pids" | grep . | sort -n | tail -1)
extra=$(comm -3 <(tr ' ' '\n' <<<"$guest_pids" | grep . | sort) <(tr ' ' '\n' <<<"$drgn_pids" | grep . | sort) | tr -d '\t')
odd=
for p in $extra; do
  { [ "$p" -gt "$maxpid" ] || { [ "$p" = "$hookpid" ] && [ "$p" != 1 ]; }; } && continue
  n=$(sed -n 's/^DRGN-NAMES //p' "$work/drgn.out" | tr ' ' '\n' | sed -n "s/^$p://p")
  case $n in kworker/*) ;; *) odd="$odd $p:${n:-gone}" ;; esac
done
[ -z "$odd" ] && [ "$(wc -w <<<"$drgn_pids")" -gt 20 ] \
  && ok "$tag: drgn's processes are the guest's /proc ($(wc -w <<<"$drgn_pids") pids${extra:+; kworkers that came or went: $(echo $extra)})" \
  || fail "$tag: drgn's processes vs the guest's /proc" "differ beyond kworkers:$odd; guest: $guest_pids; drgn: $drgn_pids"
# drgn's translation of each address must read what is at the PA QEMU's own walker gives (gva2gpa, live VM)
vas=$(sed -n 's/^DRGN-VA //p' "$work/drgn.out")
gdbargs=()
while read -r label va; do gdbargs+=(-ex "monitor gva2gpa 0x$va"); done <<<"$vas"
timeout 120 "$KLAB" gdb "$name" --batch "${gdbargs[@]}" -ex detach >"$work/gva" 2>&1
pas=($(gpa_of <"$work/gva" | tr -d '\r'))
cat >"$work/reads.py" <<'EOF2'
import sys
pairs = sys.argv[1:]
for i in range(0, len(pairs), 2):
    va, pa = int(pairs[i], 16), int(pairs[i + 1], 16)
    print("SAME %x %s" % (va, prog.read(va, 64) == prog.read(pa, 64, True)))
EOF2
args=() i=0
while read -r label va; do args+=("$va" "${pas[$i]:-0}"); i=$((i + 1)); done <<<"$vas"
"$KLAB" drgn "$work/a.vmcore" --vmlinux "$vmlinux" -- "$work/reads.py" "${args[@]}" >"$work/reads.out" 2>&1
[ "${#pas[@]}" -eq 4 ] && [ "$(grep -c ' True$' "$work/reads.out")" -eq 4 ] \
  && ok "$tag: drgn reads banner, init_task, a task and its stack at the PAs QEMU's gva2gpa gives" \
  || fail "$tag: drgn's translation vs gva2gpa" "pas: ${pas[*]}; $(cat "$work/reads.out")"
if [ -n "$kaslr" ]; then
  offset=$(grep -ao -m1 "KERNELOFFSET=[0-9a-f]*" <(head -c 1048576 "$work/a.vmcore") | cut -d= -f2)
  link=$(nm "$vmlinux" | awk '$3 == "linux_banner" { print $1; exit }')
  banner=$(awk '$1 == "banner" { print $2 }' <<<"$vas")
  [ -n "$offset" ] && [ "$offset" != 0 ] && [ "$((16#$link + 16#$offset))" = "$((16#$banner))" ] \
    && ok "$tag: the kernel moved: KERNELOFFSET $offset, the banner drgn finds is its link address plus it" \
    || fail "$tag: KASLR" "KERNELOFFSET=$offset link=$link banner=$banner"
fi
# klab's own reader: vtop --dump walks the kernel's tables found by VMCOREINFO in the dump's RAM; each PA
# must be the one QEMU's gva2gpa gave on the live VM
vtop_pas() { "$KLAB" vtop --dump "$@" 2>&1 | awk 'prev ~ /^VIRTUAL/ { print $2 } { prev = $0 }'; }
mapfile -t kpas < <(vtop_pas "$work/a.vmcore" $(awk '{ print "0x" $2 }' <<<"$vas"))
[ "${#pas[@]}" -eq 4 ] && [ "${kpas[*]}" = "${pas[*]}" ] \
  && ok "$tag: klab vtop --dump: banner, init_task, a task and its stack at QEMU's gva2gpa PAs (${kpas[*]})" \
  || fail "$tag: klab vtop --dump vs gva2gpa" "klab: ${kpas[*]}; QEMU: ${pas[*]}; $("$KLAB" vtop --dump "$work/a.vmcore" 0x$(head -1 <<<"$vas" | awk '{print $2}') 2>&1 | tail -3)"
banner_va=$(awk '$1 == "banner" { print $2 }' <<<"$vas")
[ "$(vtop_pas "$work/a.vmcore" --vmlinux "$vmlinux" linux_banner)" = "${pas[0]}" ] \
  && ok "$tag: klab vtop --dump --vmlinux takes a symbol (linux_banner at ${pas[0]})" \
  || fail "$tag: vtop --dump of a symbol" "$("$KLAB" vtop --dump "$work/a.vmcore" --vmlinux "$vmlinux" linux_banner 2>&1 | head -3)"
"$KLAB" ptdump --dump "$work/a.vmcore" --range "$banner_va-$banner_va" >"$work/pt.out" 2>&1
grep -q "PA 0x${pas[0]} " "$work/pt.out" && ok "$tag: klab ptdump --dump: the banner's range maps ${pas[0]}" \
  || fail "$tag: ptdump --dump" "$(cat "$work/pt.out")"
"$KLAB" ptdump --dump "$work/a.vmcore" --vmlinux "$vmlinux" --non-present --stats --quiet >"$work/np.out" 2>&1 \
  && grep -q "leaves" "$work/np.out" && ok "$tag: klab ptdump --dump --non-present (the kernel's facts from the vmlinux's folder)" \
  || fail "$tag: ptdump --dump --non-present" "$(cat "$work/np.out")"
# the same stop, live and dumped: QEMU's monitor stops the guest (no klab code on the way), then the kernel
# half of a CPU in kernel mode, live through the RAM file, equals the dump's, line for line
hmp() { python3 tests/integration/hmp.py "$KLAB_RUN_DIR/$name/monitor.sock" "$@"; }
hmp stop >/dev/null
"$KLAB" dump "$name" -o "$work/s.vmcore" >/dev/null 2>&1
# the same stop as a kdump-compressed file (QEMU writes it flattened): libklab's kdump reader on real pages
"$KLAB" dump "$name" --format kdump-zlib -o "$work/sz.vmcore" >/dev/null 2>&1
kcpu= mode_reg=$([ "$arch" = x86_64 ] && echo cs || echo cpsr)
for c in 0 1; do
  cs=$("$KLAB" regs --vm "$name" --cpu $c $mode_reg 2>/dev/null | awk -v r=$mode_reg '$1 == r { print $2; exit }')
  [ -n "$cs" ] && { { [ "$arch" = x86_64 ] && [ $((cs & 3)) -eq 0 ]; } || { [ "$arch" = arm64 ] && [ $((cs & 0xc)) -ne 0 ]; }; } \
    && { kcpu=$c; break; }
done
half=0x8000000000000000-0xffffffffffffffff
if [ -n "$kcpu" ]; then
  "$KLAB" ptdump --vm "$name" --cpu "$kcpu" --range $half >"$work/live.pt" 2>&1
  "$KLAB" ptdump --dump "$work/s.vmcore" --range $half >"$work/dump.pt" 2>&1
  [ -s "$work/live.pt" ] && [ "$(wc -l <"$work/dump.pt")" -gt 20 ] && cmp -s "$work/live.pt" "$work/dump.pt" \
    && ok "$tag: klab ptdump --dump of the kernel half equals the live ptdump at the same stop ($(wc -l <"$work/dump.pt") lines, CPU $kcpu)" \
    || fail "$tag: ptdump --dump vs live" "$(diff "$work/live.pt" "$work/dump.pt" | head -6)"
  "$KLAB" ptdump --dump "$work/sz.vmcore" --range $half >"$work/dumpz.pt" 2>&1
  [ -s "$work/live.pt" ] && cmp -s "$work/live.pt" "$work/dumpz.pt" \
    && ok "$tag: and so does klab ptdump --dump of the same stop's kdump-zlib file ($(du -m "$work/sz.vmcore" | cut -f1) MiB)" \
    || fail "$tag: ptdump --dump of kdump-zlib vs live" "$(diff "$work/live.pt" "$work/dumpz.pt" | head -6)"
else
  fail "$tag: ptdump --dump vs live" "no CPU in kernel mode at the stop"
fi
# and each CPU's registers in the dump's notes are the ones the live stub reads at that stop
names=$([ "$arch" = x86_64 ] && echo "rip rsp cr3" || echo "pc sp cpsr")
regs_of() { awk 'NF == 2 && $2 ~ /^0x/ { print $1, $2 }'; }
for c in 0 1; do
  live=$("$KLAB" regs --vm "$name" --cpu $c $names 2>&1 | regs_of)
  dumped=$("$KLAB" regs --dump "$work/s.vmcore" --cpu $c $names 2>&1 | regs_of)
  dumpz=$("$KLAB" regs --dump "$work/sz.vmcore" --cpu $c $names 2>&1 | regs_of)
  [ "$(wc -l <<<"$live")" -eq 3 ] && [ "$live" = "$dumped" ] && [ "$live" = "$dumpz" ] \
    && ok "$tag: klab regs --dump --cpu $c (ELF and kdump-zlib): $(echo $names) as the live stub reads them ($(echo $dumped | cut -c1-60)...)" \
    || fail "$tag: regs --dump --cpu $c" "live: $(echo $live); dump: $(echo $dumped); kdump: $(echo $dumpz)"
done
expect_error "$tag: klab regs --dump of a CPU the dump does not have" "no CPU 7" "$KLAB" regs --dump "$work/s.vmcore" --cpu 7
# --cpu N: that CPU's own root. x86_64: CR3 from QEMU's note, so the whole space, the user half of the task it
# ran included, equals the live ptdump of that CPU at the same stop (ELF and kdump-zlib).
if [ "$arch" = x86_64 ]; then
  for c in 0 1; do
    "$KLAB" ptdump --vm "$name" --cpu $c >"$work/live$c.pt" 2>&1
    "$KLAB" ptdump --dump "$work/s.vmcore" --cpu $c >"$work/dump$c.pt" 2>&1
    "$KLAB" ptdump --dump "$work/sz.vmcore" --cpu $c >"$work/dumpz$c.pt" 2>&1
    user=$(awk '/^0x0000/ { n++ } END { print n + 0 }' "$work/live$c.pt")
    [ -s "$work/live$c.pt" ] && cmp -s "$work/live$c.pt" "$work/dump$c.pt" && cmp -s "$work/live$c.pt" "$work/dumpz$c.pt" \
      && ok "$tag: klab ptdump --dump --cpu $c (its CR3) equals the live ptdump --cpu $c, user half included ($user user ranges)" \
      || fail "$tag: ptdump --dump --cpu $c vs live" "$(diff "$work/live$c.pt" "$work/dump$c.pt" | head -4; diff "$work/live$c.pt" "$work/dumpz$c.pt" | head -2)"
  done
else
  expect_error "$tag: klab vtop --dump --cpu on arm64 (no TTBR in QEMU's notes)" "no TTBR0_EL1" \
    "$KLAB" vtop --dump "$work/s.vmcore" --cpu 0 0x400000
fi
hmp cont >/dev/null
expect_error "$tag: klab vtop --dump of a user address" "user address" "$KLAB" vtop --dump "$work/a.vmcore" 0x400000
expect_error "$tag: klab vtop --dump with --vm" "reads a file" "$KLAB" vtop --dump "$work/a.vmcore" --vm "$name" 0x$banner_va
# and klab drgn NAME dumps the live VM itself
"$KLAB" drgn "$name" -- "$work/tasks.py" "$sleeper" >"$work/live.out" 2>&1
grep -q "^DRGN-PIDS .* $sleeper\( \|$\)" "$work/live.out" && ok "$tag: klab drgn NAME: a fresh dump of the live VM, the sleeper in it" \
  || fail "$tag: klab drgn NAME" "$(tail -3 "$work/live.out")"
[ ! -e "$KLAB_RUN_DIR/$name/drgn.vmcore" ] && ok "$tag: klab drgn NAME removed its dump" || fail "$tag: drgn.vmcore left" ""

# --- crash: it opens the dump --------------------------------------------------------------------------------
# klab crash runs the crash `make crash` built for the dump's architecture (8.0.6 and klab's patches: an x86_64
# host reads arm64 dumps with it); without one, Debian's 8.0.2 reads the host's architecture only.
if [ -x "$KLAB_CACHE/crash/$arch/crash" ]; then
  ok "$tag: make crash built crash for $arch dumps ($(cat "$KLAB_CACHE/crash/$arch/VERSION" 2>/dev/null))"
else
  fail "$tag: crash for $arch dumps" "no $KLAB_CACHE/crash/$arch/crash (make crash)"
fi
if [ "$arch" != "$(uname -m)" ]; then
  mkdir -p "$work/no-crash-cache"
  expect_error "$tag: with no crash built for $arch, klab crash says Debian's reads its host's architecture only" \
    "host's architecture .*make crash" env KLAB_CACHE="$work/no-crash-cache" "$KLAB" crash "$work/a.vmcore" --vmlinux "$vmlinux"
fi
# crash's sys names the guest's uname -r (a literal: Debian's 6.12 releases have a '+')
names_release() { awk -v r="$release" '$1 == "RELEASE:" && $2 == r { found = 1 } END { exit !found }' "$1"; }
printf 'sys\nlog\nquit\n' | timeout 300 "$KLAB" crash "$work/a.vmcore" --vmlinux "$vmlinux" -- -s >"$work/crash.out" 2>&1
names_release "$work/crash.out" && ok "$tag: crash opens it: sys names release $release" \
  || fail "$tag: crash sys" "$(grep -v '^$' "$work/crash.out" | head -5)"
# What crash read: klab's copy of the vmlinux in the cache (machine/crash_vmlinux.c) whose .gdb_index section is,
# byte for byte, the index gdb-multiarch itself wrote for this build-id (kernels/gdb-index.sh), found by readelf.
read -r dev ino size mtime <<<"$(stat -c '%d %i %s %Y' "$vmlinux")"
copy=$(ls "$KLAB_CACHE/crash-vmlinux/$(printf '%x-%x-%x-%d' "$dev" "$ino" "$size" "$mtime")".*-index* 2>/dev/null | head -1)
id=$(readelf -n "$vmlinux" 2>/dev/null | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p' | head -1)
read -r off len <<<"$(readelf -SW "$copy" 2>/dev/null | sed 's/^ *\[ *[0-9]*\]//' | awk '$1 == ".gdb_index" { print $4, $5 }')"
if [ -n "$copy" ] && [ -n "$off" ] && [ -s "$KLAB_CACHE/gdb-index/$id.gdb-index" ] \
   && cmp -s <(tail -c +$((16#$off + 1)) "$copy" | head -c $((16#$len))) "$KLAB_CACHE/gdb-index/$id.gdb-index"; then
  ok "$tag: crash read a copy of the vmlinux whose .gdb_index is gdb's own index of it ($((16#$len)) bytes, build-id $id)"
else fail "$tag: crash's indexed vmlinux" "copy '${copy:-none}', .gdb_index at '${off:-?}' size '${len:-?}', gdb's index $KLAB_CACHE/gdb-index/$id.gdb-index"; fi
last=$(tr -d '\r' <"$log" | grep -E '^\[ *[0-9]+\.[0-9]{6}\] ' | tail -1)
grep -qF -- "$last" "$work/crash.out" && ok "$tag: crash's log has the console's last kernel line" \
  || fail "$tag: crash log" "console: $last"
# crash's task list: its processes are the guest's /proc, with the allowances drgn's comparison makes.
# crash_ps LABEL FILE: FILE holds crash's sys and ps -G.
crash_ps() {
  local label=$1 out=$2 ps pids extra odd= p n tasks
  ps=$(sed 's/^>/ /' "$out" | awk 'NF == 9 && $1 ~ /^[0-9]+$/ && $1 > 0 && $4 ~ /^[0-9a-f]+$/ && length($4) == 16 { print $1, $9 }')
  pids=$(awk '{ print $1 }' <<<"$ps" | sort -u | tr '\n' ' ')
  extra=$(comm -3 <(tr ' ' '\n' <<<"$guest_pids" | grep . | sort) <(tr ' ' '\n' <<<"$pids" | grep . | sort) | tr -d '\t')
  for p in $extra; do
    { [ "$p" -gt "$maxpid" ] || { [ "$p" = "$hookpid" ] && [ "$p" != 1 ]; }; } && continue
    n=$(awk -v p="$p" '$1 == p { print $2 }' <<<"$ps")
    case $n in \[kworker/*) ;; *) odd="$odd $p:${n:-gone}" ;; esac
  done
  tasks=$(sed -n 's/^ *TASKS: \([0-9]*\)$/\1/p' "$out")
  [ -z "$odd" ] && [ "$(wc -w <<<"$pids")" -gt 20 ] && [ "${tasks:-0}" -gt 20 ] \
    && ok "$tag: $label's ps is the guest's /proc ($(wc -w <<<"$pids") processes, sys TASKS: $tasks${extra:+; kworkers that came or went: $(echo $extra)})" \
    || fail "$tag: $label's ps vs the guest's /proc" "TASKS ${tasks:-?}; differ:$odd; guest: $guest_pids; crash: $pids; crash printed: $(sed -n '/^ *PANIC:/,$p' "$out" | grep -v '^$' | sed -n 2,7p | tr '\n' '|')"
}
vtop_cmds=$(awk '{ print "vtop " $2 }' <<<"$vas")
pfns=() i=0
while read -r label va; do pfns+=("$((16#${pas[$i]:-0} >> 12))"); i=$((i + 1)); done <<<"$vas"
kmem_cmds=$(for i in "${!pfns[@]}"; do printf 'kmem -p %x\n' "$((pfns[i] << 12))"; done)
printf 'sys\nps -G\nbt %s\nbt -a\n%s\necho @@ kmem\n%s\nquit\n' "$sleeper" "$vtop_cmds" "$kmem_cmds" \
  | timeout 300 "$KLAB" crash "$work/a.vmcore" --vmlinux "$vmlinux" -- -s >"$work/crash-tasks.out" 2>&1
crash_ps crash "$work/crash-tasks.out"
sed -n "/^PID: $sleeper /,/^PID: /p" "$work/crash-tasks.out" >"$work/crash-bt.out"
grep -q 'COMMAND: "sleep"' "$work/crash-bt.out" && grep -Eq ' (do_nanosleep|hrtimer_nanosleep) at ' "$work/crash-bt.out" \
  && ok "$tag: crash's bt $sleeper: the sleeper waits in $(grep -Eo '(do_nanosleep|hrtimer_nanosleep)' "$work/crash-bt.out" | head -1)" \
  || fail "$tag: crash bt of the sleeper" "$(head -6 "$work/crash-bt.out")"
# bt -a: the task on each CPU at the dump, from the registers in the dump's notes, frames down to the
# CPU's idle loop or the code it was running; no stack crash cannot read.
cpus=$(awk '/^ *CPUS:/ { print $2; exit }' "$work/crash-tasks.out")
good=0
for c in $(seq 0 $((${cpus:-0} - 1))); do
  awk -v c="$c" '/^PID: / { on = ($0 ~ ("CPU: " c " ")) && !seen[c]++ ; next } on && /^ *#[0-9]+ \[/ { n++ } END { exit !(n >= 2) }' \
    "$work/crash-tasks.out" && good=$((good + 1))
done
! grep -Eq 'read of stack at|invalid size request' "$work/crash-tasks.out" && [ "${cpus:-0}" -ge 2 ] && [ "$good" -eq "$cpus" ] \
  && ok "$tag: crash's bt -a: the running task of each of the $cpus CPUs, with its frames" \
  || fail "$tag: crash bt -a" "$good of ${cpus:-?} CPUs with frames; $(grep -E -m2 'read of stack|invalid size' "$work/crash-tasks.out")"
# vtop: crash's own walk of each address gives the PA QEMU's gva2gpa gave; kmem -p: the page of that PA
cvtop=$(awk '/^ *VIRTUAL +PHYSICAL *$/ { getline; print $2 }' "$work/crash-tasks.out" | tr '\n' ' ')
want=$(for p in "${pas[@]}"; do printf '%x ' "$((16#$p))"; done)
got=$(for p in $cvtop; do printf '%x ' "$((16#$p))"; done)
[ "${#pas[@]}" -eq 4 ] && [ "$got" = "$want" ] && ok "$tag: crash's vtop: banner, init_task, a task and its stack at QEMU's gva2gpa PAs" \
  || fail "$tag: crash vtop vs gva2gpa" "crash: $got; QEMU: $want"
# (vtop prints its page's line too: kmem -p's come after the marker that crash hands to gdb's echo)
kphys=$(awk '/^@@ kmem/ { on = 1 } on && /^ +PAGE +PHYSICAL +MAPPING/ { getline; print $2 }' "$work/crash-tasks.out" | tr '\n' ' ')
want=$(for f in "${pfns[@]}"; do printf '%x ' "$((f << 12))"; done)
got=$(for p in $kphys; do printf '%x ' "$((16#$p))"; done)
[ "${#pfns[@]}" -eq 4 ] && [ "$got" = "$want" ] && ok "$tag: crash's kmem -p: the struct page of each of those PAs" \
  || fail "$tag: crash kmem -p" "crash: $got; want: $want"
# Debian's crash (8.0.2) on the same dump, where it can read it: klab gives it a vmlinux whose DWARF counts
# struct pid's one upid (machine/crash_compat.h), and its ps is the guest's /proc too.
# (8.0.2 predates the module layout of 6.4: it does not start on 6.12, and that is what it says)
if [ "$arch" = "$(uname -m)" ] && command -v crash >/dev/null && [[ $release == 6.1.* ]]; then
  printf 'sys\nps -G\nquit\n' | KLAB_CRASH=$(command -v crash) timeout 300 "$KLAB" crash "$work/a.vmcore" --vmlinux "$vmlinux" -- -s \
    >"$work/crash-debian.out" 2>&1
  crash_ps "Debian's crash $(crash --version 2>/dev/null | awk '/^crash/ { print $2; exit }')" "$work/crash-debian.out"
fi
expect_error "$tag: klab crash with \$KLAB_CRASH naming no program" "KLAB_CRASH" env KLAB_CRASH=/nonexistent/crash \
  "$KLAB" crash "$work/a.vmcore" --vmlinux "$vmlinux"

# the makedumpfile format, QEMU's kdump-zlib of the same machine: crash reads its compressed pages
"$KLAB" dump "$name" --format kdump-zlib -o "$work/cz.vmcore" >/dev/null 2>&1
printf 'sys\nquit\n' | timeout 300 "$KLAB" crash "$work/cz.vmcore" --vmlinux "$vmlinux" -- -s >"$work/crash-z.out" 2>&1
names_release "$work/crash-z.out" && grep -Eq '^ +TASKS: [0-9]{2,}$' "$work/crash-z.out" \
  && ok "$tag: crash opens a kdump-zlib dump too ($(grep -E '^ +TASKS:' "$work/crash-z.out" | tr -s ' '))" \
  || fail "$tag: crash on kdump-zlib" "$(grep -v '^$' "$work/crash-z.out" | head -4)"
rm -f "$work/cz.vmcore"

# klab crash NAME: a fresh dump of the live VM, removed afterwards
printf 'sys\nquit\n' | timeout 300 "$KLAB" crash "$name" -- -s >"$work/crash-live.out" 2>&1
names_release "$work/crash-live.out" && ok "$tag: klab crash NAME: crash on a fresh dump of the VM" \
  || fail "$tag: klab crash NAME" "$(grep -v '^$' "$work/crash-live.out" | tail -4)"
[ ! -e "$KLAB_RUN_DIR/$name/crash.vmcore" ] && ok "$tag: klab crash NAME removed its dump" || fail "$tag: crash.vmcore left" ""
expect_error "$tag: klab crash on a dump without --vmlinux" "needs --vmlinux" "$KLAB" crash "$work/a.vmcore"
"$KLAB" crash --help | grep -q "^usage: klab crash" && ok "$tag: klab crash --help" || fail "$tag: klab crash --help" "no usage line"

# --- other formats and bad input -----------------------------------------------------------------------------
"$KLAB" dump --help | grep -q "^usage: klab dump" && "$KLAB" drgn --help | grep -q "^usage: klab drgn" \
  && ok "$tag: klab dump --help and klab drgn --help" || fail "$tag: --help" "no usage line"
"$KLAB" dump "$name" --format kdump-zlib -o "$work/z.vmcore" >"$work/z.out" 2>&1 && [ "$(head -c 12 "$work/z.vmcore")" = makedumpfile ] \
  && ok "$tag: --format kdump-zlib: a makedumpfile file ($(sed -n 's/.*(kdump-zlib, \([^)]*\)).*/\1/p' "$work/z.out"))" \
  || fail "$tag: kdump-zlib" "$(cat "$work/z.out")"
expect_error "$tag: klab dump never replaces a file" "exists" "$KLAB" dump "$name" -o "$work/a.vmcore"
expect_error "$tag: klab dump --format bogus" "unknown --format" "$KLAB" dump "$name" --format bogus -o "$work/b.vmcore"
expect_error "$tag: klab dump of no such VM" "no VM named|no running VM" "$KLAB" dump nosuchvm -o "$work/c.vmcore"
# an 8 MiB file system for a 1 GiB dump (mounting one needs root, which make test has on these machines)
mkdir -p "$work/tiny"
if mount -t tmpfs -o size=8M tmpfs "$work/tiny" 2>/dev/null; then
  expect_error "$tag: klab dump to a full file system" "full|No space|failed" "$KLAB" dump "$name" -o "$work/tiny/d.vmcore"
  [ -z "$(ls -A "$work/tiny")" ] && ok "$tag: a failed dump leaves nothing behind" || fail "$tag: leftovers" "$(ls -la "$work/tiny")"
  "$KLAB" status | grep -E "^$name +.* running " >/dev/null && ok "$tag: the VM runs on after the failed dump" \
    || fail "$tag: VM state after a failed dump" "$("$KLAB" status)"
else
  skip "$tag: klab dump to a full file system" "cannot mount a small tmpfs here (not root)"
fi
head -c 4000000 "$work/a.vmcore" >"$work/trunc.vmcore"
expect_error "$tag: klab drgn on a truncated dump" "truncated" "$KLAB" drgn "$work/trunc.vmcore" --vmlinux "$vmlinux"
expect_error "$tag: klab vtop --dump of a truncated dump" "truncated" "$KLAB" vtop --dump "$work/trunc.vmcore" 0x$banner_va
expect_error "$tag: klab vtop --dump of a non-dump" "not an ELF core" "$KLAB" vtop --dump /etc/passwd 0x$banner_va
mapfile -t zpas < <(vtop_pas "$work/z.vmcore" $(awk '{ print "0x" $2 }' <<<"$vas"))
[ "${#kpas[@]}" -eq 4 ] && [ "${zpas[*]}" = "${kpas[*]}" ] && ok "$tag: --format kdump-zlib: klab vtop --dump gives the same PAs" \
  || fail "$tag: vtop --dump on kdump-zlib" "kdump: ${zpas[*]}; elf-paging: ${kpas[*]}; $("$KLAB" vtop --dump "$work/z.vmcore" 0x$banner_va 2>&1 | tail -2)"
head -c 2000000 "$work/z.vmcore" >"$work/ztrunc.vmcore"
expect_error "$tag: klab vtop --dump of a truncated kdump" "truncated" "$KLAB" vtop --dump "$work/ztrunc.vmcore" 0x$banner_va
ln -s "$work/a.vmcore" "$work/link.vmcore"
expect_error "$tag: klab vtop --dump does not follow a link" "cannot open dump" "$KLAB" vtop --dump "$work/link.vmcore" 0x$banner_va
expect_error "$tag: klab drgn on a non-dump" "not a dump" "$KLAB" drgn /etc/passwd --vmlinux "$vmlinux"
other=$KLAB_CACHE/kernels/$([ "$arch" = x86_64 ] && echo debian-arm64 || echo debian-amd64)/vmlinux
expect_error "$tag: klab drgn with another arch's vmlinux" "dump, .* kernel" "$KLAB" drgn "$work/a.vmcore" --vmlinux "$other"
expect_error "$tag: klab vtop --dump with another arch's vmlinux" "dump, .* kernel" "$KLAB" vtop --dump "$work/a.vmcore" --vmlinux "$other" linux_banner
# --format elf: physical addresses only, and the segment klab adds at swapper_pg_dir's virtual address
"$KLAB" dump "$name" --format elf -o "$work/e.vmcore" >"$work/e.out" 2>&1
"$KLAB" drgn "$work/e.vmcore" --vmlinux "$vmlinux" -- "$work/tasks.py" "$sleeper" >"$work/e.drgn" 2>&1
grep -q "^DRGN-PIDS .* $sleeper\( \|$\)" "$work/e.drgn" && ok "$tag: --format elf: drgn starts from klab's swapper_pg_dir segment and finds the tasks" \
  || fail "$tag: drgn on --format elf" "$(cat "$work/e.out"; tail -3 "$work/e.drgn")"
mapfile -t epas < <(vtop_pas "$work/e.vmcore" $(awk '{ print "0x" $2 }' <<<"$vas"))
[ "${epas[*]}" = "${kpas[*]}" ] && ok "$tag: --format elf: klab vtop --dump gives the same PAs" \
  || fail "$tag: vtop --dump on --format elf" "elf: ${epas[*]}; elf-paging: ${kpas[*]}"
finish
