#!/usr/bin/env bash
# klab rootfs output, read back by independent readers (GNU cpio, bsdtar, gzip), and its reproducibility.
. "$(dirname "$0")/../lib.sh"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bb=$KLAB_CACHE/busybox/amd64/busybox
export KLAB_CACHE=$work/cache     # a scratch segment cache: the test's random files stay out of the user's

mkdir -p "$work/overlay/etc/klab.d" "$work/overlay/srv/deep/er"
echo 'echo hook ran' > "$work/overlay/etc/klab.d/10-hello.sh"
printf 'overlay\n' > "$work/overlay/srv/deep/er/file.txt"
chmod 0640 "$work/overlay/srv/deep/er/file.txt"
ln -s deep/er/file.txt "$work/overlay/srv/link"
printf 'from --add\n' > "$work/added.txt"
head -c 300000 /dev/urandom > "$work/big.bin"          # gets a deflate segment of its own
printf 'replaced by --add\n' > "$work/replace.txt"

build() { "$KLAB" rootfs --busybox "$bb" --overlay "$work/overlay" --add "$work/added.txt:/opt/added.txt" \
            --add "$work/big.bin:lib/modules/big.ko" --add "$work/replace.txt:/srv/deep/er/file.txt" \
            --add "$work/added.txt:/usr/share/into/" "$@"; }

check "rootfs builds uncompressed" build --compress none -o "$work/plain.cpio"
check "rootfs builds gzip" build -o "$work/a.cpio.gz"

# GNU cpio lists every entry with the right type, mode and owner.
listing=$(cpio -tv --quiet < "$work/plain.cpio")
line_of() { printf '%s\n' "$listing" | awk -v p="$1" 'NF >= 3 && ($NF==p || $(NF-2)==p)'; }
[[ "$(line_of init)" == -rwxr-xr-x*root*root* ]] && ok "cpio: /init is an executable file" || fail "cpio: /init" "$(line_of init)"
[[ "$(line_of dev/console)" == crw-------*5,*1* ]] && ok "cpio: /dev/console is char 5:1" || fail "cpio: console" "$(line_of dev/console)"
[[ "$(line_of dev/null)" == crw-rw-rw-*1,*3* ]] && ok "cpio: /dev/null is char 1:3" || fail "cpio: null" "$(line_of dev/null)"
[[ "$(line_of srv/link)" == l*"srv/link -> deep/er/file.txt" ]] && ok "cpio: overlay symlink kept" || fail "cpio: link" "$(line_of srv/link)"
[[ "$(line_of bin/sh)" == l*"bin/sh -> busybox" ]] && ok "cpio: /bin/sh -> busybox" || fail "cpio: sh" "$(line_of bin/sh)"
missing_dirs=""
for d in srv srv/deep srv/deep/er opt lib/modules; do
  [[ "$(line_of $d)" == d* ]] || missing_dirs="$missing_dirs $d"
done
[ -z "$missing_dirs" ] && ok "cpio: every parent folder is an entry" || fail "cpio: parent folders" "missing:$missing_dirs"
names=$(cpio -t --quiet < "$work/plain.cpio")
[ "$(printf '%s\n' "$names" | grep -c .)" -ge 25 ] && ok "cpio: archive has all entries" || fail "cpio: entry count" "$names"
[ -n "$names" ] && [ "$names" = "$(printf '%s\n' "$names" | LC_ALL=C sort)" ] && ok "cpio: entries sorted by path" || fail "cpio: sorted" "not sorted"
[ -n "$names" ] && [ "$(printf '%s\n' "$names" | sort | uniq -d)" = "" ] && ok "cpio: no duplicate paths" || fail "cpio: dupes" "duplicates or empty"

# Extract with cpio and compare bytes with the sources.
mkdir "$work/x" && (cd "$work/x" && cpio -id --quiet --no-absolute-filenames < "$work/plain.cpio" 2>/dev/null)
cmp -s "$work/x/bin/busybox" "$bb" && ok "cpio: busybox extracted byte-identical" || fail "cpio: busybox" "differs"
cmp -s "$work/x/lib/modules/big.ko" "$work/big.bin" && ok "cpio: large --add file byte-identical" || fail "cpio: big" "differs"
cmp -s "$work/x/srv/deep/er/file.txt" "$work/replace.txt" && ok "cpio: --add overrides the overlay" || fail "cpio: override" "$(cat "$work/x/srv/deep/er/file.txt")"
cmp -s "$work/x/opt/added.txt" "$work/added.txt" && ok "cpio: --add file in place" || fail "cpio: add" "missing"
[ -d "$work/x/usr/share/into" ] && cmp -s "$work/x/usr/share/into/added.txt" "$work/added.txt" \
  && ok "cpio: --add SRC:DIR/ puts SRC into that folder under its own name" || fail "cpio: add into a folder" "$(ls -la "$work/x/usr/share/into" 2>&1)"
grep -q 'klab: init ready' "$work/x/init" && ok "cpio: klab /init inside" || fail "cpio: init" "no banner"

# The gzip image is one standard gzip member holding the same archive.
gzip -t "$work/a.cpio.gz" && ok "gzip: integrity test passes" || fail "gzip -t" "corrupt"
gzip -dc "$work/a.cpio.gz" | cmp -s - "$work/plain.cpio" && ok "gzip: decompresses to the uncompressed image" || fail "gzip: same content" "differs"
bsdtar -tf "$work/a.cpio.gz" > "$work/bsdtar.txt" 2>/dev/null && diff -q <(printf '%s\n' "$names") "$work/bsdtar.txt" >/dev/null \
  && ok "bsdtar: reads the same entries" || fail "bsdtar" "$(head -3 "$work/bsdtar.txt")"

# Reproducible: same inputs, same bytes, whether segments came from the cache or not.
check "rootfs rebuild (warm cache)" build -o "$work/b.cpio.gz"
check "rootfs build without cache" build --no-cache -o "$work/c.cpio.gz"
cmp -s "$work/a.cpio.gz" "$work/b.cpio.gz" && ok "reproducible: rebuild is byte-identical" || fail "reproducible" "a != b"
cmp -s "$work/a.cpio.gz" "$work/c.cpio.gz" && ok "reproducible: cached segments equal fresh ones" || fail "reproducible: cache" "a != c"
touch "$work/big.bin" "$work/overlay/srv/deep/er/file.txt"
build -o "$work/d.cpio.gz" >/dev/null 2>&1
cmp -s "$work/a.cpio.gz" "$work/d.cpio.gz" && ok "reproducible: host mtimes do not leak in" || fail "reproducible: mtime" "a != d"
stats=$(build -o "$work/e.cpio.gz" --stats 2>&1)
[[ "$stats" == *"2 hit(s) 0 miss(es)"* ]] && ok "cache: busybox and the large file reused" || fail "cache stats" "$stats"
echo 'changed' >> "$work/big.bin"
build -o "$work/f.cpio.gz" >/dev/null 2>&1
gzip -dc "$work/f.cpio.gz" | (mkdir "$work/y" && cd "$work/y" && cpio -id --quiet 2>/dev/null)
cmp -s "$work/y/lib/modules/big.ko" "$work/big.bin" && ok "cache: a changed file is recompressed, not reused" || fail "cache: stale" "old content"

# Bad input: one line, non-zero.
expect_error "rootfs: missing busybox" "busybox .* not found" "$KLAB" rootfs --busybox "$work/nope" -o "$work/z.cpio"
expect_error "rootfs: missing --add source" "cannot add .*nope" "$KLAB" rootfs --busybox "$bb" --add "$work/nope:/x" -o "$work/z.cpio"
expect_error "rootfs: malformed --add" "SRC:DEST" "$KLAB" rootfs --busybox "$bb" --add "nodest" -o "$work/z.cpio"
expect_error "rootfs: unwritable output" "cannot create" "$KLAB" rootfs --busybox "$bb" -o /nonexistent/dir/x.cpio
[ ! -e "$work/z.cpio" ] && ok "rootfs: no partial output on failure" || fail "rootfs: partial" "z.cpio left"
finish
