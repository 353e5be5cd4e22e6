"""Module symbols: when the kernel loads a module, add its .ko's symbols at the addresses the module got,
as Linux's scripts/gdb lx-symbols does, so `break hello_open` (pending until then) works.

A breakpoint on do_init_module (kernel/module/main.c) fires after the module's sections are placed and
their addresses published in mod->sect_attrs, before its init runs. The .ko is looked up by module name in
$KLAB_MODULE_PATH (colon-separated folders), klab's build/modules, and the folder of vmlinux."""

import atexit
import os
import re
import shutil
import subprocess
import tempfile

import gdb

from klab import arch, kernel, lib, vm

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_loaded = {}          # module name -> (path, .text address)
_init_placed = {}     # module name -> its sections, while its .init.* sections are still placed in gdb
_breakpoint = None


def search_path():
    dirs = [d for d in os.environ.get("KLAB_MODULE_PATH", "").split(":") if d]
    # kernels/module.sh builds into build/modules/ of the folder it ran in; a clone's own build/ as well.
    dirs.append(os.path.join(os.getcwd(), "build", "modules"))
    dirs.append(os.path.join(_ROOT, "build", "modules"))
    objfile = gdb.objfiles()[0] if gdb.objfiles() else None
    if objfile is not None:
        dirs.append(os.path.dirname(objfile.filename))
    return dirs


def find_ko(name):
    """The newest <name>.ko under the search path (module names use _ where file names may use -)."""
    wanted = {name + ".ko", name.replace("_", "-") + ".ko"}
    best = None
    for d in search_path():
        for top, _, files in os.walk(d):
            for f in files:
                if f in wanted:
                    p = os.path.join(top, f)
                    if best is None or os.path.getmtime(p) > os.path.getmtime(best):
                        best = p
    return best


def _sections(mod):
    """{section name: address} from mod->sect_attrs (kernel/module/sysfs.c)."""
    attrs = mod["sect_attrs"]
    if not int(attrs):
        return {}
    out = {}
    for i in range(int(attrs["nsections"])):
        a = attrs["attrs"][i]
        name = a["battr"]["attr"]["name"].string() if kernel.has_field(a.type, "battr") else a["name"].string()
        out[name] = int(a["address"]) & kernel.MASK64
    return out


_LD = {"x86_64": "x86_64-linux-gnu-ld", "arm64": "aarch64-linux-gnu-ld"}
_placed_dir = None
_placed_count = 0


def _placed_copy(path, sections):
    """The .ko linked at the addresses the kernel gave its sections (an ET_EXEC that ld has relocated, debug
    sections included), or None when that cannot be made. gdb relocates a .ko's DWARF itself when given
    -s NAME ADDR, but gdb 13 places the functions of a second text section (.init.text, .exit.text) at
    .text's address in the two-unit modules of v6.12 (scripts/module-common.c is linked into every .ko): a
    pc in .text was then named after an init function."""
    global _placed_dir
    ld = shutil.which(_LD.get(arch.current().name, "ld"))
    if ld is None:
        return None
    if _placed_dir is None:
        _placed_dir = tempfile.mkdtemp(prefix="klab-modules-")   # 0700, ours: nobody else writes in it
        atexit.register(shutil.rmtree, _placed_dir, True)
    name = os.path.basename(path)
    script = os.path.join(_placed_dir, name + ".ld")
    # a new name each time: a module rebuilt and loaded again at the same .text (klab reset) must not reach
    # gdb through a BFD it still caches under the old file's name
    global _placed_count
    _placed_count += 1
    out = os.path.join(_placed_dir, name + ".%x.%d.elf" % (sections[".text"], _placed_count))
    lines = ["SECTIONS {"]
    for sec, addr in sorted(sections.items(), key=lambda kv: kv[1]):
        if addr and not sec.startswith(".note") and re.fullmatch(r"[A-Za-z0-9_.]+", sec):
            lines.append("  %s 0x%x : { *(%s) }" % (sec, addr, sec))
    lines.append("}")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    # calls into the kernel stay unresolved (no code is run or read from this file: only its symbols)
    r = subprocess.run([ld, "-o", out, "--unresolved-symbols=ignore-all", "--noinhibit-exec", "-T", script, path],
                       capture_output=True, text=True)
    return out if os.path.isfile(out) and os.path.getsize(out) else None


def load(mod, quiet=False):
    """Adds the symbols of the module mod (a struct module value); returns a line saying what happened."""
    name = mod["name"].string()
    path = find_ko(name)
    if path is None:
        return "klab: module %s loaded; no %s.ko found (set KLAB_MODULE_PATH) - no symbols" % (name, name)
    sections = _sections(mod)
    text = sections.get(".text")
    if text is None:
        return "klab: module %s has no .text address in sect_attrs - no symbols" % name
    if _loaded.get(name) == (path, text):
        return None
    # A module loaded before this one has run its init and the kernel has freed its .init.* memory
    # (kernel/module/main.c do_init_module), which module_alloc hands out again, to this module's .text as
    # like as not: its stale .init.text would then name this module's code. Place it again without them.
    for other in list(_init_placed):
        if other != name and other in _loaded:
            _place(other, _loaded[other][0], _retired(_init_placed[other]))
        _init_placed.pop(other, None)
    _place(name, path, sections)
    if any(s.startswith(".init") for s in sections):
        _init_placed[name] = sections
    return "klab: symbols of module %s from %s (.text at %x)" % (name, path, text)


def text_of(mod):
    """The .text address of a struct module value (0 when sect_attrs has none)."""
    return _sections(mod).get(".text", 0)


_hooked = set()       # modules whose symbols came from the do_init_module breakpoint: loaded while attached


def loaded_before_attach():
    """Modules gdb has symbols for that the kernel had before this gdb attached (klab modules placed them):
    only those can be in a snapshot's machine too; one loaded while attached came after any restore."""
    return set(_loaded) - _hooked


def placed_in_machine(names, what):
    """{name: .text} of the modules of names that the kernel's module list has, the list walked with raw reads
    (kread: the RAM file when klab started the VM), which a reset's reattach can afford."""
    out = {}
    if not names:
        return out
    head = kernel.address_of("modules", what)
    list_off = kernel.field_offset("struct module", "list", what)
    name_off = kernel.field_offset("struct module", "name", what)
    node = kernel.kread_u64(head, what, "the module list")
    for _ in range(1 << 12):
        if node == head or not node:
            return out
        mod = (node - list_off) & kernel.MASK64
        # MODULE_NAME_LEN is 64 - sizeof(unsigned long) (include/linux/module.h)
        name = kernel.kread(mod + name_off, 56, what, "a module name").split(b"\0")[0].decode(errors="replace")
        if name in names:
            out[name] = text_of(kernel.kstruct(mod, "struct module", what, "a struct module"))
        node = kernel.kread_u64(node, what, "a module list link")
    raise kernel.error(what, "the module list does not close")


def forget(still_placed):
    """After the machine started again (klab reset): the symbols of every module placed for the old machine
    go, but those of a module still_placed ({name: .text}) names at the same .text. Returns the names kept."""
    kept = []
    for name, (path, text) in list(_loaded.items()):
        if still_placed.get(name) == text:
            kept.append(name)
            continue
        try:
            gdb.execute("remove-symbol-file -a 0x%x" % text, to_string=True)
        except gdb.error:
            pass
        del _loaded[name]
        _init_placed.pop(name, None)
        _hooked.discard(name)
    return sorted(kept)


def _retired(sections):
    """The sections with .init.* moved out of the kernel's way, to distinct pages below 64K: no kernel pc and,
    below mmap_min_addr, no user pc is there (left out of the link script, ld would put them somewhere after
    .text, into other code)."""
    low = iter(range(0x1000, 0x10000, 0x1000))
    return {s: (next(low, 0) if s.startswith(".init") else a) for s, a in sections.items()}


def _place(name, path, sections):
    """The module's symbols in gdb at the sections' addresses (replacing what was placed for it before)."""
    text = sections[".text"]
    if name in _loaded:
        gdb.execute("remove-symbol-file -a 0x%x" % _loaded[name][1], to_string=True)
    placed = _placed_copy(path, sections)
    if placed is not None:
        gdb.execute("add-symbol-file %s" % placed, to_string=True)
    else:
        extra = " ".join("-s %s 0x%x" % (s, a) for s, a in sorted(sections.items())
                         if s != ".text" and not s.startswith(".note") and a)
        gdb.execute("add-symbol-file %s 0x%x %s" % (path, text, extra), to_string=True)
    _loaded[name] = (path, text)


class _LoadBreakpoint(gdb.Breakpoint):
    def stop(self):
        # do_init_module(struct module *mod): at its first instruction the argument is still in the first
        # argument register of the calling convention (AAPCS64 x0, SysV AMD64 rdi).
        reg = arch.current().first_arg_reg
        try:
            mod = kernel.value_at(lib.reg(reg), "struct module", "modules")
            line = load(mod)
            _hooked.add(mod["name"].string())
        except (gdb.error, gdb.GdbError) as e:
            line = "klab: module symbols not loaded: %s" % e
        if line:
            gdb.write(line + "\n")
        return False


def arm():
    """(Re)places the breakpoint on do_init_module at its current address (after KASLR moved symbols)."""
    global _breakpoint
    if _breakpoint is not None and _breakpoint.is_valid():
        _breakpoint.delete()
    _breakpoint = None
    if not kernel.has_symbol("do_init_module"):
        return
    # A hardware breakpoint: a software one would be written into memory before the kernel is even
    # decompressed there (klab gdb attaches at the first instruction) and then be lost or fail to insert.
    _breakpoint = _LoadBreakpoint("*0x%x" % kernel.address_of("do_init_module", "modules"),
                                  type=gdb.BP_HARDWARE_BREAKPOINT, internal=True)


def loaded_modules(what):
    """Every module on the kernel's modules list."""
    head = kernel.address_of("modules", what)
    return kernel.list_entries(head, "struct module", "list", what)


class KlabModules(gdb.Command):
    """List the kernel's modules and load the symbols of those whose .ko klab finds.

Usage: klab modules
New modules get their symbols by themselves when the kernel loads them (a breakpoint on do_init_module);
this command does it for modules loaded before gdb attached. .ko files are searched in $KLAB_MODULE_PATH,
klab's build/modules and vmlinux's folder."""

    def __init__(self):
        super().__init__("klab modules", gdb.COMMAND_FILES)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("klab modules: takes no arguments")
        if not gdb.selected_inferior().pid:
            raise gdb.GdbError("klab modules: no process attached")
        what = "modules"
        gdb.write("%-20s %-16s %s\n" % ("MODULE", "TEXT", "SYMBOLS"))
        try:
            for mod in loaded_modules(what):
                load(mod)
                name = mod["name"].string()
                where = _loaded.get(name, (None, _sections(mod).get(".text", 0)))
                gdb.write("%-20s %16x %s\n" % (name, where[1] or 0, where[0] or "(no .ko found)"))
        except gdb.MemoryError as e:
            raise kernel.error(what, "cannot read the module list: %s", e)


KlabModules()
_state = vm.load_state()
# Under KASLR the symbols are not where vmlinux says until klab kaslr has placed them; it arms then.
if gdb.selected_inferior().pid and not (_state and _state.get("kaslr") == "1"):
    arm()
