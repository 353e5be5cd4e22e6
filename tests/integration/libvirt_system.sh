#!/usr/bin/env bash
# klab boot --backend libvirt on a system daemon (qemu:///system): QEMU runs as libvirt's own user. The test
# starts libvirtd and virtlogd itself when they are not running (and stops what it started).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" -eq 0 ] || { fail "libvirt system daemon" "needs root"; finish; }
# Whether a daemon answers, not whether a process of that name exists (a zombie would count).
started=()
[ -S /run/libvirt/virtlogd-sock ] || { virtlogd -d && started+=(/run/virtlogd.pid); }
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  libvirtd -d && started+=(/run/libvirtd.pid)
  # its first start probes every QEMU binary's capabilities: seconds here
  for i in $(seq 600); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.1; done
fi
dir=$(mktemp -d /var/tmp/klab-sys-XXXXXX)
cleanup() {
  KLAB_RUN_DIR=$dir/vms "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$dir"
  for pidfile in "${started[@]}"; do [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; done
}
trap cleanup EXIT
bash kernels/build.sh x86_64 >/dev/null || { fail "kernel" "x86_64 profile does not build"; finish; }
# libvirt relabels the kernel and initrd for its QEMU user, which must still reach them: a 0755 folder.
cp -L "$KLAB_CACHE/kernels/x86_64/vmlinuz" "$KLAB_CACHE/kernels/x86_64/vmlinux" "$dir/"
"$KLAB" rootfs --arch x86_64 -o "$dir/initrd.cpio.gz" >/dev/null
chmod 755 "$dir"; chmod 644 "$dir"/*
export KLAB_RUN_DIR=$dir/vms
boot=(--backend libvirt --connect qemu:///system --kernel "$dir/vmlinuz" --vmlinux "$dir/vmlinux" --initrd "$dir/initrd.cpio.gz")
out=$("$KLAB" boot "${boot[@]}" --name sys1 --detach 2>&1) && ok "klab boot --backend libvirt --connect qemu:///system" \
  || { fail "system boot" "$out"; finish; }
virsh -c qemu:///system list | grep -q "klab-sys1 *paused" && ok "the system daemon lists klab-sys1, paused" \
  || fail "virsh list" "$(virsh -c qemu:///system list --all)"
quser=$(ps -o user= -C qemu-system-x86_64 -o args= | awk '/guest=klab-sys1/ { print $1 }')
[ -n "$quser" ] && [ "$quser" != root ] && ok "QEMU runs as libvirt's user ($quser), not root" || fail "QEMU user" "'$quser'"
out=$(timeout 120 "$KLAB" gdb sys1 --batch -ex 'info symbol $pc' -ex detach 2>&1)
echo "$out" | grep -q "^start_kernel in section" && ok "klab gdb runs it to start_kernel" || fail "gdb" "$(echo "$out" | tail -3)"
"$KLAB" wait sys1 --timeout 90 >/dev/null 2>&1 && ok "init banner on the console (written by virtlogd)" || fail "banner" "none"
out=$("$KLAB" vtop --vm sys1 --qemu jiffies 2>&1)
mine=$(echo "$out" | sed -n 's/^PHYSICAL \(0x[0-9a-f]*\) .*/\1/p'); qemu=$(echo "$out" | sed -n 's/^QEMU gva2gpa: \(0x[0-9a-f]*\).*/\1/p')
[ -n "$mine" ] && [ "$mine" = "$qemu" ] && ok "klab vtop through the stub = gva2gpa ($mine)" || fail "vtop" "$out"
"$KLAB" stop sys1 >/dev/null 2>&1
virsh -c qemu:///system list --all | grep -q klab-sys1 && fail "stop" "domain left" || ok "klab stop ends the domain"
"$KLAB" boot "${boot[@]}" --name sys2 --detach --no-wait >/dev/null 2>&1
kill -9 "$(sed -n 's/^supervisor_pid=//p' "$dir/vms/sys2/state")"
for i in $(seq 50); do virsh -c qemu:///system list --all | grep -q klab-sys2 || break; sleep 0.2; done
virsh -c qemu:///system list --all | grep -q klab-sys2 && fail "AUTODESTROY" "domain survives" \
  || ok "kill -9 of the supervisor: the system daemon destroys the domain"
finish
