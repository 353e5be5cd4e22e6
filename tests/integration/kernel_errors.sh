#!/usr/bin/env bash
# Source kernels and modules given bad input: one clear line and a non-zero exit, never a wall of make output.
. "$(dirname "$0")/../lib.sh"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
expect_error "unknown profile" "unknown profile 'arm64-2k'" bash kernels/build.sh arm64-2k
# A PATH with the build tools but no cross compiler.
mkdir -p "$work/bin"
for t in dirname basename flex bison bc sha256sum cut cat grep sed; do ln -s "$(command -v $t)" "$work/bin/$t"; done
expect_error "missing cross compiler" "cross compiler aarch64-linux-gnu-gcc not found.*gcc-aarch64-linux-gnu" \
  env PATH="$work/bin" "$(command -v bash)" kernels/build.sh arm64-64k
expect_error "KSRC that is not a kernel tree" "KSRC=$work is not a kernel source tree" env KSRC="$work" bash kernels/build.sh x86_64
# A fragment line kconfig drops: the build stops and names it (in a scratch cache, on the unpacked source).
# The test prepares the source it needs (installed and unpacked once, shared with the source builds).
src=$(bash kernels/build.sh --source 2>/dev/null)
if [ -n "$src" ] && [ -f "$src/Makefile" ]; then
  printf 'CONFIG_NOSUCH_OPTION_KLAB=y\n' >"$work/bad.config"
  expect_error "a fragment line that did not stick is refused, by name" \
    "did not survive into .config: CONFIG_NOSUCH_OPTION_KLAB=y" \
    env KLAB_CACHE="$work/cache" KSRC="$src" KLAB_EXTRA_CONFIG="$work/bad.config" bash kernels/build.sh arm64-64k
else
  fail "fragment check" "kernels/build.sh --source gave no unpacked source ($src)"
fi
# A module that does not compile: the first error and the log, not the compiler's wall. (Debian's headers
# installed first: their one-time install line is progress, not part of this answer.)
bash kernels/module.sh --prepare debian-amd64 >/dev/null 2>&1
mkdir -p "$work/broken"
printf '#include <linux/module.h>\nint broken(void) { return undeclared_thing; }\nMODULE_LICENSE("GPL");\n' >"$work/broken/broken.c"
echo 'obj-m += broken.o' >"$work/broken/Kbuild"
expect_error "a module that does not compile" "building broken for debian-amd64 failed: .*undeclared_thing.*full log: .*build.log" \
  bash kernels/module.sh "$work/broken" debian-amd64 "$work/broken-out"
# A source kernel whose build folder outlived its source tree (a cache copied from elsewhere): named, with the
# way out, instead of make's "No rule to make target".
mkdir -p "$work/cache/kernels/gone/build"
printf 'release=6.1.0\nprofile=x86_64\nsource=%s\nidentity=0\narch=x86_64\n' "$work/no-tree" \
  >"$work/cache/kernels/gone/VERSION"
ln -s "$work/no-tree" "$work/cache/kernels/gone/build/source"
printf 'include %s/Makefile\n' "$work/no-tree" >"$work/cache/kernels/gone/build/Makefile"
expect_error "a module for a source kernel whose tree is gone" \
  "kernel gone was built from $work/no-tree that is gone: build it again \\(make kernel PROFILE=gone\\)" \
  env KLAB_CACHE="$work/cache" bash kernels/module.sh labs/hellodrv gone "$work/gone-out"
expect_error "module for an unknown kernel" "unknown kernel 'nosuch'" bash kernels/module.sh labs/hellodrv nosuch "$work/x"
expect_error "klab boot --kernel with no such kernel" "kernel 'nosuch' is neither a file nor a registered kernel" \
  "$KLAB" boot --kernel nosuch --dry-run
expect_error "klab boot --add with --initrd" "--add and --run go into klab's fresh image" \
  "$KLAB" boot --arch x86_64 --initrd /dev/null --add a:/b --dry-run
expect_error "klab boot --add without DEST" "--add wants SRC:DEST" "$KLAB" boot --arch x86_64 --add nodest --dry-run
finish
