#!/usr/bin/env bash
# klab exam with the plain QEMU backend: a 4-candidate room (two candidates are real Unix users, so their VMs
# run as them), concurrent boots, stub isolation, reset to pristine, kill -9 of the controller, the time limit.
. "$(dirname "$0")/../lib.sh"
work=$(mktemp -d /tmp/klab-exam-XXXXXX); chmod 755 "$work"
users=(klabexam-a klabexam-b)
cleanup() {
  [ -n "${ctl:-}" ] && kill "$ctl" 2>/dev/null; wait 2>/dev/null
  rm -rf "$work"
  for u in "${users[@]}"; do [ -n "${made[$u]:-}" ] && userdel "$u" 2>/dev/null; done
}
declare -A made; trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { fail "exam isolation" "needs root to create the candidates' Unix users"; finish; }
for u in "${users[@]}"; do id "$u" >/dev/null 2>&1 || { useradd -M -s /usr/sbin/nologin "$u" && made[$u]=1; }; done
bash kernels/build.sh x86_64 >/dev/null || { fail "room kernel" "x86_64 profile does not build"; finish; }
klab=$PWD/${KLAB#$PWD/}
. tests/integration/exam_lib.sh

# Bad room files: one line each.
printf 'name = x\nkernel = x86_64\ntask = t\ncandidates = a\ncolour = blue\n' >"$work/bad1.conf"
expect_error "room file with an unknown key" "bad1.conf:5: unknown key 'colour'" "$klab" exam run "$work/bad1.conf"
printf 'name = x\ntask = t\ncandidates = a\n' >"$work/bad2.conf"
expect_error "room file without a kernel" "kernel is missing" "$klab" exam run "$work/bad2.conf"
printf 'name = x\nkernel = x86_64\ntask = t\ntime_limit = soon\ncandidates = a\n' >"$work/bad3.conf"
expect_error "room file with a bad time limit" "time_limit wants" "$klab" exam run "$work/bad3.conf"
expect_error "status of a room nobody runs" "no room controller answers" "$klab" exam status "$work/none"

cat >"$work/room.conf" <<ROOM
name = t4
kernel = x86_64
task = $PWD/labs/exam/myhello
time_limit = 10m
memory = 256M
candidates = klabexam-a klabexam-b c3 c4
ROOM
dir=$work/exam-t4 room=exam-t4
room_start room.conf
room_boots klabexam-a klabexam-b c3 c4
# The room's snapshot: saved once by the controller (root's, readable, writable by nobody else); every
# candidate's VM, as its own Unix user, restored it read-only instead of booting.
snap=$(ls "$dir"/snapshots/*/manifest 2>/dev/null | head -1)
[ -n "$snap" ] && [ "$(stat -c '%u %a' "$snap" "${snap%/manifest}/ram" "${snap%/manifest}" | sort -u | tr '\n' ' ')" = "0 644 0 755 " ] \
  && ok "the room's snapshot is root's: files 0644, folder 0755" \
  || fail "room snapshot" "$(ls -la "$dir/snapshots" "${snap%/manifest}" 2>&1 | head -8)"
restored=0
for c in klabexam-a klabexam-b c3 c4; do
  grep -qx 'restored=1' "$dir/candidates/$c/run/exam-t4-$c/state" 2>/dev/null && restored=$((restored + 1))
done
[ $restored -eq 4 ] && ok "all 4 candidate VMs were restored from the room's snapshot" \
  || fail "candidates restored" "$restored of 4: $(tail -n 3 "$dir"/candidates/*/vm.log 2>&1 | head -12)"
ps -o uid=,args= -C qemu-system-x86_64 | grep -q "^ *$(id -u klabexam-a) .*exam-t4-klabexam-a " \
  && ok "klabexam-a's QEMU runs as klabexam-a" || fail "VM as the candidate's user" "$(ps -o uid=,args= -C qemu-system-x86_64 | cut -c1-80)"
# No network: the running QEMUs' own command lines (/proc, not the file klab wrote), and the guest's view:
# no interface but the loopback (this lab kernel has no CONFIG_NET, so none at all), with sysfs there to
# say so (an empty list alone could mean sysfs is missing).
nets=$(console "$dir/candidates/c4/run/exam-t4-c4/console.sock" 'echo NETS $(ls /sys/class/net 2>/dev/null) CLASSES $(ls /sys/class | wc -l)' 2 | grep '^NETS')
# (the pattern names QEMU itself: a bare "klab-exam-t4-" also matches the grep of this very pipeline)
qargs=$(for p in $(pgrep -f "qemu-system-x86_64 -name klab-exam-t4-"); do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done | grep -- "-name klab-exam-t4-")
names=$(echo "$qargs" | grep -o -- "-name klab-exam-t4-[^ ]*" | sort -u | wc -l)
classes=${nets##*CLASSES }; ifaces=${nets#NETS}; ifaces=${ifaces% CLASSES*}; ifaces=${ifaces# }
[ "$names" -eq 4 ] && ! echo "$qargs" | grep -q -- "-netdev\|-nic \|-net \|-device [a-z0-9-]*net" \
  && ! echo "$qargs" | grep -v -q -- "-nodefaults" && [ "${classes:-0}" -gt 0 ] && { [ -z "$ifaces" ] || [ "$ifaces" = lo ]; } \
  && ok "no VM has a network device (4 running QEMUs: -nodefaults, no NIC; guest interfaces: '${ifaces:-none}', sysfs has $classes classes)" \
  || fail "network" "guest: '$nets'; $names QEMU names: $(echo "$qargs" | cut -c1-120)"

# The room's caps (memory = 256M, cpus default 1) as the guest sees them.
caps=$(console "$dir/candidates/c4/run/exam-t4-c4/console.sock" 'echo CAPS $(nproc) $(grep MemTotal /proc/meminfo)' 2 | grep '^CAPS')
read -r _ ncpu _ memkb _ <<<"$caps"
[ "$ncpu" = 1 ] && [ -n "$memkb" ] && [ "$memkb" -gt $((200 * 1024)) ] && [ "$memkb" -le $((256 * 1024)) ] \
  && ok "the room's caps reach the guest: 1 CPU, MemTotal $memkb kB of memory = 256M" || fail "room caps" "'$caps'"

# Isolation: stubs, consoles, resets.
stub_isolation klabexam-a klabexam-b
b=$dir/candidates/klabexam-b
out=$(runuser -u klabexam-a -- cat "$b/run/exam-t4-klabexam-b/console.log" 2>&1)
echo "$out" | grep -q "Permission denied" && ok "candidate A cannot read B's console" || fail "A reads B's console" "$out"
expect_error "candidate B cannot reset A's VM" "you may reset only your own VM" \
  runuser -u klabexam-b -- "$klab" exam reset "$dir" klabexam-a
runuser -u klabexam-b -- "$klab" exam status "$dir" | grep -q "^klabexam-a *running" \
  && ok "a candidate can read the room's status" || fail "status as candidate" "$("$klab" exam status "$dir" 2>&1)"

# Reset: a file written in the guest is gone after the reset.
reset_is_pristine c3

# The candidate's own module in their VM: a .ko in work/ is at /lib/modules/ after a reset.
ko=$(bash kernels/module.sh labs/hellodrv x86_64 "$work/sol-build" 2>"$work/module.err") && cp "$ko" "$dir/candidates/c4/work/" \
  || fail "build the solution" "$ko $(tail -2 "$work/module.err")"
"$klab" exam reset "$dir" c4 >/dev/null
vm_up c4
console "$dir/candidates/c4/run/exam-t4-c4/console.sock" 'insmod /lib/modules/hellodrv.ko; cat /dev/myhello' 3 | grep -q '^1111111111111111111122222222' \
  && grep -qx 'restored=1' "$dir/candidates/c4/run/exam-t4-c4/state" \
  && ok "after a reset (restored from the room's snapshot) the candidate's own .ko is in their VM: insmod + cat /dev/myhello work" \
  || fail "candidate's module in the VM" "no string"

# Grading, in fresh VMs: seed 002's hellodrv (the task's answer) passes every check; the same driver with
# read() truncated to 15 characters fails read and test only; a module that does not compile fails
# everything with the compiler's first error.
rm -f "$dir/candidates/c3/work/"* "$dir/candidates/c4/work/"*
cp labs/hellodrv/* "$dir/candidates/c3/work/"
cp labs/hellodrv/Kbuild "$dir/candidates/c4/work/"
sed 's/strscpy(hello_seen, psz, sizeof(hello_seen));/strscpy(hello_seen, psz, 16);/' labs/hellodrv/hellodrv.c \
  >"$dir/candidates/c4/work/hellodrv.c"
grep -q 'strscpy(hello_seen, psz, 16)' "$dir/candidates/c4/work/hellodrv.c" || fail "broken module" "the sed did not apply"
printf 'int x = ;\n' >>"$dir/candidates/klabexam-b/work/myhello.c"
"$klab" exam grade "$dir" c3 >"$work/g3" 2>&1; r3=$?
"$klab" exam grade "$dir" c4 >"$work/g4" 2>&1; r4=$?
"$klab" exam grade "$dir" klabexam-b >"$work/gb" 2>&1; rb=$?
verdicts() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(" ".join("%s=%s" % (c["name"], "pass" if c["passed"] else "fail") for c in r["checks"]), "%d/%d" % (r["passed"], r["total"]))' "$1"; }
v3=$(verdicts "$dir/candidates/c3/report.json") v4=$(verdicts "$dir/candidates/c4/report.json") vb=$(verdicts "$dir/candidates/klabexam-b/report.json")
[ $r3 -eq 0 ] && [ "$v3" = "loads=pass device=pass read=pass test=pass printk=pass 5/5" ] \
  && ok "grade: the correct module passes every check ($v3)" || fail "grade correct" "rc=$r3 $v3: $(cat "$work/g3")"
[ $r4 -eq 3 ] && [ "$v4" = "loads=pass device=pass read=fail test=fail printk=pass 3/5" ] \
  && ok "grade: the broken module fails read and test only ($v4)" || fail "grade broken" "rc=$r4 $v4: $(cat "$work/g4")"
[ $rb -eq 3 ] && [ "$vb" = "loads=fail device=fail read=fail test=fail printk=fail 0/5" ] \
  && grep -q "did not build: .*myhello.c.*error" "$dir/candidates/klabexam-b/report.txt" \
  && ok "grade: a module that does not compile fails every check, naming the error" || fail "grade no build" "rc=$rb $vb: $(cat "$work/gb")"
grep -q "myhello open, psz=" "$dir/candidates/c3/grade-console.log" && ok "grade keeps the grading VM's console log" \
  || fail "grade console log" "missing"

# kill -9 of the controller: every VM's supervisor gets SIGTERM and cleans up.
no_qemu_after_kill
# the supervisors remove the run state once their QEMU has exited
for i in $(seq 50); do ls "$dir"/candidates/*/run/*/ram "$dir"/candidates/*/run/*/state >/dev/null 2>&1 || break; sleep 0.2; done
left=$(ls "$dir"/candidates/*/run/*/ram "$dir"/candidates/*/run/*/state 2>/dev/null)
[ -z "$left" ] && ok "no RAM file or run state left behind" || fail "leftovers" "$left; $( (tail -n 3 "$dir"/candidates/*/vm.log; ps -ef | grep "klab boot" | grep -v grep | cut -c1-150) 2>&1 | sed 's/^/    /')"

# exam run --dir, a candidate refused `stop`, and the proctor's `klab exam stop`.
cat >"$work/stopme.conf" <<ROOM
name = stopme
kernel = x86_64
task = $PWD/labs/exam/myhello
candidates = klabexam-a
ROOM
sdir=$work/elsewhere/room
mkdir -p "$work/elsewhere"
( cd / && exec "$klab" exam run "$work/stopme.conf" --dir "$sdir" >"$work/stopme.log" 2>&1 ) &
sctl=$!
for i in $(seq 100); do [ -S "$sdir/control.sock" ] && break; sleep 0.1; done
[ -S "$sdir/control.sock" ] && [ -d "$sdir/candidates/klabexam-a/work" ] && ok "exam run --dir puts the room in the folder given" \
  || fail "exam run --dir" "$(ls "$sdir" 2>&1)"
expect_error "a candidate may not stop the room" "only the proctor stops the room" \
  runuser -u klabexam-a -- "$klab" exam stop "$sdir"
kill -0 "$sctl" 2>/dev/null && ok "the room still runs after the candidate's stop" || fail "candidate stop" "the controller ended"
"$klab" exam stop "$sdir" >/dev/null 2>&1
for i in $(seq 100); do kill -0 "$sctl" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$sctl" 2>/dev/null && grep -q "room stopme stopped; every VM stopped" "$work/stopme.log" && ! pgrep -f "klab-exam-stopme-" >/dev/null \
  && ok "klab exam stop ends the controller and every VM" || fail "exam stop" "$(tail -2 "$work/stopme.log")"
wait "$sctl" 2>/dev/null

# The time limit stops every VM and ends the controller.
cat >"$work/short.conf" <<ROOM
name = short
kernel = x86_64
task = $PWD/labs/exam/myhello
time_limit = 6s
candidates = solo
ROOM
t0=$(date +%s)
out=$(cd "$work" && timeout 60 "$klab" exam run short.conf 2>&1); rc=$?
took=$(( $(date +%s) - t0 ))
[ $rc -eq 0 ] && echo "$out" | grep -q "the time limit is up" && [ $took -ge 6 ] && [ $took -lt 20 ] \
  && ! pgrep -f "klab-exam-short-" >/dev/null && ok "a 6 s time limit stops the room after ${took} s, no QEMU left" \
  || fail "time limit" "rc=$rc after ${took}s: $out"
finish
