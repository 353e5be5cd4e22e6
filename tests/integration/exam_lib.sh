# The steps both exam tests (plain QEMU and libvirt rooms) take, sourced after tests/lib.sh.
# Needs: $klab, $work, $dir (the room folder), $room (its name).

console() { python3 tests/integration/console.py "$@"; }

# room_start CONFIG: the controller in the background ($ctl), until its control socket answers.
room_start() {
  (cd "$work" && exec "$klab" exam run "$1" >"$work/ctl.log" 2>&1) &
  ctl=$!
  for i in $(seq 50); do [ -S "$dir/control.sock" ] && break; sleep 0.1; done
}

# vm_up CANDIDATE: waits for the candidate VM's run state (its supervisor has the VM up), then its banner.
vm_up() {
  local run=$dir/candidates/$1/run
  for i in $(seq 100); do [ -f "$run/$room-$1/state" ] && break; sleep 0.1; done
  # As the folder's owner: klab trusts no run-state folder of another user's, root's klab included.
  runuser -u "$(stat -c %U "$run")" -- env KLAB_RUN_DIR="$run" "$klab" wait "$room-$1" --timeout 120 >/dev/null 2>&1
}

# room_boots CANDIDATE...: every VM at its banner, concurrently started.
room_boots() {
  local t0 up=0 c
  t0=$(date +%s%N)
  for c in "$@"; do vm_up "$c" && up=$((up + 1)); done
  [ $up -eq $# ] && ok "$# candidate VMs reach the init banner concurrently ($(( ($(date +%s%N) - t0) / 1000000 )) ms)" \
    || fail "room boots" "$up of $#; $(tail -n 4 "$work/ctl.log" "$dir"/candidates/*/vm.log 2>&1 | sed 's/^/    /')"
}

# stub_isolation A B: A's credentials cannot open B's stub; A's own works (gdb reads a register through it).
stub_isolation() {
  local out
  out=$(runuser -u "$1" -- python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" \
        "$dir/candidates/$2/gdb.sock" 2>&1)
  echo "$out" | grep -q "PermissionError" && ok "candidate $1 cannot connect to $2's gdb stub (Permission denied)" \
    || fail "$1 attaches to $2" "$out"
  out=$(runuser -u "$1" -- timeout 60 gdb-multiarch -q -nx -batch -ex "target remote $dir/candidates/$1/gdb.sock" \
        -ex 'p/x $pc' -ex detach 2>&1)
  echo "$out" | grep -q '^\$1 = 0x' && ok "candidate $1 attaches gdb to their own stub" || fail "$1's own stub" "$out"
}

# reset_is_pristine CANDIDATE: a file written in the guest is gone after `klab exam reset`.
reset_is_pristine() {
  local sock=$dir/candidates/$1/run/$room-$1/console.sock out
  console "$sock" 'echo EXAM-MARK > /root/mark; cat /root/mark' 2 | grep -q '^EXAM-MARK' \
    && ok "$1 wrote /root/mark in the guest" || fail "write in $1's guest" "no echo"
  out=$("$klab" exam reset "$dir" "$1")
  vm_up "$1"
  console "$sock" 'cat /root/mark' 2 | grep -q "can't open '/root/mark'" \
    && ok "reset $1 ($out): /root/mark is gone" || fail "reset $1" "$out"
}

# no_qemu_after_kill: kill -9 of the controller; every VM of the room must go.
no_qemu_after_kill() {
  kill -9 "$ctl"; wait "$ctl" 2>/dev/null; ctl=
  for i in $(seq 50); do pgrep -f "klab-$room-" >/dev/null || break; sleep 0.2; done
  pgrep -af "klab-$room-" >/dev/null && fail "kill -9 of the controller" "QEMU left: $(pgrep -af "klab-$room-" | cut -c1-80)" \
    || ok "kill -9 of the controller leaves no QEMU"
}
