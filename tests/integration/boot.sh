#!/usr/bin/env bash
# A real boot per architecture: paused VM, gdb attached through `klab gdb` stops at start_kernel, the guest
# reaches klab's /init banner with the kernel's own release, and `klab stop` leaves nothing behind.
#   tests/integration/boot.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64) deb=amd64 ;; arm64) deb=arm64 ;; *) echo "usage: boot.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
name=boot-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
kdir=$KLAB_CACHE/kernels/debian-$deb
release=$(sed -n 's/^release=//p' "$kdir/VERSION")

"$KLAB" rootfs --arch "$arch" -o "$work/initrd.cpio.gz" >/dev/null
out=$("$KLAB" boot --arch "$arch" --name "$name" --initrd "$work/initrd.cpio.gz" --detach 2>&1)
[ $? -eq 0 ] && ok "$arch: klab boot --detach returns once ready" || { fail "$arch: boot" "$out"; finish; }
state=$KLAB_RUN_DIR/$name/state
pid=$(sed -n 's/^qemu_pid=//p' "$state")
port=$(sed -n 's/^gdb_port=//p' "$state")
ram=$(sed -n 's/^ram_file=//p' "$state")
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ok "$arch: QEMU runs (pid $pid)" || fail "$arch: QEMU pid" "$pid"
[ -f "$ram" ] && [ "$(stat -c %s "$ram")" -eq $((1024 * 1024 * 1024)) ] && ok "$arch: guest RAM file in the run state" \
  || fail "$arch: RAM file" "$ram"

# x86_64: QEMU boots the vmlinux by its PVH entry when readelf shows the note (Xen, type 0x12,
# XEN_ELFNOTE_PHYS32_ENTRY), else the image; the late VM below boots the image (--no-pvh) to start_kernel too.
booted=$(tr '\0' '\n' </proc/"$pid"/cmdline | sed -n '/^-kernel$/{n;p}')
if [ "$arch" = x86_64 ] && readelf -nW "$kdir/vmlinux" | grep -q "Xen .*(0x00000012)\|Xen .*0x00000012"; then
  [ "$booted" = "$kdir/vmlinux" ] && ok "$arch: QEMU boots vmlinux by its PVH entry" || fail "$arch: PVH boot" "-kernel $booted"
else
  [ "$booted" = "$kdir/vmlinuz" ] && ok "$arch: QEMU boots the image" || fail "$arch: image boot" "-kernel $booted"
fi

# The stub listens on loopback only (QEMU's -s would listen on every interface).
listen=$(awk -v p=$(printf '%04X' "$port") 'NR>1 && $4=="0A" { split($2,a,":"); if (a[2]==p) print a[1] }' /proc/net/tcp /proc/net/tcp6)
[ "$listen" = "0100007F" ] && ok "$arch: stub listens on 127.0.0.1:$port only" || fail "$arch: stub address" "listeners: $listen"

# Paused at the first instruction: no kernel output yet, QEMU says prelaunch.
sleep 0.5
[ ! -s "$KLAB_RUN_DIR/$name/console.log" ] && ok "$arch: nothing ran before gdb attached" || fail "$arch: paused" "console not empty"
"$KLAB" status | grep -q "^$name .*paused (prelaunch)" && ok "$arch: status says paused (prelaunch)" \
  || fail "$arch: status" "$("$KLAB" status)"

# gdb through klab gdb: symbols, the stub, run to start_kernel, read registers, detach (QEMU resumes).
gdb_out=$(timeout 120 "$KLAB" gdb "$name" --batch -ex 'info symbol $pc' -ex 'klab vm' -ex 'detach' 2>&1)
echo "$gdb_out" | grep -q "^start_kernel in section \.init\.text" && ok "$arch: gdb stopped at start_kernel" \
  || fail "$arch: gdb start_kernel" "$(echo "$gdb_out" | tail -5)"
echo "$gdb_out" | grep -q "^arch *$arch" && ok "$arch: klab gdb package loaded" || fail "$arch: klab package" "$(echo "$gdb_out" | tail -3)"
echo "$gdb_out" | grep -qi "traceback\|error" && fail "$arch: gdb session clean" "$(echo "$gdb_out" | grep -i 'traceback\|error' | head -2)" \
  || ok "$arch: gdb session clean"

# The guest reaches klab's /init and prints the banner with this kernel's release.
banner=$("$KLAB" wait "$name" --timeout 90 2>&1)
[[ "$banner" == *"klab: init ready, kernel $release "* ]] && ok "$arch: init banner shows uname -r = $release" \
  || fail "$arch: banner" "$banner"

# Stop: no QEMU, no port, no RAM file, no run state.
check "$arch: klab stop" "$KLAB" stop "$name"
sleep 0.2
kill -0 "$pid" 2>/dev/null && fail "$arch: QEMU gone" "pid $pid alive" || ok "$arch: QEMU gone"
[ ! -e "$ram" ] && ok "$arch: RAM file removed" || fail "$arch: RAM file" "still there"
[ ! -e "$state" ] && ok "$arch: run state removed" || fail "$arch: state" "still there"
(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && fail "$arch: port closed" "$port still open" || ok "$arch: port $port closed"
grep -q "powered off\|killed by signal" "$KLAB_RUN_DIR/$name/exit" && ok "$arch: exit reason recorded" \
  || fail "$arch: exit reason" "$(cat "$KLAB_RUN_DIR/$name/exit" 2>&1)"

# `make gdb-*` typed while `make vm-*` is still fetching and building: klab gdb waits for the VM that is
# starting (announced by a live process, here a shell standing in for make), says so, and attaches once
# its stub is up; with nobody starting it, it fails at once.
late=late-$arch
nopvh=; [ "$arch" = x86_64 ] && nopvh=--no-pvh
( sleep 3; "$KLAB" boot --arch "$arch" --name "$late" --initrd "$work/initrd.cpio.gz" $nopvh --detach >/dev/null 2>&1 ) &
starter=$!
"$KLAB" boot --arch "$arch" --name "$late" --announce "$starter"
t0=$(date +%s)
gdb_out=$(timeout 120 "$KLAB" gdb "$late" --batch -ex 'info symbol $pc' 2>&1)
took=$(( $(date +%s) - t0 ))
echo "$gdb_out" | grep -q "VM '$late' is starting; waiting up to 600 s" && echo "$gdb_out" | grep -q "^start_kernel in section" \
  && [ "$took" -ge 2 ] && ok "$arch: klab gdb waits ${took} s for a VM that is starting, then reaches start_kernel" \
  || fail "$arch: gdb waits for a starting VM" "after ${took} s: $(echo "$gdb_out" | tail -4)"
wait "$starter"
if [ -n "$nopvh" ]; then
  lpid=$(sed -n 's/^qemu_pid=//p' "$KLAB_RUN_DIR/$late/state")
  [ "$(tr '\0' '\n' </proc/"$lpid"/cmdline | sed -n '/^-kernel$/{n;p}')" = "$kdir/vmlinuz" ] \
    && ok "$arch: --no-pvh boots the bzImage" || fail "$arch: --no-pvh" "$(tr '\0' ' ' </proc/"$lpid"/cmdline)"
fi
"$KLAB" stop "$late" >/dev/null 2>&1
t0=$(date +%s)
expect_error "$arch: klab gdb of a VM nobody starts fails at once" "no running VM named 'nobody'" "$KLAB" gdb nobody --batch
[ $(( $(date +%s) - t0 )) -le 2 ] && ok "$arch: ... within 2 s" || fail "$arch: gdb of nobody" "took $(( $(date +%s) - t0 )) s"
finish
