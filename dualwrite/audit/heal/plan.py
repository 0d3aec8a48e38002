"""The heal's repair plan: what each failing lottery needs, in the order that works on chain.

The order (onchain.md, "Consequences"): register the archived summary's hash, then mirror — this
works with ``abort_on_missing`` on and leaves nothing pending; then re-read and diff (``apply.py``).
The plan adapts to the chain's switches: dual-write off (no set; a stale expectation is cleared),
the mirror off (blocked, or ``--enable-mirror`` for the repair), the history bridge not initialised
(blocked), a ``missing_history`` lottery (never "fixed").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dualwrite import bridge
from dualwrite.audit.diff import LotteryDiff, State, diff
from dualwrite.audit.verify import all_ids
from dualwrite.backends.base import Backend

ENABLE_MIRROR = "enable_mirror"
RESTORE_MIRROR = "restore_mirror"
SET = "set_expected_hash"
MIRROR = "mirror"
CLEAR = "clear_expected_hash"


def default_journal() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dualwrite" / "heal-journal.jsonl"


@dataclass(frozen=True)
class Step:
    action: str
    lottery_id: int | None = None
    expected_hash: str | None = None

    @property
    def key(self) -> str:
        return f"{self.lottery_id}:{self.action}" if self.lottery_id is not None else self.action

    def describe(self) -> str:
        return {
            ENABLE_MIRROR: "legacy_bridge::enable_legacy_mirror()  (for the repair; restored after)",
            RESTORE_MIRROR: "legacy_bridge::disable_legacy_mirror()  (restore: the mirror was off; only if this run "
                            "turned it on and it is still on)",
            SET: f"legacy_bridge::set_expected_hash({self.lottery_id}, {self.expected_hash})",
            MIRROR: f"history::mirror_summary_admin({self.lottery_id})",
            CLEAR: f"legacy_bridge::clear_expected_hash({self.lottery_id})",
        }[self.action]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "lottery_id": self.lottery_id, "expected_hash": self.expected_hash,
                "call": self.describe()}


#: what a lottery's plan can say, in the order ``heal --json`` counts them
VERDICTS = ("repair", "ok", "waiting", "nothing", "unhealable", "blocked")


@dataclass
class LotteryPlan:
    diff: LotteryDiff
    steps: list[Step]
    verdict: str  # repair | ok | waiting | nothing | unhealable | blocked
    why: str = ""

    @property
    def lottery_id(self) -> int:
        return self.diff.lottery_id

    def to_json(self) -> dict[str, Any]:
        return {"lottery_id": self.lottery_id, "state": self.diff.state.value, "reason": self.diff.reason,
                "verdict": self.verdict, "why": self.why, "steps": [s.to_json() for s in self.steps]}


@dataclass
class HealPlan:
    backend: str
    control_enabled: bool
    abort_on_missing: bool
    mirror_enabled: bool
    bridge_initialized: bool
    lotteries: list[LotteryPlan]
    pre: list[Step] = field(default_factory=list)
    post: list[Step] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend,
                "chain": {"dual_write_enabled": self.control_enabled, "abort_on_missing": self.abort_on_missing,
                          "mirror_enabled": self.mirror_enabled, "bridge_initialized": self.bridge_initialized},
                "pre": [s.to_json() for s in self.pre], "lotteries": [p.to_json() for p in self.lotteries],
                "post": [s.to_json() for s in self.post]}


def plan(backend: Backend, ids: Iterable[int] | None = None, *, enable_mirror: bool = False) -> HealPlan:
    """The exact repair plan: what each lottery needs, in chain order, or why it cannot be healed."""
    # one pending_expected_hashes call saves a status view for every lottery with nothing pending
    pending_ids = set(bridge.pending(backend))
    if ids is None:
        candidates = all_ids(backend)
        diffs = [d for d in (diff(backend, i, pending_ids=pending_ids) for i in candidates)
                 if d.state not in (State.OK, State.ABSENT)]
        diffs = [d for d in diffs if not (d.state is State.PENDING and d.history_hash is None)]
    else:
        diffs = [diff(backend, i, pending_ids=pending_ids) for i in ids]
    flags = bridge.flags(backend)
    mirror_on = bridge.is_mirror_enabled(backend)
    bridge_on = bridge.bridge_initialized(backend)
    hp = HealPlan(backend.describe(), flags.enabled, flags.abort_on_missing, mirror_on, bridge_on, [])
    needs_mirror = False
    for d in diffs:
        lp = _plan_one(d, flags.enabled, mirror_on or enable_mirror, bridge_on, mirror_on)
        needs_mirror |= any(s.action == MIRROR for s in lp.steps)
        hp.lotteries.append(lp)
    if needs_mirror and not mirror_on and enable_mirror:
        hp.pre.append(Step(ENABLE_MIRROR))
        hp.post.append(Step(RESTORE_MIRROR))
    return hp


def _plan_one(d: LotteryDiff, control_enabled: bool, mirror_usable: bool, bridge_on: bool, mirror_on: bool) -> LotteryPlan:
    lid = d.lottery_id
    if d.state is State.OK:
        return LotteryPlan(d, [], "ok", "nothing to do")
    if d.state is State.ABSENT:
        return LotteryPlan(d, [], "nothing", "no archived summary and no legacy copy: nothing to heal from")
    if d.state is State.MISSING_HISTORY:
        return LotteryPlan(d, [], "unhealable",
                           "history has no summary for it: the archive is the source of truth, so it cannot be healed "
                           "from it (investigate the legacy copy; import it with import_legacy_summary_admin if it is right)")
    if d.state is State.PENDING and d.history_hash is None:
        return LotteryPlan(d, [], "waiting", "not finalised yet: the expectation is consumed when it is")
    if d.state is State.PENDING and not control_enabled:
        return LotteryPlan(d, [Step(CLEAR, lid)], "repair",
                           "dual-write is disabled, so a mirror would not consume it: clear the stale expectation")
    # a repair through the mirror: register the archived hash (when dual-write is on), then mirror
    steps = []
    if control_enabled:
        steps.append(Step(SET, lid, d.history_hash))
    steps.append(Step(MIRROR, lid))
    if not control_enabled and d.expected_hash is not None:
        # dual-write is disabled: the mirror's notify returns at once and leaves the expectation pending
        steps.append(Step(CLEAR, lid))
    if not bridge_on:
        return LotteryPlan(d, steps, "blocked",
                           "history_bridge is not initialised: a mirror writes nothing (init_bridge must be signed by @lottery)")
    if not mirror_usable:
        return LotteryPlan(d, steps, "blocked",
                           "the legacy mirror is disabled: a mirror would write nothing; pass --enable-mirror to turn it "
                           "on for the repair (it is turned off again after)")
    why = {State.PENDING: "re-register the archived hash and mirror: consumes the stale expectation",
           }.get(d.state, "register the archived hash, then re-mirror from the archive")
    return LotteryPlan(d, steps, "repair", why)


__all__ = ["CLEAR", "ENABLE_MIRROR", "HealPlan", "LotteryPlan", "MIRROR", "RESTORE_MIRROR", "SET", "Step",
           "default_journal", "plan"]
