#!/usr/bin/env bash
# klab's pictures (vtop / ptdump / ptdiff --svg, from the shell and from gdb) of a real VM, checked against
# QEMU and drawn by a real browser: each SVG is valid (xmllint); a walk's entries are QEMU's own reads (xp),
# its tables chain by the architecture's bits, its PA is QEMU's gva2gpa; a map's ranges translate where
# gva2gpa says and its regions start where the kernel's variables (read by QEMU at nm's addresses) say, its
# module area holds every module of the guest's /proc/modules; a
# diff outlines as many changes as klab ptdiff lists; Debian's chromium renders every picture, not blank.
# On arm64 also the seed 002 shape (64K pages, 48-bit VA, 3 levels) from libklab's unit test.
#   tests/integration/svg.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64|arm64) ;; *) echo "usage: svg.sh x86_64|arm64"; exit 2 ;; esac
for tool in xmllint chromium; do
  command -v $tool >/dev/null || { fail "$arch: $tool" "not installed (scripts/deps.sh installs it)"; finish; }
done
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
export KLAB_PTSNAP_DIR=$work/store
name=svg-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
"$KLAB" boot --arch "$arch" --name "$name" --no-wait --detach >"$work/boot" 2>&1 || { fail "$arch: boot" "$(cat "$work/boot")"; finish; }
timeout 300 "$KLAB" wait "$name" >/dev/null 2>&1 || { fail "$arch: banner" "no init banner"; finish; }
mon=$KLAB_RUN_DIR/$name/monitor.sock
hmp() { python3 tests/integration/hmp.py "$mon" "$@"; }
check_py() { python3 tests/integration/svg_check.py "$@"; }
vmlinux=$(sed -n 's/^vmlinux=//p' "$KLAB_RUN_DIR/$name/state")
sym() { nm "$vmlinux" | awk -v s="$1" '$3 == s { print $1; exit }'; }

# valid NAME FILE: xmllint's verdict, then chromium's drawing.
drawn() {
  local what=$1 f=$2 out
  if ! out=$(xmllint --noout "$f" 2>&1); then fail "$what: xmllint" "$out"; return 1; fi
  if out=$(check_py render "$f" "${f%.svg}.png"); then ok "$what: valid SVG, rendered: $out"
  else fail "$what: rendered" "$out"; fi
}

# The loaded modules' addresses (the guest's /proc/modules, read as root), for the map's module area.
mods=$(python3 tests/integration/console.py "$KLAB_RUN_DIR/$name/console.sock" 'cat /proc/modules' 3 | tr -d '\r' \
  | awk '$5 == "Live" && $6 ~ /^0x[0-9a-f]+$/ { print $6 }')
hmp stop >/dev/null
# An address in no range: the end of the first kernel-half range that the next one does not continue.
"$KLAB" ptdump --vm "$name" >"$work/ptdump" 2>&1
hole=$(awk '$1 ~ /^0xffff/ { split($1, r, "-"); if (prev != "" && r[1] != prev) { print prev; exit } prev = r[2] }' "$work/ptdump")
for what in init_task jiffies ${hole:+$hole}; do
  f=$work/vtop-$what.svg
  if ! "$KLAB" vtop "$what" --vm "$name" --svg "$f" >"$work/vtop.out" 2>&1 && [ "$what" != "$hole" ]; then
    fail "$arch: vtop $what --svg" "$(tail -2 "$work/vtop.out")"; continue
  fi
  va=${what#0x}; [ "$what" = "$hole" ] || va=$(sym "$what")
  if out=$(check_py walk "$f" "$va" "$arch" "$mon"); then ok "$arch: vtop $what --svg: $out"
  else fail "$arch: vtop $what --svg vs QEMU" "$out"; fi
  drawn "$arch: vtop $what" "$f"
done
[ -n "$hole" ] || fail "$arch: an unmapped kernel address" "ptdump shows no gap in the kernel half"
"$KLAB" vtop init_task --vm "$name" --svg - >"$work/stdout.svg" 2>"$work/stdout.err"
xmllint --noout "$work/stdout.svg" 2>/dev/null && [ ! -s "$work/stdout.err" ] \
  && ok "$arch: vtop --svg - writes the picture alone to stdout" || fail "$arch: vtop --svg -" "$(head -c 300 "$work/stdout.svg")"

# The map: ranges against gva2gpa, the named regions against the kernel's own variables.
f=$work/ptdump.svg
if "$KLAB" ptdump --vm "$name" --svg "$f" >"$work/map.out" 2>&1; then
  if out=$(check_py map "$f" "$arch" "$mon" 24); then ok "$arch: ptdump --svg: $out"; else fail "$arch: ptdump --svg vs QEMU" "$out"; fi
  drawn "$arch: ptdump" "$f"
else fail "$arch: ptdump --svg" "$(cat "$work/map.out")"; fi
# A row's first line names it and the next gives its span; the first VA of the named row is the region's start.
row_start() { grep -A1 ">$1<" "$f" | sed -n 's/.*>0x\([0-9a-f]*\)-0x.*/\1/p' | head -1; }
text=$(sym _text)
[ -n "$text" ] && [ "$(row_start 'kernel image')" = "$(printf '%016x' 0x$text)" ] \
  && ok "$arch: the 'kernel image' row starts at _text ($text, nm)" || fail "$arch: kernel image row" "row $(row_start 'kernel image'), _text $text"
if [ "$arch" = x86_64 ]; then
  # page_offset_base read by QEMU (x: the CPU's own translation) at nm's address.
  pob=$(hmp "x /1gx 0x$(sym page_offset_base)" | sed -n 's/.*: *0x\([0-9a-f]*\).*/\1/p')
  [ -n "$pob" ] && [ "$(row_start 'direct map')" = "$(printf '%016x' 0x$pob)" ] \
    && ok "$arch: the 'direct map' row starts at page_offset_base (0x$pob, read by QEMU)" \
    || fail "$arch: direct map row" "row $(row_start 'direct map'), page_offset_base $pob"
else
  grep -q '>linear map<' "$f" && ok "$arch: the map names the linear map" || fail "$arch: linear map row" "none in the map"
fi
# A named row's span, "START END" in hex without 0x.
row_span() { grep -A1 ">$1<" "$f" | sed -n 's/.*>0x\([0-9a-f]*\)-0x\([0-9a-f]*\)<.*/\1 \2/p' | head -1; }
if [ -z "$mods" ]; then
  fail "$arch: modules" "the guest's /proc/modules lists none"
elif [ "$arch" = x86_64 ]; then
  # MODULES_VADDR = __START_KERNEL_map + KERNEL_IMAGE_SIZE: 1 GiB with CONFIG_RANDOMIZE_BASE, else 512 MiB
  # (arch/x86/include/asm/page_64_types.h), from the kernel's config; MODULES_END is 0xffffffffff000000.
  config=$(dirname "$vmlinux")/config
  grep -q '^CONFIG_RANDOMIZE_BASE=y' "$config" && vaddr=$((0xffffffff80000000 + (1 << 30))) || vaddr=$((0xffffffff80000000 + (1 << 29)))
  read -r lo hi <<<"$(row_span modules)"
  bad=$(for m in $mods; do [ -n "$lo" ] && [ "$((m))" -ge "$((0x$lo))" ] && [ "$((m))" -le "$((0x$hi))" ] || echo "$m"; done)
  [ -n "$lo" ] && [ -z "$bad" ] && [ "$((0x$lo))" -ge "$vaddr" ] && [ "$((0x$hi))" -lt "$((0xffffffffff000000))" ] \
    && ok "$arch: the 'modules' row (0x$lo-0x$hi) holds every loaded module ($(echo $mods | wc -w), /proc/modules) within MODULES_VADDR-MODULES_END" \
    || fail "$arch: modules row" "row '$lo-$hi', MODULES_VADDR $(printf '%x' $vaddr), outside: $bad"
  read -r lo hi <<<"$(row_span 'fixmap, vsyscall')"
  [ -n "$lo" ] && [ "$((0x$lo))" -ge "$((0xffffffffff000000))" ] \
    && ok "$arch: the 'fixmap, vsyscall' row lies above MODULES_END (0x$lo-0x$hi)" || fail "$arch: fixmap row" "row '$lo-$hi'"
else
  # arm64's module area starts at PAGE_END (the linear map's end, 0xffff800000000000 with 48-bit VAs).
  read -r lo hi <<<"$(row_span modules)"
  bad=$(for m in $mods; do [ -n "$lo" ] && [ "$((m))" -ge "$((0x$lo))" ] && [ "$((m))" -le "$((0x$hi))" ] || echo "$m"; done)
  [ -n "$lo" ] && [ -z "$bad" ] && [ "$((0x$lo))" -ge "$((0xffff800000000000))" ] \
    && ok "$arch: the 'modules' row (0x$lo-0x$hi) holds every loaded module ($(echo $mods | wc -w), /proc/modules), above PAGE_END" \
    || fail "$arch: modules row" "row '$lo-$hi', outside: $bad"
fi

# A diff: as many outlines as klab ptdiff lists changes.
"$KLAB" ptsnap save a --vm "$name" >/dev/null 2>&1
hmp cont >/dev/null
python3 tests/integration/console.py "$KLAB_RUN_DIR/$name/console.sock" 'ls /proc >/dev/null; cat /proc/meminfo >/dev/null' 3 >/dev/null
hmp stop >/dev/null
f=$work/ptdiff.svg
"$KLAB" ptdiff a --vm "$name" --svg "$f" >"$work/diff" 2>"$work/diff.err"; rc=$?
n=$(grep -cE '^[-+~] 0x' "$work/diff")
outlines=$(grep -cE 'class="(mapped|unmapped|changed)"/>' "$f" 2>/dev/null)
if [ $rc -le 1 ] && [ "$n" = "$outlines" ]; then ok "$arch: ptdiff --svg outlines $outlines changes, as klab ptdiff lists (exit $rc)"
else fail "$arch: ptdiff --svg" "rc $rc, $n changes listed, $outlines outlined: $(cat "$work/diff.err")"; fi
drawn "$arch: ptdiff" "$f"

# gdb's commands draw the same pictures.
hmp cont >/dev/null
timeout 300 "$KLAB" gdb "$name" -batch -ex "klab vtop init_task --svg $work/gdb-vtop.svg" \
  -ex "klab ptdump --svg $work/gdb-ptdump.svg" -ex 'echo GDB-DONE\n' >"$work/gdb.out" 2>&1
gdb_ran "$arch: gdb --svg" $? "$work/gdb.out" GDB-DONE
hmp stop >/dev/null
if out=$(check_py walk "$work/gdb-vtop.svg" "$(sym init_task)" "$arch" "$mon"); then ok "$arch: gdb klab vtop --svg: $out"
else fail "$arch: gdb klab vtop --svg" "$out"; fi
drawn "$arch: gdb klab ptdump" "$work/gdb-ptdump.svg"
grep -q '>kernel image<' "$work/gdb-ptdump.svg" && ok "$arch: gdb's map names the kernel image (gdb's symbols)" \
  || fail "$arch: gdb map regions" "no kernel image row"

# The seed 002 shape: libklab's own walk of arm64 64K/48-bit/3-level tables, drawn and rendered.
if [ "$arch" = arm64 ]; then
  mkdir -p "$work/unit"
  if build/tests/test_svg "$work/unit" >"$work/unit.out" 2>&1; then
    for f in "$work"/unit/*.svg; do drawn "synthetic $(basename "$f" .svg)" "$f"; done
  else fail "libklab's picture tests" "$(grep -v '^ok' "$work/unit.out" | head -3)"; fi
fi

# Refusals, one line each.
ln -s "$work/ptdump.svg" "$work/link.svg"
expect_error "$arch: --svg through a symlink is refused" 'symlink' "$KLAB" vtop init_task --vm "$name" --svg "$work/link.svg"
expect_error "$arch: --svg draws one address" 'draws one address' "$KLAB" vtop init_task jiffies --vm "$name" --svg "$work/x.svg"
expect_error "$arch: ptdump --svg --non-present" 'not with --non-present' "$KLAB" ptdump --vm "$name" --non-present --svg "$work/x.svg"
expect_error "$arch: --svg into a missing folder" 'cannot create' "$KLAB" vtop init_task --vm "$name" --svg /nonexistent/x.svg
hmp cont >/dev/null
finish
