"""One monitoring check: ``verify`` over every lottery, reduced to the numbers the alerts need.

The states come from ``dualwrite.audit.verify`` (the same classification the CI gate and
``heal`` use), so a metric never disagrees with what on-call sees when they run ``verify``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from dualwrite import bridge
from dualwrite.audit.diff import LotteryDiff, State
from dualwrite.audit.verify import Policy, all_ids, verify
from dualwrite.backends.base import Backend
from dualwrite.errors import BackendError, DualwriteError
from dualwrite.words import count, plural

#: the runbook's grace before a pending expectation alerts
DEFAULT_PENDING_GRACE = timedelta(hours=2)

#: definite failures: the legacy copy is not exactly the archived summary (or there is none, or no archive)
MISMATCH_STATES = frozenset({State.MISSING_LEGACY, State.MISSING_HISTORY, State.CORRUPT_LEGACY,
                             State.NON_CANONICAL, State.FIELD_DRIFT, State.HASH_MISMATCH})


def mismatching(d: LotteryDiff) -> bool:
    """``dual_write_mismatch`` counts this lottery: its legacy copy's hash differs from the archived
    summary's (a definite-failure state), or it is finalised and its registered expectation differs
    from the archived hash (``pending`` that *will mismatch*: the chain aborts or drifts on the mirror)."""
    if d.state in MISMATCH_STATES:
        return True
    return d.state is State.PENDING and d.pending_will_match is False


class CheckIncomplete(BackendError):
    """Some lotteries could not be read: the numbers would undercount, so the check is not published."""

    def __init__(self, unchecked: list[tuple[int, str]], total: int) -> None:
        first_id, first_error = unchecked[0]
        super().__init__(f"{len(unchecked)} of {count(total, 'lottery')} could not be checked "
                         f"(first: lottery {first_id}: {first_error})")
        self.unchecked = unchecked


@dataclass(frozen=True)
class Snapshot:
    """The result of one successful check; immutable, so a scrape reads it without a lock."""

    backend: str
    backend_name: str
    finished_at: float  # unix seconds
    duration_s: float
    pending_grace_s: float
    counts: dict[str, int]
    checked: int
    mismatch_ids: tuple[int, ...]
    pending_ids: tuple[int, ...]
    pending_over_grace_ids: tuple[int, ...]
    pending_age_unknown: int
    pending_oldest_age_s: float
    enabled: bool
    abort_on_mismatch: bool
    abort_on_missing: bool
    mirror_enabled: bool
    bridge_initialized: bool
    failing_states: dict[int, str] = field(default_factory=dict)
    #: every lottery's diff, for the next incremental cycle (never published)
    diffs: dict[int, LotteryDiff] = field(default_factory=dict, repr=False, compare=False)
    #: lotteries this check read (all of them in a full check)
    rechecked: int = 0
    full: bool = True

    @property
    def mismatch(self) -> int:
        return len(self.mismatch_ids)

    @property
    def pending_over_grace(self) -> int:
        return len(self.pending_over_grace_ids)

    def log_lines(self, limit: int = 50) -> list[str]:
        """What on-call reads in the log: the ids behind a non-zero alert metric (never a label)."""

        def ids(xs: tuple[int, ...]) -> str:
            shown = ", ".join(f"{i} ({self.failing_states.get(i, 'pending')})" for i in xs[:limit])
            return shown + (f", … and {len(xs) - limit} more" if len(xs) > limit else "")

        out = []
        if self.mismatch_ids:
            out.append(f"dual_write_mismatch={self.mismatch}: {plural(self.mismatch, 'lottery')} {ids(self.mismatch_ids)}")
        if self.pending_over_grace_ids:
            out.append(f"dual_write_pending={self.pending_over_grace} (pending over {self.pending_grace_s:.0f}s): "
                       f"{plural(self.pending_over_grace, 'lottery')} {ids(self.pending_over_grace_ids)}")
        return out


def _now(backend: Backend) -> datetime:
    """This machine's clock, or the chain's when it is ahead (a simulator whose clock was moved,
    a node's latest block), as ``verify`` counts a pending expectation's age."""
    now = datetime.now(timezone.utc)
    chain_now = getattr(backend, "chain_now", None)
    if callable(chain_now):
        try:
            t = chain_now()
        except DualwriteError:
            return now
        if isinstance(t, datetime):
            return max(now, t)
    return now


def run_check(backend: Backend, *, pending_grace: timedelta = DEFAULT_PENDING_GRACE, jobs: int = 4,
              previous: Snapshot | None = None, changed: set[int] | None = None) -> Snapshot:
    """Check every lottery (``verify --all``) and the global switches; raise when the numbers would lie.

    Incremental when given the ``previous`` snapshot and the lotteries ``changed`` since (from the
    events of the new blocks): only those are read again, with every new, pending, previously
    pending or previously failing one; the others keep their previous diff. Every write the modules
    make to what a diff reads emits an event (onchain.md), except ``clear_expected_hash``, which the
    pending list covers; a change made outside the modules (``sim tamper``) waits for the next full check.
    """
    t0 = time.perf_counter()
    flags = bridge.flags(backend)
    mirror = bridge.is_mirror_enabled(backend)
    initialized = bridge.bridge_initialized(backend)
    ids = all_ids(backend)
    full = previous is None or changed is None
    if full:
        todo = ids
    else:
        pending_now = set(bridge.pending(backend))
        again = changed | pending_now | set(previous.pending_ids) | set(previous.failing_states)
        todo = [i for i in ids if i in again or i not in previous.diffs]
    report = verify(backend, todo, policy=Policy(allow_pending=True, pending_grace=pending_grace), jobs=jobs,
                    allow_empty=True)
    if report.unchecked:
        raise CheckIncomplete([(u.lottery_id, u.error) for u in report.unchecked], len(todo))
    fresh = {c.diff.lottery_id: c.diff for c in report.checked}
    diffs = fresh if full else {i: fresh.get(i) or previous.diffs[i] for i in ids}
    now = _now(backend)
    mismatch: list[int] = []
    pending: list[int] = []
    over: list[int] = []
    unknown = 0
    oldest = 0.0
    states: dict[int, str] = {}
    counts = {st.value: 0 for st in State}
    for d in diffs.values():
        counts[d.state.value] += 1
        if d.state is not State.OK:
            states[d.lottery_id] = d.state.value
        if mismatching(d):
            mismatch.append(d.lottery_id)
        if d.state is State.PENDING:
            pending.append(d.lottery_id)
            if d.pending_since is None:
                unknown += 1
            else:
                age = (now - d.pending_since).total_seconds()
                oldest = max(oldest, age)
                if age > pending_grace.total_seconds():
                    over.append(d.lottery_id)
    return Snapshot(
        backend=backend.describe(), backend_name=getattr(backend, "name", "unknown"),
        finished_at=time.time(), duration_s=time.perf_counter() - t0,
        pending_grace_s=pending_grace.total_seconds(), counts=counts, checked=len(diffs),
        mismatch_ids=tuple(sorted(mismatch)), pending_ids=tuple(sorted(pending)),
        pending_over_grace_ids=tuple(sorted(over)), pending_age_unknown=unknown, pending_oldest_age_s=oldest,
        enabled=flags.enabled, abort_on_mismatch=flags.abort_on_mismatch, abort_on_missing=flags.abort_on_missing,
        mirror_enabled=mirror, bridge_initialized=initialized, failing_states=states, diffs=diffs,
        rechecked=len(todo), full=full,
    )
