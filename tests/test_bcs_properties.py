"""Property tests of the codec: values are drawn from the struct declarations themselves.

The strategies are built from ``Model.__layout__.fields`` (the one declaration), so a
field added to a struct is covered here without touching this file.
"""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dualwrite import DecodeError
from dualwrite.bcs import (
    ADDRESS,
    BOOL,
    BYTES,
    STRING,
    MoveStruct,
    MoveType,
    OptionType,
    StructType,
    VectorType,
)
from dualwrite.bcs.types import UIntType
from dualwrite.structs import (
    STRUCT_TYPES,
    DualWriteStatus,
    LegacySummary,
    LotterySummary,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MAIN = [LotterySummary, DualWriteStatus, LegacySummary]


def values_of(t: MoveType, long_bytes: bool = True) -> st.SearchStrategy:
    """Python values of a Move type, with the edges that matter to BCS drawn often."""
    if t is BOOL:
        return st.booleans()
    if isinstance(t, UIntType):
        return st.one_of(st.sampled_from([0, 1, 127, 128, 255, t.max, t.max - 1]).filter(lambda v: v <= t.max),
                         st.integers(0, t.max))
    if t is BYTES:
        sizes = [st.binary(max_size=40), st.binary(min_size=126, max_size=130)]  # around the 1/2-byte length edge
        if long_bytes:
            sizes.append(st.binary(min_size=250, max_size=300))
        return st.one_of(*sizes)
    if t is ADDRESS:
        return st.binary(min_size=32, max_size=32)
    if t is STRING:
        return st.text(max_size=20)
    if isinstance(t, OptionType):
        return st.one_of(st.none(), values_of(t.elem, long_bytes))
    if isinstance(t, VectorType):
        return st.lists(values_of(t.elem, long_bytes), max_size=4)
    if isinstance(t, StructType):
        return structs_of(t.model, long_bytes)
    raise AssertionError(f"no strategy for {t}")


def structs_of(model: type[MoveStruct], long_bytes: bool = True) -> st.SearchStrategy:
    fields = {name: values_of(t, long_bytes) for name, t in model.__layout__.fields}
    return st.fixed_dictionaries(fields).map(lambda d: model(**d))


def any_struct(long_bytes: bool = True) -> st.SearchStrategy:
    return st.one_of(*(structs_of(m, long_bytes) for m in MAIN))


def reference_encoding(value: MoveStruct) -> bytes:
    """Field by field through the type objects: the codec's generic path, not its generated one."""
    out = bytearray()
    for name, t in type(value).__layout__.fields:
        t.encode(getattr(value, name), out, name)
    return bytes(out)


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MAIN, ids=lambda m: m.__name__)
@FAST
@given(data=st.data())
def test_bcs_round_trip(model, data):
    value = data.draw(structs_of(model))
    encoded = value.to_bcs()
    assert encoded == reference_encoding(value)
    back = model.from_bcs(encoded)
    assert back == value
    assert back.__dict__ == value.__dict__
    assert back.to_bcs() == encoded
    assert model.from_bcs(encoded, lenient_uleb=True) == value  # the strict reader agrees


@pytest.mark.parametrize("model", sorted(set(STRUCT_TYPES.values()) - set(MAIN), key=lambda m: m.__name__),
                         ids=lambda m: m.__name__)
@FEW
@given(data=st.data())
def test_event_round_trip(model, data):
    value = data.draw(structs_of(model))
    encoded = value.to_bcs()
    assert encoded == reference_encoding(value)
    assert model.from_bcs(encoded) == value


def _u64_as_numbers(obj):
    return {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in obj.items()}


@FAST
@given(value=any_struct())
def test_move_json_round_trip(value):
    model = type(value)
    text = json.dumps(value.to_move_json())
    back = model.from_move_json(json.loads(text))
    assert back == value
    assert back.to_bcs() == value.to_bcs()
    # JSON integers are accepted for u64 as well as the decimal strings Move JSON uses
    assert model.from_move_json(_u64_as_numbers(json.loads(text))) == value


# -- truncation, trailing bytes, corruption ---------------------------------------------------------


@FEW
@given(value=any_struct(long_bytes=False))
def test_every_truncation_is_rejected(value):
    model = type(value)
    encoded = value.to_bcs()
    for cut in range(len(encoded)):
        for lenient in (False, True):
            with pytest.raises(DecodeError) as info:
                model.from_bcs(encoded[:cut], lenient_uleb=lenient)
            assert 0 <= info.value.offset <= cut
            assert info.value.path.startswith(model.__name__ + ".")


@FEW
@given(value=any_struct(long_bytes=False))
def test_every_appended_byte_is_rejected(value):
    model = type(value)
    encoded = value.to_bcs()
    for b in range(256):
        with pytest.raises(DecodeError) as info:
            model.from_bcs(encoded + bytes([b]))
        assert (info.value.offset, info.value.path) == (len(encoded), model.__name__)


@FAST
@given(value=any_struct(long_bytes=False), extra=st.binary(min_size=1, max_size=20))
def test_appended_bytes_are_rejected_in_both_modes(value, extra):
    model = type(value)
    encoded = value.to_bcs()
    for lenient in (False, True):
        with pytest.raises(DecodeError) as info:
            model.from_bcs(encoded + extra, lenient_uleb=lenient)
        assert (info.value.offset, info.value.path) == (len(encoded), model.__name__)


@settings(max_examples=100, deadline=None)
@given(value=any_struct(), where=st.integers(min_value=0), mask=st.integers(1, 255))
def test_byte_flips_give_decode_error_or_a_canonical_value(value, where, mask):
    model = type(value)
    data = bytearray(value.to_bcs())
    where %= len(data)
    data[where] ^= mask
    data = bytes(data)
    try:
        decoded = model.from_bcs(data)
    except DecodeError as e:
        assert 0 <= e.offset <= len(data)
        assert e.path.startswith(model.__name__)
    else:
        # the strict decoder accepts only canonical bytes: they re-encode to themselves
        assert decoded.to_bcs() == data
        assert model.from_bcs(data, lenient_uleb=True) == decoded


@settings(max_examples=200, deadline=None)
@given(model=st.sampled_from(MAIN), data=st.binary(max_size=300), lenient=st.booleans())
def test_random_bytes_give_decode_error_or_a_value(model, data, lenient):
    try:
        decoded = model.from_bcs(data, lenient_uleb=lenient)
    except DecodeError as e:
        assert 0 <= e.offset <= len(data)
    else:
        if not lenient:
            assert decoded.to_bcs() == data


# -- non-minimal lengths: strict rejects exactly there, lenient accepts the same value -----------


def vector_length_offsets(value: MoveStruct) -> dict[str, int]:
    """Offset of each ``vector<u8>`` field's length prefix, walking the declaration."""
    offsets = {}
    pos = 0
    for name, t in type(value).__layout__.fields:
        v = getattr(value, name)
        if t is BYTES:
            offsets[name] = pos
            out = bytearray()
            t.encode(v, out, name)
            pos += len(out)
        else:
            pos += struct.calcsize("<" + t.fmt)
    return offsets


def padded_uleb(n: int, extra_groups: int) -> bytes:
    """``n`` in ULEB128 with ``extra_groups`` needless zero groups (non-minimal)."""
    groups = []
    while True:
        groups.append(n & 0x7F)
        n >>= 7
        if not n:
            break
    groups += [0] * extra_groups
    return bytes([g | 0x80 for g in groups[:-1]] + [groups[-1]])


@FAST
@given(value=st.one_of(structs_of(LotterySummary), structs_of(LegacySummary)), data=st.data())
def test_non_minimal_length_rejected_strict_accepted_lenient(value, data):
    model = type(value)
    offsets = vector_length_offsets(value)
    name = data.draw(st.sampled_from(sorted(offsets)))
    extra = data.draw(st.integers(1, 4))
    encoded = value.to_bcs()
    n = len(getattr(value, name))
    minimal = padded_uleb(n, 0)
    at = offsets[name]
    assert encoded[at : at + len(minimal)] == minimal
    odd = encoded[:at] + padded_uleb(n, extra) + encoded[at + len(minimal) :]
    with pytest.raises(DecodeError) as info:
        model.from_bcs(odd)
    assert (info.value.path, info.value.offset) == (f"{model.__name__}.{name}", at)
    assert "non-minimal" in info.value.reason
    lenient = model.from_bcs(odd, lenient_uleb=True)
    assert lenient == value
    assert lenient.to_bcs() == encoded


@FAST
@given(value=structs_of(LotterySummary, long_bytes=False), data=st.data())
def test_same_size_values_with_other_vector_lengths(value, data):
    """Values of equal encoded size but different vector lengths: each decodes as itself,
    whatever was decoded before (the decoder caches one layout per size)."""
    names = [n for n, t in LotterySummary.__layout__.fields if t is BYTES]
    src, dst = data.draw(st.lists(st.sampled_from(names), min_size=2, max_size=2, unique=True))
    a, b = getattr(value, src), getattr(value, dst)
    if not 1 <= len(a) <= 127 or len(b) >= 127:  # keep both lengths one ULEB128 byte
        return
    other = value.model_copy(update={src: a[1:], dst: b + a[:1]})  # one byte moved: same size
    ea, eb = value.to_bcs(), other.to_bcs()
    assert len(ea) == len(eb) and ea != eb
    for _ in range(2):
        assert LotterySummary.from_bcs(ea) == value
        assert LotterySummary.from_bcs(eb) == other
    # a length byte changed, the size kept: the cached layout must not be trusted blindly
    at = vector_length_offsets(value)[src]
    forged = ea[:at] + bytes([ea[at] + 1]) + ea[at + 1 : -1]
    assert len(forged) == len(ea) - 1
    forged_same_size = forged + b"\x00"
    try:
        decoded = LotterySummary.from_bcs(forged_same_size)
    except DecodeError:
        pass
    else:
        assert decoded.to_bcs() == forged_same_size
