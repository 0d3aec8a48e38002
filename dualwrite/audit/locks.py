"""Advisory locks for heal: one per journal, one per chain.

Two heals on one journal would adopt each other's live run and send steps twice; two heals on
one chain would switch the mirror off under each other. ``flock`` locks are released by the
kernel when the holder dies (``kill -9`` included), so a crashed heal never leaves a stale lock.
A heal never waits: a second one says who holds the lock (pid, start time, command) and exits
with ``ExitCode.BUSY`` without acting.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from dualwrite.errors import HealBusy, InputError

#: options whose values may carry secrets (provider keys in URLs, settings files): never recorded
_SECRET_VALUED = ("--rpc-url", "--url", "--settings", "--config", "--profile")


def redacted_command(argv: list[str] | None = None) -> str:
    """The command line that holds a lock, safe to print: secret-valued options keep their name only."""
    argv = list(sys.argv if argv is None else argv)
    out: list[str] = [Path(argv[0]).name if argv else "?"]
    hide_next = False
    for a in argv[1:]:
        if hide_next:
            out.append("…")
            hide_next = False
        elif a in _SECRET_VALUED:
            out.append(a)
            hide_next = True
        elif a.split("=", 1)[0] in _SECRET_VALUED and "=" in a:
            out.append(a.split("=", 1)[0] + "=…")
        else:
            out.append(a)
    text = " ".join(out)
    return text if len(text) <= 300 else text[:300] + "…"


def lock_dir() -> Path:
    """Where per-chain locks live: ``DUALWRITE_LOCK_DIR``, else beside the default journal."""
    if os.environ.get("DUALWRITE_LOCK_DIR"):
        return Path(os.environ["DUALWRITE_LOCK_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dualwrite" / "locks"


class Lock:
    """One ``flock`` on ``path``, exclusive or shared; the holder's pid, start time and command are
    written into the file so a refused heal can name it."""

    def __init__(self, path: Path, what: str, *, exclusive: bool = True) -> None:
        self.path = Path(path)
        self.what = what
        self.exclusive = exclusive
        self.fd: int | None = None

    def acquire(self) -> "Lock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise InputError(f"{self.what} lock {self.path}: cannot create it ({e.strerror})") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise HealBusy(f"{self.what} is in use by another heal ({holder}; lock {self.path}): "
                           "nothing was done; run again when it has finished") from None
        except OSError as e:
            os.close(fd)
            raise InputError(f"{self.what} lock {self.path}: cannot lock it ({e.strerror})") from None
        self.fd = fd
        info = json.dumps({"pid": os.getpid(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "command": redacted_command(), "mode": "exclusive" if self.exclusive else "shared"})
        try:
            # shared holders overwrite each other's note: it names the latest one, which is enough to find them
            os.ftruncate(fd, 0)
            os.pwrite(fd, (info + "\n").encode(), 0)
        except OSError:
            pass  # the lock holds without the note; a refused heal then says "holder unknown"
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                if self.exclusive:
                    os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> "Lock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        info = json.loads(raw.splitlines()[0]) if raw else {}
    except (OSError, ValueError, IndexError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "holder unknown"
    return (f"pid {info.get('pid')}, started {info.get('started')}, {info.get('mode', 'exclusive')}, "
            f"command: {info.get('command')}")


__all__ = ["Lock", "lock_dir", "redacted_command"]
