"""An unpickler that a file cannot turn, and that stops before a file takes more memory than its size allows.

Three rules, whatever table of globals a caller gives it:

* **Globals** are entries of the caller's table, never the process's own classes or functions: an
  `Allowed` entry is a function of ours that makes a fresh object, a `Marker` is an inert
  argument. Any other global becomes an `Unknown`, a fresh stand-in of ours that only names it (a
  snapshot's discriminator may need classes we do not know): it is never imported or called, and
  whatever a file makes from it (REDUCE, NEWOBJ, an entry given it as an argument) is another
  `Unknown`. Nothing shared with the rest of the process reaches the stack; a caller refuses the
  objects it needs where they contain an `Unknown` (`first_unknown`).
* **State** changes only what this read made: BUILD applies once, through the entry's own checked
  setter, to an object an `Allowed` entry made; SETITEM(S), APPEND(S) and ADDITEMS fill only
  containers this read made. State given to an `Unknown` is dropped. No class, module, function or
  singleton can be changed, so no file can break a later load.
* **Memory**: every opcode is charged what it may leave allocated (stack slot, memo entry, the object
  it makes; entries charge what they make, e.g. the float32 size of a tensor view), against a
  `Budget` of `FACTOR` x the file size + `BASE`. Length prefixes are checked against the bytes left
  before anything is allocated; frames, text lines and nesting are bounded. An opcode run cannot
  take 80x its size.

Opcodes that network files never use and that would each need policing (INST, OBJ, EXT*,
BYTEARRAY8, out-of-band buffers) are refused. The engine is the pure-Python `pickle._Unpickler`:
its opcode table is wrapped in the charge, with our own handlers where a rule applies.
"""

from __future__ import annotations

import pickle
import pickletools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

FACTOR = 3  # a float32 snapshot needs ~2x its size: its bytes, then the network's copy of them
BASE = 32 << 20
OP_COST = 128  # upper bound of what one opcode leaves besides its object: stack slot, list growth
MEMO_COST = 128  # a memo entry: its int key and dict slot, with resize slack
ITEM_COST = 96  # one item added to a dict, list or set, with resize slack
MAX_NESTING = 1000  # MARK depth; a StyleGAN snapshot nests about 15
MAX_FRAME = 1 << 20  # the pickler writes 64 KiB frames
MAX_LINE = 1 << 20  # text (protocol 0) opcodes read lines


class Budget:
    """What one read (with the pickles nested in it) may allocate, in bytes; charging past it refuses."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @classmethod
    def for_size(cls, size: int) -> Budget:
        return cls(FACTOR * size + BASE)

    def charge(self, nbytes: int) -> None:
        self.used += nbytes
        if self.used > self.limit:
            raise pickle.UnpicklingError(f"needs more memory than a file of its size may take "
                                         f"({FACTOR} x size + {BASE >> 20} MiB = {self.limit >> 20} MiB)")


@dataclass(frozen=True, eq=False)
class Allowed:
    """A global the table allows: `make(reader, *args)` returns a fresh object.

    `fills`: the result is a container the pickle may fill; `newobj`: NEWOBJ may make it too;
    `set_state(reader, obj, state)`: the one BUILD the result may take, checked by the entry.
    """

    name: str
    make: Callable[..., Any]
    fills: bool = False
    newobj: bool = False
    set_state: Callable[[Any, Any, Any], None] | None = None


@dataclass(frozen=True, eq=False)
class Marker:
    """A global that is only ever an argument to an entry (numpy.ndarray, a torch storage type)."""

    name: str
    value: Any = None


Table = dict[tuple[str, str], Allowed | Marker]


class Unknown:
    """A global the table does not name, or what a file made from one: inert, it only says which (`module.Name`)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<unknown {self.name}>"


def first_unknown(root: Any) -> Unknown | None:
    """The first `Unknown` inside `root`: in containers, and in objects that list what they hold (`held()`)."""
    stack, seen = [root], set()
    while stack:
        obj = stack.pop()
        if isinstance(obj, Unknown):
            return obj
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif callable(getattr(type(obj), "held", None)):
            stack.extend(obj.held())
    return None


class BoundedFile:
    """A binary stream that refuses a read longer than what is left, before allocating for it."""

    def __init__(self, raw: BinaryIO, size: int) -> None:
        self.raw = raw
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else n
        if n > self.left:
            raise pickle.UnpicklingError(f"a length of {n} bytes runs past the end of the data")
        data = self.raw.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.raw.readline(min(MAX_LINE, self.left))
        self.left -= len(line)
        return line


_CODES = {op.name: ord(op.code) for op in pickletools.opcodes}


def _codes(*names: str) -> set[int]:
    return {_CODES[name] for name in names}


# Opcodes that push a new object: its size is charged after they run.
_PUSHES_NEW = _codes("INT", "LONG", "FLOAT", "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
                     "SHORT_BINUNICODE", "BINUNICODE8", "LONG1", "LONG4", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
                     "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "LIST", "DICT", "TUPLE", "TUPLE1", "TUPLE2",
                     "TUPLE3", "FROZENSET")
_FRESH_CONTAINERS = _codes("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "LIST", "DICT")
_MEMO_PUTS = _codes("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE")
_REFUSED = _codes("INST", "OBJ", "EXT1", "EXT2", "EXT4", "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER")


class Reader(pickle._Unpickler):
    """The restricted, budgeted unpickler; see the module docstring for its rules."""

    def __init__(self, file: BoundedFile, budget: Budget, table: Table,
                 persistent: Callable[[Reader, Any], Any] | None = None) -> None:
        super().__init__(file)
        self.file = file
        self.budget = budget
        self.table = table
        self.persistent = persistent
        self.registry: dict[int, Any] = {}  # for entries: what they made, by id (held, so no id is reused)
        self._fillable: dict[int, Any] = {}
        self._awaiting_state: dict[int, tuple[Any, Callable]] = {}
        self._frame_size = 0

    def nested(self, file: BoundedFile, table: Table, persistent: Callable[[Reader, Any], Any] | None = None) -> Any:
        """Load a pickle embedded in this one, under the same rules and the same budget."""
        return Reader(file, self.budget, table, persistent).load()

    # --- globals and persistent ids ---
    def find_class(self, module: str, name: str) -> Allowed | Marker | Unknown:
        if not isinstance(module, str) or not isinstance(name, str):
            raise pickle.UnpicklingError("a global named by something other than text")
        entry = self.table.get((module, name))
        return entry if entry is not None else self._unknown(f"{module}.{name}")

    def _unknown(self, name: str) -> Unknown:
        made = Unknown(name)
        self.budget.charge(sys.getsizeof(made) + sys.getsizeof(name))
        return made

    def persistent_load(self, pid: Any) -> Any:
        if self.persistent is None:
            raise pickle.UnpicklingError("persistent ids are not allowed")
        return self.persistent(self, pid)

    # --- objects made by calls ---
    def _make(self, factory: Any, args: Any, newobj: bool = False) -> Any:
        opcode = "NEWOBJ" if newobj else "REDUCE"
        if isinstance(factory, Unknown):
            return self._unknown(factory.name)
        if not isinstance(factory, Allowed) or (newobj and not factory.newobj):
            raise pickle.UnpicklingError(f"{opcode} of {_describe(factory)} is not allowed")
        if not isinstance(args, tuple):
            raise pickle.UnpicklingError(f"{opcode} arguments are not a tuple")
        unknown = next((arg for arg in args if isinstance(arg, Unknown)), None)
        if unknown is not None:  # made from something we do not know: as unknown as it
            return self._unknown(unknown.name)
        obj = factory.make(self, *args)
        self.budget.charge(sys.getsizeof(obj))
        if factory.fills:
            self._fillable[id(obj)] = obj
        if factory.set_state is not None:
            self._awaiting_state[id(obj)] = (obj, factory.set_state)
        return obj

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._make(self.stack[-1], args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._make(self.stack[-1], args, newobj=True)

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        if kwargs and not isinstance(self.stack[-1], Unknown):
            raise pickle.UnpicklingError("NEWOBJ_EX with keyword arguments is not allowed")
        self.stack[-1] = self._make(self.stack[-1], args, newobj=True)

    # --- state changes: only on what this read made ---
    def _target(self, obj: Any, kind: type) -> Any:
        """The container to fill, or None for an Unknown (its items are dropped)."""
        if isinstance(obj, Unknown):
            return None
        if self._fillable.get(id(obj)) is not obj or not isinstance(obj, kind):
            raise pickle.UnpicklingError(f"cannot add items to {_describe(obj)}: only to a container the file made")
        return obj

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self.budget.charge(ITEM_COST)
        target = self._target(self.stack[-1], dict)
        if target is not None:
            target[key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._target(self.stack[-1], dict)
        self.budget.charge(ITEM_COST * (len(items) // 2))
        if target is not None:
            target.update(zip(items[0::2], items[1::2], strict=False))

    def load_append(self) -> None:
        value = self.stack.pop()
        self.budget.charge(ITEM_COST)
        target = self._target(self.stack[-1], list)
        if target is not None:
            target.append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self.budget.charge(ITEM_COST * len(items))
        target = self._target(self.stack[-1], list)
        if target is not None:
            target.extend(items)

    def load_additems(self) -> None:
        items = self.pop_mark()
        self.budget.charge(ITEM_COST * len(items))
        target = self._target(self.stack[-1], set)
        if target is not None:
            target.update(items)

    def load_build(self) -> None:
        state = self.stack.pop()
        obj = self.stack[-1]
        if isinstance(obj, Unknown):
            return  # its state is dropped: nothing of ours takes it
        entry = self._awaiting_state.pop(id(obj), None)
        if entry is None or entry[0] is not obj:
            raise pickle.UnpicklingError(f"BUILD on {_describe(obj)} is not allowed")
        entry[1](self, obj, state)

    # --- bounded structure and data ---
    def load_mark(self) -> None:
        if len(self.metastack) >= MAX_NESTING:
            raise pickle.UnpicklingError(f"nested deeper than {MAX_NESTING}")
        super().load_mark()

    def load_frame(self) -> None:
        size = int.from_bytes(self.read(8), "little")
        if size > MAX_FRAME:
            raise pickle.UnpicklingError(f"a frame of {size} bytes (at most {MAX_FRAME})")
        self._unframer.load_frame(size)
        self._frame_size = size

    def _bytes_left(self) -> int:
        frame = self._unframer.current_frame
        return self.file.left + (self._frame_size - frame.tell() if frame is not None else 0)

    def _push_bytes(self, prefix: int) -> None:
        """Binary data, as a bytearray so that tensors can view it without a copy."""
        size = int.from_bytes(self.read(prefix), "little")
        if size > self._bytes_left():
            raise pickle.UnpicklingError(f"a length of {size} bytes runs past the end of the data")
        data = bytearray(size)
        if size:
            self.readinto(data)
        self.append(data)

    def load_short_binbytes(self) -> None:
        self._push_bytes(1)

    def load_binbytes(self) -> None:
        self._push_bytes(4)

    def load_binbytes8(self) -> None:
        self._push_bytes(8)

    def refuse_opcode(self) -> None:
        raise pickle.UnpicklingError("an opcode network files never use")


def _describe(obj: Any) -> str:
    return f"the global {obj.name}" if isinstance(obj, (Allowed, Marker, Unknown)) else f"a {type(obj).__name__}"


def _charged(code: int, run: Callable[[Reader], None]) -> Callable[[Reader], None]:
    fixed = OP_COST + (MEMO_COST if code in _MEMO_PUTS else 0)
    measures, fresh = code in _PUSHES_NEW, code in _FRESH_CONTAINERS

    def charged(reader: Reader) -> None:
        reader.budget.charge(fixed)
        run(reader)
        if measures:
            top = reader.stack[-1]
            reader.budget.charge(sys.getsizeof(top))
            if fresh:
                reader._fillable[id(top)] = top

    return charged


Reader.dispatch = {
    code: _charged(code, Reader.refuse_opcode if code in _REFUSED else getattr(Reader, run.__name__, run))
    for code, run in pickle._Unpickler.dispatch.items()
}
