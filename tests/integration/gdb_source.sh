#!/usr/bin/env bash
# klab gdb on Debian's kernel: the DWARF index comes from klab's index cache (built when the kernel was
# fetched: gdb itself says it read it, under the vmlinux's build-id as readelf prints it), and source lines
# come from Debian's linux-source of the same version — `info line start_kernel`'s line of init/main.c, read
# from the tree with sed, is start_kernel's definition. A tree of another version gives one line and no
# source, never wrong lines.
#   tests/integration/gdb_source.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64) deb=amd64 ;; arm64) deb=arm64 ;; *) echo "usage: gdb_source.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
cache=${KLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/klab}
kname=${KLAB_TEST_KERNEL:-debian-$deb}
kdir=$cache/kernels/$kname
# The kernel's linux-source series (6.1, 6.12), from its package version.
series=$(sed -n 's/^package_version=\([0-9]*\.[0-9]*\)\..*/\1/p' "$kdir/VERSION")
work=$(mktemp -d)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT

# The index, where klab gdb looks for it, named by the build-id.
bash kernels/gdb-index.sh "$kdir/vmlinux" 2>/dev/null
id=$(readelf -n "$kdir/vmlinux" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p' | head -1)
[ -s "$cache/gdb-index/$id.gdb-index" ] && ok "$arch: the vmlinux's gdb index is in klab's cache ($id)" \
  || fail "$arch: gdb index" "no $cache/gdb-index/$id.gdb-index"

"$KLAB" rootfs --arch "$arch" -o "$work/initrd.cpio.gz" >/dev/null
"$KLAB" boot --arch "$arch" "${test_kernel[@]}" --name src-$arch --initrd "$work/initrd.cpio.gz" --detach >/dev/null 2>&1 \
  || { fail "$arch: boot" "klab boot failed"; finish; }
timeout 300 "$KLAB" gdb src-$arch --batch -ex 'echo @@ line\n' \
  -ex 'python print("decl_line", gdb.lookup_global_symbol("start_kernel").line)' \
  -ex 'echo @@ list\n' -ex 'list start_kernel' -ex 'echo @@ source\n' -ex 'info source' -ex 'echo @@ end\n' -ex 'kill' \
  -- -iex 'set debug index-cache on' \
  >"$work/out" 2>&1
out=$(cat "$work/out")
section() { gdb_section "$work/out" "$1"; }
echo "$out" | grep -q "^\[index-cache\] trying to read $cache/gdb-index/$id.gdb-index" \
  && ! echo "$out" | grep -q "^\[index-cache\] couldn't read\|writing index cache" \
  && ok "$arch: gdb read its index from the cache instead of indexing the DWARF" \
  || fail "$arch: index cache" "$(echo "$out" | grep index-cache | head -4)"
src=$(bash kernels/build.sh --source "$series" 2>/dev/null)
n=$(section line | sed -n 's/^decl_line \([0-9]*\)$/\1/p' | head -1)
file=$(section source | sed -n 's/^Located in //p')
[ "$file" = "$src/init/main.c" ] && ok "$arch: gdb reads start_kernel's source from Debian's linux-source tree ($file)" \
  || fail "$arch: source file" "gdb located it in '${file:-nowhere}', not $src/init/main.c: $(section source | head -3)"
# The DWARF says on which line start_kernel is declared (DW_AT_decl_line); the tree must have it there.
[ -n "$n" ] && sed -n "${n}p" "$src/init/main.c" | grep -q "start_kernel(void)" \
  && ok "$arch: line $n of the tree's init/main.c, where the DWARF declares start_kernel, is its definition" \
  || fail "$arch: line of start_kernel" "line ${n:-?}: $(sed -n "${n:-1}p" "$src/init/main.c")"
section list | grep -q "start_kernel(void)" && ok "$arch: list start_kernel shows its code" \
  || fail "$arch: list" "$(section list | head -3)"

# Another version of the tree: one line saying so, and gdb shows no source at all.
fake=$work/cache
mkdir -p "$fake/kernels" "$fake/src/linux-source-$series/init"
ln -s "$kdir" "$fake/kernels/$kname"
ln -s "$cache/gdb-index" "$fake/gdb-index"
printf 'VERSION = %s\nPATCHLEVEL = %s\nSUBLEVEL = 1\n' "${series%.*}" "${series#*.}" >"$fake/src/linux-source-$series/Makefile"
cp "$src/init/main.c" "$fake/src/linux-source-$series/init/main.c"
"$KLAB" boot --arch "$arch" "${test_kernel[@]}" --name src2-$arch --initrd "$work/initrd.cpio.gz" --detach >/dev/null 2>&1
KLAB_CACHE=$fake timeout 300 "$KLAB" gdb src2-$arch --batch --no-start -ex 'echo @@ list\n' \
  -ex 'list start_kernel' -ex 'echo @@ end\n' -ex 'kill' >"$work/out" 2>&1
out=$(cat "$work/out")
echo "$out" | grep -q "^klab: no source lines: the kernel is .*, but $fake/src/linux-source-$series holds $series.1 " \
  && ok "$arch: a source tree of another version is refused in one line" \
  || fail "$arch: mismatched source" "$(echo "$out" | grep -m2 'klab:')"
section list | grep -q "start_kernel(void)" && fail "$arch: mismatched source" "gdb showed lines from the wrong tree" \
  || ok "$arch: and gdb shows none of its lines"
finish
