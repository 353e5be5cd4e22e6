#!/usr/bin/env bash
# Record and replay (klab boot --record, klab replay) with a real kernel: a boot to the shell and a scripted
# console session (--run) recorded, replayed twice: the replayed console prints what the recorded one did,
# byte for byte; then gdb runs the replay backwards (gdb_replay.py). A second recording takes a line typed
# into its console (--console-input) and replays it byte for byte. And the refusals, one line each.
#   tests/integration/replay.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64) brk=do_sys_openat2 ;; arm64) brk=do_sys_openat2 ;; *) echo "usage: replay.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
rec=$work/rec
# The session is the image's own (--run): a recording's console is a file, input comes from the guest.
"$KLAB" boot --arch "$arch" --name rec --record "$rec" --run 'sleep 1; echo REPLAY-MARK $((6 * 7)); cat /proc/version' \
  --no-wait --detach >"$work/boot" 2>&1 || { fail "$arch: boot --record" "$(cat "$work/boot")"; finish; }
timeout 600 "$KLAB" wait rec --for '/root # ' --timeout 600 >/dev/null 2>&1 || { fail "$arch: recorded boot" "no shell prompt"; finish; }
grep -aq 'REPLAY-MARK 42' "$KLAB_RUN_DIR/rec/console.log" || fail "$arch: the recorded session" "no REPLAY-MARK 42 on the console"
sleep 2
tr -d '\r' <"$KLAB_RUN_DIR/rec/console.log" >"$work/recorded.log"
"$KLAB" stop rec >/dev/null 2>&1
[ -s "$rec/replay.bin" ] && [ -s "$rec/recording" ] && ok "$arch: recorded into $rec ($(du -sh "$rec/replay.bin" | cut -f1) of events)" \
  || fail "$arch: the recording" "$(ls -la "$rec")"

# replay_to_end REC NAME RECORDED: replays REC as NAME to its end (gdb continues it: a replay has no monitor)
# into $work/NAME.log; 0 when it printed RECORDED byte for byte.
replay_to_end() {
  "$KLAB" replay "$1" --name "$2" --detach >"$work/$2.out" 2>&1 || { echo "klab replay: $(cat "$work/$2.out")"; return 1; }
  timeout 600 "$KLAB" gdb "$2" --batch -ex continue >"$work/$2.gdb" 2>&1 &
  # At the end of its log the replay ends QEMU (and klab clears its run state): keep the console as it grows.
  for _ in $(seq 1200); do
    [ -e "$KLAB_RUN_DIR/$2/console.log" ] || break
    tr -d '\r' <"$KLAB_RUN_DIR/$2/console.log" >"$work/$2.now" 2>/dev/null && mv "$work/$2.now" "$work/$2.log"
    cmp -s "$work/$2.log" "$3" && break
    sleep 0.5
  done
  wait
  "$KLAB" stop "$2" >/dev/null 2>&1
  cmp -s "$3" "$work/$2.log" || { diff "$3" "$work/$2.log" | head -5; return 1; }
}

# Replay 1: to the end; the console says the same.
if out=$(replay_to_end "$rec" rp "$work/recorded.log"); then
  ok "$arch: the replayed console is the recorded one, byte for byte ($(wc -c <"$work/recorded.log") bytes, REPLAY-MARK 42 included)"
else fail "$arch: replayed console" "$out"; fi

# Replay 2: backwards, in gdb.
"$KLAB" replay "$rec" --name rp2 --detach >"$work/replay2" 2>&1 || { fail "$arch: klab replay again" "$(cat "$work/replay2")"; finish; }
export KLAB_TEST_ARCH=$arch KLAB_TEST_PAGEMAP=/bin/true KLAB_TEST_CONSOLE=$KLAB_RUN_DIR/rp2/console.log KLAB_TEST_BREAK=$brk
timeout 900 "$KLAB" gdb rp2 --batch -ex "source $PWD/tests/integration/gdb_replay.py" -ex disconnect >"$work/out" 2>&1
rc=$?
relay "$work/out"
gdb_ran "$arch: reverse debugging" $rc "$work/out" "# gdb_replay.py: done"
"$KLAB" stop rp2 >/dev/null 2>&1

# Typed input (--console-input): a line sent at once into the recording's console.sock (owner-only) runs in
# the guest, and the replay prints the recorded console byte for byte, the answer included. (Reverse
# execution is tested on the first recording, whose console is a file.)
trec=$work/typed
if "$KLAB" boot --arch "$arch" --name trec --record "$trec" --console-input --no-wait --detach >"$work/tboot" 2>&1 \
   && timeout 600 "$KLAB" wait trec --for '/root # ' --timeout 600 >/dev/null 2>&1; then
  sock=$KLAB_RUN_DIR/trec/console.sock
  read -r mode owner <<<"$(stat -c '%a %U' "$sock" 2>/dev/null)"
  [ "$owner" = "$(id -un)" ] && [ $((0$mode & 077)) -eq 0 ] && ok "$arch: --console-input: the recording's console.sock is the owner's alone ($mode)" \
    || fail "$arch: console.sock mode" "$mode $owner"
  typed=$(timeout 60 python3 tests/integration/console.py "$sock" 'echo TYPED-$((7 * 8)) $(cat /proc/sys/kernel/ostype)' 5 | tr -d '\r')
  grep -q '^TYPED-56 Linux$' <<<"$typed" && ok "$arch: --console-input: a line typed into the recording's console runs in the guest" \
    || fail "$arch: typed input" "$(tail -3 <<<"$typed")"
  sleep 1
  tr -d '\r' <"$KLAB_RUN_DIR/trec/console.log" >"$work/typed-recorded.log"
  "$KLAB" stop trec >/dev/null 2>&1
  if out=$(replay_to_end "$trec" trp "$work/typed-recorded.log"); then
    ok "$arch: --console-input: the replay prints the typed session byte for byte ($(wc -c <"$work/typed-recorded.log") bytes, TYPED-56 included)"
  else fail "$arch: typed session replayed" "$out"; fi
else
  fail "$arch: boot --record --console-input" "$(cat "$work/tboot"; tail -2 "$KLAB_RUN_DIR/trec/console.log" 2>/dev/null)"
fi
expect_error "$arch: --console-input without --record" 'is for --record' "$KLAB" boot --arch "$arch" --console-input --dry-run

# Refusals.
expect_error "$arch: a recording is never overwritten" 'exists already' "$KLAB" boot --arch "$arch" --record "$rec" --dry-run --no-wait
expect_error "$arch: --record runs one CPU" 'runs one CPU' "$KLAB" boot --arch "$arch" --record "$work/r2" --smp 2
expect_error "$arch: --record with --swap" 'drop --swap' "$KLAB" boot --arch "$arch" --record "$work/r2" --swap 64M
expect_error "$arch: --record with KVM" 'needs TCG' "$KLAB" boot --arch "$arch" --record "$work/r2" --accel kvm
mkdir -m 700 "$work/notrec"
expect_error "$arch: replay of a folder that is no recording" 'not a finished klab recording' "$KLAB" replay "$work/notrec"
cp -a "$rec" "$work/changed" && sed -i 's/^stamps=[0-9]*/stamps=1/' "$work/changed/recording"
expect_error "$arch: replay after the kernel changed" 'changed since' "$KLAB" replay "$work/changed" --name rp3
# A recording is data: the QEMU it names is not run, this machine's is (and must be the one recorded with).
cp -a "$rec" "$work/evil" && sed -i "s|^qemu=.*|qemu=$work/evil-qemu|" "$work/evil/recording"
printf '#!/bin/sh\ntouch %s/evil-ran\n' "$work" >"$work/evil-qemu"; chmod +x "$work/evil-qemu"
"$KLAB" replay "$work/evil" --name rp4 --dry-run >"$work/evil.out" 2>&1
[ ! -e "$work/evil-ran" ] && ! grep -q evil-qemu "$work/evil.out" && grep -q "qemu-system" "$work/evil.out" \
  && ok "$arch: a recording's qemu= names no program klab runs" || fail "$arch: the manifest's qemu=" "$(head -3 "$work/evil.out")"
chmod 777 "$work/notrec"
expect_error "$arch: replay of a folder others may write" 'writable' "$KLAB" replay "$work/notrec"
finish
