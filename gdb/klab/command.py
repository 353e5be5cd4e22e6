"""The base of klab's subcommands: `help klab <sub>` from the docstring, and tab completion of options
(--pid, --filter, ...) and of expressions for everything else."""

import gdb


class KlabCommand(gdb.Command):
    OPTIONS = ()

    def __init__(self, name, command_class=gdb.COMMAND_DATA):
        super().__init__(name, command_class)

    def complete(self, text, word):
        last = text.split()[-1] if text.strip() and not text[-1].isspace() else ""
        if last.startswith("-"):
            # gdb breaks words at '-', so `word` may be only the tail of the option typed so far
            cut = len(last) - len(word or "")
            return [o[cut:] for o in self.OPTIONS if o.startswith(last)]
        return gdb.COMPLETE_EXPRESSION
