#!/usr/bin/env bash
# klab exam with backend = libvirt: two candidates (Unix users), each VM a transient domain of the candidate's
# own qemu:///session daemon. Concurrent boots, stub isolation, reset to pristine, kill -9 of the controller.
. "$(dirname "$0")/../lib.sh"
users=(klabexam-a klabexam-b)
declare -A made
work=$(mktemp -d /tmp/klab-examlv-XXXXXX); chmod 755 "$work"
cleanup() {
  [ -n "${ctl:-}" ] && kill "$ctl" 2>/dev/null; wait 2>/dev/null
  for u in "${users[@]}"; do pkill -u "$u" libvirtd 2>/dev/null; done
  # an exiting session daemon still writes into its XDG folders: let it finish before removing them
  for i in $(seq 50); do pgrep -u "$(IFS=,; echo "${users[*]}")" libvirtd >/dev/null || break; sleep 0.1; done
  rm -rf "$work" /tmp/klab-*-elv-*
  for u in "${users[@]}"; do [ -n "${made[$u]:-}" ] && userdel "$u" 2>/dev/null; done
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { fail "libvirt room" "needs root to create the candidates' Unix users"; finish; }
for u in "${users[@]}"; do id "$u" >/dev/null 2>&1 || { useradd -M -s /usr/sbin/nologin "$u" && made[$u]=1; }; done
bash kernels/build.sh x86_64 >/dev/null || { fail "room kernel" "x86_64 profile does not build"; finish; }
klab=$PWD/${KLAB#$PWD/}
cat >"$work/room.conf" <<ROOM
name = elv
kernel = x86_64
task = $PWD/labs/exam/myhello
time_limit = 10m
backend = libvirt
connect = qemu:///session
candidates = ${users[*]}
ROOM
dir=$work/exam-elv
(cd "$work" && exec "$klab" exam run room.conf >"$work/ctl.log" 2>&1) &
ctl=$!
t0=$(date +%s%N)
for i in $(seq 50); do [ -S "$dir/control.sock" ] && break; sleep 0.1; done
banners=0
for c in "${users[@]}"; do
  for i in $(seq 100); do [ -f "$dir/candidates/$c/run/exam-elv-$c/state" ] && break; sleep 0.1; done
  KLAB_RUN_DIR=$dir/candidates/$c/run "$klab" wait "exam-elv-$c" --timeout 120 >/dev/null 2>&1 && banners=$((banners + 1))
done
[ $banners -eq 2 ] && ok "2 libvirt candidate VMs reach the init banner concurrently ($(( ($(date +%s%N) - t0) / 1000000 )) ms)" \
  || fail "libvirt room boots" "$banners of 2; $(tail -n 4 "$work/ctl.log" "$dir"/candidates/*/vm.log 2>&1 | sed 's/^/    /')"
for c in "${users[@]}"; do
  pgrep -u "$c" -f "guest=klab-exam-elv-$c" >/dev/null && ok "$c's domain runs under $c's own session daemon" \
    || fail "$c's domain" "$(ps -o user=,args= -C qemu-system-x86_64 | cut -c1-90)"
done
a=$dir/candidates/klabexam-a b=$dir/candidates/klabexam-b
out=$(runuser -u klabexam-a -- python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$b/gdb.sock" 2>&1)
echo "$out" | grep -q "PermissionError" && ok "candidate A cannot connect to B's gdb stub" || fail "A attaches to B" "$out"
out=$(runuser -u klabexam-a -- timeout 60 gdb-multiarch -q -nx -batch -ex "target remote $a/gdb.sock" -ex 'p/x $pc' -ex detach 2>&1)
echo "$out" | grep -q '^\$1 = 0x' && ok "candidate A attaches gdb to their own stub (a Unix socket from libvirt's gdbserver)" \
  || fail "A's own stub" "$out"
con=$b/run/exam-elv-klabexam-b/console.sock
python3 tests/integration/console.py "$con" 'echo EXAM-MARK > /root/mark; cat /root/mark' 2 | grep -q '^EXAM-MARK' \
  && ok "B wrote /root/mark in the guest" || fail "write in guest" "no echo"
out=$("$klab" exam reset "$dir" klabexam-b)
for i in $(seq 100); do [ -f "$b/run/exam-elv-klabexam-b/state" ] && break; sleep 0.1; done
KLAB_RUN_DIR=$b/run "$klab" wait exam-elv-klabexam-b --timeout 60 >/dev/null 2>&1
python3 tests/integration/console.py "$con" 'cat /root/mark' 2 | grep -q "can't open '/root/mark'" \
  && ok "reset through libvirt: $out; /root/mark is gone" || fail "libvirt reset" "$out"
kill -9 "$ctl"; wait "$ctl" 2>/dev/null; ctl=
for i in $(seq 50); do pgrep -f "guest=klab-exam-elv-" >/dev/null || break; sleep 0.2; done
pgrep -af "guest=klab-exam-elv-" >/dev/null && fail "kill -9 of the controller" "QEMU left" \
  || ok "kill -9 of the controller leaves no QEMU (every domain destroyed)"
finish
