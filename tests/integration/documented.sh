#!/usr/bin/env bash
# What the README and --help promise and no other test checks, each against the guest, QEMU or the kernel:
# --smp/--mem inside the guest, --accel in QEMU's own command line, a running guest resumed after klab's
# shell commands, ptdump's --range/--page-size/--no-merge/--stats, $klab_current(), current --cpu N,
# ps --user/--kernel, `klab modules` for a module inserted before gdb attached (its .ko found in
# build/modules/), klab gdb --no-start and -- GDB-ARGS, /init's debugfs and poweroff -f, and libklab.so's
# exported symbols.
. "$(dirname "$0")/../lib.sh"
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
work=$(mktemp -d); trap cleanup EXIT
console() { python3 tests/integration/console.py "$@"; }
hmp() { python3 tests/integration/hmp.py "$KLAB_RUN_DIR/$1/monitor.sock" "${@:2}"; }

# libklab.so exports exactly the functions klab.h declares KLAB_API.
want=$(sed -n 's/^KLAB_API .*[ *]\(klab_[a-z0-9_]*\)(.*/\1/p' gdb/lib/klab.h | sort -u)
have=$(nm -D --defined-only build/libklab.so | awk '$2 == "T" { print $3 }' | sort -u)
[ -n "$want" ] && [ "$want" = "$have" ] && ok "libklab.so exports exactly the $(echo "$want" | wc -l) KLAB_API functions (nm -D)" \
  || fail "libklab.so exports" "$(diff <(echo "$want") <(echo "$have") | head -5)"

# The module, built where `make module` puts it: klab gdb finds its .ko there by itself.
ko=$(bash kernels/module.sh labs/hellodrv debian-amd64 2>"$work/module.err") \
  && [ "$ko" = "$PWD/build/modules/debian-amd64/hellodrv/hellodrv.ko" ] \
  && ok "make module's .ko is at build/modules/debian-amd64/hellodrv/" || { fail "module build" "$ko $(tail -2 "$work/module.err")"; finish; }
cat >"$work/50-doc.sh" <<'HOOK'
echo "NPROC $(nproc)"
grep MemTotal /proc/meminfo
echo "DEBUGFS $(grep -c ' /sys/kernel/debug debugfs ' /proc/mounts)"
insmod /lib/modules/hellodrv.ko
echo "KALLSYMS $(grep ' hello_open' /proc/kallsyms)"
(while :; do echo TICK; sleep 0.3; done) &
HOOK
"$KLAB" rootfs --arch x86_64 -o "$work/initrd.cpio.gz" --add "$ko:/lib/modules/hellodrv.ko" \
  --add "$work/50-doc.sh:/etc/klab.d/50-doc.sh" >/dev/null
out=$("$KLAB" boot --arch x86_64 --name doc --initrd "$work/initrd.cpio.gz" --smp 3 --mem 700M --accel tcg \
      --detach --no-wait 2>&1) || { fail "boot" "$out"; finish; }
"$KLAB" wait doc --for "KALLSYMS " --timeout 150 >/dev/null 2>&1 || { fail "guest hook" "no KALLSYMS line"; finish; }
log=$KLAB_RUN_DIR/doc/console.log
grep -aq '^NPROC 3' "$log" && ok "--smp 3: the guest's nproc is 3" || fail "--smp" "$(grep -a '^NPROC' "$log")"
mem=$(grep -a '^MemTotal:' "$log" | awk '{ print $2 }')
[ -n "$mem" ] && [ "$mem" -gt $((600 * 1024)) ] && [ "$mem" -le $((700 * 1024)) ] \
  && ok "--mem 700M: the guest's MemTotal is ${mem} kB" || fail "--mem" "MemTotal ${mem:-?} kB"
grep -aq '^DEBUGFS 1' "$log" && ok "/init mounts debugfs at /sys/kernel/debug" || fail "debugfs" "$(grep -a '^DEBUGFS' "$log")"
qpid=$(sed -n 's/^qemu_pid=//p' "$KLAB_RUN_DIR/doc/state")
tr '\0' ' ' <"/proc/$qpid/cmdline" | grep -q -- "-accel tcg" && ok "--accel tcg reaches the running QEMU (/proc/$qpid/cmdline)" \
  || fail "--accel" "$(tr '\0' ' ' <"/proc/$qpid/cmdline" | grep -o -- '-accel [^ ]*')"

# --accel kvm forces KVM even where the probe would choose TCG (here KVM guests hang, but QEMU starts;
# qemu64, as `max` asks KVM for MSRs this host's KVM refuses).
if [ -w /dev/kvm ]; then
  out=$("$KLAB" boot --arch x86_64 --name kvm --initrd "$work/initrd.cpio.gz" --accel kvm --cpu qemu64 --detach 2>&1)
  kpid=$(sed -n 's/^qemu_pid=//p' "$KLAB_RUN_DIR/kvm/state" 2>/dev/null)
  [ -n "$kpid" ] && tr '\0' ' ' <"/proc/$kpid/cmdline" | grep -q -- "-accel kvm" && grep -q '^accel=kvm$' "$KLAB_RUN_DIR/kvm/state" \
    && ok "--accel kvm forces KVM (/proc/$kpid/cmdline has -accel kvm)" || fail "--accel kvm" "$out"
  "$KLAB" stop kvm >/dev/null 2>&1
else
  skip "--accel kvm forces KVM" "no writable /dev/kvm on this host"
fi

# A running guest is paused for klab's shell commands and resumed after: it goes on printing.
before=$(grep -ac '^TICK' "$log")
"$KLAB" vtop --vm doc jiffies >/dev/null 2>&1 && "$KLAB" ptdump --vm doc --quiet >/dev/null 2>&1
sleep 2
after=$(grep -ac '^TICK' "$log")
st=$(hmp doc 'info status')
[ "$after" -ge $((before + 3)) ] && echo "$st" | grep -q "running" \
  && ok "the guest runs on after klab vtop and ptdump ($before -> $after ticks; QEMU: ${st#* => })" \
  || fail "resumed" "$before -> $after ticks; $st"

# ptdump options, on the kernel text (x86_64 nokaslr: 0xffffffff81000000 up).
lo=0xffffffff81000000 hi=0xffffffff83ffffff end=0xffffffff84000000
"$KLAB" ptdump --vm doc --range $lo-$hi >"$work/range" 2>&1
n=$(grep -c '^0x' "$work/range")
# 0x + 16 lowercase digits: string order is address order.
outside=$(grep '^0x' "$work/range" | awk -v lo=$lo -v end=$end '{ split($1, r, "-"); if (r[1] < lo || r[2] > end) print }' | head -2)
[ "$n" -gt 0 ] && [ -z "$outside" ] && ok "ptdump --range: $n ranges, all inside $lo-$hi" || fail "ptdump --range" "$n; $outside"
first=$(grep -m1 '^0x' "$work/range")
va=${first%%-*}; pa=$(echo "$first" | awk '{ print $4 }')
q=$(hmp doc "gva2gpa $va" | gpa_of | sed 's/^/0x/')
[ -n "$q" ] && [ "$((q))" = "$((pa))" ] && ok "ptdump --range: its first range starts at PA $pa = QEMU gva2gpa" \
  || fail "ptdump --range PA" "dump $pa, QEMU ${q:-?}"
"$KLAB" ptdump --vm doc --range $lo-$hi --page-size 2M >"$work/2m" 2>&1
[ "$(grep -c '^0x' "$work/2m")" -gt 0 ] && ! grep '^0x' "$work/2m" | grep -qv ' 2M x' \
  && ok "ptdump --page-size 2M: only 2M leaves ($(grep -c '^0x' "$work/2m") ranges)" || fail "--page-size" "$(head -3 "$work/2m")"
"$KLAB" ptdump --vm doc --range $lo-$hi --page-size 2M --no-merge >"$work/nm" 2>&1
leaves=$(grep '^0x' "$work/2m" | awk '{ sub("x", "", $6); s += $6 } END { print s }')
[ "$(grep -c '^0x' "$work/nm")" = "$leaves" ] && ! grep '^0x' "$work/nm" | grep -qv ' 2M x1 ' \
  && ok "ptdump --no-merge: one line per leaf ($leaves, the merged ranges' counts added up)" \
  || fail "--no-merge" "$(grep -c '^0x' "$work/nm") lines, want $leaves"
stats=$("$KLAB" ptdump --vm doc --range $lo-$hi --stats 2>&1 >/dev/null)
ranges=$(echo "$stats" | grep -oE '[0-9]+ ranges' | grep -oE '[0-9]+')
[ -n "$ranges" ] && [ "$ranges" = "$n" ] && ok "ptdump --stats counts the $n ranges it printed ($stats)" \
  || fail "--stats" "'$stats' vs $n ranges"

# In gdb: $klab_current(), current --cpu N, ps --user/--kernel, modules inserted before gdb attached.
guest=$(grep -a -m1 '^KALLSYMS ' "$log" | awk '{ print $2 }')
timeout 300 "$KLAB" gdb doc --batch -ex 'hbreak scheduler_tick' -ex continue -ex delete \
  -ex "source $PWD/tests/integration/documented_gdb.py" -ex 'echo @@ modules\n' -ex 'klab modules' \
  -ex 'info address hello_open' -ex 'echo @@ end\n' -ex disconnect >"$work/gdb" 2>&1
gdb_ran "gdb session" $? "$work/gdb" "@@ end"
relay "$work/gdb"
mods=$(gdb_section "$work/gdb" modules)
echo "$mods" | grep -Eq "^hellodrv +[0-9a-f]+ $PWD/build/modules/debian-amd64/hellodrv/hellodrv.ko$" \
  && echo "$mods" | grep -q "hello_open\" is a function at address 0x$guest\." \
  && ok "klab modules: a module inserted before gdb attached gets its symbols from build/modules/ (hello_open at the guest's 0x$guest)" \
  || fail "klab modules" "kallsyms $guest: $mods"
"$KLAB" stop doc >/dev/null 2>&1

# klab gdb --no-start stays at the first instruction; -- passes gdb's own options.
"$KLAB" boot --arch x86_64 --name first --initrd "$work/initrd.cpio.gz" --detach >/dev/null 2>&1
out=$(timeout 120 "$KLAB" gdb first --no-start --batch -ex 'p/x $pc' -- -ex 'echo GDB-OWN-ARG\n' 2>&1)
echo "$out" | grep -q '^\$1 = 0xfff0$' && echo "$out" | grep -q '^GDB-OWN-ARG' && ! echo "$out" | grep -q start_kernel \
  && ok "klab gdb --no-start attaches at the reset vector (pc 0xfff0); -- passes gdb's own -ex" \
  || fail "--no-start / --" "$(echo "$out" | tail -4)"
st=$(hmp first 'info status')
echo "$st" | grep -q "running" && ok "the VM runs after that gdb detached" || fail "after --no-start" "$st"
"$KLAB" wait first --timeout 120 >/dev/null 2>&1
console "$KLAB_RUN_DIR/first/console.sock" 'exit' 3 >/dev/null
for i in $(seq 50); do [ -f "$KLAB_RUN_DIR/first/exit" ] && break; sleep 0.2; done
grep -q "powered off" "$KLAB_RUN_DIR/first/exit" 2>/dev/null && ok "the shell's exit powers the VM off (poweroff -f): $(cat "$KLAB_RUN_DIR/first/exit")" \
  || fail "poweroff on exit" "$(cat "$KLAB_RUN_DIR/first/exit" 2>&1)"
finish
