"""Apply a cutover plan: send each planned ``set_expected_hash`` once, in plan order, journalled.

Before each send the lottery's status is read again (one ``dual_write_status``): the planned
hash already pending means it landed (in this run's past or an earlier run's) and nothing is
sent; a different hash that the plan did not expect is a new conflict and the run stops.
Resuming after any crash is the same run again: lotteries the journal settled are skipped
without a read; one whose send was begun but not recorded (killed between submit and journal)
is looked up on chain — pending with the planned hash, or already archived, means it landed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from dualwrite import bridge
from dualwrite.backends.base import Backend
from dualwrite.cutover.journal import CutoverJournal, default_journal
from dualwrite.cutover.plan import Plan, PlanRow, Target, check_target, target_of
from dualwrite.errors import BackendError, ExitCode, MoveAbort, TransactionFailed
from dualwrite.sender import Call, Outcome as SendOutcome, Sender

#: drills only: ``PHASE:N`` makes the process kill itself (SIGKILL) at the N-th send of a run (``dualwrite.sender``)
KILL_AT_ENV = "DUALWRITE_CUTOVER_KILL_AT"


class Outcome(str, Enum):
    SENT = "sent"  # set_expected_hash sent now and committed
    REPLACED = "replaced"  # sent now over the conflicting hash the plan named (--replace)
    ALREADY_SET = "already_set"  # the planned hash is pending: nothing sent
    LANDED_EARLIER = "landed_earlier"  # an earlier run's unjournalled send is on chain: nothing sent
    SETTLED_EARLIER = "settled_earlier"  # the journal settled it in an earlier run: skipped without a read
    ARCHIVED = "archived"  # finalised since the plan (or consumed after an earlier send): nothing sent
    WOULD_SEND = "would_send"  # --dry-run
    NO_ACTION = "no_action"  # the plan sends nothing for it (already set, done, conflict kept, for heal)
    CONFLICT = "conflict"  # a hash the plan did not expect is pending now: the run stopped
    ABORTED = "aborted"  # the chain aborted the transaction
    FAILED = "failed"  # the backend failed (the send may or may not have landed: the next run finds out)
    NOT_REACHED = "not_reached"  # the run stopped before it

    def __str__(self) -> str:
        return self.value


@dataclass
class RowResult:
    lottery_id: int
    outcome: Outcome
    detail: str = ""
    transaction_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"lottery_id": self.lottery_id, "outcome": self.outcome.value, "detail": self.detail,
                "transaction_hash": self.transaction_hash}


@dataclass
class ApplyResult:
    plan_digest: str
    target: str
    journal: str | None
    dry_run: bool
    run_id: str | None = None
    resumed: bool = False
    rows: list[RowResult] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped early
    duration_s: float = 0.0
    in_flight: int = 1  # transactions in flight at most (over RPC; 1 on the CLI path)
    gap_repairs: int = 0  # lost transactions signed again with their sequence number (over RPC)

    def count(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for r in self.rows:
            out[r.outcome.value] += 1
        return out

    @property
    def exit_code(self) -> ExitCode:
        c = self.count()
        if c[Outcome.CONFLICT.value]:
            return ExitCode.MISMATCH
        if c[Outcome.FAILED.value]:
            return ExitCode.BACKEND
        if c[Outcome.ABORTED.value]:
            return ExitCode.ABORTED
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        counts = self.count()
        # "backend", as in every command's JSON (cutover status, verify, heal, diff); every outcome counted, zeros too
        return {"plan": self.plan_digest, "backend": self.target, "journal": self.journal, "dry_run": self.dry_run,
                "run": self.run_id, "resumed": self.resumed, "stopped": self.stopped,
                "duration_s": round(self.duration_s, 3), "in_flight": self.in_flight, "gap_repairs": self.gap_repairs,
                "counts": counts,
                "exit_code": int(self.exit_code),
                "lotteries": [r.to_json() for r in self.rows if r.outcome is not Outcome.NO_ACTION]}


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def apply(backend: Backend, plan: Plan, *, journal: Path | str | None = None, plan_path: Path | str | None = None,
          target: Target | None = None, max_tps: float | None = None, dry_run: bool = False,
          keep_going: bool = False, progress: Callable[[RowResult], None] | None = None,
          in_flight: int | None = None) -> ApplyResult:
    """Send what ``plan`` says on ``backend``; resumable: call it again with the same plan and journal.

    Over RPC up to ``in_flight`` transactions are in flight (``dualwrite.sender``); ``progress`` is called
    once per row outcome, in the order outcomes are known."""
    here = target or target_of(backend)
    check_target(plan, here, f"plan {plan_path}" if plan_path else "plan")
    if journal is None:
        if plan_path is None and not dry_run:
            raise ValueError("apply needs a journal path (or the plan's path, to put the journal beside it)")
        journal = default_journal(plan_path) if plan_path is not None else None
    result = ApplyResult(plan.digest, backend.describe(), None if dry_run else str(journal), dry_run)
    t0 = time.perf_counter()
    j = None if dry_run else CutoverJournal(journal).open()  # type: ignore[arg-type]
    try:
        prior = j.prior(plan.digest) if j else (CutoverJournal(journal).prior(plan.digest) if journal else None)
        if j:
            result.run_id = uuid.uuid4().hex[:12]
            result.resumed = bool(prior and prior.runs)
            j.append({"plan": plan.digest, "run": result.run_id,
                      "event": "run_resume" if result.resumed else "run_start", "target": here.describe,
                      "to_send": len(plan.to_send)})
        _run(backend, plan, j, prior, result, max_tps, dry_run, keep_going, progress, in_flight)
        if j:
            j.append({"plan": plan.digest, "run": result.run_id, "event": "run_end", "stopped": result.stopped,
                      "counts": {k: v for k, v in result.count().items() if v}})
    finally:
        if j:
            j.close()
    result.duration_s = time.perf_counter() - t0
    return result


#: ``started`` records written ahead with one fsync on the CLI path: in-process backends commit in microseconds,
#: so an fsync per send would be most of the run; a subprocess or network call costs far more than an fsync
INTENT_BATCH_IN_PROCESS = 64


def _run(backend: Backend, plan: Plan, j: CutoverJournal | None, prior, result: ApplyResult,
         max_tps: float | None, dry_run: bool, keep_going: bool, progress, in_flight: int | None = None) -> None:
    settled = prior.settled if prior else {}
    started_before = set(prior.started) if prior else set()
    sender = Sender(backend, lambda call, status, fields, sync: record(call.ref, status, sync, **fields),
                    j.sync if j else (lambda: None), in_flight=in_flight, max_tps=max_tps)
    result.in_flight = sender.in_flight
    batch = INTENT_BATCH_IN_PROCESS if getattr(backend, "in_process", False) else 1
    candidates = [r for r in plan.rows if r.action != "none" and r.lottery_id not in settled]
    position = {r.lottery_id: k for k, r in enumerate(candidates)}
    order = {r.lottery_id: k for k, r in enumerate(plan.rows)}
    intent_until = 0  # candidates[:intent_until] have a durable "started" record (the CLI path)
    # one read of every finalised id: a planned lottery archived since the plan is never sent
    archived = set(bridge.all_finalized(backend))

    def record(row: PlanRow, status: str, sync: bool = False, **extra: Any) -> None:
        if j:
            j.append({"plan": plan.digest, "run": result.run_id, "event": "step", "lottery_id": row.lottery_id,
                      "status": status, "expected_hash": row.expected_hash, **extra}, sync=sync)

    def intend(k: int) -> None:
        """Make the "started" record of candidates[k] durable (with the next few, one fsync): the CLI path."""
        nonlocal intent_until
        if j is None or k < intent_until:
            return
        end = min(len(candidates), k + batch)
        for r in candidates[k:end]:
            record(r, "started")
        j.sync()  # also syncs every outcome record written since the last sync
        intent_until = end

    def finish(row: PlanRow, outcome: Outcome, detail: str = "", txn: str | None = None) -> None:
        rr = RowResult(row.lottery_id, outcome, detail, txn)
        result.rows.append(rr)
        if progress:
            progress(rr)

    def call_of(row: PlanRow) -> Call:
        lid, h = row.lottery_id, bytes.fromhex(row.expected_hash[2:])
        return Call(*bridge.set_expected_call(lid, h), row, run=lambda: bridge.set_expected(backend, lid, h))

    def sent(o: SendOutcome, replaced: str | None) -> None:
        row: PlanRow = o.call.ref
        lid = row.lottery_id
        e = o.error
        if e is None:
            record(row, "done", transaction_hash=o.txn_hash, replaced=replaced)
            finish(row, Outcome.REPLACED if replaced else Outcome.SENT, "", o.txn_hash)
        elif isinstance(e, (MoveAbort, TransactionFailed)):
            record(row, "failed", error=str(e), transaction_hash=o.txn_hash)
            finish(row, Outcome.ABORTED, str(e), o.txn_hash)
            if not keep_going and not result.stopped:
                result.stopped = f"lottery {lid}: the chain aborted: {e}"
        elif o.never_executed:
            # certainly not on chain: the next run re-checks it and sends it again
            record(row, "failed", error=str(e), transaction_hash=o.txn_hash, never_executed=True)
            finish(row, Outcome.FAILED, str(e), o.txn_hash)
            result.stopped = result.stopped or f"lottery {lid}: {e} (run apply again to send it)"
        elif isinstance(e, BackendError):
            record(row, "failed", error=str(e), unknown=True, transaction_hash=o.txn_hash)
            # it may have been submitted: the next run reads the chain before sending anything
            result.stopped = result.stopped or f"lottery {lid}: the backend failed: {e}"
            finish(row, Outcome.FAILED, str(e), o.txn_hash)
        else:
            record(row, "failed", error=str(e))
            result.stopped = result.stopped or f"lottery {lid}: {e}"
            finish(row, Outcome.FAILED, str(e))

    # over RPC: what an earlier run began is looked up by hash first (waited for while it may still commit)
    begun = [(row, prior.txns[row.lottery_id]) for row in candidates
             if prior and row.lottery_id in started_before and prior.txns.get(row.lottery_id)]
    landed: dict[int, str] = {}
    if begun and sender.over_rpc and j is not None:
        for o in sender.settle_begun([(call_of(row), txns) for row, txns in begun]):
            row = o.call.ref
            if o.error is None:
                record(row, "done", transaction_hash=o.txn_hash, landed_earlier=True)
                landed[row.lottery_id] = o.txn_hash or ""
            else:  # aborted, or certainly never executed: nothing of it is on chain; re-checked and sent below
                record(row, "failed", error=str(o.error), transaction_hash=o.txn_hash, never_executed=o.never_executed)
                started_before.discard(row.lottery_id)
        j.sync()

    ahead: dict[int, Any] = {}  # over RPC: re-check reads made together, a window ahead of the sends
    todo = [r.lottery_id for r in candidates if r.lottery_id not in landed]
    at = {lid: k for k, lid in enumerate(todo)}

    def status_of(lid: int):
        if not sender.over_rpc or lid not in at:
            return bridge.status(backend, lid)
        if lid not in ahead:
            k = at[lid]
            chunk = todo[k:k + max(8, sender.in_flight)]

            def read(i: int):
                try:
                    return bridge.status(backend, i)
                except BackendError as e:
                    return e

            ahead.update(zip(chunk, sender.map(read, chunk)))
        got = ahead.pop(lid)
        if isinstance(got, BackendError):
            raise got
        return got

    for row in plan.rows:
        if row.action != "none" and row.lottery_id not in settled:
            sender.room()  # earlier outcomes first: an abort among them stops the run before this row
        if result.stopped:
            if row.action != "none":
                finish(row, Outcome.NOT_REACHED)
            continue
        if row.action == "none":
            result.rows.append(RowResult(row.lottery_id, Outcome.NO_ACTION, row.state.value))
            continue
        lid = row.lottery_id
        if lid in settled:
            finish(row, Outcome.SETTLED_EARLIER, f"journal: {settled[lid]}")
            continue
        if lid in landed:
            finish(row, Outcome.LANDED_EARLIER, "an earlier run's transaction committed", landed[lid] or None)
            continue
        try:
            pending = _hex(status_of(lid).expected_hash)
            if pending is None and (lid in archived or lid in started_before):
                # archived since the plan, or an earlier run's send landed and was consumed since
                if lid in archived or bridge.get_summary(backend, lid) is not None:
                    record(row, "archived")
                    finish(row, Outcome.ARCHIVED, "archived since the plan: not sent"
                           if lid not in started_before else "an earlier run's send landed and was consumed")
                    continue
        except BackendError as e:
            result.stopped = f"lottery {lid}: the chain could not be read: {e}"
            finish(row, Outcome.FAILED, str(e))
            continue
        if pending == row.expected_hash:
            was = lid in started_before
            record(row, "present", landed_earlier=was)
            finish(row, Outcome.LANDED_EARLIER if was else Outcome.ALREADY_SET)
            continue
        if pending is not None and not (row.action == "replace" and pending == row.chain_expected_hash):
            record(row, "conflict", chain_expected_hash=pending)
            result.stopped = (f"lottery {lid}: new conflict: {pending} is pending, the plan expected "
                              f"{row.chain_expected_hash or 'nothing'}; stopped (re-plan to review it)")
            finish(row, Outcome.CONFLICT, f"pending {pending}, planned {row.expected_hash}")
            continue
        if dry_run:
            finish(row, Outcome.WOULD_SEND, "replace" if pending else "set")
            continue
        if not sender.over_rpc:
            intend(position[lid])
        sender.send(call_of(row), lambda o, replaced=pending: sent(o, replaced), write_ahead=False)
    try:
        sender.drain()
    finally:
        sender.close()
    result.rows.sort(key=lambda rr: order.get(rr.lottery_id, 0))
    result.gap_repairs = sender.gap_repairs


__all__ = ["ApplyResult", "KILL_AT_ENV", "Outcome", "RowResult", "apply"]
