#!/usr/bin/env bash
# kernels/module.sh answers Kbuild's compiler probes from its cache (kernels/probe-cache.mk) and must build
# exactly what Kbuild builds without it: every command Kbuild records for the module (its .*.cmd files: the
# compiler's flags are the probes' answers) equals the one an uncached build records, and the .ko's sections
# are the same. The cache is refused when it is a link, another's or loosely-moded file, or from another
# toolchain, and a probe whose answer is cached is not run again.
#   tests/integration/module_build.sh KERNEL   (debian-amd64, debian-arm64, or a source profile)
. "$(dirname "$0")/../lib.sh"
kernel=${1:-debian-amd64}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp -r labs/hellodrv "$work/src"
build() { bash kernels/module.sh "$work/src" "$kernel" "$work/$1" >"$work/$1.out" 2>&1; }
KLAB_PROBE_CACHE=0 build plain || { fail "uncached build" "$(tail -3 "$work/plain.out")"; finish; }
build cache || { fail "first cached build" "$(tail -3 "$work/cache.out")"; finish; }
db=$work/cache/.probes   # out folders of one name length: the .ko's debug strings hold the path
first=$(wc -l <"$db")
[ "$first" -gt 5 ] && [ "$(head -c 12 "$db")" = "# toolchain " ] \
  && ok "the first build recorded $((first - 1)) probe answers under the toolchain's stamp" \
  || fail "probe cache recorded" "$first lines: $(head -c 200 "$db")"
[ "$(stat -c %a "$db")" = 600 ] && ok "the cache is the builder's own file, mode 600" || fail "cache mode" "$(stat -c %a "$db")"

# The one-line edit of the module loop, built again: every answer from the cache, no probe run or added.
sed -i 's/myhello open[^,]*,/myhello open (edited),/' "$work/src/hellodrv.c"
# Every program the build runs, argv in full: a probe is the compiler, assembler or linker run on /dev/null
# or writing try-run's "$TMP" (.tmp_PID/tmp); the module's own compile is neither. The uncached rebuild's
# trace must show probes, or the count below proves nothing.
traced() { strace -f -qq -v -s 8192 -e trace=execve -e signal=none -o "$work/$1.exec" "${@:2}" >"$work/$1.out" 2>&1; }
probe_runs() { grep -cE 'execve\("[^"]*(gcc|as|ld)(-[0-9]+)?", .*("/dev/null"|\.tmp_[0-9]+/tmp")' "$work/$1.exec"; }
if command -v strace >/dev/null; then
  KLAB_PROBE_CACHE=0 traced plain bash kernels/module.sh "$work/src" "$kernel" "$work/plain" || fail "uncached rebuild" "$(tail -3 "$work/plain.out")"
  traced cache bash kernels/module.sh "$work/src" "$kernel" "$work/cache" || fail "cached rebuild" "$(tail -3 "$work/cache.out")"
  uncached=$(probe_runs plain) cached=$(probe_runs cache)
  [ "$uncached" -gt 5 ] && [ "$cached" -eq 0 ] \
    && ok "the rebuild ran no compiler probe (strace: $uncached probe runs uncached, $cached cached)" \
    || fail "probes ran again" "$cached probe runs cached, $uncached uncached"
  grep -qE 'execve\("[^"]*gcc(-[0-9]+)?", .*"-c".*hellodrv\.c"' "$work/cache.exec" && ok "the rebuild compiled hellodrv.c" \
    || fail "rebuild compiled" "no gcc run on hellodrv.c in the trace"
else
  KLAB_PROBE_CACHE=0 build plain || fail "uncached rebuild" "$(tail -3 "$work/plain.out")"
  build cache || fail "cached rebuild" "$(tail -3 "$work/cache.out")"
  skip "rebuild runs no probe" "no strace"; skip "rebuild compiled" "no strace"
fi
[ "$(wc -l <"$db")" -eq "$first" ] && ok "the rebuild added nothing to the cache" || fail "cache grew" "$(wc -l <"$db") lines, was $first"
grep -q 'myhello open (edited)' "$work/cache/hellodrv.ko" && ok "the rebuilt .ko has the edit" || fail "edit in .ko" "not found"

# Kbuild's own record of every command, cached against uncached: the same flags, the same steps.
same=1 n=0
for f in "$work"/plain/.*.cmd; do
  b=${f##*/}; n=$((n + 1))
  [ -f "$work/cache/$b" ] && cmp -s <(sed "s|$work/plain|OUT|g" "$f") <(sed "s|$work/cache|OUT|g" "$work/cache/$b") \
    || { same=; fail "Kbuild's $b" "$(diff <(sed "s|$work/plain|OUT|g" "$f") <(sed "s|$work/cache|OUT|g" "$work/cache/$b") 2>&1 | head -4)"; }
done
[ -n "$same" ] && [ "$n" -ge 3 ] && ok "all $n commands Kbuild recorded (.*.cmd) are the uncached build's" \
  || [ -z "$same" ] || fail "Kbuild's commands" "only $n .cmd files"
sections() { readelf -SW "$1" | awk '/^ *\[ *[0-9]+\]/ { sub(/^ *\[ *[0-9]+\] */, ""); print $1, $2, $5 }'; }
[ "$(sections "$work/plain/hellodrv.ko")" = "$(sections "$work/cache/hellodrv.ko")" ] \
  && ok "the .ko's sections (name, type, size) are the uncached build's" \
  || fail "the .ko's sections" "$(diff <(sections "$work/plain/hellodrv.ko") <(sections "$work/cache/hellodrv.ko") | head -4)"

# A cache that is not the builder's own file is not believed: it is made again, and what it pointed at is untouched.
echo "decoy" >"$work/decoy"
rm -f "$db"; ln -s "$work/decoy" "$db"
touch "$work/src/hellodrv.c"
build cache || fail "build with a linked cache" "$(tail -3 "$work/cache.out")"
[ ! -L "$db" ] && [ "$(cat "$work/decoy")" = decoy ] && [ "$(wc -l <"$db")" -eq "$first" ] \
  && ok "a symlinked cache is replaced by a file of its own, its target untouched" \
  || fail "symlinked cache" "$(ls -l "$db") decoy: $(head -c 40 "$work/decoy")"
chmod 666 "$db"; sed -i '2{s/ := ok$/ := NO/;s/ := no$/ := ok/;s/ := NO$/ := no/}' "$db"; lie=$(sed -n 2p "$db" | awk '{ print $NF }')
build cache || fail "build with a group-writable cache" "$(tail -3 "$work/cache.out")"
[ "$(stat -c %a "$db")" = 600 ] && [ "$(sed -n 2p "$db" | awk '{ print $NF }')" != "$lie" ] \
  && ok "a cache others can write is not read: made again, mode 600" || fail "loose cache" "$(stat -c %a "$db") line 2: $(sed -n 2p "$db" | head -c 60)"
sed -i '1s/.*/# toolchain \/usr\/bin\/gcc:1:1 /' "$db"
build cache || fail "build with another toolchain's cache" "$(tail -3 "$work/cache.out")"
[ "$(head -c 12 "$db")" = "# toolchain " ] && [ "$(head -n1 "$db")" != "# toolchain /usr/bin/gcc:1:1 " ] \
  && [ "$(wc -l <"$db")" -eq "$first" ] && ok "another toolchain's cache is dropped and made again" \
  || fail "stale toolchain" "$(head -c 100 "$db")"
finish
