"""This project's own strict BCS codec, driven by struct declarations."""

from dualwrite.bcs.struct import Move, MoveStruct, StructType
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

__all__ = [
    "ADDRESS", "BOOL", "BYTES", "STRING", "U8", "U16", "U32", "U64", "U128", "U256",
    "Move", "MoveStruct", "MoveType", "OptionType", "Reader", "StructType", "VectorType",
    "parse_hex", "parse_type",
]
