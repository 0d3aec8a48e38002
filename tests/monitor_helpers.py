"""Shared by the monitor tests: parse exposition text, back-date a pending expectation, fault a state file."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from prometheus_client.parser import text_string_to_metric_families

from dualwrite.sim.store import u64_to_sql


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, keyed by (name, sorted labels)."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def backdate_pending(state: Path, lottery_id: int, seconds: float) -> int:
    """Move the commit time of the lottery's newest Started event back by ``seconds``.

    The simulator's event-time mechanism (``Chain.last_event_time``) is what ``pending_since``
    reads; without a simulator clock this is how a pending expectation gets old. Returns the
    number of transactions changed (1).
    """
    conn = sqlite3.connect(str(state), isolation_level=None)
    try:
        row = conn.execute("SELECT MAX(e.version) FROM events e WHERE e.lottery_id = ? AND "
                           "substr(e.type, -length('::ArchiveDualWriteStartedEvent')) = '::ArchiveDualWriteStartedEvent'",
                           (u64_to_sql(lottery_id),)).fetchone()
        assert row and row[0] is not None, f"no Started event for lottery {lottery_id}"
        cur = conn.execute("UPDATE transactions SET timestamp_us = timestamp_us - ? WHERE version = ?",
                           (int(seconds * 1e6), row[0]))
        return cur.rowcount
    finally:
        conn.close()


@contextmanager
def state_file_gone(state: Path, replacement: str = "directory") -> Iterator[None]:
    """A real fault for every reader, root included: the state file (and its WAL files) moved
    away and a directory (or a file of garbage) in its place, so opening it fails; put back on exit."""
    aside = state.with_name(state.name + ".aside")
    aside.mkdir()
    moved = []
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(state) + suffix)
        if p.exists():
            os.replace(p, aside / p.name)
            moved.append(p)
    if replacement == "directory":
        state.mkdir()
    else:
        state.write_bytes(b"this is not a SQLite file\n" * 100)
    try:
        yield
    finally:
        state.rmdir() if state.is_dir() else state.unlink()
        for p in moved:
            os.replace(aside / p.name, p)
        shutil.rmtree(aside)
