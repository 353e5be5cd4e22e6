"""Checks klab's SVG pictures against independent truths, for tests/integration/svg.sh:
    svg_check.py render SVG PNG         Debian's chromium draws it headless: the PNG has the SVG's size, is
                                        not blank (ink in the title band and in most of the picture), and
                                        shows more than a few colours
    svg_check.py walk SVG VA ARCH MON   a vtop picture: every table's highlighted entry equals QEMU's own
                                        read of that entry (xp), each next table is the previous entry's
                                        output address by the architecture's bits, each index is the VA's
                                        bits at the architecture's shifts, and the PA is QEMU's gva2gpa
    svg_check.py map SVG ARCH MON [N]   a ptdump/ptdiff map: N ranges (from its tooltips, evenly spread) map
                                        their first and last byte where QEMU's gva2gpa says
Each prints one line and exits 0 (agrees), 1 (does not), 2 (cannot check)."""

import os
import re
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "{http://www.w3.org/2000/svg}"


def die(code, msg):
    print(msg)
    sys.exit(code)


def texts(root):
    return ["".join(t.itertext()) for t in root.iter(NS + "text")]


def hmp(mon, *cmds):
    out = subprocess.run([sys.executable, os.path.join(HERE, "hmp.py"), mon] + list(cmds), capture_output=True,
                         text=True, timeout=60).stdout
    return [line.split(" => ", 1)[1] if " => " in line else "" for line in out.splitlines()]


def gva2gpa(mon, va):
    answer = hmp(mon, "gva2gpa 0x%x" % va)[0]
    m = re.search(r"gpa: (?:0x)?([0-9a-f]+)\b", answer)
    return int(m.group(1), 16) if m else None if "nmapped" in answer else "?" + answer


# ---- PNG, decoded with the standard library (PNG spec, ISO/IEC 15948: IHDR, IDAT, filters 0-4) ----------

def png_pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        die(1, "%s is not a PNG" % path)
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            if depth != 8 or colour not in (2, 6):
                die(2, "PNG of depth %d colour type %d: not decoded here" % (depth, colour))
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def render(svg, png):
    root = ET.parse(svg).getroot()
    w, h = int(root.get("width")), int(root.get("height"))
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            "--user-data-dir=" + profile, "--window-size=%d,%d" % (w, h), "--screenshot=" + png,
                            "file://" + os.path.abspath(svg)], capture_output=True, text=True, timeout=120)
    if not os.path.exists(png):
        die(1, "chromium drew nothing (exit %d): %s" % (r.returncode, r.stderr.strip().splitlines()[-1:]))
    pw, ph, bpp, rows = png_pixels(png)
    if (pw, ph) != (w, h):
        die(1, "the PNG is %dx%d, the SVG %dx%d" % (pw, ph, w, h))
    colours, ink_rows = set(), []
    for y in range(0, ph, 2):
        row, ink = rows[y], 0
        for x in range(0, pw, 2):
            px = row[x * bpp:x * bpp + 3]
            colours.add(px)
            ink += px != b"\xff\xff\xff"
        ink_rows.append(ink)
    bands = [sum(ink_rows[i * len(ink_rows) // 4:(i + 1) * len(ink_rows) // 4]) for i in range(4)]
    total = sum(ink_rows) / (len(ink_rows) * ((pw + 1) // 2))
    title_ink = sum(ink_rows[:max(1, 40 // 2)])
    if title_ink == 0 or sum(b > 0 for b in bands) < 3 or total < 0.005 or len(colours) < 4:
        die(1, "blank or near blank: title ink %d, bands %s, %.2f%% ink, %d colours" % (title_ink, bands,
                                                                                       100 * total, len(colours)))
    print("%dx%d drawn: %.1f%% ink, %d colours, ink in %d of 4 bands" % (pw, ph, 100 * total, len(colours),
                                                                        sum(b > 0 for b in bands)))


# ---- a walk -------------------------------------------------------------------------------------------------

def out_address(arch, raw, granule=4096):
    """The next table's (or page's) PA in a table entry: x86 bits 51:12 (SDM Vol. 3A 4.5); arm64 bits 47:N for
    a 2^N-byte granule, and with 64K pages bits 15:12 as PA bits 51:48 (Arm ARM D8.3, FEAT_LPA; zero when the
    PA has 48 bits)."""
    if arch == "x86_64":
        return raw & ((1 << 52) - 1) & ~0xfff
    pa = raw & ((1 << 48) - 1) & ~(granule - 1)
    if granule == 65536:
        pa |= ((raw >> 12) & 0xf) << 48
    return pa


def walk(svg, va, arch, mon):
    root = ET.parse(svg).getroot()
    words = texts(root)
    head = next((t for t in words if t.startswith("VA 0x")), None)
    if not head or int(head.split()[1], 16) != va:
        die(1, "the title does not name VA %#x: %s" % (va, head))
    geo = next((t for t in words if "-bit VA" in t), "")
    m = re.search(r"(\d+)K granule, (\d+)-bit VA", geo)
    if not m or m.group(1) not in ("4", "16", "64") or (arch == "x86_64" and m.group(1) != "4"):
        die(2, "not a walk of a granule the architecture has: %s" % geo)
    # A 2^s-byte granule resolves s-3 VA bits per level; the top level takes what is left of the VA (Arm ARM
    # D8.2; seed 002: 64K pages, 48-bit VA -> 3 levels, pgd_index = (addr >> 42) & 63).
    granule, va_bits = int(m.group(1)) * 1024, int(m.group(2))
    s = granule.bit_length() - 1
    per = s - 3
    nlevels = -(-(va_bits - s) // per)
    tables = [int(x, 16) for x in re.findall(r"at PA 0x([0-9a-f]+), \d+ entries", " | ".join(words))]
    entries = [(int(i), int(r, 16)) for i, r in (re.match(r"\[(\d+)\] ([0-9a-f]{16})$", t).groups()
                                                  for t in words if re.match(r"\[\d+\] [0-9a-f]{16}$", t))]
    if not tables or len(tables) != len(entries):
        die(1, "%d tables but %d highlighted entries" % (len(tables), len(entries)))
    for lvl, (table, (index, raw)) in enumerate(zip(tables, entries)):
        shift = s + per * (nlevels - 1 - lvl)
        width = min(per, va_bits - shift)
        want = (va >> shift) & ((1 << width) - 1)
        if index != want:
            die(1, "level %d: index %d, but VA bits [%d:%d] are %d" % (lvl, index, shift + width - 1, shift, want))
        q = hmp(mon, "xp /1gx 0x%x" % (table + 8 * index))[0]
        qm = re.search(r":\s*0x([0-9a-f]+)", q)
        if not qm or int(qm.group(1), 16) != raw:
            die(1, "level %d: the picture shows %016x at %#x, QEMU reads %s" % (lvl, raw, table + 8 * index, q))
        if lvl + 1 < len(tables) and tables[lvl + 1] != out_address(arch, raw, granule):
            die(1, "level %d: entry %016x points at %#x, the next table is drawn at %#x" % (
                lvl, raw, out_address(arch, raw, granule), tables[lvl + 1]))
    q = gva2gpa(mon, va)
    if isinstance(q, str):
        die(2, "QEMU gave no answer: %s" % q)
    drawn = re.search(r"-> PA 0x([0-9a-f]+)$", head)
    if q is None:
        if drawn or not head.endswith("not mapped"):
            die(1, "QEMU says unmapped, the picture: %s" % head)
        print("%#x: not mapped, as QEMU says; %d entries as QEMU reads them" % (va, len(entries)))
        return
    if not drawn or int(drawn.group(1), 16) != q:
        die(1, "QEMU's gva2gpa %#x, the picture: %s" % (q, head))
    print("%#x -> %#x as QEMU's gva2gpa; %d entries as QEMU reads them, indices from the VA (%dK granule, %d-bit VA)"
          % (va, q, len(entries), granule // 1024, va_bits))


# ---- a map --------------------------------------------------------------------------------------------------

def map_ranges(svg, arch, mon, n):
    root = ET.parse(svg).getroot()
    tips = ["".join(t.itertext()) for r in root.iter(NS + "rect") for t in r.findall(NS + "title")]
    spans = []
    for tip in tips:
        m = re.match(r"0x([0-9a-f]+)-0x([0-9a-f]+) +\S+ +PA 0x([0-9a-f]+) ", tip)
        if m:
            start, end, pa = (int(x, 16) for x in m.groups())
            # QEMU translates with the CPU's current rights: an arm64 CPU at EL1 with PAN cannot see EL0's pages.
            if arch == "x86_64" or start >> 63:
                spans.append((start, end, pa))
    if not spans:
        die(1, "no range in the map's tooltips")
    picked = [spans[i * len(spans) // min(n, len(spans))] for i in range(min(n, len(spans)))]
    for start, end, pa in picked:
        for va, want in ((start, pa), (end - 1, pa + (end - 1 - start))):
            q = gva2gpa(mon, va)
            if q != want:
                die(1, "%#x: the map says PA %#x, QEMU's gva2gpa %s" % (va, want, q if isinstance(q, str) else
                                                                        "unmapped" if q is None else hex(q)))
    print("%d of %d ranges: first and last byte at the PA QEMU's gva2gpa gives" % (len(picked), len(spans)))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        die(2, __doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "render" and len(args) == 2:
            render(*args)
        elif cmd == "walk" and len(args) == 4:
            walk(args[0], int(args[1], 16), args[2], args[3])
        elif cmd == "map" and len(args) in (3, 4):
            map_ranges(args[0], args[1], args[2], int(args[3]) if len(args) == 4 else 20)
        else:
            die(2, __doc__)
    except (ET.ParseError, OSError, subprocess.SubprocessError) as e:
        die(1, "%s: %s" % (cmd, e))
