#!/usr/bin/env bash
# gdb's first command, per architecture (Debian kernels; source kernels too when built): medians of RUNS fresh
# gdb sessions on one booted VM.
#   attach      `klab gdb NAME --batch -ex 'klab current'` on a VM already past start_kernel: gdb starts,
#               reads vmlinux (through klab's index cache), attaches, loads klab's package and answers
#   first stop  the same on a VM paused at its first instruction: as `make gdb-x86` does, run to start_kernel
#               (guest time under TCG included), then `klab current`
#   RSS         gdb's peak resident memory in the attach case (GNU time); a room of N candidates holds N times it
# Goals (issue 15): first stop + first `klab current` <= 1.5 s; RSS <= 500 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 5
[ -x /usr/bin/time ] || { echo "gdb: /usr/bin/time missing (Debian package time)"; exit 0; }

cache=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}
kernels=(debian-amd64 debian-arm64)
for k in debian-6.12-amd64 debian-6.12-arm64 x86_64 arm64-64k; do [ -s "$cache/kernels/$k/vmlinuz" ] && kernels+=("$k"); done
for kernel in "${kernels[@]}"; do
  [ -s "$cache/kernels/$kernel/vmlinux" ] || { echo "$kernel: not fetched, skipped"; continue; }
  bash kernels/gdb-index.sh "$cache/kernels/$kernel/vmlinux"
  attach=() first=() rss=()
  for i in $(seq "$RUNS"); do
    "$KLAB" boot --kernel "$kernel" --name g$i --detach >/dev/null 2>&1
    t0=$(date +%s%N)
    out=$("$KLAB" gdb g$i --batch -ex 'klab current' -ex detach 2>&1)
    first+=("$(ms "$t0")")
    echo "$out" | grep -q "^CPU 0" || { echo "$kernel: klab current gave no answer: $(echo "$out" | tail -2)"; exit 1; }
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$work/rss" "$KLAB" gdb g$i --batch -ex 'klab current' -ex detach >/dev/null 2>&1
    attach+=("$(ms "$t0")")
    rss+=("$(( $(tail -1 "$work/rss") / 1024 ))")
    "$KLAB" stop g$i >/dev/null
  done
  printf '%-13s first stop + klab current median %6s ms (runs: %s)  goal <= 1500 ms\n' "$kernel" \
    "$(printf '%s\n' "${first[@]}" | median)" "${first[*]}"
  printf '%-13s attach + klab current     median %6s ms (runs: %s)\n' "$kernel" \
    "$(printf '%s\n' "${attach[@]}" | median)" "${attach[*]}"
  printf '%-13s gdb RSS                   median %6s MB (runs: %s)  goal <= 500 MB; a room of 20: %s MB\n' \
    "$kernel" "$(printf '%s\n' "${rss[@]}" | median)" "${rss[*]}" "$(( $(printf '%s\n' "${rss[@]}" | median | cut -d. -f1) * 20 ))"
done
