#!/usr/bin/env bash
# Runs every test and ends with "N passed, N failed". Each test program prints "ok - NAME" or
# "not ok - NAME: WHY" per check; a program that dies without saying why counts as one failure.
cd "$(dirname "$0")/.." || exit 2
passed=0 failed=0
run() {
  local label=$1; shift
  echo "== $label"
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -E '^(ok|not ok) - |^  ' || true
  local p f
  p=$(printf '%s\n' "$out" | grep -c '^ok - ')
  f=$(printf '%s\n' "$out" | grep -c '^not ok - ')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "not ok - $label exited with status $rc"
    printf '%s\n' "$out" | tail -15 | sed 's/^/    /'
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
}
if [ "${1:-}" = kernels ]; then
  # make test-kernels: every source profile, built (cached), booted, module loop, gdb.
  for profile in x86_64 arm64-4k arm64-16k arm64-64k; do
    run "source kernel: $profile" bash tests/integration/source_kernel.sh "$profile"
  done
  run "source kernel: x86_64 on 4-level paging" bash tests/integration/source_kernel.sh x86_64 qemu64
  run "source kernel: arm64-64k-52 (-cpu max, 52-bit VA)" bash tests/integration/source_kernel.sh arm64-64k-52 max
  echo
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi
for t in build/tests/test_*; do
  [ -x "$t" ] && run "unit: ${t##*/}" "$t"
done
run "rootfs: independent readers, reproducibility" bash tests/integration/rootfs.sh
run "boot: x86_64" bash tests/integration/boot.sh x86_64
run "boot: arm64" bash tests/integration/boot.sh arm64
run "libklab vs QEMU gva2gpa: x86_64 5-level" bash tests/integration/mmu.sh x86_64 max
run "libklab vs QEMU gva2gpa: x86_64 4-level" bash tests/integration/mmu.sh x86_64 qemu64
run "libklab vs QEMU gva2gpa: arm64" bash tests/integration/mmu.sh arm64
run "gdb commands vtop/pte/ptdump: x86_64" bash tests/integration/gdb_mmu.sh x86_64
run "gdb commands vtop/pte/ptdump: arm64" bash tests/integration/gdb_mmu.sh arm64
run "gdb current/ps/page/initmem-watch/vtop --pid: x86_64 5-level" bash tests/integration/gdb_kernel.sh x86_64
run "gdb current/ps/page/initmem-watch/vtop --pid: x86_64 4-level" bash tests/integration/gdb_kernel.sh x86_64 qemu64
run "gdb current/ps/page/initmem-watch/vtop --pid: arm64" bash tests/integration/gdb_kernel.sh arm64
run "gdb KASLR: x86_64, two boots" bash tests/integration/gdb_kaslr.sh x86_64
run "gdb KASLR: arm64, two boots" bash tests/integration/gdb_kaslr.sh arm64
run "gdb module symbols: hellodrv on x86_64" bash tests/integration/gdb_module.sh
run "source kernels and modules: bad input" bash tests/integration/kernel_errors.sh
run "source kernel: arm64-64k (seed 002's shape)" bash tests/integration/source_kernel.sh arm64-64k
run "source kernel: x86_64" bash tests/integration/source_kernel.sh x86_64
run "exam room: 4 candidates, plain QEMU" bash tests/integration/exam.sh
run "libvirt backend: qemu:///session as an unprivileged user" bash tests/integration/libvirt.sh
run "libvirt backend: a system daemon (qemu:///system)" bash tests/integration/libvirt_system.sh
run "exam room: 2 candidates through libvirt" bash tests/integration/exam_libvirt.sh
run "security: other local users and exam candidates" bash tests/integration/security.sh
run "fuzz: RSP replies, walkers, run state, room files, checks" bash tests/fuzz/run.sh
run "bad input" bash tests/integration/bad_input.sh
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
