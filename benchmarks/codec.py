"""dualwrite's BCS codec side by side with the Aptos SDK's per-field serializer.

Run: ``python benchmarks/codec.py [--n N] [--repeat R]`` (needs the ``bench`` extra:
``pip install aptos-sdk``). In one process and on the same summaries it times:

(a) encode + hash: ``s.to_bcs()`` then ``expected_hash`` vs ``aptos_sdk.bcs.Serializer``
    writing the 21 fields of ``LotterySummary`` then ``hashlib.sha3_256``;
(b) decode: ``LotterySummary.from_bcs`` vs ``aptos_sdk.bcs.Deserializer`` reading the
    21 fields into a dict (with the trailing-bytes check a strict decoder must make);
(c) bare ``hashlib.sha3_256`` of the same bytes, as a floor.

Before timing, it asserts that the Aptos SDK writes byte-identical encodings and reads
the same field values. Each figure is the best of several interleaved repeats (``time.perf_counter``).
Targets: dualwrite >= 2.5x Aptos on encode+hash, >= 3x on decode.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    from aptos_sdk.bcs import Deserializer, Serializer
except ImportError:  # the bench extra is not installed
    print(
        "benchmarks/codec.py needs the Aptos SDK for comparison: pip install aptos-sdk "
        "(or pip install -e '.[bench]')",
        file=sys.stderr,
    )
    sys.exit(2)

from dualwrite.hashing import expected_hash
from dualwrite.structs import LotterySummary

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "summaries"
TARGET_ENCODE = 2.5
TARGET_DECODE = 3.0


def load_summaries() -> list[LotterySummary]:
    """The fixtures' realistic summaries (249 bytes each: two 13/3-byte slugs, four 32-byte hashes)."""
    objs = [json.loads((FIXTURES / "lottery-1.json").read_text())]
    objs += json.loads((FIXTURES / "lotteries-2-3.json").read_text())
    objs += [json.loads((FIXTURES / "lottery-4.jsonl").read_text())]
    objs += json.loads((FIXTURES / "view-lottery-5.json").read_text())["result"]
    return [LotterySummary.from_move_json(o) for o in objs]  # type: ignore[misc]


# -- the Aptos SDK, field by field (what a hand-written codec built on it looks like) ----------


def aptos_encode(s: LotterySummary) -> bytes:
    ser = Serializer()
    ser.u64(s.id)
    ser.u8(s.status)
    ser.to_bytes(s.event_slug)
    ser.to_bytes(s.series_code)
    ser.u64(s.run_id)
    ser.u64(s.tickets_sold)
    ser.u64(s.proceeds_accum)
    ser.u64(s.total_allocated)
    ser.u64(s.total_prize_paid)
    ser.u64(s.total_operations_paid)
    ser.u8(s.vrf_status)
    ser.u8(s.primary_type)
    ser.u64(s.tags_mask)
    ser.to_bytes(s.snapshot_hash)
    ser.to_bytes(s.slots_checksum)
    ser.to_bytes(s.winners_batch_hash)
    ser.to_bytes(s.checksum_after_batch)
    ser.u64(s.payout_round)
    ser.u64(s.created_at)
    ser.u64(s.closed_at)
    ser.u64(s.finalized_at)
    return ser.output()


def aptos_encode_hash(s: LotterySummary) -> str:
    return "0x" + hashlib.sha3_256(aptos_encode(s)).hexdigest()


def aptos_decode(data: bytes) -> dict:
    de = Deserializer(data)
    out = {
        "id": de.u64(),
        "status": de.u8(),
        "event_slug": de.to_bytes(),
        "series_code": de.to_bytes(),
        "run_id": de.u64(),
        "tickets_sold": de.u64(),
        "proceeds_accum": de.u64(),
        "total_allocated": de.u64(),
        "total_prize_paid": de.u64(),
        "total_operations_paid": de.u64(),
        "vrf_status": de.u8(),
        "primary_type": de.u8(),
        "tags_mask": de.u64(),
        "snapshot_hash": de.to_bytes(),
        "slots_checksum": de.to_bytes(),
        "winners_batch_hash": de.to_bytes(),
        "checksum_after_batch": de.to_bytes(),
        "payout_round": de.u64(),
        "created_at": de.u64(),
        "closed_at": de.u64(),
        "finalized_at": de.u64(),
    }
    if de.remaining():
        raise ValueError("trailing bytes")
    return out


# -- dualwrite ------------------------------------------------------------------------------


def dualwrite_encode_hash(s: LotterySummary) -> str:
    return expected_hash(s.to_bcs())


def dualwrite_decode(data: bytes) -> LotterySummary:
    return LotterySummary.from_bcs(data)  # type: ignore[return-value]


def sha3_only(data: bytes) -> str:
    return "0x" + hashlib.sha3_256(data).hexdigest()


# -- timing ---------------------------------------------------------------------------------


def best_rates(cases: dict[str, tuple[Callable, list]], n: int, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` rate of each case over ``n`` calls cycling through its arguments.

    The repeats are interleaved (a, b, c, a, b, c, ...) so that a change in the load of
    the machine falls on every case alike and the ratios stay fair.
    """
    work = {name: (fn, (args * (n // len(args) + 1))[:n]) for name, (fn, args) in cases.items()}
    for fn, items in work.values():  # warm up
        for a in items[: min(n, 500)]:
            fn(a)
    best = {name: float("inf") for name in work}
    for _ in range(repeat):
        for name, (fn, items) in work.items():
            t0 = time.perf_counter()
            for a in items:
                fn(a)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: n / t for name, t in best.items()}


def check_identical(summaries: list[LotterySummary]) -> None:
    for s in summaries:
        mine = s.to_bcs()
        theirs = aptos_encode(s)
        assert mine == theirs, f"lottery {s.id}: the Aptos SDK encodes differently"
        assert dualwrite_encode_hash(s) == aptos_encode_hash(s) == sha3_only(mine)
        assert aptos_decode(mine) == dict(s.__dict__), f"lottery {s.id}: the Aptos SDK decodes differently"
        assert dualwrite_decode(mine) == s


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10000, help="calls per timing run (default 10000)")
    p.add_argument("--repeat", type=int, default=15, help="timing runs per case, interleaved, best kept (default 15)")
    args = p.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        p.error("--n and --repeat must be at least 1")

    summaries = load_summaries()
    encoded = [s.to_bcs() for s in summaries]
    sizes = sorted({len(b) for b in encoded})
    check_identical(summaries)

    n, r = args.n, args.repeat
    rates = best_rates(
        {
            "enc_dw": (dualwrite_encode_hash, summaries),
            "enc_ap": (aptos_encode_hash, summaries),
            "dec_dw": (dualwrite_decode, encoded),
            "dec_ap": (aptos_decode, encoded),
            "floor": (sha3_only, encoded),
        },
        n,
        r,
    )
    enc_dw, enc_ap, dec_dw, dec_ap, floor = (rates[k] for k in ("enc_dw", "enc_ap", "dec_dw", "dec_ap", "floor"))

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPU(s); "
          f"{len(summaries)} LotterySummary values of {'/'.join(map(str, sizes))} bytes; "
          f"n={n}, best of {r}")
    print("Aptos SDK output: byte-identical (checked)")
    rows = [
        ("(a) encode+hash", "dualwrite", enc_dw, None),
        ("", "aptos_sdk", enc_ap, enc_dw / enc_ap),
        ("(b) decode", "dualwrite", dec_dw, None),
        ("", "aptos_sdk", dec_ap, dec_dw / dec_ap),
        ("(c) sha3_256 only", "hashlib", floor, None),
    ]
    print(f"{'case':<18} {'impl':<10} {'ops/s':>12} {'us/op':>8}")
    for case, impl, rate, _ in rows:
        print(f"{case:<18} {impl:<10} {rate:>12,.0f} {1e6 / rate:>8.2f}")
    ok_enc = enc_dw / enc_ap >= TARGET_ENCODE
    ok_dec = dec_dw / dec_ap >= TARGET_DECODE
    print(f"encode+hash: dualwrite/aptos = {enc_dw / enc_ap:.2f}x (target >= {TARGET_ENCODE}x) "
          f"{'ok' if ok_enc else 'BELOW TARGET'}")
    print(f"decode:      dualwrite/aptos = {dec_dw / dec_ap:.2f}x (target >= {TARGET_DECODE}x) "
          f"{'ok' if ok_dec else 'BELOW TARGET'}")
    print(f"hash floor:  sha3_256 alone is {floor / enc_dw:.2f}x the rate of dualwrite encode+hash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
