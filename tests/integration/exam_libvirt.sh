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
. tests/integration/exam_lib.sh
cat >"$work/room.conf" <<ROOM
name = elv
kernel = x86_64
task = $PWD/labs/exam/myhello
time_limit = 10m
backend = libvirt
connect = qemu:///session
candidates = ${users[*]}
ROOM
dir=$work/exam-elv room=exam-elv
room_start room.conf
room_boots "${users[@]}"
for c in "${users[@]}"; do
  pgrep -u "$c" -f "guest=klab-exam-elv-$c" >/dev/null && ok "$c's domain runs under $c's own session daemon" \
    || fail "$c's domain" "$(ps -o user=,args= -C qemu-system-x86_64 | cut -c1-90)"
done
stub_isolation klabexam-a klabexam-b
reset_is_pristine klabexam-b
no_qemu_after_kill
finish
