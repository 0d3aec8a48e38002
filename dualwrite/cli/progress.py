"""Progress of long work (``verify``, ``cutover apply``, ``heal --apply``) on stderr.

The library never prints: it calls a callback once per row outcome (a verify result, a cutover
row, a heal outcome). This module turns those calls into what the reader of stderr needs:

- on a terminal, one bar redrawn in place: ``\\r`` and the line, at most 10 times a second; the
  cursor is hidden once when the bar starts and shown again once when it ends (a log of the
  session keeps one pair of escape codes, not one per redraw);
- anywhere else (a pipe, a CI log, a file), one plain line every ``DUALWRITE_PROGRESS`` seconds
  (default 5), as pip and docker do, and a last line with the totals when the work ends — only
  when a periodic line was printed (work shorter than one interval stays silent). The lines come
  from a timer, so a run stuck on one slow row still says where it is.

Each line has done/total, the rate, the ETA and the counts of the outcomes that went wrong.
``DUALWRITE_PROGRESS=off`` turns it off.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, TextIO

ENV = "DUALWRITE_PROGRESS"
DEFAULT_INTERVAL = 5.0
HIDE_CURSOR = "\033[?25l"
SHOW_CURSOR = "\033[?25h"
#: the fastest a terminal bar is redrawn
REDRAW_EVERY = 0.1


def interval_from_env() -> float | None:
    """Seconds between lines when stderr is not a terminal; None when progress is off."""
    text = os.environ.get(ENV, "").strip().lower()
    if not text:
        return DEFAULT_INTERVAL
    if text in ("off", "0", "no", "false", "none"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        return DEFAULT_INTERVAL  # a typo in an environment variable must not stop a cutover
    return seconds if 0 < seconds < 86400 else DEFAULT_INTERVAL


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """A callable taking one row outcome; ``classify(row)`` names the outcome that went wrong, or None.

    Thread-safe (``verify --jobs`` calls it from its workers). Use as a context manager; ``total``
    may be set later (heal knows it once its plan is read).
    """

    def __init__(self, label: str, total: int | None, classify: Callable[[object], str | None], *,
                 file: TextIO | None = None, interval: float | None = None, tty: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.classify = classify
        self.file = file if file is not None else sys.stderr
        self.tty = self.file.isatty() if tty is None else tty
        self.interval = interval
        self.done = 0
        self.bad: dict[str, int] = {}
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._lines = 0  # periodic lines printed (not a terminal)
        self._drawn = ""  # the last bar drawn (a terminal)
        self._drawn_at = 0.0
        self._bar_open = False

    # -- the callback ---------------------------------------------------------------------

    def __call__(self, row: object) -> None:
        kind = self.classify(row)
        with self._lock:
            self.done += 1
            if kind:
                self.bad[kind] = self.bad.get(kind, 0) + 1
            if self.tty and time.monotonic() - self._drawn_at >= REDRAW_EVERY:
                self._draw()

    # -- the lines ------------------------------------------------------------------------

    def line(self, final: bool = False) -> str:
        elapsed = time.monotonic() - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total is None:
            head = f"{self.label}: reading the chain ({_clock(elapsed)})" if not self.done else \
                f"{self.label}: {self.done} done"
        else:
            pct = 100 * self.done // self.total if self.total else 100
            head = f"{self.label}: {self.done}/{self.total} ({pct}%)"
        parts = [head]
        if self.done:
            parts.append(f"{rate:.1f}/s")
        if final:
            parts.append(f"in {_clock(elapsed)}")
        elif self.total is not None and self.done and rate > 0:
            parts.append(f"ETA {_clock(max(0, self.total - self.done) / rate)}")
        bad = ", ".join(f"{k} {v}" for k, v in sorted(self.bad.items()))
        return ", ".join(parts) + (f"; {bad}" if bad else "")

    def _draw(self, final: bool = False) -> None:
        """Redraw the terminal bar in place (called with the lock held)."""
        text = self.line(final)
        if self.total:
            width = 24
            filled = width * min(self.done, self.total) // self.total
            label, _, rest = text.partition(": ")
            text = f"{label} [{'#' * filled}{' ' * (width - filled)}] {rest}"
        try:
            columns = os.get_terminal_size(self.file.fileno()).columns or 80  # 0: a terminal with no size set
        except (AttributeError, OSError, ValueError):
            columns = 80
        text = text[:max(20, columns - 1)]  # a line that wraps could not be redrawn in place
        self._drawn_at = time.monotonic()
        if text == self._drawn:
            return
        pad = " " * max(0, len(self._drawn) - len(text))  # wipe what a longer previous line left
        self._drawn = text
        self.file.write("\r" + text + pad)
        self.file.flush()

    def _tick(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            with self._lock:
                self._lines += 1
                self.file.write(self.line() + "\n")
                self.file.flush()

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> Progress:
        self._t0 = time.monotonic()
        if self.tty:
            with self._lock:
                self.file.write(HIDE_CURSOR)
                self._bar_open = True
                self._draw()
        elif self.interval is not None:
            self._timer = threading.Thread(target=self._tick, name="dualwrite-progress", daemon=True)
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        with self._lock:
            if self._bar_open:
                self._draw(final=True)
                self.file.write(SHOW_CURSOR + "\n")
                self.file.flush()
                self._bar_open = False
            elif self._lines:
                self.file.write(self.line(final=True) + "\n")
                self.file.flush()


class _Off:
    """No progress: the callback does nothing."""

    total: int | None = None

    def __call__(self, row: object) -> None:
        pass

    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress(label: str, total: int | None, classify: Callable[[object], str | None]) -> Progress | _Off:
    """The reporter for stderr as it is now: a bar on a terminal, periodic lines elsewhere, or nothing
    (``DUALWRITE_PROGRESS=off``, or a single row on a terminal)."""
    interval = interval_from_env()
    if interval is None:
        return _Off()
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty and total is not None and total <= 1:
        return _Off()
    return Progress(label, total, classify, interval=interval, tty=tty)
