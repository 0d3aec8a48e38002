"""Every rejection rule of the codec, with the error type, the byte offset and the field path.

Offsets refer to lottery-1's 249 bytes, laid out by hand in helpers_codec (snapshot_hash's
length prefix is at 85, finalized_at starts at 241).
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Annotated

import pytest
from helpers_codec import LOTTERY_1_BYTES, LOTTERY_1_OFFSETS, h, lottery_1_json
from pydantic import ValidationError

from dualwrite import DecodeError, EncodeError, ExitCode, FieldError, LotterySummary
from dualwrite.bcs import (
    ADDRESS,
    BOOL,
    BYTES,
    STRING,
    U8,
    U16,
    U64,
    U128,
    U256,
    Move,
    MoveStruct,
    OptionType,
    Reader,
    StructType,
    VectorType,
)
from dualwrite.structs import DualWriteStatus, LegacySummary

DATA = LOTTERY_1_BYTES
SNAP = LOTTERY_1_OFFSETS["snapshot_hash"]  # 85: the length prefix of snapshot_hash


class Note(MoveStruct):
    """A struct of the types LotterySummary lacks, to check paths inside them."""

    n: Annotated[int, Move(U64)]
    label: Annotated[str, Move(STRING)]
    values: Annotated[list, Move(VectorType(U64))]
    flags: Annotated[list, Move(VectorType(BOOL))]
    maybe: Annotated[int | None, Move(OptionType(U8))]


class Wrapper(MoveStruct):
    """A struct holding another one, as ``Option<LegacySummary>`` in a view result."""

    tag: Annotated[int, Move(U16)]
    inner: Annotated[LegacySummary | None, Move(OptionType(StructType(LegacySummary)))]


def splice(data: bytes, offset: int, old_len: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + old_len :]


def decode_error(fn, *args, **kwargs) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        fn(*args, **kwargs)
    e = info.value
    assert type(e) is DecodeError
    assert e.exit_code == ExitCode.BAD_INPUT
    assert str(e) == f"{e.path} at byte offset {e.offset}: {e.reason}"
    return e


# -- truncation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cut", "path", "offset", "reason"),
    [
        (0, "LotterySummary.id", 0, "truncated: u64 needs 8 bytes, 0 left"),
        (5, "LotterySummary.id", 0, "truncated: u64 needs 8 bytes, 5 left"),
        (8, "LotterySummary.status", 8, "truncated: u8 needs 1 byte, 0 left"),
        (9, "LotterySummary.event_slug", 9, "truncated: ULEB128 length runs past the end"),
        (15, "LotterySummary.event_slug", 9, "length 13 exceeds the 5 bytes left"),
        (30, "LotterySummary.run_id", 27, "truncated: u64 needs 8 bytes, 3 left"),
        (SNAP, "LotterySummary.snapshot_hash", SNAP, "truncated: ULEB128 length runs past the end"),
        (100, "LotterySummary.snapshot_hash", SNAP, "length 32 exceeds the 14 bytes left"),
        (248, "LotterySummary.finalized_at", 241, "truncated: u64 needs 8 bytes, 7 left"),
    ],
)
def test_truncation(cut, path, offset, reason):
    e = decode_error(LotterySummary.from_bcs, DATA[:cut])
    assert (e.path, e.offset, e.reason) == (path, offset, reason)


def test_truncation_in_lenient_mode_too():
    e = decode_error(LotterySummary.from_bcs, DATA[:100], lenient_uleb=True)
    assert (e.path, e.offset) == ("LotterySummary.snapshot_hash", SNAP)


def test_truncated_address_and_option():
    e = decode_error(ADDRESS.decode, Reader(bytes(31)), "X.addr")
    assert (e.path, e.offset, e.reason) == ("X.addr", 0, "truncated: address needs 32 bytes, 31 left")
    e = decode_error(DualWriteStatus.from_bcs, h("01 00 01 01"))  # some(...) with nothing after
    assert (e.path, e.offset) == ("DualWriteStatus.expected_hash", 4)


# -- trailing bytes -------------------------------------------------------------------------------


def test_one_trailing_byte():
    e = decode_error(LotterySummary.from_bcs, DATA + b"\x00")
    assert (e.path, e.offset, e.reason) == ("LotterySummary", 249, "1 trailing byte after the value")


def test_several_trailing_bytes_in_both_modes():
    for lenient in (False, True):
        e = decode_error(LotterySummary.from_bcs, DATA + b"\x01\x02\x03", lenient_uleb=lenient)
        assert (e.path, e.offset, e.reason) == ("LotterySummary", 249, "3 trailing bytes after the value")


def test_trailing_bytes_after_other_structs():
    e = decode_error(DualWriteStatus.from_bcs, h("01 00 01 00 00"))
    assert (e.path, e.offset) == ("DualWriteStatus", 4)
    e = decode_error(LegacySummary.from_bcs, h("00 00 0100000000000000 ff"))
    assert (e.path, e.offset) == ("LegacySummary", 10)


# -- bool bytes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hexdata", "path", "offset", "byte"),
    [
        ("02 00 00 00", "DualWriteStatus.enabled", 0, "0x02"),
        ("01 02 00 00", "DualWriteStatus.abort_on_mismatch", 1, "0x02"),
        ("01 00 ff 00", "DualWriteStatus.abort_on_missing", 2, "0xff"),
    ],
)
def test_bool_byte_other_than_0_or_1(hexdata, path, offset, byte):
    e = decode_error(DualWriteStatus.from_bcs, h(hexdata))
    assert (e.path, e.offset) == (path, offset)
    assert e.reason == f"invalid bool byte {byte} (must be 0x00 or 0x01)"


def test_bool_byte_inside_a_vector():
    data = h("0100000000000000", "00", "00", "03 01 00 02", "00")
    e = decode_error(Note.from_bcs, data)
    assert (e.path, e.offset) == ("Note.flags[2]", 13)


# -- non-minimal ULEB128 -------------------------------------------------------------------------


def test_non_minimal_uleb128_rejected_strict_accepted_lenient():
    odd = splice(DATA, SNAP, 1, h("a0 00"))  # 32 written as two groups, the last one zero
    e = decode_error(LotterySummary.from_bcs, odd)
    assert (e.path, e.offset) == ("LotterySummary.snapshot_hash", SNAP)
    assert e.reason == "non-minimal ULEB128 length (trailing zero group)"
    assert LotterySummary.from_bcs(odd, lenient_uleb=True) == LotterySummary.from_bcs(DATA)


def test_non_minimal_zero_length():
    odd = splice(DATA, 9, 14, h("80 80 00"))  # event_slug emptied, its 0 written in three groups
    e = decode_error(LotterySummary.from_bcs, odd)
    assert (e.path, e.offset) == ("LotterySummary.event_slug", 9)
    assert LotterySummary.from_bcs(odd, lenient_uleb=True).event_slug == b""


def test_non_minimal_option_tag():
    odd = h("01 00 00", "81 00", "00")  # some: 1 written as 0x81 0x00; then an empty vector
    e = decode_error(DualWriteStatus.from_bcs, odd)
    assert (e.path, e.offset) == ("DualWriteStatus.expected_hash", 3)
    assert DualWriteStatus.from_bcs(odd, lenient_uleb=True).expected_hash == b""


def test_uleb128_longer_than_ten_bytes():
    odd = splice(DATA, SNAP, 1, h("80" * 10 + "00"))
    e = decode_error(LotterySummary.from_bcs, odd, lenient_uleb=True)
    assert (e.path, e.offset, e.reason) == ("LotterySummary.snapshot_hash", SNAP, "ULEB128 length longer than 10 bytes")


def test_lenient_mode_is_a_reader_option():
    r = Reader(h("a0 00") + bytes(32), lenient_uleb=True)
    assert BYTES.decode(r, "v") == bytes(32)
    e = decode_error(BYTES.decode, Reader(h("a0 00") + bytes(32)), "v")
    assert (e.path, e.offset) == ("v", 0)


# -- lengths over 2^31-1 or over the bytes left, checked before allocating --------------------------


@pytest.mark.parametrize("lenient", [False, True])
@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("ffffffff0f", "length 4294967295 exceeds 2^31-1"),
        ("8080808008", "length 2147483648 exceeds 2^31-1"),
        ("ffffffffffffffff7f", "length 9223372036854775807 exceeds 2^31-1"),
        ("ffffffff07", "length 2147483647 exceeds the 163 bytes left"),  # 2^31-1: legal, but not there
        ("a401", "length 164 exceeds the 163 bytes left"),  # one more than all that remains
    ],
)
def test_length_too_large_fails_fast_without_allocating(prefix, reason, lenient):
    bad = splice(DATA, SNAP, 1, h(prefix))
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        e = decode_error(LotterySummary.from_bcs, bad, lenient_uleb=lenient)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (e.path, e.offset, e.reason) == ("LotterySummary.snapshot_hash", SNAP, reason)
    assert elapsed < 0.5
    assert peak < 1_000_000  # nothing near the announced length was allocated


def test_element_count_checked_against_element_size():
    """vector<u64> of 2 needs 16 bytes: with 8 left it fails at the length, not in element 1."""
    e = decode_error(VectorType(U64).decode, Reader(h("02") + bytes(8)), "X.v")
    assert (e.path, e.offset, e.reason) == ("X.v", 0, "length 2 exceeds the 8 bytes left")
    tracemalloc.start()
    try:
        e = decode_error(VectorType(U256).decode, Reader(h("ffffff7f") + bytes(64)), "X.v")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert e.offset == 0 and peak < 1_000_000


def test_option_with_more_than_one_element():
    e = decode_error(DualWriteStatus.from_bcs, h("00 00 00 02 00 00"))
    assert (e.path, e.offset, e.reason) == ("DualWriteStatus.expected_hash", 3, "Option with 2 elements (must be 0 or 1)")


# -- invalid UTF-8 in a String ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "bad_at"),
    [
        ("61 ff 62", 1),  # 0xff never appears in UTF-8
        ("c3 28", 0),  # a lead byte without its continuation
        ("c0 80", 0),  # overlong encoding of NUL
        ("ed a0 80", 0),  # a UTF-16 surrogate
        ("61 62 e2 82", 2),  # cut inside a character
    ],
)
def test_invalid_utf8_in_a_string(content, bad_at):
    raw = h(content)
    data = h("0700000000000000") + bytes([len(raw)]) + raw + h("00 00 00")
    e = decode_error(Note.from_bcs, data)
    assert e.path == "Note.label"
    assert e.offset == 9 + bad_at  # 8 bytes of n, 1 length byte, then the bad byte
    assert e.reason.startswith("invalid UTF-8 in String")


def test_string_type_directly():
    e = decode_error(STRING.decode, Reader(h("03 61 ff 62")), "X.s")
    assert (e.path, e.offset) == ("X.s", 2)


# -- paths inside vectors, options and nested structs ---------------------------------------------


def test_paths_inside_nested_values():
    # n = 7 | label "ab" | values [1] | flags [] | maybe some(5)
    good = h("0700000000000000", "02 6162", "01 0100000000000000", "00", "01 05")
    assert Note.from_bcs(good).maybe == 5
    e = decode_error(Note.from_bcs, good[:-1])
    assert (e.path, e.offset) == ("Note.maybe", 22)
    e = decode_error(Note.from_bcs, h("0700000000000000", "00", "02 0100000000000000 0200"))
    assert (e.path, e.offset) == ("Note.values", 9)  # 2 x 8 bytes announced, 10 left
    inner = h("00 00 0100000000000000")
    assert Wrapper.from_bcs(h("0900 01") + inner).inner.finalized_at == 1
    e = decode_error(Wrapper.from_bcs, h("0900 01") + inner[:-2])
    assert (e.path, e.offset) == ("Wrapper.inner.finalized_at", 5)


# -- encoding rejects --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mtype", "value", "reason"),
    [
        (U64, 2**64, "18446744073709551616 out of range for u64 (0..18446744073709551615)"),
        (U64, -1, "-1 out of range for u64 (0..18446744073709551615)"),
        (U8, 256, "256 out of range for u8 (0..255)"),
        (U16, 65536, "65536 out of range for u16 (0..65535)"),
        (U128, 2**128, f"{2**128} out of range for u128 (0..{2**128 - 1})"),
        (U256, 2**256, f"{2**256} out of range for u256 (0..{2**256 - 1})"),
        (U64, True, "expected an integer for u64, got bool"),
        (U64, 1.0, "expected an integer for u64, got float"),
        (U64, "1", "expected an integer for u64, got str"),
        (BOOL, 1, "expected a bool, got int"),
        (ADDRESS, bytes(31), "an address is 32 bytes"),
        (BYTES, "00", "expected bytes, got str"),
        (STRING, b"x", "expected a string, got bytes"),
    ],
)
def test_encode_rejects_with_the_path(mtype, value, reason):
    out = bytearray()
    with pytest.raises(EncodeError) as info:
        mtype.encode(value, out, "S.f")
    assert type(info.value) is EncodeError
    assert (info.value.path, info.value.reason) == ("S.f", reason)
    assert str(info.value) == f"S.f: {reason}"
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_encode_rejects_an_unencodable_string():
    with pytest.raises(EncodeError) as info:
        STRING.encode("\ud800", bytearray(), "S.s")  # a lone surrogate has no UTF-8 form
    assert info.value.path == "S.s"


def test_encode_paths_inside_vectors_and_options():
    with pytest.raises(EncodeError) as info:
        VectorType(U64).encode([1, 2, -3], bytearray(), "S.v")
    assert info.value.path == "S.v[2]"
    with pytest.raises(EncodeError) as info:
        OptionType(U8).encode(300, bytearray(), "S.o")
    assert info.value.path == "S.o"


def _fields() -> dict:
    return dict(LotterySummary.from_move_json(lottery_1_json()).__dict__)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("tags_mask", 2**64, "18446744073709551616 out of range for u64 (0..18446744073709551615)"),
        ("id", -1, "-1 out of range for u64 (0..18446744073709551615)"),
        ("status", 256, "256 out of range for u8 (0..255)"),
        ("finalized_at", None, "expected an integer for u64, got NoneType"),
        ("snapshot_hash", "ab", "expected bytes, got str"),
        ("event_slug", 5, "expected bytes, got int"),
        ("winners_batch_hash", [1, 2], "expected bytes, got list"),
    ],
)
def test_struct_encode_rejects_with_the_field_path(name, value, reason):
    """``model_construct`` skips validation: the encoder still refuses, naming the field."""
    bad = LotterySummary.model_construct(**dict(_fields(), **{name: value}))
    with pytest.raises(EncodeError) as info:
        bad.to_bcs()
    assert (info.value.path, info.value.reason) == (f"LotterySummary.{name}", reason)


def test_struct_encode_rejects_a_long_vector_of_the_wrong_type_and_bools():
    bad = LotterySummary.model_construct(**dict(_fields(), snapshot_hash="x" * 200))
    with pytest.raises(EncodeError) as info:
        bad.to_bcs()
    assert info.value.path == "LotterySummary.snapshot_hash"
    bad = DualWriteStatus.model_construct(enabled=1, abort_on_mismatch=False, abort_on_missing=False, expected_hash=None)
    with pytest.raises(EncodeError) as info:
        bad.to_bcs()
    assert info.value.path == "DualWriteStatus.enabled"
    bad = DualWriteStatus.model_construct(enabled=True, abort_on_mismatch=False, abort_on_missing=False, expected_hash=7)
    with pytest.raises(EncodeError) as info:
        bad.to_bcs()
    assert info.value.path == "DualWriteStatus.expected_hash"


def test_nested_struct_encode_path():
    inner = LegacySummary.model_construct(summary_bcs=b"", archive_hash=b"", finalized_at=-5)
    bad = Wrapper.model_construct(tag=1, inner=inner)
    with pytest.raises(EncodeError) as info:
        bad.to_bcs()
    assert info.value.path == "Wrapper.inner.finalized_at"


# -- model validation (construction and copies) ------------------------------------------------------


@pytest.mark.parametrize(
    ("update", "path", "reason"),
    [
        ({"id": -1}, "LotterySummary.id", "-1 out of range for u64 (0..18446744073709551615)"),
        ({"id": 2**64}, "LotterySummary.id", "18446744073709551616 out of range for u64 (0..18446744073709551615)"),
        ({"id": True}, "LotterySummary.id", "expected an integer for u64, got bool"),
        ({"id": "1"}, "LotterySummary.id", "expected an integer for u64, got str"),
        ({"status": 256}, "LotterySummary.status", "256 out of range for u8 (0..255)"),
        ({"event_slug": "abc"}, "LotterySummary.event_slug", "expected bytes, got str"),
        ({"nope": 1}, "LotterySummary", "unknown field 'nope'"),
    ],
)
def test_model_validation(update, path, reason):
    with pytest.raises(FieldError) as info:
        LotterySummary(**dict(_fields(), **update))
    assert (info.value.path, info.value.reason) == (path, reason)
    s = LotterySummary(**_fields())
    with pytest.raises(FieldError) as info:
        s.model_copy(update=update)  # copies are validated as well
    assert (info.value.path, info.value.reason) == (path, reason)


def test_model_missing_field_and_frozen():
    fields = _fields()
    del fields["closed_at"]
    with pytest.raises(FieldError) as info:
        LotterySummary(**fields)
    assert (info.value.path, info.value.reason) == ("LotterySummary.closed_at", "missing")
    s = LotterySummary(**_fields())
    with pytest.raises(ValidationError):
        s.id = 2  # type: ignore[misc]
    assert s.model_copy(update={"id": 2}).id == 2 and s.id == 1


# -- Move JSON rejects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "reason_part"),
    [
        ("id", True, "expected u64, got a boolean"),
        ("id", False, "expected u64, got a boolean"),
        ("id", "-1", "expected u64 as an integer or a decimal string"),
        ("id", -1, "-1 out of range for u64"),
        ("id", str(2**64), "18446744073709551616 out of range for u64"),
        ("id", 2**64, "18446744073709551616 out of range for u64"),
        ("id", 1.0, "expected u64 as an integer or a decimal string"),
        ("id", "1e3", "expected u64 as an integer or a decimal string"),
        ("id", "0x10", "expected u64 as an integer or a decimal string"),
        ("id", "", "expected u64 as an integer or a decimal string"),
        ("id", " 1", "expected u64 as an integer or a decimal string"),
        ("id", "١", "expected u64 as an integer or a decimal string"),  # a non-ASCII digit
        ("id", None, "expected u64 as an integer or a decimal string"),
        ("status", 256, "256 out of range for u8"),
        ("status", -1, "-1 out of range for u8"),
        ("status", True, "expected u8, got a boolean"),
        ("snapshot_hash", "0xzz", "not hex: character 'z' at position 0"),
        ("snapshot_hash", "0x123", "odd number of hex digits (3)"),
        ("snapshot_hash", 12, "expected 0x-hex bytes, got 12"),
        ("snapshot_hash", {"vec": []}, "expected 0x-hex bytes"),
    ],
)
def test_move_json_rejects(field, value, reason_part):
    obj = dict(lottery_1_json(), **{field: value})
    with pytest.raises(FieldError) as info:
        LotterySummary.from_move_json(obj)
    assert info.value.path == f"LotterySummary.{field}"
    assert reason_part in info.value.reason


def test_move_json_byte_list_element_path():
    obj = dict(lottery_1_json(), series_code=[83, 256, 82])
    with pytest.raises(FieldError) as info:
        LotterySummary.from_move_json(obj)
    assert info.value.path == "LotterySummary.series_code[1]"


def test_move_json_unknown_and_missing_fields():
    with pytest.raises(FieldError) as info:
        LotterySummary.from_move_json(dict(lottery_1_json(), winner="alice"))
    assert (info.value.path, info.value.reason) == ("LotterySummary", "unknown field 'winner'")
    obj = lottery_1_json()
    del obj["payout_round"]
    with pytest.raises(FieldError) as info:
        LotterySummary.from_move_json(obj)
    assert (info.value.path, info.value.reason) == ("LotterySummary.payout_round", "missing")
    with pytest.raises(FieldError) as info:
        LotterySummary.from_move_json([lottery_1_json()])
    assert info.value.path == "LotterySummary"
    with pytest.raises(FieldError) as info:
        LotterySummary.from_move_json(obj, "f.json[3]: LotterySummary")
    assert info.value.path == "f.json[3]: LotterySummary.payout_round"


STATUS = {"enabled": True, "abort_on_mismatch": False, "abort_on_missing": True}


@pytest.mark.parametrize(
    "option",
    [
        {"vec": ["0x01", "0x02"]},  # two elements
        {"vec": "0xab"},  # not a list
        {"vec": [], "extra": 1},  # another key
        {"Some": "0xab"},  # Rust's shape, not Move's
        "0xab",  # a bare value
        ["0xab"],  # a bare list
        {"vec": [5]},  # an element of the wrong type
    ],
)
def test_move_json_option_shape(option):
    with pytest.raises(FieldError) as info:
        DualWriteStatus.from_move_json(dict(STATUS, expected_hash=option))
    assert info.value.path == "DualWriteStatus.expected_hash"


def test_move_json_bool_must_be_a_json_bool():
    for bad in ("true", 1, 0, None):
        with pytest.raises(FieldError) as info:
            DualWriteStatus.from_move_json(dict(STATUS, enabled=bad, expected_hash={"vec": []}))
        assert info.value.path == "DualWriteStatus.enabled"
    ok = DualWriteStatus.from_move_json(dict(STATUS, expected_hash={"vec": ["0xab"]}))
    assert ok.expected_hash == b"\xab"


def test_move_json_address_and_string():
    with pytest.raises(FieldError):
        ADDRESS.from_json("0x" + "1" * 65, "S.a")
    with pytest.raises(FieldError):
        ADDRESS.from_json("0x", "S.a")
    with pytest.raises(FieldError) as info:
        ADDRESS.from_json("0xg1", "S.a")
    assert info.value.path == "S.a"
    with pytest.raises(FieldError):
        STRING.from_json(5, "S.s")
