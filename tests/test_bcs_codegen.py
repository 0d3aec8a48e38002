"""The generated codecs (dualwrite/bcs/codegen.py) against the reference path, on every shape.

The reference is the per-field type objects (``MoveStruct._encode_into`` / ``_decode_from``
through a ``Reader``): what the codec means. The generated code must give the same bytes
and the same values on every shape — vector lengths on both sides of each ULEB128 size
step (0, 1, 127, 128, 300, 16383, 16384, 20000), mixed per field, ``Option`` none and
some — and refuse (``None``, so that the reference reports) exactly what the reference
rejects.
"""

from __future__ import annotations

import itertools
import struct

import pytest
from helpers_codec import LOTTERY_1_BYTES

from dualwrite import DecodeError, EncodeError
from dualwrite.bcs import BOOL, BYTES, MoveStruct, OptionType, Reader, codegen
from dualwrite.structs import STRUCT_TYPES, LotterySummary
from dualwrite.words import count

LENGTHS = [0, 1, 127, 128, 300, 16383, 16384, 20000]
MODELS = sorted(STRUCT_TYPES.values(), key=lambda m: m.__name__)


def ref_encode(value: MoveStruct) -> bytes:
    out = bytearray()
    value._encode_into(out, type(value).__name__)
    return bytes(out)


def ref_decode(model: type[MoveStruct], data: bytes) -> MoveStruct:
    r = Reader(data)
    value = model._decode_from(r, model.__name__)
    if r.pos != len(data):
        raise DecodeError(f"{count(len(data) - r.pos, 'trailing byte')} after the value", offset=r.pos, path=model.__name__)
    return value


def codec(model: type[MoveStruct]) -> codegen.Codec:
    layout = model.__layout__
    assert codegen.supports(layout.fields), f"{model.__name__} has no generated codec"
    layout.decode(b"")  # the codec is built on first use
    assert layout.codec is not None
    return layout.codec


def _bytes(n: int, seed: int) -> bytes:
    return bytes((seed * 13 + i) % 256 for i in range(n))


def shaped(model: type[MoveStruct], lengths: list[int | None]) -> MoveStruct:
    """A value whose byte vectors (and Options) take the given lengths in turn (None: no value)."""
    it = itertools.cycle(lengths)
    values = {}
    for i, (name, t) in enumerate(model.__layout__.fields):
        if t is BOOL:
            values[name] = i % 2 == 0
        elif t.fmt:
            values[name] = (0x9E3779B97F4A7C15 * (i + 1)) % (1 << (8 * struct_size(t)))
        elif t is BYTES:
            n = next(it)
            values[name] = _bytes(n or 0, i)
        else:
            assert isinstance(t, OptionType) and t.elem is BYTES
            n = next(it)
            values[name] = None if n is None else _bytes(n, i)
    return model(**values)


def struct_size(t) -> int:
    return struct.calcsize("<" + t.fmt)


def shapes_of(model: type[MoveStruct]) -> list[MoveStruct]:
    out = [shaped(model, [n]) for n in LENGTHS]  # every vector the same length
    out += [shaped(model, LENGTHS[k:] + LENGTHS[:k]) for k in range(1, len(LENGTHS))]  # mixed
    if any(isinstance(t, OptionType) for _, t in model.__layout__.fields):
        out.append(shaped(model, [None]))
    return out


ALL = [(m, v) for m in MODELS for v in shapes_of(m)]


def _id(x):
    if isinstance(x, type):
        return x.__name__
    return "-".join(str(len(b)) if isinstance(b, bytes) else "none" for b in x.__dict__.values()
                    if isinstance(b, bytes) or b is None)


@pytest.mark.parametrize(("model", "value"), ALL, ids=[f"{m.__name__}[{_id(v)}]" for m, v in ALL])
def test_generated_codec_equals_the_reference(model, value):
    c = codec(model)
    data = ref_encode(value)
    assert c.encode(value.__dict__) == data
    assert value.to_bcs() == data
    for _ in range(2):  # the sequential reading, then the shape remembered for this size
        got = c.decode(data)
        assert got is not None
        assert got == ref_decode(model, data) == value
        assert got.__dict__ == value.__dict__
        assert got.model_fields_set == value.model_fields_set
    assert model.from_bcs(data) == value


@pytest.mark.parametrize(("model", "value"), ALL, ids=[f"{m.__name__}[{_id(v)}]" for m, v in ALL])
def test_generated_decoder_refuses_what_the_reference_rejects(model, value):
    c = codec(model)
    data = ref_encode(value)
    c.decode(data)  # remember this size's shape, so that the corruptions below meet it too
    bad = [data + b"\x00", data[:-1], b""]
    # cut around every length prefix, and change every prefix byte (length, non-minimal, option tag)
    for at in prefix_offsets(value):
        bad += [data[:at], data[: at + 1], data[: at + 2]]
        for delta in (1, -1, 0x80):
            b = bytearray(data)
            b[at] = (b[at] + delta) % 256
            bad.append(bytes(b))
        bad.append(data[:at] + bytes([data[at] | 0x80, 0x00]) + data[at + 1 :])  # an extra zero group
    bad += [data[: len(data) // 2], bytes(len(data))]
    for i, (_, t) in enumerate(model.__layout__.fields):
        if t is BOOL:
            b = bytearray(data)
            b[field_offset(value, i)] = 2
            bad.append(bytes(b))
    for x in bad:
        got = c.decode(x)
        try:
            want = ref_decode(model, x)
        except DecodeError as e:
            assert got is None, f"accepted what the reference rejects ({e})"
            with pytest.raises(DecodeError) as info:
                model.from_bcs(x)
            assert (info.value.offset, info.value.path, info.value.reason) == (e.offset, e.path, e.reason)
        else:  # still a canonical value (e.g. a changed length byte that lands on another valid layout)
            assert got == want and got.to_bcs() == x


def prefix_offsets(value: MoveStruct) -> list[int]:
    return [field_offset(value, i) for i, (_, t) in enumerate(type(value).__layout__.fields) if not t.fmt]


def field_offset(value: MoveStruct, index: int) -> int:
    out = bytearray()
    for name, t in type(value).__layout__.fields[:index]:
        t.encode(getattr(value, name), out, name)
    return len(out)


@pytest.mark.parametrize(
    ("update", "path"),
    [
        ({"id": 2**64}, "LotterySummary.id"),
        ({"id": -1}, "LotterySummary.id"),
        ({"id": 1.0}, "LotterySummary.id"),
        ({"status": 256}, "LotterySummary.status"),
        ({"snapshot_hash": "x" * 200}, "LotterySummary.snapshot_hash"),
        ({"snapshot_hash": [1] * 130}, "LotterySummary.snapshot_hash"),
        ({"event_slug": None}, "LotterySummary.event_slug"),
        ({"series_code": 5}, "LotterySummary.series_code"),
    ],
)
def test_generated_encoder_refuses_what_the_reference_rejects(update, path):
    good = LotterySummary.from_bcs(LOTTERY_1_BYTES)
    bad = LotterySummary.model_construct(**dict(good.__dict__, **update))
    assert codec(LotterySummary).encode(bad.__dict__) is None
    with pytest.raises(EncodeError) as info:
        bad.to_bcs()
    assert info.value.path == path


def test_bools_and_options_in_the_generated_encoder():
    from dualwrite.structs import DualWriteStatus

    c = codec(DualWriteStatus)
    ok = dict(enabled=True, abort_on_mismatch=False, abort_on_missing=True, expected_hash=None)
    assert c.encode(ok) == b"\x01\x00\x01\x00"
    assert c.encode(dict(ok, enabled=1)) is None  # 1 is not a bool: the reference says so
    assert c.encode(dict(ok, expected_hash=7)) is None
    assert c.encode(dict(ok, expected_hash=bytes(200))) == b"\x01\x00\x01\x01\xc8\x01" + bytes(200)


def test_more_shapes_than_the_cache_holds():
    """Past CACHE_SIZE shapes the caches are emptied and refilled: bounded, and still right."""
    base = LotterySummary.from_bcs(LOTTERY_1_BYTES)
    c = codec(LotterySummary)
    values = [base.model_copy(update={"event_slug": bytes(i % 7), "snapshot_hash": bytes(i)})
              for i in range(codegen.CACHE_SIZE + 300)]
    for v in values:
        data = c.encode(v.__dict__)
        assert data == ref_encode(v)
        assert c.decode(data) == v
    for v in values[:50]:  # the first ones again, after the caches were emptied
        assert LotterySummary.from_bcs(v.to_bcs()) == v


def test_generated_source_is_kept_for_reading():
    src = codec(LotterySummary).source
    assert src.startswith("def encode(d):") and "def decode(data):" in src
    assert "long_vector" in src  # lengths of any size are read in the generated code itself
    assert len(src.splitlines()) < 150
