"""The base of klab's subcommands: `help klab <sub>` from the docstring, and tab completion of options
(--pid, --filter, ...) and of expressions for everything else."""

import functools

import gdb


def _one_line_errors(invoke):
    """A bug or a kernel klab does not understand must still end in one gdb error line, never a Python
    exception: gdb's own errors pass through, anything else is named as klab's."""
    @functools.wraps(invoke)
    def wrapped(self, arg, from_tty):
        try:
            return invoke(self, arg, from_tty)
        except gdb.MemoryError as e:
            raise gdb.GdbError("%s: %s%s" % (getattr(self, "name", "klab"), e, _user_mode_hint()))
        except (gdb.GdbError, gdb.error, KeyboardInterrupt):
            raise
        except Exception as e:   # noqa: BLE001 - the point is to catch everything else
            raise gdb.GdbError("%s: internal error (%s: %s); please report it" % (
                getattr(self, "name", "klab"), type(e).__name__, e))
    return wrapped


def _user_mode_hint():
    """Why a kernel read failed when the CPU runs user code: QEMU's arm64 stub reads with EL0's permissions."""
    try:
        from klab import kernel
        if kernel.cpu_mode()[0]:
            return " (the CPU runs user code, and QEMU's stub reads with user permissions: stop in the kernel, " \
                   "e.g. hbreak on a system call)"
    except (gdb.error, gdb.GdbError):
        pass
    return ""


class KlabCommand(gdb.Command):
    OPTIONS = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "invoke" in cls.__dict__:
            cls.invoke = _one_line_errors(cls.__dict__["invoke"])

    def __init__(self, name, command_class=gdb.COMMAND_DATA):
        super().__init__(name, command_class)
        self.name = name

    def complete(self, text, word):
        last = text.split()[-1] if text.strip() and not text[-1].isspace() else ""
        if last.startswith("-"):
            # gdb breaks words at '-', so `word` may be only the tail of the option typed so far
            cut = len(last) - len(word or "")
            return [o[cut:] for o in self.OPTIONS if o.startswith(last)]
        return gdb.COMPLETE_EXPRESSION
