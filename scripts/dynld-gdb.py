# gdb commands for a kernel that loads dynld modules (dynld's `modlist`
# feature), as Linux's lx-symbols is for kernel modules:
#
#   (gdb) source scripts/dynld-gdb.py
#   (gdb) dynld-symbols DIR...    load each module's debug file at its address
#   (gdb) dynld-modules           list the modules the kernel has loaded
#
# The kernel keeps its loaded modules in a list of plain records at the
# symbol `dynld_modules` (see dynld's `modlist` module); no debug
# information of the kernel is needed to read it. For each module, the
# debug file NAME.debug that `aout link --debug` wrote is looked for in the
# DIRs and loaded with `add-symbol-file FILE -o BASE`; the file of a module
# that has gone is removed. `dynld-symbols` also keeps a breakpoint on
# `dynld_modules_changed`, which the kernel calls after each load and
# unload, to do the same there and continue: a breakpoint set (pending) on
# a module function by name takes effect when the module loads.

import os
import struct

import gdb

NAME_MAX = 56


def _word_size():
    return gdb.lookup_type("void").pointer().sizeof


def _little():
    return "little" in gdb.execute("show endian", to_string=True)


def _address(symbol):
    """The address of a minimal (linker) symbol: no debug information
    needed."""
    text = gdb.execute("info address " + symbol, to_string=True)
    for word in text.replace(".", " ").split():
        if word.startswith("0x"):
            return int(word, 16)
    raise gdb.GdbError("no symbol %s: is this a dynld kernel built with modlist?" % symbol)


def modules():
    """The kernel's loaded modules, the last loaded first: dicts of name,
    id, base, text, data_offset, image."""
    ws = _word_size()
    end = "<" if _little() else ">"
    word = "I" if ws == 4 else "Q"
    inf = gdb.selected_inferior()
    head = _address("dynld_modules")
    version, _generation = struct.unpack(end + "II", bytes(inf.read_memory(head, 8)))
    if version == 0:
        # Before the kernel's start-up code has initialised its data.
        return []
    if version != 1:
        raise gdb.GdbError("dynld_modules: unknown version %d" % version)
    (entry,) = struct.unpack(end + word, bytes(inf.read_memory(head + 8, ws)))
    out = []
    layout = end + word * 5 + "II%ds" % NAME_MAX
    size = struct.calcsize(layout)
    seen = set()
    while entry and entry not in seen and len(out) < 4096:
        seen.add(entry)
        nxt, base, text, data_offset, image, ident, nlen, name = struct.unpack(
            layout, bytes(inf.read_memory(entry, size))
        )
        out.append(
            {
                "name": name[: min(nlen, NAME_MAX)].decode("utf-8", "replace"),
                "id": ident,
                "base": base,
                "text": text,
                "data_offset": data_offset,
                "image": image,
            }
        )
        entry = nxt
    return out


class _State:
    dirs = []
    # (name, id, base) -> the debug file loaded for it
    loaded = {}
    breakpoint = None


def _find(name):
    for d in _State.dirs:
        path = os.path.join(d, name + ".debug")
        if os.path.isfile(path):
            return os.path.abspath(path)
    return None


def sync(verbose=True):
    """Loads the debug files of the modules loaded now, and removes those
    of the modules gone."""
    now = {(m["name"], m["id"], m["base"]): m for m in modules()}
    for key in list(_State.loaded):
        if key not in now:
            gdb.execute("remove-symbol-file -a %#x" % key[2], to_string=True)
            del _State.loaded[key]
            if verbose:
                gdb.write("dynld: %s unloaded\n" % key[0])
    for key, m in now.items():
        if key in _State.loaded:
            continue
        path = _find(m["name"])
        if path is None:
            if verbose:
                gdb.write("dynld: no %s.debug for %s at %#x\n" % (m["name"], m["name"], m["base"]))
            _State.loaded[key] = None
            continue
        gdb.execute("add-symbol-file %s -o %#x" % (path, m["base"]), to_string=True)
        _State.loaded[key] = path
        if verbose:
            gdb.write("dynld: %s (id %d) at %#x: %s\n" % (m["name"], m["id"], m["base"], path))


class _Changed(gdb.Breakpoint):
    """Stops at dynld_modules_changed only to follow the list."""

    def __init__(self):
        super().__init__("dynld_modules_changed", internal=True)
        self.silent = True

    def stop(self):
        sync()
        return False


class DynldSymbols(gdb.Command):
    """Load the symbols of the dynld modules the kernel has loaded.

Usage: dynld-symbols DIR...

Looks for NAME.debug (aout link --debug) of each module in the DIRs and
loads it at the module's address; follows later loads and unloads."""

    def __init__(self):
        super().__init__("dynld-symbols", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        dirs = gdb.string_to_argv(arg)
        if dirs:
            _State.dirs = dirs
        if not _State.dirs:
            _State.dirs = ["."]
        sync()
        if _State.breakpoint is None or not _State.breakpoint.is_valid():
            _State.breakpoint = _Changed()


class DynldModules(gdb.Command):
    """List the dynld modules the kernel has loaded: id, name, base, size."""

    def __init__(self):
        super().__init__("dynld-modules", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        for m in reversed(modules()):
            gdb.write(
                "%4d %-20s %#x text %d image %d\n"
                % (m["id"], m["name"], m["base"], m["text"], m["image"])
            )


DynldSymbols()
DynldModules()
