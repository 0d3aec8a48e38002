"""Shared helpers of the codec tests (test_bcs_*.py, test_cli_codec.py).

Nothing here encodes with the codec under test: the byte strings are written out by
hand from the BCS rules (docs: ../shared/spec/bcs.md) and the fixtures are files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dualwrite.bcs import (
    ADDRESS,
    BOOL,
    BYTES,
    STRING,
    MoveStruct,
    MoveType,
    OptionType,
    VectorType,
)
from dualwrite.bcs.types import UIntType

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "summaries"

LOTTERY_1_JSON = FIXTURES / "lottery-1.json"
LOTTERY_1_BCS = FIXTURES / "lottery-1.bcs"
LOTTERY_2_HEX = FIXTURES / "lottery-2.hex"
LOTTERIES_2_3_JSON = FIXTURES / "lotteries-2-3.json"
LOTTERY_4_JSONL = FIXTURES / "lottery-4.jsonl"
VIEW_LOTTERY_5_JSON = FIXTURES / "view-lottery-5.json"


def h(*parts: str) -> bytes:
    """Bytes from hex pieces, spaces allowed: ``h("01 00", "ff")``."""
    return bytes.fromhex("".join(parts).replace(" ", ""))


# -- lottery-1, field by field, as its BCS bytes are laid out -----------------------------------
# (offset, field, hex) — offsets are where each field starts in the 249 bytes.

SNAPSHOT_1 = "42c370d6bf408c9131990c3f7a8d6713a8269cccc1f787b9f4984400d1a06195"
SLOTS_1 = "d769cc8f5395f7e228f8ca0ef9ec47f1464c4124b55869a3520ef87368299f4a"
WINNERS_1 = "150f01e1fc02f1066544afc135be8fca6dc472ff9edf8afb1a0759b41223fe8a"
CHECKSUM_1 = "a69616e8f30bdaf9bd1f3c5ae85cfc968f2e2a404c929312cf635d13210b5b87"

LOTTERY_1_LAYOUT: list[tuple[int, str, str]] = [
    (0, "id", "0100000000000000"),  # 1
    (8, "status", "06"),  # Finalized
    (9, "event_slug", "0d" + b"spring-draw-1".hex()),  # length 13, then the bytes
    (23, "series_code", "03" + b"SPR".hex()),
    (27, "run_id", "e903000000000000"),  # 1001
    (35, "tickets_sold", "c458000000000000"),  # 22724
    (43, "proceeds_accum", "6c7fef000b000000"),  # 47260335980
    (51, "total_allocated", "1f1e379b0e000000"),  # 62733622815
    (59, "total_prize_paid", "4e1f377001000000"),  # 6177627982
    (67, "total_operations_paid", "7561b33100000000"),  # 833839477
    (75, "vrf_status", "02"),
    (76, "primary_type", "01"),
    (77, "tags_mask", "0200000000000000"),
    (85, "snapshot_hash", "20" + SNAPSHOT_1),  # length 32
    (118, "slots_checksum", "20" + SLOTS_1),
    (151, "winners_batch_hash", "20" + WINNERS_1),
    (184, "checksum_after_batch", "20" + CHECKSUM_1),
    (217, "payout_round", "0200000000000000"),
    (225, "created_at", "800a576900000000"),  # 1767312000
    (233, "closed_at", "c023586900000000"),  # 1767384000
    (241, "finalized_at", "e03f586900000000"),  # 1767391200
]
LOTTERY_1_HEX = "".join(x for _, _, x in LOTTERY_1_LAYOUT)
LOTTERY_1_BYTES = h(LOTTERY_1_HEX)
LOTTERY_1_OFFSETS = {name: off for off, name, _ in LOTTERY_1_LAYOUT}


def lottery_1_json() -> dict[str, Any]:
    return json.loads(LOTTERY_1_JSON.read_text())


def sample_json(model: type[MoveStruct], seed: int = 1) -> dict[str, Any]:
    """A Move JSON value of ``model`` with every field set, built from its declaration."""
    return {name: _sample(t, seed + i) for i, (name, t) in enumerate(model.__layout__.fields)}


def _sample(t: MoveType, k: int) -> Any:
    if t is BOOL:
        return k % 2 == 1
    if isinstance(t, UIntType):
        v = (k * 0x9E3779B97F4A7C15) % (t.max + 1)
        return str(v) if t.json_as_string else v
    if t is BYTES:
        return "0x" + bytes((k * 7 + i) % 256 for i in range(k % 40)).hex()
    if t is ADDRESS:
        return "0x" + bytes(range(k, k + 32)).hex()
    if t is STRING:
        return f"value-{k}-é"
    if isinstance(t, OptionType):
        return {"vec": [_sample(t.elem, k)]} if k % 2 else {"vec": []}
    if isinstance(t, VectorType):
        return [_sample(t.elem, k + j) for j in range(k % 3)]
    raise AssertionError(f"no sample for {t}")
