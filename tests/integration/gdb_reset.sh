#!/usr/bin/env bash
# klab reset inside gdb: the module loop with one gdb. A VM booted paused with --snapshot and hellodrv.ko
# (--add, --run insmod and cat /dev/myhello) stops gdb at `break hello_open`; the module is edited and rebuilt
# from gdb's shell, `klab reset` restores the VM (a new QEMU: its pid in the run state changes) and attaches
# again, and `continue` stops at hello_open once more: in the rebuilt module, which the guest's own printk
# ("myhello open (edit 2)") shows, at the address the guest's /proc/kallsyms gives, with one hellodrv symbol
# file in gdb and the breakpoint pending between the two. Then the same without a snapshot (a cold boot from
# an image packed again: gdb attached at the first instruction, the module loader's breakpoint in again).
# Bad uses: one line each (a bad argument, a gdb klab did not start, an --add file gone by the reset).
#   tests/integration/gdb_reset.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=${1:-x86_64}
case $arch in x86_64) kernel=debian-amd64 ;; arm64) kernel=debian-arm64 ;; *) echo "usage: gdb_reset.sh x86_64|arm64" >&2; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$KLAB_RUN_DIR" "$work"; fi; }
trap cleanup EXIT
mkdir -m 700 "$work/snaps"
mkdir "$work/src"
cp labs/hellodrv/* "$work/src/"
sed -i 's/myhello open[^,]*,/myhello open (edit 1),/' "$work/src/hellodrv.c"
ko=$(bash kernels/module.sh "$work/src" $kernel "$work/build" 2>"$work/module.err") && [ -f "$ko" ] \
  || { fail "$arch: hellodrv build" "$(tail -2 "$work/module.err")"; finish; }
rebuild="sed -i 's/myhello open[^,]*,/myhello open (edit 2),/' $work/src/hellodrv.c && bash kernels/module.sh $work/src $kernel $work/build >/dev/null"
runs=(--run 'insmod /lib/modules/hellodrv.ko' --run 'echo "KALLSYMS $(grep " hello_open" /proc/kallsyms)"'
      --run 'echo "READ $(cat /dev/myhello)"')
qemu_pid() { sed -n 's/^qemu_pid=//p' "$KLAB_RUN_DIR/$1/state"; }
log() { tr -d '\r' <"$KLAB_RUN_DIR/$1/console.log"; }

# one_loop NAME LABEL HOW [GDB-ARGS...]: gdb's session on VM NAME (booted paused): GDB-ARGS, hit, the rebuild
# and the reset (HOW: "build", klab reset --build; "shell", gdb's shell and then klab reset), hit again.
one_loop() {
  local name=$1 label=$2 how=$3 out=$work/$1.out before after reset
  shift 3
  if [ "$how" = build ]; then reset=(-ex "klab reset --build \"$rebuild\""); else reset=(-ex "shell $rebuild" -ex 'klab reset'); fi
  before=$(qemu_pid "$name")
  KLAB_MODULE_PATH=$work/build timeout 300 "$KLAB" gdb "$name" --no-start --batch "$@" -ex 'break hello_open' -ex continue \
    -ex 'echo @@ first\n' -ex 'info symbol $pc' -ex 'echo @@ ps1\n' -ex 'klab ps' \
    -ex 'echo @@ reset\n' "${reset[@]}" -ex 'info breakpoints' -ex 'echo @@ ps2\n' -ex 'klab ps' -ex continue -ex 'echo @@ second\n' -ex 'p/x $pc' -ex 'info symbol $pc' \
    -ex 'python print("objfiles", sum("hellodrv" in o.filename for o in gdb.objfiles()))' \
    -ex delete -ex detach -ex 'echo @@ end\n' >"$out" 2>&1
  gdb_ran "$arch: $label" $? "$out" "@@ end"
  after=$(qemu_pid "$name")
  section() { gdb_section "$out" "$1"; }
  section first | grep -Eq '^hello_open( \+ [0-9]+)? in section .text of .*hellodrv\.ko' \
    && ok "$arch: $label: the first continue stops in hello_open" || fail "$arch: $label: first stop" "$(section first | head -3)"
  section reset | grep -Eq "^klab: $name (restored from its snapshot|booted again) in [0-9]+ ms(, built meanwhile)?; gdb attached again at pc 0x[0-9a-f]+" \
    && ok "$arch: $label: klab reset in gdb: $(section reset | grep -Eo '(restored from its snapshot|booted again) in [0-9]+ ms')" \
    || fail "$arch: $label: klab reset line" "$(section reset | head -4)"
  [ -n "$before" ] && [ -n "$after" ] && [ "$before" != "$after" ] && ! kill -0 "$before" 2>/dev/null \
    && ok "$arch: $label: a new QEMU (pid $before -> $after), the old one gone" \
    || fail "$arch: $label: new QEMU" "pid ${before:-?} -> ${after:-?}"
  # pending: breakpoint 1 (or each of its locations 1.N) without an address, waiting for hello_open
  section reset | awk '$1 ~ /^1(\.[0-9]+)?$/' | grep -q '<PENDING> *hello_open' \
    && ! section reset | awk '$1 ~ /^1(\.[0-9]+)?$/' | grep -q ' 0x[0-9a-f]' \
    && ok "$arch: $label: the old module's symbols are gone: break hello_open is pending again" \
    || fail "$arch: $label: pending after reset" "$(section reset | grep -A2 '^Num')"
  # A restored VM pauses for gdb with its first CPU in kernel code (QEMU's arm64 stub cannot read the kernel from
  # a stop in user code): gdb's own $pc at the reattach is a kernel address (its top bit set).
  if [ "$label" = snapshot ]; then
    pc=$(section reset | sed -n 's/.*gdb attached again at pc 0x\([0-9a-f]*\).*/\1/p' | head -1)
    [ -n "$pc" ] && [ "${#pc}" -eq 16 ] && [ $((0x${pc:0:1} >= 8)) = 1 ] \
      && ok "$arch: $label: paused for gdb in kernel code (pc 0x$pc)" || fail "$arch: $label: paused in user code" "pc 0x${pc:-?}"
  fi
  # klab's reads after the reset are of the new machine (a cache of the old one's RAM file would still show
  # the cat stopped in hello_open): cat is in the first machine's task list, not in the restarted one's
  if [ "$label" = snapshot ]; then
    section ps1 | grep -Eq ' cat$' && ! section ps2 | grep -Eq ' cat$' && section ps2 | grep -Eq ' sh$' \
      && ok "$arch: $label: klab ps reads the new machine after the reset (cat was in the old one's task list, not in this one's)" \
      || fail "$arch: $label: klab ps after the reset" "before: $(section ps1 | grep -c .) lines, cat $(section ps1 | grep -c ' cat$'); after: $(section ps2 | tail -3)"
  fi
  "$KLAB" wait "$name" --for "READ " --timeout 120 >/dev/null 2>&1 || fail "$arch: $label: guest read /dev/myhello" "no READ line"
  local guest pc
  guest=$(log "$name" | grep -a '^KALLSYMS ' | tail -1 | awk '{ print $2 }')
  pc=$(section second | sed -n 's/^\$[0-9]* = 0x\([0-9a-f]*\)/\1/p')
  section second | grep -Eq '^hello_open( \+ [0-9]+)? in section .text of .*hellodrv\.ko' && [ -n "$guest" ] && [ -n "$pc" ] \
    && [ $((16#$pc - 16#$guest)) -ge 0 ] && [ $((16#$pc - 16#$guest)) -lt 64 ] \
    && ok "$arch: $label: after the reset it stops in hello_open again, at pc $pc (the guest's kallsyms: $guest)" \
    || fail "$arch: $label: second stop" "pc ${pc:-?} kallsyms ${guest:-?}: $(section second | head -3)"
  grep -qx 'objfiles 1' <(section second) && ok "$arch: $label: one hellodrv symbol file in gdb" \
    || fail "$arch: $label: hellodrv objfiles" "$(section second | grep objfiles)"
}

# --- with a snapshot: the rebuilt module goes in ---------------------------------------------------------------
"$KLAB" boot --arch $arch --kernel $kernel --snapshot --snapshot-dir "$work/snaps" --name snap --detach \
  --add "$ko:/lib/modules/" "${runs[@]}" >"$work/boot.out" 2>&1 || { fail "$arch: boot --snapshot" "$(tail -2 "$work/boot.out")"; finish; }
one_loop snap "snapshot" build -ex "klab modules"
# --build: the reset line says so; qemu_fw_cfg (in the snapshot, its symbols placed by klab modules before the
# first continue) keeps them, at the .text the restored machine has
grep -Eq "^klab: snap restored from its snapshot in [0-9]+ ms, built meanwhile; gdb attached again at pc 0x[0-9a-f]+; module symbols kept: (.*, )?qemu_fw_cfg(, .*)?$" <(gdb_section "$work/snap.out" reset) \
  && ok "$arch: snapshot: klab reset --build: built meanwhile; qemu_fw_cfg's symbols kept (the snapshot has it)" \
  || fail "$arch: snapshot: reset --build line" "$(gdb_section "$work/snap.out" reset | head -3)"
log snap | grep -aq 'myhello open (edit 2)' && ! log snap | grep -aq 'myhello open (edit 1)' \
  && ok "$arch: snapshot: the reset machine ran the rebuilt module (the guest printed 'myhello open (edit 2)')" \
  || fail "$arch: snapshot: rebuilt module" "$(log snap | grep -a 'myhello open')"
"$KLAB" stop snap >/dev/null 2>&1

# --- without one: booted again, its image packed again -----------------------------------------------------------
sed -i 's/myhello open[^,]*,/myhello open (edit 1),/' "$work/src/hellodrv.c"
ko=$(bash kernels/module.sh "$work/src" $kernel "$work/build" 2>>"$work/module.err")
"$KLAB" boot --arch $arch --kernel $kernel --name cold --detach --add "$ko:/lib/modules/" "${runs[@]}" \
  >"$work/boot.out" 2>&1 || { fail "$arch: boot" "$(tail -2 "$work/boot.out")"; finish; }
one_loop cold "cold" shell
log cold | grep -aq 'myhello open (edit 2)' && ! log cold | grep -aq 'myhello open (edit 1)' \
  && ok "$arch: cold: booted again from an image packed again (the guest printed 'myhello open (edit 2)')" \
  || fail "$arch: cold: rebuilt module" "$(log cold | grep -a 'myhello open')"

# --- bad uses -------------------------------------------------------------------------------------------------
out=$(timeout 120 "$KLAB" gdb cold --no-start --batch -ex 'klab reset --timeout 0' -ex 'klab reset now' \
  -ex 'echo @@ end\n' 2>&1)
grep -q '^klab reset: --timeout wants seconds (1-86400), not .0.$' <<<"$out" && grep -q "^klab reset: unexpected 'now'" <<<"$out" \
  && ok "$arch: klab reset in gdb: a bad --timeout and a stray word, one line each" || fail "$arch: klab reset bad args" "$out"
out=$(KLAB_STATE= timeout 120 gdb-multiarch -nx -batch -ex "python import sys; sys.path.insert(0, '$PWD/gdb'); import klab" \
  -ex 'klab reset' 2>&1)
grep -q '^klab reset: not started by `klab gdb`' <<<"$out" && ! grep -q Traceback <<<"$out" \
  && ok "$arch: klab reset in a gdb that klab did not start: one line" || fail "$arch: klab reset outside klab gdb" "$out"
# a --build that fails: the VM is back (and gdb attached to it), the failure is the error line
out=$(timeout 300 "$KLAB" gdb cold --no-start --batch -ex 'klab reset --build "echo building; exit 3"' -ex 'echo @@ end\n' 2>&1)
grep -q "^klab: reset: --build 'echo building; exit 3' failed (exit 3): 'cold' is back with its files as they are$" <<<"$out" \
  && grep -q '^building$' <<<"$out" && grep -q '; gdb attached again at pc 0x' <<<"$out" && ! grep -q Traceback <<<"$out" \
  && ok "$arch: klab reset --build that fails in gdb: its output, one error line, the VM back and attached" \
  || fail "$arch: klab reset --build failing in gdb" "$out"
expect_error "$arch: klab reset --build that fails, from the shell" "^klab: reset: --build 'exit 4' failed \(exit 4\)" \
  "$KLAB" reset cold --build 'exit 4'
expect_error "$arch: klab reset --build ''" "^klab: --build wants a command$" "$KLAB" reset cold --build ''
# an --add file gone by the reset: the VM does not come back with something else, and klab reset says why
mv "$ko" "$ko.away"
expect_error "$arch: klab reset of a VM whose --add file is gone" \
  "^klab: VM 'cold' did not start again: reset: --add $ko: No such file or directory$" "$KLAB" reset cold
mv "$ko.away" "$ko"
finish
