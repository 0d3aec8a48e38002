"""The cutover journal's records: append-only JSON Lines, each record synced before the next chain call.

The file's rules (open, lock, append, fsync, group commit, torn records, reading back) are the
shared journal's (``dualwrite/journal.py``); heal's journal follows the same ones. A bulk run keeps
the file open for the whole run (one ``write`` + ``fsync`` per record, not an open per record),
locked, so two ``apply`` runs of one plan cannot interleave.

Group commit: a ``started`` record says "may be sent from now on" and is synced before the send
(write-ahead); apply writes the ``started`` records of the next few lotteries with one fsync, and
the outcome records after each send are synced by the next fsync, always before the next send.

The journal is a record, not the source of truth: after a crash the chain says what landed
(the status read before each send); the journal says what was attempted, so a send whose
outcome is unknown is looked up on chain before anything is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dualwrite.journal import JsonlJournal
from dualwrite.sender import journalled_txn
from dualwrite.errors import InputError

#: step statuses that settle a lottery for this plan: never touched again by a later run
SETTLED = ("done", "present", "archived")


@dataclass
class PriorRuns:
    """What earlier runs of one plan recorded."""

    runs: int = 0
    settled: dict[int, str] = field(default_factory=dict)  # lottery -> settling status
    started: set[int] = field(default_factory=set)  # a send began and no outcome was recorded
    finished: bool = False  # the last run reached its end
    #: over RPC: the transactions (hash, sequence number, expiry, chain id) journalled for each begun lottery
    txns: dict[int, list[dict]] = field(default_factory=dict)


def default_journal(plan_path: Path | str) -> Path:
    """Beside the plan: a plan and the record of applying it travel together."""
    p = Path(plan_path)
    return p.with_name(p.name + ".journal.jsonl")


class CutoverJournal(JsonlJournal):
    """The cutover's record vocabulary: ``run_start``/``run_resume``/``run_end`` and per-lottery ``step``
    records, each naming the plan's digest (one journal may hold several plans)."""

    what = "cutover journal"
    unit = "line"

    def busy(self) -> InputError:
        return InputError(f"cutover journal {self.path}: another apply of this plan is running "
                          "(it holds the journal's lock); wait for it or stop it")

    def open(self, *, lock: bool = True) -> "CutoverJournal":
        """Open for appending and take the lock; a second ``apply`` of the same journal is refused."""
        super().open(lock=lock)
        return self

    def prior(self, plan_digest: str) -> PriorRuns:
        p = PriorRuns()
        for r in self.records():
            if r.get("plan") != plan_digest:
                continue
            ev = r.get("event")
            if ev in ("run_start", "run_resume"):
                p.runs += 1
                p.finished = False
            elif ev == "run_end":
                p.finished = True
            elif ev == "step":
                lid, st = r.get("lottery_id"), r.get("status")
                if not isinstance(lid, int):
                    continue
                if st == "started":
                    p.started.add(lid)
                    t = journalled_txn(r)
                    if t is not None:
                        p.txns.setdefault(lid, []).append(t)
                elif st in SETTLED:
                    p.settled[lid] = st
                    p.started.discard(lid)
                    p.txns.pop(lid, None)
                elif st in ("failed", "conflict") and not r.get("unknown"):
                    # the call ran to an answer (an abort, a refusal, an expiry unknown to the node): nothing of it
                    # is on chain (a backend failure mid-send is "unknown": it may have landed)
                    p.started.discard(lid)
                    p.txns.pop(lid, None)
        return p


__all__ = ["CutoverJournal", "PriorRuns", "SETTLED", "default_journal"]
