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
# The oracle: QEMU's gva2gpa through libvirt's monitor passthrough (virsh), not klab's RSP client.
out=$("$KLAB" vtop --vm sys1 jiffies 2>&1)
mine=$(echo "$out" | vtop_pa | sed -n 's/^\([0-9a-f][0-9a-f]*\)$/0x\1/p')
jiffies=$(nm "$dir/vmlinux" | awk '$3 == "jiffies" { print $1; exit }')
qemu=$(virsh -c qemu:///system qemu-monitor-command --hmp klab-sys1 "gva2gpa 0x$jiffies" 2>&1 | gpa_of | sed 's/^/0x/')
[ -n "$mine" ] && [ -n "$qemu" ] && [ "$((mine))" = "$((qemu))" ] && ok "klab vtop through the stub = gva2gpa via virsh ($mine)" \
  || fail "vtop" "klab ${mine:-?}, virsh ${qemu:-?}: $out"
# virsh_has NAME: 0 listed, 1 not listed, 2 virsh itself failed (a failing virsh proves nothing).
virsh_has() { local l; l=$(virsh -c qemu:///system list --all 2>&1) || return 2; echo "$l" | grep -q "$1"; }
"$KLAB" stop sys1 >/dev/null 2>&1
virsh_has klab-sys1; rc=$?
[ $rc -eq 1 ] && ok "klab stop ends the domain" || fail "stop" "$([ $rc -eq 0 ] && echo "domain left" || echo "virsh failed")"
out=$("$KLAB" boot "${boot[@]}" --name sys2 --detach --no-wait 2>&1); rc=$?
sup=$(sed -n 's/^supervisor_pid=//p' "$dir/vms/sys2/state" 2>/dev/null)
virsh_has klab-sys2; listed=$?
if [ $rc -eq 0 ] && [ -n "$sup" ] && [ $listed -eq 0 ]; then
  ok "AUTODESTROY setup: sys2 booted and listed by the system daemon, supervisor pid $sup"
  kill -9 "$sup"
  for i in $(seq 50); do virsh_has klab-sys2 || break; sleep 0.2; done
  virsh_has klab-sys2; rc=$?
  [ $rc -eq 1 ] && ok "kill -9 of the supervisor: the system daemon destroys the domain" \
    || fail "AUTODESTROY" "$([ $rc -eq 0 ] && echo "domain survives" || echo "virsh failed")"
else
  fail "AUTODESTROY setup" "boot rc=$rc, supervisor '${sup}', listed=$listed: $out"
fi
finish
