"""legacy_bridge, history and history_bridge, as onchain.md states them, on the SQLite store.

Each function takes a ``Txn`` (the transaction in flight). Aborts raise ``MoveAbort``;
the caller rolls the whole transaction back, which is what makes a mirror write made
before a failing ``notify_summary_written`` disappear, as on chain.

The control-plane views (status, flags, pending) and the events build no model: their values are
plain dicts checked against the declared layout, so ``status``, ``set``, ``clear`` and the flag
commands on the simulator never import pydantic. The functions that encode or decode summaries
import the models when they run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dualwrite import abort_codes as E
from dualwrite import layouts as L
from dualwrite.bcs.layout import layout_of
from dualwrite.errors import DecodeError, MoveAbort
from dualwrite.sim.store import Store, u64_from_sql, u64_to_sql

if TYPE_CHECKING:  # pragma: no cover
    from dualwrite.structs import LegacySummary, LotterySummary

EVENT_VERSION = 1
CATEGORY_BRIDGE = 8
CATEGORY_HISTORY = 2
MAX_LIST_LIMIT = 1000

CONTROL = "legacy_bridge::DualWriteControl"
MIRROR = "legacy_bridge::MirrorConfig"
LEDGER = "history::ArchiveLedger"
BRIDGE = "history_bridge::LegacyArchive"


@dataclass
class Txn:
    """A transaction in flight: the store (inside a SQLite transaction), the signer, emitted events."""

    store: Store
    lottery_multi: str
    lottery: str
    sender: str | None = None
    events: list[tuple[str, str, type, dict[str, Any]]] = field(default_factory=list)  # (account, module, layout, fields)

    @property
    def db(self):
        return self.store.conn

    def abort(self, code: int, module: str, detail: str = "") -> MoveAbort:
        addr = self.lottery if module == "history_bridge" else self.lottery_multi
        if module == "table":
            return MoveAbort(code, module="vrf_hub::table", detail=detail)
        return MoveAbort(code, module=f"{addr}::{module}", detail=detail)

    def emit(self, account: str, module: str, event: type, **fields: Any) -> None:
        """Emit an event of a declared layout (``dualwrite.layouts``), its fields checked as a model's would be."""
        self.events.append((account, module, event, layout_of(event).values(fields, event.__name__, python_only=True)))


def sha3(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


# ---------------------------------------------------------------------------------------------
# lottery_support::history_bridge


def bridge_initialized(t: Txn) -> bool:
    return t.store.resource(t.lottery, BRIDGE) is not None


def init_bridge(t: Txn) -> None:
    if t.sender != t.lottery:
        raise t.abort(E.E_NOT_AUTHORIZED, "history_bridge", "init_bridge must be signed by @lottery")
    if not bridge_initialized(t):
        t.store.put_resource(t.lottery, BRIDGE, {})


def bridge_record_summary(t: Txn, lottery_id: int, summary_bcs: bytes, archive_hash: bytes, finalized_at: int) -> None:
    from dualwrite.structs import LegacySummary
    if not bridge_initialized(t):
        return
    value = LegacySummary(summary_bcs=summary_bcs, archive_hash=archive_hash, finalized_at=finalized_at)
    t.db.execute(
        "INSERT INTO legacy VALUES (?, ?) ON CONFLICT(lottery_id) DO UPDATE SET value=excluded.value",
        (u64_to_sql(lottery_id), value.to_bcs()),
    )
    t.emit(t.lottery, "history_bridge",
           L.LegacySummaryEvent, lottery_id=lottery_id, archive_hash=archive_hash, finalized_at=finalized_at)


def bridge_get_summary(t: Txn, lottery_id: int) -> LegacySummary | None:
    from dualwrite.structs import LegacySummary
    if not bridge_initialized(t):
        return None
    row = t.db.execute("SELECT value FROM legacy WHERE lottery_id=?", (u64_to_sql(lottery_id),)).fetchone()
    return None if row is None else LegacySummary.from_bcs(row[0])  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# lottery_multi::legacy_bridge


def _control(t: Txn) -> dict[str, Any] | None:
    return t.store.resource(t.lottery_multi, CONTROL)


def _admin(t: Txn) -> None:
    if t.sender != t.lottery_multi:
        raise t.abort(E.E_HISTORY_NOT_AUTHORIZED, "legacy_bridge", "signer is not @lottery_multi")


def _require_control(t: Txn) -> dict[str, Any]:
    ctl = _control(t)
    if ctl is None:
        raise t.abort(E.E_HISTORY_CONTROL_MISSING, "legacy_bridge", "dual-write control is not initialised")
    return ctl


def _expected(t: Txn, lottery_id: int) -> bytes | None:
    row = t.db.execute("SELECT hash FROM expected WHERE lottery_id=?", (u64_to_sql(lottery_id),)).fetchone()
    return None if row is None else bytes(row[0])


def _expected_add(t: Txn, lottery_id: int, h: bytes) -> None:
    (n,) = t.db.execute("SELECT COUNT(*) FROM expected").fetchone()
    t.db.execute("INSERT INTO expected VALUES (?, ?, ?)", (u64_to_sql(lottery_id), h, n))


def _expected_remove(t: Txn, lottery_id: int) -> None:
    """Swap-remove: the last key takes the removed key's slot."""
    key = u64_to_sql(lottery_id)
    row = t.db.execute("SELECT pos FROM expected WHERE lottery_id=?", (key,)).fetchone()
    if row is None:
        raise t.abort(E.E_KEY_NOT_FOUND, "table", f"no expected hash for {lottery_id}")
    pos = row[0]
    t.db.execute("DELETE FROM expected WHERE lottery_id=?", (key,))
    (last,) = t.db.execute("SELECT MAX(pos) FROM expected").fetchone()
    if last is not None and last > pos:
        t.db.execute("UPDATE expected SET pos=? WHERE pos=?", (pos, last))


def init_dual_write(t: Txn, abort_on_mismatch: bool, abort_on_missing: bool) -> None:
    _admin(t)
    if _control(t) is not None:
        raise t.abort(E.E_ALREADY_INITIALIZED, "legacy_bridge", "dual-write control already exists")
    t.store.put_resource(t.lottery_multi, CONTROL, {
        "enabled": True, "abort_on_mismatch": abort_on_mismatch, "abort_on_missing": abort_on_missing})


def update_flags(t: Txn, enabled: bool, abort_on_mismatch: bool, abort_on_missing: bool) -> None:
    _admin(t)
    _require_control(t)
    t.store.put_resource(t.lottery_multi, CONTROL, {
        "enabled": enabled, "abort_on_mismatch": abort_on_mismatch, "abort_on_missing": abort_on_missing})


def set_expected_hash(t: Txn, lottery_id: int, expected_hash: bytes) -> None:
    _admin(t)
    _require_control(t)
    if _expected(t, lottery_id) is not None:
        _expected_remove(t, lottery_id)
    _expected_add(t, lottery_id, expected_hash)
    t.emit(t.lottery_multi, "legacy_bridge", L.ArchiveDualWriteStartedEvent,
           event_version=EVENT_VERSION, event_category=CATEGORY_BRIDGE, lottery_id=lottery_id,
           expected_hash=expected_hash)


def clear_expected_hash(t: Txn, lottery_id: int) -> None:
    _admin(t)
    _require_control(t)
    if _expected(t, lottery_id) is not None:
        _expected_remove(t, lottery_id)


def enable_legacy_mirror(t: Txn) -> None:
    _admin(t)
    if t.store.resource(t.lottery_multi, MIRROR) is None:
        t.store.put_resource(t.lottery_multi, MIRROR, {})


def disable_legacy_mirror(t: Txn) -> None:
    _admin(t)
    t.store.drop_resource(t.lottery_multi, MIRROR)


_NO_CONTROL = {"enabled": False, "abort_on_mismatch": False, "abort_on_missing": False}


def _status(ctl: dict[str, Any] | None, expected_hash: bytes | None) -> dict[str, Any]:
    """A ``DualWriteStatus`` (its field values): the flags, all false without a control."""
    ctl = ctl or _NO_CONTROL
    return {"enabled": ctl["enabled"], "abort_on_mismatch": ctl["abort_on_mismatch"],
            "abort_on_missing": ctl["abort_on_missing"], "expected_hash": expected_hash}


def dual_write_status(t: Txn, lottery_id: int) -> dict[str, Any]:
    ctl = _control(t)
    return _status(ctl, None if ctl is None else _expected(t, lottery_id))


def dual_write_flags(t: Txn) -> dict[str, Any]:
    """The flags, no expected hash."""
    return _status(_control(t), None)


def pending_expected_hashes(t: Txn) -> list[int]:
    if _control(t) is None:
        return []
    return [u64_from_sql(r[0]) for r in t.db.execute("SELECT lottery_id FROM expected ORDER BY pos")]


def has_expected_hash(t: Txn, lottery_id: int) -> bool:
    return _control(t) is not None and _expected(t, lottery_id) is not None


def is_enabled(t: Txn) -> bool:
    ctl = _control(t)
    return bool(ctl and ctl["enabled"])


def is_mirror_enabled(t: Txn) -> bool:
    return t.store.resource(t.lottery_multi, MIRROR) is not None


def notify_summary_written(t: Txn, lottery_id: int, archive_hash: bytes, finalized_at: int) -> None:
    ctl = _control(t)
    if ctl is None or not ctl["enabled"]:
        return
    expected = _expected(t, lottery_id)
    if expected is None:
        if ctl["abort_on_missing"]:
            raise t.abort(E.E_HISTORY_EXPECTED_MISSING, "legacy_bridge", f"no expected hash for lottery {lottery_id}")
        return
    if expected != archive_hash:
        if ctl["abort_on_mismatch"]:
            raise t.abort(E.E_HISTORY_MISMATCH, "legacy_bridge",
                          f"lottery {lottery_id}: archive hash 0x{archive_hash.hex()} != expected 0x{expected.hex()}")
        return
    _expected_remove(t, lottery_id)
    t.emit(t.lottery_multi, "legacy_bridge", L.ArchiveDualWriteCompletedEvent,
           event_version=EVENT_VERSION, event_category=CATEGORY_BRIDGE, lottery_id=lottery_id,
           archive_hash=archive_hash, finalized_at=finalized_at)


def mirror_summary_to_legacy(t: Txn, lottery_id: int, summary_bytes: bytes, archive_hash: bytes, finalized_at: int) -> None:
    if not is_mirror_enabled(t) or not bridge_initialized(t):
        return
    bridge_record_summary(t, lottery_id, summary_bytes, archive_hash, finalized_at)


# ---------------------------------------------------------------------------------------------
# lottery_multi::history


def _ledger(t: Txn) -> bool:
    return t.store.resource(t.lottery_multi, LEDGER) is not None


def _require_ledger(t: Txn) -> None:
    if not _ledger(t):
        raise t.abort(E.E_HISTORY_MISSING, "history", "archive ledger is not initialised")


def _row(t: Txn, lottery_id: int) -> tuple[bytes, bool] | None:
    row = t.db.execute("SELECT bcs, imported FROM history WHERE lottery_id=?", (u64_to_sql(lottery_id),)).fetchone()
    return None if row is None else (bytes(row[0]), bool(row[1]))


def _history_admin(t: Txn) -> None:
    if t.sender != t.lottery_multi:
        raise t.abort(E.E_HISTORY_NOT_AUTHORIZED, "history", "signer is not @lottery_multi")


def init_history(t: Txn) -> None:
    if t.sender != t.lottery_multi:
        raise t.abort(E.E_HISTORY_MISSING, "history", "init_history must be signed by @lottery_multi")
    if _ledger(t):
        raise t.abort(E.E_ALREADY_INITIALIZED, "history", "archive ledger already exists")
    t.store.put_resource(t.lottery_multi, LEDGER, {})


def store_summary(t: Txn, lottery_id: int, summary: LotterySummary, archive_hash: bytes, is_legacy: bool) -> None:
    _require_ledger(t)
    existing = _row(t, lottery_id)
    data = summary.to_bcs()
    key = u64_to_sql(lottery_id)
    if existing is not None:
        old_bytes, imported = existing
        if imported:
            if not is_legacy:
                raise t.abort(E.E_HISTORY_NOT_LEGACY, "history", f"lottery {lottery_id} was imported: only a legacy write may replace it")
        else:
            if is_legacy:
                raise t.abort(E.E_HISTORY_NOT_LEGACY, "history", f"lottery {lottery_id} is not a legacy summary")
            if sha3(old_bytes) != archive_hash:
                raise t.abort(E.E_HISTORY_MISMATCH, "history", f"lottery {lottery_id} re-recorded with a different hash")
        t.db.execute("UPDATE history SET bcs=?, imported=? WHERE lottery_id=?", (data, int(is_legacy), key))
    else:
        (seq,) = t.db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM history").fetchone()
        t.db.execute("INSERT INTO history VALUES (?, ?, ?, ?)", (key, data, int(is_legacy), seq))
    t.emit(t.lottery_multi, "history", L.LotteryFinalizedEvent,
           event_version=EVENT_VERSION, event_category=CATEGORY_HISTORY, id=lottery_id,
           archive_slot_hash=archive_hash, primary_type=summary.primary_type, tags_mask=summary.tags_mask)


def record_summary(t: Txn, lottery_id: int, summary: LotterySummary) -> None:
    data = summary.to_bcs()
    h = sha3(data)
    mirror_summary_to_legacy(t, lottery_id, data, h, summary.finalized_at)
    notify_summary_written(t, lottery_id, h, summary.finalized_at)
    store_summary(t, lottery_id, summary, h, False)


def import_legacy_summary_admin(t: Txn, lottery_id: int, summary_bytes: bytes, expected_hash: bytes) -> None:
    from dualwrite.structs import LotterySummary
    _history_admin(t)
    try:
        summary = LotterySummary.from_bcs(summary_bytes, lenient_uleb=True)
    except DecodeError as e:
        raise t.abort(E.E_HISTORY_DECODE, "history", f"summary bytes do not decode: {e}") from None
    if summary.id != lottery_id:
        raise t.abort(E.E_HISTORY_ID_MISMATCH, "history", f"summary id {summary.id} != lottery_id {lottery_id}")
    h = sha3(summary_bytes)
    if h != expected_hash:
        raise t.abort(E.E_HISTORY_IMPORT_HASH, "history", f"bytes hash to 0x{h.hex()}, expected 0x{expected_hash.hex()}")
    mirror_summary_to_legacy(t, lottery_id, summary_bytes, h, summary.finalized_at)
    notify_summary_written(t, lottery_id, h, summary.finalized_at)
    store_summary(t, lottery_id, summary, h, True)  # type: ignore[arg-type]
    t.emit(t.lottery_multi, "history", L.LegacySummaryImportedEvent,
           event_version=EVENT_VERSION, event_category=CATEGORY_HISTORY, lottery_id=lottery_id, archive_hash=h,
           finalized_at=summary.finalized_at, primary_type=summary.primary_type, tags_mask=summary.tags_mask)


def _stored(t: Txn, lottery_id: int) -> tuple[LotterySummary, bool]:
    from dualwrite.structs import LotterySummary
    _require_ledger(t)
    row = _row(t, lottery_id)
    if row is None:
        raise t.abort(E.E_KEY_NOT_FOUND, "table", f"no summary for lottery {lottery_id}")
    return LotterySummary.from_bcs(row[0]), row[1]  # type: ignore[return-value]


def mirror_summary_admin(t: Txn, lottery_id: int) -> None:
    _history_admin(t)
    if not is_mirror_enabled(t):
        return
    summary, _ = _stored(t, lottery_id)
    data = summary.to_bcs()
    h = sha3(data)
    mirror_summary_to_legacy(t, lottery_id, data, h, summary.finalized_at)
    notify_summary_written(t, lottery_id, h, summary.finalized_at)


def _legacy_stored(t: Txn, lottery_id: int) -> LotterySummary:
    from dualwrite.structs import LotterySummary
    _require_ledger(t)
    row = _row(t, lottery_id)
    if row is None:
        raise t.abort(E.E_HISTORY_SUMMARY_MISSING, "history", f"no summary for lottery {lottery_id}")
    if not row[1]:
        raise t.abort(E.E_HISTORY_NOT_LEGACY, "history", f"lottery {lottery_id} is not an imported legacy summary")
    return LotterySummary.from_bcs(row[0])  # type: ignore[return-value]


def rollback_legacy_summary_admin(t: Txn, lottery_id: int) -> None:
    _history_admin(t)
    summary = _legacy_stored(t, lottery_id)
    t.db.execute("DELETE FROM history WHERE lottery_id=?", (u64_to_sql(lottery_id),))
    t.emit(t.lottery_multi, "history", L.LegacySummaryRolledBackEvent,
           event_version=EVENT_VERSION, event_category=CATEGORY_HISTORY, lottery_id=lottery_id,
           archive_hash=sha3(summary.to_bcs()), finalized_at=summary.finalized_at,
           primary_type=summary.primary_type, tags_mask=summary.tags_mask)


def update_legacy_classification_admin(t: Txn, lottery_id: int, primary_type: int, tags_mask: int) -> None:
    _history_admin(t)
    summary = _legacy_stored(t, lottery_id)
    updated = summary.model_copy(update={"primary_type": primary_type, "tags_mask": tags_mask})
    data = updated.to_bcs()
    h = sha3(data)
    t.db.execute("UPDATE history SET bcs=? WHERE lottery_id=?", (data, u64_to_sql(lottery_id)))
    mirror_summary_to_legacy(t, lottery_id, data, h, updated.finalized_at)
    t.emit(t.lottery_multi, "history", L.LegacySummaryClassificationUpdatedEvent,
           event_version=EVENT_VERSION, event_category=CATEGORY_HISTORY, lottery_id=lottery_id, archive_hash=h,
           primary_type=primary_type, tags_mask=tags_mask)


def get_summary(t: Txn, lottery_id: int) -> LotterySummary:
    return _stored(t, lottery_id)[0]


def list_finalized(t: Txn, start: int, limit: int) -> list[int]:
    if limit > MAX_LIST_LIMIT:
        raise t.abort(E.E_PAGINATION_LIMIT, "history", f"limit {limit} > {MAX_LIST_LIMIT}")
    _require_ledger(t)
    rows = t.db.execute("SELECT lottery_id FROM history ORDER BY seq DESC LIMIT ? OFFSET ?",
                        (min(limit, MAX_LIST_LIMIT), min(start, 1 << 62)))
    return [u64_from_sql(r[0]) for r in rows]


def is_legacy_summary(t: Txn, lottery_id: int) -> bool:
    _require_ledger(t)
    row = _row(t, lottery_id)
    return bool(row and row[1])


def event_json(account: str, module: str, event: type, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The event's fully qualified type (its handle too) and Move JSON data."""
    return f"{account}::{module}::{event.__name__}", layout_of(event).to_json(fields)


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
