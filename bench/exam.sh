#!/usr/bin/env bash
# Exam room figures: start-up of a 4-candidate room (controller start -> every VM at its init banner) and
# one candidate's reset (request -> pristine VM at its banner), medians of RUNS, on the x86_64 lab kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 3
trap 'pkill -f "klab exam run $work" 2>/dev/null; bench_cleanup' EXIT
bash kernels/build.sh x86_64 >/dev/null
start=() reset=()
for i in $(seq "$RUNS"); do
  printf 'name = b%s\nkernel = x86_64\ntask = %s/labs/exam/myhello\ntime_limit = 10m\ncandidates = c1 c2 c3 c4\n' \
    "$i" "$PWD" >"$work/room$i.conf"
  dir=$work/exam-b$i
  t0=$(date +%s%N)
  "$KLAB" exam run "$work/room$i.conf" --dir "$dir" >/dev/null 2>&1 &
  for c in c1 c2 c3 c4; do
    until [ -f "$dir/candidates/$c/run/exam-b$i-$c/state" ]; do sleep 0.02; done
    KLAB_RUN_DIR=$dir/candidates/$c/run "$KLAB" wait "exam-b$i-$c" --timeout 120 >/dev/null
  done
  start+=("$(ms "$t0")")
  t0=$(date +%s%N)
  "$KLAB" exam reset "$dir" c2 >/dev/null
  sleep 0.05
  until [ -f "$dir/candidates/c2/run/exam-b$i-c2/state" ]; do sleep 0.02; done
  KLAB_RUN_DIR=$dir/candidates/c2/run "$KLAB" wait "exam-b$i-c2" --timeout 120 >/dev/null
  reset+=("$(ms "$t0")")
  "$KLAB" exam stop "$dir" >/dev/null
  wait
done
printf 'exam room of 4 (x86_64 lab kernel, TCG): start -> all banners %s ms, one reset -> banner %s ms (median of %s)\n' \
  "$(printf '%s\n' "${start[@]}" | median)" "$(printf '%s\n' "${reset[@]}" | median)" "$RUNS"
