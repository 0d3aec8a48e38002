"""Known-good BCS vectors, written out by hand from the BCS rules (never produced by the codec).

Each vector is checked both ways: the codec encodes the value to exactly these bytes,
and decodes exactly these bytes to the value.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from helpers_codec import (
    CHECKSUM_1,
    LOTTERIES_2_3_JSON,
    LOTTERY_1_BCS,
    LOTTERY_1_BYTES,
    LOTTERY_1_LAYOUT,
    LOTTERY_2_HEX,
    SNAPSHOT_1,
    h,
    lottery_1_json,
)

from dualwrite import decode_summary, encode_summary, expected_hash
from dualwrite.bcs import (
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
    OptionType,
    Reader,
    VectorType,
    parse_type,
)
from dualwrite.structs import (
    STRUCT_TYPES,
    DualWriteStatus,
    LegacySummary,
    LotteryFinalizedEvent,
    LotterySummary,
)

# -- LotterySummary with every vector empty: 12 x u64 + 3 x u8 + 6 x 1-byte length = 105 -----

EMPTY_FIELDS = dict(
    id=1,
    status=6,
    event_slug=b"",
    series_code=b"",
    run_id=0x0102030405060708,
    tickets_sold=2,
    proceeds_accum=2**64 - 1,
    total_allocated=0x100,
    total_prize_paid=3,
    total_operations_paid=4,
    vrf_status=2,
    primary_type=3,
    tags_mask=(1 << 63) | 0x10,
    snapshot_hash=b"",
    slots_checksum=b"",
    winners_batch_hash=b"",
    checksum_after_batch=b"",
    payout_round=5,
    created_at=1767312000,
    closed_at=1767384000,
    finalized_at=1767391200,
)
EMPTY_HEX = (
    "0100000000000000"  # id = 1
    "06"  # status
    "00"  # event_slug: length 0
    "00"  # series_code: length 0
    "0807060504030201"  # run_id = 0x0102030405060708, little-endian
    "0200000000000000"  # tickets_sold
    "ffffffffffffffff"  # proceeds_accum = 2^64 - 1
    "0001000000000000"  # total_allocated = 256
    "0300000000000000"  # total_prize_paid
    "0400000000000000"  # total_operations_paid
    "02"  # vrf_status
    "03"  # primary_type
    "1000000000000080"  # tags_mask = bit 63 | bit 4
    "00"  # snapshot_hash
    "00"  # slots_checksum
    "00"  # winners_batch_hash
    "00"  # checksum_after_batch
    "0500000000000000"  # payout_round
    "800a576900000000"  # created_at = 1767312000
    "c023586900000000"  # closed_at
    "e03f586900000000"  # finalized_at
)


def test_empty_vectors_summary_is_105_handwritten_bytes():
    data = h(EMPTY_HEX)
    assert len(data) == 105
    s = LotterySummary(**EMPTY_FIELDS)
    assert s.to_bcs() == data
    assert encode_summary(s) == data
    back = LotterySummary.from_bcs(data)
    assert back == s
    assert back.__dict__ == EMPTY_FIELDS
    assert decode_summary(data) == s


def test_empty_vectors_summary_expected_hash():
    data = h(EMPTY_HEX)
    want = "0x" + hashlib.sha3_256(data).hexdigest()
    s = LotterySummary(**EMPTY_FIELDS)
    assert expected_hash(s) == want
    assert expected_hash(data) == want
    assert expected_hash(bytearray(data)) == want
    assert expected_hash(memoryview(data)) == want
    assert len(want) == 66 and want == want.lower()


def test_sha3_is_fips202_not_keccak():
    # SHA3-256("") from FIPS 202; Keccak-256("") would be c5d2460186f7233c...
    assert expected_hash(b"") == "0xa7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"


def test_expected_hash_rejects_other_types():
    with pytest.raises(TypeError):
        expected_hash("0x00")  # type: ignore[arg-type]


# -- a realistic summary: the fixture lottery-1, laid out field by field in helpers_codec ------


def test_lottery_1_handwritten_layout():
    assert len(LOTTERY_1_BYTES) == 249
    s = LotterySummary.from_move_json(lottery_1_json())
    assert s.to_bcs() == LOTTERY_1_BYTES
    assert LotterySummary.from_bcs(LOTTERY_1_BYTES) == s
    assert s.snapshot_hash.hex() == SNAPSHOT_1
    assert s.checksum_after_batch.hex() == CHECKSUM_1
    # each field starts where the hand layout says
    for offset, name, hexpart in LOTTERY_1_LAYOUT:
        assert LOTTERY_1_BYTES[offset : offset + len(hexpart) // 2].hex() == hexpart, name


def test_fixture_files_agree_with_handwritten_bytes():
    assert LOTTERY_1_BCS.read_bytes() == LOTTERY_1_BYTES
    assert expected_hash(LotterySummary.from_move_json(lottery_1_json())) == (
        "0x" + hashlib.sha3_256(LOTTERY_1_BYTES).hexdigest()
    )
    # lottery-2.hex is the same lottery as lotteries-2-3.json[0]
    hex_text = LOTTERY_2_HEX.read_text()
    data = bytes.fromhex("".join(hex_text.split())[2:])
    s2 = LotterySummary.from_move_json(json.loads(LOTTERIES_2_3_JSON.read_text())[0])
    assert s2.to_bcs() == data


def test_summary_with_a_two_byte_uleb_length():
    """A 130-byte snapshot_hash: length 130 = 0x82 0x01 in ULEB128."""
    fields = dict(EMPTY_FIELDS, event_slug=b"spring-draw-1", series_code=b"SPR", snapshot_hash=bytes([0xAB]) * 130,
                  winners_batch_hash=bytes(range(128)), checksum_after_batch=bytes([7]) * 127)
    data = h(
        "0100000000000000", "06",
        "0d", b"spring-draw-1".hex(),
        "03", "535052",
        "0807060504030201", "0200000000000000", "ffffffffffffffff", "0001000000000000",
        "0300000000000000", "0400000000000000", "02", "03", "1000000000000080",
        "8201", "ab" * 130,  # 130 = 0b1_0000010 -> 0x82 0x01
        "00",
        "8001", bytes(range(128)).hex(),  # 128 -> 0x80 0x01
        "7f", "07" * 127,  # 127 still fits in one byte
        "0500000000000000", "800a576900000000", "c023586900000000", "e03f586900000000",
    )
    s = LotterySummary(**fields)
    assert s.to_bcs() == data
    assert LotterySummary.from_bcs(data) == s
    assert expected_hash(s) == "0x" + hashlib.sha3_256(data).hexdigest()


# -- the other structs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "hexdata"),
    [
        (dict(enabled=True, abort_on_mismatch=False, abort_on_missing=True, expected_hash=None), "01 00 01 00"),
        (dict(enabled=False, abort_on_mismatch=False, abort_on_missing=False, expected_hash=None), "00 00 00 00"),
        (
            dict(enabled=False, abort_on_mismatch=True, abort_on_missing=False, expected_hash=bytes(range(32))),
            "00 01 00 01 20" + bytes(range(32)).hex(),  # some: 0x01, then vector<u8> (length 32)
        ),
        (dict(enabled=True, abort_on_mismatch=True, abort_on_missing=True, expected_hash=b""), "01 01 01 01 00"),
    ],
)
def test_dual_write_status(fields, hexdata):
    data = h(hexdata)
    s = DualWriteStatus(**fields)
    assert s.to_bcs() == data
    back = DualWriteStatus.from_bcs(data)
    assert back == s
    assert back.__dict__ == fields


def test_legacy_summary_with_a_long_summary_bcs():
    summary = LOTTERY_1_BYTES  # 249 bytes -> ULEB128 0xf9 0x01
    archive = hashlib.sha3_256(summary).digest()
    data = h("f901", summary.hex(), "20", archive.hex(), "e03f586900000000")
    s = LegacySummary(summary_bcs=summary, archive_hash=archive, finalized_at=1767391200)
    assert s.to_bcs() == data
    assert LegacySummary.from_bcs(data) == s
    assert LotterySummary.from_bcs(LegacySummary.from_bcs(data).summary_bcs).id == 1


def test_legacy_summary_short():
    data = h("02 abcd", "00", "0100000000000000")
    s = LegacySummary(summary_bcs=b"\xab\xcd", archive_hash=b"", finalized_at=1)
    assert s.to_bcs() == data
    assert LegacySummary.from_bcs(data) == s


def test_event_with_u16():
    data = h("0100", "02", "0900000000000000", "03 010203", "01", "0400000000000000")
    e = LotteryFinalizedEvent(event_version=1, event_category=2, id=9, archive_slot_hash=b"\1\2\3",
                              primary_type=1, tags_mask=4)
    assert e.to_bcs() == data
    assert LotteryFinalizedEvent.from_bcs(data) == e


# -- single values through the type objects ----------------------------------------------------


def enc(t, value) -> bytes:
    out = bytearray()
    t.encode(value, out, "v")
    return bytes(out)


def dec(t, data: bytes):
    r = Reader(data)
    value = t.decode(r, "v")
    assert r.pos == len(data), "the value must consume every byte"
    return value


VALUES = [
    (BOOL, True, "01"),
    (BOOL, False, "00"),
    (U8, 0xFE, "fe"),
    (U16, 0x1234, "3412"),
    (U32, 0xDEADBEEF, "efbeadde"),
    (U64, 1, "0100000000000000"),
    (U64, 2**64 - 1, "ffffffffffffffff"),
    (U128, 2**128 - 1, "ff" * 16),
    (U128, 0x0102030405060708090A0B0C0D0E0F10, "100f0e0d0c0b0a090807060504030201"),
    (U256, 2**255 + 1, "01" + "00" * 30 + "80"),
    (U256, 0, "00" * 32),
    (ADDRESS, bytes(31) + b"\x01", "00" * 31 + "01"),  # no length prefix
    (BYTES, b"", "00"),
    (BYTES, b"\xff", "01ff"),
    (BYTES, bytes(300), "ac02" + "00" * 300),  # 300 = 0b10_0101100 -> 0xac 0x02
    (BYTES, bytes(16384), "808001" + "00" * 16384),  # 2^14 -> three bytes
    (STRING, "", "00"),
    (STRING, "héllo", "06 68 c3a9 6c 6c 6f"),  # é is 2 bytes in UTF-8
    (STRING, "€", "03 e282ac"),
    (OptionType(U64), None, "00"),
    (OptionType(U64), 5, "01 0500000000000000"),
    (OptionType(BYTES), b"", "01 00"),
    (OptionType(BOOL), False, "01 00"),
    (VectorType(U64), [], "00"),
    (VectorType(U64), [1, 2**64 - 1], "02 0100000000000000 ffffffffffffffff"),
    (VectorType(BOOL), [True, False, True], "03 01 00 01"),
    (VectorType(BYTES), [b"", b"\x01\x02"], "02 00 020102"),
    (VectorType(STRING), ["a", "bc"], "02 0161 026263"),
    (OptionType(VectorType(U16)), [7], "01 01 0700"),
    (parse_type("vector<vector<u8>>"), [b"\x09"], "01 0109"),
    (parse_type("0x1::option::Option<address>"), b"\x11" * 32, "01" + "11" * 32),
]


@pytest.mark.parametrize(("mtype", "value", "hexdata"), VALUES, ids=lambda x: repr(x)[:40])
def test_single_values(mtype, value, hexdata):
    data = h(hexdata)
    assert enc(mtype, value) == data
    assert dec(mtype, data) == value


def test_parse_type_names():
    assert parse_type("u64") is U64
    assert parse_type("vector<u8>") is BYTES
    assert parse_type("0x1::string::String") is STRING
    assert parse_type("String") is STRING
    assert parse_type("vector<u64>").name == "vector<u64>"
    assert parse_type("Option<u8>").name == "0x1::option::Option<u8>"
    with pytest.raises(ValueError):
        parse_type("u63")


# -- Move JSON of the vectors -------------------------------------------------------------------


def test_move_json_of_a_summary():
    s = LotterySummary(**EMPTY_FIELDS)
    j = s.to_move_json()
    assert list(j) == list(EMPTY_FIELDS)  # declaration order
    assert j["id"] == "1" and j["proceeds_accum"] == str(2**64 - 1)  # u64 as decimal strings
    assert j["status"] == 6 and j["primary_type"] == 3  # u8 as numbers
    assert j["event_slug"] == "0x"
    assert LotterySummary.from_move_json(j) == s
    assert lottery_1_json() == LotterySummary.from_move_json(lottery_1_json()).to_move_json()


def test_move_json_accepts_integers_for_u64():
    j = dict(lottery_1_json(), id=1, tickets_sold=22724, proceeds_accum=47260335980)
    assert LotterySummary.from_move_json(j).to_bcs() == LOTTERY_1_BYTES


def test_move_json_accepts_uppercase_hex_and_byte_lists():
    j = dict(lottery_1_json(), snapshot_hash="0X" + SNAPSHOT_1.upper(), series_code=[0x53, 0x50, 0x52])
    assert LotterySummary.from_move_json(j).to_bcs() == LOTTERY_1_BYTES


def test_move_json_of_options():
    none = DualWriteStatus(enabled=True, abort_on_mismatch=False, abort_on_missing=False, expected_hash=None)
    some = none.model_copy(update={"expected_hash": b"\xaa\xbb"})
    assert none.to_move_json()["expected_hash"] == {"vec": []}
    assert some.to_move_json() == {
        "enabled": True, "abort_on_mismatch": False, "abort_on_missing": False, "expected_hash": {"vec": ["0xaabb"]},
    }
    assert DualWriteStatus.from_move_json(some.to_move_json()) == some
    assert some.to_bcs() == h("01 00 00 01 02 aabb")


def test_move_json_of_wide_integers_and_addresses():
    assert U128.to_json(2**128 - 1) == str(2**128 - 1)
    assert U256.from_json(str(2**256 - 1), "v") == 2**256 - 1
    assert U8.to_json(255) == 255
    assert ADDRESS.to_json(b"\x00" * 31 + b"\x01") == "0x" + "00" * 31 + "01"
    assert ADDRESS.from_json("0x1", "v") == b"\x00" * 31 + b"\x01"  # leading zeros stripped
    assert STRING.from_json("héllo", "v") == "héllo"


def test_every_declared_struct_has_a_layout_in_bcs_order():
    assert LotterySummary.field_names()[:3] == ["id", "status", "event_slug"]
    assert len(LotterySummary.field_names()) == 21
    assert LegacySummary.field_names() == ["summary_bcs", "archive_hash", "finalized_at"]
    assert DualWriteStatus.field_names() == ["enabled", "abort_on_mismatch", "abort_on_missing", "expected_hash"]
    assert set(STRUCT_TYPES) >= {"LotterySummary", "LegacySummary", "DualWriteStatus", "LotteryFinalizedEvent"}


def test_lenient_decoding_of_a_non_minimal_length_hashes_differently():
    """What the chain's import accepts: same fields, different bytes, so a different hash."""
    o = 85  # snapshot_hash's length byte in lottery-1
    odd = LOTTERY_1_BYTES[:o] + h("a0 00") + LOTTERY_1_BYTES[o + 1 :]  # 32 as two ULEB128 bytes
    s = LotterySummary.from_bcs(odd, lenient_uleb=True)
    assert s == LotterySummary.from_bcs(LOTTERY_1_BYTES)
    assert s.to_bcs() == LOTTERY_1_BYTES
    assert expected_hash(odd) != expected_hash(s)
