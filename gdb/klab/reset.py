"""`klab reset` inside gdb: the VM started again by its supervisor (restored from its snapshot, or booted
again: vm/cmd/reset.c) and this gdb attached to it again, its breakpoints kept.

This is the module loop of seed 002 without a new gdb: rebuild the .ko the VM was booted with (--add),
`klab reset`, `continue`. The supervisor reads the --add files again at every start (vm/backend/qemu.c
deliver_files), so the new build is what the guest loads; the old machine's module symbols are dropped
(those of a module the restored machine still has at the same .text are kept)."""

import os
import subprocess

import gdb

from klab import command, kaslr, kernel, modules, vm


def _program():
    """The klab program that started this gdb (klab gdb exports it)."""
    path = os.environ.get("KLAB_PROGRAM")
    if not path or not os.access(path, os.X_OK):
        raise gdb.GdbError("klab reset: not started by `klab gdb` (no $KLAB_PROGRAM); run `klab reset NAME` in "
                           "a shell and `target remote` again")
    return path


_USAGE = "usage: klab reset [--build CMD] [--timeout SECONDS]"


def _parse(arg):
    """(timeout, build command or None) from the command's arguments."""
    words = gdb.string_to_argv(arg)
    timeout, build = 300, None
    while words:
        w = words.pop(0)
        if w == "--timeout" and words:
            v = words.pop(0)
            if not v.isdigit() or not 1 <= int(v) <= 86400:
                raise gdb.GdbError("klab reset: --timeout wants seconds (1-86400), not '%s'" % v)
            timeout = int(v)
        elif w == "--build" and words and words[0].strip():
            build = words.pop(0)
        else:
            raise gdb.GdbError("klab reset: unexpected '%s' (%s)" % (w, _USAGE))
    return timeout, build


def _stub_address(listen):
    """gdb's `target remote` argument for the run state's gdb= (tcp:HOST:PORT or unix:PATH), as klab gdb
    gives it (vm/cmd/gdb.c gdb_argv)."""
    for prefix in ("tcp:", "unix:"):
        if listen.startswith(prefix):
            return listen[len(prefix):]
    raise gdb.GdbError("klab reset: the run state's stub address '%s' is neither tcp: nor unix:" % listen)


def _disconnect():
    """Off the old QEMU before the supervisor kills it: gdb takes its breakpoints out cleanly."""
    if gdb.selected_inferior().pid:
        try:
            gdb.execute("disconnect", to_string=True)
        except gdb.error:
            pass            # its QEMU is gone already


def _still_placed(restored):
    """{module name: .text} of the modules gdb has symbols for that the restarted machine has too, read once it
    is attached (only for those loaded before gdb attached: none in the module loop); {} after a cold boot
    (paused at its first instruction, its kernel memory is not there yet)."""
    if not restored:
        return {}
    try:
        return modules.placed_in_machine(modules.loaded_before_attach(), "klab reset")
    except (gdb.error, gdb.GdbError):
        return {}


class KlabReset(command.KlabCommand):
    """Start this VM again from scratch and attach to it again, keeping gdb's breakpoints.

Usage: klab reset [--build CMD] [--timeout SECONDS]
Runs `klab reset NAME` for the VM this gdb is attached to: restored from its snapshot when it was booted
with --snapshot (a fraction of a second), else booted again. Its --add files are read again, so a module
rebuilt since then is the one the guest loads; the old module symbols are dropped, and breakpoints in the
module (break hello_open) wait for the new one. A VM booted to wait for gdb (klab boot without --no-wait)
comes back paused before its --run commands: `continue` runs them under the breakpoints.
--build CMD: run the shell command CMD (the module's rebuild, e.g. "make module") while the VM is
restored, and send the files once it is done; a failed CMD prints its output and an error, with the VM
back and attached. --timeout: give up after that long (default 300)."""

    OPTIONS = ("--build", "--timeout")

    def __init__(self):
        super().__init__("klab reset", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        timeout, build = _parse(arg)
        state = vm.load_state()
        if state is None or not state.get("name") or not state.get("gdb"):
            raise gdb.GdbError("klab reset: not started by `klab gdb` (no KLAB_STATE run-state file)")
        if state.get("backend", "qemu") != "qemu":
            raise gdb.GdbError("klab reset: VM '%s' is a libvirt domain; klab reset restarts QEMU VMs" % state["name"])
        program = _program()
        _disconnect()
        try:
            r = subprocess.run([program, "reset", state["name"], "--timeout", str(timeout)]
                               + (["--build", build] if build else []),
                               capture_output=True, text=True, timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            raise gdb.GdbError("klab reset: %s was not back within %d s" % (state["name"], timeout))
        said = [l for l in r.stdout.splitlines() if l.startswith("klab: ")]
        built = [l for l in r.stdout.splitlines() if not l.startswith("klab: ")]
        if built and (r.returncode != 0 or from_tty):
            gdb.write("\n".join(built) + "\n")      # the build's own output: its errors above all
        errors = [l for l in r.stderr.splitlines() if l.strip()]
        if r.returncode != 0 and not said:
            raise gdb.GdbError((errors or ["klab reset exited %d" % r.returncode])[-1])
        state = vm.load_state() or state
        gdb.execute("target remote %s" % _stub_address(state["gdb"]), to_string=True)
        kernel.target_replaced()   # what was read of the old machine (its RAM file among it) is not this one's
        kept = modules.forget(_still_placed(state.get("restored") == "1"))
        kaslr.reattached()
        pc = int(gdb.parse_and_eval("$pc")) & kernel.MASK64
        gdb.write("%s; gdb attached again at pc 0x%x%s\n" % (
            (said or ["klab: %s started again" % state["name"]])[-1], pc,
            "; module symbols kept: " + ", ".join(kept) if kept else ""))
        if r.returncode != 0:      # the build failed: the VM is back, attached, with its files as they were
            if errors[:-1]:
                gdb.write("\n".join(errors[:-1]) + "\n")
            raise gdb.GdbError((errors or ["klab reset: --build failed"])[-1])


KlabReset()
