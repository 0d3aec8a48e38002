"""A struct's layout, read from its one declaration without pydantic.

``dualwrite.layouts`` declares each Move struct as a plain annotated class
(``id: Annotated[int, Move(U64)]``, field order = BCS order); ``dualwrite.structs`` makes the
pydantic models of those same classes. Everything that only needs the field list (the
simulator's views, the ``status`` read path) takes it from here, so a command that never
builds a model never imports pydantic: that import alone is half of the 100 ms start-up budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, get_origin, get_type_hints

from dualwrite.bcs.types import MoveType
from dualwrite.errors import EncodeError, FieldError


@dataclass(frozen=True)
class Move:
    """Field metadata: the Move type, and how to show a value to a person."""

    type: MoveType
    human: Callable[[Any], str] | None = None

    # pydantic's hooks, for the models of ``dualwrite.structs``; pydantic_core is imported only
    # when pydantic itself asks (it is loaded by then)
    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        # The model validates all its fields in one pass over the declaration (``_validate``),
        # so the field itself checks nothing more; its JSON form is its Move JSON.
        return core_schema.any_schema(
            serialization=core_schema.plain_serializer_function_ser_schema(self.type.to_json, when_used="json")
        )

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        return self.type.json_schema(reading=handler.mode == "validation")


@dataclass
class Layout:
    name: str
    fields: list[tuple[str, MoveType]]
    human: dict[str, Callable[[Any], str]] = field(default_factory=dict)
    #: the field names: the ``fields_set`` of every value the decoders build. Shared, as
    #: the structs are frozen and pydantic copies it before ``model_copy`` updates it.
    names: set[str] = field(default_factory=set)
    #: the generated codec (``codegen``) of a model, built on first use so that importing the
    #: structs stays cheap; ``None`` until then, and for layouts it does not cover
    codec: Any = None
    encode: Callable[[dict], bytes | None] = field(default=lambda d: None)
    decode: Callable[[bytes], Any] = field(default=lambda data: None)

    @classmethod
    def of(cls, fields: list[tuple[str, Move]], name: str) -> "Layout":
        return cls(name, [(n, m.type) for n, m in fields], {n: m.human for n, m in fields if m.human},
                   names={n for n, _ in fields})

    def values(self, data: Any, path: str, *, python_only: bool = False) -> dict[str, Any]:
        """Every field checked in declaration order; the first bad one raises ``FieldError``.

        Move JSON or Python values (``python_only``: Python values only, as constructors take)."""
        if not isinstance(data, dict):
            raise FieldError(f"expected an object, got {type(data).__name__}", path=path)
        unknown = [k for k in data if k not in self.names]
        if unknown:
            raise FieldError(f"unknown field {unknown[0]!r}", path=path)
        out = {}
        for name, mtype in self.fields:
            if name not in data:
                raise FieldError("missing", path=f"{path}.{name}")
            out[name] = (mtype.check if python_only else mtype.parse)(data[name], f"{path}.{name}")
        return out

    def to_json(self, values: dict[str, Any]) -> dict[str, Any]:
        return {name: mtype.to_json(values[name]) for name, mtype in self.fields}


def move_of(owner: type, name: str, metadata: Any) -> Move:
    """A field's ``Move(...)`` among its annotation's metadata (every field must have one)."""
    meta = next((m for m in metadata if isinstance(m, Move)), None)
    if meta is None:
        raise TypeError(f"{owner.__name__}.{name} has no Move(...) type")
    return meta


def declared(cls: type) -> list[tuple[str, Move]]:
    """The ``Move(...)`` fields of a declaration class, in declaration order (its own and its bases')."""
    hints = get_type_hints(cls, include_extras=True)  # each base's names from its own module
    return [(name, move_of(cls, name, getattr(hint, "__metadata__", ())))
            for name, hint in hints.items() if get_origin(hint) is not ClassVar and not name.startswith("_")]


_LAYOUTS: dict[type, Layout] = {}


def layout_of(cls: type) -> Layout:
    """The layout of a declaration class of ``dualwrite.layouts`` (computed once)."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = Layout.of(declared(cls), cls.__name__)
    return layout


class RecordType(MoveType):
    """A declared struct as a view's return type, written as Move JSON from a plain dict of its field
    values (what the simulator's views build where no model is needed) or from a model."""

    def __init__(self, decl: type) -> None:
        self.decl = decl
        self.name = getattr(decl, "__move_name__", "") or decl.__name__
        self.min_size = 1

    def to_json(self, value: Any) -> dict[str, Any]:
        return layout_of(self.decl).to_json(value if isinstance(value, dict) else value.__dict__)

    # the codec of a record held as a plain dict of its fields (the transaction layouts: no model)
    def encode(self, value: Any, out: bytearray, path: str) -> None:
        values = value if isinstance(value, dict) else getattr(value, "__dict__", None)
        if not isinstance(values, dict):
            raise EncodeError(f"expected the fields of {self.decl.__name__}, got {type(value).__name__}", path=path)
        for name, mtype in layout_of(self.decl).fields:
            if name not in values:
                raise EncodeError("missing", path=f"{path}.{name}")
            mtype.encode(values[name], out, f"{path}.{name}")

    def decode(self, r: Any, path: str) -> dict[str, Any]:
        return {name: mtype.decode(r, f"{path}.{name}") for name, mtype in layout_of(self.decl).fields}

    def check(self, value: Any, path: str) -> dict[str, Any]:
        return layout_of(self.decl).values(value if isinstance(value, dict) else value.__dict__, path, python_only=True)

    def from_json(self, obj: Any, path: str) -> dict[str, Any]:
        return layout_of(self.decl).values(obj, path)

    parse = from_json


__all__ = ["Layout", "Move", "RecordType", "declared", "layout_of", "move_of"]
