"""OSC 1.0 datagrams to (address, args), written for the server thread under a flood.

Every datagram a flood brings is decoded on the OSC thread, and whatever CPU that thread spends is
taken from the renderer on a 2-core machine. python-osc's parser walks strings byte by byte in
Python (~4 us a string); here strings end where `bytes.find` finds their NUL and numbers are read
with precompiled structs, and garbage is refused on its first byte that does not fit.

Timetags of bundles are not waited for (everything is applied on the next frame); bundles nest at
most MAX_BUNDLE_DEPTH deep. Beside OSC 1.0's i f s b, the common extensions are read: h d t (int64,
double, timetag as NTP seconds), S (symbol, as a string), c (char, as its code), r (RGBA as one
unsigned int), m (MIDI as a 4-tuple), T F N I (true, false, nil, impulse as None) and [ ] arrays
(lists).
"""

from __future__ import annotations

import struct

MAX_BUNDLE_DEPTH = 8
_BUNDLE = b"#bundle\x00"
_NUMBERS = {"i": struct.Struct(">i"), "c": struct.Struct(">i"), "r": struct.Struct(">I"),
            "f": struct.Struct(">f"), "h": struct.Struct(">q"), "d": struct.Struct(">d")}
_CONSTANTS = {"T": True, "F": False, "N": None, "I": None}
_SIZE = struct.Struct(">i")
_NTP_FRACTION = float(1 << 32)


class DecodeError(Exception):
    """A datagram that is not valid OSC; `kind` is the counter it goes to."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def decode_packet(dgram: bytes) -> list[tuple[str, tuple]]:
    """All (address, args) in a message or (nested) bundle, in order; raises DecodeError."""
    out: list[tuple[str, tuple]] = []
    _decode(dgram, 0, out)
    return out


def _decode(dgram: bytes, depth: int, out: list[tuple[str, tuple]]) -> None:
    if dgram[:1] == b"/":
        out.append(_decode_message(dgram))
        return
    if not dgram.startswith(_BUNDLE):
        raise DecodeError("malformed", f"neither a message nor a bundle ({len(dgram)} bytes)")
    if depth >= MAX_BUNDLE_DEPTH:
        raise DecodeError("malformed", f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
    if len(dgram) < 16:
        raise DecodeError("malformed", "bundle shorter than its header")
    index, end = 16, len(dgram)  # prefix + 8-byte timetag, which we do not wait for
    while index < end:
        if index + 4 > end:
            raise DecodeError("malformed", "truncated bundle element size")
        size = _SIZE.unpack_from(dgram, index)[0]
        index += 4
        if size <= 0 or size % 4 or index + size > end:
            raise DecodeError("malformed", f"bundle element size {size} does not fit")
        _decode(dgram[index : index + size], depth + 1, out)
        index += size


def _string(dgram: bytes, index: int) -> tuple[str, int]:
    """The NUL-terminated string at `index` and the index after its padding (a multiple of 4)."""
    nul = dgram.find(b"\x00", index)
    after = (nul + 4) & ~3
    if nul < 0 or after > len(dgram):
        raise DecodeError("malformed", "string without its terminator and padding")
    try:
        return dgram[index:nul].decode("utf-8"), after
    except UnicodeDecodeError:
        raise DecodeError("malformed", "string is not UTF-8") from None


def _decode_message(dgram: bytes) -> tuple[str, tuple]:
    address, index = _string(dgram, 0)
    if index == len(dgram):
        return address, ()  # no type tags: a message without arguments
    tags, index = _string(dgram, index)
    if not tags.startswith(","):
        raise DecodeError("malformed", f"{address}: type tags do not start with ','")
    args: list = []
    stack = [args]
    for tag in tags[1:]:
        number = _NUMBERS.get(tag)
        if number is not None:
            if tag == "f" and index + 4 > len(dgram):  # some senders (Reaktor) cut a last float's zeros
                dgram = dgram.ljust(index + 4, b"\x00")
            if index + number.size > len(dgram):
                raise DecodeError("malformed", f"{address}: datagram ends inside an argument")
            stack[-1].append(number.unpack_from(dgram, index)[0])
            index += number.size
        elif tag in _CONSTANTS:
            stack[-1].append(_CONSTANTS[tag])
        elif tag in "sS":
            value, index = _string(dgram, index)
            stack[-1].append(value)
        elif tag in "btm":
            value, index = _sized(dgram, index, tag, address)
            stack[-1].append(value)
        elif tag == "[":
            stack.append([])
            stack[-2].append(stack[-1])
        elif tag == "]" and len(stack) > 1:
            stack.pop()
        elif tag == "]":
            raise DecodeError("malformed", f"{address}: ']' without its '['")
        else:
            raise DecodeError("bad-typetag", f"{address}: unsupported type tags {tags!r}")
    if len(stack) != 1:
        raise DecodeError("malformed", f"{address}: '[' without its ']'")
    return address, tuple(args)


def _sized(dgram: bytes, index: int, tag: str, address: str) -> tuple[object, int]:
    """A blob (bytes), timetag (NTP seconds) or MIDI message (port, status, data1, data2) at `index`."""
    if tag == "b":
        if index + 4 > len(dgram):
            raise DecodeError("malformed", f"{address}: datagram ends inside a blob's size")
        size = _SIZE.unpack_from(dgram, index)[0]
        start = index + 4
        if size < 0 or start + size > len(dgram):
            raise DecodeError("malformed", f"{address}: blob of {size} bytes does not fit")
        return dgram[start : start + size], start + size + (-size % 4)
    width = 8 if tag == "t" else 4
    if index + width > len(dgram):
        raise DecodeError("malformed", f"{address}: datagram ends inside an argument")
    if tag == "t":
        seconds, fraction = struct.unpack_from(">II", dgram, index)
        return seconds + fraction / _NTP_FRACTION, index + 8
    return tuple(dgram[index : index + 4]), index + 4
