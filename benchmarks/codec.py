"""dualwrite's BCS codec side by side with the Aptos SDK's, on every shape of value.

Run: ``python benchmarks/codec.py [--run-ms MS] [--repeat R] [--shape NAME]`` (needs the
``bench`` extra: ``pip install -e '.[bench]'``). In one process, per shape, it times

- encode + hash: ``expected_hash(s.to_bcs())`` (``s.to_bcs()`` + ``hashlib.sha3_256`` for
  the other structs) vs ``aptos_sdk.bcs.Serializer`` writing the same fields, then
  ``hashlib.sha3_256``;
- decode: ``Model.from_bcs`` vs ``aptos_sdk.bcs.Deserializer`` reading the same fields
  into a dict, with the trailing-bytes check a strict decoder must make.

The shapes: the fixtures (the typical 32-byte hashes); every byte vector 0, 1, 127, 128
and 300 bytes long; a 20,000-byte ``snapshot_hash``; the shape of issue 8 (a 196-byte
snapshot, a 1-byte checksum, 64-byte hashes); 200 values that each have other vector
lengths (``varied``) and 5,000 that do (``varied-5000``: more shapes than the codec
caches); ``LegacySummary`` holding a 249-byte summary; ``DualWriteStatus`` with and
without its expected hash. 128, 300 and 20,000 bytes have 2- and 3-byte ULEB128 lengths.

Before timing a shape it asserts that the Aptos SDK writes byte-identical encodings and
reads the same field values. Each figure is the best of ``R`` interleaved runs of about
``MS`` ms each (``time.perf_counter``). Targets: on the fixtures, encode+hash >= 2.5x and
decode >= 3x the Aptos SDK; on every shape, >= 1x.
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

from dualwrite.bcs import BYTES
from dualwrite.hashing import expected_hash
from dualwrite.structs import DualWriteStatus, LegacySummary, LotterySummary

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "summaries"
TARGET_ENCODE = 2.5  # on the fixtures
TARGET_DECODE = 3.0  # on the fixtures
TARGET_EVERY = 1.0  # on every shape
VECTORS = [n for n, t in LotterySummary.__layout__.fields if t is BYTES]


def load_fixtures() -> list[LotterySummary]:
    """The fixtures' summaries (249 bytes each: 13/3-byte slugs, four 32-byte hashes)."""
    objs = [json.loads((FIXTURES / "lottery-1.json").read_text())]
    objs += json.loads((FIXTURES / "lotteries-2-3.json").read_text())
    objs += [json.loads((FIXTURES / "lottery-4.jsonl").read_text())]
    objs += json.loads((FIXTURES / "view-lottery-5.json").read_text())["result"]
    return [LotterySummary.model_validate(o) for o in objs]


def _fill(seed: int, n: int) -> bytes:
    return bytes((seed * 31 + i * 7) % 256 for i in range(n))


def with_lengths(base: list[LotterySummary], **lengths: int) -> list[LotterySummary]:
    return [s.model_copy(update={k: _fill(s.id + j, n) for j, (k, n) in enumerate(lengths.items())}) for s in base]


def varied(base: LotterySummary, count: int) -> list[LotterySummary]:
    """``count`` summaries whose six vector lengths all differ from one value to the next."""
    out = []
    for i in range(count):
        lengths = {name: (i * (2 * j + 3) + j * 41) % 301 for j, name in enumerate(VECTORS)}
        out.append(base.model_copy(update={"id": i + 1, **{k: _fill(i, n) for k, n in lengths.items()}}))
    return out


def shapes() -> dict[str, list]:
    fx = load_fixtures()
    every = {f"all-{n}": with_lengths(fx, **dict.fromkeys(VECTORS, n)) for n in (0, 1, 127, 128, 300)}
    status = dict(enabled=True, abort_on_mismatch=True, abort_on_missing=False)
    return {
        "fixtures": fx,
        **every,
        "snapshot-20000": with_lengths(fx, snapshot_hash=20_000),
        "issue-8": with_lengths(fx, snapshot_hash=196, slots_checksum=1, winners_batch_hash=64,
                                checksum_after_batch=64),
        "varied": varied(fx[0], 200),
        "varied-5000": varied(fx[0], 5000),
        "LegacySummary": [
            LegacySummary(summary_bcs=b, archive_hash=hashlib.sha3_256(b).digest(), finalized_at=s.finalized_at)
            for s in fx for b in [s.to_bcs()]
        ],
        "DualWriteStatus-some": [DualWriteStatus(**status, expected_hash=hashlib.sha3_256(s.to_bcs()).digest())
                                 for s in fx],
        "DualWriteStatus-none": [DualWriteStatus(**status, expected_hash=None)],
    }


# -- the Aptos SDK, field by field (what a hand-written codec built on it looks like) ----------


def aptos_encode_summary(s: LotterySummary) -> bytes:
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


def aptos_decode_summary(data: bytes) -> dict:
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


def aptos_encode_legacy(s: LegacySummary) -> bytes:
    ser = Serializer()
    ser.to_bytes(s.summary_bcs)
    ser.to_bytes(s.archive_hash)
    ser.u64(s.finalized_at)
    return ser.output()


def aptos_decode_legacy(data: bytes) -> dict:
    de = Deserializer(data)
    out = {"summary_bcs": de.to_bytes(), "archive_hash": de.to_bytes(), "finalized_at": de.u64()}
    if de.remaining():
        raise ValueError("trailing bytes")
    return out


def aptos_encode_status(s: DualWriteStatus) -> bytes:
    ser = Serializer()
    ser.bool(s.enabled)
    ser.bool(s.abort_on_mismatch)
    ser.bool(s.abort_on_missing)
    if s.expected_hash is None:
        ser.uleb128(0)
    else:
        ser.uleb128(1)
        ser.to_bytes(s.expected_hash)
    return ser.output()


def aptos_decode_status(data: bytes) -> dict:
    de = Deserializer(data)
    out = {"enabled": de.bool(), "abort_on_mismatch": de.bool(), "abort_on_missing": de.bool()}
    n = de.uleb128()
    if n > 1:
        raise ValueError("Option with more than one element")
    out["expected_hash"] = de.to_bytes() if n else None
    if de.remaining():
        raise ValueError("trailing bytes")
    return out


APTOS: dict[type, tuple[Callable, Callable]] = {
    LotterySummary: (aptos_encode_summary, aptos_decode_summary),
    LegacySummary: (aptos_encode_legacy, aptos_decode_legacy),
    DualWriteStatus: (aptos_encode_status, aptos_decode_status),
}


def sha3_hex(data: bytes) -> str:
    return "0x" + hashlib.sha3_256(data).hexdigest()


def cases(values: list) -> dict[str, tuple[Callable, list]]:
    """The four timed functions of one shape, with their arguments."""
    model = type(values[0])
    ap_enc, ap_dec = APTOS[model]
    if model is LotterySummary:
        def dw_enc(s):
            return expected_hash(s.to_bcs())
    else:
        def dw_enc(s):
            return sha3_hex(s.to_bcs())

    def ap_enc_hash(s):
        return sha3_hex(ap_enc(s))

    encoded = [v.to_bcs() for v in values]
    for v, data in zip(values, encoded):  # the comparison is only fair if both do the same work
        assert ap_enc(v) == data, f"{model.__name__}: the Aptos SDK encodes differently"
        assert dw_enc(v) == ap_enc_hash(v)
        assert ap_dec(data) == v.__dict__, f"{model.__name__}: the Aptos SDK decodes differently"
        assert model.from_bcs(data) == v
    return {"enc_dw": (dw_enc, values), "enc_ap": (ap_enc_hash, values),
            "dec_dw": (model.from_bcs, encoded), "dec_ap": (ap_dec, encoded)}


# -- timing ---------------------------------------------------------------------------------


def best_rates(work: dict[str, tuple[Callable, list]], run_ms: float, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` rate of each case, each run about ``run_ms`` long.

    The runs are interleaved (a, b, c, d, a, b, ...) so that a change in the load of the
    machine falls on every case alike and the ratios stay fair.
    """
    plan = {}
    for name, (fn, args) in work.items():
        t0 = time.perf_counter()
        for a in args[:200]:  # warm up, and estimate the cost of a call
            fn(a)
        per_call = (time.perf_counter() - t0) / min(len(args), 200)
        n = max(len(args) if len(args) > 200 else 1, int(run_ms / 1000 / per_call))
        plan[name] = (fn, (args * (n // len(args) + 1))[:n])
    best = {name: float("inf") for name in plan}
    for _ in range(repeat):
        for name, (fn, items) in plan.items():
            t0 = time.perf_counter()
            for a in items:
                fn(a)
            best[name] = min(best[name], (time.perf_counter() - t0) / len(items))
    return {name: 1 / t for name, t in best.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-ms", type=float, default=5, help="length of one timing run, ms (default 5)")
    p.add_argument("--repeat", type=int, default=40, help="timing runs per case, interleaved, best kept (default 40)")
    p.add_argument("--shape", action="append", help="only this shape (repeatable); default: all")
    args = p.parse_args(argv)
    if args.run_ms <= 0 or args.repeat < 1:
        p.error("--run-ms must be positive and --repeat at least 1")
    all_shapes = shapes()
    chosen = args.shape or list(all_shapes)
    unknown = [s for s in chosen if s not in all_shapes]
    if unknown:
        p.error(f"unknown shape {unknown[0]!r} (one of {', '.join(all_shapes)})")

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPU(s); "
          f"best of {args.repeat} interleaved runs of ~{args.run_ms:g} ms; ops/s")
    print("Aptos SDK output: byte-identical, same field values (checked per shape)")
    head = (f"{'shape':<21} {'bytes':>11} | {'enc+hash dw':>11} {'aptos':>9} {'ratio':>6} | "
            f"{'decode dw':>10} {'aptos':>9} {'ratio':>6}")
    print(head)
    print("-" * len(head))
    worst = []
    for name in chosen:
        values = all_shapes[name]
        sizes = sorted({len(v.to_bcs()) for v in values})
        size = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        r = best_rates(cases(values), args.run_ms, args.repeat)
        enc, dec = r["enc_dw"] / r["enc_ap"], r["dec_dw"] / r["dec_ap"]
        need_enc, need_dec = (TARGET_ENCODE, TARGET_DECODE) if name == "fixtures" else (TARGET_EVERY,) * 2
        flag = "" if enc >= need_enc and dec >= need_dec else "  BELOW TARGET"
        worst.append((min(enc, dec), name))
        print(f"{name:<21} {size:>11} | {r['enc_dw']:>11,.0f} {r['enc_ap']:>9,.0f} {enc:>5.2f}x | "
              f"{r['dec_dw']:>10,.0f} {r['dec_ap']:>9,.0f} {dec:>5.2f}x{flag}", flush=True)
    print(f"targets: fixtures encode+hash >= {TARGET_ENCODE}x, decode >= {TARGET_DECODE}x; "
          f"every shape >= {TARGET_EVERY}x. Lowest ratio: {min(worst)[0]:.2f}x ({min(worst)[1]})")
    if "fixtures" in chosen:
        fx = all_shapes["fixtures"]
        floor = best_rates({"sha3": (sha3_hex, [s.to_bcs() for s in fx])}, args.run_ms, args.repeat)["sha3"]
        print(f"hash floor: bare sha3_256 of the fixtures' bytes {floor:,.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
