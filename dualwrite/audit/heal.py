"""Repair drifted legacy copies in the order that works on chain, and prove each repair.

The order (onchain.md, "Consequences"): register the archived summary's hash, then
mirror — this works with ``abort_on_missing`` on and leaves nothing pending; then
re-read and diff. A lottery counts as healed only when that diff says ``ok``.
A transaction's success proves nothing (a disabled mirror "succeeds" and writes nothing).

Every action goes to an append-only JSON Lines journal. A run that was interrupted is
continued by the next run on the same backend: steps the journal records as done are
not repeated while the chain still shows their effect (an expectation registered by a
done ``set_expected_hash`` that is still pending; a step whose effect is gone — the
on-call cleared the expectation or turned the mirror off in between — is sent again),
a lottery already ``ok`` is left alone, and a mirror that the interrupted run switched
on (or was switching on when it stopped) is switched off again at the end.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from dualwrite import bridge
from dualwrite.audit.diff import REPAIRABLE, LotteryDiff, State, diff
from dualwrite.audit.verify import all_ids
from dualwrite.backends.base import Backend
from dualwrite.errors import BackendError, DualwriteError, ExitCode, InputError, MoveAbort, TransactionFailed

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
            RESTORE_MIRROR: "legacy_bridge::disable_legacy_mirror()  (restore: the mirror was off)",
            SET: f"legacy_bridge::set_expected_hash({self.lottery_id}, {self.expected_hash})",
            MIRROR: f"history::mirror_summary_admin({self.lottery_id})",
            CLEAR: f"legacy_bridge::clear_expected_hash({self.lottery_id})",
        }[self.action]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "lottery_id": self.lottery_id, "expected_hash": self.expected_hash,
                "call": self.describe()}


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


# -- the journal ------------------------------------------------------------------------------------------


class Journal:
    """Append-only JSON Lines; each record written whole and synced before the next action."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = [ln for ln in self.path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        out = []
        for n, line in enumerate(lines, 1):
            try:
                out.append(json.loads(line))
            except RecursionError:  # found by fuzz/: nesting no journal record has
                raise InputError(f"heal journal {self.path}: record {n} is not a journal record (nested too deep)") from None
            except json.JSONDecodeError as e:
                # a torn record from a crash mid-write (the action after it never ran; a later run closed
                # the line and appended after it): the start of a record, cut short — not something else
                text = line.rstrip()
                if text.startswith("{") and (not text.endswith("}") or e.pos >= len(text)):
                    continue
                raise InputError(f"heal journal {self.path}: record {n} is not JSON") from None
            if not isinstance(out[-1], dict):
                raise InputError(f"heal journal {self.path}: record {n} is not a JSON object")
        return out

    def append(self, record: dict[str, Any]) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(), **record}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":
                data = b"\n" + data  # close a torn last line, so this record is a line of its own
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def unfinished_run(self, backend: str) -> tuple[str, set[str], bool] | None:
        """(run id, step keys done, mirror left enabled by it) of an interrupted run on this backend."""
        runs: dict[str, dict[str, Any]] = {}
        for r in self.records():
            rid = r.get("run")
            if not rid:
                continue
            if not isinstance(rid, str) or (r.get("event") == "step" and r.get("status") == "done"
                                            and not isinstance(r.get("key"), str)):
                raise InputError(f"heal journal {self.path}: a record with a damaged run id or step key: "
                                 f"{json.dumps(r, ensure_ascii=False)[:120]}")
            if r.get("event") == "run_start":
                runs[rid] = {"backend": r.get("backend"), "done": set(), "ended": False, "enabled": False}
            elif rid in runs:
                run = runs[rid]
                if r.get("event") == "run_end":
                    run["ended"] = True
                elif r.get("event") == "step":
                    status, action = r.get("status"), r.get("action")
                    if status == "done":
                        run["done"].add(r["key"])
                    if action == ENABLE_MIRROR:
                        # "started" without "done": it may have committed before the stop; turning the
                        # mirror off again is a no-op if it did not
                        run["enabled"] = status in ("started", "done")
                    if action == RESTORE_MIRROR and status == "done":
                        run["enabled"] = False
        for rid, run in reversed(list(runs.items())):
            if run["backend"] == backend and not run["ended"]:
                return rid, run["done"], run["enabled"]
        return None


# -- applying ---------------------------------------------------------------------------------------------


@dataclass
class LotteryOutcome:
    lottery_id: int
    before: str
    verdict: str
    after: str | None = None
    healed: bool = False
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    after_diff: LotteryDiff | None = None

    def to_json(self) -> dict[str, Any]:
        return {"lottery_id": self.lottery_id, "before": self.before, "verdict": self.verdict, "after": self.after,
                "healed": self.healed, "done": self.done, "skipped": self.skipped, "error": self.error,
                **({"after_reason": self.after_diff.reason} if self.after_diff else {})}


@dataclass
class HealReport:
    plan: HealPlan
    applied: bool
    outcomes: list[LotteryOutcome] = field(default_factory=list)
    journal: str | None = None
    run_id: str | None = None
    resumed: bool = False
    global_errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        kinds = {o.error_kind for o in self.outcomes if o.error_kind}
        if "abort" in kinds:
            return ExitCode.ABORTED
        if "backend" in kinds or self.global_errors:
            return ExitCode.BACKEND
        if not self.applied:
            return ExitCode.MISMATCH if any(p.verdict in ("blocked", "unhealable") for p in self.plan.lotteries) else ExitCode.OK
        if any(not o.healed and o.verdict not in ("nothing", "waiting") for o in self.outcomes):
            return ExitCode.MISMATCH
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "plan": self.plan.to_json(), "journal": self.journal, "run": self.run_id,
                "resumed": self.resumed, "outcomes": [o.to_json() for o in self.outcomes],
                "healed": [o.lottery_id for o in self.outcomes if o.healed and o.before != "ok"],
                "not_healed": [o.lottery_id for o in self.outcomes if not o.healed and o.verdict not in ("nothing", "waiting")],
                "errors": self.global_errors, "exit_code": int(self.exit_code)}


def _error_kind(e: DualwriteError) -> str:
    if isinstance(e, (MoveAbort, TransactionFailed)):
        return "abort"
    if isinstance(e, BackendError):
        return "backend"
    return "input"


def _do(backend: Backend, step: Step):
    if step.action == ENABLE_MIRROR:
        return bridge.enable_mirror(backend)
    if step.action == RESTORE_MIRROR:
        return bridge.disable_mirror(backend)
    if step.action == SET:
        return bridge.set_expected(backend, step.lottery_id, bytes.fromhex(step.expected_hash[2:]))  # type: ignore[index]
    if step.action == MIRROR:
        return bridge.mirror(backend, step.lottery_id)  # type: ignore[arg-type]
    if step.action == CLEAR:
        return bridge.clear(backend, step.lottery_id)  # type: ignore[arg-type]
    raise ValueError(step.action)  # pragma: no cover


def heal(backend: Backend, ids: Iterable[int] | None = None, *, apply: bool = False, enable_mirror: bool = False,
         journal: Path | None = None) -> HealReport:
    """Plan (dry run, the default) or apply-and-prove the repair of the given ids, or of every failing one."""
    hp = plan(backend, None if ids is None else list(ids), enable_mirror=enable_mirror)
    report = HealReport(hp, apply)
    if not apply:
        return report
    j = Journal(journal or default_journal())
    report.journal = str(j.path)
    previous = j.unfinished_run(hp.backend)
    done: set[str] = set()
    restore_needed = False
    if previous:
        report.run_id, done, restore_needed = previous
        report.resumed = True
        j.append({"run": report.run_id, "event": "run_resume", "backend": hp.backend})
    else:
        report.run_id = uuid.uuid4().hex[:12]
        j.append({"run": report.run_id, "event": "run_start", "backend": hp.backend, "plan": hp.to_json()})

    def still_done(s: Step, lp: LotteryPlan | None) -> bool:
        """A step the journal records as done is skipped only while the chain still shows its effect.

        Only a registered expectation can be both done and still needed: every other step is in
        the plan because its effect is not on chain now (mirror off, legacy copy not exact,
        expectation still pending), so the journal's "done" is stale and the step is sent again.
        """
        return s.key in done and s.action == SET and lp is not None and lp.diff.expected_hash == s.expected_hash

    def step(s: Step, lp: LotteryPlan | None = None) -> Any:
        if still_done(s, lp):
            return "skipped"
        j.append({"run": report.run_id, "event": "step", "key": s.key, "action": s.action, "lottery_id": s.lottery_id,
                  "call": s.describe(), "status": "started"})
        try:
            txn = _do(backend, s)
        except DualwriteError as e:
            j.append({"run": report.run_id, "event": "step", "key": s.key, "action": s.action,
                      "lottery_id": s.lottery_id, "status": "failed", "error": str(e)})
            raise
        j.append({"run": report.run_id, "event": "step", "key": s.key, "action": s.action, "lottery_id": s.lottery_id,
                  "status": "done", "transaction_hash": txn.hash, "events": txn.event_names()})
        done.add(s.key)
        return txn

    try:
        for s in hp.pre:
            step(s)
            restore_needed = restore_needed or s.action == ENABLE_MIRROR
    except DualwriteError as e:
        report.global_errors.append(f"{s.describe()}: {e}")
        j.append({"run": report.run_id, "event": "run_end", "result": "failed before repairs"})
        return report

    try:
        _repair_all(hp, report, step, backend, j)
    except KeyboardInterrupt:
        # Ctrl-C at 3 a.m.: do not leave a mirror we switched on running unattended. The run stays
        # unfinished in the journal, so the next heal continues it.
        if restore_needed:
            try:
                step(Step(RESTORE_MIRROR))
            except (DualwriteError, KeyboardInterrupt):
                pass  # the journal shows it on: the next run turns it off
        raise

    if restore_needed and not any(s.action == RESTORE_MIRROR for s in hp.post):
        hp.post.append(Step(RESTORE_MIRROR))  # an interrupted run turned it on: turn it off again
    for s in hp.post:
        try:
            step(s)
        except DualwriteError as e:
            report.global_errors.append(f"{s.describe()}: {e} — the mirror may still be ON")
    j.append({"run": report.run_id, "event": "run_end",
              "healed": [o.lottery_id for o in report.outcomes if o.healed and o.before != "ok"]})
    return report


def _repair_all(hp: HealPlan, report: HealReport, step, backend: Backend, j: Journal) -> None:
    """Each lottery's steps in order, then the re-read that alone can call it healed."""
    for lp in hp.lotteries:
        out = LotteryOutcome(lp.lottery_id, lp.diff.state.value, lp.verdict)
        report.outcomes.append(out)
        if lp.verdict == "ok":
            out.after, out.healed = "ok", True
            continue
        if lp.verdict != "repair":
            out.after = lp.diff.state.value
            continue
        try:
            for s in lp.steps:
                r = step(s, lp)
                (out.skipped if r == "skipped" else out.done).append(s.action)
        except DualwriteError as e:
            out.error, out.error_kind = str(e), _error_kind(e)
        try:
            after = diff(backend, lp.lottery_id)
            out.after_diff, out.after, out.healed = after, after.state.value, after.state is State.OK
        except DualwriteError as e:
            out.error = out.error or f"re-read failed: {e}"
            out.error_kind = out.error_kind or _error_kind(e)
        j.append({"run": report.run_id, "event": "verify", "lottery_id": lp.lottery_id, "state": out.after,
                  "healed": out.healed})


__all__ = ["HealPlan", "HealReport", "Journal", "LotteryOutcome", "LotteryPlan", "Step", "heal", "plan",
           "default_journal", "REPAIRABLE"]
