#!/usr/bin/env bash
# klab boot --snapshot, per architecture: the first boot saves the machine at its shell, later boots restore
# it; the restored guest is the kernel it claims (uname -r against the kernel's VERSION), its shell answers,
# its RAM file is its RAM (klab vtop against QEMU's gva2gpa); --add files arrive byte for byte (md5sum in the
# guest against the host's) and --run commands run; a paused restore is attachable by gdb; klab reset brings
# back the pristine state; a QEMU that changed makes the snapshot stale; a damaged snapshot falls back to a
# cold boot; a snapshot folder others can write is refused; a stop while the VM starts ends it there.
#   tests/integration/snapshot.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64) deb=amd64; sym=jiffies ;; arm64) deb=arm64; sym=jiffies ;; *) echo "usage: snapshot.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
snaps=$work/snaps
mkdir -m 700 "$snaps"
release=$(sed -n 's/^release=//p' "$KLAB_CACHE/kernels/debian-$deb/VERSION")
# A QEMU of the test's own (a wrapper: touching it is "QEMU upgraded" without touching the real one).
qemu=$(command -v "qemu-system-$([ "$arch" = arm64 ] && echo aarch64 || echo x86_64)")
printf '#!/bin/sh\nexec %s "$@"\n' "$qemu" >"$work/qemu"
chmod 755 "$work/qemu"
boot() { "$KLAB" boot --arch "$arch" --qemu "$work/qemu" --snapshot-dir "$snaps" "$@"; }
state_of() { sed -n "s/^$2=//p" "$KLAB_RUN_DIR/$1/state"; }
say() { timeout 20 python3 tests/integration/console.py "$KLAB_RUN_DIR/$1/console.sock" "$2" "${3:-3}"; }

# 1. The first boot saves, then restores what it saved.
out=$(boot --name s1 --no-wait --detach 2>&1)
slot=$(ls -d "$snaps"/*/ 2>/dev/null | head -1)
[ -n "$slot" ] && [ -f "$slot/manifest" ] && [ -f "$slot/state" ] && [ -f "$slot/ram" ] \
  && ok "$arch: the first boot saved a snapshot (manifest, device state, RAM image)" \
  || { fail "$arch: first boot saved" "$out"; finish; }
[ "$(state_of s1 restored)" = 1 ] && ok "$arch: and restored it" || fail "$arch: first boot restored" "$out"
ram_data=$(du -k "$slot/ram" | cut -f1)
[ "$ram_data" -lt $((512 * 1024)) ] && ok "$arch: the RAM image is sparse (${ram_data} KiB of 1 GiB)" \
  || fail "$arch: sparse RAM image" "${ram_data} KiB"
reply=$(say s1 'echo "R=$(uname -r) $((6*7))"')
printf '%s\n' "$reply" | grep -q "R=$release 42" && ok "$arch: the restored shell answers, kernel $release" \
  || fail "$arch: restored shell" "$reply"
"$KLAB" stop s1 >/dev/null

# 2. A second boot restores (no cold boot: the kernel's banner is not printed again after the restore).
out=$(boot --name s2 --no-wait --detach 2>&1)
[ $? -eq 0 ] && ! printf '%s\n' "$out" | grep -q 'booting it to its shell' \
  && ok "$arch: the second boot restores without booting" || fail "$arch: second boot" "$out"
lines=$(grep -ac 'Linux version' "$KLAB_RUN_DIR/s2/console.log")
[ "$lines" -eq 1 ] && ok "$arch: the console log holds the one boot the snapshot made" || fail "$arch: console log" "$lines banners"
addr=$(nm "$KLAB_CACHE/kernels/debian-$deb/vmlinux" | awk -v s=$sym '$3 == s { print "0x" $1; exit }')
pa=0x$("$KLAB" vtop --vm s2 "$addr" 2>&1 | vtop_pa | sed 's/^0x//')
qpa=$(python3 tests/integration/hmp.py "$KLAB_RUN_DIR/s2/monitor.sock" "gva2gpa $addr" | gpa_of)
same_pa "$qpa" "$pa" && ok "$arch: klab vtop $sym on the restored RAM file = QEMU's gva2gpa ($pa)" \
  || fail "$arch: vtop after restore" "klab $pa, QEMU $qpa"
say s2 'echo scratch > /root/marker; sync' >/dev/null
old_pid=$(state_of s2 qemu_pid)
out=$("$KLAB" reset s2 2>&1)
printf '%s\n' "$out" | grep -q 'restored from its snapshot' && [ "$(state_of s2 qemu_pid)" != "$old_pid" ] \
  && ok "$arch: klab reset restores a new QEMU" || fail "$arch: reset" "$out"
reply=$(say s2 'ls /root/marker 2>&1; echo "done $((2+3))"')
printf '%s\n' "$reply" | grep -q 'No such file' && printf '%s\n' "$reply" | grep -q 'done 5' \
  && ok "$arch: after the reset the guest is pristine (a file made before is gone)" || fail "$arch: pristine after reset" "$reply"
expect_error "$arch: reset of no VM" "no running VM named 'nope'" "$KLAB" reset nope
"$KLAB" stop s2 >/dev/null

# 3. --add and --run after a restore, without a new snapshot.
head -c 200000 /dev/urandom >"$work/blob.bin"
want=$(md5sum <"$work/blob.bin" | cut -d' ' -f1)
nslots=$(ls -d "$snaps"/*/ | wc -l)
out=$(boot --name s3 --no-wait --detach --add "$work/blob.bin:/root/" --run 'echo "RUN-$((3+4))"' 2>&1)
[ $? -eq 0 ] && [ "$(ls -d "$snaps"/*/ | wc -l)" -eq "$nslots" ] && [ "$(state_of s3 restored)" = 1 ] \
  && ok "$arch: --add and --run restore the same snapshot" || fail "$arch: boot with --add" "$out"
got=$(say s3 'md5sum /root/blob.bin' 8 | awk '/blob.bin/ && length($1) == 32 && $1 !~ /[^0-9a-f]/ { print $1; exit }')
[ "$got" = "$want" ] && ok "$arch: the added file arrived byte for byte (md5 $want)" || fail "$arch: --add file" "guest $got, host $want"
grep -aq '^RUN-7' "$KLAB_RUN_DIR/s3/console.log" && ok "$arch: the --run command ran in the restored guest" \
  || fail "$arch: --run after restore" "$(tail -3 "$KLAB_RUN_DIR/s3/console.log")"
"$KLAB" stop s3 >/dev/null

# 4. Paused: restored and stopped, gdb attaches and reads what the RAM file holds.
out=$(boot --name s4 --detach 2>&1)
status=$(python3 tests/integration/hmp.py "$KLAB_RUN_DIR/s4/monitor.sock" 'info status')
printf '%s\n' "$status" | grep -q 'paused' && printf '%s\n' "$out" | grep -q 'restored at its shell, paused' \
  && ok "$arch: without --no-wait the restored VM waits paused" || fail "$arch: paused restore" "$out / $status"
# gdb's read and QEMU's xp of the physical word in the same stop (a detach lets the guest run on).
gout=$(timeout 120 "$KLAB" gdb s4 --no-start --batch -ex "p/x *(unsigned long *)&$sym" -ex "monitor xp /1gx $pa" 2>&1)
gval=$(printf '%s\n' "$gout" | tr -d '\r' | sed -n 's/^\$1 = \(0x[0-9a-f]*\)$/\1/p' | head -1)
mem=$(printf '%s\n' "$gout" | tr -d '\r' | sed -n 's/^[0-9a-f]*: \(0x[0-9a-f]*\)$/\1/p' | tail -1)
[ -n "$gval" ] && [ -n "$mem" ] && [ "$((gval))" = "$((mem))" ] \
  && ok "$arch: gdb on the restored VM reads $sym = $gval, as QEMU's xp of the RAM reads" \
  || fail "$arch: gdb after restore" "gdb '$gval', xp '$mem': $(printf '%s\n' "$gout" | tail -3)"
"$KLAB" stop s4 >/dev/null

# 5. A QEMU that changed makes the snapshot stale: saved again, never restored as it was.
touch "$work/qemu"
out=$(boot --name s5 --no-wait --detach 2>&1)
printf '%s\n' "$out" | grep -q 'QEMU changed' && [ "$(state_of s5 restored)" = 1 ] \
  && ok "$arch: a changed QEMU makes the snapshot stale: saved again and restored" || fail "$arch: stale QEMU" "$out"
"$KLAB" stop s5 >/dev/null

# 6. A damaged device state: one line, a cold boot, the snapshot dropped.
slot=$(ls -d "$snaps"/*/ | head -1)
truncate -s 1000 "$slot/state"
out=$(boot --name s6 --no-wait --detach 2>&1)
printf '%s\n' "$out" | grep -q 'restore failed: .*booting cold' && [ "$(state_of s6 restored)" = 0 ] \
  && ok "$arch: a damaged snapshot: one line, then a cold boot" || fail "$arch: damaged snapshot" "$out"
"$KLAB" wait s6 --timeout 120 >/dev/null && ok "$arch: the cold boot reaches the init banner" || fail "$arch: cold fallback" "no banner"
[ ! -f "$slot/manifest" ] && ok "$arch: the damaged snapshot is dropped" || fail "$arch: damaged snapshot kept" "$slot"
"$KLAB" stop s6 >/dev/null

# 6b. A RAM image of the wrong size (it is copied while QEMU starts, and QEMU refuses the file): one line, a
# cold boot, no copier left behind.
boot --name s6b --no-wait --detach >/dev/null 2>&1   # saves the slot again
"$KLAB" stop s6b >/dev/null
slot=$(ls -d "$snaps"/*/ | head -1)
truncate -s 4096 "$slot/ram"
out=$(boot --name s6c --no-wait --detach 2>&1)
printf '%s\n' "$out" | grep -q 'restore failed: .*booting cold' && [ "$(state_of s6c restored)" = 0 ] \
  && "$KLAB" wait s6c --timeout 120 >/dev/null \
  && ok "$arch: a RAM image of the wrong size: one line, then a cold boot to the banner" \
  || fail "$arch: RAM image of the wrong size" "$out"
sup=$(state_of s6c supervisor_pid)
kids=$(pgrep -P "$sup" | tr '\n' ' ')
[ "$kids" = "$(state_of s6c qemu_pid) " ] && ok "$arch: after it the supervisor's one child is QEMU (the copier is gone)" \
  || fail "$arch: children after a failed restore" "supervisor $sup has: $kids (QEMU: $(state_of s6c qemu_pid))"
"$KLAB" stop s6c >/dev/null

# 7. A snapshot folder others may write is not trusted: one line, a cold boot.
mkdir -m 777 "$work/open"
out=$(boot --name s7 --no-wait --detach --snapshot-dir "$work/open" 2>&1)
printf '%s\n' "$out" | grep -q 'writable by other users' && [ "$(state_of s7 restored)" = 0 ] && [ -z "$(ls "$work/open")" ] \
  && ok "$arch: a world-writable snapshot folder is refused" || fail "$arch: open snapshot folder" "$out"
"$KLAB" stop s7 >/dev/null

# 8. SIGTERM while the supervisor starts the VM (here: the boot that saves the snapshot, waiting for the shell)
# ends it then: no QEMU, no run state, and no snapshot saved or restored after the stop.
mkdir -m 700 "$work/fresh"
"$KLAB" boot --arch "$arch" --qemu "$work/qemu" --snapshot-dir "$work/fresh" --name s8 --no-wait </dev/null >"$work/s8.log" 2>&1 &
sup=$!
for i in $(seq 200); do grep -aq 'Linux version' "$KLAB_RUN_DIR/s8/console.log" 2>/dev/null && break; sleep 0.05; done
kill -TERM "$sup"
for i in $(seq 100); do kill -0 "$sup" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$sup" 2>/dev/null; then
  fail "$arch: SIGTERM during the start" "the supervisor still runs 10 s later: $(tail -2 "$work/s8.log")"
  kill -KILL "$sup"
else
  wait "$sup"
  left=$(ls "$KLAB_RUN_DIR/s8/ram" "$KLAB_RUN_DIR/s8/state" "$work/fresh"/*/manifest 2>/dev/null)
  ! pgrep -f "klab-s8( |$)" >/dev/null && [ -z "$left" ] && grep -q 'stopped while the VM started' "$work/s8.log" \
    && ok "$arch: SIGTERM while the VM starts ends it there (no QEMU, no run state, no snapshot saved)" \
    || fail "$arch: SIGTERM during the start" "left: $left $(pgrep -af "klab-s8( |$)" | cut -c1-80); $(tail -3 "$work/s8.log")"
fi

# 9. Bad combinations: one line each.
expect_error "$arch: --snapshot with libvirt" "is for --backend qemu" "$KLAB" boot --arch "$arch" --snapshot --backend libvirt --dry-run
expect_error "$arch: --snapshot-dir relative" "absolute path" "$KLAB" boot --arch "$arch" --snapshot-dir snaps --dry-run
expect_error "$arch: --snapshot with --record" "drop one" "$KLAB" boot --arch "$arch" --snapshot --record "$work/rec" --dry-run
finish
