#!/usr/bin/env bash
# Runs every test and ends with "N passed, N failed, N skipped". Each test program prints one line per check:
# "ok - NAME", "not ok - NAME: WHY", or "skip - NAME: WHY" (it could not run here: counted and shown, never
# taken for a pass). The runner itself fails a program that
#   - dies without saying why (non-zero exit, no "not ok" line),
#   - runs past its time limit (killed; named; the rest of `make test` goes on),
#   - printed a plan ("1..N", TAP) and made a different number of checks, or printed none where one is due
#     (every integration test prints its plan last, tests/lib.sh finish: a program or gdb session that
#     ended halfway must not pass on the checks it made),
#   - made no check at all.
cd "$(dirname "$0")/.." || exit 2
passed=0 failed=0 skipped=0 times=() failures=()
# runner_fail WHY: a failure of the program run() runs as a whole (not one of its checks), named by the runner
runner_fail() { echo "not ok - $label$1"; failures+=("$label$1"); }
# run [--limit S] [--plan] LABEL CMD...   (TESTS=REGEX in the environment: only labels that match)
run() {
  local limit=900 want_plan=
  while :; do
    case $1 in
      --limit) limit=$2; shift 2 ;;
      --plan) want_plan=1; shift ;;
      *) break ;;
    esac
  done
  local label=$1; shift
  # TESTS=REGEX (make test TESTS=...): only the programs whose label matches.
  if [ -n "${TESTS:-}" ] && ! [[ $label =~ $TESTS ]]; then return; fi
  echo "== $label"
  local out rc t0=$SECONDS
  out=$(timeout --kill-after=20 "$limit" "$@" 2>&1); rc=$?
  # how long each program took, for the slowest list summary prints (make test has a 90-minute CI budget)
  times+=("$((SECONDS - t0)) $label")
  printf '%s\n' "$out" | grep -E '^(ok|not ok|skip) - |^  ' || true
  # every failed check again under the summary: a long log's tail must name them
  local line
  while IFS= read -r line; do failures+=("$label: ${line:0:400}"); done < <(printf '%s\n' "$out" | grep '^not ok - ')
  local p f s plan
  p=$(printf '%s\n' "$out" | grep -c '^ok - ')
  f=$(printf '%s\n' "$out" | grep -c '^not ok - ')
  s=$(printf '%s\n' "$out" | grep -c '^skip - ')
  plan=$(printf '%s\n' "$out" | sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' | tail -1)
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    runner_fail ": timed out after $limit s (killed)"
    f=$((f + 1))
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    runner_fail " exited with status $rc"
    printf '%s\n' "$out" | tail -15 | sed 's/^/    /'
    f=1
  fi
  if [ -n "$plan" ] && [ $((p + f + s)) -ne "$plan" ]; then
    runner_fail ": planned $plan checks, made $((p + f + s))"
    f=$((f + 1))
  elif [ -z "$plan" ] && [ -n "$want_plan" ]; then
    runner_fail ": no plan (1..N): the session may have ended early"
    f=$((f + 1))
  elif [ $((p + f + s)) -eq 0 ]; then
    runner_fail ": made no check"
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}
summary() {
  echo
  echo "# the slowest programs (seconds):"
  printf '%s\n' "${times[@]}" | sort -rn | head -12 | sed 's/^/#   /'
  if [ "${#failures[@]}" -gt 0 ]; then
    echo
    echo "# what failed:"
    printf '%s\n' "${failures[@]}" | sed 's/^/#   /'
  fi
  echo
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}
if [ "${1:-}" = kernels ]; then
  # make test-kernels: every source profile, built (cached), booted, module loop, gdb.
  for profile in x86_64 arm64-4k arm64-16k arm64-64k; do
    run --limit 1500 --plan "source kernel: $profile" bash tests/integration/source_kernel.sh "$profile"
  done
  run --limit 1500 --plan "source kernel: x86_64 on 4-level paging" bash tests/integration/source_kernel.sh x86_64 qemu64
  run --limit 1500 --plan "source kernel: arm64-64k-52 (-cpu max, 52-bit VA)" bash tests/integration/source_kernel.sh arm64-64k-52 max
  KLAB_TEST_KERNEL=debian-6.12-amd64 run --plan "klab dump, crash, drgn, vtop --dump: x86_64 on Debian 6.12" \
    bash tests/integration/dump.sh x86_64
  for k in x86_64 arm64-64k debian-6.12-amd64 debian-6.12-arm64; do
    run --plan "module builds: cached compiler probes vs Kbuild's uncached commands: $k" bash tests/integration/module_build.sh "$k"
  done
  for t in source mmu kernel kaslr umem triage; do
    KLAB_TEST_KERNEL=debian-6.12-arm64 run --plan "gdb $t: arm64 on Debian 6.12" bash tests/integration/gdb_$t.sh arm64
  done
  KLAB_TEST_KERNEL=debian-6.12-arm64 run --plan "gdb umem: arm64 -cpu max (PAN, LPA2) on Debian 6.12" \
    bash tests/integration/gdb_umem.sh arm64 max
  summary
  exit
fi
for t in build/tests/test_*; do
  [ -x "$t" ] && run --limit 300 "unit: ${t##*/}" "$t"
done
run --limit 300 "unit: the gdb package without a VM" bash tests/unit/gdb_package.sh
run --plan "cold path: every make target installs klab's packages before it compiles or fetches" bash tests/integration/cold_order.sh
run --plan "rootfs: independent readers, reproducibility" bash tests/integration/rootfs.sh
run --plan "boot: x86_64" bash tests/integration/boot.sh x86_64
run --plan "boot: arm64" bash tests/integration/boot.sh arm64
run --plan "snapshot: save, restore, reset, --add/--run, stale, damaged: x86_64" bash tests/integration/snapshot.sh x86_64
run --plan "snapshot: save, restore, reset, --add/--run, stale, damaged: arm64" bash tests/integration/snapshot.sh arm64
run --plan "libklab vs QEMU gva2gpa: x86_64 5-level" bash tests/integration/mmu.sh x86_64 max
run --plan "libklab vs QEMU gva2gpa: x86_64 4-level" bash tests/integration/mmu.sh x86_64 qemu64
run --plan "libklab vs QEMU gva2gpa: arm64" bash tests/integration/mmu.sh arm64
run --plan "ptsnap/ptdiff vs QEMU gva2gpa: x86_64" bash tests/integration/ptdiff.sh x86_64
run --plan "ptsnap/ptdiff vs QEMU gva2gpa: arm64" bash tests/integration/ptdiff.sh arm64
run --plan "ptdiff of a module load vs /sys/module and gva2gpa: x86_64" bash tests/integration/ptdiff_module.sh x86_64
run --plan "ptdiff of a module load vs /sys/module and gva2gpa: arm64" bash tests/integration/ptdiff_module.sh arm64
run --plan "ptdiff of memfd_secret vs pagemap, meminfo DirectMap and gva2gpa: x86_64" bash tests/integration/ptdiff_secret.sh x86_64
run --plan "ptdiff of memfd_secret vs pagemap and gva2gpa: arm64" bash tests/integration/ptdiff_secret.sh arm64
run --plan "gdb ptsnap --pid: mprotect, fork, copy-on-write vs /proc: x86_64" bash tests/integration/gdb_ptlab.sh x86_64
run --plan "gdb ptsnap --pid: mprotect, fork, copy-on-write vs /proc: arm64" bash tests/integration/gdb_ptlab.sh arm64
run --limit 1500 --plan "record/replay: console, reverse-stepi, reverse-continue, watchpoints: x86_64" bash tests/integration/replay.sh x86_64
run --limit 1500 --plan "record/replay: console, reverse-stepi, reverse-continue, watchpoints: arm64" bash tests/integration/replay.sh arm64
run --limit 1500 --plan "who wrote it: a stale write found backwards in a replay: x86_64" bash tests/integration/replay_module.sh x86_64
run --limit 1500 --plan "who wrote it: a stale write found backwards in a replay: arm64" bash tests/integration/replay_module.sh arm64
run --plan "--svg pictures vs QEMU, drawn by chromium: x86_64" bash tests/integration/svg.sh x86_64
run --plan "--svg pictures vs QEMU, drawn by chromium: arm64" bash tests/integration/svg.sh arm64
run --plan "gdb commands vtop/pte/ptdump: x86_64" bash tests/integration/gdb_mmu.sh x86_64
run --plan "gdb commands vtop/pte/ptdump: arm64" bash tests/integration/gdb_mmu.sh arm64
run --plan "gdb current/ps/page/initmem-watch/vtop --pid: x86_64 5-level" bash tests/integration/gdb_kernel.sh x86_64
run --plan "gdb current/ps/page/initmem-watch/vtop --pid: x86_64 4-level" bash tests/integration/gdb_kernel.sh x86_64 qemu64
run --plan "gdb current/ps/page/initmem-watch/vtop --pid: arm64" bash tests/integration/gdb_kernel.sh arm64
run --plan "gdb user memory (swap, migration, pagemap): x86_64" bash tests/integration/gdb_umem.sh x86_64
run --plan "gdb user memory (swap, migration, pagemap): arm64" bash tests/integration/gdb_umem.sh arm64
run --plan "gdb user memory: arm64 -cpu max (QEMU's PAN blind spot)" bash tests/integration/gdb_umem.sh arm64 max
run --plan "gdb KASLR: x86_64, two boots" bash tests/integration/gdb_kaslr.sh x86_64
run --plan "gdb KASLR: arm64, two boots" bash tests/integration/gdb_kaslr.sh arm64
run --plan "gdb module symbols: hellodrv on x86_64" bash tests/integration/gdb_module.sh
run --plan "module builds: cached compiler probes vs Kbuild's uncached commands: x86_64" bash tests/integration/module_build.sh debian-amd64
run --plan "module builds: cached compiler probes vs Kbuild's uncached commands: arm64" bash tests/integration/module_build.sh debian-arm64
run --plan "klab reset inside gdb: the module loop with one gdb: x86_64" bash tests/integration/gdb_reset.sh x86_64
run --plan "klab reset inside gdb: the module loop with one gdb: arm64" bash tests/integration/gdb_reset.sh arm64
run --plan "gdb triage (dmesg, bt, slab, whatis, search) and the soft-lockup lab: x86_64" \
  bash tests/integration/gdb_triage.sh x86_64
run --plan "gdb triage (dmesg, bt, slab, whatis, search): arm64" bash tests/integration/gdb_triage.sh arm64
run --plan "klab dump, drgn, crash, vtop --dump (VMCOREINFO, drgn vs /proc and gva2gpa): x86_64 5-level" \
  bash tests/integration/dump.sh x86_64
run --plan "klab dump, drgn, crash, vtop --dump: x86_64 4-level, KASLR" bash tests/integration/dump.sh x86_64 qemu64 kaslr
run --plan "klab dump, drgn, crash, vtop --dump: arm64" bash tests/integration/dump.sh arm64
run --plan "klab dump, drgn, crash, vtop --dump: arm64, KASLR" bash tests/integration/dump.sh arm64 "" kaslr
run --plan "gdb index cache and Debian source lines: x86_64" bash tests/integration/gdb_source.sh x86_64
run --plan "gdb index cache and Debian source lines: arm64" bash tests/integration/gdb_source.sh arm64
# The second kernel generation (Debian 12's 6.12), on x86_64 here and on both arches in make test-kernels.
for t in source:"index cache and source lines" mmu:"vtop/pte/ptdump" kernel:"current/ps/page/initmem-watch/vtop --pid" \
         kaslr:"KASLR, two boots" module:"module symbols (hellodrv)" umem:"user memory (swap, migration, pagemap)" \
         triage:"triage and the soft-lockup lab"; do
  KLAB_TEST_KERNEL=debian-6.12-amd64 run --plan "gdb ${t#*:}: x86_64 on Debian 6.12" bash tests/integration/gdb_${t%%:*}.sh x86_64
done
run --plan "source kernels and modules: bad input" bash tests/integration/kernel_errors.sh
run --limit 1500 --plan "source kernel: arm64-64k (seed 002's shape)" bash tests/integration/source_kernel.sh arm64-64k
run --limit 1500 --plan "source kernel: x86_64" bash tests/integration/source_kernel.sh x86_64
run --plan --limit 1500 "exam room: 4 candidates, plain QEMU" bash tests/integration/exam.sh
run --plan "libvirt backend: qemu:///session as an unprivileged user" bash tests/integration/libvirt.sh
run --plan "libvirt backend: a system daemon (qemu:///system)" bash tests/integration/libvirt_system.sh
run --plan "exam room: 2 candidates through libvirt" bash tests/integration/exam_libvirt.sh
run --plan "exam room across hosts: qemu+ssh:// to a local sshd, keys only" bash tests/integration/exam_ssh.sh
run --plan --limit 1500 "security: other local users and exam candidates" bash tests/integration/security.sh
run --plan "package: make install/uninstall, make deb, lintian, dpkg -i, the clone hidden, completion, man, dpkg -r" \
  bash tests/integration/package.sh
run "fuzz: RSP replies, walkers, run state, room files, checks, vmlinux notes, dumps" bash tests/fuzz/run.sh
run --plan "bad input" bash tests/integration/bad_input.sh
run --plan "documented behaviour: smp, mem, accel, resume, ptdump options, current, ps, modules, gdb options" \
  bash tests/integration/documented.sh
summary
