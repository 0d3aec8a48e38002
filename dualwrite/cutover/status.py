"""How far is the cutover? Per plan: registered and pending, consumed and ok, consumed with a mismatch,
still unregistered, and which.

"Consumed and ok" is the end state the runbook asks to prove: archived with exactly the planned
summary, and its legacy copy exact (``dualwrite.audit.diff`` says ``ok``). Anything archived that is
not that — another summary, a drifted or missing legacy copy, an expectation left behind — is a
mismatch; a hash pending that the plan did not plan is a conflict, which will mismatch too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from dualwrite import bridge
from dualwrite.audit.diff import State, diff
from dualwrite.backends.base import Backend
from dualwrite.cutover.plan import Plan
from dualwrite.errors import ExitCode

_refresh = threading.Event()  # never set: wait(t) between refreshes of --watch


class Progress(str, Enum):
    PENDING = "pending"  # the planned hash is registered, the lottery is not finalised yet
    CONSUMED_OK = "consumed_ok"  # archived with the planned summary, legacy copy exact
    CONSUMED_MISMATCH = "consumed_mismatch"  # archived, but not the planned summary or not an exact copy
    CONFLICT = "conflict"  # not finalised, and a hash other than the planned one is pending
    UNREGISTERED = "unregistered"  # not finalised, nothing pending

    def __str__(self) -> str:
        return self.value


FAILING = (Progress.CONSUMED_MISMATCH, Progress.CONFLICT)


@dataclass(frozen=True)
class LotteryProgress:
    lottery_id: int
    progress: Progress
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"lottery_id": self.lottery_id, "progress": self.progress.value, "detail": self.detail}


@dataclass
class CutoverStatus:
    plan_digest: str
    backend: str
    lotteries: list[LotteryProgress] = field(default_factory=list)
    duration_s: float = 0.0
    watched_s: float | None = None
    timed_out: bool = False

    def ids(self, p: Progress) -> list[int]:
        return [x.lottery_id for x in self.lotteries if x.progress is p]

    def counts(self) -> dict[str, int]:
        out = {p.value: 0 for p in Progress}
        for x in self.lotteries:
            out[x.progress.value] += 1
        return out

    @property
    def complete(self) -> bool:
        return bool(self.lotteries) and all(x.progress is Progress.CONSUMED_OK for x in self.lotteries)

    @property
    def exit_code(self) -> ExitCode:
        if not self.lotteries:
            return ExitCode.EMPTY
        if any(x.progress in FAILING for x in self.lotteries):
            return ExitCode.MISMATCH
        return ExitCode.OK if self.complete else ExitCode.INCOMPLETE

    def to_json(self) -> dict[str, Any]:
        return {"plan": self.plan_digest, "backend": self.backend, "total": len(self.lotteries),
                "counts": self.counts(), "complete": self.complete, "exit_code": int(self.exit_code),
                "timed_out": self.timed_out, "duration_s": round(self.duration_s, 3),
                "ids": {p.value: self.ids(p) for p in Progress if p is not Progress.CONSUMED_OK and self.ids(p)},
                "not_ok": [x.to_json() for x in self.lotteries if x.progress is not Progress.CONSUMED_OK]}


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def status(backend: Backend, plan: Plan, *, known_ok: set[int] | None = None) -> CutoverStatus:
    """Read the chain now for every planned lottery (``known_ok``: already proven ok, not re-read).

    The pending list and the finalised ids are read once; then a status read per pending lottery and
    a diff (both archives) per archived one. Raises ``BackendError`` when the chain cannot be read.
    """
    t0 = time.perf_counter()
    known_ok = known_ok or set()
    out = CutoverStatus(plan.digest, backend.describe())
    pending_ids = set(bridge.pending(backend))
    finalized = set(bridge.all_finalized(backend))
    for row in plan.rows:
        lid = row.lottery_id
        if lid in known_ok:
            out.lotteries.append(LotteryProgress(lid, Progress.CONSUMED_OK, "ok (earlier refresh)"))
            continue
        if lid in finalized:
            d = diff(backend, lid, pending_ids=pending_ids)
            if d.history_hash != row.expected_hash:
                out.lotteries.append(LotteryProgress(
                    lid, Progress.CONSUMED_MISMATCH,
                    f"archived hash {d.history_hash} is not the planned {row.expected_hash} ({d.state.value})"))
            elif d.state is State.OK:
                out.lotteries.append(LotteryProgress(lid, Progress.CONSUMED_OK, "ok"))
            else:
                out.lotteries.append(LotteryProgress(lid, Progress.CONSUMED_MISMATCH, f"{d.state.value}: {d.reason}"))
        elif lid in pending_ids:
            pending = _hex(bridge.status(backend, lid).expected_hash)
            if pending == row.expected_hash:
                out.lotteries.append(LotteryProgress(lid, Progress.PENDING, "registered, waiting for finalisation"))
            elif pending is None:  # consumed between the two reads: the next refresh sees it archived
                out.lotteries.append(LotteryProgress(lid, Progress.UNREGISTERED, "nothing pending"))
            else:
                out.lotteries.append(LotteryProgress(lid, Progress.CONFLICT,
                                                     f"{pending} is pending, the plan's hash is {row.expected_hash}"))
        else:
            out.lotteries.append(LotteryProgress(lid, Progress.UNREGISTERED, "nothing pending, not finalised"))
    out.duration_s = time.perf_counter() - t0
    return out


def watch(backend: Backend, plan: Plan, *, timeout: float | None = None, interval: float = 2.0,
          on_refresh: Callable[[CutoverStatus], None] | None = None) -> CutoverStatus:
    """Refresh until every planned lottery is archived and ok (then one full re-read proves it), a mismatch
    shows, or ``timeout`` seconds pass (``timed_out`` is then set)."""
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    known_ok: set[int] = set()
    while True:
        st = status(backend, plan, known_ok=known_ok)
        if st.complete and known_ok:
            st = status(backend, plan)  # the lotteries proven ok earlier, proven again now
        st.watched_s = time.monotonic() - start
        if on_refresh:
            on_refresh(st)
        if st.complete or st.exit_code in (ExitCode.MISMATCH, ExitCode.EMPTY):
            return st
        known_ok = set(st.ids(Progress.CONSUMED_OK))
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            st.timed_out = True
            return st
        wait = interval if deadline is None else min(interval, deadline - now)
        _refresh.wait(max(wait, 0.0))


__all__ = ["CutoverStatus", "FAILING", "LotteryProgress", "Progress", "status", "watch"]
