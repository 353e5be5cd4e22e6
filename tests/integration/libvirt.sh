#!/usr/bin/env bash
# klab boot --backend libvirt as an unprivileged user on qemu:///session (the session daemon starts itself
# under a scratch HOME/XDG), TCG domains: paused at the first instruction, gdb stub on 127.0.0.1 only, no
# network device, klab gdb/wait/vtop/stop through it, and AUTODESTROY when the supervisor is killed.
. "$(dirname "$0")/../lib.sh"
user=klabexam-a
[ "$(id -u)" -eq 0 ] || { fail "libvirt session test" "needs root to run as an unprivileged user"; finish; }
made=; id "$user" >/dev/null 2>&1 || { useradd -M -s /usr/sbin/nologin "$user" && made=1; }
home=$(mktemp -d /tmp/klab-lv-XXXXXX)
cleanup() {
  pkill -u "$user" -f "qemu-system.*klab-lv" 2>/dev/null; pkill -u "$user" libvirtd 2>/dev/null
  for i in $(seq 50); do pgrep -u "$user" libvirtd >/dev/null || break; sleep 0.1; done
  rm -rf "$home"; [ -n "$made" ] && userdel "$user" 2>/dev/null
}
trap cleanup EXIT
bash kernels/build.sh x86_64 >/dev/null || { fail "kernel" "x86_64 profile does not build"; finish; }
mkdir -p "$home/k" && cp -L "$KLAB_CACHE/kernels/x86_64/vmlinuz" "$KLAB_CACHE/kernels/x86_64/vmlinux" "$home/k/"
"$KLAB" rootfs --arch x86_64 -o "$home/k/initrd.cpio.gz" >/dev/null
chown -R "$user" "$home"; chmod 755 "$home"
klab=$PWD/${KLAB#$PWD/}
as_user() {
  (cd "$home" && runuser -u "$user" -- env HOME="$home" XDG_RUNTIME_DIR="$home/run" XDG_CONFIG_HOME="$home/c" \
     XDG_CACHE_HOME="$home/cache" KLAB_RUN_DIR="$home/vms" KLAB_CACHE="$home/kc" ASAN_OPTIONS="$ASAN_OPTIONS" \
     UBSAN_OPTIONS="$UBSAN_OPTIONS" "$@")
}
as_user mkdir -p "$home/run" && chmod 700 "$home/run"
boot=(--backend libvirt --connect qemu:///session --kernel k/vmlinuz --vmlinux k/vmlinux --initrd k/initrd.cpio.gz)

out=$(as_user "$klab" boot "${boot[@]}" --name lv1 --detach 2>&1) && ok "klab boot --backend libvirt as $user on qemu:///session" \
  || { fail "libvirt boot" "$out"; finish; }
virsh_list=$(as_user virsh -c qemu:///session list --all 2>&1)
echo "$virsh_list" | grep -q "klab-lv1 *paused" && ok "libvirt itself lists the transient domain klab-lv1, paused" \
  || fail "virsh list" "$virsh_list"
as_user virsh -c qemu:///session dumpxml klab-lv1 | grep -q "<interface" && fail "no network device" "an <interface> in the domain" \
  || ok "the domain has no network interface (virsh dumpxml)"
port=$(sed -n 's/^gdb_port=//p' "$home/vms/lv1/state")
ss -ltn | awk '{print $4}' | grep -qx "127.0.0.1:$port" && ! ss -ltn | awk '{print $4}' | grep -qx "\(0.0.0.0\|\*\|\[::\]\):$port" \
  && ok "the gdb stub listens on 127.0.0.1:$port only" || fail "stub address" "$(ss -ltn | grep ":$port")"
out=$(as_user timeout 120 "$klab" gdb lv1 --batch -ex 'p/x $pc' -ex 'info symbol $pc' -ex detach 2>&1)
echo "$out" | grep -q "^start_kernel in section" && ok "klab gdb runs the paused domain to start_kernel" \
  || fail "gdb on libvirt" "$(echo "$out" | tail -4)"
as_user "$klab" wait lv1 --timeout 90 >/dev/null 2>&1 && ok "the domain's console (libvirt's serial log) shows the init banner" \
  || fail "banner" "$(tail -3 "$home/vms/lv1/console.log")"
out=$(as_user "$klab" vtop --vm lv1 --qemu jiffies 2>&1)
mine=$(echo "$out" | sed -n 's/^PHYSICAL \(0x[0-9a-f]*\) .*/\1/p'); qemu=$(echo "$out" | sed -n 's/^QEMU gva2gpa: \(0x[0-9a-f]*\).*/\1/p')
[ -n "$mine" ] && [ "$mine" = "$qemu" ] && ok "klab vtop through the stub (no RAM file) = QEMU's gva2gpa ($mine)" \
  || fail "vtop on libvirt" "$(echo "$out" | tail -3)"
as_user "$klab" status | grep -q "^lv1 " && ok "klab status lists the libvirt VM" || fail "status" "$(as_user "$klab" status)"
as_user "$klab" stop lv1 >/dev/null 2>&1
as_user virsh -c qemu:///session list --all | grep -q klab-lv1 && fail "klab stop" "domain still there" \
  || ok "klab stop ends the domain"

# AUTODESTROY: the supervisor holds the connection; kill -9 it and libvirt destroys the domain.
as_user "$klab" boot "${boot[@]}" --name lv2 --detach --no-wait >/dev/null 2>&1
sup=$(sed -n 's/^supervisor_pid=//p' "$home/vms/lv2/state")
kill -9 "$sup"
for i in $(seq 50); do as_user virsh -c qemu:///session list --all | grep -q klab-lv2 || break; sleep 0.2; done
as_user virsh -c qemu:///session list --all | grep -q klab-lv2 && fail "AUTODESTROY" "domain survives its supervisor" \
  || ok "kill -9 of the supervisor: libvirt destroys the domain (AUTODESTROY)"
pgrep -u "$user" -f "guest=klab-lv2" >/dev/null && fail "AUTODESTROY" "QEMU still runs" || ok "and its QEMU is gone"
expect_error "--connect without --backend libvirt" "--connect is for --backend libvirt" "$KLAB" boot --arch x86_64 --connect qemu:///session --dry-run
expect_error "an unknown backend" "--backend wants qemu or libvirt" "$KLAB" boot --arch x86_64 --backend xen --dry-run
expect_error "a libvirt URI nothing answers" "cannot connect to libvirt at qemu\+ssh://nohost.invalid/session" \
  "$KLAB" boot --arch x86_64 --backend libvirt --connect 'qemu+ssh://nohost.invalid/session?no_tty=1' --name lvx --detach
finish
