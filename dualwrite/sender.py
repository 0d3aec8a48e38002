"""The one sender of ``cutover apply`` and ``heal --apply``: ordered, journalled, pipelined over RPC.

A caller hands it calls in the order the chain must see them (a heal's ``set_expected_hash`` before
its ``mirror``; a plan's order) and gets each call's outcome back through a callback, in that order.

- **CLI and sim backends** (``backend.tx_writer()`` is None): one call at a time, ``backend.run``; the
  ``started`` record is on disk before the call (write-ahead), the outcome after it. What landed of a
  call cut short is found on the next run by reading the chain (the callers' resume rule).
- **Over RPC** (an ``RpcWriter``): up to ``in_flight`` transactions in flight, numbered consecutively
  from the account's sequence number (one sender's consecutive numbers execute in order), each waited
  for by hash, outcomes delivered in order. Each transaction is built and signed first; its hash,
  sequence number and expiry go into the journal (``started`` with ``transaction_hash``,
  ``sequence_number``, ``expiration_secs``, ``chain_id``, ``sender``) and are fsync'd (one fsync for
  the batch submitted together) before it is submitted. An abort does not hide the others: every
  transaction already submitted is waited for and its real outcome recorded.
- **A gap** — a transaction the node answered and then lost, with later ones parked behind its number
  — is repaired, not waited on: when the node does not know the head's hash for ``GAP_AFTER_S`` while
  the account's sequence number stands at it, the same call is signed again with the same number (a
  new expiry, so a new hash, journalled as another ``started`` of the same call). The two can never
  both execute (one number), so nothing runs twice; the parked ones then go.
- **Resume** (``settle_begun``): each transaction an earlier run began and did not settle is looked up
  by every hash it was journalled with: committed → its outcome; pending → waited for; unknown → it
  is waited for until the node's clock passes its expiry (or the account's number has moved past it,
  taken by another transaction), and only then counted as never sent: the caller re-checks the chain
  and sends it again, with a new sequence number.

Drills: ``DUALWRITE_SEND_KILL_AT=PHASE:N`` (``DUALWRITE_CUTOVER_KILL_AT`` too) kills the process with
SIGKILL at the N-th transaction, PHASE ``started`` (journalled, not submitted), ``submitted`` (submitted,
outcome not journalled), ``waiting`` (submitted, while waiting for it) or ``done`` (outcome journalled).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from dualwrite.errors import BackendError, DualwriteError

KILL_AT_ENVS = ("DUALWRITE_SEND_KILL_AT", "DUALWRITE_CUTOVER_KILL_AT")
KILL_PHASES = ("started", "submitted", "waiting", "done")
#: in flight over RPC unless ``--in-flight`` says otherwise (measured: benchmarks/writes.py)
DEFAULT_RPC_IN_FLIGHT = 32
MAX_IN_FLIGHT = 256
#: how long the node may not know the head transaction's hash, the account's number standing at it, before
#: the gap is repaired (signed again with the same number)
GAP_AFTER_S = 2.0
POLL_FIRST_S = 0.002
POLL_MAX_S = 0.1
#: how often a submit refused with 503 (mempool full) is tried again before the call fails
MEMPOOL_RETRIES = 20
_pause = threading.Event()  # never set: wait(t) is an interruptible pause


def tx_writer(backend: Any):
    """The backend's ``RpcWriter`` when its writes go over RPC, else None (CLI, sim)."""
    fn = getattr(backend, "tx_writer", None)
    return fn() if callable(fn) else None


def in_flight_for(backend: Any, asked: int | None) -> int:
    """``--in-flight``: over RPC as asked (default ``DEFAULT_RPC_IN_FLIGHT``); 1 where the CLI sends (one at a time)."""
    if tx_writer(backend) is None:
        return 1
    return max(1, min(MAX_IN_FLIGHT, asked or DEFAULT_RPC_IN_FLIGHT))


@dataclass
class Call:
    """One entry-function call; ``ref`` is the caller's (a plan row, a heal step), handed back with its outcome."""

    function: str
    args: list[str]
    ref: Any = None
    #: the CLI path: how to send it there (``dualwrite.bridge``'s call, with its look-up of a lost report);
    #: ``backend.run(function, args)`` when None
    run: Callable[[], Any] | None = field(default=None, repr=False)


@dataclass
class Outcome:
    """What became of a call: ``result`` (committed) or ``error`` (an abort, a backend failure), ``txn_hash``."""

    call: Call
    result: Any = None
    error: DualwriteError | None = None
    txn_hash: str | None = None
    #: over RPC: the call certainly never executed (its transaction expired unknown to the node): send it again
    never_executed: bool = False


#: ``record(call, status, fields, sync)``: write the caller's journal record of ``call`` (its vocabulary) with
#: the sender's ``fields`` (transaction hash, sequence number, expiry); ``sync`` to fsync it now
Recorder = Callable[[Call, str, dict[str, Any], bool], None]


@dataclass
class _Flight:
    call: Call
    on_done: Callable[[Outcome], None]
    txns: list[Any] = field(default_factory=list)  # SignedTxn: the first, then any re-signed with its number
    unknown_since: float | None = None
    settled: bool = False


class _Kill:
    def __init__(self) -> None:
        self.point: tuple[str, int] | None = None
        for env in KILL_AT_ENVS:
            phase, _, n = os.environ.get(env, "").strip().partition(":")
            if n.isdigit() and phase in KILL_PHASES:
                self.point = (phase, int(n))
                break

    def at(self, phase: str, n: int) -> None:
        if self.point == (phase, n):
            os.kill(os.getpid(), signal.SIGKILL)


class Sender:
    """Send calls in order; ``send`` returns at once over RPC (the outcome comes through ``on_done``), after the
    call on the CLI path. ``drain`` waits for every outcome. ``stop_sending`` lets the in-flight ones finish."""

    def __init__(self, backend: Any, record: Recorder, sync: Callable[[], None], *, in_flight: int | None = None,
                 max_tps: float | None = None) -> None:
        self.backend = backend
        self.writer = tx_writer(backend)
        self.in_flight = in_flight_for(backend, in_flight)
        self.record = record
        self.sync = sync
        self.interval = 1.0 / max_tps if max_tps else 0.0
        self.next_send = time.monotonic()
        self.sends = 0
        self.kill = _Kill()
        self._window: deque[_Flight] = deque()  # submitted, oldest first
        self._batch: list[_Flight] = []  # signed and journalled (not yet synced), not submitted
        self._next_seq: int | None = None
        self._executor = None
        self.gap_repairs = 0

    @property
    def over_rpc(self) -> bool:
        return self.writer is not None

    def describe(self) -> str:
        if self.writer is None:
            return "one transaction at a time (the CLI path)"
        return f"signed as {self.writer.sender}, up to {self.in_flight} in flight"

    # -- pacing ------------------------------------------------------------------------------------------

    def _pace(self) -> None:
        if not self.interval:
            return
        wait = self.next_send - time.monotonic()
        if wait > 0:
            self.flush()  # nothing waits unsubmitted (or unsynced) while we pace
            _pause.wait(wait)
        self.next_send = max(self.next_send + self.interval, time.monotonic())

    # -- the CLI path ------------------------------------------------------------------------------------

    def _run_now(self, call: Call, on_done: Callable[[Outcome], None], *, write_ahead: bool) -> None:
        self.sends += 1
        if write_ahead:
            self.record(call, "started", {}, True)
        self.kill.at("started", self.sends)
        try:
            txn = call.run() if call.run is not None else self.backend.run(call.function, call.args)
        except DualwriteError as e:
            on_done(Outcome(call, error=e, txn_hash=getattr(e, "txn_hash", None)))
            return
        self.kill.at("submitted", self.sends)
        on_done(Outcome(call, result=txn, txn_hash=txn.hash))
        self.kill.at("done", self.sends)

    # -- sending -----------------------------------------------------------------------------------------

    def send(self, call: Call, on_done: Callable[[Outcome], None], *, write_ahead: bool = True) -> None:
        """Send ``call`` after every call sent before it. ``write_ahead=False``: the caller has made its
        ``started`` record durable already (the CLI path only; over RPC the record names the transaction)."""
        self._pace()
        if self.writer is None:
            self._run_now(call, on_done, write_ahead=write_ahead)
            return
        self.room()
        f = _Flight(call, on_done)
        t = self._sign(call, self._take_seq())
        f.txns.append(t)
        self.record(call, "started", _fields(t), False)
        self._batch.append(f)
        if not self._window or len(self._window) + len(self._batch) >= self.in_flight:
            self.flush()  # nothing in flight: do not let the node idle while the batch fills

    def room(self) -> None:
        """Make room for one more transaction (outcomes of earlier ones may be delivered meanwhile). A caller
        calls it before deciding to send — its re-check then reads a chain with those outcomes in it, and an
        abort among them can stop the run before the next call goes out."""
        if self.writer is None or len(self._window) + len(self._batch) < self.in_flight:
            return
        self.flush()
        # settle down to half the window: the next batch then goes with one fsync, not one per transaction
        while self._window and len(self._window) > self.in_flight // 2:
            self._settle_ready(len(self._window) - self.in_flight // 2)

    def _take_seq(self) -> int:
        if self._next_seq is None:
            self._next_seq = self.writer.next_sequence_number()
        n = self._next_seq
        self._next_seq += 1
        return n

    def _sign(self, call: Call, seq: int):
        return self.writer.prepare(call.function, list(call.args), seq)

    def flush(self) -> None:
        """Make the batch's ``started`` records durable (one fsync), then submit them (concurrently: the node
        orders them by sequence number, not by arrival; one by one in a drill, to kill at an exact point)."""
        if not self._batch:
            return
        self.sync()
        batch, self._batch = self._batch, []
        first = self.sends + 1
        self.sends += len(batch)
        if self.kill.point is None and len(batch) > 1:
            errors = list(self._pool().map(lambda f: self._submit(f.txns[-1]), batch))
        else:
            errors = []
            for k, f in enumerate(batch):
                self.kill.at("started", first + k)
                errors.append(self._submit(f.txns[-1]))
                self.kill.at("submitted", first + k)
        refused = None
        for f, err in zip(batch, errors):
            if err is not None and type(err).__name__ == "ExpiredAtSubmit" and refused is None:
                # refused as expired on arrival (never in the mempool: nothing of it can run): the clock it was
                # signed by was stale. Signed again with the same number, by the node's clock read now
                t = self.writer.prepare(f.call.function, list(f.call.args), f.txns[-1].sequence_number,
                                        expiration_secs=int(self.writer.node_time()) + int(self.writer.ttl))
                f.txns.append(t)
                self.record(f.call, "started", {**_fields(t), "resigned": "expired at submit"}, True)
                err = self._submit(t)
            if err is None:
                # accepted: in flight (behind a refused number it waits, and expires unexecuted: waited for too)
                self._window.append(f)
            else:
                # refused for good: nothing of it executes
                refused = refused or err
                self._fail_unsubmitted(f, err)
        if refused is not None:
            self._renumber()

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=min(self.in_flight, 16), thread_name_prefix="send")
        return self._executor

    def map(self, fn: Callable[[Any], Any], items: list) -> list:
        """``fn`` over ``items``, concurrently over RPC (reads a caller makes ahead), in order."""
        if self.writer is None or len(items) < 2:
            return [fn(x) for x in items]
        return list(self._pool().map(fn, items))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _submit(self, t) -> DualwriteError | None:
        from dualwrite.errors import MempoolFull, SubmissionUnknown

        full = 0
        while True:
            try:
                self.writer.submit(t)
                return None
            except MempoolFull as e:
                full += 1
                if full > MEMPOOL_RETRIES:
                    return e
                _pause.wait(min(0.05 * 2 ** min(full, 5), 1.0))
            except SubmissionUnknown:
                # no answer: the node may have it. Look it up; the same bytes may go again (same hash: once)
                try:
                    if self.writer.lookup(t.hash) is not None:
                        return None
                except BackendError:
                    pass
                full += 1
                if full > MEMPOOL_RETRIES:
                    return None  # it may be there: waited for by hash (expiry bounds the wait)
                _pause.wait(min(0.05 * 2 ** min(full, 5), 1.0))
            except DualwriteError as e:
                return e

    def _fail_unsubmitted(self, f: _Flight, err: DualwriteError) -> None:
        f.settled = True
        f.on_done(Outcome(f.call, error=err, txn_hash=f.txns[-1].hash if f.txns else None, never_executed=True))

    def _renumber(self) -> None:
        """After a refusal, number from the account again once the window is settled."""
        self.drain()
        self._next_seq = None

    # -- waiting -----------------------------------------------------------------------------------------

    def drain(self) -> None:
        """Submit what is batched and wait for every outcome, in order."""
        self.flush()
        while self._window:
            self._settle_ready(len(self._window))
        self.sync()
        self._next_seq = None  # a call sent another way (the mirror switch) may take the next number

    def _settle_ready(self, k: int) -> None:
        """Settle, in order, those of the first ``k`` in flight that have executed — the account's sequence number
        says which (one read), then each is looked up once, together; the head waited for when none has."""
        heads = list(self._window)[:k]
        if self.kill.point is None and len(heads) > 1:
            executed = self.writer.next_sequence_number()
            ran = [f for f in heads if f.txns[0].sequence_number < executed]
            results = list(self._pool().map(lambda f: [self.writer.lookup(t.hash) for t in f.txns], ran))
            settled = 0
            for f, res in zip(ran, results):
                final = next((r for r in res if r is not None and r.status != "Pending"), None)
                if final is None:
                    break
                self._window.popleft()
                f.settled = True
                self._finish(f, self._outcome(f, final))
                settled += 1
            if settled:
                return
        self._settle_head()

    def _outcome(self, f: _Flight, res) -> Outcome:
        from dualwrite.backends.rpc_write import failure_of

        if res.status == "Success":
            return Outcome(f.call, result=res, txn_hash=res.hash)
        return Outcome(f.call, error=failure_of(res), txn_hash=res.hash)

    def _settle_head(self) -> None:
        f = self._window[0]
        n = self.sends - len(self._window) + 1  # this one's position among the run's transactions
        self.kill.at("waiting", n)
        outcome = self._wait(f)
        self._window.popleft()
        f.settled = True
        self._finish(f, outcome)
        self.kill.at("done", n)

    def _finish(self, f: _Flight, outcome: Outcome) -> None:
        f.on_done(outcome)

    def _wait(self, f: _Flight) -> Outcome:
        """Until one of the flight's transactions commits or fails, or all certainly never will."""
        pause = POLL_FIRST_S
        while True:
            known = False
            for t in f.txns:
                res = self.writer.lookup(t.hash)
                if res is None:
                    continue
                known = True
                if res.status != "Pending":
                    return self._outcome(f, res)
            if not known:
                never = self._unknown(f)
                if never is not None:
                    return never
            else:
                f.unknown_since = None
            _pause.wait(pause)
            pause = min(pause * 1.5, POLL_MAX_S)

    def _unknown(self, f: _Flight) -> Outcome | None:
        """The node knows none of the flight's transactions: never executed (its number taken, or expired), a gap
        to repair, or not yet (None)."""
        seq = f.txns[0].sequence_number
        last = max(t.expiration_secs for t in f.txns)
        account = self.writer.next_sequence_number()
        if account > seq or self.writer.node_time() >= last:
            # one more look: it may have committed in between
            if any(self.writer.lookup(t.hash) is not None for t in f.txns):
                return None
            why = (f"sequence number {seq} was taken by another transaction" if account > seq else
                   f"expired unexecuted (the node's clock is past {last})")
            return self._never(f, why)
        now = time.monotonic()
        f.unknown_since = f.unknown_since or now
        if now - f.unknown_since >= GAP_AFTER_S and f.call.function:  # (a resume's calls have none)
            self._repair_gap(f, seq)
            f.unknown_since = None
        return None

    def _never(self, f: _Flight, why: str) -> Outcome:
        from dualwrite.errors import TxnExpired

        last = f.txns[-1]
        err = TxnExpired(f"{f.call.function}: transaction {last.hash}: {why}; it never executed",
                         txn_hash=last.hash, expiration_secs=max(t.expiration_secs for t in f.txns), node_time=0.0)
        return Outcome(f.call, error=err, txn_hash=last.hash, never_executed=True)

    def _repair_gap(self, f: _Flight, seq: int) -> None:
        """The node lost the head (answered, then forgot it) and the account waits at its number: sign the same
        call again with the same number. At most one of the two executes; the parked ones behind it then go."""
        t = self._sign(f.call, seq)
        f.txns.append(t)
        self.record(f.call, "started", {**_fields(t), "gap_repair": True}, True)
        self.gap_repairs += 1
        self._submit(t)

    # -- resume ------------------------------------------------------------------------------------------

    def settle_begun(self, begun: list[tuple[Call, list[dict[str, Any]]]]) -> list[Outcome]:
        """The calls an earlier run began over RPC (each with the transactions journalled for it, oldest first):
        what became of each, by hash. Unknown ones are waited for until they certainly never executed."""
        from dualwrite.errors import WrongChain

        out: list[Outcome] = []
        here = self.writer.chain_id
        for call, txns in begun:
            other = sorted({t["chain_id"] for t in txns if t.get("chain_id") is not None} - {here})
            if other:
                raise WrongChain(f"the journal's transactions for {call.function} were sent on chain {other[0]}; "
                                 f"this node is chain {here}: refusing to resume them here (nothing was sent)")
            f = _Flight(call, lambda o: None, [_Journalled(t["hash"], t["sequence_number"], t["expiration_secs"])
                                               for t in txns])
            out.append(self._wait(f))
        return out


@dataclass(frozen=True)
class _Journalled:
    """A transaction as a journal recorded it (enough to look it up and know when it expires)."""

    hash: str
    sequence_number: int
    expiration_secs: int


def _fields(t) -> dict[str, Any]:
    return {"transaction_hash": t.hash, "sequence_number": t.sequence_number, "expiration_secs": t.expiration_secs,
            "chain_id": t.chain_id, "sender": t.sender}


def journalled_txn(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The transaction a ``started`` record names (over RPC), or None (the CLI path's records name none)."""
    h, seq, exp = rec.get("transaction_hash"), rec.get("sequence_number"), rec.get("expiration_secs")
    if isinstance(h, str) and isinstance(seq, int) and isinstance(exp, int) and not isinstance(seq, bool):
        cid = rec.get("chain_id")
        return {"hash": h, "sequence_number": seq, "expiration_secs": exp,
                "chain_id": cid if isinstance(cid, int) and not isinstance(cid, bool) else None}
    return None


__all__ = ["Call", "DEFAULT_RPC_IN_FLIGHT", "KILL_AT_ENVS", "Outcome", "Sender", "in_flight_for", "journalled_txn",
           "tx_writer"]
