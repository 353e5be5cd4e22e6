#!/usr/bin/env bash
# klab exam across hosts: backend = libvirt with connect = qemu+ssh://127.0.0.1:PORT/session. A real OpenSSH
# server on 127.0.0.1 (a high port, public keys only, started and stopped here) stands for the remote host;
# each candidate is a Unix user who logs in to it with their own key, so each VM runs under that candidate's
# session daemon on the "remote" side, started through ssh (virt-ssh-helper). Checked: the room boots, the
# logins were by public key and a password login is refused, a candidate's gdb reaches their stub through the
# SSH forward docs/exam-proctor.md gives and not another's, a reset is pristine, grading works, and kill -9
# of the controller leaves no QEMU on the remote side.
. "$(dirname "$0")/../lib.sh"
users=(klabssh-a klabssh-b)
declare -A made
work=$(mktemp -d /tmp/kssh-XXXXXX); chmod 755 "$work"
sshd_pid=
cleanup() {
  [ -n "${ctl:-}" ] && kill "$ctl" 2>/dev/null
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null
  pkill -f "^ssh .*-L $work/" 2>/dev/null
  wait 2>/dev/null
  # the session daemons ssh started, and their virtlogd: every process of these users
  for u in "${users[@]}"; do pkill -u "$u" 2>/dev/null; done
  for i in $(seq 50); do pgrep -u "$(IFS=,; echo "${users[*]}")" >/dev/null || break; sleep 0.1; done
  for u in "${users[@]}"; do pkill -9 -u "$u" 2>/dev/null; done
  for u in "${users[@]}"; do [ -n "${made[$u]:-}" ] && userdel "$u" 2>/dev/null; done
  rm -rf "$work" /tmp/klab-*-es-*
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { fail "ssh room" "needs root for the candidates' Unix users and sshd"; finish; }
[ -x /usr/sbin/sshd ] || { fail "ssh room" "no /usr/sbin/sshd (scripts/deps.sh installs openssh-server)"; finish; }
bash kernels/build.sh x86_64 >/dev/null || { fail "room kernel" "x86_64 profile does not build"; finish; }
klab=$PWD/${KLAB#$PWD/}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The "remote" host: sshd on 127.0.0.1:$port, keys only, these two users only.
mkdir -m 700 "$work/sshd"
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd/host_key"
cat >"$work/sshd/config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $work/sshd/host_key
PidFile $work/sshd/pid
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers ${users[*]}
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
StrictModes yes
CONF
mkdir -p /run/sshd
/usr/sbin/sshd -D -f "$work/sshd/config" -E "$work/sshd/log" &
sshd_pid=$!
for u in "${users[@]}"; do
  if id "$u" >/dev/null 2>&1; then   # left by a killed run: its processes go, it gets a home here
    pkill -9 -u "$u"; sleep 0.2
    usermod -d "$work/$u" -s /bin/sh "$u" && mkdir -m 700 "$work/$u" && chown "$u:" "$work/$u"
  else
    useradd -m -d "$work/$u" -s /bin/sh "$u"
  fi
  made[$u]=1
  usermod -p '*' "$u"   # no password, but not a locked account ("!"), which sshd refuses even for keys
  home=$(getent passwd "$u" | cut -d: -f6)
  runuser -u "$u" -- sh -c "mkdir -p -m 700 '$home/.ssh' && ssh-keygen -q -t ed25519 -N '' -f '$home/.ssh/id_ed25519' -C $u \
    && cp '$home/.ssh/id_ed25519.pub' '$home/.ssh/authorized_keys' && chmod 600 '$home/.ssh/authorized_keys'"
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$work/sshd/host_key.pub")" >"$home/.ssh/known_hosts"
  chown "$u:" "$home/.ssh/known_hosts"
done
for i in $(seq 50); do ss -ltn | grep -q "127.0.0.1:$port " && break; sleep 0.1; done
out=$(runuser -u klabssh-a -- ssh -p "$port" -o BatchMode=yes 127.0.0.1 'id -un' 2>&1)
[ "$out" = klabssh-a ] && ok "sshd on 127.0.0.1:$port: klabssh-a logs in with their key" || fail "ssh login" "$out; $(tail -3 "$work/sshd/log")"
out=$(runuser -u klabssh-a -- ssh -p "$port" -o BatchMode=yes -o PubkeyAuthentication=no 127.0.0.1 true 2>&1)
echo "$out" | grep -q 'Permission denied (publickey)' && ok "a login without the key is refused (keys only)" \
  || fail "password login" "$out"

. tests/integration/exam_lib.sh
cat >"$work/room.conf" <<ROOM
name = es
kernel = x86_64
task = $PWD/labs/exam/myhello
time_limit = 10m
backend = libvirt
connect = qemu+ssh://127.0.0.1:$port/session
candidates = ${users[*]}
ROOM
dir=$work/exam-es room=exam-es
room_start room.conf
room_boots "${users[@]}"
for c in "${users[@]}"; do
  grep -q "Accepted publickey for $c from 127.0.0.1" "$work/sshd/log" \
    && pgrep -u "$c" -f "guest=klab-exam-es-$c" >/dev/null \
    && ok "$c's VM runs under $c's session daemon, reached through sshd with $c's key" \
    || fail "$c's remote domain" "$(grep -c Accepted "$work/sshd/log") logins; $(tail -n 3 "$dir/candidates/$c/vm.log")"
done

# gdb through the documented forward: ssh -L LOCAL.sock:REMOTE/gdb.sock, then target remote LOCAL.sock.
forward() {   # forward USER CANDIDATE-WHOSE-STUB LOCAL-SOCKET
  # setsid: runuser, when its ssh is killed at the end, kills its whole process group
  setsid runuser -u "$1" -- ssh -p "$port" -o BatchMode=yes -o ExitOnForwardFailure=yes -N \
    -L "$3:$dir/candidates/$2/gdb.sock" 127.0.0.1 2>"$3.err" &
  for i in $(seq 100); do [ -S "$3" ] && break; sleep 0.05; done
}
mkdir -m 1777 "$work/fwd"
forward klabssh-a klabssh-a "$work/fwd/a.sock"
out=$(runuser -u klabssh-a -- timeout 60 gdb-multiarch -q -nx -batch -ex "target remote $work/fwd/a.sock" \
      -ex 'p/x $pc' -ex 'info symbol $pc' -ex detach "$dir/kernel/vmlinux" 2>&1)
echo "$out" | grep -q '^\$1 = 0x' && echo "$out" | grep -q ' in section \.text' \
  && ok "klabssh-a's gdb reaches their remote stub through the SSH forward (the PC is in vmlinux's .text)" \
  || fail "gdb over the forward" "$out"
forward klabssh-b klabssh-a "$work/fwd/b.sock"
out=$(runuser -u klabssh-b -- timeout 30 gdb-multiarch -q -nx -batch -ex "target remote $work/fwd/b.sock" -ex 'p/x $pc' 2>&1)
if echo "$out" | grep -q '^\$1 = 0x'; then fail "klabssh-b reaches klabssh-a's stub" "$out"
elif grep -q 'connect failed' "$work/fwd/b.sock.err"; then
  ok "klabssh-b's forward to klabssh-a's stub is refused on the remote side (the socket is klabssh-a's, 0600)"
else fail "klabssh-b's forward" "no refusal from sshd: $(cat "$work/fwd/b.sock.err") / $out"; fi

reset_is_pristine klabssh-b
cp labs/hellodrv/* "$dir/candidates/klabssh-a/work/"
chown -R klabssh-a: "$dir/candidates/klabssh-a/work"   # the grader leaves out files the candidate does not own
"$klab" exam grade "$dir" klabssh-a >"$work/grade" 2>&1 \
  && grep -q '^5 of 5 checks passed' "$work/grade" \
  && ok "grade of a candidate of the remote room: the correct module passes 5 of 5" || fail "grade" "$(tail -5 "$work/grade"; tail -15 "$dir/grading/klabssh-a/sandbox/build/build.log")"
no_qemu_after_kill
finish
