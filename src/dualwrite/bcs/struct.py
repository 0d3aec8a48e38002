"""Move structs declared once, as pydantic models, with their BCS codec compiled from the declaration.

A field is declared ``name: Annotated[int, Move(U64)]``; the field order is the BCS
order. From that one declaration come: validation (range, type, field path in the
error), the BCS encoder/decoder (runs of fixed-width fields are packed with one
``struct.Struct`` call), the Move JSON form, and the field-by-field diff.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

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


_FIXED, _BYTES, _OTHER = 0, 1, 2


def _compile(layout: _Layout) -> None:
    """Group runs of fixed-width fields so each run is one struct (un)pack."""
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


class MoveStruct(BaseModel):
    """Base of every declared Move struct. Frozen: a decoded value is evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

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
        _compile(cls.__layout__)

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
        object.__setattr__(obj, "__dict__", values)
        object.__setattr__(obj, "__pydantic_fields_set__", set(values))
        object.__setattr__(obj, "__pydantic_extra__", None)
        object.__setattr__(obj, "__pydantic_private__", None)
        return obj

    # -- BCS ----------------------------------------------------------------------------

    def to_bcs(self) -> bytes:
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
        """Decode exactly one value; any leftover byte is an error."""
        data = bytes(data)
        if not lenient_uleb:
            fast = cls._decode_fast(data, 0)
            if fast is not None and fast[1] == len(data):
                return fast[0]
        r = Reader(data, lenient_uleb=lenient_uleb)
        value = cls._decode_slow(r, cls.__name__)
        if r.pos != len(data):
            raise DecodeError(
                f"{len(data) - r.pos} trailing byte(s) after the value", offset=r.pos, path=cls.__name__
            )
        return value

    @classmethod
    def _decode_fast(cls, data: bytes, pos: int) -> tuple["MoveStruct", int] | None:
        """The common case, with no error reporting: any oddity returns None for the slow path."""
        n = len(data)
        values: dict[str, Any] = {}
        for step in cls.__layout__.steps:
            kind = step[0]
            if kind == _FIXED:
                _, st, names, bools = step
                end = pos + st.size
                if end > n:
                    return None
                vals = st.unpack_from(data, pos)
                pos = end
                if bools:
                    vals = list(vals)
                    for i in bools:
                        if vals[i] > 1:
                            return None
                        vals[i] = vals[i] == 1
                values.update(zip(names, vals))
            elif kind == _BYTES:
                if pos >= n:
                    return None
                length = data[pos]
                if length >= 0x80:
                    return None
                pos += 1
                end = pos + length
                if end > n:
                    return None
                values[step[1]] = data[pos:end]
                pos = end
            else:
                return None
        return cls._trusted(values), pos

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
