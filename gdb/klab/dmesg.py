"""klab dmesg: the kernel log read from the printk ringbuffer in memory (kernel/printk/printk_ringbuffer.{c,h},
the lockless layout of v5.10 and later), printed as the console prints it. Every offset and size comes from
the kernel's DWARF; the reading rules are the kernel's own (desc_read, get_data)."""


import gdb

from klab.command import KlabCommand
from klab import kernel

# syslog levels, include/linux/kern_levels.h; the names are util-linux dmesg's --level names
LEVELS = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
# enum desc_state (printk_ringbuffer.h): only committed and finalized records are readable
_DESC_COMMITTED, _DESC_FINALIZED = 1, 2
_LPOS_DATALESS = 1   # printk_ringbuffer.h LPOS_DATALESS(lpos): ((lpos) & 1UL)


def parse_levels(text, what):
    """util-linux dmesg's --level: a comma list of names or numbers; NAME+ is that level and the more severe
    ones, +NAME that level and the less severe ones."""
    wanted = set()
    for word in text.split(","):
        up = word.endswith("+")
        down = word.startswith("+")
        name = word.strip("+")
        if name.isdigit() and int(name) < len(LEVELS):
            n = int(name)
        elif name in LEVELS:
            n = LEVELS.index(name)
        else:
            raise kernel.error(what, "unknown level '%s' (one of %s, or 0-7; NAME+ for it and worse)", word,
                               ",".join(LEVELS))
        wanted |= set(range(n + 1)) if up else set(range(n, 8)) if down else {n}
    return wanted


def _field(t, name, what):
    for f in t.strip_typedefs().fields():
        if f.name == name:
            return f
    raise kernel.error(what, "%s has no member %s in this kernel", t, name)


def _bitfield(raw, t, name, what):
    f = _field(t, name, what)
    byte, bit = f.bitpos // 8, f.bitpos % 8
    return raw[byte] >> bit & ((1 << f.bitsize) - 1)


def _u(raw, off, size):
    return int.from_bytes(raw[off:off + size], "little")


class Ring:
    """The ringbuffer `prb` points at, its three arrays read whole: descriptors, infos and text."""

    def __init__(self, what):
        self.what = what
        prb = kernel.kread_u64(kernel.address_of("prb", what), what, "prb")   # kread: also from user mode
        rb = kernel.kstruct(prb, "struct printk_ringbuffer", what, "the printk ringbuffer")
        dr, tr = rb["desc_ring"], rb["text_data_ring"]
        self.count_bits = int(dr["count_bits"])
        self.size_bits = int(tr["size_bits"])
        # log_buf_len= is at most 2^31 bytes (kernel/printk/printk.c), one descriptor per 32 bytes on average
        # (PRB_AVGBITS 5): anything past that is a corrupt ringbuffer, not a reason to read gigabytes
        if not 0 < self.count_bits <= 26 or not 0 < self.size_bits <= 31:
            raise kernel.error(what, "the printk ringbuffer at %x looks corrupt (count_bits %d, size_bits %d)",
                               prb, self.count_bits, self.size_bits)
        self.head_id, self.tail_id = int(dr["head_id"]["counter"]), int(dr["tail_id"]["counter"])
        self.desc_t = kernel.lookup_type("struct prb_desc", what)
        self.info_t = kernel.lookup_type("struct printk_info", what)
        n = 1 << self.count_bits
        self.descs = kernel.kread(int(dr["descs"]), n * self.desc_t.sizeof, what, "the printk descriptors")
        self.infos = kernel.kread(int(dr["infos"]), n * self.info_t.sizeof, what, "the printk infos")
        self.text = kernel.kread(int(tr["data"]), 1 << self.size_bits, what, "the printk text")
        self.sv_bits = 8 * kernel.lookup_type("unsigned long", what).sizeof
        lpos = _field(self.desc_t, "text_blk_lpos", what)
        self.lpos_off = lpos.bitpos // 8
        blk_t = lpos.type.strip_typedefs()
        self.begin_off = _field(blk_t, "begin", what).bitpos // 8
        self.next_off = _field(blk_t, "next", what).bitpos // 8
        self.info_off = {f: _field(self.info_t, f, what).bitpos // 8 for f in ("seq", "ts_nsec", "text_len",
                                                                            "caller_id")}
        # the data block: an unsigned long id, then the text (printk_ringbuffer.c struct prb_data_block)
        self.id_size = self.sv_bits // 8

    def _ids(self):
        """Descriptor ids from the tail to the head, in id arithmetic (they wrap at DESC_ID_MASK)."""
        mask = (1 << (self.sv_bits - 2)) - 1
        span = (self.head_id - self.tail_id) & mask
        if span >= 1 << self.count_bits:
            raise kernel.error(self.what, "the printk ringbuffer's tail %x and head %x are %d apart, more than "
                               "its %d descriptors", self.tail_id, self.head_id, span, 1 << self.count_bits)
        for k in range(span + 1):
            yield (self.tail_id + k) & mask

    def _data(self, begin, nxt):
        """The text of a data block (get_data): it lies whole at begin, or, when it would wrap, at 0."""
        if begin & _LPOS_DATALESS or nxt & _LPOS_DATALESS:
            return b""
        size = 1 << self.size_bits
        if begin >> self.size_bits == nxt >> self.size_bits:
            start, end = begin & (size - 1), nxt - begin + (begin & (size - 1))
        elif (begin + size) >> self.size_bits == nxt >> self.size_bits:
            start, end = 0, nxt & (size - 1)
        else:
            return None
        if end - start < self.id_size or end > size:
            return None
        return self.text[start + self.id_size:end]

    def records(self):
        """(seq, ts_nsec, level, caller_id, text) of every readable record, oldest first."""
        n = 1 << self.count_bits
        shift = self.sv_bits - 2
        for did in self._ids():
            i = did & (n - 1)
            d = self.descs[i * self.desc_t.sizeof:(i + 1) * self.desc_t.sizeof]
            sv = _u(d, 0, self.sv_bits // 8)
            # desc_read: the state variable must hold this id and a committed or finalized state
            if sv & ((1 << shift) - 1) != did or sv >> shift not in (_DESC_COMMITTED, _DESC_FINALIZED):
                continue
            info = self.infos[i * self.info_t.sizeof:(i + 1) * self.info_t.sizeof]
            text = self._data(_u(d, self.lpos_off + self.begin_off, self.sv_bits // 8),
                              _u(d, self.lpos_off + self.next_off, self.sv_bits // 8))
            if text is None:
                continue
            text_len = _u(info, self.info_off["text_len"], 2)
            yield (_u(info, self.info_off["seq"], 8), _u(info, self.info_off["ts_nsec"], 8),
                   _bitfield(info, self.info_t, "level", self.what), _u(info, self.info_off["caller_id"], 4),
                   text[:text_len].decode(errors="replace"))


def lines(record):
    """A record as the console prints it (printk.c record_print_text): the time prefix on each of its lines."""
    _, ts, _, _, text = record
    prefix = "[%5d.%06d] " % (ts // 1000000000, ts % 1000000000 // 1000)
    return [prefix + line for line in text.split("\n")]


def _parse(arg, what):
    words = gdb.string_to_argv(arg)
    opts = {"levels": None, "since": None, "n": None}
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("--level", "--since", "-n") and i + 1 < len(words):
            v = words[i + 1]
            if w == "--level":
                opts["levels"] = parse_levels(v, what)
            else:
                try:
                    opts["since" if w == "--since" else "n"] = float(v) if w == "--since" else int(v, 0)
                except ValueError:
                    raise kernel.error(what, "%s wants a number, not '%s'", w, v)
                if w == "-n" and opts["n"] < 0:
                    raise kernel.error(what, "-n wants a count of 0 or more, not %s", v)
            i += 2
            continue
        raise kernel.error(what, "usage: klab dmesg [--level L[,L...]] [--since SECONDS] [-n N]")
    return opts


class KlabDmesg(KlabCommand):
    """The kernel log from the printk ringbuffer in memory, as the console prints it.

Usage: klab dmesg [--level L[,L...]] [--since SECONDS] [-n N]
  --level   only these levels: emerg alert crit err warn notice info debug, or 0-7; NAME+ is that level
            and the more severe ones (err+ = emerg,alert,crit,err), +NAME that level and the less severe
  --since   only records stamped at or after SECONDS since boot
  -n N      only the last N records (after the other filters)
Reads the descriptors, infos and text of the ringbuffer `prb` points at (kernel/printk/printk_ringbuffer.c,
v5.10+): records still being written are skipped, as the kernel's own readers skip them."""

    OPTIONS = ("--level", "--since", "-n")

    def __init__(self):
        super().__init__("klab dmesg")

    def invoke(self, arg, from_tty):
        what = "dmesg"
        opts = _parse(arg, what)
        if not gdb.selected_inferior().pid:
            raise kernel.error(what, "no process attached (start with `klab gdb` or `target remote`)")
        if not kernel.has_symbol("prb"):
            raise kernel.error(what, "this kernel has no printk ringbuffer (prb): v5.10 or later is needed")
        recs = [r for r in Ring(what).records()
                if (opts["levels"] is None or r[2] in opts["levels"])
                and (opts["since"] is None or r[1] >= opts["since"] * 1e9)]
        if opts["n"] is not None:
            recs = recs[len(recs) - opts["n"]:] if opts["n"] else []
        gdb.write("".join(line + "\n" for r in recs for line in lines(r)))


KlabDmesg()
