"""What only the event stream tells: when an expectation was registered, which ids the legacy archive holds.

``EventIndex`` scans ``ArchiveDualWriteStartedEvent`` and ``LegacySummaryEvent`` over the node's
``GET rpc/v3/events/{type}`` (paged to the end), up to the latest block, once per run. With a
checkpoint file it is incremental: the file keeps the next height to read and what was learnt
(the latest registration of each lottery, the ids history_bridge recorded, block times), so the
next run reads only the blocks after it. A checkpoint is only ever created on purpose
(``dualwrite events --init-checkpoint FILE``); a path that does not exist is an error, never a new file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dualwrite.backends.base import ModuleAddresses
from dualwrite.errors import BackendError, InputError
from dualwrite.words import count

CHECKPOINT_FORMAT = "dualwrite-events-checkpoint/1"
EVENTS_PAGE = 100  # the node's largest page
#: the budget of one scan of one event type (``--events-max-pages``, ``--events-timeout``): a node whose
#: cursor never ends cannot keep a run reading; past it the scan stops and says where
EVENTS_MAX_PAGES = 10_000
EVENTS_TIMEOUT_S = 900.0

#: the events of the three modules, by the short kind names ``dualwrite events --kind`` takes
KINDS: dict[str, tuple[str, str, str]] = {
    "started": ("lottery_multi", "legacy_bridge", "ArchiveDualWriteStartedEvent"),
    # in the order one finalisation emits them: mirror, notify, store
    "legacy": ("lottery", "history_bridge", "LegacySummaryEvent"),
    "completed": ("lottery_multi", "legacy_bridge", "ArchiveDualWriteCompletedEvent"),
    "finalized": ("lottery_multi", "history", "LotteryFinalizedEvent"),
    "imported": ("lottery_multi", "history", "LegacySummaryImportedEvent"),
    "rolled-back": ("lottery_multi", "history", "LegacySummaryRolledBackEvent"),
    "classified": ("lottery_multi", "history", "LegacySummaryClassificationUpdatedEvent"),
}
INDEX_KINDS = ("started", "legacy")


def event_type(addresses: ModuleAddresses, kind: str) -> str:
    home, module, name = KINDS[kind]
    return f"{getattr(addresses, home)}::{module}::{name}"


def kind_of(type_name: str) -> str:
    name = type_name.rsplit("::", 1)[-1]
    return next((k for k, v in KINDS.items() if v[2] == name), name)


class EventScanStopped(BackendError):
    """An events scan that could not end: the node repeated a cursor, or the scan ran past its page or
    time budget. The message says where it stopped (the last block height read, the cursor to resume)."""


def _shown(cursor: str | None) -> str:
    if cursor is None:
        return "none"
    return cursor if len(cursor) <= 200 and cursor.isascii() and cursor.isprintable() and " " not in cursor \
        else f"(not shown: {len(cursor)} characters)"


def page_through(source, event_type: str, start_height: int | None = None, end_height: int | None = None,
                 cursor: str | None = None, *, want: int | None = None):
    """Pages of ``event_type`` from ``source.events_page`` to the end (an empty cursor or page), or until
    ``want`` events: yields ``(events, the cursor after them)``. A cursor the node gave before (it would
    page forever), more pages than ``source.events_max_pages`` or longer than ``source.events_timeout``
    seconds raise ``EventScanStopped`` naming the last height read and the cursor to resume from."""
    max_pages = getattr(source, "events_max_pages", None) or EVENTS_MAX_PAGES
    budget = getattr(source, "events_timeout", None) or EVENTS_TIMEOUT_S
    give_up = time.monotonic() + budget
    seen = {cursor} if cursor else set()
    pages = got = 0
    last_height = start_height
    kind = kind_of(event_type)

    def stopped(why: str) -> EventScanStopped:
        where = f"block height {last_height}" if last_height is not None else "the start"
        return EventScanStopped(
            f"{getattr(source, 'url', 'node')}: events {event_type.rsplit('::', 1)[-1]}: {why}; stopped after "
            f"{count(pages, 'page')} ({count(got, 'event')}) at {where}, cursor {_shown(cursor)} (resume: dualwrite events --kind "
            f"{kind} --cursor CURSOR, or --from-height {last_height if last_height is not None else 0})")

    while True:
        if pages >= max_pages:
            raise stopped(f"more than {max_pages} pages (--events-max-pages)")
        if time.monotonic() > give_up:
            raise stopped(f"longer than {budget:g}s (--events-timeout)")
        size = EVENTS_PAGE if want is None else min(EVENTS_PAGE, want - got)
        data, nxt = source.events_page(event_type, start_height, end_height, size, cursor)
        pages += 1
        got += len(data)
        if data:
            try:
                last_height = int(data[-1].get("block_height", last_height))
            except (TypeError, ValueError, AttributeError):
                pass
        yield data, nxt
        if not nxt or not data or (want is not None and got >= want):
            return
        if nxt in seen:
            raise stopped(f"the node gave cursor {_shown(nxt)} a second time (it would page forever)")
        seen.add(nxt)
        cursor = nxt


def lottery_of(event: dict[str, Any]) -> int | None:
    data = event.get("data") or {}
    v = data.get("lottery_id", data.get("id"))
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


@dataclass
class Checkpoint:
    """The next height to scan and what the scans so far have learnt."""

    url: str
    lottery_multi: str
    lottery: str
    next_height: int = 0
    started: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> (expected hash, block height)
    legacy: dict[int, int] = field(default_factory=dict)  # id -> height of its first LegacySummaryEvent
    block_times: dict[int, int] = field(default_factory=dict)  # height -> microseconds

    def to_json(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "url": self.url, "lottery_multi": self.lottery_multi,
                "lottery": self.lottery, "next_height": self.next_height,
                "started": {str(k): list(v) for k, v in self.started.items()},
                "legacy": {str(k): v for k, v in self.legacy.items()},
                "block_times": {str(k): v for k, v in self.block_times.items()}}

    @classmethod
    def load(cls, path: Path) -> "Checkpoint":
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"--events-checkpoint {path}: no such checkpoint (create it on purpose: "
                             f"dualwrite events --init-checkpoint {path})") from None
        except (OSError, ValueError) as e:
            raise InputError(f"--events-checkpoint {path}: not a readable checkpoint ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
            raise InputError(f"--events-checkpoint {path}: not a {CHECKPOINT_FORMAT} file")
        try:
            return cls(doc["url"], doc["lottery_multi"], doc["lottery"], int(doc["next_height"]),
                       {int(k): (str(v[0]), int(v[1])) for k, v in doc["started"].items()},
                       {int(k): int(v) for k, v in doc["legacy"].items()},
                       {int(k): int(v) for k, v in doc["block_times"].items()})
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise InputError(f"--events-checkpoint {path}: malformed ({type(e).__name__}: {e})") from None

    def save(self, path: Path) -> None:
        """Atomically: a reader never sees half a checkpoint."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_json(), f, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class EventIndex:
    """Registrations and legacy ids from the event stream; scanned lazily, once, thread-safe."""

    def __init__(self, client, addresses: ModuleAddresses, *, checkpoint: Path | None = None) -> None:
        self.client = client
        self.addresses = addresses
        self.path = Path(checkpoint) if checkpoint else None
        self._lock = threading.Lock()
        self._scanned = False
        self._dirty = False
        self.cp = self._fresh()
        if self.path is not None:
            self.cp = Checkpoint.load(self.path)
            self._check_same_chain()
        self.pages = 0

    def _fresh(self) -> Checkpoint:
        return Checkpoint(self.client.url, str(self.addresses.lottery_multi), str(self.addresses.lottery))

    def _check_same_chain(self) -> None:
        if (self.cp.url, self.cp.lottery_multi, self.cp.lottery) != (
                self.client.url, self.addresses.lottery_multi, self.addresses.lottery):
            raise InputError(f"--events-checkpoint {self.path}: made for {self.cp.url} (lottery_multi "
                             f"{self.cp.lottery_multi}), not this node and these modules; reset it with "
                             f"dualwrite events --init-checkpoint {self.path}")

    def learn(self, kind: str, item: dict[str, Any]) -> None:
        """One event (``EventWithContext``) into what the index knows."""
        ev = item.get("event") or {}
        lid = lottery_of(ev)
        height = int(item.get("block_height", 0))
        if lid is None:
            return
        if kind == "started":
            self.cp.started[lid] = (str((ev.get("data") or {}).get("expected_hash", "")).lower(), height)
        elif kind == "legacy":
            self.cp.legacy.setdefault(lid, height)
        self._dirty = True

    def scan(self, until: int | None = None) -> int:
        """Read the index kinds from the checkpoint's height to ``until`` (default: the latest block)."""
        if until is None:
            until = int(self.client.block()["header"]["height"])
        start = self.cp.next_height
        if until + 1 > start:
            for kind in INDEX_KINDS:
                for data, _cursor in self.client.events(event_type(self.addresses, kind), start, until + 1):
                    self.pages += 1
                    for item in data:
                        self.learn(kind, item)
            self.cp.next_height = until + 1
            self._dirty = True
        return until

    def advance_to(self, height: int) -> None:
        """Everything below ``height`` has been learnt (by a caller that read it)."""
        if height > self.cp.next_height:
            self.cp.next_height = height
            self._dirty = True

    def refresh(self) -> set[int]:
        """Read the blocks since the last scan, every kind (a long-running reader's next cycle:
        ``dualwrite monitor``); learn the index kinds; return the lotteries any event touched."""
        with self._lock:
            until = int(self.client.block()["header"]["height"])
            start = self.cp.next_height
            touched: set[int] = set()
            if until + 1 > start:
                for kind in KINDS:
                    for data, _cursor in self.client.events(event_type(self.addresses, kind), start, until + 1):
                        self.pages += 1
                        for item in data:
                            if kind in INDEX_KINDS:
                                self.learn(kind, item)
                            lid = lottery_of(item.get("event") or {})
                            if lid is not None:
                                touched.add(lid)
                self.cp.next_height = until + 1
                self._dirty = True
            self._scanned = True
            return touched

    def _ensure(self) -> None:
        with self._lock:
            if not self._scanned:
                self.scan()
                self._scanned = True

    def registered_at(self, lottery_id: int, expected_hash: bytes | None = None) -> datetime | None:
        """The block time of the Started event that registered the current expectation (None if not seen)."""
        self._ensure()
        entry = self.cp.started.get(lottery_id)
        if entry is None:
            return None
        h, height = entry
        if expected_hash is not None and h != "0x" + expected_hash.hex():
            return None  # the latest registration is not the expectation now in force: age unknown
        with self._lock:
            us = self.cp.block_times.get(height)
        if us is None:
            us = int(self.client.block(height)["header"]["timestamp"]["microseconds_since_unix_epoch"])
            with self._lock:
                self.cp.block_times[height] = us
                self._dirty = True
        return datetime.fromtimestamp(us / 1e6, timezone.utc)

    def legacy_ids(self) -> list[int]:
        self._ensure()
        return sorted(self.cp.legacy, key=lambda i: (self.cp.legacy[i], i))

    def save(self) -> None:
        if self.path is not None and self._dirty:
            self.cp.save(self.path)
            self._dirty = False

    @classmethod
    def init_checkpoint(cls, client, addresses: ModuleAddresses, path: Path) -> "EventIndex":
        """A new (or reset) checkpoint at ``path``, scanned from height 0 to now; its folder must exist."""
        path = Path(path)
        if not path.parent.is_dir():
            raise InputError(f"--init-checkpoint {path}: folder {path.parent} does not exist")
        index = cls(client, addresses)
        index.path = path
        index.scan()
        index._scanned = True
        index._dirty = True
        index.save()
        return index


class ChainEvents:
    """The simulator's own event log behind the node's paging interface (``dualwrite events`` on ``sim``)."""

    def __init__(self, chain) -> None:
        self.chain = chain
        self.url = f"sim:{chain.path}"

    def events_page(self, event_type: str, start_height=None, end_height=None, limit: int = 100, cursor=None):
        return self.chain.events_page(event_type, start_height, end_height, limit, cursor)

    def events(self, event_type: str, start_height=None, end_height=None, cursor=None):
        return page_through(self, event_type, start_height, end_height, cursor)

    def block(self, height: int | None = None) -> dict[str, Any]:
        from dualwrite.sim.chain import block_header

        b = self.chain.block(height)
        if b is None:
            if height is None:
                return {"header": {"height": 0, "timestamp": {"microseconds_since_unix_epoch": 0}}}
            raise InputError(f"no block at height {height}")
        return {"header": block_header(b)}
