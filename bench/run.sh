#!/usr/bin/env bash
# All benchmarks; figures also saved to bench/results/latest.txt (ignored by git).
cd "$(dirname "$0")/.."
mkdir -p bench/results
{ echo "# klab benchmarks $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -r)"
  bash bench/boot.sh
  bash bench/snapshot.sh
  bash bench/rootfs.sh
  bash bench/ptdump.sh
  bash bench/loop.sh
  bash bench/exam.sh
  bash bench/gdb.sh
  bash bench/triage.sh
  bash bench/dump.sh
  bash bench/replay.sh
} 2>&1 | tee bench/results/latest.txt
