#!/usr/bin/env bash
# klab ptsnap / ptdiff on a real VM, checked against QEMU: a paused guest's tables do not change (two snapshots
# of one stop diff to nothing, exit 0); after the guest ran, every kernel-half change klab reports agrees with
# QEMU's own translation (gva2gpa) of its first page: "+ mapped"/"~ moved" at the PA klab prints, "- unmapped"
# unmapped (arm64: kernel-half changes only). Then the store's refusals: a symlink, a file of another user, junk, a missing name.
#   tests/integration/ptdiff.sh x86_64|arm64
. "$(dirname "$0")/../lib.sh"
arch=$1
case $arch in x86_64|arm64) ;; *) echo "usage: ptdiff.sh x86_64|arm64"; exit 2 ;; esac
export KLAB_RUN_DIR=$(mktemp -d /dev/shm/klab-test-XXXXXX)
work=$(mktemp -d)
export KLAB_PTSNAP_DIR=$work/store
name=ptd-$arch
cleanup() { "$KLAB" stop --all >/dev/null 2>&1; rm -rf "$KLAB_RUN_DIR" "$work"; }
trap cleanup EXIT
"$KLAB" boot --arch "$arch" --name "$name" --no-wait --detach >"$work/boot" 2>&1 || { fail "$arch: boot" "$(cat "$work/boot")"; finish; }
timeout 300 "$KLAB" wait "$name" >/dev/null 2>&1 || { fail "$arch: banner" "no init banner"; finish; }
mon=$KLAB_RUN_DIR/$name/monitor.sock
hmp() { python3 tests/integration/hmp.py "$mon" "$1"; }
hmp stop >/dev/null
"$KLAB" ptsnap save a --vm "$name" >"$work/a" 2>&1 && ok "$arch: ptsnap save a: $(cat "$work/a")" || fail "$arch: ptsnap save" "$(cat "$work/a")"
"$KLAB" ptsnap save b --vm "$name" >/dev/null 2>&1
"$KLAB" ptdiff a b >"$work/same" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(cat "$work/same")" = "no change" ] && ok "$arch: one stop, two snapshots: no change (exit 0)" \
  || fail "$arch: ptdiff of one stop" "rc $rc: $(head -3 "$work/same")"
hmp cont >/dev/null
python3 tests/integration/console.py "$KLAB_RUN_DIR/$name/console.sock" 'ls /proc >/dev/null; cat /proc/meminfo >/dev/null' 3 >/dev/null
hmp stop >/dev/null
"$KLAB" ptdiff a --vm "$name" >"$work/diff" 2>&1; rc=$?
[ $rc -le 1 ] && tail -1 "$work/diff" | grep -qE '^(no change|[0-9]+ changes?: )' && ok "$arch: ptdiff a against now: $(tail -1 "$work/diff")" \
  || fail "$arch: ptdiff against now" "rc $rc: $(tail -3 "$work/diff")"
n=0 good=0 bad=""
while read -r sign range _ what rest; do
  va=${range%-*}
  # gva2gpa and klab's "now" both use CPU 0's current roots; on arm64 QEMU cannot see EL0 pages while the CPU
  # at EL1 has PAN set (klab_qemu_verdict), so there only the kernel half (0xffff...) is asked.
  [ "$arch" = x86_64 ] || [ "${va:2:1}" = f ] || continue
  q=$(hmp "gva2gpa $va" | tr -d '\r')
  case $sign in
    +|~) pa=$(sed -n 's/^PA \(0x[0-9a-f]*\)\( -> \(0x[0-9a-f]*\)\)\{0,1\} .*/\1 \3/p' <<<"$rest")
         set -- $pa; want=${2:-$1}
         [ -n "$want" ] || continue   # scattered: no one PA to check
         n=$((n + 1)); same_pa "$(gpa_of <<<"$q")" "$want" && good=$((good + 1)) || bad="$bad; $va klab $want QEMU $q" ;;
    -) n=$((n + 1)); [[ $q == *nmapped* ]] && good=$((good + 1)) || bad="$bad; $va unmapped, QEMU $q" ;;
  esac
done < <(grep -E '^[-+~] 0x' "$work/diff")
if [ $n -eq 0 ]; then skip "$arch: changes vs QEMU gva2gpa" "the guest changed no mapping QEMU can be asked about this time"
elif [ $n -eq $good ]; then ok "$arch: $n changes agree with QEMU gva2gpa"
else fail "$arch: changes vs gva2gpa" "$good of $n$bad"; fi
hmp cont >/dev/null
# The store's refusals, one line each.
ln -s "$KLAB_PTSNAP_DIR/a" "$KLAB_PTSNAP_DIR/link"
expect_error "$arch: a symlinked snapshot is not followed" 'symlink' "$KLAB" ptdiff link a
cp "$KLAB_PTSNAP_DIR/a" "$KLAB_PTSNAP_DIR/theirs" && chown nobody "$KLAB_PTSNAP_DIR/theirs"
expect_error "$arch: another user's snapshot is refused" 'owned by uid' "$KLAB" ptdiff theirs a
echo junk >"$KLAB_PTSNAP_DIR/junk"
expect_error "$arch: a non-snapshot is refused" 'not a klab page-table snapshot' "$KLAB" ptdiff junk a
expect_error "$arch: a missing snapshot" 'No such file' "$KLAB" ptdiff nosuch a
expect_error "$arch: a bad name" 'not a snapshot name' "$KLAB" ptsnap save '.x' --vm "$name"
finish
