"""The append-only JSON Lines journal both ``heal --apply`` and ``cutover apply`` write.

One record per line, ``ts`` first in time, written whole with one ``write`` and made durable with
``fsync`` before the chain call it announces (write-ahead). What is shared lives here: opening for
append (the file's directory synced when it is new), the optional ``flock`` of the file for the
whole run, appending with or without a sync (group commit: the caller syncs before its next chain
call, so every record is on disk before the action after it), closing a torn last line before
appending, reading the records back as a stream (a bounded line length, UTF-8, JSON objects only),
telling a torn record from a crash (skipped) from damage (refused, naming the line), and setting
damaged lines aside. What differs — the two record vocabularies — lives beside each user:
``dualwrite/audit/heal/journal.py`` (runs, steps, the mirror) and ``dualwrite/cutover/journal.py``
(plan runs, per-lottery steps). The sender's transaction records (hash, sequence number, expiry,
outcome) go through either, see ``dualwrite/sender.py``.

On-disk format: unchanged from the two journals this replaces (their files read and resume as before).
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from dualwrite.errors import InputError

#: a journal line longer than this is not a record dualwrite wrote (its largest is a heal plan: ~1 KiB a lottery)
MAX_RECORD_BYTES = 16 * 1024 * 1024
TORN = "torn"


def is_torn(line: str, err: json.JSONDecodeError) -> bool:
    """A record cut short by a crash mid-write: the start of an object that stops early — not other garbage.

    The action after a torn record never ran, so a journal reader may skip it; anything else is damage."""
    t = line.rstrip()
    return t.startswith("{") and (not t.endswith("}") or err.pos >= len(t))


@dataclass(frozen=True)
class Line:
    """One non-blank line of a journal: where it is, the record, or why it is not one (``TORN``, or damage)."""

    number: int
    start: int
    end: int
    record: Any
    problem: str | None


class JsonlJournal:
    """The file and its rules; a subclass gives the vocabulary (``validate``) and its wording (``what``)."""

    #: how messages name the file: "heal journal", "cutover journal"
    what = "journal"
    #: how messages name a damaged line's position: "record" (heal) or "line" (cutover)
    unit = "line"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    # -- the vocabulary (subclasses) ------------------------------------------------------------------

    def validate(self, rec: Any) -> str | None:
        """Why a parsed JSON line is not one of this journal's records, or None."""
        return None if isinstance(rec, dict) else f"a JSON {type(rec).__name__}, not a record object"

    def damaged(self, line: Line) -> InputError:
        """The error for a damaged line met while reading the records."""
        return InputError(f"{self.what} {self.path}: {self.unit} {line.number} is {line.problem}")

    def busy(self) -> InputError:
        """The error when another process holds the file's lock."""
        return InputError(f"{self.what} {self.path}: another run holds its lock; wait for it or stop it")

    # -- reading --------------------------------------------------------------------------------------

    @property
    def rejected_path(self) -> Path:
        return self.path.with_name(self.path.name + ".rejected")

    def scan(self) -> Iterator[Line]:
        """Every non-blank line, streamed (a line is never held past ``MAX_RECORD_BYTES``)."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise InputError(f"{self.what} {self.path}: is a directory") from None
        except OSError as e:
            raise InputError(f"{self.what} {self.path}: cannot read ({e.strerror})") from None
        with f:
            n, pos = 0, 0
            while True:
                raw = f.readline(MAX_RECORD_BYTES + 1)
                if not raw:
                    return
                start = pos
                overlong = len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n")
                while overlong:  # skip to the end of this line without holding it
                    more = f.readline(1 << 20)
                    pos += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                pos += len(raw)
                n += 1
                if not raw.strip():
                    continue
                yield Line(n, start, pos, *self._parse(raw, overlong))

    def _parse(self, raw: bytes, overlong: bool) -> tuple[Any, str | None]:
        if overlong:
            return None, f"longer than {MAX_RECORD_BYTES} bytes"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return None, f"not UTF-8 (byte offset {e.start} in the line)"
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as e:
            # a torn record from a crash mid-write (the action after it never ran; a later run closed the
            # line and appended after it): the start of a record, cut short — not something else
            if is_torn(text, e):
                return None, TORN
            return None, f"not JSON ({e.msg} at column {e.colno})"
        except (RecursionError, ValueError) as e:  # nesting too deep; an integer of 5000 digits
            return None, f"not a record ({type(e).__name__})"
        return rec, self.validate(rec)

    def records(self) -> list[dict[str, Any]]:
        """The records in order; torn ones skipped; a damaged line raises ``damaged``."""
        out = []
        for line in self.scan():
            if line.problem == TORN:
                continue
            if line.problem:
                raise self.damaged(line)
            out.append(line.record)
        return out

    def repair(self) -> int:
        """Move every line that is not a record (torn ones included) to ``FILE.rejected`` (appended, byte for
        byte); returns how many. The caller holds the journal's lock. The journal is rewritten whole
        (temporary file + rename)."""
        bad = {(x.start, x.end) for x in self.scan() if x.problem}
        if not bad:
            return 0
        tmp = self.path.with_name(f".{self.path.name}.repair.tmp")
        try:
            with open(self.path, "rb") as src, open(tmp, "wb") as good, open(self.rejected_path, "ab") as rej:
                for x in self.scan():
                    out = rej if (x.start, x.end) in bad else good
                    src.seek(x.start)
                    left, chunk = x.end - x.start, b""
                    while left:
                        chunk = src.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        out.write(chunk)
                        left -= len(chunk)
                    if not chunk.endswith(b"\n"):
                        out.write(b"\n")
                good.flush()
                os.fsync(good.fileno())
                rej.flush()
                os.fsync(rej.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise InputError(f"{self.what} {self.path}: cannot repair it ({e.strerror})") from None
        return len(bad)

    # -- writing --------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self, *, lock: bool = False) -> "JsonlJournal":
        """Open for appending for a whole run; ``lock`` takes an exclusive ``flock`` of the file (``busy``
        when another process has it). A torn last line is closed, so the next record is a line of its own."""
        fd = self._open_fd()
        if lock:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self.busy() from None
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":
                os.write(fd, b"\n")
        except OSError as e:
            os.close(fd)
            raise InputError(f"{self.what} {self.path}: cannot write it ({e.strerror})") from None
        self._fd = fd
        return self

    def _open_fd(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            if new:
                _fsync_dir(self.path.parent)  # a new file: its directory entry must survive a crash too
        except OSError as e:
            raise InputError(f"{self.what} {self.path}: cannot open it ({e.strerror})") from None
        return fd

    def append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        """Write one record whole (``ts`` added); ``sync=False`` leaves the fsync to the next synced record.

        Not opened: a one-shot append (open, close a torn last line, write, fsync, close)."""
        record = {"ts": datetime.now(timezone.utc).isoformat(), **record}
        data = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        if self._fd is None:
            self.open()
            try:
                self._write(data, True)
            finally:
                self.close()
            return
        self._write(data, sync)

    def _write(self, data: bytes, sync: bool) -> None:
        try:
            os.write(self._fd, data)  # type: ignore[arg-type]
            if sync:
                os.fsync(self._fd)  # type: ignore[arg-type]
        except OSError as e:
            raise InputError(f"{self.what} {self.path}: cannot write it ({e.strerror})") from None

    def sync(self) -> None:
        """Make every record written so far durable (one fsync for a group of records)."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as e:
                raise InputError(f"{self.what} {self.path}: cannot write it ({e.strerror})") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> "JsonlJournal":
        return self if self.is_open else self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["JsonlJournal", "Line", "MAX_RECORD_BYTES", "TORN", "is_torn"]
