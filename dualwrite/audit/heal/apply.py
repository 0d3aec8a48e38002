"""Apply the heal's plan and prove each repair; continue an interrupted run on the same chain.

A transaction's success proves nothing (a disabled mirror "succeeds" and writes nothing): after a
lottery's steps, both archives are re-read and diffed, and it counts as healed only when that diff
says ``ok``. A continued run does not repeat steps the journal records as done while the chain still
shows their effect (an expectation registered by a done ``set_expected_hash`` that is still pending;
a step whose effect is gone is sent again), leaves a lottery already ``ok`` alone, and at the end
re-reads the mirror and turns off only a mirror this run turned on (confirmed) that is still on.
Applying holds the journal's lock and the chain's lock (``dualwrite/audit/locks.py``).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from dualwrite import bridge
from dualwrite.audit.diff import LotteryDiff, State, diff
from dualwrite.audit.heal.journal import DEFAULT_RESUME_WITHIN, Journal, RunInfo
from dualwrite.audit.heal.plan import (CLEAR, ENABLE_MIRROR, MIRROR, RESTORE_MIRROR, SET, HealPlan, LotteryPlan,
                                       VERDICTS, Step, default_journal, plan)
from dualwrite.audit.locks import Lock, lock_dir
from dualwrite.backends.base import Backend, identity_key, identity_of
from dualwrite.errors import BackendError, ChainChanged, DualwriteError, ExitCode, MoveAbort, TransactionFailed
from dualwrite.sender import Call, Outcome as SendOutcome, Sender

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


@dataclass(frozen=True)
class MirrorStep:
    """One thing heal did, or chose not to do, to the global mirror switch, and why."""

    action: str  # enable | disable | leave_on | leave_off
    status: str  # done | failed | skipped
    why: str
    mirror_after: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "status": self.status, "why": self.why, "mirror_after": self.mirror_after}

    def human(self) -> str:
        state = "" if self.mirror_after is None else f" (mirror now {'ON' if self.mirror_after else 'off'})"
        verb = {"enable": "turn ON", "disable": "turn OFF", "leave_on": "left ON", "leave_off": "left off"}[self.action]
        return f"{verb}: {self.status}{state} — {self.why}"


@dataclass
class HealReport:
    plan: HealPlan
    applied: bool
    outcomes: list[LotteryOutcome] = field(default_factory=list)
    journal: str | None = None
    run_id: str | None = None
    resumed: bool = False
    global_errors: list[str] = field(default_factory=list)
    chain: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    mirror_steps: list[MirrorStep] = field(default_factory=list)
    resume_within_s: float | None = None

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

    @property
    def healed(self) -> list[int]:
        return [o.lottery_id for o in self.outcomes if o.healed and o.before != "ok"]

    @property
    def not_healed(self) -> list[int]:
        return [o.lottery_id for o in self.outcomes if not o.healed and o.verdict not in ("nothing", "waiting")]

    def counts(self) -> dict[str, int]:
        """Lotteries per plan verdict (every verdict, zeros too), then how many were healed and not (when applied)."""
        out = dict.fromkeys(VERDICTS, 0)
        for lp in self.plan.lotteries:
            out[lp.verdict] += 1
        return {**out, "healed": len(self.healed), "not_healed": len(self.not_healed)}

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.plan.backend, "applied": self.applied, "counts": self.counts(),
                "plan": self.plan.to_json(), "journal": self.journal, "run": self.run_id,
                "resumed": self.resumed, "chain": self.chain, "resume_within_s": self.resume_within_s,
                "notes": self.notes, "mirror_steps": [m.to_json() for m in self.mirror_steps],
                "outcomes": [o.to_json() for o in self.outcomes], "healed": self.healed, "not_healed": self.not_healed,
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


def _call(step: Step) -> tuple[str, list[str]]:
    """A lottery step's entry function and arguments (what the sender signs over RPC)."""
    if step.action == SET:
        return bridge.set_expected_call(step.lottery_id, bytes.fromhex(step.expected_hash[2:]))  # type: ignore[arg-type,index]
    if step.action == MIRROR:
        return bridge.mirror_call(step.lottery_id)  # type: ignore[arg-type]
    if step.action == CLEAR:
        return bridge.clear_call(step.lottery_id)  # type: ignore[arg-type]
    raise ValueError(step.action)  # pragma: no cover - the mirror switch goes through _do


def _age(t: timedelta) -> str:
    s = int(t.total_seconds())
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def heal(backend: Backend, ids: Iterable[int] | None = None, *, apply: bool = False, enable_mirror: bool = False,
         journal: Path | None = None, resume_within: timedelta = DEFAULT_RESUME_WITHIN,
         progress: Callable[[LotteryOutcome], None] | None = None,
         on_plan: Callable[[HealPlan], None] | None = None, in_flight: int | None = None) -> HealReport:
    """Plan (dry run, the default) or apply-and-prove the repair of the given ids, or of every failing one.

    Applying holds the journal's lock (exclusive) and the chain's lock (exclusive when the run may
    switch the mirror, shared otherwise) for the whole run; ``HealBusy`` when another heal has either.
    When applying, ``on_plan`` is called once with the plan read under the locks (its lotteries are
    the work to do), then ``progress`` once with each lottery's outcome, as it is known. The repairs'
    transactions go through the one sender (``dualwrite.sender``): over RPC up to ``in_flight`` of
    them in flight, in order.
    """
    ident = identity_of(backend)
    key = identity_key(ident)
    id_list = None if ids is None else list(ids)
    if not apply:
        report = HealReport(plan(backend, id_list, enable_mirror=enable_mirror), False, chain=ident)
        return report
    j = Journal(journal or default_journal())
    with Lock(j.lock_path, f"heal journal {j.path}"):
        runs = j.runs()
        now = datetime.now(timezone.utc)
        notes: list[str] = []
        fresh: list[RunInfo] = []
        stale: list[tuple[RunInfo, str]] = []
        for r in runs.values():
            if r.ended or r.set_aside:
                continue
            if r.chain_key is None:
                stale.append((r, "it was recorded without the chain's identity (an older dualwrite)"))
            elif r.chain_now != key:
                notes.append(f"not resumed: unfinished run {r.run} is on another chain ({r.backend}); "
                             "only a heal on that chain continues it")
            elif r.last_ts is None or now - r.last_ts > resume_within:
                age = "of unknown age" if r.last_ts is None else f"last active {_age(now - r.last_ts)} ago"
                stale.append((r, f"it is {age}, over the {_age(resume_within)} a run may be continued within"))
            else:
                fresh.append(r)
        previous = fresh[-1] if fresh else None
        stale += [(r, f"a later unfinished run ({previous.run}) on this chain is continued instead")
                  for r in fresh[:-1]]  # type: ignore[union-attr]
        flips = enable_mirror or (previous is not None and previous.mirror is not None)
        with Lock(lock_dir() / f"chain-{key}.lock", f"the chain ({backend.describe()})", exclusive=flips):
            with j:  # open for the run (heal's own lock above guards it)
                return _apply(backend, id_list, enable_mirror, j, ident, key, previous, stale, notes, resume_within,
                              progress, on_plan, in_flight)


def _apply(backend: Backend, ids: list[int] | None, enable_mirror: bool, j: Journal, ident: dict[str, str], key: str,
           previous: RunInfo | None, stale: list[tuple[RunInfo, str]], notes: list[str],
           resume_within: timedelta, progress: Callable[[LotteryOutcome], None] | None = None,
           on_plan: Callable[[HealPlan], None] | None = None, in_flight: int | None = None) -> HealReport:
    run_id = previous.run if previous else uuid.uuid4().hex[:12]

    def record(call: Call, status: str, fields: dict[str, Any], sync: bool) -> None:
        s: Step = call.ref
        j.append({"run": run_id, "event": "step", "key": s.key, "action": s.action, "lottery_id": s.lottery_id,
                  "call": s.describe(), "status": status, **fields}, sync=sync)

    sender = Sender(backend, record, j.sync, in_flight=in_flight)
    if previous is not None and previous.begun and sender.over_rpc:
        # over RPC: what the interrupted run began is settled by hash before the chain is planned again
        begun = [(Call("", [], Step(action, lid, None)), txns) for _key, (action, lid, txns) in previous.begun.items()]
        for o in sender.settle_begun(begun):
            if o.error is None:
                record(o.call, "done", {"transaction_hash": o.txn_hash, "events": o.result.event_names(),
                                        "settled_on_resume": True}, True)
                previous.done.add(o.call.ref.key)
            else:
                record(o.call, "failed", {"transaction_hash": o.txn_hash, "error": str(o.error),
                                          "settled_on_resume": True}, True)
    # the plan is read under the locks: no other heal changes the chain between it and the steps
    hp = plan(backend, ids, enable_mirror=enable_mirror)
    if on_plan:
        on_plan(hp)
    report = HealReport(hp, True, journal=str(j.path), chain=ident, notes=notes,
                        resume_within_s=resume_within.total_seconds())
    done: set[str] = set()
    mirror_state: str | None = None  # as the run_info of this run: "on", "uncertain", None
    report.run_id = run_id
    if previous:
        done, mirror_state = set(previous.done), previous.mirror
        report.resumed = True
        j.append({"run": report.run_id, "event": "run_resume", "backend": hp.backend, "chain_key": key,
                  "pid": os.getpid()})
    else:
        j.append({"run": report.run_id, "event": "run_start", "backend": hp.backend, "chain": ident, "chain_key": key,
                  "pid": os.getpid(), "plan": hp.to_json()})
    for r, why in stale:
        j.append({"run": r.run, "event": "run_set_aside", "by": report.run_id, "reason": why})
        left = {"on": "it had turned the mirror ON and never off", "uncertain":
                "it was turning the mirror on when it stopped"}.get(r.mirror or "")
        report.notes.append(f"set aside unfinished run {r.run}, not continued: {why}"
                            + (f"; {left}: heal leaves the mirror as it is now "
                               f"({'ON' if hp.mirror_enabled else 'off'})" if left else ""))

    def still_done(s: Step, lp: LotteryPlan | None) -> bool:
        """A step the journal records as done is skipped only while the chain still shows its effect.

        Only a registered expectation can be both done and still needed: every other step is in
        the plan because its effect is not on chain now (mirror off, legacy copy not exact,
        expectation still pending), so the journal's "done" is stale and the step is sent again.
        """
        return s.key in done and s.action == SET and lp is not None and lp.diff.expected_hash == s.expected_hash

    def step(s: Step, lp: LotteryPlan | None = None, **extra: Any) -> Any:
        if still_done(s, lp):
            return "skipped"
        j.append({"run": report.run_id, "event": "step", "key": s.key, "action": s.action, "lottery_id": s.lottery_id,
                  "call": s.describe(), "status": "started", **extra})
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

    def mirror_now() -> bool | None:
        try:
            return bridge.is_mirror_enabled(backend)
        except DualwriteError:
            return None

    def restore(final: bool) -> None:
        """Turn off only a mirror this run turned on (confirmed) and that is still on; say what was done."""
        nonlocal mirror_state
        if mirror_state is None:
            return
        on = mirror_now()
        if on is None:
            report.global_errors.append("could not re-read the mirror switch: it may still be ON "
                                        "(check with `dualwrite flags`)")
            return
        if mirror_state == "uncertain":
            if on:
                why = (f"run {report.run_id} was turning the mirror on when it stopped, before the chain confirmed it, "
                       "so it may have been turned on by that run or by hand since: left as it is; "
                       "`dualwrite disable-mirror` if it should be off")
                report.mirror_steps.append(MirrorStep("leave_on", "skipped", why, True))
            else:
                report.mirror_steps.append(MirrorStep("leave_off", "skipped",
                                                      "the mirror is off: nothing of this run's to undo", False))
            j.append({"run": report.run_id, "event": "step", "key": RESTORE_MIRROR, "action": RESTORE_MIRROR,
                      "lottery_id": None, "status": "skipped", "mirror_enabled": on, "why": "enable not confirmed"})
            mirror_state = None
            return
        if not on:
            report.mirror_steps.append(MirrorStep("leave_off", "skipped", "this run turned the mirror on, and it is "
                                                  "already off again (turned off by hand): nothing to do", False))
            j.append({"run": report.run_id, "event": "step", "key": RESTORE_MIRROR, "action": RESTORE_MIRROR,
                      "lottery_id": None, "status": "skipped", "mirror_enabled": False, "why": "already off"})
            mirror_state = None
            return
        try:
            step(Step(RESTORE_MIRROR), mirror_before=True)
        except DualwriteError as e:
            report.mirror_steps.append(MirrorStep("disable", "failed", str(e), mirror_now()))
            report.global_errors.append(f"{Step(RESTORE_MIRROR).describe()}: {e} — the mirror may still be ON")
            return
        mirror_state = None
        report.mirror_steps.append(MirrorStep("disable", "done", "this run turned it on for the repair and it was "
                                              "still on: turned off again, as it was" + ("" if final else
                                                                                        " (interrupted)"), mirror_now()))

    try:
        for s in hp.pre:
            try:
                step(s, mirror_before=False)
            except KeyboardInterrupt:
                # cut short while the enable was in flight: this process holds the chain lock and reads the
                # switch at once, so a mirror that is on now is the one it just turned on
                if mirror_now():
                    mirror_state = "on"
                    restore(False)
                raise
            mirror_state = "on"
            report.mirror_steps.append(MirrorStep("enable", "done", "the mirror was off and a repair needs it "
                                                  "(--enable-mirror); turned off again at the end", mirror_now()))
    except DualwriteError as e:
        report.mirror_steps.append(MirrorStep("enable", "failed", str(e), mirror_now()))
        report.global_errors.append(f"{s.describe()}: {e}")
        j.append({"run": report.run_id, "event": "run_end", "result": "failed before repairs"})
        return report
    if not hp.pre and previous is None and not hp.mirror_enabled:
        pass  # nothing to say: heal never touched the switch
    elif not hp.pre and hp.mirror_enabled and mirror_state is None:
        report.mirror_steps.append(MirrorStep("leave_on", "skipped", "the mirror was on: heal leaves it on", True))

    try:
        _repair_all(hp, report, sender, still_done, done, backend, j, progress)
    except KeyboardInterrupt:
        # Ctrl-C at 3 a.m.: do not leave a mirror we switched on running unattended. The run stays
        # unfinished in the journal, so the next heal continues it.
        try:
            if mirror_state == "on":
                restore(False)
        except (DualwriteError, KeyboardInterrupt):
            pass  # the journal shows it on: the next run turns it off
        raise

    for s in hp.post:
        if s.action != RESTORE_MIRROR:  # pragma: no cover - the plan's only post step
            step(s)
    restore(True)
    j.append({"run": report.run_id, "event": "run_end",
              "healed": [o.lottery_id for o in report.outcomes if o.healed and o.before != "ok"]})
    return report


def _repair_all(hp: HealPlan, report: HealReport, sender: Sender, still_done, done: set[str], backend: Backend,
                j: Journal, progress: Callable[[LotteryOutcome], None] | None) -> None:
    """Each lottery's steps in order through the sender, then the re-read that alone can call it healed.

    On the CLI path a failed step ends its lottery's steps; over RPC a lottery's steps are in flight
    together, so each one's real outcome is recorded (the re-read then says what the chain holds)."""

    def reread(lp: LotteryPlan, out: LotteryOutcome) -> None:
        try:
            after = diff(backend, lp.lottery_id)
            out.after_diff, out.after, out.healed = after, after.state.value, after.state is State.OK
        except ChainChanged:
            raise  # the node answers for another chain: the run stops here, not one error per lottery
        except DualwriteError as e:
            out.error = out.error or f"re-read failed: {e}"
            out.error_kind = out.error_kind or _error_kind(e)
        j.append({"run": report.run_id, "event": "verify", "lottery_id": lp.lottery_id, "state": out.after,
                  "healed": out.healed}, sync=not sender.over_rpc)
        if progress:
            progress(out)

    for lp in hp.lotteries:
        out = LotteryOutcome(lp.lottery_id, lp.diff.state.value, lp.verdict)
        report.outcomes.append(out)
        if lp.verdict == "ok":
            out.after, out.healed = "ok", True
            if progress:
                progress(out)
            continue
        if lp.verdict != "repair":
            out.after = lp.diff.state.value
            if progress:
                progress(out)
            continue
        sender.room()
        left = {"steps": 0, "all_sent": False}

        def settled(o: SendOutcome, lp: LotteryPlan = lp, out: LotteryOutcome = out, left: dict = left) -> None:
            s: Step = o.call.ref
            if o.error is None:
                sender.record(o.call, "done", {"transaction_hash": o.txn_hash, "events": o.result.event_names()},
                              not sender.over_rpc)
                done.add(s.key)
                out.done.append(s.action)
            else:
                sender.record(o.call, "failed", {"error": str(o.error), **(
                    {"transaction_hash": o.txn_hash} if o.txn_hash else {})}, not sender.over_rpc)
                if isinstance(o.error, ChainChanged):
                    raise o.error  # recorded; nothing more is sent to a node that names another chain
                if out.error is None:
                    out.error, out.error_kind = str(o.error), _error_kind(o.error)
            left["steps"] -= 1
            if left["all_sent"] and left["steps"] == 0:
                reread(lp, out)

        for s in lp.steps:
            if out.error is not None and not sender.over_rpc:
                break  # the CLI path: a failed step ends this lottery's steps (the re-read says the rest)
            if still_done(s, lp):
                out.skipped.append(s.action)
                continue
            left["steps"] += 1
            function, args = _call(s)
            sender.send(Call(function, args, s, run=lambda s=s: _do(backend, s)), settled)
        left["all_sent"] = True
        if left["steps"] == 0:
            reread(lp, out)
    try:
        sender.drain()
    finally:
        sender.close()


__all__ = ["HealReport", "LotteryOutcome", "MirrorStep", "heal"]
