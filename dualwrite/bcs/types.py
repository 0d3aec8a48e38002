"""Move value types: each knows its BCS encoding, its Move JSON form and its Python form.

A struct's layout is a list of ``(field name, MoveType)``; the codec, the pydantic
models, the JSON rendering and the field diff are all driven from that one list.
Decoding is strict (canonical BCS only) unless a reader is told to accept
non-minimal ULEB128 lengths, as the on-chain ``import_legacy_summary_admin`` does.

Three ways in for a value: ``check`` takes the Python form only (constructors, copies),
``from_json`` the Move JSON form (``"0x.."`` bytes, decimal-string u64), and ``parse``
either (``model_validate``: data from outside may come in both forms).
"""

from __future__ import annotations

import struct
from typing import Any

from dualwrite.errors import DecodeError, EncodeError, FieldError
from dualwrite.words import count

MAX_SEQUENCE_LENGTH = 2**31 - 1


class Reader:
    """A cursor over untrusted bytes; every read is bounds-checked before it happens."""

    __slots__ = ("data", "pos", "lenient_uleb")

    def __init__(self, data: bytes, pos: int = 0, *, lenient_uleb: bool = False) -> None:
        self.data = data
        self.pos = pos
        self.lenient_uleb = lenient_uleb

    def take(self, n: int, path: str, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError(
                f"truncated: {what} needs {count(n, 'byte')}, {len(self.data) - self.pos} left",
                offset=self.pos,
                path=path,
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uleb128(self, path: str) -> int:
        """A sequence length: ULEB128, minimal unless lenient, at most 2^31-1."""
        start = self.pos
        data = self.data
        value = 0
        shift = 0
        while True:
            if self.pos >= len(data):
                raise DecodeError("truncated: ULEB128 length runs past the end", offset=start, path=path)
            byte = data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                raise DecodeError("ULEB128 length longer than 10 bytes", offset=start, path=path)
        if not self.lenient_uleb and byte == 0 and self.pos - start > 1:
            raise DecodeError("non-minimal ULEB128 length (trailing zero group)", offset=start, path=path)
        if value > MAX_SEQUENCE_LENGTH:
            raise DecodeError(f"length {value} exceeds 2^31-1", offset=start, path=path)
        return value

    def length(self, path: str, elem_size: int = 1) -> int:
        """A length prefix checked against the bytes that remain, before anything is allocated."""
        start = self.pos
        n = self.uleb128(path)
        left = len(self.data) - self.pos
        if n * elem_size > left:
            raise DecodeError(
                f"length {n} exceeds the {count(left, 'byte')} left", offset=start, path=path
            )
        return n


def encode_uleb128(n: int, out: bytearray) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def uleb128_bytes(n: int) -> bytes:
    out = bytearray()
    encode_uleb128(n, out)
    return bytes(out)


class MoveType:
    """Base of the Move value types. ``name`` is the Move spelling (``u64``, ``vector<u8>``)."""

    name: str = "?"
    #: struct format for fixed-width integers (little-endian), used by compiled struct codecs
    fmt: str | None = None
    #: minimum encoded size in bytes, to bound element counts before allocation
    min_size: int = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def decode(self, r: Reader, path: str) -> Any:  # pragma: no cover
        raise NotImplementedError

    def to_json(self, value: Any) -> Any:
        return value

    def from_json(self, obj: Any, path: str) -> Any:  # pragma: no cover
        raise NotImplementedError

    def check(self, value: Any, path: str) -> Any:
        """Validate a Python value of this type (used by the models)."""
        return value

    def parse(self, obj: Any, path: str) -> Any:
        """Validate a value given in its Move JSON form or its Python form."""
        return self.from_json(obj, path)

    def json_schema(self, reading: bool) -> dict[str, Any]:
        """JSON Schema of the Move JSON form: what is written, or (``reading``) what is read."""
        return {}

    def __repr__(self) -> str:
        return self.name


class BoolType(MoveType):
    name = "bool"
    fmt = "B"  # packed as a byte in struct runs; the decoder checks 0/1
    min_size = 1

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, bool):
            raise EncodeError(f"expected a bool, got {type(value).__name__}", path=path)
        out.append(1 if value else 0)

    def decode(self, r: Reader, path: str) -> bool:
        b = r.take(1, path, "bool")[0]
        if b > 1:
            raise DecodeError(f"invalid bool byte {b:#04x} (must be 0x00 or 0x01)", offset=r.pos - 1, path=path)
        return b == 1

    def from_json(self, obj: Any, path: str) -> bool:
        if isinstance(obj, bool):
            return obj
        raise FieldError(f"expected true or false, got {obj!r}", path=path)

    def check(self, value: Any, path: str) -> bool:
        return self.from_json(value, path)

    def json_schema(self, reading: bool) -> dict[str, Any]:
        return {"type": "boolean"}


class UIntType(MoveType):
    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.size = bits // 8
        self.max = (1 << bits) - 1
        self.name = f"u{bits}"
        self.min_size = self.size
        self.fmt = {8: "B", 16: "H", 32: "I", 64: "Q"}.get(bits)
        #: Move JSON renders u64 and wider as decimal strings
        self.json_as_string = bits >= 64

    def check(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(f"expected an integer for {self.name}, got {type(value).__name__}", path=path)
        if not 0 <= value <= self.max:
            raise FieldError(f"{value} out of range for {self.name} (0..{self.max})", path=path)
        return value

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError(f"expected an integer for {self.name}, got {type(value).__name__}", path=path)
        if not 0 <= value <= self.max:
            raise EncodeError(f"{value} out of range for {self.name} (0..{self.max})", path=path)
        out += value.to_bytes(self.size, "little")

    def decode(self, r: Reader, path: str) -> int:
        return int.from_bytes(r.take(self.size, path, self.name), "little")

    def to_json(self, value: int) -> Any:
        return str(value) if self.json_as_string else value

    def json_schema(self, reading: bool) -> dict[str, Any]:
        number = {"type": "integer", "minimum": 0, "maximum": self.max}
        text = {"type": "string", "pattern": "^[0-9]+$", "description": f"{self.name}, decimal"}
        if reading:  # both forms are read
            return {"anyOf": [text, number]}
        return text if self.json_as_string else number

    def from_json(self, obj: Any, path: str) -> int:
        if isinstance(obj, bool):
            raise FieldError(f"expected {self.name}, got a boolean", path=path)
        if isinstance(obj, int):
            value = obj
        elif isinstance(obj, str) and self.json_as_string and obj.isascii() and obj.isdigit() and len(obj) <= 80:
            value = int(obj)  # Move JSON renders u64 and wider as decimal strings; u8..u32 as numbers
        else:
            shown = repr(obj) if len(repr(obj)) <= 40 else repr(obj)[:40] + "…"
            form = "an integer or a decimal string" if self.json_as_string else "a JSON number"
            raise FieldError(f"expected {self.name} as {form}, got {shown}", path=path)
        return self.check(value, path)


def parse_hex(text: str, path: str) -> bytes:
    """``0x``-prefixed (or bare) hex, any case; ``_`` and whitespace allowed between digits."""
    s = "".join(text.split()).replace("_", "")
    if s[:2] in ("0x", "0X"):
        s = s[2:]
    if len(s) % 2:
        raise FieldError(f"odd number of hex digits ({len(s)})", path=path)
    try:
        return bytes.fromhex(s)
    except ValueError:
        bad = next((i for i, c in enumerate(s) if c not in "0123456789abcdefABCDEF"), 0)
        raise FieldError(f"not hex: character {s[bad]!r} at position {bad}", path=path) from None


class AddressType(MoveType):
    name = "address"
    min_size = 32

    def check(self, value: Any, path: str) -> bytes:
        if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
            raise FieldError("an address is 32 bytes", path=path)
        return bytes(value)

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
            raise EncodeError("an address is 32 bytes", path=path)
        out += value

    def decode(self, r: Reader, path: str) -> bytes:
        return r.take(32, path, "address")

    def to_json(self, value: bytes) -> str:
        return "0x" + value.hex()

    def parse(self, obj: Any, path: str) -> bytes:
        return self.check(obj, path) if isinstance(obj, (bytes, bytearray)) else self.from_json(obj, path)

    def json_schema(self, reading: bool) -> dict[str, Any]:
        return {"type": "string", "pattern": "^(0[xX])?[0-9a-fA-F]{1,64}$"}

    def from_json(self, obj: Any, path: str) -> bytes:
        if not isinstance(obj, str):
            raise FieldError(f"expected an address string, got {obj!r}", path=path)
        s = obj[2:] if obj[:2] in ("0x", "0X") else obj
        if not 0 < len(s) <= 64:
            raise FieldError(f"address {obj!r} is not 1..64 hex digits", path=path)
        return parse_hex(s.rjust(64, "0"), path)


class BytesType(MoveType):
    """``vector<u8>``: Python ``bytes``, Move JSON ``"0x.."``."""

    name = "vector<u8>"
    min_size = 1

    def check(self, value: Any, path: str) -> bytes:
        if isinstance(value, (bytes, bytearray)):
            if len(value) > MAX_SEQUENCE_LENGTH:
                raise FieldError("longer than 2^31-1 bytes", path=path)
            return bytes(value)
        raise FieldError(f"expected bytes, got {type(value).__name__}", path=path)

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, (bytes, bytearray)):
            raise EncodeError(f"expected bytes, got {type(value).__name__}", path=path)
        n = len(value)
        if n > MAX_SEQUENCE_LENGTH:
            raise EncodeError("longer than 2^31-1 bytes", path=path)
        encode_uleb128(n, out)
        out += value

    def decode(self, r: Reader, path: str) -> bytes:
        n = r.length(path)
        return r.take(n, path, "vector<u8>")

    def to_json(self, value: bytes) -> str:
        return "0x" + value.hex()

    def parse(self, obj: Any, path: str) -> bytes:
        return self.check(obj, path) if isinstance(obj, (bytes, bytearray)) else self.from_json(obj, path)

    def json_schema(self, reading: bool) -> dict[str, Any]:
        written = {"type": "string", "pattern": "^0x([0-9a-f]{2})*$"}
        if not reading:
            return written
        # read: any case, ``_``/whitespace between digits, or a list of byte values
        return {"anyOf": [{"type": "string", "pattern": "^(0[xX])?[0-9a-fA-F_\\s]*$"},
                          {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}}]}

    def from_json(self, obj: Any, path: str) -> bytes:
        if isinstance(obj, str):
            return parse_hex(obj, path)
        if isinstance(obj, list):  # some renderers give vector<u8> as a list of numbers
            out = bytearray()
            for i, x in enumerate(obj):
                if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= 255:
                    raise FieldError(f"byte {x!r} is not 0..255", path=f"{path}[{i}]")
                out.append(x)
            return bytes(out)
        raise FieldError(f"expected 0x-hex bytes, got {obj!r}", path=path)


class StringType(MoveType):
    """``0x1::string::String``: a ``vector<u8>`` holding valid UTF-8."""

    name = "0x1::string::String"
    min_size = 1

    def check(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise FieldError(f"expected a string, got {type(value).__name__}", path=path)
        return value

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, str):
            raise EncodeError(f"expected a string, got {type(value).__name__}", path=path)
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise EncodeError(f"not encodable as UTF-8 ({e.reason})", path=path) from None
        encode_uleb128(len(raw), out)
        out += raw

    def decode(self, r: Reader, path: str) -> str:
        n = r.length(path)
        start = r.pos
        raw = r.take(n, path, "string")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid UTF-8 in String ({e.reason})", offset=start + e.start, path=path) from None

    def from_json(self, obj: Any, path: str) -> str:
        return self.check(obj, path)

    def json_schema(self, reading: bool) -> dict[str, Any]:
        return {"type": "string"}


class VectorType(MoveType):
    def __init__(self, elem: MoveType) -> None:
        self.elem = elem
        self.name = f"vector<{elem.name}>"
        self.min_size = 1

    def check(self, value: Any, path: str) -> list:
        if not isinstance(value, (list, tuple)):
            raise FieldError(f"expected a list, got {type(value).__name__}", path=path)
        return [self.elem.check(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if not isinstance(value, (list, tuple)):
            raise EncodeError(f"expected a list, got {type(value).__name__}", path=path)
        encode_uleb128(len(value), out)
        for i, v in enumerate(value):
            self.elem.encode(v, out, f"{path}[{i}]")

    def decode(self, r: Reader, path: str) -> list:
        n = r.length(path, self.elem.min_size)
        return [self.elem.decode(r, f"{path}[{i}]") for i in range(n)]

    def to_json(self, value: list) -> list:
        return [self.elem.to_json(v) for v in value]

    def from_json(self, obj: Any, path: str) -> list:
        if not isinstance(obj, list):
            raise FieldError(f"expected a JSON array, got {obj!r}", path=path)
        return [self.elem.from_json(v, f"{path}[{i}]") for i, v in enumerate(obj)]

    def json_schema(self, reading: bool) -> dict[str, Any]:
        return {"type": "array", "items": self.elem.json_schema(reading)}

    def parse(self, obj: Any, path: str) -> list:
        if not isinstance(obj, (list, tuple)):
            raise FieldError(f"expected a list, got {obj!r}", path=path)
        return [self.elem.parse(v, f"{path}[{i}]") for i, v in enumerate(obj)]


class OptionType(MoveType):
    """``Option<T>``: Python ``None`` or the value; BCS a vector of 0 or 1; JSON ``{"vec": [...]}``."""

    def __init__(self, elem: MoveType) -> None:
        self.elem = elem
        self.name = f"0x1::option::Option<{elem.name}>"
        self.min_size = 1

    def check(self, value: Any, path: str) -> Any:
        return None if value is None else self.elem.check(value, path)

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            self.elem.encode(value, out, path)

    def decode(self, r: Reader, path: str) -> Any:
        start = r.pos
        n = r.uleb128(path)
        if n == 0:
            return None
        if n != 1:
            raise DecodeError(f"Option with {n} elements (must be 0 or 1)", offset=start, path=path)
        return self.elem.decode(r, path)

    def to_json(self, value: Any) -> dict:
        return {"vec": [] if value is None else [self.elem.to_json(value)]}

    def from_json(self, obj: Any, path: str) -> Any:
        if obj is None:
            return None
        if isinstance(obj, dict) and set(obj) == {"vec"} and isinstance(obj["vec"], list):
            vec = obj["vec"]
            if not vec:
                return None
            if len(vec) == 1:
                return self.elem.from_json(vec[0], path)
            raise FieldError(f"Option with {len(vec)} elements", path=path)
        raise FieldError(f'expected an Option as {{"vec": [...]}} or null, got {obj!r}', path=path)

    def json_schema(self, reading: bool) -> dict[str, Any]:
        vec = {"type": "object", "additionalProperties": False, "required": ["vec"],
               "properties": {"vec": {"type": "array", "maxItems": 1, "items": self.elem.json_schema(reading)}}}
        return {"anyOf": [vec, {"type": "null"}]} if reading else vec

    def parse(self, obj: Any, path: str) -> Any:
        """``None``, the Move JSON ``{"vec": [...]}``, or the Python value itself.

        A bare JSON value (``"0xab"``) is not an Option in Move JSON: only the
        Python form (``b"\\xab"``) is taken without its ``{"vec": [...]}``.
        """
        if obj is None:
            return None
        if isinstance(obj, dict):
            vec = obj.get("vec")
            if set(obj) != {"vec"} or not isinstance(vec, list):
                raise FieldError(f'expected an Option as {{"vec": [...]}} or null, got {obj!r}', path=path)
            if len(vec) > 1:
                raise FieldError(f"Option with {len(vec)} elements", path=path)
            return self.elem.parse(vec[0], path) if vec else None
        return self.elem.check(obj, path)


class Variant:
    """One variant of an ``EnumType``: its name, its value's type (None: a unit variant) and whether this
    codec takes it (a variant declared only to be refused by name, with its index, on decode)."""

    __slots__ = ("name", "type", "supported")

    def __init__(self, name: str, type: MoveType | None = None, *, supported: bool = True) -> None:
        self.name = name
        self.type = type
        self.supported = supported


class EnumType(MoveType):
    """A Rust/Move enum in BCS: the variant's index as ULEB128, then its value (nothing for a unit variant).

    The Python value and the JSON form are both ``{"Name": value}`` (serde's external tagging, the form the
    node's JSON bodies use); a unit variant is ``{"Name": None}`` in Python and ``"Name"`` in JSON.
    Variants declared ``supported=False`` are refused by name on decode and on encode."""

    def __init__(self, name: str, variants: list[Variant]) -> None:
        self.name = name
        self.variants = variants
        self.index = {v.name: i for i, v in enumerate(variants)}
        self.min_size = 1

    def _supported(self) -> str:
        return ", ".join(f"{i} ({v.name})" for i, v in enumerate(self.variants) if v.supported)

    def _variant(self, value: Any, path: str, error: type) -> tuple[int, Variant, Any]:
        if isinstance(value, str):
            name, inner = value, None
        elif isinstance(value, dict) and len(value) == 1:
            ((name, inner),) = value.items()
        else:
            raise error(f"expected {self.name} as {{\"Variant\": value}}, got {type(value).__name__}", path=path)
        i = self.index.get(name)
        if i is None:
            raise error(f"unknown {self.name} variant {name!r} (known: {self._supported()})", path=path)
        v = self.variants[i]
        if not v.supported:
            raise error(f"{self.name} variant {i} ({v.name}) is not supported; only {self._supported()}", path=path)
        return i, v, inner

    def encode(self, value: Any, out: bytearray, path: str) -> None:
        i, v, inner = self._variant(value, path, EncodeError)
        encode_uleb128(i, out)
        if v.type is not None:
            v.type.encode(inner, out, f"{path}.{v.name}")

    def decode(self, r: Reader, path: str) -> dict:
        start = r.pos
        i = r.uleb128(path)
        if i >= len(self.variants):
            raise DecodeError(f"unknown {self.name} variant {i} (known: {self._supported()})", offset=start, path=path)
        v = self.variants[i]
        if not v.supported:
            raise DecodeError(f"{self.name} variant {i} ({v.name}) is not supported; only {self._supported()}",
                              offset=start, path=path)
        return {v.name: None if v.type is None else v.type.decode(r, f"{path}.{v.name}")}

    def to_json(self, value: dict) -> Any:
        ((name, inner),) = value.items()
        t = self.variants[self.index[name]].type
        return name if t is None else {name: t.to_json(inner)}

    def _convert(self, obj: Any, path: str, how: str) -> dict:
        _, v, inner = self._variant(obj, path, FieldError)
        if v.type is None:
            return {v.name: None}
        return {v.name: getattr(v.type, how)(inner, f"{path}.{v.name}")}

    def from_json(self, obj: Any, path: str) -> dict:
        return self._convert(obj, path, "from_json")

    def parse(self, obj: Any, path: str) -> dict:
        return self._convert(obj, path, "parse")

    def check(self, value: Any, path: str) -> dict:
        return self._convert(value, path, "check")


def to_bcs(mtype: MoveType, value: Any, path: str) -> bytes:
    """One value of ``mtype`` as BCS (through the type objects: every error names its field path)."""
    out = bytearray()
    mtype.encode(value, out, path)
    return bytes(out)


def from_bcs(mtype: MoveType, data: bytes, path: str) -> Any:
    """Exactly one value of ``mtype``; a trailing byte is an error."""
    r = Reader(bytes(data))
    value = mtype.decode(r, path)
    if r.pos != len(r.data):
        from dualwrite.words import count

        raise DecodeError(f"{count(len(r.data) - r.pos, 'trailing byte')} after the value", offset=r.pos, path=path)
    return value


BOOL = BoolType()
U8 = UIntType(8)
U16 = UIntType(16)
U32 = UIntType(32)
U64 = UIntType(64)
U128 = UIntType(128)
U256 = UIntType(256)
ADDRESS = AddressType()
BYTES = BytesType()
STRING = StringType()

_SCALARS: dict[str, MoveType] = {
    t.name: t for t in (BOOL, U8, U16, U32, U64, U128, U256, ADDRESS, BYTES, STRING)
}


def parse_type(text: str) -> MoveType:
    """Parse a Move type name (``u64``, ``vector<vector<u8>>``, ``0x1::option::Option<u64>``)."""
    t = text.strip().replace(" ", "")
    if t in _SCALARS:
        return _SCALARS[t]
    if t in ("String", "string::String", "0x1::string::String"):
        return STRING
    if t.startswith("vector<") and t.endswith(">"):
        inner = parse_type(t[7:-1])
        return BYTES if inner is U8 else VectorType(inner)
    for prefix in ("Option<", "option::Option<", "0x1::option::Option<"):
        if t.startswith(prefix) and t.endswith(">"):
            return OptionType(parse_type(t[len(prefix) : -1]))
    raise ValueError(f"unknown Move type {text!r}")


def fixed_struct(types: list[MoveType]) -> struct.Struct:
    return struct.Struct("<" + "".join(t.fmt for t in types))  # type: ignore[misc]
