#!/usr/bin/env bash
# Bad input gets one clear line on stderr and a non-zero exit; a guest panic is reported.
. "$(dirname "$0")/../lib.sh"
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
x86=$KLAB_CACHE/kernels/debian-amd64 arm=$KLAB_CACHE/kernels/debian-arm64
"$KLAB" rootfs --arch x86_64 -o "$work/x86.cpio.gz" >/dev/null

expect_error "missing kernel" "kernel image /nonexistent/bzImage not found" \
  "$KLAB" boot --arch x86_64 --kernel /nonexistent/bzImage --dry-run
expect_error "arm64 image with --arch x86_64" "is an arm64 kernel, but --arch x86_64 was asked" \
  "$KLAB" boot --arch x86_64 --kernel "$arm/vmlinuz" --dry-run
expect_error "x86_64 image with --arch arm64" "is an x86_64 kernel, but --arch arm64 was asked" \
  "$KLAB" boot --arch arm64 --kernel "$x86/vmlinuz" --dry-run
expect_error "vmlinux of the other arch" "the image is arm64 but vmlinux is x86_64" \
  "$KLAB" boot --kernel "$arm/vmlinuz" --vmlinux "$x86/vmlinux" --dry-run
expect_error "vmlinux passed as the image" "ELF file .*--vmlinux" \
  "$KLAB" boot --arch x86_64 --kernel "$x86/vmlinux" --dry-run
head -c 65536 /dev/urandom > "$work/garbage"
expect_error "garbage kernel image" "not a kernel image klab knows" "$KLAB" boot --kernel "$work/garbage" --dry-run

# A vmlinux of the right arch from another build: same release, different build number (#2).
release=$(sed -n 's/^release=//p' "$x86/VERSION")
version=$("$KLAB" inspect --kernel "$x86/vmlinuz" | sed -n 's/^version: //p')
other_version=$(printf '%s' "$version" | sed 's/^#[0-9]*/#2/')
printf 'const char linux_banner[] = "Linux version %s (x@y) (gcc) %s\\n";\nvoid _start(void){}\n' \
  "$release" "$other_version" > "$work/banner.c"
gcc -nostdlib -static -o "$work/vmlinux-other" "$work/banner.c"
expect_error "vmlinux from another build" "vmlinux does not match the image: .*#1 .*#2" \
  "$KLAB" boot --kernel "$x86/vmlinuz" --vmlinux "$work/vmlinux-other" --dry-run
expect_error "klab inspect refuses the pair too" "does not match" \
  "$KLAB" inspect --kernel "$x86/vmlinuz" --vmlinux "$work/vmlinux-other"

expect_error "QEMU missing" "qemu-system-x86_64 not found: run scripts/deps.sh" \
  env PATH=/nonexistent "$KLAB" boot --arch x86_64 --initrd "$work/x86.cpio.gz" --dry-run
expect_error "unknown arch" "unknown architecture 'sparc'" "$KLAB" boot --arch sparc
expect_error "bad --smp" "--smp wants" "$KLAB" boot --arch x86_64 --smp 0
expect_error "bad --mem" "--mem wants" "$KLAB" boot --arch x86_64 --mem 12Q
expect_error "bad --accel" "--accel must be kvm or tcg" "$KLAB" boot --arch x86_64 --accel hvf
expect_error "unknown option" "unknown or incomplete option '--frobnicate'" "$KLAB" boot --frobnicate
expect_error "missing initrd" "initrd /nonexistent.cpio not found" "$KLAB" boot --arch x86_64 --initrd /nonexistent.cpio
expect_error "gdb with no VM" "no VM is running" "$KLAB" gdb
expect_error "stop an unknown VM" "no running VM named 'ghost'" "$KLAB" stop ghost
expect_error "unknown command" "unknown command 'frob'" "$KLAB" frob
# --swap: a size, klab's own image, the QEMU backend, and a kernel that can swap to virtio-blk (its config).
expect_error "bad --swap" "--swap wants a size from 16M" "$KLAB" boot --arch x86_64 --swap 1M --dry-run
expect_error "--swap with --initrd" "--swap puts its modules" \
  "$KLAB" boot --arch x86_64 --swap 64M --initrd "$work/x86.cpio.gz" --dry-run
expect_error "--swap with libvirt" "--swap is for --backend qemu" "$KLAB" boot --arch x86_64 --swap 64M --backend libvirt
deb=$KLAB_CACHE/kernels/debian-amd64
mkdir -p "$work/noswap" "$work/nomod" "$work/noconfig"
for d in noswap nomod noconfig; do ln -sf "$deb/vmlinuz" "$work/$d/vmlinuz"; done
grep -v '^CONFIG_SWAP=' "$deb/config" >"$work/noswap/config"
cp "$deb/config" "$work/nomod/config"
expect_error "--swap, a kernel without CONFIG_SWAP" "this kernel has no CONFIG_SWAP" \
  "$KLAB" boot --kernel "$work/noswap/vmlinuz" --swap 64M --dry-run
expect_error "--swap, virtio-blk a module that is not there" "builds virtio-blk as a module and .*load.order is missing" \
  "$KLAB" boot --kernel "$work/nomod/vmlinuz" --swap 64M --dry-run
expect_error "--swap, no config beside the kernel" "no kernel config beside" \
  "$KLAB" boot --kernel "$work/noconfig/vmlinuz" --swap 64M --dry-run
# An archive path may not climb out of the root (GNU cpio warns of such names).
expect_error "rootfs --add DEST with .." "DEST ../../x has a '..' component" \
  "$KLAB" rootfs --arch x86_64 -o "$work/climb.cpio.gz" --add /etc/passwd:../../x
expect_error "boot --add DEST with .." "DEST /etc/../../x has a '..' component" \
  "$KLAB" boot --arch x86_64 --add /etc/passwd:/etc/../../x --dry-run

# Busy port: a VM holds the port, a second boot asking for it is refused; without --gdb-port it moves on.
"$KLAB" boot --arch x86_64 --name a --initrd "$work/x86.cpio.gz" --detach >/dev/null 2>&1
port_a=$(sed -n 's/^gdb_port=//p' "$KLAB_RUN_DIR/a/state")
expect_error "busy gdb port" "gdb port $port_a on 127.0.0.1 is in use" \
  "$KLAB" boot --arch x86_64 --name b --initrd "$work/x86.cpio.gz" --gdb-port "$port_a" --detach
expect_error "name already running" "a VM named 'a' is already running" \
  "$KLAB" boot --arch x86_64 --name a --initrd "$work/x86.cpio.gz" --detach
"$KLAB" boot --arch x86_64 --name b --initrd "$work/x86.cpio.gz" --detach >/dev/null 2>&1
port_b=$(sed -n 's/^gdb_port=//p' "$KLAB_RUN_DIR/b/state" 2>/dev/null)
[ -n "$port_b" ] && [ "$port_b" != "$port_a" ] && ok "default port taken: next free one used ($port_a -> $port_b)" \
  || fail "default port fallback" "a=$port_a b=$port_b"
expect_error "gdb with two VMs and no name" "2 VMs are running; name one" "$KLAB" gdb
"$KLAB" stop b >/dev/null
# Boots started together each get their own port (chosen ports are reserved until QEMU holds them).
for i in 1 2 3; do "$KLAB" boot --arch x86_64 --name c$i --initrd "$work/x86.cpio.gz" --detach >/dev/null 2>&1 & done; wait
ports=$(for i in 1 2 3; do sed -n 's/^gdb_port=//p' "$KLAB_RUN_DIR/c$i/state" 2>/dev/null; done | sort -u | grep -c .)
[ "$ports" -eq 3 ] && ok "three concurrent boots: three VMs on three ports" || fail "concurrent boots" "$ports distinct ports"
"$KLAB" stop c1 c2 c3 >/dev/null

# regs / vtop / ptdump on bad input. VM 'a' is paused at its first instruction: translation is off.
expect_error "vtop: neither address nor symbol" "'no_such_symbol' is neither a hex address nor a symbol" \
  "$KLAB" vtop --vm a no_such_symbol
expect_error "vtop: no address" "vtop needs an address" "$KLAB" vtop --vm a
expect_error "ptdump: unknown option" "ptdump: unknown or incomplete option '--frob'" "$KLAB" ptdump --frob
expect_error "ptdump: bad filter" "unknown filter 'z'" "$KLAB" ptdump --vm a --filter w,z
expect_error "ptdump: bad page size" "--page-size wants" "$KLAB" ptdump --vm a --page-size 3K
expect_error "ptdump: backwards range" "ends before it starts" "$KLAB" ptdump --vm a --range 0x2000-0x1000
expect_error "ptdump: translation off" "translation is off \\(CR0.PG=0\\)" "$KLAB" ptdump --vm a
expect_error "regs: unknown register" "no register named nosuch" "$KLAB" regs --vm a nosuch
expect_error "regs: no such CPU" "has no CPU 7" "$KLAB" regs --vm a --cpu 7
out=$("$KLAB" vtop --vm a 0x1000 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^  STOP: walks disabled: translation is off" \
  && ok "vtop with paging off says so (exit 1)" || fail "vtop paging off" "rc=$rc $out"
# The stub serves one client: while another holds it, klab says so within its time-out instead of hanging.
exec 5<>/dev/tcp/127.0.0.1/"$port_a"
t0=$(date +%s)
expect_error "regs while another client holds the stub" "no reply from the gdb stub .*another debugger attached" \
  "$KLAB" regs --vm a
[ $(( $(date +%s) - t0 )) -le 5 ] && ok "busy stub reported within 5 s" || fail "busy stub" "took $(( $(date +%s) - t0 )) s"
exec 5<&-
"$KLAB" stop --all >/dev/null
expect_error "vtop with no VM" "no VM is running" "$KLAB" vtop 0x1000

# Stale state: a VM whose supervisor and QEMU were killed is cleaned up by the next command.
out=$("$KLAB" boot --arch x86_64 --name stale --initrd "$work/x86.cpio.gz" --detach 2>&1); rc=$?
sup=$(sed -n 's/^supervisor_pid=//p' "$KLAB_RUN_DIR/stale/state" 2>/dev/null)
qpid=$(sed -n 's/^qemu_pid=//p' "$KLAB_RUN_DIR/stale/state" 2>/dev/null)
if [ $rc -eq 0 ] && [ -n "$sup" ] && [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null && [ -f "$KLAB_RUN_DIR/stale/ram" ] \
   && tr '\0' ' ' <"/proc/$qpid/cmdline" | grep -q -- "-name klab-stale "; then
  ok "stale setup: VM 'stale' up, its QEMU $qpid running with its RAM file"
  kill -9 "$sup"; for _ in $(seq 50); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$qpid" 2>/dev/null && fail "killed supervisor takes QEMU with it" "QEMU $qpid alive" \
    || ok "killed supervisor takes QEMU with it"
  "$KLAB" status >/dev/null
  [ ! -e "$KLAB_RUN_DIR/stale/ram" ] && [ ! -e "$KLAB_RUN_DIR/stale/state" ] && ok "stale run state cleaned" \
    || fail "stale state" "$(ls "$KLAB_RUN_DIR/stale")"
else
  fail "stale setup" "boot rc=$rc, supervisor '$sup', QEMU '$qpid': $out"
fi

# A guest panic (no init anywhere: the kernel panics) ends QEMU and is reported, foreground and detached.
err=$("$KLAB" boot --arch x86_64 --name panic --initrd "$work/x86.cpio.gz" --no-wait \
        --append "rdinit=/nonexistent root=/dev/nonexistent" </dev/null 2>&1 >/dev/null); rc=$?
[ $rc -eq 3 ] && echo "$err" | grep -q "VM ended: guest panicked: Kernel panic - not syncing" \
  && ok "foreground boot reports the guest panic (exit 3)" || fail "panic (foreground)" "rc=$rc $err"
"$KLAB" boot --arch x86_64 --name panic2 --initrd "$work/x86.cpio.gz" --no-wait --detach \
  --append "rdinit=/nonexistent root=/dev/nonexistent" >/dev/null 2>&1
expect_error "klab wait reports the panic" "ended before .*guest panicked: Kernel panic" "$KLAB" wait panic2 --timeout 90
# klab's gdb commands in a gdb that has vmlinux but no target: one "no process attached" error each.
vmlinux=$KLAB_CACHE/kernels/debian-amd64/vmlinux
for c in "klab current" "klab ps" "klab ptov 0x1000" "klab pfn jiffies" "klab page 1" "klab vtop jiffies" \
         "klab ptdump" "klab ptsnap save x" "klab initmem-watch" "klab kaslr" "klab modules" "p \$klab_current()"; do
  out=$(gdb-multiarch -q -nx -batch -ex "python import sys; sys.path.insert(0, '$PWD/gdb'); import klab" -ex "$c" \
        "$vmlinux" 2>&1 | grep -v '^$')
  [ "$(echo "$out" | grep -c .)" -eq 1 ] && echo "$out" | grep -q "^klab.*no process attached" \
    && ok "gdb without a target: '$c' -> $out" || fail "gdb without a target: '$c'" "$out"
done
# Tab completion: the subcommands under `klab`, and a command's options.
comp=$(gdb-multiarch -q -nx -batch -ex "python import sys; sys.path.insert(0, '$PWD/gdb'); import klab" \
       -ex 'complete klab p' -ex 'complete klab vtop jiffies --p' "$vmlinux" 2>&1)
for want in "klab page" "klab pfn" "klab ps" "klab ptdump" "klab pte" "klab ptov" \
            "klab vtop jiffies --pgd" "klab vtop jiffies --pid"; do
  echo "$comp" | grep -qx "$want" || { fail "tab completion offers '$want'" "$comp"; continue; }
  ok "tab completion offers '$want'"
done
finish
