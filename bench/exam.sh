#!/usr/bin/env bash
# Exam room figures on the x86_64 lab kernel, for rooms of EXAM_SIZES candidates (default "4 8 16"):
#   start     controller start -> every candidate's shell answers on its console (the room's snapshot is
#             saved first, as part of the start)
#   reset     klab exam reset of one candidate -> its shell answers again, median of RUNS: goal <= 300 ms
#   memory    per candidate, idle at the shell: the proportional set size (Pss, /proc/PID/smaps_rollup:
#             shared pages split between their users) of its QEMU and its klab boot supervisor, and of one
#             `klab gdb` attached to it with vmlinux loaded
#   idle CPU  the host's idle share over 10 s with every candidate at its shell (/proc/stat)
# Candidates are not Unix users here (they run as the proctor): the same VMs as in a real room.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 5
trap 'pkill -f "klab exam run $work" 2>/dev/null || true; bench_cleanup' EXIT
bash kernels/build.sh x86_64 >/dev/null
answers() { $PY bench/shell_ready.py "$1/console.sock" 120; }
# Pss in KiB of the processes given.
pss() { local t=0 p; for p; do t=$((t + $(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup))); done; echo $t; }
# Until FILE exists (120 s at most).
wait_file() { local i; for i in $(seq 24000); do [ -e "$1" ] && return; sleep 0.005; done; echo "bench: no $1" >&2; exit 1; }
cpu_idle() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

for n in ${EXAM_SIZES:-4 8 16}; do
  names=$(seq -f 'c%g' "$n" | tr '\n' ' ')
  printf 'name = b%s\nkernel = x86_64\ntask = %s/labs/exam/myhello\ntime_limit = 30m\ncandidates = %s\n' \
    "$n" "$PWD" "$names" >"$work/room$n.conf"
  dir=$work/exam-b$n
  t0=$(date +%s%N)
  "$KLAB" exam run "$work/room$n.conf" --dir "$dir" >"$work/room$n.log" 2>&1 &
  ctl=$!
  for c in $names; do
    wait_file "$dir/candidates/$c/run/exam-b$n-$c/state"
    answers "$dir/candidates/$c/run/exam-b$n-$c"
  done
  start=$(ms "$t0")
  sleep 5   # past the restores' first-run costs, every guest idle at its prompt
  total=0
  for c in $names; do
    rs=$dir/candidates/$c/run/exam-b$n-$c
    q=$(sed -n 's/^qemu_pid=//p' "$rs/state") s=$(sed -n 's/^supervisor_pid=//p' "$rs/state")
    total=$((total + $(pss "$q" "$s")))
  done
  mkfifo "$work/gdb-in$n"
  KLAB_RUN_DIR=$dir/candidates/c1/run "$KLAB" gdb exam-b$n-c1 --no-start <"$work/gdb-in$n" >"$work/gdb$n.out" 2>&1 &
  gpid=$!   # klab gdb execs gdb-multiarch: the same process
  exec 9>"$work/gdb-in$n"
  echo 'echo klab-gdb-attached\n' >&9
  for i in $(seq 600); do grep -q klab-gdb-attached "$work/gdb$n.out" && break; sleep 0.1; done
  gdb_kb=$(pss "$gpid")
  echo 'quit' >&9
  exec 9>&-
  wait "$gpid" 2>/dev/null || true
  read -r i0 a0 < <(cpu_idle)
  sleep 10
  read -r i1 a1 < <(cpu_idle)
  idle=$(echo "scale=1; 100 * ($i1 - $i0) / ($a1 - $a0)" | bc)
  reset=()
  for i in $(seq "$RUNS"); do
    rs=$dir/candidates/c2/run/exam-b$n-c2
    t0=$(date +%s%N)
    "$KLAB" exam reset "$dir" c2 >/dev/null
    wait_file "$rs/state"
    answers "$rs"
    reset+=("$(ms "$t0")")
  done
  "$KLAB" exam stop "$dir" >/dev/null
  wait "$ctl" || true
  printf 'exam room of %2s (x86_64 lab kernel, TCG, 2 cores): start -> every shell answers %7s ms; reset -> shell answers median %5s ms (runs: %s); per candidate idle: VM + supervisor %s MiB Pss, one gdb %s MiB Pss; host idle CPU %s%%\n' \
    "$n" "$start" "$(printf '%s\n' "${reset[@]}" | median)" "${reset[*]}" \
    "$(( total / n / 1024 ))" "$(( gdb_kb / 1024 ))" "$idle"
done
