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
xml=$(as_user virsh -c qemu:///session dumpxml klab-lv1 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$xml" | grep -q "<domain" && ! echo "$xml" | grep -q "<interface" \
  && ok "the domain has no network interface (virsh dumpxml)" || fail "no network device" "virsh rc=$rc: $(echo "$xml" | grep -m2 '<interface\|error')"
port=$(sed -n 's/^gdb_port=//p' "$home/vms/lv1/state")
ss -ltn | awk '{print $4}' | grep -qx "127.0.0.1:$port" && ! ss -ltn | awk '{print $4}' | grep -qx "\(0.0.0.0\|\*\|\[::\]\):$port" \
  && ok "the gdb stub listens on 127.0.0.1:$port only" || fail "stub address" "$(ss -ltn | grep ":$port")"
out=$(as_user timeout 120 "$klab" gdb lv1 --batch -ex 'p/x $pc' -ex 'info symbol $pc' -ex detach 2>&1)
echo "$out" | grep -q "^start_kernel in section" && ok "klab gdb runs the paused domain to start_kernel" \
  || fail "gdb on libvirt" "$(echo "$out" | tail -4)"
as_user "$klab" wait lv1 --timeout 90 >/dev/null 2>&1 && ok "the domain's console (libvirt's serial log) shows the init banner" \
  || fail "banner" "$(tail -3 "$home/vms/lv1/console.log")"
# klab dump of a libvirt domain (qemu:///session: libvirt's daemon and QEMU run as the user) writes the file;
# the bytes at linux_banner's PA (QEMU's gva2gpa via virsh) are the vmlinux's banner text. The dump goes through
# libvirt's own core-dump call: Debian 12's libvirtd dies on a dump-guest-memory it did not start.
banner=$(nm "$home/k/vmlinux" | awk '$3 == "linux_banner" { print $1; exit }')
bpa=$(as_user virsh -c qemu:///session qemu-monitor-command --hmp klab-lv1 "gva2gpa 0x$banner" 2>&1 | gpa_of | sed 's/^/0x/')
jpa=$(as_user virsh -c qemu:///session qemu-monitor-command --hmp klab-lv1 "gva2gpa 0x$(nm "$home/k/vmlinux" | awk '$3 == "jiffies" { print $1; exit }')" 2>&1 | gpa_of | sed 's/^/0x/')
jif() { as_user virsh -c qemu:///session qemu-monitor-command --hmp klab-lv1 "xp /1gx $jpa" 2>&1 | tr -d '\r' | awk '/^0/ { print $2 }'; }
b1=$(jif); sleep 1; b2=$(jif)
out=$(as_user "$klab" dump lv1 -o "$home/lv1.vmcore" 2>&1)
text=$(python3 - "$home/lv1.vmcore" "${bpa:-0}" <<'PY' 2>&1
import struct, sys
f = open(sys.argv[1], "rb"); pa = int(sys.argv[2], 16)
eh = f.read(64); phoff, = struct.unpack_from("<Q", eh, 32); phnum, = struct.unpack_from("<H", eh, 56)
f.seek(phoff)
for _ in range(phnum):
    t, _flags, off, _va, paddr, filesz = struct.unpack("<IIQQQQ", f.read(56)[:40])
    if t == 1 and paddr <= pa < paddr + filesz:
        f.seek(off + pa - paddr); print(f.read(13).decode(errors="replace")); break
PY
)
[ "$text" = "Linux version" ] && ok "klab dump of a libvirt domain: the banner at its gva2gpa PA ($bpa) in the dump" \
  || fail "klab dump on libvirt" "$out; at ${bpa:-?}: ${text:-nothing}"
# and the guest runs on: jiffies, read twice a second apart by QEMU's own monitor, moves after as before
j1=$(jif); sleep 1; j2=$(jif)
[ -n "$j1" ] && [ -n "$j2" ] && [ "$((j2))" -gt "$((j1))" ] && [ "$((b2))" -gt "$((b1))" ] \
  && ok "the guest ran before the dump (jiffies $b1 -> $b2) and runs on after it ($j1 -> $j2)" \
  || fail "after the dump" "jiffies before ${b1:-?} -> ${b2:-?}, after ${j1:-?} -> ${j2:-?}"
# The oracle is QEMU's gva2gpa asked through libvirt's own monitor passthrough (virsh), not klab's client.
out=$(as_user "$klab" vtop --vm lv1 jiffies 2>&1)
mine=$(echo "$out" | vtop_pa | sed -n 's/^\([0-9a-f][0-9a-f]*\)$/0x\1/p')
jiffies=$(nm "$home/k/vmlinux" | awk '$3 == "jiffies" { print $1; exit }')
qemu=$(as_user virsh -c qemu:///session qemu-monitor-command --hmp klab-lv1 "gva2gpa 0x$jiffies" 2>&1 | gpa_of | sed 's/^/0x/')
[ -n "$mine" ] && [ -n "$qemu" ] && [ "$((mine))" = "$((qemu))" ] && ok "klab vtop through the stub (no RAM file) = QEMU's gva2gpa via virsh ($mine)" \
  || fail "vtop on libvirt" "klab ${mine:-?}, virsh gva2gpa ${qemu:-?}: $(echo "$out" | tail -3)"
as_user "$klab" status | grep -q "^lv1 " && ok "klab status lists the libvirt VM" || fail "status" "$(as_user "$klab" status)"
# virsh_has NAME: 0 listed, 1 not listed, 2 virsh itself failed (a failing virsh proves nothing).
virsh_has() { local l; l=$(as_user virsh -c qemu:///session list --all 2>&1) || return 2; echo "$l" | grep -q "$1"; }
as_user "$klab" stop lv1 >/dev/null 2>&1
virsh_has klab-lv1; rc=$?
[ $rc -eq 1 ] && ok "klab stop ends the domain" || fail "klab stop" "$([ $rc -eq 0 ] && echo "domain still there" || echo "virsh failed")"

# AUTODESTROY: the supervisor holds the connection; kill -9 it and libvirt destroys the domain.
out=$(as_user "$klab" boot "${boot[@]}" --name lv2 --detach --no-wait 2>&1); rc=$?
sup=$(sed -n 's/^supervisor_pid=//p' "$home/vms/lv2/state" 2>/dev/null)
virsh_has klab-lv2; listed=$?
if [ $rc -eq 0 ] && [ -n "$sup" ] && [ $listed -eq 0 ] && pgrep -u "$user" -f "guest=klab-lv2" >/dev/null; then
  ok "AUTODESTROY setup: lv2 booted, listed by libvirt, its QEMU running, supervisor pid $sup"
  kill -9 "$sup"
  for i in $(seq 50); do virsh_has klab-lv2 || break; sleep 0.2; done
  virsh_has klab-lv2; rc=$?
  [ $rc -eq 1 ] && ok "kill -9 of the supervisor: libvirt destroys the domain (AUTODESTROY)" \
    || fail "AUTODESTROY" "$([ $rc -eq 0 ] && echo "domain survives its supervisor" || echo "virsh failed")"
  pgrep -u "$user" -f "guest=klab-lv2" >/dev/null && fail "AUTODESTROY" "QEMU still runs" || ok "and its QEMU is gone"
else
  fail "AUTODESTROY setup" "boot rc=$rc, supervisor '${sup}', listed=$listed: $out"
fi
expect_error "--connect without --backend libvirt" "--connect is for --backend libvirt" "$KLAB" boot --arch x86_64 --connect qemu:///session --dry-run
expect_error "an unknown backend" "--backend wants qemu or libvirt" "$KLAB" boot --arch x86_64 --backend xen --dry-run
expect_error "a libvirt URI nothing answers" "cannot connect to libvirt at qemu\+ssh://nohost.invalid/session" \
  "$KLAB" boot --arch x86_64 --backend libvirt --connect 'qemu+ssh://nohost.invalid/session?no_tty=1' --name lvx --detach
# klab loads libvirt when a libvirt VM is first used (vm/backend/libvirt_api.c): without it, one line. In a
# mount namespace of its own, /dev/null over libvirt.so.0 stands for a machine without the package.
lib=$(ldconfig -p | awk '$1 == "libvirt.so.0" && /x86-64|aarch64/ { print $NF; exit }')
if [ -n "$lib" ] && unshare -m true 2>/dev/null; then
  expect_error "libvirt not installed: one line naming the package" "libvirt is not installed .*apt-get install libvirt0" \
    unshare -m sh -c 'mount --bind /dev/null "$1" && shift && exec "$@"' sh "$(readlink -f "$lib")" \
    "$KLAB" boot --arch x86_64 --backend libvirt --name lvy --detach
  out=$(unshare -m sh -c 'mount --bind /dev/null "$1" && shift && exec "$@"' sh "$(readlink -f "$lib")" \
    "$KLAB" boot --arch x86_64 --dry-run 2>&1) \
    && ok "without libvirt's library klab still runs (the QEMU backend's dry run)" || fail "klab without libvirt" "$out"
else
  skip "libvirt not installed" "no libvirt.so.0 in ldconfig's cache, or no unshare -m here"
fi
finish
