"""Move structs declared once, as pydantic models, with their BCS codec compiled from the declaration.

A field is declared ``name: Annotated[int, Move(U64)]``; the field order is the BCS
order. From that one declaration come: validation (range, type, field path in the
error), the BCS encoder/decoder (for layouts of fixed-width fields and byte vectors,
straight-line code generated from the declaration that packs/unpacks the whole value
with one ``struct.Struct`` call; otherwise runs of fixed-width fields packed together;
any oddity falls back to the strict per-field reader that reports the byte offset and
field path), the Move JSON form, and the field-by-field diff.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, model_validator

from dualwrite.bcs.types import BOOL, BYTES, MoveType, Reader, encode_uleb128, fixed_struct
from dualwrite.errors import DecodeError, EncodeError, FieldError


@dataclass(frozen=True)
class Move:
    """Field metadata: the Move type, and how to show a value to a person."""

    type: MoveType
    human: Callable[[Any], str] | None = None


@dataclass
class _Layout:
    name: str
    fields: list[tuple[str, MoveType]]
    human: dict[str, Callable[[Any], str]] = field(default_factory=dict)
    steps: list[tuple] = field(default_factory=list)
    #: generated straight-line codecs for layouts of fixed-width fields and ``vector<u8>``
    #: only (see ``_generate``); ``None`` for other layouts, which use the step loop
    fast_encode: Callable[[dict], bytes | None] | None = None
    fast_decode: Callable[[bytes], Any] | None = None
    fast_decode_source: str = ""  # the generated decoder, for reading and debugging
    #: the field names: the ``fields_set`` of every value the decoders build. Shared, as
    #: the structs are frozen and pydantic copies it before ``model_copy`` updates it.
    names: set[str] = field(default_factory=set)


_FIXED, _BYTES, _OTHER = 0, 1, 2
_setattr = object.__setattr__

#: how many distinct struct formats (one per combination of byte-vector lengths) the
#: generated codecs of one layout keep; past that they hand over to the general paths
_FORMAT_CACHE_SIZE = 1024


def _compile(layout: _Layout, cls: type) -> None:
    """Group runs of fixed-width fields so each run is one struct (un)pack."""
    layout.names = {name for name, _ in layout.fields}
    run: list[tuple[str, MoveType]] = []

    def flush() -> None:
        if run:
            names = tuple(n for n, _ in run)
            bools = tuple(i for i, (_, t) in enumerate(run) if t is BOOL)
            layout.steps.append((_FIXED, fixed_struct([t for _, t in run]), names, bools))
            run.clear()

    for name, mtype in layout.fields:
        if mtype.fmt:
            run.append((name, mtype))
            continue
        flush()
        layout.steps.append((_BYTES if mtype is BYTES else _OTHER, name, mtype))
    flush()
    if all(mtype.fmt or mtype is BYTES for _, mtype in layout.fields):
        _generate(layout, cls)


def _generate(layout: _Layout, cls: type) -> None:
    """Straight-line encoder and decoder for a layout of fixed-width fields and ``vector<u8>``.

    They cover the common case only (every byte vector shorter than 128, so its ULEB128
    length is one byte) and report nothing: any oddity returns ``None`` and the caller
    falls back to the step loop (encode) or the strict reader (decode), which raise the
    precise error. Both pack/unpack the whole value with one ``struct.Struct`` per
    combination of vector lengths (``B`` for the length byte, ``Ns`` for the bytes),
    built on first use and cached.
    """
    fields = layout.fields
    ident = [f"v{i}" for i in range(len(fields))]
    byte_idx = [i for i, (_, t) in enumerate(fields) if t is BYTES]
    bool_idx = [i for i, (_, t) in enumerate(fields) if t is BOOL]

    # -- encoder --------------------------------------------------------------------------
    cache: dict[tuple[int, ...], struct.Struct] = {}

    def new_format(lengths: tuple[int, ...]) -> struct.Struct | None:
        if len(cache) >= _FORMAT_CACHE_SIZE or any(n >= 0x80 for n in lengths):
            return None
        it = iter(lengths)
        fmt = "".join(f"B{next(it)}s" if t is BYTES else t.fmt for _, t in fields)  # type: ignore[misc]
        st = cache[lengths] = struct.Struct("<" + fmt)
        return st

    lines = ["def fast_encode(d):"]
    for i in byte_idx:
        lines.append(f"    {ident[i]} = d[{fields[i][0]!r}]")
    for i in bool_idx:
        lines.append(f"    if d[{fields[i][0]!r}].__class__ is not bool: return None")
    lines.append("    try:")
    lines.append(f"        key = ({''.join(f'len({ident[i]}), ' for i in byte_idx)})")
    lines.append("    except TypeError:")
    lines.append("        return None")
    lines.append("    st = cache_get(key)")
    lines.append("    if st is None:")
    lines.append("        st = new_format(key)")
    lines.append("        if st is None:")
    lines.append("            return None")
    args = []
    for i, (name, t) in enumerate(fields):
        if t is BYTES:
            args += [f"key[{byte_idx.index(i)}]", ident[i]]
        else:
            args.append(f"d[{name!r}]")
    lines.append("    try:")
    lines.append(f"        return st.pack({', '.join(args)})")
    lines.append("    except struct_error:")
    lines.append("        return None")
    enc_ns: dict[str, Any] = {
        "cache_get": cache.get, "new_format": new_format, "struct_error": struct.error, "bool": bool,
    }
    exec("\n".join(lines), enc_ns)  # noqa: S102 - source built above from the declaration
    layout.fast_encode = enc_ns["fast_encode"]

    # -- decoder --------------------------------------------------------------------------
    # Each vector's one-byte length sits at a constant offset plus the lengths before it.
    # Given those lengths, one cached struct unpacks the whole value, length bytes
    # included; ``unpack`` insists on the exact size (no truncation, no trailing byte).
    # First guess: the format last used for a value of this size; it stands only if the
    # length bytes it unpacked are the ones it was built for (then a sequential reading
    # would find every field where the format put it). Otherwise the lengths are read
    # one by one; an index past the end is IndexError.
    by_size: dict[int, tuple[struct.Struct, tuple[int, ...]]] = {}

    lens = [f"l{i}" for i in byte_idx]
    targets = []
    for i, (_, t) in enumerate(fields):
        if t is BYTES:
            targets.append(f"l{i}")
        targets.append(ident[i])
    unpack = f"{', '.join(targets)}, = st.unpack(data)"
    key_expr = f"({''.join(f'{x}, ' for x in lens)})"
    lines = [
        "def fast_decode(data):",
        "    n = len(data)",
        "    hit = by_size_get(n)",
        "    if hit is not None:",
        "        st, key = hit",
        f"        {unpack}",
        f"        if {key_expr} != key:",
        "            hit = None",
        "    if hit is None:",
        "        try:",
    ]
    gap = 0  # bytes of fixed-width fields since the previous vector
    first = True
    for i, (_, t) in enumerate(fields):
        if t is BYTES:
            # the offset of this length byte: ``p`` is the end of the previous vector
            if first:
                lines.append(f"            l{i} = data[{gap}]")
                lines.append(f"            p = {gap + 1} + l{i}")
            else:
                lines.append(f"            l{i} = data[p + {gap}]" if gap else f"            l{i} = data[p]")
                lines.append(f"            p += {gap + 1} + l{i}")
            first = False
            gap = 0
        else:
            gap += struct.calcsize("<" + t.fmt)  # type: ignore[operator]
    lines += ["        except IndexError:", "            return None"]
    if lens:
        lines += [f"        if ({' | '.join(lens)}) >= 128:", "            return None"]
    lines += [
        f"        key = {key_expr}",
        "        st = cache_get(key)",
        "        if st is None:",
        "            st = new_format(key)",
        "            if st is None:",
        "                return None",
        "        if st.size != n:",
        "            return None",
        f"        if len(by_size) < {_FORMAT_CACHE_SIZE}:",
        "            by_size[n] = (st, key)",
        f"        {unpack}",
    ]
    for i in bool_idx:
        lines.append(f"    if {ident[i]} > 1:")
        lines.append("        return None")
        lines.append(f"    {ident[i]} = {ident[i]} == 1")
    # the instance is built as ``MoveStruct._trusted`` does, inline
    lines.append("    obj = new(cls)")
    lines.append("    setattr_(obj, '__dict__', {" + ", ".join(f"{name!r}: {ident[j]}" for j, (name, _) in enumerate(fields)) + "})")
    lines.append("    setattr_(obj, '__pydantic_fields_set__', fields_set)")
    lines.append("    setattr_(obj, '__pydantic_extra__', None)")
    lines.append("    setattr_(obj, '__pydantic_private__', None)")
    lines.append("    return obj")
    dec_ns: dict[str, Any] = {
        "cache_get": cache.get, "new_format": new_format, "by_size_get": by_size.get, "by_size": by_size,
        "new": object.__new__, "cls": cls, "setattr_": _setattr, "fields_set": layout.names,
    }
    exec("\n".join(lines), dec_ns)  # noqa: S102 - source built above from the declaration
    layout.fast_decode = dec_ns["fast_decode"]
    layout.fast_decode_source = "\n".join(lines)


class MoveStruct(BaseModel):
    """Base of every declared Move struct. Frozen: a decoded value is evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    #: Move name, e.g. ``history::LotterySummary``; the JSON/diff path prefix is the short name
    __move_name__: ClassVar[str] = ""
    __layout__: ClassVar[_Layout]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields: list[tuple[str, MoveType]] = []
        human: dict[str, Callable[[Any], str]] = {}
        for name, info in cls.model_fields.items():
            meta = next((m for m in info.metadata if isinstance(m, Move)), None)
            if meta is None:
                raise TypeError(f"{cls.__name__}.{name} has no Move(...) type")
            fields.append((name, meta.type))
            if meta.human:
                human[name] = meta.human
        cls.__layout__ = _Layout(cls.__name__, fields, human)
        _compile(cls.__layout__, cls)

    # -- validation -----------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _check_move_values(cls, data: Any) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise FieldError(f"expected an object, got {type(data).__name__}", path=cls.__name__)
        layout = cls.__layout__
        unknown = [k for k in data if k not in cls.model_fields]
        if unknown:
            raise FieldError(f"unknown field {unknown[0]!r}", path=f"{cls.__name__}")
        out = {}
        for name, mtype in layout.fields:
            if name not in data:
                raise FieldError("missing", path=f"{cls.__name__}.{name}")
            out[name] = mtype.check(data[name], f"{cls.__name__}.{name}")
        return out

    @classmethod
    def _trusted(cls, values: dict[str, Any]) -> "MoveStruct":
        """Build from values the decoder produced (already in range): skip re-validation."""
        obj = cls.__new__(cls)
        _setattr(obj, "__dict__", values)
        _setattr(obj, "__pydantic_fields_set__", cls.__layout__.names)
        _setattr(obj, "__pydantic_extra__", None)
        _setattr(obj, "__pydantic_private__", None)
        return obj

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy; unlike plain pydantic, the ``update`` values are validated like the fields.

        A copy with an out-of-range or mistyped value would otherwise be an invalid
        struct (a bool in a ``u64`` field would even encode, as 0 or 1).
        """
        if update:
            name = type(self).__name__
            types = dict(self.__layout__.fields)
            checked = {}
            for k, v in update.items():
                if k not in types:
                    raise FieldError(f"unknown field {k!r}", path=name)
                checked[k] = types[k].check(v, f"{name}.{k}")
            update = checked
        return super().model_copy(update=update, deep=deep)

    # -- BCS ----------------------------------------------------------------------------

    def to_bcs(self) -> bytes:
        fast = self.__layout__.fast_encode
        if fast is not None:
            data = fast(self.__dict__)
            if data is not None:
                return data
        out = bytearray()
        self._encode_into(out, type(self).__name__)
        return bytes(out)

    def _encode_into(self, out: bytearray, path: str) -> None:
        values = self.__dict__
        for step in self.__layout__.steps:
            kind = step[0]
            if kind == _FIXED:
                _, st, names, bools = step
                try:
                    out += st.pack(*[values[n] for n in names])
                except struct.error:
                    self._encode_slow(names, path)  # raises the precise error
                    raise  # pragma: no cover
                if bools:
                    for i in bools:
                        if not isinstance(values[names[i]], bool):
                            raise EncodeError("expected a bool", path=f"{path}.{names[i]}")
            elif kind == _BYTES:
                v = values[step[1]]
                if not isinstance(v, (bytes, bytearray)):
                    raise EncodeError(f"expected bytes, got {type(v).__name__}", path=f"{path}.{step[1]}")
                n = len(v)
                if n < 0x80:
                    out.append(n)
                else:
                    BYTES.encode(v, out, f"{path}.{step[1]}")
                    continue
                out += v
            else:
                step[2].encode(values[step[1]], out, f"{path}.{step[1]}")

    def _encode_slow(self, names: tuple[str, ...], path: str) -> None:
        scratch = bytearray()
        types = dict(self.__layout__.fields)
        for n in names:
            types[n].encode(self.__dict__[n], scratch, f"{path}.{n}")

    @classmethod
    def from_bcs(cls, data: bytes, *, lenient_uleb: bool = False) -> "MoveStruct":
        """Decode exactly one value; any leftover byte is an error.

        Strict by default: only the canonical encoding is accepted. ``lenient_uleb``
        accepts non-minimal ULEB128 lengths, as the chain's import decoder does.
        """
        if data.__class__ is not bytes:
            data = bytes(data)
        if not lenient_uleb:
            fast = cls.__layout__.fast_decode
            if fast is not None:
                value = fast(data)
                if value is not None:
                    return value
        r = Reader(data, lenient_uleb=lenient_uleb)
        value = cls._decode_slow(r, cls.__name__)
        if r.pos != len(data):
            raise DecodeError(
                f"{len(data) - r.pos} trailing byte(s) after the value", offset=r.pos, path=cls.__name__
            )
        return value

    @classmethod
    def _decode_slow(cls, r: Reader, path: str) -> "MoveStruct":
        values = {name: mtype.decode(r, f"{path}.{name}") for name, mtype in cls.__layout__.fields}
        return cls._trusted(values)

    # -- Move JSON ------------------------------------------------------------------------

    def to_move_json(self) -> dict[str, Any]:
        values = self.__dict__
        return {name: mtype.to_json(values[name]) for name, mtype in self.__layout__.fields}

    @classmethod
    def from_move_json(cls, obj: Any, path: str | None = None) -> "MoveStruct":
        path = path or cls.__name__
        if not isinstance(obj, dict):
            raise FieldError(f"expected a JSON object, got {type(obj).__name__}", path=path)
        unknown = [k for k in obj if k not in cls.model_fields]
        if unknown:
            raise FieldError(f"unknown field {unknown[0]!r}", path=path)
        values = {}
        for name, mtype in cls.__layout__.fields:
            if name not in obj:
                raise FieldError("missing", path=f"{path}.{name}")
            values[name] = mtype.from_json(obj[name], f"{path}.{name}")
        return cls._trusted(values)

    # -- people and diffs -----------------------------------------------------------------

    @classmethod
    def field_names(cls) -> list[str]:
        return [n for n, _ in cls.__layout__.fields]

    @classmethod
    def human_value(cls, name: str, value: Any) -> str:
        """A field value as a person reads it: names for codes, hex for bytes, digits for amounts."""
        fn = cls.__layout__.human.get(name)
        if fn is not None:
            return fn(value)
        if isinstance(value, (bytes, bytearray)):
            return "0x" + bytes(value).hex()
        return str(value)

    def field_diff(self, other: "MoveStruct") -> Iterator[tuple[str, Any, Any]]:
        """(field, mine, theirs) for every field whose value differs, in declaration order."""
        a, b = self.__dict__, other.__dict__
        for name, _ in self.__layout__.fields:
            if a[name] != b[name]:
                yield name, a[name], b[name]


class StructType(MoveType):
    """A declared struct used as a field or element type (``vector<Event>``, ``Option<LegacySummary>``)."""

    def __init__(self, model: type[MoveStruct]) -> None:
        self.model = model
        self.name = model.__move_name__ or model.__name__
        self.min_size = 1

    def check(self, value: Any, path: str) -> MoveStruct:
        if isinstance(value, self.model):
            return value
        if isinstance(value, dict):
            return self.model.model_validate(value)
        raise FieldError(f"expected {self.model.__name__}", path=path)

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, self.model):
            raise EncodeError(f"expected {self.model.__name__}", path=path)
        value._encode_into(out, path)

    def decode(self, r: Reader, path: str) -> MoveStruct:
        return self.model._decode_slow(r, path)

    def to_json(self, value: MoveStruct) -> dict:
        return value.to_move_json()

    def from_json(self, obj: Any, path: str) -> MoveStruct:
        return self.model.from_move_json(obj, path)


__all__ = ["Move", "MoveStruct", "StructType", "encode_uleb128"]
