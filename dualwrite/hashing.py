"""Expected hashes (what the chain compares) and blake3 digests (what evidence files carry)."""

from __future__ import annotations

import hashlib

from dualwrite.structs import LotterySummary


def sha3(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def expected_hash(summary_or_bytes: LotterySummary | bytes | bytearray | memoryview) -> str:
    """``0x`` + 64 lowercase hex of SHA3-256 over the summary's canonical BCS bytes.

    Given bytes, they are hashed as they are (the chain hashes what it stores); use
    ``decode_summary`` first to insist that they are a canonical summary.
    """
    # exact-type checks first: isinstance against a pydantic model class runs its
    # metaclass's Python-level __instancecheck__, a tenth of the cost of the hash
    cls = summary_or_bytes.__class__
    if cls is bytes:
        data = summary_or_bytes
    elif cls is LotterySummary or isinstance(summary_or_bytes, LotterySummary):
        data = summary_or_bytes.to_bcs()
    elif isinstance(summary_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(summary_or_bytes)
    else:
        raise TypeError(f"expected_hash takes a LotterySummary or bytes, not {type(summary_or_bytes).__name__}")
    return "0x" + hashlib.sha3_256(data).hexdigest()


def encode_summary(summary: LotterySummary) -> bytes:
    """Canonical BCS bytes of a summary."""
    return summary.to_bcs()


def decode_summary(data: bytes) -> LotterySummary:
    """Strictly decode canonical BCS bytes into a summary (typed errors with offset and field)."""
    return LotterySummary.from_bcs(data)  # type: ignore[return-value]


def hash_hex(raw: bytes) -> str:
    return "0x" + raw.hex()
