"""The pydantic models of the Move structs, with their BCS codec generated from the declaration.

A field is declared ``name: Annotated[int, Move(U64)]`` (in ``dualwrite.layouts``); the field
order is the BCS order. From that one declaration come: validation (range, type, field path in the
error), the BCS encoder/decoder (``codegen``: straight-line code for every vector
length, with the per-field type objects as the reference that reports every error
with its byte offset and field path), the Move JSON form — which is the models' JSON
form too (``model_dump(mode="json")``, ``model_dump_json``, ``model_validate_json``) —
and the field-by-field diff.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from dualwrite.bcs import codegen
from dualwrite.bcs.codegen import Codec
from dualwrite.bcs.layout import Layout, Move, move_of
from dualwrite.bcs.types import MoveType, Reader
from dualwrite.errors import DecodeError, EncodeError, FieldError
from dualwrite.words import count

_setattr = object.__setattr__


def _fill(obj: Any, values: dict[str, Any], names: set[str]) -> None:
    """Set what pydantic's own validator would set on a new instance."""
    _setattr(obj, "__dict__", values)
    _setattr(obj, "__pydantic_fields_set__", names)
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)


_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _loc(path: str, name: str) -> tuple:
    """``LotterySummary.series_code[1]`` -> ``("series_code", 1)``: pydantic's ``loc``."""
    rest = path[len(name):] if path.startswith(name) else "." + path
    return tuple(int(i) if i else f for f, i in _PATH_PART.findall(rest))


def _validation_error(title: str, errors: list) -> ValidationError:
    line_errors = [
        e if isinstance(e, dict) else InitErrorDetails(
            type=PydanticCustomError("move_value", "{reason}", {"reason": e[1]}), loc=e[0], input=e[2]
        )
        for e in errors
    ]
    return ValidationError.from_exception_data(title, line_errors)


def _attach_codec(layout: Layout, cls: type) -> None:
    """Point ``layout.encode``/``decode`` at stubs that build the generated codec on first call."""
    if not codegen.supports(layout.fields):
        return

    def ready() -> Codec:
        if layout.codec is None:
            layout.codec = codegen.build(cls, layout.fields, layout.names)
            layout.encode, layout.decode = layout.codec.encode, layout.codec.decode
        return layout.codec

    layout.encode = lambda d: ready().encode(d)
    layout.decode = lambda data: ready().decode(data)


class MoveStruct(BaseModel):
    """Base of every declared Move struct. Frozen: a decoded value is evidence.

    Three ways to build one, with the same checks (no floats, no bools for integers,
    nothing out of range, no odd-length hex), each naming the field:

    - ``LotterySummary(id=1, ...)`` takes Python values (``int``, ``bytes``, ``None``)
      and raises ``FieldError``;
    - ``model_validate`` / ``model_validate_json`` take Move JSON (u64 as decimal
      strings, ``vector<u8>`` as ``"0x.."``, ``Option`` as ``{"vec": [...]}``) or Python
      values, and raise pydantic's ``ValidationError`` (one entry per bad field);
    - ``from_move_json`` is ``model_validate`` raising ``FieldError`` with a path prefix
      (what the CLI reports).
    """

    # defer_build: the pydantic schema is built on the first model_validate/model_dump,
    # not at import (constructors, copies and the codec do not need it)
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    #: Move name, e.g. ``history::LotterySummary``; the JSON/diff path prefix is the short name
    __move_name__: ClassVar[str] = ""
    __layout__: ClassVar[Layout]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.__layout__ = Layout.of([(name, move_of(cls, name, info.metadata)) for name, info in cls.model_fields.items()],
                                   cls.__name__)
        _attach_codec(cls.__layout__, cls)

    # -- building ---------------------------------------------------------------------

    def __init__(self, /, **data: Any) -> None:
        cls = type(self)
        _fill(self, cls._values(data, cls.__name__, python_only=True), cls.__layout__.names)

    # pydantic's validators build instances themselves (through ``_validate``), as for
    # BaseModel's own __init__, instead of calling this one with the raw input
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def _values(cls, data: Any, path: str, *, python_only: bool = False) -> dict[str, Any]:
        """Every field checked in declaration order; the first bad one raises ``FieldError``."""
        return cls.__layout__.values(data, path, python_only=python_only)

    @model_validator(mode="before")
    @classmethod
    def _validate(cls, data: Any) -> Any:
        """pydantic's entry (``model_validate``, ``_json``, a field of another model): both forms."""
        if isinstance(data, cls):
            return data
        name = cls.__name__
        if not isinstance(data, dict):
            raise _validation_error(name, [((), f"expected an object, got {type(data).__name__}", data)])
        errors: list[tuple[tuple, str, Any] | InitErrorDetails] = []
        out = {}
        for key in data:
            if key not in cls.__layout__.names:
                errors.append(InitErrorDetails(type="extra_forbidden", loc=(key,), input=data[key]))
        for fname, mtype in cls.__layout__.fields:
            if fname not in data:
                errors.append(InitErrorDetails(type="missing", loc=(fname,), input=data))
                continue
            try:
                out[fname] = mtype.parse(data[fname], f"{name}.{fname}")
            except FieldError as e:
                errors.append((_loc(e.path, name), e.reason, data[fname]))
        if errors:
            raise _validation_error(name, errors)
        return out

    @classmethod
    def _trusted(cls, values: dict[str, Any]) -> "MoveStruct":
        """Build from values already checked (decoder, JSON reader): skip re-validation."""
        obj = cls.__new__(cls)
        _fill(obj, values, cls.__layout__.names)
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
        data = self.__layout__.encode(self.__dict__)
        if data is None:  # not a generated layout, or something to report: the reference says what
            out = bytearray()
            self._encode_into(out, type(self).__name__)
            data = bytes(out)
        return data

    def _encode_into(self, out: bytearray, path: str) -> None:
        """The reference encoder: field by field through the type objects."""
        values = self.__dict__
        for name, mtype in self.__layout__.fields:
            mtype.encode(values[name], out, f"{path}.{name}")

    @classmethod
    def from_bcs(cls, data: bytes, *, lenient_uleb: bool = False) -> "MoveStruct":
        """Decode exactly one value; any leftover byte is an error.

        Strict by default: only the canonical encoding is accepted. ``lenient_uleb``
        accepts non-minimal ULEB128 lengths, as the chain's import decoder does.
        """
        if data.__class__ is not bytes:
            data = bytes(data)
        if not lenient_uleb:
            value = cls.__layout__.decode(data)
            if value is not None:
                return value
        r = Reader(data, lenient_uleb=lenient_uleb)
        value = cls._decode_from(r, cls.__name__)
        if r.pos != len(data):
            raise DecodeError(
                f"{count(len(data) - r.pos, 'trailing byte')} after the value", offset=r.pos, path=cls.__name__
            )
        return value

    @classmethod
    def _decode_from(cls, r: Reader, path: str) -> "MoveStruct":
        """The reference decoder: field by field through the type objects, every error precise."""
        values = {name: mtype.decode(r, f"{path}.{name}") for name, mtype in cls.__layout__.fields}
        return cls._trusted(values)

    # -- Move JSON (the same as model_dump(mode="json") / model_validate) ---------------------

    def to_move_json(self) -> dict[str, Any]:
        return self.__layout__.to_json(self.__dict__)

    @classmethod
    def from_move_json(cls, obj: Any, path: str | None = None) -> "MoveStruct":
        """``model_validate``, raising ``FieldError`` whose path starts with ``path``."""
        return cls._trusted(cls._values(obj, path or cls.__name__))

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
            return self.model._trusted(self.model._values(value, path, python_only=True))
        raise FieldError(f"expected {self.model.__name__}", path=path)

    def parse(self, obj: Any, path: str) -> MoveStruct:
        if isinstance(obj, self.model):
            return obj
        return self.model._trusted(self.model._values(obj, path))

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, self.model):
            raise EncodeError(f"expected {self.model.__name__}", path=path)
        value._encode_into(out, path)

    def decode(self, r: Reader, path: str) -> MoveStruct:
        return self.model._decode_from(r, path)

    def to_json(self, value: MoveStruct) -> dict:
        return value.to_move_json()

    def json_schema(self, reading: bool) -> dict[str, Any]:
        return {"type": "object", "title": self.model.__name__, "additionalProperties": False,
                "required": self.model.field_names(),
                "properties": {n: t.json_schema(reading) for n, t in self.model.__layout__.fields}}

    def from_json(self, obj: Any, path: str) -> MoveStruct:
        return self.model.from_move_json(obj, path)


__all__ = ["Move", "MoveStruct", "StructType"]
