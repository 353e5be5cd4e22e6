#!/bin/bash
# The gdb package's unit checks, inside a real gdb-multiarch but without a VM (tests/unit/test_gdb_package.py).
out=$(timeout 120 gdb-multiarch -q -batch -nx -x tests/unit/test_gdb_package.py 2>&1)
echo "$out" | grep -E "^(ok|not ok) - |^    "
echo "$out" | grep -q "^# test_gdb_package: done" || { echo "not ok - gdb package checks ran to the end: $(echo "$out" | tail -3)"; exit 1; }
echo "$out" | grep -q "Traceback" && { echo "not ok - no Python traceback: $(echo "$out" | grep -A3 Traceback | head -4)"; exit 1; }
! echo "$out" | grep -q "^not ok"
