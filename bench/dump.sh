#!/usr/bin/env bash
# klab dump of a 1 GiB guest at its shell, per architecture (Debian 6.1 kernels): medians of RUNS dumps per
# format (time and size, to /var/tmp), then drgn's start on the dump (klab drgn DUMP with a one-line script:
# the pair check, drgn loading vmlinux's DWARF, one read) and crash's (klab crash -s to its prompt and `sys`,
# with the crash `make crash` built for the arch), and klab's own walks of the dump against the live ones.
# Goals (issue 13): a dump in <= 2 s for a 1 GiB guest at the shell; klab's dump walks within 2x of its
# RAM-file walks.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh 3
cache=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}
out=$(mktemp -d /var/tmp/klab-bench-dump-XXXXXX)
trap 'rm -rf "$out"; bench_cleanup' EXIT
echo 'print(prog["init_task"].comm)' >"$work/one.py"
# times: RUNS timings of the whole `klab vtop --dump FILE linux_banner` command (file opened and checked)
vtop_ms() {
  times=()
  for i in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    "$KLAB" vtop --dump "$1" --vmlinux "$cache/kernels/$kernel/vmlinux" linux_banner >/dev/null
    times+=("$(ms "$t0")")
  done
}
for kernel in debian-amd64 debian-arm64; do
  arch=$([ "$kernel" = debian-amd64 ] && echo x86_64 || echo arm64)
  [ -s "$cache/kernels/$kernel/vmlinux" ] || { echo "$kernel: not fetched, skipped"; continue; }
  "$KLAB" boot --kernel "$kernel" --name bd --mem 1G --no-wait --detach >/dev/null 2>&1
  "$KLAB" wait bd --timeout 600 >/dev/null
  sleep 2
  for fmt in elf-paging elf kdump-zlib kdump-lzo kdump-snappy; do
    times=() size=0
    for i in $(seq "$RUNS"); do
      rm -f "$out/d"
      t0=$(date +%s%N)
      if ! "$KLAB" dump bd --format "$fmt" -o "$out/d" >"$work/err" 2>&1; then
        printf '%-13s dump %-13s not measured: %s\n' "$kernel" "$fmt" "$(tail -1 "$work/err")"
        continue 2
      fi
      times+=("$(ms "$t0")")
      size=$(( $(stat -c %s "$out/d") >> 20 ))
    done
    printf '%-13s dump %-13s median %7s ms  %5s MiB  (runs: %s)  goal <= 2000 ms\n' "$kernel" "$fmt" \
      "$(printf '%s\n' "${times[@]}" | median)" "$size" "${times[*]}"
  done
  rm -f "$out/d"
  "$KLAB" dump bd -o "$out/d" >/dev/null
  times=()
  for i in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    "$KLAB" drgn "$out/d" --vmlinux "$cache/kernels/$kernel/vmlinux" -- "$work/one.py" >/dev/null
    times+=("$(ms "$t0")")
  done
  printf '%-13s klab drgn DUMP, one read     median %7s ms  (runs: %s)\n' "$kernel" "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
  # klab's own walks: the kernel half from the dump against the same walk from the live VM's RAM file
  # (ptdump --repeat: median of the walk alone; vtop: the whole command, file opened and checked)
  half=0x8000000000000000-0xffffffffffffffff
  live=$("$KLAB" ptdump --vm bd --range $half --repeat 20 --quiet 2>&1 | sed -n 's/.*walk \([0-9.]*\) ms.*/\1/p')
  dumped=$("$KLAB" ptdump --dump "$out/d" --range $half --repeat 20 --quiet 2>&1 | sed -n 's/.*walk \([0-9.]*\) ms.*/\1/p')
  printf '%-13s ptdump kernel half: dump %s ms, RAM file %s ms (medians of 20 walks)  goal: dump <= 2x RAM file\n' \
    "$kernel" "$dumped" "$live"
  # the same walk on a kdump-zlib file: the first walk inflates every table page, later ones find them in
  # libklab's 4 MiB page cache (the median of 20 is warm; the first walk of a fresh command is the cold one)
  rm -f "$out/z"
  "$KLAB" dump bd --format kdump-zlib -o "$out/z" >/dev/null 2>&1
  zdumped=$("$KLAB" ptdump --dump "$out/z" --range $half --repeat 20 --quiet 2>&1 | sed -n 's/.*walk \([0-9.]*\) ms.*/\1/p')
  zcold=$("$KLAB" ptdump --dump "$out/z" --range $half --stats --quiet 2>&1 | sed -n 's/.*walk \([0-9.]*\) ms.*/\1/p')
  vtop_ms "$out/z"
  printf '%-13s ptdump kernel half on kdump-zlib: %s ms (median of 20), %s ms cold; vtop --dump SYMBOL median %s ms\n' \
    "$kernel" "$zdumped" "$zcold" "$(printf '%s\n' "${times[@]}" | median)"
  rm -f "$out/z"
  vtop_ms "$out/d"
  printf '%-13s klab vtop --dump SYMBOL       median %7s ms  (runs: %s)\n' "$kernel" "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
  # klab crash as a user runs it: the pair checked, the modules' .ko farm, crash -s to its prompt, sys.
  which=$(cat "$cache/crash/$arch/VERSION" 2>/dev/null || echo "Debian's")
  times=()
  for i in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    printf 'sys\nquit\n' | "$KLAB" crash "$out/d" --vmlinux "$cache/kernels/$kernel/vmlinux" -- -s >"$out/crash.out" 2>&1 || true
    times+=("$(ms "$t0")")
    grep -q 'RELEASE:' "$out/crash.out" || { echo "klab crash on the $arch dump did not start: $(tail -2 "$out/crash.out")" >&2; exit 1; }
  done
  printf '%-13s klab crash -s, sys (crash %s) median %7s ms  (runs: %s; the first made the indexed vmlinux)\n' "$kernel" "$which" "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
  # The same crash on the vmlinux as it is (no .gdb_index: its gdb reads all the DWARF), for comparison.
  if [ -x "$cache/crash/$arch/crash" ]; then
    times=()
    for i in $(seq "$RUNS"); do
      t0=$(date +%s%N)
      printf 'sys\nquit\n' | "$cache/crash/$arch/crash" -s "$cache/kernels/$kernel/vmlinux" "$out/d" >"$out/crash.out" 2>&1 || true
      times+=("$(ms "$t0")")
    done
    printf '%-13s crash -s, sys on the plain vmlinux median %7s ms  (runs: %s)\n' "$kernel" "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
  fi
  "$KLAB" stop bd >/dev/null
done
