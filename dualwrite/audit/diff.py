"""Is the legacy copy exactly the archived summary? One lottery, one state, with the evidence.

Reads ``history::get_summary``, ``history_bridge::get_summary`` and (when needed)
``legacy_bridge::dual_write_status``. A definite failure outranks ``pending``: a
drifted copy with an expectation registered is ``field_drift`` (the evidence still
names the expectation).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from dualwrite import bridge
from dualwrite.backends.base import Backend
from dualwrite.errors import DecodeError
from dualwrite.structs import LegacySummary, LotterySummary
from dualwrite.words import count, plural


class State(str, Enum):
    OK = "ok"
    MISSING_LEGACY = "missing_legacy"
    MISSING_HISTORY = "missing_history"
    CORRUPT_LEGACY = "corrupt_legacy"
    NON_CANONICAL = "non_canonical"
    FIELD_DRIFT = "field_drift"
    HASH_MISMATCH = "hash_mismatch"
    PENDING = "pending"
    ABSENT = "absent"  # nothing archived, no legacy copy, nothing expected: an id that does not exist (yet)

    def __str__(self) -> str:
        return self.value


#: states a heal can repair from the archive
REPAIRABLE = {State.MISSING_LEGACY, State.CORRUPT_LEGACY, State.NON_CANONICAL, State.FIELD_DRIFT, State.HASH_MISMATCH}


@dataclass(frozen=True)
class FieldDelta:
    field: str
    history: str
    legacy: str
    history_json: Any = None
    legacy_json: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "history": self.history, "legacy": self.legacy,
                "history_value": self.history_json, "legacy_value": self.legacy_json}


@dataclass(frozen=True)
class LotteryDiff:
    lottery_id: int
    state: State
    reason: str
    history_hash: str | None = None
    legacy_bytes_hash: str | None = None
    legacy_archive_hash: str | None = None
    expected_hash: str | None = None
    pending_will_match: bool | None = None
    pending_since: datetime | None = None
    fields: tuple[FieldDelta, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state is State.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "lottery_id": self.lottery_id,
            "state": self.state.value,
            "reason": self.reason,
            "history_hash": self.history_hash,
            "legacy_bytes_hash": self.legacy_bytes_hash,
            "legacy_archive_hash": self.legacy_archive_hash,
            "expected_hash": self.expected_hash,
            "pending_will_match": self.pending_will_match,
            "pending_since": self.pending_since.isoformat() if self.pending_since else None,
            "fields": [f.to_json() for f in self.fields],
            **({"evidence": self.evidence} if self.evidence else {}),
        }


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def _sha3(b: bytes) -> bytes:
    return hashlib.sha3_256(b).digest()


def _deltas(model: type, a: Any, b: Any, prefix: str = "") -> list[FieldDelta]:
    types = dict(model.__layout__.fields)
    return [FieldDelta(prefix + name, model.human_value(name, va), model.human_value(name, vb),
                       types[name].to_json(va), types[name].to_json(vb))
            for name, va, vb in a.field_diff(b)]


def classify(lottery_id: int, history: LotterySummary | None, legacy: LegacySummary | None,
             expected: bytes | None, pending_since: datetime | None = None) -> LotteryDiff:
    """The state of one lottery from what the chain returned (pure: no backend calls)."""
    h_bytes = history.to_bcs() if history is not None else None
    h_hash = _sha3(h_bytes) if h_bytes is not None else None
    common = {"history_hash": _hex(h_hash), "expected_hash": _hex(expected), "pending_since": pending_since}
    if expected is not None and h_hash is not None:
        common["pending_will_match"] = expected == h_hash
    pend_note = ""
    if expected is not None:
        pend_note = f"; an expectation {_hex(expected)} is also pending"

    if legacy is None:
        if history is None:
            if expected is not None:
                return LotteryDiff(lottery_id, State.PENDING, "expectation registered, lottery not finalised yet", **common)
            return LotteryDiff(lottery_id, State.ABSENT, "no archived summary, no legacy copy, no expectation", **common)
        return LotteryDiff(lottery_id, State.MISSING_LEGACY, "archived summary has no legacy copy" + pend_note, **common)

    l_bytes = legacy.summary_bcs
    l_hash = _sha3(l_bytes)
    common.update(legacy_bytes_hash=_hex(l_hash), legacy_archive_hash=_hex(legacy.archive_hash))
    if history is None:
        return LotteryDiff(lottery_id, State.MISSING_HISTORY,
                           "legacy copy exists but history has no summary (cannot be healed from the archive)", **common)

    try:
        decoded = LotterySummary.from_bcs(l_bytes)
        canonical = True
    except DecodeError as strict_error:
        try:
            decoded = LotterySummary.from_bcs(l_bytes, lenient_uleb=True)
            canonical = False
        except DecodeError:
            return LotteryDiff(lottery_id, State.CORRUPT_LEGACY, f"legacy bytes do not decode: {strict_error}",
                               evidence={"decode_error": str(strict_error), "offset": strict_error.offset,
                                         "path": strict_error.path}, **common)
    if legacy.archive_hash != l_hash:
        return LotteryDiff(lottery_id, State.CORRUPT_LEGACY,
                           f"legacy archive_hash {_hex(legacy.archive_hash)} is not the hash of its own bytes {_hex(l_hash)}",
                           **common)
    deltas = _deltas(LotterySummary, history, decoded)
    if legacy.finalized_at != history.finalized_at:
        deltas.append(FieldDelta("LegacySummary.finalized_at", LotterySummary.human_value("finalized_at", history.finalized_at),
                                 LotterySummary.human_value("finalized_at", legacy.finalized_at),
                                 str(history.finalized_at), str(legacy.finalized_at)))
    if deltas:
        names = ", ".join(d.field for d in deltas)
        return LotteryDiff(lottery_id, State.FIELD_DRIFT, f"{count(len(deltas), 'field')} {plural(len(deltas), 'differs')}: {names}" + pend_note,
                           fields=tuple(deltas), **common)
    if not canonical or l_bytes != h_bytes:
        return LotteryDiff(lottery_id, State.NON_CANONICAL,
                           f"legacy bytes decode to the same fields but are not the canonical encoding "
                           f"({len(l_bytes)} vs {len(h_bytes)} bytes, hash {_hex(l_hash)} vs {_hex(h_hash)})" + pend_note,
                           **common)
    if l_hash != h_hash or legacy.archive_hash != h_hash:
        return LotteryDiff(lottery_id, State.HASH_MISMATCH, "hashes disagree" + pend_note, **common)
    if expected is not None:
        verdict = "will match" if expected == h_hash else "will mismatch"
        return LotteryDiff(lottery_id, State.PENDING,
                           f"legacy copy is exact, but an expectation is still pending ({verdict} the archived hash)",
                           **common)
    return LotteryDiff(lottery_id, State.OK, "legacy copy is exactly the archived summary", **common)


def diff(backend: Backend, lottery_id: int, *, pending_ids: set[int] | None = None) -> LotteryDiff:
    """Read both archives (and the expectation) for one lottery and classify it.

    ``pending_ids`` (from one ``pending_expected_hashes`` call) saves the status view
    for the lotteries with nothing pending, which is most of them in a bulk verify.
    """
    history = bridge.get_summary(backend, lottery_id)
    legacy = bridge.get_legacy(backend, lottery_id)
    expected = None
    if pending_ids is None or lottery_id in pending_ids:
        expected = bridge.status(backend, lottery_id).expected_hash
    since = None
    if expected is not None:
        since_fn = getattr(backend, "pending_since", None)
        since = since_fn(lottery_id, expected) if since_fn else None
    return classify(lottery_id, history, legacy, expected, since)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
