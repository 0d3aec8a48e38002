"""Shared by the monitor tests: parse exposition text, fault a state file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose stderr is collected by a thread (never a blocked pipe)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 20) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        self._t.join(5)
        return self.p.returncode


