"""The simulator's persistent state: one SQLite file, one SQLite transaction per chain transaction.

Several processes may share the file: writers take the write lock up front
(``BEGIN IMMEDIATE``) and wait for it (busy timeout), so no write is lost; WAL lets
readers run beside a writer. A Move abort rolls the SQLite transaction back, so an
aborted call leaves no write and no event behind.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from dualwrite.errors import BackendError, BackendUnavailable, InputError

SCHEMA_VERSION = 3  # 2: blocks (height, timestamp) and the simulator clock; 3: accounts, node transactions
BUSY_TIMEOUT_S = 60.0

#: what schema 3 added (the tables and indexes the emulated node's write path uses): made by a new state and by
#: the migration from 2, from this one text
SCHEMA_3 = """
-- each account's next sequence number: user transactions (CLI path or signed through the node) move it
CREATE TABLE IF NOT EXISTS accounts (addr TEXT PRIMARY KEY, sequence_number INTEGER NOT NULL);
-- transactions signed by a key and submitted to the emulated node: Success (also in transactions) or Fail
CREATE TABLE IF NOT EXISTS node_txns (hash TEXT PRIMARY KEY, sender TEXT NOT NULL, sequence_number INTEGER NOT NULL,
    status TEXT NOT NULL, vm_status TEXT NOT NULL, version INTEGER NOT NULL, gas_used INTEGER NOT NULL,
    max_gas INTEGER NOT NULL, gas_unit_price INTEGER NOT NULL, expiration_secs INTEGER NOT NULL,
    function TEXT NOT NULL, arguments TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS transactions_hash ON transactions (hash);
CREATE INDEX IF NOT EXISTS events_version ON events (version);
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (addr TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (addr, name));
-- legacy_bridge expected hashes: pos is the index in the Move keys vector (swap-remove order)
CREATE TABLE IF NOT EXISTS expected (lottery_id INTEGER PRIMARY KEY, hash BLOB NOT NULL, pos INTEGER NOT NULL);
-- history ledger: seq orders ordered_ids (order kept on removal)
CREATE TABLE IF NOT EXISTS history (lottery_id INTEGER PRIMARY KEY, bcs BLOB NOT NULL,
    imported INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS history_seq ON history (seq);
-- history_bridge legacy archive: LegacySummary BCS per lottery
CREATE TABLE IF NOT EXISTS legacy (lottery_id INTEGER PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL,
    txn_hash TEXT NOT NULL, handle TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    data TEXT NOT NULL, lottery_id INTEGER);
CREATE INDEX IF NOT EXISTS events_type ON events (type);
CREATE INDEX IF NOT EXISTS events_lottery ON events (lottery_id);
CREATE INDEX IF NOT EXISTS events_handle ON events (handle, seq);
CREATE TABLE IF NOT EXISTS transactions (version INTEGER PRIMARY KEY, hash TEXT NOT NULL,
    sender TEXT NOT NULL, function TEXT NOT NULL, arguments TEXT NOT NULL, gas_used INTEGER NOT NULL,
    timestamp_us INTEGER NOT NULL);
-- one block per transaction (height = version), plus the empty blocks a clock advance produces
CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash TEXT NOT NULL, parent TEXT NOT NULL,
    timestamp_us INTEGER NOT NULL, txn_hash TEXT);
""" + SCHEMA_3

#: schema 2 had no accounts: each sender's count of transactions is its sequence number
MIGRATE_2_TO_3 = SCHEMA_3 + """
INSERT OR IGNORE INTO accounts (addr, sequence_number) SELECT sender, COUNT(*) FROM transactions GROUP BY sender
"""

#: schema 1 had no blocks: each transaction becomes its own block, at its commit time
MIGRATE_1_TO_2 = """
CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash TEXT NOT NULL, parent TEXT NOT NULL,
    timestamp_us INTEGER NOT NULL, txn_hash TEXT);
CREATE INDEX IF NOT EXISTS events_handle ON events (handle, seq);
INSERT OR IGNORE INTO blocks (height, hash, parent, timestamp_us, txn_hash)
    SELECT version, hash, '0x' || printf('%064x', 0), timestamp_us, hash FROM transactions
"""

_U64_SIGN = 1 << 63


def u64_to_sql(v: int) -> int:
    """SQLite integers are signed 64-bit: store u64 as its two's-complement twin."""
    return v - (1 << 64) if v >= _U64_SIGN else v


def u64_from_sql(v: int) -> int:
    return v + (1 << 64) if v < 0 else v


def default_state_path() -> Path:
    """``$DUALWRITE_STATE``, else ``$SUPRA_HOME/dualwrite-sim.sqlite`` (inside the CLI container),
    else ``$XDG_DATA_HOME/dualwrite/sim.sqlite`` (``~/.local/share/dualwrite/sim.sqlite``)."""
    if os.environ.get("DUALWRITE_STATE"):
        return Path(os.environ["DUALWRITE_STATE"])
    if os.environ.get("SUPRA_HOME"):
        return Path(os.environ["SUPRA_HOME"]) / "dualwrite-sim.sqlite"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dualwrite" / "sim.sqlite"


class Store:
    """A connection to one state file. Only ``create=True`` (``sim init``) may make one: a state file
    that is not there is a mistyped path, and a read must not leave a new chain behind."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        self.create = create
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"simulator state {self.path}: is not a file")
        if not create and not self.path.exists():
            raise BackendUnavailable(f"simulator state {self.path} does not exist (nothing was created; "
                                     f"`dualwrite sim init --state {self.path}` creates it)")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                        check_same_thread=False)
            if not create and not self._schema_ready():  # before WAL: switching modes would write to the file
                self.conn.close()
                raise InputError(f"simulator state {self.path}: not a dualwrite simulator state (no tables; "
                                 "`dualwrite sim init` makes one)")
            self._enable_wal()
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._init_schema()
        except sqlite3.DatabaseError as e:
            raise InputError(f"simulator state {self.path}: not a usable SQLite file ({e})") from None
        except OSError as e:
            raise BackendError(f"simulator state {self.path}: {e.strerror or e}") from None

    def _enable_wal(self) -> None:
        """Switch the file to WAL, retrying while other openers race for the same switch.

        On a fresh file (still in rollback-journal mode) two connections switching at once
        can deadlock on the lock upgrade; SQLite then answers SQLITE_BUSY at once, without
        the busy handler, so the busy timeout does not cover it.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.002
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL").fetchone()
                return
            except sqlite3.OperationalError as e:
                text = str(e).lower()
                if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.05)

    def _schema_ready(self) -> bool:
        """A plain read: an existing state file needs no write lock to be opened (views stay parallel)."""
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:
            return False  # no tables yet
        if row is not None and row[0] in ("1", "2"):
            with self.write():
                row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()  # under the lock
                steps = {"1": [MIGRATE_1_TO_2, MIGRATE_2_TO_3], "2": [MIGRATE_2_TO_3]}.get(row[0], [])
                for script in steps:
                    for stmt in script.split(";"):
                        if stmt.strip():
                            self.conn.execute(stmt)
                self.meta_set("schema", str(SCHEMA_VERSION))
            return True
        if row is not None and row[0] != str(SCHEMA_VERSION):
            raise InputError(f"simulator state {self.path}: schema {row[0]}, this dualwrite reads {SCHEMA_VERSION}")
        return row is not None

    def _init_schema(self) -> None:
        if self._schema_ready():
            return
        with self.write():
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.conn.execute(stmt)
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self.conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('version', '0')")
            elif row[0] != str(SCHEMA_VERSION):
                raise InputError(f"simulator state {self.path}: schema {row[0]}, this dualwrite reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    def sql_error(self, e: sqlite3.DatabaseError) -> Exception:
        """A typed error for what SQLite says about the file: read-only is bad input, damage a backend failure."""
        text = str(e)
        if "readonly" in text.lower() or "read-only" in text.lower():
            return InputError(f"simulator state {self.path}: read-only ({text}); nothing was changed")
        if isinstance(e, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return BackendError(f"simulator state {self.path}: busy ({text})")
        return BackendError(f"simulator state {self.path}: damaged or unreadable ({text}); restore it from a copy")

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass  # no transaction left to roll back (SQLite ended it on the error)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any exception rolls it back whole."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "readonly" in str(e).lower():
                raise self.sql_error(e) from None
            raise BackendError(f"simulator state {self.path}: cannot take the write lock ({e})") from None
        except sqlite3.DatabaseError as e:
            raise self.sql_error(e) from None
        try:
            yield self.conn
        except sqlite3.DatabaseError as e:
            self._rollback()
            raise self.sql_error(e) from None
        except BaseException:
            self._rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                self._rollback()
                raise self.sql_error(e) from None

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for a view."""
        try:
            self.conn.execute("BEGIN")
        except sqlite3.DatabaseError as e:
            raise self.sql_error(e) from None
        try:
            yield self.conn
        except sqlite3.DatabaseError as e:
            raise self.sql_error(e) from None
        finally:
            self._rollback()

    # -- meta ---------------------------------------------------------------------------

    def meta_get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def meta_set(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                          (key, value))

    # -- resources (Move `key` structs under an account) ---------------------------------

    def resource(self, addr: str, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT value FROM resources WHERE addr=? AND name=?", (addr, name)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_resource(self, addr: str, name: str, value: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO resources VALUES (?, ?, ?) ON CONFLICT(addr, name) DO UPDATE SET value=excluded.value",
            (addr, name, json.dumps(value, sort_keys=True)),
        )

    def drop_resource(self, addr: str, name: str) -> None:
        self.conn.execute("DELETE FROM resources WHERE addr=? AND name=?", (addr, name))
