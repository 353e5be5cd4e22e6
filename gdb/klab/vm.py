"""The run-state file `klab boot` writes (key=value lines), as klab gdb passes it in $KLAB_STATE."""

import os


def load_state(path=None):
    path = path or os.environ.get("KLAB_STATE")
    if not path:
        return None
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    state = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            state.setdefault(key, value) if key != "ram_region" else state.setdefault("ram_regions", []).append(value)
    return state
