"""What this kernel keeps in non-present page-table entries depends on its version and its config: this file
reads them for libklab's decoder (gdb/lib/swp.c) — the version from init_uts_ns, MAX_SWAPFILES from the DWARF
of swap_info[MAX_SWAPFILES], the config from the file beside the vmlinux (Debian's /boot/config, a source
build's .config) — and names a swap area by the path of swap_info[type]->swap_file. No bit layout lives here."""

import ctypes
import os
import re

import gdb

from klab import kernel, lib

_cache = {}


def _vmlinux():
    objfiles = gdb.objfiles()
    return objfiles[0].filename if objfiles else None


def kernel_config(vmlinux):
    """{CONFIG_X: value} from `config` or `.config` beside the vmlinux (klab's kernels keep one there), or None."""
    if not vmlinux:
        return None
    for name in ("config", ".config"):
        path = os.path.join(os.path.dirname(vmlinux), name)
        try:
            with open(path, errors="replace") as f:
                text = f.read(1 << 22)
        except OSError:
            continue
        if "CONFIG_" not in text:
            continue
        return dict(m.groups() for m in re.finditer(r"^(CONFIG_\w+)=(.*)$", text, re.M))
    return None


def kernel_version(what):
    """major << 16 | minor << 8 from init_uts_ns.name.release ("6.1.0-57-cloud-amd64", "6.12.57+deb12-..."), 0
    when the kernel has none."""
    try:
        release = kernel.read_string(gdb.parse_and_eval("init_uts_ns.name.release"), what, "init_uts_ns")
    except gdb.error:
        return 0
    m = re.match(r"(\d+)\.(\d+)", release)
    return int(m.group(1)) << 16 | int(m.group(2)) << 8 if m else 0


def max_swapfiles():
    """ARRAY_SIZE(swap_info): mm/swapfile.c declares it swap_info[MAX_SWAPFILES]; 0 when not known."""
    sym = gdb.lookup_static_symbol("swap_info") or gdb.lookup_global_symbol("swap_info")
    if sym is None:
        return 0
    t = sym.type.strip_typedefs()
    if t.code != gdb.TYPE_CODE_ARRAY:
        return 0
    lo, hi = t.range()
    return hi - lo + 1


def kernel_mm(regs, what):
    """struct klab_kernel_mm for the kernel in this session."""
    vmlinux = _vmlinux()
    if vmlinux not in _cache:
        config = kernel_config(vmlinux)
        on = known = 0
        if config is not None:
            names = lib.lib().klab_kconfig_names()   # struct klab_kernel_mm's bits, in libklab's order
            i = 0
            while names[i]:
                known |= 1 << i
                on |= (1 << i) if config.get(names[i].decode()) == "y" else 0
                i += 1
        _cache[vmlinux] = (kernel_version(what), max_swapfiles(), on, known, config)
    version, nswap, on, known, config = _cache[vmlinux]
    k = lib.KernelMm(version=version, max_swapfiles=nswap, config=on, config_known=known)
    if regs is not None:
        # MAX_PHYSMEM_BITS is libklab's rule, from the registers and CONFIG_ARM64_PA_BITS / CONFIG_ARM64_LPA2.
        pa_bits = (config or {}).get("CONFIG_ARM64_PA_BITS", "0")
        k.max_physmem_bits = lib.lib().klab_max_physmem_bits(ctypes.byref(regs), int(pa_bits) if pa_bits.isdigit() else 0,
                                                             (config or {}).get("CONFIG_ARM64_LPA2") == "y")
    return k


def d_path(path, what, limit=64):
    """The path of a struct path, as d_path() builds it: dentry names up to the mount's root, then on from
    the mount point in the parent mount (fs/d_path.c prepend_path, without chroot). Read with kread, so it
    works while the CPU runs user code too."""
    dentry, mnt = int(path["dentry"]), int(path["mnt"])
    mount_addr = mnt - kernel.field_offset("struct mount", "mnt", what)
    parts = []
    for _ in range(limit):
        mount = kernel.kstruct(mount_addr, "struct mount", what, "a struct mount")
        if dentry == int(mount["mnt"]["mnt_root"]):
            parent = int(mount["mnt_parent"])
            if parent == mount_addr:
                return "/" + "/".join(reversed(parts))
            dentry, mount_addr = int(mount["mnt_mountpoint"]), parent
            continue
        d = kernel.kstruct(dentry, "struct dentry", what, "a dentry")
        parts.append(kernel.kstring(int(d["d_name"]["name"]), what, "a dentry name"))
        if int(d["d_parent"]) == dentry:
            return "/" + "/".join(reversed(parts))
        dentry = int(d["d_parent"])
    return None


def swap_name(swap_type, what="vtop"):
    """The file or device of swap area swap_type (swap_info[type]->swap_file), or None when klab cannot say."""
    try:
        ptr = kernel.kread_u64(kernel.address_of("swap_info", what) + 8 * swap_type, what, "swap_info[]")
        if not ptr:
            return None
        si = kernel.kstruct(ptr, "struct swap_info_struct", what, "swap_info[%d]" % swap_type)
        if not int(si["swap_file"]):
            return None
        f = kernel.kstruct(int(si["swap_file"]), "struct file", what, "the swap file")
        return d_path(f["f_path"], what)
    except (gdb.error, gdb.GdbError, ValueError):
        return None


def describe_walk(walk, regs, what):
    """The line that says what a walk's non-present entry keeps (klab_format_swp), or "" for none."""
    s = lib.walk_swp(walk, kernel_mm(regs, what), what)
    if s is None:
        return ""
    name = swap_name(s.type) if lib.swp_kind_name(s) == "swap" else None
    return lib.format_swp(s, name)
