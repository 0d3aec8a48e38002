"""``dualwrite hash / encode / decode / evidence check``: every input form, and the bad-input contract.

Through click's CliRunner for the many cases, and through real processes
(``python -m dualwrite`` and the ``dualwrite`` console script) for what only a real
process shows: the exit status, and what reaches stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_codec import (
    LOTTERIES_2_3_JSON,
    LOTTERY_1_BCS,
    LOTTERY_1_BYTES,
    LOTTERY_1_JSON,
    LOTTERY_2_HEX,
    LOTTERY_4_JSONL,
    ROOT,
    VIEW_LOTTERY_5_JSON,
    lottery_1_json,
    sample_json,
)

from dualwrite.cli.main import cli
from dualwrite.evidence import check_evidence
from dualwrite.structs import STRUCT_TYPES, LotterySummary

HASH_1 = "0x" + hashlib.sha3_256(LOTTERY_1_BYTES).hexdigest()
RECORD_KEYS = {"lottery_id", "size_bytes", "summary_hex", "expected_hash", "source"}


def run(*args: str, input: bytes | str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def hash_json(*args: str, input: bytes | str | None = None) -> list[dict]:
    r = run("hash", "--json", *args, input=input)
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    records = json.loads(r.stdout)
    assert isinstance(records, list)
    for rec in records:
        assert RECORD_KEYS <= set(rec)
        data = bytes.fromhex(rec["summary_hex"][2:])
        assert rec["summary_hex"] == rec["summary_hex"].lower() and rec["summary_hex"].startswith("0x")
        assert rec["size_bytes"] == len(data)
        assert rec["expected_hash"] == "0x" + hashlib.sha3_256(data).hexdigest()
        assert LotterySummary.from_bcs(data).id == rec["lottery_id"]
    return records


def summary_bytes(obj: dict) -> bytes:
    return LotterySummary.from_move_json(obj).to_bcs()


def fixture_objects() -> list[dict]:
    """The five fixture summaries as JSON objects (ids 1..5)."""
    objs = [lottery_1_json(), *json.loads(LOTTERIES_2_3_JSON.read_text())]
    objs.append(json.loads(LOTTERY_4_JSONL.read_text()))
    objs += json.loads(VIEW_LOTTERY_5_JSON.read_text())["result"]
    return objs


# -- hash: every accepted input form ------------------------------------------------------------


def test_hash_json_object():
    (rec,) = hash_json(str(LOTTERY_1_JSON))
    assert rec["lottery_id"] == 1
    assert rec["size_bytes"] == 249
    assert rec["summary_hex"] == "0x" + LOTTERY_1_BYTES.hex()
    assert rec["expected_hash"] == HASH_1
    assert rec["source"] == str(LOTTERY_1_JSON)
    assert rec["form"] == "json"


def test_hash_json_array():
    recs = hash_json(str(LOTTERIES_2_3_JSON))
    assert [r["lottery_id"] for r in recs] == [2, 3]
    assert [r["source"] for r in recs] == [f"{LOTTERIES_2_3_JSON}[0]", f"{LOTTERIES_2_3_JSON}[1]"]
    objs = json.loads(LOTTERIES_2_3_JSON.read_text())
    assert [r["summary_hex"] for r in recs] == ["0x" + summary_bytes(o).hex() for o in objs]


def test_hash_json_lines(tmp_path):
    f = tmp_path / "two.jsonl"
    objs = fixture_objects()
    f.write_text(json.dumps(objs[0]) + "\n\n" + json.dumps(objs[3]) + "\n")
    recs = hash_json(str(f))
    assert [r["lottery_id"] for r in recs] == [1, 4]
    assert [r["source"] for r in recs] == [f"{f}:1", f"{f}:3"]  # line numbers, blank lines counted
    assert {r["form"] for r in recs} == {"jsonl"}
    assert recs[0]["expected_hash"] == HASH_1
    (one,) = hash_json(str(LOTTERY_4_JSONL))  # a one-line .jsonl file
    assert one["lottery_id"] == 4


@pytest.mark.parametrize("key", ["result", "Result"])
def test_hash_view_envelopes(tmp_path, key):
    (rec,) = hash_json(str(VIEW_LOTTERY_5_JSON))
    assert rec["lottery_id"] == 5
    assert rec["source"] == f"{VIEW_LOTTERY_5_JSON}[0]"
    assert rec["form"] == "envelope"
    f = tmp_path / "view.json"
    f.write_text(json.dumps({key: [lottery_1_json()]}))
    (rec,) = hash_json(str(f))
    assert rec["expected_hash"] == HASH_1
    assert rec["form"] == "envelope"


def test_hash_bcs_file():
    (rec,) = hash_json(str(LOTTERY_1_BCS))
    assert rec["expected_hash"] == HASH_1
    assert rec["summary_hex"] == "0x" + LOTTERY_1_BYTES.hex()
    assert rec["form"] == "bcs"


def test_hash_binary_without_the_bcs_suffix(tmp_path):
    f = tmp_path / "summary.bin"
    f.write_bytes(LOTTERY_1_BYTES)
    (rec,) = hash_json(str(f))
    assert rec["expected_hash"] == HASH_1


def test_hash_hex_file_fixture():
    (rec,) = hash_json(str(LOTTERY_2_HEX))
    assert rec["lottery_id"] == 2
    assert rec["form"] == "hex"
    obj = json.loads(LOTTERIES_2_3_JSON.read_text())[0]
    assert rec["expected_hash"] == "0x" + hashlib.sha3_256(summary_bytes(obj)).hexdigest()


@pytest.mark.parametrize(
    "text",
    [
        "0x" + LOTTERY_1_BYTES.hex(),
        LOTTERY_1_BYTES.hex(),
        LOTTERY_1_BYTES.hex().upper(),
        "0X" + LOTTERY_1_BYTES.hex(),
        "  0x" + LOTTERY_1_BYTES.hex() + "\n\n",
        "0x" + "\n".join(LOTTERY_1_BYTES.hex()[i : i + 64] for i in range(0, 498, 64)),
        "0x" + "_".join(LOTTERY_1_BYTES.hex()[i : i + 16] for i in range(0, 498, 16)),
        " ".join(LOTTERY_1_BYTES.hex()[i : i + 2] for i in range(0, 498, 2)),
        "0x" + "\t".join(LOTTERY_1_BYTES.hex()[i : i + 8] for i in range(0, 498, 8)) + "\r\n",
    ],
    ids=["0x", "bare", "upper", "0X", "padded", "lines", "underscores", "spaced", "tabs-crlf"],
)
def test_hash_hex_forms(tmp_path, text):
    f = tmp_path / "summary.hex"
    f.write_text(text)
    (rec,) = hash_json(str(f))
    assert rec["expected_hash"] == HASH_1
    assert rec["form"] == "hex"


def test_hash_json_with_a_byte_order_mark(tmp_path):
    f = tmp_path / "bom.json"
    f.write_bytes(b"\xef\xbb\xbf" + LOTTERY_1_JSON.read_bytes())
    (rec,) = hash_json(str(f))
    assert rec["expected_hash"] == HASH_1


def test_hash_json_with_integer_u64s(tmp_path):
    obj = {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in lottery_1_json().items()}
    f = tmp_path / "ints.json"
    f.write_text(json.dumps(obj))
    (rec,) = hash_json(str(f))
    assert rec["expected_hash"] == HASH_1


@pytest.mark.parametrize(
    "payload",
    [
        LOTTERY_1_JSON.read_bytes(),
        LOTTERY_1_BYTES,
        ("0x" + LOTTERY_1_BYTES.hex() + "\n").encode(),
        json.dumps([lottery_1_json()]).encode(),
    ],
    ids=["json", "bcs", "hex", "array"],
)
def test_hash_stdin(payload):
    (rec,) = hash_json("-", input=payload)
    assert rec["expected_hash"] == HASH_1
    assert rec["source"].startswith("-")


def test_hash_stdin_bcs_that_looks_like_text():
    """Lottery 123 with empty vectors: its BCS is all ASCII and starts with "{"."""
    obj = dict(lottery_1_json(), id="123", event_slug="0x", series_code="0x", snapshot_hash="0x",
               slots_checksum="0x", winners_batch_hash="0x", checksum_after_batch="0x",
               run_id="9", tickets_sold="8", proceeds_accum="1", total_allocated="2", total_prize_paid="3", total_operations_paid="4",
               created_at="5", closed_at="6", finalized_at="7")
    data = summary_bytes(obj)
    assert data[:1] == b"{" and data.isascii() and len(data) == 105
    (rec,) = hash_json("-", input=data)
    assert rec["lottery_id"] == 123
    assert rec["form"] == "bcs"
    assert rec["expected_hash"] == "0x" + hashlib.sha3_256(data).hexdigest()


def test_hash_json_lines_with_a_line_separator_in_a_string(tmp_path):
    f = tmp_path / "sep.jsonl"
    f.write_text(_json(id="1") + "\n" + _json(id="2", winner="a\u2028b").replace("\\u2028", "\u2028") + "\n")
    r = run("hash", str(f))
    assert r.exit_code == 2  # line 2 has an unknown field: reported on line 2, not on a split half
    assert_one_line_error(r.stderr, f"{f}:2", "unknown field 'winner'")


def test_hash_many_files_in_order(tmp_path):
    recs = hash_json(str(LOTTERY_2_HEX), str(LOTTERY_1_BCS), str(LOTTERIES_2_3_JSON), str(LOTTERY_4_JSONL),
                     str(VIEW_LOTTERY_5_JSON))
    assert [r["lottery_id"] for r in recs] == [2, 1, 2, 3, 4, 5]
    assert recs[0]["expected_hash"] == recs[2]["expected_hash"]  # the same lottery, two forms
    assert len({r["expected_hash"] for r in recs}) == 5


def test_hash_table_for_people():
    r = run("hash", str(LOTTERY_1_JSON), str(LOTTERIES_2_3_JSON))
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["lottery_id", "bytes", "expected_hash", "summary", "source"]
    assert len(lines) == 4
    assert HASH_1 in lines[1] and "249" in lines[1]


# -- hash --out and evidence check --------------------------------------------------------------


def test_hash_out_evidence_then_check_then_tamper(tmp_path):
    out = tmp_path / "hashes.json"
    r = run("hash", "--json", "--out", str(out), str(LOTTERY_1_JSON), str(LOTTERIES_2_3_JSON))
    assert r.exit_code == 0, r.stderr
    records = json.loads(r.stdout)
    doc = json.loads(out.read_text())
    assert doc["dualwrite_evidence"] == 1
    assert doc["kind"] == "hash-report"
    assert doc["data"] == records
    assert len(doc["blake3"]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hashes.json"]  # no temporary left behind

    ok = run("evidence", "check", str(out))
    assert ok.exit_code == 0
    assert ok.stdout.startswith("ok") and doc["blake3"] in ok.stdout
    assert check_evidence(out).ok

    # change one expected hash by one digit: the digest no longer matches
    text = out.read_text()
    first = records[0]["expected_hash"]
    tampered = first[:-1] + ("0" if first[-1] != "0" else "1")
    out.write_text(text.replace(first, tampered, 1))
    bad = run("evidence", "check", str(out))
    assert bad.exit_code == 1
    assert "MODIFIED" in bad.stdout
    assert len(bad.stderr.splitlines()) == 1 and str(out) in bad.stderr


def test_hash_out_text_mode_reports_the_file(tmp_path):
    out = tmp_path / "h.json"
    r = run("hash", "--out", str(out), str(LOTTERY_1_BCS))
    assert r.exit_code == 0
    assert f"wrote {out} (blake3 " in r.stdout
    assert json.loads(out.read_text())["data"][0]["expected_hash"] == HASH_1


def test_evidence_check_json_and_many_files(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run("hash", "--out", str(a), str(LOTTERY_1_JSON)).exit_code == 0
    assert run("hash", "--out", str(b), str(LOTTERY_2_HEX)).exit_code == 0
    r = run("evidence", "check", "--json", str(a), str(b))
    assert r.exit_code == 0
    assert [x["ok"] for x in json.loads(r.stdout)] == [True, True]
    doc = json.loads(b.read_text())
    doc["data"][0]["lottery_id"] = 99
    b.write_text(json.dumps(doc))
    r = run("evidence", "check", "--json", str(a), str(b))
    assert r.exit_code == 1
    assert [x["ok"] for x in json.loads(r.stdout)] == [True, False]


def test_evidence_check_of_a_file_that_is_not_evidence(tmp_path):
    f = tmp_path / "plain.json"
    f.write_text("{}")
    r = run("evidence", "check", str(f))
    assert r.exit_code == 2
    assert len(r.stderr.splitlines()) == 1 and str(f) in r.stderr


# -- encode / decode --------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(STRUCT_TYPES))
def test_encode_decode_round_trip_each_type(tmp_path, type_name):
    model = STRUCT_TYPES[type_name]
    obj = sample_json(model, seed=3)
    canonical = model.from_move_json(obj).to_move_json()
    f = tmp_path / "value.json"
    f.write_text(json.dumps(obj))
    enc = run("encode", "--type", type_name, str(f))
    assert enc.exit_code == 0, enc.stderr
    hex_text = enc.stdout.strip()
    assert hex_text == "0x" + model.from_move_json(obj).to_bcs().hex()

    dec = run("decode", "--type", type_name, "--json", hex_text)
    assert dec.exit_code == 0, dec.stderr
    assert json.loads(dec.stdout) == canonical

    # the same through a file and through stdin
    hf = tmp_path / "value.hex"
    hf.write_text(hex_text + "\n")
    assert json.loads(run("decode", "--type", type_name, "--json", str(hf)).stdout) == canonical
    assert json.loads(run("decode", "--type", type_name, "--json", "-", input=hex_text).stdout) == canonical
    bf = tmp_path / "value.bcs"
    bf.write_bytes(bytes.fromhex(hex_text[2:]))
    assert json.loads(run("decode", "--type", type_name, "--json", str(bf)).stdout) == canonical

    # and the text form names every field
    text = run("decode", "--type", type_name, hex_text)
    assert text.exit_code == 0
    assert model.__move_name__ in text.stdout
    for name in model.field_names():
        assert name in text.stdout


def test_encode_json_records_and_many_values(tmp_path):
    r = run("encode", "--json", str(LOTTERIES_2_3_JSON))
    assert r.exit_code == 0
    recs = json.loads(r.stdout)
    assert [x["source"] for x in recs] == [f"{LOTTERIES_2_3_JSON}[0]", f"{LOTTERIES_2_3_JSON}[1]"]
    assert {x["type"] for x in recs} == {"LotterySummary"}
    objs = json.loads(LOTTERIES_2_3_JSON.read_text())
    assert [x["bcs_hex"] for x in recs] == ["0x" + summary_bytes(o).hex() for o in objs]
    plain = run("encode", str(LOTTERIES_2_3_JSON))
    assert plain.stdout.split() == [x["bcs_hex"] for x in recs]


def test_encode_legacy_summary_from_a_view_option(tmp_path):
    """history_bridge::get_summary answers an Option<LegacySummary>: {"result": [{"vec": [...]}]}."""
    legacy = {"summary_bcs": "0x" + LOTTERY_1_BYTES.hex(), "archive_hash": HASH_1, "finalized_at": "1767391200"}
    f = tmp_path / "legacy.json"
    f.write_text(json.dumps({"result": [{"vec": [legacy]}]}))
    r = run("encode", "--type", "LegacySummary", str(f))
    assert r.exit_code == 0, r.stderr
    data = bytes.fromhex(r.stdout.strip()[2:])
    assert data[:2] == b"\xf9\x01" and data[2:251] == LOTTERY_1_BYTES  # 249 as ULEB128, then the bytes
    f.write_text(json.dumps({"result": [{"vec": []}]}))
    r = run("encode", "--type", "LegacySummary", str(f))
    assert r.exit_code == 2
    assert "no LegacySummary" in r.stderr and str(f) in r.stderr


def test_decode_summary_text_shows_expected_hash():
    r = run("decode", str(LOTTERY_1_BCS))
    assert r.exit_code == 0
    assert f"expected_hash  {HASH_1}" in r.stdout
    assert "history::LotterySummary (249 bytes)" in r.stdout
    assert "Finalized (6)" in r.stdout


def test_decode_a_long_hex_argument():
    """A 249-byte summary as an argument: 500 characters, far too long for a file name."""
    r = run("decode", "--json", "0x" + LOTTERY_1_BYTES.hex())
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == lottery_1_json()


def test_decode_stdin_binary():
    r = run("decode", "--json", "-", input=LOTTERY_1_BYTES)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["id"] == "1"


def test_decode_binary_that_is_all_ascii(tmp_path):
    """BCS of small values is often pure ASCII (01 00 01 00): still binary, not hex text."""
    status = {"enabled": True, "abort_on_mismatch": False, "abort_on_missing": True, "expected_hash": {"vec": []}}
    r = run("decode", "--type", "DualWriteStatus", "--json", "-", input=b"\x01\x00\x01\x00")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == status
    f = tmp_path / "status.bin"
    f.write_bytes(b"\x01\x00\x01\x00")
    r = run("decode", "--type", "DualWriteStatus", "--json", str(f))
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == status
    r = run("decode", "-", input="zz\n")
    assert r.exit_code == 2
    assert_one_line_error(r.stderr, "<stdin>: not hex: character 'z' at position 0")


# -- the bad-input contract: exit 2, one line on stderr naming where and what, nothing written -------

TRUNCATED_HEX = "0x" + LOTTERY_1_BYTES[:-1].hex()
NON_MINIMAL_HEX = "0x" + (LOTTERY_1_BYTES[:85] + b"\xa0\x00" + LOTTERY_1_BYTES[86:]).hex()
HUGE_LENGTH_HEX = "0x" + (LOTTERY_1_BYTES[:85] + bytes.fromhex("ffffffff0f") + LOTTERY_1_BYTES[86:]).hex()


def _json(**changes) -> str:
    return json.dumps(dict(lottery_1_json(), **changes))


BAD_FILES = [
    # (file name, content, what the message must name besides the file)
    ("truncated.bcs", LOTTERY_1_BYTES[:-1], ["LotterySummary.finalized_at", "byte offset 241"]),
    ("trailing.bcs", LOTTERY_1_BYTES + b"\x00", ["LotterySummary", "byte offset 249", "trailing"]),
    ("truncated.hex", TRUNCATED_HEX, ["LotterySummary.finalized_at", "byte offset 241"]),
    ("noncanonical.hex", NON_MINIMAL_HEX, ["LotterySummary.snapshot_hash", "byte offset 85", "non-minimal"]),
    ("huge.hex", HUGE_LENGTH_HEX, ["LotterySummary.snapshot_hash", "byte offset 85", "2^31-1"]),
    ("odd.hex", "0x" + LOTTERY_1_BYTES.hex()[:-1], ["odd number of hex digits"]),
    ("negative.json", _json(id="-1"), ["LotterySummary.id"]),
    ("toobig.json", _json(tickets_sold=str(2**64)), ["LotterySummary.tickets_sold", "out of range"]),
    ("boolean.json", _json(id=True), ["LotterySummary.id", "boolean"]),
    ("badhex.json", _json(snapshot_hash="0xzz"), ["LotterySummary.snapshot_hash", "not hex"]),
    ("unknown.json", _json(winner="x"), ["unknown field 'winner'"]),
    ("missing.json", json.dumps({k: v for k, v in lottery_1_json().items() if k != "closed_at"}),
     ["LotterySummary.closed_at", "missing"]),
    ("array.json", json.dumps([lottery_1_json(), dict(lottery_1_json(), status=300)]),
     ["array.json[1]", "LotterySummary.status"]),
    ("lines.jsonl", _json() + "\n" + _json(run_id="x") + "\n", ["lines.jsonl:2", "LotterySummary.run_id"]),
    ("broken.jsonl", _json() + "\n{nope\n", ["broken.jsonl:2", "invalid JSON"]),
    ("broken.json", LOTTERY_1_JSON.read_text().replace('"status": 6,', '"status": 6'),
     ["invalid JSON at line 4 column 3"]),
    ("error.json", json.dumps({"message": "function not found"}), ["error envelope", "function not found"]),
    ("duplicate.json", '{"id": "1", "id": "2"}', ["duplicate key 'id'"]),
    ("duplicate.jsonl", _json() + "\n" + _json()[:-1] + ', "id": "7"}\n', ["duplicate.jsonl:2", "duplicate key 'id'"]),
    ("empty.json", "", ["empty input"]),
    ("nothing.json", "[]", ["no summary"]),
    ("words.txt", "hello world", ["not a summary in any accepted form"]),
]


def _bad_file(tmp_path: Path, name: str, content) -> Path:
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    return f


def assert_one_line_error(stderr: str, *needles: str) -> None:
    assert stderr.endswith("\n")
    assert len(stderr.splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("dualwrite: error: ")
    for n in needles:
        assert n in stderr, (n, stderr)


@pytest.mark.parametrize(("name", "content", "needles"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_hash_bad_input(tmp_path, name, content, needles):
    f = _bad_file(tmp_path, name, content)
    out = tmp_path / "evidence" / "hashes.json"
    out.parent.mkdir()
    r = run("hash", "--json", "--out", str(out), str(LOTTERY_1_JSON), str(f))
    assert r.exit_code == 2
    err = json.loads(r.stdout)["error"]  # under --json, the error is also an object on stdout (issue 20 item 11)
    assert err["exit_code"] == 2 and err["message"] == r.stderr.strip().removeprefix("dualwrite: error: ")
    assert_one_line_error(r.stderr, str(f), *needles)
    assert list(out.parent.iterdir()) == []  # nothing written, not even half a file


def test_hash_missing_file_and_directory(tmp_path):
    r = run("hash", str(tmp_path / "nope.json"))
    assert r.exit_code == 2
    assert_one_line_error(r.stderr, str(tmp_path / "nope.json"), "no such file")
    r = run("hash", str(tmp_path))
    assert r.exit_code == 2
    assert_one_line_error(r.stderr, str(tmp_path), "is a directory")


def test_hash_out_to_a_missing_folder(tmp_path):
    out = tmp_path / "no" / "such" / "dir.json"
    r = run("hash", "--out", str(out), str(LOTTERY_1_JSON))
    assert r.exit_code == 2
    assert_one_line_error(r.stderr, str(out))


def test_hash_bad_stdin():
    r = run("hash", "-", input=LOTTERY_1_BYTES[:100])
    assert r.exit_code == 2
    assert_one_line_error(r.stderr, "-: ", "LotterySummary.snapshot_hash", "byte offset 85")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--type", "DualWriteStatus", "01020000"], ["argument SOURCE", "DualWriteStatus.abort_on_mismatch", "byte offset 1"]),
        (["--type", "DualWriteStatus", "0x01000100ff"], ["argument SOURCE", "byte offset 4", "trailing"]),
        (["--type", "DualWriteStatus", "0x00000002"], ["DualWriteStatus.expected_hash", "byte offset 3", "Option"]),
        (["--type", "LegacySummary", "0xffffffff0f"], ["LegacySummary.summary_bcs", "byte offset 0", "2^31-1"]),
        (["zz"], ["argument SOURCE is neither a file nor hex"]),
        ([TRUNCATED_HEX], ["argument SOURCE", "LotterySummary.finalized_at", "byte offset 241"]),
        ([NON_MINIMAL_HEX], ["LotterySummary.snapshot_hash", "byte offset 85", "non-minimal"]),
    ],
)
def test_decode_bad_input(args, needles):
    r = run("decode", *args)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert_one_line_error(r.stderr, *needles)


def test_decode_bad_files(tmp_path):
    f = _bad_file(tmp_path, "status.hex", "01 03 00 00")
    r = run("decode", "--type", "DualWriteStatus", str(f))
    assert r.exit_code == 2
    assert_one_line_error(r.stderr, str(f), "DualWriteStatus.abort_on_mismatch", "byte offset 1")
    f = _bad_file(tmp_path, "cut.bcs", LOTTERY_1_BYTES[:50])
    r = run("decode", str(f))
    assert r.exit_code == 2
    assert_one_line_error(r.stderr, str(f), "LotterySummary.proceeds_accum", "byte offset 43")
    r = run("decode", "-", input=b"\x01\x02\x03")
    assert r.exit_code == 2
    assert_one_line_error(r.stderr, "<stdin>", "LotterySummary.id", "byte offset 0")


@pytest.mark.parametrize(
    ("type_name", "obj", "needles"),
    [
        ("LegacySummary", {"summary_bcs": "0x", "archive_hash": "0x", "finalized_at": "-3"}, ["LegacySummary.finalized_at"]),
        ("DualWriteStatus", {"enabled": "yes", "abort_on_mismatch": False, "abort_on_missing": False,
                             "expected_hash": {"vec": []}}, ["DualWriteStatus.enabled"]),
        ("DualWriteStatus", {"enabled": True, "abort_on_mismatch": False, "abort_on_missing": False,
                             "expected_hash": {"vec": ["0x01", "0x02"]}}, ["DualWriteStatus.expected_hash"]),
        ("LotteryFinalizedEvent", dict(sample_json(STRUCT_TYPES["LotteryFinalizedEvent"]), event_version=70000),
         ["LotteryFinalizedEvent.event_version", "out of range for u16"]),
    ],
)
def test_encode_bad_input(tmp_path, type_name, obj, needles):
    f = tmp_path / "value.json"
    f.write_text(json.dumps(obj))
    r = run("encode", "--type", type_name, str(f))
    assert r.exit_code == 2
    assert r.stdout == ""
    assert_one_line_error(r.stderr, str(f), *needles)


def test_usage_errors_exit_2():
    assert run("hash").exit_code == 2
    assert run("decode", "--type", "NoSuchStruct", "00").exit_code == 2
    assert run("hash", "--no-such-option", str(LOTTERY_1_JSON)).exit_code == 2


# -- real processes ------------------------------------------------------------------------------


def _proc(argv: list[str], stdin: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DUALWRITE_DEBUG", None)
    return subprocess.run(argv, input=stdin, capture_output=True, cwd=cwd, env=env, timeout=60, check=False)


def _console_script() -> str:
    exe = shutil.which("dualwrite") or shutil.which("dualwrite", path=str(Path(sys.executable).parent))
    assert exe, "the dualwrite console script is not installed (pip install -e '.[test]')"
    return exe


def test_python_dash_m_hash_json():
    p = _proc([sys.executable, "-m", "dualwrite", "hash", "--json", str(LOTTERY_1_JSON), str(LOTTERY_2_HEX)])
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    recs = json.loads(p.stdout)
    assert [r["lottery_id"] for r in recs] == [1, 2]
    assert recs[0]["expected_hash"] == HASH_1


def test_python_dash_m_bad_input(tmp_path):
    f = _bad_file(tmp_path, "cut.bcs", LOTTERY_1_BYTES[:100])
    out = tmp_path / "out.json"
    p = _proc([sys.executable, "-m", "dualwrite", "hash", "--out", str(out), str(f)])
    assert p.returncode == 2
    assert p.stdout == b""
    assert_one_line_error(p.stderr.decode(), str(f), "LotterySummary.snapshot_hash", "byte offset 85")
    assert not out.exists()


def test_console_script_stdin_out_and_check(tmp_path):
    exe = _console_script()
    out = tmp_path / "h.json"
    p = _proc([exe, "hash", "--json", "--out", str(out), "-"], stdin=LOTTERY_1_BYTES)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["expected_hash"] == HASH_1
    p = _proc([exe, "evidence", "check", str(out)])
    assert p.returncode == 0, p.stderr
    out.write_text(out.read_text().replace(HASH_1[2:10], "00000000", 1))
    p = _proc([exe, "evidence", "check", str(out)])
    assert p.returncode == 1
    assert_one_line_error(p.stderr.decode(), str(out))


def test_console_script_decode_long_hex_and_bad_input():
    exe = _console_script()
    p = _proc([exe, "decode", "--json", "0x" + LOTTERY_1_BYTES.hex()])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == lottery_1_json()
    p = _proc([exe, "decode", "--type", "DualWriteStatus", "01 00 07 00"])
    assert p.returncode == 2
    assert p.stdout == b""
    assert_one_line_error(p.stderr.decode(), "argument SOURCE", "DualWriteStatus.abort_on_missing", "byte offset 2")
