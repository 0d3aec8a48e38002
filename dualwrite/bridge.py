"""The legacy_bridge flow of the runbook, as typed library calls over any ``Backend``.

Reads return models (``DualWriteStatus``, ``LotterySummary``, ``LegacySummary``); writes
return ``TxnResult``; failures raise the typed errors of ``dualwrite.errors``. The models are
imported by the reads that build them: ``status_fields``/``flags_fields`` check the same layout
without a model, so ``dualwrite status`` and ``flags`` start without pydantic.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dualwrite import abort_codes
from dualwrite import layouts as L
from dualwrite.backends.base import Backend, TxnResult
from dualwrite.bcs import parse_hex
from dualwrite.bcs.layout import layout_of
from dualwrite.errors import DualwriteError, FieldError, InputError, MoveAbort, SubmissionUnknown
from dualwrite.bad_values import bad_value, excerpt
from dualwrite.words import count

if TYPE_CHECKING:  # pragma: no cover
    from dualwrite.structs import DualWriteStatus, LegacySummary, LotterySummary

HASH_BYTES = 32
U64_MAX = 2**64 - 1


def _u64(v: int, what: str = "lottery_id") -> str:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= U64_MAX:
        raise InputError(f"{what}: {v!r} is not a u64")
    return f"u64:{v}"


def _bool(v: bool) -> str:
    return f"bool:{'true' if v else 'false'}"


def parse_bool(text: str, what: str) -> bool:
    """``true|false|1|0`` (any case), as the old script took them."""
    t = str(text).strip().lower()
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise InputError(bad_value(what, excerpt(str(text)), "expected one of: true, false, 1, 0"))


def parse_hash(text: str, what: str = "HASH", *, any_length: bool = False) -> bytes:
    """Hex with or without ``0x``, any case; 32 bytes unless ``any_length``."""
    try:
        raw = parse_hex(text, what)
    except FieldError as e:
        raise InputError(f"{what}: {e.reason}") from None
    if not any_length and len(raw) != HASH_BYTES:
        raise InputError(f"{what}: {count(len(raw), 'byte')}, an expected hash is {HASH_BYTES} (pass --any-length to send it anyway)")
    return raw


# -- writes ---------------------------------------------------------------------------------------
#
# Every write names the state it is to produce. When the CLI's report of a run is lost
# (``SubmissionUnknown``: "Timeout … might still succeed", a failure after the CLI ran), that
# state is re-read before anything else: there -> the run is reported as done, confirmed by the
# state; not there within the lookup window -> exit 3, NOT re-sent (it may still commit).

LOOKUP_WINDOW_S = 30.0
_lookup_wait = threading.Event()  # never set: wait(t) is an interruptible pause between reads


def _send(b: Backend, function: str, args: list[str], applied: Callable[[], bool]) -> TxnResult:
    try:
        return b.run(function, args)
    except SubmissionUnknown as e:
        return _look_up(e, applied)


def _look_up(e: SubmissionUnknown, applied: Callable[[], bool]) -> TxnResult:
    window = min(LOOKUP_WINDOW_S, e.lookup_window) if e.lookup_window is not None else LOOKUP_WINDOW_S
    deadline = time.monotonic() + window
    pause = 0.2
    while True:
        try:
            done = applied()
        except DualwriteError as le:
            raise SubmissionUnknown(f"{e.message}; not re-sent, and reading the state to look it up failed: {le}",
                                    txn_hash=e.txn_hash) from None
        if done:
            return TxnResult(e.txn_hash, "Success", f"confirmed by reading the state after: {e.message}", None,
                             confirmed_by="state")
        left = deadline - time.monotonic()
        if left <= 0:
            looked = f" after {window:g}s of looking" if window > 0 else ""
            raise SubmissionUnknown(
                f"{e.message}; not re-sent: the state does not show the change{looked} (it may still commit) — "
                f"read it again (status/flags/pending) before running it again", txn_hash=e.txn_hash)
        _lookup_wait.wait(min(pause, left))
        pause = min(pause * 2, 2.0)


def init(b: Backend, abort_on_mismatch: bool, abort_on_missing: bool) -> TxnResult:
    def applied() -> bool:
        f = flags(b)
        return f.enabled and (f.abort_on_mismatch, f.abort_on_missing) == (abort_on_mismatch, abort_on_missing)

    return _send(b, "legacy_bridge::init_dual_write", [_bool(abort_on_mismatch), _bool(abort_on_missing)], applied)


def update_flags(b: Backend, enabled: bool, abort_on_mismatch: bool, abort_on_missing: bool) -> TxnResult:
    def applied() -> bool:
        f = flags(b)
        return (f.enabled, f.abort_on_mismatch, f.abort_on_missing) == (enabled, abort_on_mismatch, abort_on_missing)

    return _send(b, "legacy_bridge::update_flags", [_bool(enabled), _bool(abort_on_mismatch), _bool(abort_on_missing)],
                 applied)


def set_expected_call(lottery_id: int, expected_hash: bytes) -> tuple[str, list[str]]:
    """The entry function and arguments of ``set_expected`` (what a pipelined sender signs)."""
    # hex without 0x: older CLI parsers reject the prefix
    return "legacy_bridge::set_expected_hash", [_u64(lottery_id), f"hex:{expected_hash.hex()}"]


def clear_call(lottery_id: int) -> tuple[str, list[str]]:
    return "legacy_bridge::clear_expected_hash", [_u64(lottery_id)]


def mirror_call(lottery_id: int) -> tuple[str, list[str]]:
    return "history::mirror_summary_admin", [_u64(lottery_id)]


def set_expected(b: Backend, lottery_id: int, expected_hash: bytes) -> TxnResult:
    return _send(b, *set_expected_call(lottery_id, expected_hash),
                 lambda: status(b, lottery_id).expected_hash == expected_hash)


def clear(b: Backend, lottery_id: int) -> TxnResult:
    return _send(b, *clear_call(lottery_id), lambda: status(b, lottery_id).expected_hash is None)


def enable_mirror(b: Backend) -> TxnResult:
    return _send(b, "legacy_bridge::enable_legacy_mirror", [], lambda: is_mirror_enabled(b))


def disable_mirror(b: Backend) -> TxnResult:
    return _send(b, "legacy_bridge::disable_legacy_mirror", [], lambda: not is_mirror_enabled(b))


def mirror(b: Backend, lottery_id: int) -> TxnResult:
    def applied() -> bool:  # what a mirror leaves: the legacy copy is the archive's summary
        s = get_summary(b, lottery_id)
        legacy = get_legacy(b, lottery_id)
        if s is None or legacy is None:
            return False
        bcs = s.to_bcs()
        return legacy.summary_bcs == bcs and legacy.archive_hash == hashlib.sha3_256(bcs).digest()

    return _send(b, *mirror_call(lottery_id), applied)


# -- reads ----------------------------------------------------------------------------------------


def _one(values: list, what: str):
    if len(values) != 1:
        raise InputError(f"{what}: expected one return value, got {len(values)}")
    return values[0]


def _status_view(b: Backend, function: str, args: list[str]) -> dict[str, Any]:
    """A view returning a ``DualWriteStatus``: its field values, checked against the layout."""
    v = _one(b.view(f"legacy_bridge::{function}", args), function)
    return layout_of(L.DualWriteStatus).values(v, function)


def status_fields(b: Backend, lottery_id: int) -> dict[str, Any]:
    return _status_view(b, "dual_write_status", [_u64(lottery_id)])


def flags_fields(b: Backend) -> dict[str, Any]:
    return _status_view(b, "dual_write_flags", [])


def status(b: Backend, lottery_id: int) -> DualWriteStatus:
    from dualwrite.structs import DualWriteStatus

    return DualWriteStatus._trusted(status_fields(b, lottery_id))  # type: ignore[return-value]


def flags(b: Backend) -> DualWriteStatus:
    from dualwrite.structs import DualWriteStatus

    return DualWriteStatus._trusted(flags_fields(b))  # type: ignore[return-value]


def pending(b: Backend) -> list[int]:
    v = _one(b.view("legacy_bridge::pending_expected_hashes", []), "pending_expected_hashes")
    if not isinstance(v, list):
        raise InputError(f"pending_expected_hashes: expected a vector, got {v!r}")
    return [int(x) for x in v]


def _view_bool(b: Backend, function: str, args: list[str] = ()) -> bool:
    v = _one(b.view(function, list(args)), function)
    if not isinstance(v, bool):
        raise InputError(f"{function}: expected a bool, got {v!r}")
    return v


def is_mirror_enabled(b: Backend) -> bool:
    return _view_bool(b, "legacy_bridge::is_mirror_enabled")


def bridge_initialized(b: Backend) -> bool:
    return _view_bool(b, "history_bridge::is_initialized")


def get_summary(b: Backend, lottery_id: int) -> LotterySummary | None:
    """The archived summary, or None when history has no such id (the table lookup aborts)."""
    from dualwrite.structs import LotterySummary

    try:
        v = _one(b.view("history::get_summary", [_u64(lottery_id)]), "history::get_summary")
    except MoveAbort as e:
        if e.code == abort_codes.E_KEY_NOT_FOUND and (not e.module or e.module.endswith("table")):
            return None
        raise
    return LotterySummary.from_move_json(v, f"history::get_summary({lottery_id})")  # type: ignore[return-value]


def get_legacy(b: Backend, lottery_id: int) -> LegacySummary | None:
    from dualwrite.structs import LegacySummary

    v = _one(b.view("history_bridge::get_summary", [_u64(lottery_id)]), "history_bridge::get_summary")
    if isinstance(v, dict) and "vec" in v:
        if not v["vec"]:
            return None
        v = v["vec"][0]
    return LegacySummary.from_move_json(v, f"history_bridge::get_summary({lottery_id})")  # type: ignore[return-value]


def list_finalized(b: Backend, start: int = 0, limit: int = 1000) -> list[int]:
    v = _one(b.view("history::list_finalized", [_u64(start, "from"), _u64(limit, "limit")]), "list_finalized")
    return [int(x) for x in v]


def all_finalized(b: Backend, page: int = 1000) -> list[int]:
    """Every id of ``list_finalized``, newest first, page by page."""
    out: list[int] = []
    while True:
        chunk = list_finalized(b, len(out), page)
        out.extend(chunk)
        if len(chunk) < page:
            return out
