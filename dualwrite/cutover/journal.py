"""The cutover journal: append-only JSON Lines, each record synced before the next chain call.

Same conventions as the heal journal (one JSON object per line, ``ts`` first, a torn last
line from a crash is closed and skipped, never rewritten), with two differences a bulk run
needs: the file stays open for the whole run (one ``write`` + ``fsync`` per record, not an
open per record), and it is locked, so two ``apply`` runs of one plan cannot interleave.

Group commit: a ``started`` record says "may be sent from now on" and is synced before the send
(write-ahead); apply writes the ``started`` records of the next few lotteries with one fsync, and
the outcome records after each send are synced by the next fsync, always before the next send.

The journal is a record, not the source of truth: after a crash the chain says what landed
(the status read before each send); the journal says what was attempted, so a send whose
outcome is unknown is looked up on chain before anything is sent again.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dualwrite.jsonl import is_torn
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


def default_journal(plan_path: Path | str) -> Path:
    """Beside the plan: a plan and the record of applying it travel together."""
    p = Path(plan_path)
    return p.with_name(p.name + ".journal.jsonl")


class CutoverJournal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    # -- reading --------------------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as e:
            raise InputError(f"cutover journal {self.path}: cannot read ({e.strerror})") from None
        lines = text.split("\n")
        out = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                if is_torn(line, e):  # killed mid-write: that send's outcome is found on chain
                    continue
                raise InputError(f"cutover journal {self.path}: line {n} is not JSON") from None
            except (RecursionError, ValueError) as e:  # nesting too deep; an integer of 5000 digits
                raise InputError(f"cutover journal {self.path}: line {n} is not a record ({type(e).__name__})") from None
            if not isinstance(rec, dict):
                raise InputError(f"cutover journal {self.path}: line {n} is not a JSON object")
            out.append(rec)
        return out

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
                elif st in SETTLED:
                    p.settled[lid] = st
                    p.started.discard(lid)
                elif st in ("failed", "conflict") and not r.get("unknown"):
                    # the call ran to an answer (an abort, a refusal): nothing of it is on chain
                    # (a backend failure mid-send is "unknown": it may have landed)
                    p.started.discard(lid)
        return p

    # -- writing --------------------------------------------------------------------------------------

    def open(self) -> "CutoverJournal":
        """Open for appending and take the lock; a second ``apply`` of the same journal is refused."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise InputError(f"cutover journal {self.path}: cannot open ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"cutover journal {self.path}: another apply of this plan is running "
                             "(it holds the journal's lock); wait for it or stop it") from None
        end = os.lseek(fd, 0, os.SEEK_END)
        if end and os.pread(fd, 1, end - 1) != b"\n":
            os.write(fd, b"\n")  # close a torn last line: the next record is a line of its own
        if end == 0:
            _fsync_dir(self.path.parent)  # a new file: its directory entry must survive a crash too
        self._fd = fd
        return self

    def append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        """Write one record whole; ``sync=False`` leaves the fsync to the next synced record (group commit:
        the caller syncs before its next chain call, so every record is on disk before the action after it)."""
        if self._fd is None:
            raise RuntimeError("journal not open")
        record = {"ts": datetime.now(timezone.utc).isoformat(), **record}
        data = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        os.write(self._fd, data)
        if sync:
            os.fsync(self._fd)

    def sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> "CutoverJournal":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["CutoverJournal", "PriorRuns", "SETTLED", "default_journal"]
