#!/usr/bin/env bash
# The Debian package (make deb), installed on this machine and used with the clone out of sight; make install
# and make uninstall into a scratch DESTDIR; the man pages against --help; bash completion.
# Oracles: lintian for the package, dpkg's own file list and the file system before and after, QEMU's
# gva2gpa for the installed klab's vtop, gdb's start_kernel stop for its gdb, the running VMs' names.
. "$(dirname "$0")/../lib.sh"
clone=$PWD
work=$(mktemp -d /var/tmp/klab-package-XXXXXX)
chmod 0755 "$work"
installed=
cleanup() {
  [ -n "$installed" ] && dpkg -r klab >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
  skip "the Debian package" "installing a package needs root"
  finish
fi
if dpkg-query -W -f='${Status}' klab 2>/dev/null | grep -q 'ok installed'; then
  skip "the Debian package" "a klab package is installed on this machine already; this test installs and removes its own"
  finish
fi

# --- make install / uninstall into a scratch prefix ----------------------------------------------------------
dest=$work/destdir
if make --no-print-directory install PREFIX=/opt/klab DESTDIR="$dest" >"$work/install.log" 2>&1; then
  ok "make install PREFIX=/opt/klab DESTDIR=…"
else
  fail "make install" "$(tail -3 "$work/install.log")"
fi
for f in bin/klab lib/libklab.so.0 lib/libklab.so lib/libklab.a include/klab.h lib/pkgconfig/klab.pc \
         share/klab/gdb/klab/__init__.py share/klab/kernels/module.sh share/klab/kernels/probe-cache.mk \
         share/klab/scripts/crash-build.sh share/klab/scripts/crash-patches/x86_64-unnamed-ist-stack.patch share/man/man1/klab-vtop.1 \
         share/bash-completion/completions/klab; do
  [ -e "$dest/opt/klab/$f" ] || missing="${missing:-} $f"
done
[ -z "${missing:-}" ] && ok "it installs klab, libklab (.so.0, .a, klab.h, klab.pc), share/klab, man pages, completion" \
  || fail "make install's files" "missing:$missing"
soname=$(readelf -d "$dest/opt/klab/lib/libklab.so.0" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libklab.so.0 ] && ok "libklab.so carries its soname (libklab.so.0)" || fail "libklab's soname" "'$soname'"
# The staged klab finds its files under its own (moved) prefix, not in the clone it was built from.
v=$("$dest/opt/klab/bin/klab" --version 2>&1)
[ "$v" = "klab $(sed -n 's/^KLAB_VERSION := //p' Makefile) (files in $dest/opt/klab/share/klab)" ] \
  && ok "a staged install finds its files under its own prefix: $v" || fail "the staged install's files" "$v"
make --no-print-directory uninstall PREFIX=/opt/klab DESTDIR="$dest" >"$work/uninstall.log" 2>&1
left=$(find "$dest" ! -type d)
[ -z "$left" ] && ok "make uninstall removes every file make install put there" || fail "make uninstall" "left: $left"

# --- the package ---------------------------------------------------------------------------------------------
if make --no-print-directory deb >"$work/deb.log" 2>&1; then
  deb=$(tail -1 "$work/deb.log")
  ok "make deb: ${deb##*/}"
else
  fail "make deb" "$(tail -3 "$work/deb.log")"
  finish
fi
lintian "$deb" >"$work/lintian.txt" 2>&1
errors=$(grep -c '^E: ' "$work/lintian.txt")
warnings=$(grep '^W: ' "$work/lintian.txt" | awk '{print $3}' | sort -u | tr '\n' ' ')
[ "$errors" -eq 0 ] && ok "lintian: no errors (warnings: ${warnings:-none})" \
  || fail "lintian" "$(grep '^E: ' "$work/lintian.txt" | head -5)"
depends=$(dpkg-deb -f "$deb" Depends)
for d in qemu-system-x86 qemu-system-arm gdb-multiarch libvirt0 zlib1g crash binutils; do
  [[ ", $depends," == *", $d"[\ ,]* ]] || nodep="${nodep:-} $d"
done
[ -z "${nodep:-}" ] && ok "Depends: names what klab runs (qemu, gdb-multiarch, libvirt0, zlib1g, crash, binutils)" \
  || fail "the package's Depends" "missing:$nodep in $depends"

# The file system before, to compare with after dpkg -r.
snapshot() { find /usr /etc -xdev \( -type f -o -type l \) 2>/dev/null | grep -v '^/etc/ld.so.cache$' | sort; }
snapshot >"$work/before"
if dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get -f install -y -q >>"$work/dpkg.log" 2>&1; then
  installed=1
fi
dpkg-query -W -f='${Status}' klab 2>/dev/null | grep -q 'ok installed' && ok "dpkg -i installs it" \
  || { fail "dpkg -i" "$(tail -3 "$work/dpkg.log")"; finish; }
dpkg -L klab | sort >"$work/files"
grep -qF "$clone" /usr/bin/klab && fail "the installed klab" "its binary names the clone $clone" \
  || ok "the installed klab's binary does not name the clone it was built in"
[ "$(pkg-config --modversion klab 2>/dev/null)" = "$(sed -n 's/^KLAB_VERSION := //p' Makefile)" ] \
  && ok "pkg-config knows klab $(pkg-config --modversion klab)" || fail "pkg-config klab" "$(pkg-config --modversion klab 2>&1)"
# A program of someone else's against the installed libklab: it decodes an x86_64 PTE (SDM vol. 3A, 4.5:
# bits 51:12 are the page frame, so 0x8000000012345063 maps PA 0x12345000).
cat >"$work/use.c" <<'C'
#include <klab.h>
#include <stdio.h>
int main(void)
{
    struct klab_level lv;
    struct klab_error err;
    if (klab_decode_entry(KLAB_ARCH_X86_64, 12, 1, 0x8000000012345063ull, &lv, &err) != 0) { puts(err.msg); return 1; }
    printf("%d %#llx\n", lv.kind == KLAB_ENTRY_PAGE, (unsigned long long)lv.out_pa);
    return 0;
}
C
if cc -o "$work/use" "$work/use.c" $(pkg-config --cflags --libs klab) 2>"$work/cc.log" && out=$("$work/use" 2>&1); then
  ldd "$work/use" | grep -qE 'libklab.so.0 => (/usr)?/lib/' && [ "$out" = "1 0x12345000" ] \
    && ok "a program built with pkg-config links the installed libklab.so.0 and decodes a PTE (page at 0x12345000)" \
    || fail "the program against libklab" "'$out'; $(ldd "$work/use" | grep klab)"
else
  fail "building against the installed libklab" "$(head -3 "$work/cc.log") $out"
fi

# --- the installed klab with the clone out of sight ----------------------------------------------------------
# A private mount namespace with an empty tmpfs over the clone: to the installed klab the clone is gone.
cat >"$work/hidden.sh" <<'SH'
set -u
clone=$1 work=$2
mount -t tmpfs -o size=1M,mode=0700 klab-hidden "$clone" || { echo "not ok - hide the clone: mount failed"; exit 0; }
cd "$work" || exit 1
[ -z "$(ls -A "$clone")" ] && echo "ok - the clone is out of sight (an empty tmpfs over $clone)"
export KLAB_RUN_DIR=$work/run
mkdir -m 0700 "$KLAB_RUN_DIR"
v=$(klab --version)
[[ $v == "klab "*"(files in /usr/share/klab)" ]] && echo "ok - klab --version: $v" || echo "not ok - klab --version: $v"
# klab fetch runs the installed kernels/ and rootfs/ scripts: the cache's kernel is found and kept.
f=$(klab fetch --arch x86_64 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q 'already in' <<<"$f" && echo "ok - klab fetch --arch x86_64 runs the installed fetchers (kernel already in the cache)" \
  || echo "not ok - installed klab fetch (status $rc): $(tail -2 <<<"$f" | tr '\n' ' ')"
if klab boot --arch x86_64 --detach --name pkg >boot.log 2>&1; then
  echo "ok - the installed klab boots x86_64, detached"
else
  echo "not ok - installed klab boot: $(tail -2 boot.log)"; exit 0
fi
out=$(timeout 300 klab gdb pkg --batch -ex 'klab current' 2>&1)
grep -q 'start_kernel' <<<"$out" && grep -qiE 'pid|swapper|comm' <<<"$out" \
  && echo "ok - klab gdb stops at start_kernel and runs klab current (the installed package and libklab)" \
  || echo "not ok - installed klab gdb: $(tail -3 <<<"$out" | tr '\n' ' ')"
vt=$(klab vtop --vm pkg --qemu start_kernel 2>&1); rc=$?
[ $rc -eq 0 ] && grep -qi 'agree' <<<"$vt" && echo "ok - klab vtop start_kernel agrees with QEMU's gva2gpa" \
  || echo "not ok - installed klab vtop (status $rc): $(tail -3 <<<"$vt" | tr '\n' ' ')"
# Completion, from the installed file, in a bash of its own.
comp() { bash -c '. /usr/share/bash-completion/completions/klab; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _klab; printf "%s\n" "${COMPREPLY[@]}"' _ "$@"; }
[ "$(comp klab b)" = boot ] && echo "ok - completion: klab b<TAB> → boot" || echo "not ok - completion of 'klab b': $(comp klab b | tr '\n' ' ')"
[ "$(comp klab boot --ar)" = --arch ] && echo "ok - completion: klab boot --ar<TAB> → --arch" \
  || echo "not ok - completion of 'klab boot --ar': $(comp klab boot --ar | tr '\n' ' ')"
names=$(klab status | awk 'NR > 1 && $1 != "" { print $1 }' | grep -v '^ended' | sort | tr '\n' ' ')
got=$(comp klab stop '' | sort | tr '\n' ' ')
[ -n "$names" ] && [ "$got" = "$names" ] && echo "ok - completion: klab stop <TAB> → the running VMs ($got)" \
  || echo "not ok - completion of 'klab stop ': '$got', klab status lists '$names'"
[ "$(comp klab boot --arch '')" = "$(printf 'x86_64\narm64')" ] && echo "ok - completion: klab boot --arch <TAB> → x86_64 arm64" \
  || echo "not ok - completion of --arch: $(comp klab boot --arch '' | tr '\n' ' ')"
kernels=$(cd "$KLAB_CACHE/kernels" && for k in *; do [ -e "$k/vmlinuz" ] && echo "$k"; done | sort | tr '\n' ' ')
got=$(comp klab boot --kernel '' | sort | tr '\n' ' ')
lacks=$(for k in $kernels; do [[ " $got " == *" $k "* ]] || echo "$k"; done)
[ -n "$kernels" ] && [ -z "$lacks" ] \
  && echo "ok - completion: klab boot --kernel <TAB> → the cache's registered kernels ($kernels)" \
  || echo "not ok - completion of --kernel: '$got', the cache has '$kernels'"
klab stop pkg >/dev/null 2>&1 && echo "ok - klab stop" || echo "not ok - klab stop pkg"
SH
unshare --mount --propagation private bash "$work/hidden.sh" "$clone" "$work" >"$work/hidden.out" 2>&1
relay "$work/hidden.out"
grep -q 'ok - klab stop' "$work/hidden.out" || sed 's/^/    /' "$work/hidden.out" | tail -5

# --- man pages: klab-CMD(1) lists the options `klab CMD --help` does -------------------------------------------
opts_of() { grep -oE '(^|[ ,])--?[a-z][a-z0-9-]+' | sed 's/^[ ,]*//' | sort -u; }
bad=
for c in $(klab __man --list); do
  help=$(klab "$c" --help 2>&1 | sed -n '/^  -/p' | opts_of)
  man=$(LC_ALL=C MANWIDTH=200 man -P cat "klab-$c" 2>/dev/null | col -b | sed -n '/^OPTIONS/,/^[A-Z]/p' | grep -E '^ {7}-' | opts_of)
  [ -n "$help" ] && [ "$help" = "$man" ] || bad="$bad $c"
done
[ -z "$bad" ] && ok "man klab-CMD shows the same options as klab CMD --help, for all $(klab __man --list | wc -l) commands" \
  || fail "man pages against --help" "differ for:$bad"
LC_ALL=C man -P cat klab 2>/dev/null | col -b | grep -q 'klab-vtop(1)' && ok "man klab lists the commands' pages" \
  || fail "man klab" "no klab-vtop(1) in it"

# --- dpkg -r: nothing of the package is left ------------------------------------------------------------------
dpkg -r klab >"$work/remove.log" 2>&1 && installed=
left=$(while read -r f; do [ -f "$f" ] || [ -L "$f" ] && echo "$f"; done <"$work/files")
snapshot >"$work/after"
[ -z "$installed" ] && [ -z "$left" ] && ok "dpkg -r removes the package's $(wc -l <"$work/files") paths" \
  || fail "dpkg -r" "left: $(echo "$left" | head -3) $(tail -2 "$work/remove.log")"
d=$(diff "$work/before" "$work/after")
[ -z "$d" ] && ok "/usr and /etc after dpkg -r hold the same files as before dpkg -i" || fail "files after dpkg -r" "$(echo "$d" | head -5)"
finish
