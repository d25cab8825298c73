"""What decoding a msgpack document will cost in memory, read from its headers before anything is built.

Each kind of msgpack object has an upper bound on what CPython keeps for it once decoded: its object
plus the 8-byte reference its container holds. A walk over the headers (nothing is decoded) adds those
up and refuses a document whose total passes the budget. So a few megabytes of empty arrays, tiny maps
or short strings (each byte of the file a 60-90 byte Python object) are refused before they are built.
"""

from __future__ import annotations

# Upper bounds, in bytes, of one decoded object of each kind on 64-bit CPython 3.11 (measured with
# tracemalloc), each with the reference its container holds.
_REF = 8
_INT = _REF + 32  # an int object (small ones are shared; counted anyway)
_FLOAT = _REF + 24
_ARRAY = _REF + 56  # a list with its GC header; each element counts its own reference
_MAP, _MAP_PER_PAIR = _REF + 96, 80  # a dict; its table over-allocates and is copied when it grows
_ASCII = _REF + 49  # plus one byte per character
_TEXT, _TEXT_PER_BYTE = _REF + 76, 4  # other text: one astral character makes every character 4 bytes
_BIN = _REF + 36
_EXT = _REF + 256  # an extension object: an array of up to 8 dimensions with its header; its payload counts once

_NO_PAYLOAD = {0xC0: _REF, 0xC2: _REF, 0xC3: _REF}  # nil, false, true
_FIXED = {0xCA: (4, _FLOAT), 0xCB: (8, _FLOAT), 0xCC: (1, _INT), 0xCD: (2, _INT), 0xCE: (4, _INT),
          0xCF: (8, _INT), 0xD0: (1, _INT), 0xD1: (2, _INT), 0xD2: (4, _INT), 0xD3: (8, _INT)}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}  # payload size; one type byte before it
_SIZED = {0xC4: (1, "bin"), 0xC5: (2, "bin"), 0xC6: (4, "bin"), 0xD9: (1, "str"), 0xDA: (2, "str"),
          0xDB: (4, "str"), 0xC7: (1, "ext"), 0xC8: (2, "ext"), 0xC9: (4, "ext")}  # width of the length
_CONTAINER = {0xDC: (2, "array"), 0xDD: (4, "array"), 0xDE: (2, "map"), 0xDF: (4, "map")}
_CHECKED_TEXT = 4096  # longer text is counted as the worst case rather than copied to be checked


def _str_cost(raw: bytes, pos: int, length: int) -> int:
    if length <= _CHECKED_TEXT and raw[pos:pos + length].isascii():
        return _ASCII + length
    return _TEXT + _TEXT_PER_BYTE * length


class DecodeBudgetError(ValueError):
    """A document that is malformed or would take more memory to decode than its budget allows."""


def decoded_size(raw: bytes, budget: int) -> int:
    """An upper bound of the memory that decoding `raw` (its first document) takes; raises DecodeBudgetError
    as soon as it passes `budget`, or when the headers promise more than the bytes hold."""
    pos, pending, cost, end = 0, 1, 0, len(raw)
    while pending:
        if pending > end - pos:  # every promised object needs at least one byte
            raise DecodeBudgetError("truncated file (its headers promise more than it holds)")
        code = raw[pos]
        pos += 1
        pending -= 1
        if code < 0x80:  # positive fixint
            cost += _REF
        elif code >= 0xE0:  # negative fixint
            cost += _INT
        elif code < 0x90:  # fixmap
            pending += 2 * (code & 0x0F)
            cost += _MAP + _MAP_PER_PAIR * (code & 0x0F)
        elif code < 0xA0:  # fixarray
            pending += code & 0x0F
            cost += _ARRAY
        elif code < 0xC0:  # fixstr
            cost += _str_cost(raw, pos, code & 0x1F)
            pos += code & 0x1F
        elif code in _NO_PAYLOAD:
            cost += _NO_PAYLOAD[code]
        elif code in _FIXED:
            width, each = _FIXED[code]
            pos += width
            cost += each
        elif code in _FIXEXT:
            pos += 1 + _FIXEXT[code]
            cost += _EXT + _FIXEXT[code]
        elif code in _SIZED:
            width, kind = _SIZED[code]
            length = int.from_bytes(raw[pos:pos + width], "big")
            pos += width + (kind == "ext")
            cost += _str_cost(raw, pos, length) if kind == "str" else (_BIN if kind == "bin" else _EXT) + length
            pos += length
        elif code in _CONTAINER:
            width, kind = _CONTAINER[code]
            count = int.from_bytes(raw[pos:pos + width], "big")
            pos += width
            pending += 2 * count if kind == "map" else count
            cost += _MAP + _MAP_PER_PAIR * count if kind == "map" else _ARRAY
        else:
            raise DecodeBudgetError(f"byte 0x{code:02x} at offset {pos - 1} starts no msgpack object")
        if pos > end:
            raise DecodeBudgetError("truncated file")
        if cost > budget:
            raise DecodeBudgetError(f"decoding it would take more than {budget:,} bytes of memory "
                                    f"(the limit for a file of {end:,} bytes)")
    return cost
