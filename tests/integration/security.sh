#!/usr/bin/env bash
# Attacks by other local users and by exam candidates, with real second Unix users (docs/security.md).
# Each attack must fail with one `klab:` line and no effect; each check would pass on klab before its fix
# only if the attack had no effect there either (the notes say what the old klab did).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" -eq 0 ] || { fail "security suite" "needs root to create the attacker's and candidates' Unix users"; finish; }
evil=klabsec-evil cand=klabsec-a
declare -A made
for u in $evil $cand; do id "$u" >/dev/null 2>&1 || { useradd -M -s /bin/sh "$u" && made[$u]=1; }; done
work=$(mktemp -d /tmp/klab-sec-XXXXXX); chmod 755 "$work"
shm_root=/dev/shm/klab-$(id -u) locks=/dev/shm/klab-locks-$(id -u)
saved=; [ -e "$shm_root" ] && { saved=$work/saved-root; mv "$shm_root" "$saved"; }
savedl=; [ -e "$locks" ] && { savedl=$work/saved-locks; mv "$locks" "$savedl"; }
cleanup() {
  [ -n "${ctl:-}" ] && kill "$ctl" 2>/dev/null
  [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null
  [ -n "${victim:-}" ] && kill "$victim" 2>/dev/null
  wait 2>/dev/null
  KLAB_RUN_DIR=$work/run "$KLAB" stop --all >/dev/null 2>&1
  rm -rf "$shm_root" "$locks" /dev/shm/klab-gdb-port-*.lock
  [ -n "$saved" ] && mv "$saved" "$shm_root"; [ -n "$savedl" ] && mv "$savedl" "$locks"
  rm -rf "$work"
  for u in "${!made[@]}"; do userdel "$u" 2>/dev/null; done
}
trap cleanup EXIT
as_evil() { runuser -u $evil -- "$@"; }
boot_args=(--arch x86_64 --detach)

# 1. A run root made by another user before ours (XDG_RUNTIME_DIR unset: /dev/shm/klab-UID). The old klab
#    booted inside it, and the attacker could then swap the VM's state and vmlinux-gdb.py.
as_evil mkdir -m 0777 "$shm_root" && as_evil chmod 0777 "$shm_root"
expect_error "boot refuses a run root another user made" "refusing the run-state folder: $shm_root belongs to another user" \
  env -u XDG_RUNTIME_DIR -u KLAB_RUN_DIR "$KLAB" boot "${boot_args[@]}" --name r
[ -z "$(ls -A "$shm_root")" ] && ok "nothing was written into the attacker's folder" || fail "wrote into it" "$(ls -A "$shm_root")"
for c in status "gdb r" "stop r" "wait r --timeout 1"; do
  # shellcheck disable=SC2086
  expect_error "klab $c refuses it too" "refusing the run-state folder" env -u XDG_RUNTIME_DIR -u KLAB_RUN_DIR "$KLAB" $c
done
rm -rf "$shm_root"
as_evil mkdir -m 0700 "$work/evilroot" 2>/dev/null || { mkdir "$work/evilroot"; chown $evil "$work/evilroot"; }
as_evil ln -s "$work/evilroot" "$shm_root"
expect_error "boot refuses a run root that is a symlink" "refusing the run-state folder: $shm_root is a symlink" \
  env -u XDG_RUNTIME_DIR -u KLAB_RUN_DIR "$KLAB" boot "${boot_args[@]}" --name r
rm -f "$shm_root"
mkdir -m 0777 "$work/loose"; chmod 0777 "$work/loose"
expect_error "KLAB_RUN_DIR writable by others is refused" "refusing the run-state folder: $work/loose is writable by other users" \
  env KLAB_RUN_DIR="$work/loose" "$KLAB" boot "${boot_args[@]}" --name r
mkdir -m 0777 "$work/open"; chmod 0777 "$work/open"
expect_error "a run root under a folder others may rename in is refused" "$work/open is writable by other users and not sticky" \
  env KLAB_RUN_DIR="$work/open/run" "$KLAB" boot "${boot_args[@]}" --name r
# Ours, made by klab: 0700.
env -u XDG_RUNTIME_DIR -u KLAB_RUN_DIR "$KLAB" boot "${boot_args[@]}" --name own >/dev/null 2>&1 \
  && [ "$(stat -c '%a %U' "$shm_root" "$shm_root/own" | sort -u)" = "700 root" ] \
  && ok "klab makes its run root and VM folder 0700 and its own" || fail "own run root" "$(stat -c '%n %a %U' "$shm_root" "$shm_root/own" 2>&1)"
env -u XDG_RUNTIME_DIR -u KLAB_RUN_DIR "$KLAB" stop own >/dev/null 2>&1

# 2. Ports: another user holds every lock in the old shared place and in a /dev/shm/klab-locks-UID of their
#    making. The old klab skipped each locked port and failed after 1000 ("no free TCP port").
rm -rf "$locks"; as_evil mkdir -m 0777 "$locks"; as_evil chmod 0777 "$locks"
as_evil python3 - "$locks" <<'PY' &
import fcntl, os, resource, sys, time
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
fds = []
for p in range(1234, 2234):
    for path in ("/dev/shm/klab-gdb-port-%d.lock" % p, "%s/gdb-port-%d.lock" % (sys.argv[1], p)):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o444)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fds.append(fd)
        except OSError:
            pass
open("/tmp/klab-sec-locks-held", "w").write(str(len(fds)))
time.sleep(120)
PY
holder=$!
for i in $(seq 100); do [ -s /tmp/klab-sec-locks-held ] && break; sleep 0.1; done
held=$(cat /tmp/klab-sec-locks-held 2>/dev/null); rm -f /tmp/klab-sec-locks-held
out=$(KLAB_RUN_DIR=$work/run "$KLAB" boot "${boot_args[@]}" --name ports 2>&1); rc=$?
[ "${held:-0}" -ge 1000 ] && [ $rc -eq 0 ] && echo "$out" | grep -q "gdb stub on 127.0.0.1:" \
  && ok "another user's $held held port locks do not block a boot ($(echo "$out" | grep -o '127.0.0.1:[0-9]*'))" \
  || fail "foreign port locks" "held=$held rc=$rc: $out"
KLAB_RUN_DIR=$work/run "$KLAB" stop ports >/dev/null 2>&1
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; holder=

# 3. A state file whose pid is someone else's process (the swapped state of finding 2): the old klab's stop
#    sent SIGTERM and SIGKILL to whatever qemu_pid said.
as_evil sleep 300 & victim=$!
sleep 0.2
victim_pid=$(pgrep -u $evil -f "sleep 300" | head -1)
mkdir -p -m 0700 "$work/run/fake"
printf 'name=fake\narch=x86_64\nqemu_pid=%s\nsupervisor_pid=%s\ngdb=tcp:127.0.0.1:1\ngdb_port=1\nkernel=x\n' \
  "$victim_pid" "$victim_pid" >"$work/run/fake/state"
: >"$work/run/fake/lock"
flock "$work/run/fake/lock" sleep 30 & lockholder=$!
sleep 0.2
expect_error "stop refuses a pid that is not the VM's QEMU" "pid $victim_pid is not its QEMU" \
  env KLAB_RUN_DIR="$work/run" "$KLAB" stop fake
kill -0 "$victim_pid" 2>/dev/null && ok "the other user's process was not signalled" || fail "victim" "pid $victim_pid is gone"
kill "$lockholder" 2>/dev/null; wait "$lockholder" 2>/dev/null; rm -rf "$work/run/fake"

# 4. A vmlinux in a folder another user can write: klab gdb must not let gdb auto-load its -gdb.py (the
#    old klab added vmlinux's folder to gdb's safe path whoever owned it).
vml=$KLAB_CACHE/kernels/x86_64/vmlinux
if [ -f "$vml" ]; then
  mkdir -m 0777 "$work/evilk"; chmod 0777 "$work/evilk"
  cp "$(readlink -f "$vml")" "$work/evilk/vmlinux"
  printf 'open("%s/ran", "w").write("pwned")\n' "$work" >"$work/evilk/vmlinux-gdb.py"
  chown $evil "$work/evilk/vmlinux-gdb.py"
  KLAB_RUN_DIR=$work/run "$KLAB" boot --kernel x86_64 --vmlinux "$work/evilk/vmlinux" --detach --name vml >/dev/null 2>&1
  out=$(KLAB_RUN_DIR=$work/run timeout 120 "$KLAB" gdb vml --batch --no-start -ex 'echo @@done\n' 2>&1)
  [ ! -e "$work/ran" ] && echo "$out" | grep -q "@@done" && echo "$out" | grep -q "not auto-loading scripts beside" \
    && ok "gdb does not run a -gdb.py that another user can write (klab says why)" \
    || fail "auto-load" "$( [ -e "$work/ran" ] && echo "the script ran"): $out"
  KLAB_RUN_DIR=$work/run "$KLAB" stop vml >/dev/null 2>&1
else
  fail "auto-load check" "no x86_64 source kernel ($vml)"
fi

# 5. Leftovers: a detached boot whose supervisor is killed leaves no image or RAM file, and says why.
KLAB_RUN_DIR=$work/run "$KLAB" boot "${boot_args[@]}" --name killed >/dev/null 2>&1
sup=$(sed -n 's/^supervisor_pid=//p' "$work/run/killed/state")
[ -s "$work/run/killed/initramfs.cpio.gz" ] && [ -n "$sup" ] && kill -9 "$sup" \
  || fail "killed supervisor setup" "no image or supervisor"
sleep 1
st=$(KLAB_RUN_DIR=$work/run "$KLAB" status 2>&1)
left=$(ls "$work/run/killed")
echo "$st" | grep -q "^killed *ended: supervisor killed" && ! echo "$left" | grep -qx "initramfs.cpio.gz\|ram\|state" \
  && ok "a killed supervisor's image and RAM file are swept; status says 'supervisor killed'" \
  || fail "leftovers" "status: $st; left: $left"

# 6. Exam: a hostile Kbuild, symlinks in work/, a report.txt symlink. One room, a candidate with a Unix
#    user and one without.
bash kernels/build.sh x86_64 >/dev/null || { fail "room kernel" "x86_64 profile does not build"; finish; }
klab=$KLAB dir=$work/exam-sec room=exam-sec
. tests/integration/exam_lib.sh
cat >"$work/room.conf" <<ROOM
name = sec
kernel = x86_64
task = $PWD/labs/exam/myhello
time_limit = 20m
candidates = $cand nouser
ROOM
room_start room.conf
room_boots $cand nouser
victim_file=$work/victim; echo original >"$victim_file"
for c in $cand nouser; do
  w=$dir/candidates/$c/work
  rm -rf "$w"/*; cp labs/hellodrv/* "$w/"
  # make runs $(shell …) as whoever builds: the old grader ran it as root.
  cat >>"$w/Kbuild" <<'KB'
$(shell id -u > $(src)/uid.txt)
$(shell touch /tmp/klab-sec-touched-$(notdir $(src)) 2>/dev/null)
$(shell touch $(src)/../../../../pwned 2>/dev/null)
$(shell tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > $(src)/net.txt)
KB
  ln -s /etc/shadow "$w/shadow.c"
  ln -s /etc/shadow "$w/evil.ko"
  ln -sf "$victim_file" "$dir/candidates/$c/report.txt"
  [ "$c" = "$cand" ] && chown -h -R $cand "$w" "$dir/candidates/$c/report.txt"
done
rm -f /tmp/klab-sec-touched-*
"$klab" exam grade "$dir" $cand >"$work/ga" 2>&1; ra=$?
"$klab" exam grade "$dir" nouser >"$work/gn" 2>&1; rn=$?
# module.sh builds in sandbox/build (a copy of work/), where $(src) points.
sa=$dir/grading/$cand/sandbox/work sn=$dir/grading/nouser/sandbox/work
ba=$dir/grading/$cand/sandbox/build bn=$dir/grading/nouser/sandbox/build
[ "$(cat "$ba/uid.txt" 2>/dev/null)" = "$(id -u $cand)" ] && ok "the candidate's build ran as their uid ($(id -u $cand))" \
  || fail "build uid" "uid.txt: $(cat "$ba/uid.txt" 2>&1); $(tail -3 "$dir/grading/$cand/build.txt")"
[ "$(cat "$bn/uid.txt" 2>/dev/null)" = "65534" ] && ok "a candidate without a Unix user builds as nobody (65534)" \
  || fail "nouser build uid" "uid.txt: $(cat "$bn/uid.txt" 2>&1); $(tail -3 "$dir/grading/nouser/build.txt")"
! ls /tmp/klab-sec-touched-* >/dev/null 2>&1 && [ ! -e "$dir/pwned" ] && [ ! -e "$dir/grading/pwned" ] \
  && ok "the build wrote nothing outside its folder (/tmp and the room untouched)" \
  || fail "writes outside" "$(ls /tmp/klab-sec-touched-* "$dir/pwned" "$dir/grading/pwned" 2>&1)"
[ "$(cat "$ba/net.txt" 2>/dev/null)" = lo ] && ok "the build had no network (interfaces: $(tr '\n' ' ' <"$ba/net.txt"))" \
  || fail "build network" "$(cat "$ba/net.txt" 2>&1)"
[ -L "$sa/shadow.c" ] && [ "$(readlink "$sa/shadow.c")" = /etc/shadow ] && ! grep -q "root:" "$ba"/* 2>/dev/null \
  && ok "a symlink in work/ is copied as a link only, and /etc/shadow reached no build file" \
  || fail "symlink copy" "$(ls -l "$sa/shadow.c" 2>&1)"
[ "$(cat "$victim_file")" = original ] && [ -f "$dir/candidates/$cand/report.txt" ] && [ ! -L "$dir/candidates/$cand/report.txt" ] \
  && ok "a report.txt symlink is replaced, not written through" || fail "report symlink" "victim: $(cat "$victim_file")"
verdict() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%d/%d" % (r["passed"], r["total"]))' "$1" 2>&1; }
[ $ra -eq 0 ] && [ "$(verdict "$dir/candidates/$cand/report.json")" = 5/5 ] && [ $rn -eq 0 ] \
  && ok "the honest driver still grades 5/5 with the sandboxed build, both candidates" \
  || fail "grade" "rc=$ra/$rn $(verdict "$dir/candidates/$cand/report.json"): $(tail -5 "$work/ga" "$work/gn")"
# The candidate's VM image: evil.ko (a link to /etc/shadow) is left out; the real .ko goes in.
cp "$dir/grading/$cand/hellodrv.ko" "$dir/candidates/$cand/work/" && chown $cand "$dir/candidates/$cand/work/hellodrv.ko"
"$klab" exam reset "$dir" $cand >/dev/null
vm_up $cand
mods=$(console "$dir/candidates/$cand/run/$room-$cand/console.sock" 'echo MODS $(ls /lib/modules)' 3 | grep '^MODS')
[ "$mods" = "MODS hellodrv.ko" ] && ok "a .ko symlink to /etc/shadow stays out of the candidate's VM (/lib/modules: ${mods#MODS })" \
  || fail "VM image symlink" "$mods"
expect_error "grade refuses a candidate name with a slash" "is not a candidate name" "$klab" exam grade "$dir" ../x
finish
