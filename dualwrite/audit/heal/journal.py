"""The heal journal's records: which run acted on which chain, every step, the mirror it left.

The file's rules (append, fsync before the next action, torn records, reading back, repair) are
the shared journal's (``dualwrite/journal.py``). A run is tied to the chain it acts on
(``Backend.chain_identity()``), and only a heal on that chain continues it, and only while its last
record is recent (``DEFAULT_RESUME_WITHIN``); an older one is set aside and said so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dualwrite.audit.heal.plan import CLEAR, ENABLE_MIRROR, MIRROR, RESTORE_MIRROR, SET, default_journal
from dualwrite.audit.locks import Lock
from dualwrite.backends.base import Backend, identity_key, identity_of, without_read_path
from dualwrite.errors import InputError
from dualwrite.journal import MAX_RECORD_BYTES, JsonlJournal, Line
from dualwrite.sender import journalled_txn


#: how old (since its last record) an unfinished run may be and still be continued: an interrupted heal is
#: normally re-run within the same shift; past this, the chain has likely been worked on by hand since
DEFAULT_RESUME_WITHIN = timedelta(hours=12)
_ACTIONS = (ENABLE_MIRROR, RESTORE_MIRROR, SET, MIRROR, CLEAR)
_STATUSES = ("started", "done", "failed", "skipped")


def record_problem(rec: Any) -> str | None:
    """Why a parsed JSON line is not a heal journal record, or None."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not a record object"
    for k in ("run", "event", "ts"):
        if k in rec and not isinstance(rec[k], str):
            return f"its {k!r} is not a string"
    if rec.get("event") == "step":
        if not isinstance(rec.get("key"), str):
            return "a step without a 'key'"
        if rec.get("action") not in _ACTIONS:
            return f"a step with an unknown action {str(rec.get('action'))[:40]!r}"
        if rec.get("status") not in _STATUSES:
            return f"a step with an unknown status {str(rec.get('status'))[:40]!r}"
        lid = rec.get("lottery_id")
        if lid is not None and (isinstance(lid, bool) or not isinstance(lid, int)):
            return "a step whose lottery_id is not an integer"
    return None


@dataclass
class RunInfo:
    """What the journal says about one run."""

    run: str
    backend: str = "?"
    chain_key: str | None = None
    chain: dict[str, str] | None = None
    last_ts: datetime | None = None
    ended: bool = False
    set_aside: bool = False
    done: set[str] = field(default_factory=set)
    #: the mirror as this run left it: "on" (it turned it on, confirmed), "uncertain" (its enable was cut
    #: short before it was confirmed), None (it did not turn it on, or turned it off again)
    mirror: str | None = None
    #: over RPC: steps begun and not settled, by key: (action, lottery id, the transactions journalled for it)
    begun: dict[str, tuple[str, int | None, list[dict]]] = field(default_factory=dict)

    @property
    def chain_now(self) -> str | None:
        """The key this dualwrite gives the run's chain: from the identity the run recorded (an older
        dualwrite's identity with the read path in it names the same chain without it), else its key."""
        if self.chain is not None:
            return identity_key(without_read_path(self.chain))
        return self.chain_key


class Journal(JsonlJournal):
    """Heal's record vocabulary: ``run_start`` (with the chain's identity and the plan), ``run_resume``,
    ``run_set_aside``, ``step`` (``key``, ``action``, ``status``), ``verify``, ``run_end``; each synced
    before the next action. The lock is ``JOURNAL.lock`` (``locks.py``), held for the whole run."""

    what = "heal journal"
    unit = "record"

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def validate(self, rec: Any) -> str | None:
        return record_problem(rec)

    def damaged(self, line: Line) -> InputError:
        problem = line.problem or ""
        return InputError(
            f"heal journal {self.path}: record {line.number} is {problem}"
            f"{'' if problem.startswith('not') else ' (not a record dualwrite writes)'}; "
            f"`dualwrite heal --journal-repair` sets such lines aside in {self.rejected_path.name}, "
            "or pass --journal NEW to start a new journal")

    def runs(self) -> dict[str, RunInfo]:
        """Every run the journal knows, in the order they started."""
        runs: dict[str, RunInfo] = {}
        for r in self.records():
            rid = r.get("run")
            if not rid:
                continue
            ev = r.get("event")
            if ev == "run_set_aside":
                if rid in runs:
                    runs[rid].set_aside = True
                continue
            if ev == "run_start":
                chain = r.get("chain") if isinstance(r.get("chain"), dict) else None
                runs[rid] = RunInfo(rid, str(r.get("backend", "?")), r.get("chain_key") if isinstance(
                    r.get("chain_key"), str) else None, chain)
            run = runs.get(rid)
            if run is None:
                continue
            try:
                run.last_ts = datetime.fromisoformat(r["ts"]) if "ts" in r else run.last_ts
                if run.last_ts is not None and run.last_ts.tzinfo is None:
                    run.last_ts = run.last_ts.replace(tzinfo=timezone.utc)
            except ValueError:
                run.last_ts = None  # an unreadable time: treated as too old to continue
            if ev == "run_end":
                run.ended = True
            elif ev == "step":
                status, action = r["status"], r["action"]
                if status == "done":
                    run.done.add(r["key"])
                if status == "started" and (t := journalled_txn(r)) is not None:
                    run.begun.setdefault(r["key"], (action, r.get("lottery_id"), []))[2].append(t)
                elif status in ("done", "failed", "skipped"):
                    run.begun.pop(r["key"], None)
                if action == ENABLE_MIRROR:
                    if status == "done":
                        run.mirror = "on"
                    elif status == "started":
                        run.mirror = "uncertain"
                    elif status == "failed" and run.mirror == "uncertain":
                        run.mirror = None
                if action == RESTORE_MIRROR and status in ("done", "skipped"):
                    run.mirror = None
        return runs

    def unfinished_run(self, backend: Backend | str) -> tuple[str, set[str], bool] | None:
        """(run id, step keys done, mirror left on by it) of the latest unfinished run on this chain."""
        key = identity_key(identity_of(backend)) if not isinstance(backend, str) else None
        for run in reversed(list(self.runs().values())):
            if not run.ended and not run.set_aside and (run.chain_now == key if key else run.backend == backend):
                return run.run, run.done, run.mirror is not None
        return None


def repair_journal(path: Path | None = None) -> tuple[Path, int]:
    """``heal --journal-repair``: set the lines that are not records aside, under the journal lock."""
    j = Journal(path or default_journal())
    with Lock(j.lock_path, f"heal journal {j.path}"):
        return j.rejected_path, j.repair()


__all__ = ["DEFAULT_RESUME_WITHIN", "Journal", "MAX_RECORD_BYTES", "RunInfo", "record_problem", "repair_journal"]
