"""This project's own strict BCS codec, driven by struct declarations.

``MoveStruct`` and ``StructType`` (pydantic) load on first use (PEP 562): the types, the
reader and the layouts import without pydantic.
"""

from typing import TYPE_CHECKING, Any

from dualwrite.bcs.layout import Move
from dualwrite.bcs.types import (
    ADDRESS,
    BOOL,
    BYTES,
    STRING,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    MoveType,
    OptionType,
    Reader,
    VectorType,
    parse_hex,
    parse_type,
)

if TYPE_CHECKING:  # pragma: no cover
    from dualwrite.bcs.struct import MoveStruct, StructType


def __getattr__(name: str) -> Any:
    if name in ("MoveStruct", "StructType"):
        from dualwrite.bcs import struct

        return getattr(struct, name)
    raise AttributeError(f"module 'dualwrite.bcs' has no attribute {name!r}")


__all__ = [
    "ADDRESS", "BOOL", "BYTES", "STRING", "U8", "U16", "U32", "U64", "U128", "U256",
    "Move", "MoveStruct", "MoveType", "OptionType", "Reader", "StructType", "VectorType",
    "parse_hex", "parse_type",
]
