"""The structs as pydantic models: their JSON form is Move JSON, both ways, for every struct.

Round trips of ``model_dump_json``/``model_validate_json`` and ``model_dump``/``model_validate``
over every fixture and every hand-written vector of test_bcs_vectors, for LotterySummary,
LegacySummary, DualWriteStatus and the events; the Move JSON written (supra-cli.md, "Move
values in JSON") checked against the spec's rules, not against the code's own output; the
same strictness as the codec, with the field named.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Optional

import pytest
from helpers_codec import (
    FIXTURES,
    LOTTERIES_2_3_JSON,
    LOTTERY_1_BCS,
    LOTTERY_1_BYTES,
    LOTTERY_1_JSON,
    LOTTERY_2_HEX,
    LOTTERY_4_JSONL,
    VIEW_LOTTERY_5_JSON,
    h,
    lottery_1_json,
)
from pydantic import BaseModel, TypeAdapter, ValidationError
from test_bcs_vectors import EMPTY_FIELDS, EMPTY_HEX

from dualwrite import FieldError
from dualwrite.bcs import BOOL, BYTES, OptionType
from dualwrite.bcs.types import UIntType
from dualwrite.structs import (
    EVENT_TYPES,
    STRUCT_TYPES,
    DualWriteStatus,
    LegacySummary,
    LotteryFinalizedEvent,
    LotterySummary,
)

# -- the values: every fixture and every hand-written vector -----------------------------------


def fixture_summaries() -> list[tuple[str, LotterySummary]]:
    out = [("lottery-1.json", LotterySummary.from_move_json(lottery_1_json()))]
    out += [(f"lotteries-2-3.json[{i}]", LotterySummary.from_move_json(o))
            for i, o in enumerate(json.loads(LOTTERIES_2_3_JSON.read_text()))]
    out += [("lottery-4.jsonl", LotterySummary.from_move_json(json.loads(LOTTERY_4_JSONL.read_text())))]
    out += [(f"view-lottery-5.json[{i}]", LotterySummary.from_move_json(o))
            for i, o in enumerate(json.loads(VIEW_LOTTERY_5_JSON.read_text())["result"])]
    out += [("lottery-1.bcs", LotterySummary.from_bcs(LOTTERY_1_BCS.read_bytes()))]
    out += [("lottery-2.hex", LotterySummary.from_bcs(h("".join(LOTTERY_2_HEX.read_text().split())[2:])))]
    return out


# the hand-written vectors of test_bcs_vectors.py: (name, model, bytes)
GOLDEN = [
    ("empty-vectors", LotterySummary, h(EMPTY_HEX)),
    ("lottery-1", LotterySummary, LOTTERY_1_BYTES),
    ("two-byte-uleb", LotterySummary, h(
        "0100000000000000", "06", "0d", b"spring-draw-1".hex(), "03", "535052",
        "0807060504030201", "0200000000000000", "ffffffffffffffff", "0001000000000000",
        "0300000000000000", "0400000000000000", "02", "03", "1000000000000080",
        "8201", "ab" * 130, "00", "8001", bytes(range(128)).hex(), "7f", "07" * 127,
        "0500000000000000", "800a576900000000", "c023586900000000", "e03f586900000000",
    )),
    ("status-none-1", DualWriteStatus, h("01 00 01 00")),
    ("status-none-0", DualWriteStatus, h("00 00 00 00")),
    ("status-some-32", DualWriteStatus, h("00 01 00 01 20" + bytes(range(32)).hex())),
    ("status-some-empty", DualWriteStatus, h("01 01 01 01 00")),
    ("legacy-long", LegacySummary, h("f901", LOTTERY_1_BYTES.hex(), "20",
                                     hashlib.sha3_256(LOTTERY_1_BYTES).hexdigest(), "e03f586900000000")),
    ("legacy-short", LegacySummary, h("02 abcd", "00", "0100000000000000")),
    ("finalized-event", LotteryFinalizedEvent, h("0100", "02", "0900000000000000", "03 010203", "01",
                                                  "0400000000000000")),
]


def derived(model, s: LotterySummary):
    """A value of ``model`` built from a fixture summary, field by field from the declaration."""
    data = s.to_bcs()
    digest = hashlib.sha3_256(data).digest()
    values = {}
    for name, t in model.__layout__.fields:
        if name in s.__dict__:
            values[name] = s.__dict__[name]
        elif name == "lottery_id":
            values[name] = s.id
        elif name == "summary_bcs":
            values[name] = data
        elif t is BYTES or isinstance(t, OptionType):
            values[name] = digest
        elif t is BOOL:
            values[name] = True
        else:
            values[name] = 1
    return model(**values)


def all_values() -> list[tuple[str, object]]:
    fx = fixture_summaries()
    out: list[tuple[str, object]] = list(fx)
    for model in (LegacySummary, DualWriteStatus, *EVENT_TYPES.values()):
        out += [(f"{model.__name__}<-{name}", derived(model, s)) for name, s in fx]
    out.append(("DualWriteStatus-none", DualWriteStatus(enabled=False, abort_on_mismatch=True,
                                                        abort_on_missing=False, expected_hash=None)))
    out += [(f"golden:{name}", model.from_bcs(data)) for name, model, data in GOLDEN]
    return out


VALUES = all_values()
IDS = [name for name, _ in VALUES]


def test_every_struct_is_covered():
    assert {type(v) for _, v in VALUES} == set(STRUCT_TYPES.values())
    used = {n.split("[")[0] for n in IDS if "<-" not in n}
    assert {f.name for f in FIXTURES.iterdir()} <= used  # every fixture file


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [v for _, v in VALUES], ids=IDS)
def test_model_dump_json_round_trip(value):
    model = type(value)
    text = value.model_dump_json()
    back = model.model_validate_json(text)
    assert back == value
    assert back.__dict__ == value.__dict__
    assert back.to_bcs() == value.to_bcs()
    assert json.loads(text) == value.to_move_json() == value.model_dump(mode="json")
    assert model.model_validate_json(value.model_dump_json(indent=2)) == value
    assert model.model_validate_json(json.dumps(value.to_move_json()).encode()) == value  # bytes input too


@pytest.mark.parametrize("value", [v for _, v in VALUES], ids=IDS)
def test_model_dump_round_trip(value):
    model = type(value)
    native = value.model_dump()
    assert native == value.__dict__  # the Python form: ints, bytes, None
    assert model.model_validate(native) == value
    moved = value.model_dump(mode="json")
    assert model.model_validate(moved) == value
    assert model.from_move_json(moved) == value  # the thin name agrees
    assert model.model_validate(value) is value


@pytest.mark.parametrize("value", [v for _, v in VALUES], ids=IDS)
def test_the_json_written_is_move_json(value):
    """Each field as supra-cli.md renders it, from the declared Move type."""
    out = json.loads(value.model_dump_json())
    assert list(out) == type(value).field_names()  # declaration (BCS) order
    for name, t in type(value).__layout__.fields:
        v, py = out[name], getattr(value, name)
        if t is BOOL:
            assert v is py
        elif isinstance(t, UIntType):
            if t.bits >= 64:
                assert v == str(py) and v.isdigit()
            else:
                assert v == py and type(v) is int
        elif t is BYTES:
            assert v == "0x" + py.hex()
        else:
            assert isinstance(t, OptionType)
            assert v == ({"vec": []} if py is None else {"vec": ["0x" + py.hex()]})


def test_fixture_json_is_read_as_written():
    """The fixtures are Move JSON as the node returns it: model_validate_json reads them as they are."""
    text = LOTTERY_1_JSON.read_text()
    s = LotterySummary.model_validate_json(text)
    assert s.to_bcs() == LOTTERY_1_BYTES
    assert json.loads(s.model_dump_json()) == json.loads(text)
    view = json.loads(VIEW_LOTTERY_5_JSON.read_text())
    items = TypeAdapter(list[LotterySummary]).validate_python(view["result"])
    assert [i.id for i in items] == [5]
    assert all(f.suffix in {".json", ".jsonl", ".bcs", ".hex"} for f in FIXTURES.iterdir())


def test_option_of_legacy_summary_as_history_bridge_returns_it():
    s = LegacySummary.from_bcs(GOLDEN[-3][2])
    moved = {"vec": [s.model_dump(mode="json")]}
    assert moved["vec"][0]["finalized_at"] == "1767391200"

    class View(BaseModel):
        vec: list[LegacySummary]

    assert View.model_validate(moved).vec == [s]
    assert View.model_validate_json(View(vec=[s]).model_dump_json()).vec == [s]


# -- used inside other pydantic models ------------------------------------------------------------


class Batch(BaseModel):
    summaries: list[LotterySummary]
    status: Optional[DualWriteStatus] = None
    legacy: dict[str, LegacySummary] = {}


def test_inside_another_model():
    summaries = [v for n, v in VALUES if isinstance(v, LotterySummary)]
    status = next(v for _, v in VALUES if isinstance(v, DualWriteStatus) and v.expected_hash)
    legacy = next(v for _, v in VALUES if isinstance(v, LegacySummary))
    b = Batch(summaries=summaries, status=status, legacy={"1": legacy})
    text = b.model_dump_json()
    obj = json.loads(text)
    assert obj["summaries"][0] == summaries[0].to_move_json()
    assert obj["status"]["expected_hash"] == {"vec": ["0x" + status.expected_hash.hex()]}
    assert Batch.model_validate_json(text) == b
    assert Batch.model_validate(b.model_dump()) == b
    assert Batch.model_validate(json.loads(text)) == b


def test_errors_inside_another_model_name_the_path():
    obj = {"summaries": [lottery_1_json(), dict(lottery_1_json(), series_code=[83, 256, 82])]}
    with pytest.raises(ValidationError) as info:
        Batch.model_validate(obj)
    (err,) = info.value.errors()
    assert err["loc"] == ("summaries", 1, "series_code", 1)
    assert err["msg"] == "byte 256 is not 0..255"


# -- strictness, through pydantic's entry points --------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("id", 1.0, "expected u64 as an integer or a decimal string, got 1.0"),
        ("id", True, "expected u64, got a boolean"),
        ("id", "-1", "expected u64 as an integer or a decimal string, got '-1'"),
        ("id", str(2**64), "18446744073709551616 out of range for u64 (0..18446744073709551615)"),
        ("id", 2**64, "18446744073709551616 out of range for u64 (0..18446744073709551615)"),
        ("id", "1e3", "expected u64 as an integer or a decimal string, got '1e3'"),
        ("status", 256, "256 out of range for u8 (0..255)"),
        ("status", False, "expected u8, got a boolean"),
        ("snapshot_hash", "0x123", "odd number of hex digits (3)"),
        ("snapshot_hash", "0xzz", "not hex: character 'z' at position 0"),
        ("snapshot_hash", 5, "expected 0x-hex bytes, got 5"),
    ],
)
@pytest.mark.parametrize("entry", ["model_validate", "model_validate_json"])
def test_strict_with_the_field_named(field, value, msg, entry):
    obj = dict(lottery_1_json(), **{field: value})
    with pytest.raises(ValidationError) as info:
        if entry == "model_validate":
            LotterySummary.model_validate(obj)
        else:
            LotterySummary.model_validate_json(json.dumps(obj))
    (err,) = info.value.errors()
    assert err["loc"] == (field,)
    assert err["msg"].startswith(msg)
    assert err["type"] == "move_value"


def test_unknown_and_missing_fields_are_pydantic_errors():
    obj = dict(lottery_1_json(), winner="alice")
    del obj["payout_round"]
    with pytest.raises(ValidationError) as info:
        LotterySummary.model_validate(obj)
    got = {(e["type"], e["loc"]) for e in info.value.errors()}
    assert got == {("extra_forbidden", ("winner",)), ("missing", ("payout_round",))}
    with pytest.raises(ValidationError):
        LotterySummary.model_validate_json("[1]")


def test_every_bad_field_is_reported_at_once():
    obj = dict(lottery_1_json(), id=-1, status=1.5, closed_at="x")
    with pytest.raises(ValidationError) as info:
        LotterySummary.model_validate(obj)
    assert [e["loc"] for e in info.value.errors()] == [("id",), ("status",), ("closed_at",)]


def test_python_values_through_model_validate():
    native = dict(EMPTY_FIELDS)
    s = LotterySummary.model_validate(native)
    assert s.to_bcs() == h(EMPTY_HEX)
    assert LotterySummary.model_validate(dict(native, event_slug=bytearray(b"ab"))).event_slug == b"ab"
    with pytest.raises(ValidationError) as info:
        LotterySummary.model_validate(dict(native, tickets_sold=2.0))
    assert info.value.errors()[0]["loc"] == ("tickets_sold",)


def test_option_forms():
    base = {"enabled": True, "abort_on_mismatch": False, "abort_on_missing": True}
    for form, want in [({"vec": []}, None), (None, None), ({"vec": ["0xab"]}, b"\xab"), (b"\xab", b"\xab"),
                       ({"vec": [b"\xab"]}, b"\xab")]:
        assert DualWriteStatus.model_validate(dict(base, expected_hash=form)).expected_hash == want
    for bad in ["0xab", ["0xab"], {"vec": ["0x01", "0x02"]}, {"Some": "0xab"}, {"vec": "0xab"}]:
        with pytest.raises(ValidationError) as info:
            DualWriteStatus.model_validate(dict(base, expected_hash=bad))
        assert info.value.errors()[0]["loc"] == ("expected_hash",)
    with pytest.raises(ValidationError) as info:
        DualWriteStatus.model_validate(dict(base, enabled="true"))
    assert info.value.errors()[0]["loc"] == ("enabled",)


def test_constructor_takes_python_values_only():
    """``LotterySummary(...)`` is the Python form (FieldError); text comes in through model_validate."""
    with pytest.raises(FieldError) as info:
        LotterySummary(**dict(EMPTY_FIELDS, id="1"))
    assert info.value.path == "LotterySummary.id"
    assert LotterySummary.model_validate(dict(EMPTY_FIELDS, id="1")).id == 1


def test_from_move_json_keeps_its_path_prefix():
    with pytest.raises(FieldError) as info:
        LotterySummary.from_move_json(dict(lottery_1_json(), id=1.5), "f.json[3]: LotterySummary")
    assert info.value.path == "f.json[3]: LotterySummary.id"


# -- import stays cheap ---------------------------------------------------------------------------


def test_no_pydantic_schema_is_built_at_import_or_by_the_codec():
    """The schemas are built on first model_validate/model_dump: importing, constructing,
    encoding and decoding (what the CLI's start-up and hash path do) build none."""
    code = (
        "import dualwrite.structs as S\n"
        "from dualwrite import expected_hash\n"
        "s = S.LotterySummary.from_bcs(open(%r, 'rb').read())\n"
        "expected_hash(s); S.LotterySummary(**s.__dict__); s.to_move_json()\n"
        "S.LotterySummary.from_move_json(s.to_move_json())\n"
        "built = [n for n, m in S.STRUCT_TYPES.items() if m.__pydantic_complete__]\n"
        "assert not built, built\n"
        "s.model_dump_json()\n"
        "assert S.LotterySummary.__pydantic_complete__\n"
    ) % str(LOTTERY_1_BCS)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- JSON Schema of the Move JSON form ------------------------------------------------------------


@pytest.mark.parametrize("value", [v for _, v in VALUES], ids=IDS)
def test_json_schema_describes_the_move_json(value):
    import jsonschema

    model = type(value)
    written = value.model_dump(mode="json")
    jsonschema.validate(written, model.model_json_schema(mode="serialization"))
    jsonschema.validate(written, model.model_json_schema())  # what is written is read back
    jsonschema.validate(json.loads(json.dumps(written).replace('"0x', '"0X')), model.model_json_schema())


def test_json_schema_rejects_what_the_writer_never_writes():
    import jsonschema

    written = LotterySummary.model_json_schema(mode="serialization")
    for bad in [dict(lottery_1_json(), id=1), dict(lottery_1_json(), status="6"),
                dict(lottery_1_json(), snapshot_hash="0xABC"), dict(lottery_1_json(), extra=1)]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, written)
    assert LotterySummary.model_json_schema()["properties"]["id"]["anyOf"][1]["maximum"] == 2**64 - 1
