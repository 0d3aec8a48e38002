"""Shared by the monitor tests: parse exposition text, fault a state file."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, keyed by (name, sorted labels)."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


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
