#!/usr/bin/env bash
# Builds libklab's fuzz targets with clang's libFuzzer, ASan and UBSan, and runs each for a bounded time
# (FUZZ_SECONDS, default 15). Prints "ok - fuzz NAME: ..." or "not ok - fuzz NAME: ..." per target; a
# crashing input is kept in build/fuzz/ and named.
cd "$(dirname "$0")/../.." || exit 2
secs=${FUZZ_SECONDS:-15}
out=build/fuzz
mkdir -p "$out"
flags=(-std=c11 -Wall -Wextra -Werror -D_FILE_OFFSET_BITS=64 -O1 -g -Igdb/lib
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
libsrc=(gdb/lib/*.c)

# Walker seed: x86_64 4-level tables mapping 0xffffffff81000000 through a 2M and a 4K page.
seed_walk() {
  python3 - "$1" <<'PY'
import struct, sys
regs = struct.pack('<7Q', 0, 0x1000, 0, 0x800, 0x1000, 0x1000, 0x0000001020001010)
ram = bytearray(0x8000)
def put(t, i, v): ram[t + 8 * i:t + 8 * i + 8] = struct.pack('<Q', v)
put(0x1000, 511, 0x2003); put(0x2000, 510, 0x3003); put(0x3000, 8, 0x4003); put(0x3000, 9, 0x200083)
for i in range(8): put(0x4000, i, 0x100000 + 0x1000 * i | 3)
open(sys.argv[1], 'wb').write(regs + bytes(ram))
PY
}

# RSP seed: what QEMU says on connect and to the first requests.
seed_rsp() {
  printf '%s' '$T02thread:01;#04+$PacketSize=1000;qXfer:features:read+#ab+$l<target><reg name="pc" bitsize="64"/></target>#00+$0000004000000000#00+$E14#aa$O6869#00$OK#9a$T05thread:01;hwbreak:;#00' > "$1"
}

# Text seed: a run state, a room file and a checks file, one after the other.
seed_text() {
  printf 'name=a\narch=x86_64\nqemu_pid=12\nsupervisor_pid=11\ngdb=tcp:127.0.0.1:1234\ngdb_port=1234\nkernel=/k\nvmlinux=/v\nkaslr=1\nram_region=0x0 0x8000000 0x0\nmem_bytes=1073741824\nname = demo\nkernel = x86_64\ntask = myhello\ntime_limit = 90m\nmemory = 256M\ncpus = 1\ncandidates = alice bob\nprogram = t.c\ncheck loads : run insmod /lib/modules/*.ko\ncheck read : output cat /dev/myhello = 111\ncheck printk : console myhello open\n' >"$1"
}

# Dump seed: an x86-64 ELF core with a VMCOREINFO note and one PT_LOAD of 4 KiB at PA 0x1000.
seed_dump() {
  python3 - "$1" <<'PY'
import struct, sys
vmci = b"OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\nNUMBER(phys_base)=0\nNUMBER(pgtable_l5_enabled)=0\n"
note = struct.pack("<3I", 11, len(vmci), 0) + b"VMCOREINFO\0\0" + vmci + b"\0" * (-len(vmci) % 4)
phoff, noteoff = 64, 64 + 2 * 56
loadoff = noteoff + len(note)
eh = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, 0, 0, 64, 56, 2, 0, 0, 0)
ph_note = struct.pack("<IIQQQQQQ", 4, 0, noteoff, 0, 0, len(note), len(note), 4)
ph_load = struct.pack("<IIQQQQQQ", 1, 7, loadoff, 0, 0x1000, 0x1000, 0x1000, 0x1000)
open(sys.argv[1], "wb").write(eh + ph_note + ph_load + note + b"\0" * 0x1000)
# The same as a kdump-compressed file (QEMU include/sysemu/dump.h): header, sub-header, two bitmaps, two page
# descriptors (PFN 1 zlib-compressed, PFN 2 raw), VMCOREINFO and the notes, the pages.
import zlib
bs = 4096
hdr = b"KDUMP   " + struct.pack("<I", 6) + b"\0" * (65 * 4) + b"x86_64".ljust(65, b"\0") + b"\0" * 65 + b"\0" * 22
hdr += struct.pack("<10I", 0, bs, 1, 2, 8, 2, 0, 0, 0, 1)
z = zlib.compress(b"\x11" * bs)
data = 4 * bs + 2 * 24
vmoff, noteoff2 = data + len(z) + bs, data + len(z) + bs + len(vmci)
sub = struct.pack("<QIIQQQQQQQQQQQ", 0, 1, 0, 0, 0, vmoff, len(vmci), noteoff2, len(note), 0, 0, 0, 8, 8)
bitmap = bytes([0x06]) + b"\0" * (bs - 1)
descs = struct.pack("<QIIQ", data, len(z), 1, 0) + struct.pack("<QIIQ", data + len(z), bs, 0, 0)
out = hdr.ljust(bs, b"\0") + sub.ljust(bs, b"\0") + bitmap + bitmap + descs + z + b"\x22" * bs + vmci + note
open(sys.argv[1] + "-kdump", "wb").write(out)
PY
}

seed_ptsnap() {
  printf 'klab-ptsnap 1\narch x86_64\npid -1\nroots 0x1000 0x0\nlabel seed\nr M CR3 0x400000 0x402000 0x5000000 0x1000 2 pte 1 12 rw-/rw- 0x8000000005000067 4K-page P RW USER\nr B CR3 0xffff888000000000 0xffff888000200000 0x0 0x0 0 pmd 2 12 ---/--- 0x80 reserved\nranges 2\n' >"$1"
}

# The text parsers live in vm/run and vm/exam (run state, room file, checks): with the rest of klab but its main().
vmsrc=($(ls vm/*/*.c) rootfs/newc.c rootfs/gzseg.c rootfs/initramfs.c rootfs/init_script.c)
status=0
for name in rsp walk text dump ptsnap; do
  bin=$out/fuzz_$name
  extra=(-lz -llzo2 -lsnappy); [ $name = text ] && extra+=(-Ivm -I. "${vmsrc[@]}" -lvirt -lvirt-qemu -ldw -lelf)
  if ! clang "${flags[@]}" -o "$bin" "tests/fuzz/fuzz_$name.c" "${libsrc[@]}" "${extra[@]}" 2>"$out/build-$name.log"; then
    echo "not ok - fuzz $name: build failed (see $out/build-$name.log)"
    status=1
    continue
  fi
  corpus=$out/corpus-$name
  mkdir -p "$corpus"
  "seed_$name" "$corpus/seed"
  log=$out/run-$name.log
  if (cd "$out" && "./fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="crash-$name-" "corpus-$name") >"$log" 2>&1; then
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+')
    if [ -n "$runs" ] && [ "$runs" -gt 0 ]; then
      echo "ok - fuzz $name: $runs inputs in ${secs}s, no finding"
    else
      echo "not ok - fuzz $name: libFuzzer reported no run count (see $log)"
      status=1
    fi
  else
    art=$(ls -t "$out"/crash-"$name"-* 2>/dev/null | head -1)
    echo "not ok - fuzz $name: finding ${art:-(see $log)}"
    grep -m3 -E 'ERROR|runtime error|SUMMARY' "$log" | sed 's/^/    /'
    status=1
  fi
done
exit $status
