#!/usr/bin/env bash
# The README's commands on a machine with none of klab's packages: every compile and every fetch must come
# after scripts/deps.sh has installed what they need. CI runs on a machine that already has the packages, so
# a target that compiles first (make vm-x86 once built klab before deps.sh, and failed on a fresh machine
# for want of libvirt's, libdw's and lzo's headers) passes there; this reads make's own plan instead.
# Oracle: make -n (make's order, not klab's), on an empty build folder and an empty cache.
cd "$(dirname "$0")/../.." || exit 2
. tests/lib.sh
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# The first line of make's plan that compiles, links or fetches; and the line of deps.sh.
first_line() { grep -nE "$1" "$2" | head -1 | cut -d: -f1; }
needs='(^|[ /])(cc|gcc|clang|x86_64-linux-gnu-gcc|aarch64-linux-gnu-gcc) |fetch-debian\.sh|fetch-busybox\.sh|crash-build\.sh|kernels/build\.sh|kernels/module\.sh'
for target in vm-x86 vm-arm gdb-x86 gdb-arm test all labs rootfs kernels crash unit install; do
  plan=$tmp/$target.plan
  rm -rf "$tmp/build" "$tmp/cache"
  if ! make -n "$target" BUILD="$tmp/build" KLAB_CACHE="$tmp/cache" DESTDIR="$tmp/dest" </dev/null >"$plan" 2>&1; then
    fail "make -n $target" "$(tail -3 "$plan")"
    continue
  fi
  d=$(first_line 'scripts/deps\.sh' "$plan")
  c=$(first_line "$needs" "$plan")
  if [ -z "$c" ]; then
    fail "make $target on a fresh machine" "its plan compiles and fetches nothing: the pattern is stale"
  elif [ -z "$d" ]; then
    fail "make $target on a fresh machine" "never runs scripts/deps.sh, but line $c needs its packages: $(sed -n "${c}p" "$plan" | cut -c1-120)"
  elif [ "$d" -gt "$c" ]; then
    fail "make $target on a fresh machine" "line $c runs before scripts/deps.sh (line $d): $(sed -n "${c}p" "$plan" | cut -c1-120)"
  else
    ok "make $target on a fresh machine: scripts/deps.sh (line $d) before the first compile or fetch (line $c)"
  fi
done
finish
