"""Straight-line BCS codecs generated from a struct declaration, for every vector length.

For layouts made of fixed-width fields (``bool``, ``u8``..``u64``) and ``vector<u8>``
(LotterySummary, LegacySummary, the events) this writes one encoder and one decoder
as Python source, from the declaration, and ``exec``\\ s it once, on first use. The
source is kept on the codec (``Codec.source``) for reading and debugging.

The *shape* of a value is the ULEB128 prefix of each of its byte vectors: the length
itself when it is below 128 (packed as a ``B``), else its minimal ULEB128 bytes
(packed as ``Ks``). A shape fixes the whole layout, so one ``struct.Struct`` per shape,
cached, packs or unpacks a value in a single call whatever its lengths.

- encode: compute the shape, fetch its struct, ``pack``.
- decode: first the shape last decoded at this size — one ``unpack``, then the prefixes
  it unpacked must equal the shape's (then a sequential reading finds every field
  exactly there, and the prefixes are minimal); otherwise a sequential reading
  (``unpack_from`` per run of fixed fields, any ULEB128 length, slices), which then
  becomes the shape for that size.

Both answer ``None`` instead of raising: any oddity (a wrong type, a truncation, a
non-minimal length, a bool byte > 1, a trailing byte) is left to the reference path
(``MoveStruct._encode_into`` / ``_decode_into``, the per-field type objects), which
raises the precise error with its byte offset and field path. ``tests/test_bcs_codegen.py``
compares the two on every shape.
"""

from __future__ import annotations

import functools
import struct
from typing import Any, Callable

from dualwrite.bcs.types import BOOL, BYTES, MAX_SEQUENCE_LENGTH, MoveType, OptionType, uleb128_bytes

#: structs (one per shape) and decode shapes (one per size) kept per layout; past that
#: the cache is emptied and refilled, so an unbounded variety of shapes costs a rebuild
#: now and then, never a slower path
CACHE_SIZE = 1024

_setattr = object.__setattr__


class Codec:
    """A generated encoder and decoder, and their source."""

    __slots__ = ("encode", "decode", "source")

    def __init__(self, encode: Callable[[dict], bytes | None], decode: Callable[[bytes], Any], source: str) -> None:
        self.encode, self.decode, self.source = encode, decode, source


def _is_option_bytes(t: MoveType) -> bool:
    return isinstance(t, OptionType) and t.elem is BYTES


def supports(fields: list[tuple[str, MoveType]]) -> bool:
    """Fixed-width fields, ``vector<u8>`` and ``Option<vector<u8>>``: every struct of onchain.md."""
    return all(t.fmt or t is BYTES or _is_option_bytes(t) for _, t in fields)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _prefix(n: int) -> int | bytes:
    """A vector's shape entry: its length below 128, else its minimal ULEB128 bytes (cached:
    the same object each time, so the shape's hash is computed once)."""
    if n < 0x80:
        return n
    if n > MAX_SEQUENCE_LENGTH:
        raise ValueError("longer than 2^31-1")
    return uleb128_bytes(n)


def _long_vector(data: bytes, p: int) -> tuple[bytes, int, int]:
    """A vector whose ULEB128 length at ``p`` has more than one byte: (prefix, start, end).

    Only canonical lengths pass (minimal, at most 2^31-1); anything else is ValueError
    or IndexError, and the reference reader says what is wrong.
    """
    start = p
    value = shift = 0
    while True:
        byte = data[p]
        p += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 28:  # a fifth group already allows 2^35: more is never canonical
            raise ValueError
    if byte == 0 or value > MAX_SEQUENCE_LENGTH:
        raise ValueError
    return data[start:p], p, p + value


def build(cls: type, fields: list[tuple[str, MoveType]], fields_set: set[str]) -> Codec:
    """The generated codec of ``cls`` (whose layout ``supports`` accepts)."""
    names = [name for name, _ in fields]
    vecs = [i for i, (_, t) in enumerate(fields) if t is BYTES]
    opts = [i for i, (_, t) in enumerate(fields) if _is_option_bytes(t)]
    bools = [i for i, (_, t) in enumerate(fields) if t is BOOL]
    structs: dict[tuple, struct.Struct] = {}

    def shape_struct(shape: tuple) -> struct.Struct:
        if len(structs) >= CACHE_SIZE:
            structs.clear()
        it = iter(shape)
        parts = []
        for _, t in fields:
            if t.fmt:
                parts.append(t.fmt)
                continue
            k = next(it)
            if t is not BYTES:  # an Option: its tag, then the vector if there is one
                parts.append("B")
                if k is None:
                    continue
            parts.append(f"B{k}s" if isinstance(k, int) else f"{len(k)}s{_uleb_value(k)}s")
        st = structs[shape] = struct.Struct("<" + "".join(parts))
        return st

    v = [f"v{i}" for i in range(len(fields))]
    k = {i: f"k{i}" for i in sorted(vecs + opts)}
    shape = "(" + "".join(f"{x}, " for x in k.values()) + ")"

    # -- encoder: the shape, its struct, one pack ------------------------------------------
    enc = ["def encode(d):", "    try:"]
    for i in k:
        enc.append(f"        {v[i]} = d[{names[i]!r}]")
        pad = "        "
        if i in opts:
            enc += [f"        if {v[i]} is None:", f"            {k[i]} = None", f"            a{i} = (0,)",
                    "        else:"]
            pad += "    "
        enc += [f"{pad}{k[i]} = len({v[i]})", f"{pad}if {k[i]} >= 128:", f"{pad}    {k[i]} = prefix({k[i]})"]
        if i in opts:
            enc.append(f"{pad}a{i} = (1, {k[i]}, {v[i]})")
    for i in bools:
        enc += [f"        if d[{names[i]!r}].__class__ is not bool:", "            return None"]
    enc += [f"        shape = {shape}", "        st = structs_get(shape) or shape_struct(shape)"]
    args = []
    for i, name in enumerate(names):
        args += [f"*a{i}"] if i in opts else [k[i], v[i]] if i in vecs else [f"d[{name!r}]"]
    enc += [f"        return st.pack({', '.join(args)})",
            "    except (TypeError, ValueError, KeyError, struct_error):", "        return None"]

    # -- decoder: the shape last seen at this size, else a sequential reading ----------------
    # (an Option changes the number of values, so layouts with one read sequentially always)
    memo = not opts
    dec = ["def decode(data):", "    n = len(data)"]
    if memo:
        targets = ", ".join(x for i in range(len(fields)) for x in ([k[i], v[i]] if i in k else [v[i]]))
        dec += [
            "    hit = by_size_get(n)",
            "    if hit is not None:",
            f"        {targets}, = hit[0].unpack(data)",
            f"        if {shape} != hit[1]:",
            "            hit = None",
            "    if hit is None:",
        ]
    ind = "        " if memo else "    "  # the sequential reading sits under ``if hit is None`` or not
    dec.append(f"{ind}try:")
    body = ind + "    "

    def read_vector(i: int, at: int | str, pad: str) -> list[str]:
        """A ``vector<u8>`` at ``at``: its prefix in ``k<i>``, bytes in ``v<i>``, ``p`` after it."""
        return [
            f"{pad}{k[i]} = data[{at}]",
            f"{pad}if {k[i]} < 128:",
            f"{pad}    q = {at + 1 if isinstance(at, int) else f'{at} + 1'}",
            f"{pad}    p = q + {k[i]}",
            f"{pad}else:",
            f"{pad}    {k[i]}, q, p = long_vector(data, {at})",
            f"{pad}{v[i]} = data[q:p]",
        ]

    runs: dict[str, struct.Struct] = {}
    pos: int | None = 0  # the offset while it is a constant; None once it lives in ``p``
    i = 0
    while i < len(fields):
        at = pos if pos is not None else "p"
        if i in vecs:
            dec += read_vector(i, at, body)
        elif i in opts:
            dec += [f"{body}tag = data[{at}]", f"{body}if tag == 0:", f"{body}    {k[i]} = {v[i]} = None",
                    f"{body}    p = {at + 1 if pos is not None else 'p + 1'}", f"{body}elif tag == 1:"]
            dec += read_vector(i, pos + 1 if pos is not None else "p + 1", body + "    ")
            dec += [f"{body}else:", f"{body}    raise ValueError"]
        else:
            j = i
            while j < len(fields) and j not in k:
                j += 1
            run = runs[f"run{i}"] = struct.Struct("<" + "".join(t.fmt for _, t in fields[i:j]))  # type: ignore[misc]
            dec.append(f"{body}{', '.join(v[i:j])}, = run{i}.unpack_from(data, {at})")
            if pos is not None:
                pos += run.size
            else:
                dec.append(f"{body}p += {run.size}")
            i = j
            continue
        pos = None
        i += 1
    dec += [
        f"{ind}except (IndexError, ValueError, struct_error):",
        f"{ind}    return None",
        f"{ind}if {pos if pos is not None else 'p'} != n:",
        f"{ind}    return None",
    ]
    if memo:
        dec += [
            f"        if len(by_size) >= {CACHE_SIZE}:",
            "            by_size.clear()",
            f"        shape = {shape}",
            "        by_size[n] = (structs_get(shape) or shape_struct(shape), shape)",
        ]
    for i in bools:
        dec += [f"    if {v[i]} > 1:", "        return None", f"    {v[i]} = {v[i]} == 1"]
    dec += [
        "    obj = new(cls)",
        "    setattr_(obj, '__dict__', {" + ", ".join(f"{n!r}: {v[i]}" for i, n in enumerate(names)) + "})",
        "    setattr_(obj, '__pydantic_fields_set__', fields_set)",
        "    setattr_(obj, '__pydantic_extra__', None)",
        "    setattr_(obj, '__pydantic_private__', None)",
        "    return obj",
    ]
    source = "\n".join(enc) + "\n\n\n" + "\n".join(dec) + "\n"
    by_size: dict[int, tuple[struct.Struct, tuple]] = {}
    ns: dict[str, Any] = {
        "prefix": _prefix, "long_vector": _long_vector, "struct_error": struct.error,
        "structs_get": structs.get, "shape_struct": shape_struct, "by_size": by_size, "by_size_get": by_size.get,
        "new": object.__new__, "setattr_": _setattr, "cls": cls, "fields_set": fields_set, **runs,
    }
    exec(compile(source, f"<bcs codec of {cls.__name__}>", "exec"), ns)  # noqa: S102 - built above
    return Codec(ns["encode"], ns["decode"], source)


def _uleb_value(prefix: bytes) -> int:
    return sum((b & 0x7F) << (7 * i) for i, b in enumerate(prefix))
