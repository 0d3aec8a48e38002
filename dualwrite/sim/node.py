"""The emulated node's write path: submit (BCS or JSON), simulate, the mempool and the executor.

``POST rpc/v3/transactions/submit`` checks what a node checks before accepting (supra-cli.md, "RPC node"):
the bytes decode, the chain id, the Ed25519 signature, the sender's authentication key, the expiry (not past,
not beyond ``max_transaction_time_to_live_seconds``), the gas bounds, the entry function and its arguments, and
the sequence number — below the account's is refused (``SEQUENCE_NUMBER_TOO_OLD``), above it is parked (up to
``PARK_LIMIT`` ahead, else ``SEQUENCE_NUMBER_TOO_NEW``) and executed in order as the gap fills. The answer is the
transaction's hash (``dualwrite.txn.txn_hash``); the same bytes submitted again get the same answer.

One executor thread (its own SQLite connection) runs what is ready, in sequence-number order per account,
each its own SQLite transaction (WAL, synchronous=NORMAL: no fsync per commit). A parked transaction whose expiry
the node's clock passes is dropped and never commits; ``sim clock --advance`` moves that clock. While the mempool
holds a transaction it is served as ``Pending`` (v1: ``Unexecuted``); then as the chain has it, Success or Fail.

Faults (``sim serve --fault``): ``txn-drop=SHARE`` (accepted, answered, never executed), ``commit-delay=DURATION``,
``mempool-full=SHARE`` (503 on submit), ``mempool-size=N`` (503 once N are waiting), ``node-hash=smr`` (the
node answers, and serves the transaction under, a digest of its own instead of dualwrite's hash).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from dualwrite.errors import DecodeError, DualwriteError, FieldError, InputError

PARK_LIMIT = 1000  # how far above the account's sequence number a transaction may wait
MEMPOOL_SIZE = 20_000
MAX_TTL_S = 3600  # max_transaction_time_to_live_seconds
MAX_GAS_BOUND = 2_000_000
MIN_GAS_UNIT_PRICE = 1
GAS_PRICE = 100  # what estimate_gas_price answers
HEARTBEAT_S = 1.0
BATCH = 64  # transactions executed in one SQLite transaction (one commit)


class Refused(Exception):
    """An HTTP error answer of the submit path: status and the node's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Waiting:
    hash: str
    sender: str
    sequence_number: int
    expiration_secs: int
    function_id: str
    values: list[Any]
    max_gas: int
    gas_unit_price: int
    due: float  # monotonic time from which it may execute (commit-delay)
    payload: dict[str, Any]
    chain_id: int

    def item(self) -> dict[str, Any]:
        """What ``Chain.execute_signed`` takes for it."""
        return {"sender": self.sender, "function_id": self.function_id, "values": self.values, "txn_hash": self.hash,
                "sequence_number": self.sequence_number, "expiration_secs": self.expiration_secs,
                "max_gas": self.max_gas, "gas_unit_price": self.gas_unit_price}


def parse_body(body: bytes | None, content_type: str) -> dict[str, Any]:
    """The ``SupraTransaction`` value of a submit or simulate body, BCS or JSON."""
    from dualwrite import layouts as L
    from dualwrite import txn

    ctype = content_type.split(";", 1)[0].strip().lower()
    try:
        if ctype == txn.BCS_CONTENT_TYPE:
            return txn.decode(body or b"")
        if ctype in ("application/json", ""):
            try:
                doc = json.loads(body or b"")
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise Refused(400, f"Invalid transaction: body is not JSON ({e})") from None
            raw = doc.get("Move", {}).get("raw_txn") if isinstance(doc, dict) and isinstance(doc.get("Move"), dict) else None
            if isinstance(raw, dict) and "expiration_timestamps_secs" in raw and "expiration_timestamp_secs" not in raw:
                raw["expiration_timestamp_secs"] = raw.pop("expiration_timestamps_secs")  # the SDK's spelling
            return L.SUPRA_TRANSACTION.from_json(doc, "SupraTransaction")
    except (DecodeError, FieldError) as e:
        raise Refused(400, f"Invalid transaction: {e}") from None
    raise Refused(415, f"unsupported Content-Type {content_type!r}: expected {txn.BCS_CONTENT_TYPE} or application/json")


class Mempool:
    """Transactions accepted and not yet executed, and the executor thread that runs them."""

    def __init__(self, state, chain_kwargs: dict[str, Any], faults, abort_style: str) -> None:
        from dualwrite.sim.chain import Chain
        from dualwrite.sim.keys import chain_seed

        self.state = state
        self.chain_kwargs = chain_kwargs
        self.faults = faults
        self.abort_style = abort_style
        self.capacity = getattr(faults, "mempool_size", None) or MEMPOOL_SIZE
        self.cond = threading.Condition()
        self.by_hash: dict[str, Waiting] = {}
        self.by_account: dict[str, dict[int, Waiting]] = {}
        self.stopped = False
        self.executed = 0
        self.dropped = 0  # by the txn-drop fault
        self.expired = 0
        self._chain = Chain(state, **chain_kwargs)
        self._seed: bytes | None = None  # read (or made) on first use: starting the node writes nothing
        self._auth: dict[str, str] = {}
        self._exists: set[str] = set()
        self._last_heartbeat = 0.0
        self.thread = threading.Thread(target=self._run, name="sim-node-executor", daemon=True)
        self.thread.start()

    # -- accounts ----------------------------------------------------------------------------------

    def authentication_key(self, chain, address: str) -> str:
        from dualwrite.sim.keys import authentication_key, chain_seed

        key = self._auth.get(address)
        if key is None:
            if self._seed is None:
                self._seed = chain_seed(chain.store)
            key = self._auth[address] = authentication_key(self._seed, address)
        return key

    def account_exists(self, chain, address: str) -> bool:
        """A module account, a profile's, one that has sent transactions, or one ``sim key`` was asked for."""
        from dualwrite.sim.keys import issued

        if address in self._exists:
            return True
        a = chain.addresses
        if (address in (a.lottery_multi, a.lottery) or address in a.profiles().values()
                or chain.sequence_number(address) > 0 or issued(chain.store, address)):
            self._exists.add(address)
            return True
        return False

    # -- submit --------------------------------------------------------------------------------------

    def check(self, chain, value: dict[str, Any], *, simulate: bool) -> Waiting:
        """Everything a node checks before it accepts (or simulates) a transaction; ``Refused`` otherwise."""
        from dualwrite import txn
        from dualwrite.sim.chain import CHAIN_ID

        move = value["Move"]
        raw = move["raw_txn"]
        auth = move["authenticator"]["Ed25519"]
        body = txn.encode(value)
        h = txn.txn_hash(body)
        if getattr(self.faults, "own_hash", False):  # a digest of the node's own, as a real node's is
            h = txn.hex0x(hashlib.sha3_256(b"SMR::node-digest" + body).digest())
        sender = "0x" + raw["sender"].hex()
        if raw["chain_id"] != CHAIN_ID:
            raise Refused(400, f"Transaction validation failed: BAD_CHAIN_ID (the transaction is for chain "
                               f"{raw['chain_id']}, this node is chain {CHAIN_ID})")
        valid = txn.verify(value)
        if simulate and valid:
            raise Refused(400, "Invalid simulation request: a simulated transaction must not carry a valid signature")
        if not simulate and not valid:
            raise Refused(400, "Transaction validation failed: INVALID_SIGNATURE")
        if not self.account_exists(chain, sender):
            raise Refused(400, f"Transaction validation failed: SENDING_ACCOUNT_DOES_NOT_EXIST ({sender})")
        if len(auth["public_key"]) != 32 or txn.hex0x(txn.auth_key(auth["public_key"])) != self.authentication_key(chain, sender):
            raise Refused(400, f"Transaction validation failed: INVALID_AUTH_KEY (the public key is not account "
                               f"{sender}'s)")
        now_s = chain.clock_us() / 1e6
        expiry = raw["expiration_timestamp_secs"]
        if expiry <= now_s:
            raise Refused(400, f"Transaction validation failed: TRANSACTION_EXPIRED (expiry {expiry}, the node's "
                               f"clock {now_s:.0f})")
        if expiry > now_s + MAX_TTL_S + 1:
            raise Refused(400, f"Transaction validation failed: TRANSACTION_EXPIRATION_TOO_FAR_IN_FUTURE (expiry "
                               f"{expiry}, at most {MAX_TTL_S} s after the node's clock {now_s:.0f})")
        if raw["max_gas_amount"] > MAX_GAS_BOUND:
            raise Refused(400, f"Transaction validation failed: MAX_GAS_UNITS_EXCEEDS_MAX_GAS_UNITS_BOUND "
                               f"({raw['max_gas_amount']} > {MAX_GAS_BOUND})")
        if raw["gas_unit_price"] < MIN_GAS_UNIT_PRICE:
            raise Refused(400, "Transaction validation failed: GAS_UNIT_PRICE_BELOW_MIN_BOUND")
        ef = raw["payload"]["EntryFunction"]
        function_id = f"0x{ef['module']['address'].hex()}::{ef['module']['name']}::{ef['function']}"
        values = self._arguments(chain, function_id, ef)
        return Waiting(h, sender, raw["sequence_number"], expiry, function_id, values, raw["max_gas_amount"],
                       raw["gas_unit_price"], 0.0, raw, raw["chain_id"])

    @staticmethod
    def _arguments(chain, function_id: str, ef: dict[str, Any]) -> list[Any]:
        from dualwrite.bcs.types import from_bcs

        try:
            fn = chain.resolve(function_id)
        except InputError as e:
            raise Refused(400, f"Transaction validation failed: {e}") from None
        if fn.is_view:
            raise Refused(400, f"Transaction validation failed: {fn.module}::{fn.name} is not an entry function")
        if ef["ty_args"]:
            raise Refused(400, f"Invalid arguments: {fn.module}::{fn.name} takes no type arguments "
                               f"(NUMBER_OF_TYPE_ARGUMENTS_MISMATCH)")
        if len(ef["args"]) != len(fn.params):
            from dualwrite.words import count

            raise Refused(400, f"Invalid arguments: {fn.module}::{fn.name} takes {count(len(fn.params), 'argument')}, "
                               f"got {len(ef['args'])} (NUMBER_OF_ARGUMENTS_MISMATCH)")
        try:
            return [from_bcs(p, a, f"argument {i + 1}") for i, (p, a) in enumerate(zip(fn.params, ef["args"]))]
        except DecodeError as e:
            raise Refused(400, f"Invalid arguments: {e} (FAILED_TO_DESERIALIZE_ARGUMENT)") from None

    def submit(self, chain, value: dict[str, Any]) -> str:
        w = self.check(chain, value, simulate=False)
        fate = self.faults.draw_txn() if hasattr(self.faults, "draw_txn") else None
        if fate == "full":
            raise Refused(503, "mempool is full: the transaction was not accepted, submit it again later")
        with self.cond:
            if w.hash in self.by_hash:
                return w.hash  # the same bytes again: already waiting
            if chain.store.conn.execute("SELECT 1 FROM node_txns WHERE hash=?", (w.hash,)).fetchone() is not None:
                raise Refused(400, f"Transaction validation failed: SEQUENCE_NUMBER_TOO_OLD (transaction {w.hash} "
                                   f"is committed already)")
            n = chain.sequence_number(w.sender)
            if w.sequence_number < n:
                raise Refused(400, f"Transaction validation failed: SEQUENCE_NUMBER_TOO_OLD (sequence number "
                                   f"{w.sequence_number} is below account {w.sender}'s {n})")
            if w.sequence_number > n + PARK_LIMIT:
                raise Refused(400, f"Transaction validation failed: SEQUENCE_NUMBER_TOO_NEW (sequence number "
                                   f"{w.sequence_number} is more than {PARK_LIMIT} above account {w.sender}'s {n})")
            slots = self.by_account.setdefault(w.sender, {})
            if w.sequence_number in slots:
                raise Refused(400, f"Transaction validation failed: SEQUENCE_NUMBER_ALREADY_IN_MEMPOOL (another "
                                   f"transaction {slots[w.sequence_number].hash} has sequence number {w.sequence_number})")
            if len(self.by_hash) >= self.capacity:
                raise Refused(503, f"mempool is full ({self.capacity} transactions waiting): submit it again later")
            if fate == "drop":
                self.dropped += 1  # accepted and answered, and lost: never executed
                return w.hash
            w.due = time.monotonic() + getattr(self.faults, "commit_delay", 0.0)
            slots[w.sequence_number] = w
            self.by_hash[w.hash] = w
            self.cond.notify()
        return w.hash

    def simulate(self, chain, value: dict[str, Any]) -> dict[str, Any]:
        w = self.check(chain, value, simulate=True)
        ((_, out),) = chain.execute_signed([w.item()], abort_style=self.abort_style, dry_run=True)
        return out

    def pending(self, txn_hash: str) -> Waiting | None:
        with self.cond:
            return self.by_hash.get(txn_hash.lower())

    def heartbeat(self, chain) -> None:
        """A block at the node's clock when none came for a while: a live chain keeps producing blocks, so
        whoever waits for an unknown hash sees the node's clock pass its expiry."""
        now = time.monotonic()
        if now - self._last_heartbeat < HEARTBEAT_S:
            return
        self._last_heartbeat = now
        latest = chain.block()
        if latest is None or chain.clock_us() - latest["timestamp_us"] >= HEARTBEAT_S * 1e6:
            chain.advance_clock(0)

    # -- the executor ----------------------------------------------------------------------------------

    def _ready(self, now: float, clock_s: float) -> list[Waiting]:
        """Under the lock: drop what expired; each account's run of consecutive due transactions from its
        sequence number on (at most ``BATCH`` in all: one commit)."""
        out: list[Waiting] = []
        for w in [w for w in self.by_hash.values() if w.expiration_secs <= clock_s]:
            self._remove(w)
            self.expired += 1
        for sender, slots in self.by_account.items():
            if not slots:
                continue
            n = self._chain.sequence_number(sender)
            for seq in [s for s in slots if s < n]:  # its number was taken (by the CLI path): it can never commit
                self._remove(slots[seq])
            while len(out) < BATCH and (w := slots.get(n)) is not None and w.due <= now:
                out.append(w)
                n += 1
        return out

    def _remove(self, w: Waiting) -> None:
        self.by_hash.pop(w.hash, None)
        slots = self.by_account.get(w.sender)
        if slots is not None and slots.get(w.sequence_number) is w:
            del slots[w.sequence_number]

    def _run(self) -> None:
        chain = self._chain
        while True:
            with self.cond:
                if self.stopped:
                    break
                ready = self._ready(time.monotonic(), chain.clock_us() / 1e6) if self.by_hash else []
                if not ready:
                    due = min((w.due for w in self.by_hash.values()), default=None)
                    wait = 0.05 if due is None else max(0.001, min(0.05, due - time.monotonic()))
                    self.cond.wait(wait)
                    continue
            try:  # outside the lock: submits and lookups go on meanwhile
                outcomes = [o for o, _ in chain.execute_signed([w.item() for w in ready], abort_style=self.abort_style)]
            except DualwriteError:
                outcomes = []  # the state is unusable (busy, read-only): keep them waiting, try again
                time.sleep(0.05)
            with self.cond:
                for w, outcome in zip(ready, outcomes):
                    if outcome == "committed":
                        self.executed += 1
                        self._remove(w)
                    elif outcome == "expired":
                        self.expired += 1
                        self._remove(w)
        chain.close()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        self.thread.join(5)


def pending_json(w: Waiting, *, v1: bool) -> dict[str, Any]:
    """A transaction the mempool holds, as the node serves it: status Pending (v1: Unexecuted), no block."""
    from datetime import datetime, timezone

    return {"hash": w.hash,
            "header": {"sender": {"Move": w.sender}, "sequence_number": w.sequence_number, "max_gas_amount": w.max_gas,
                       "gas_unit_price": w.gas_unit_price, "chain_id": w.chain_id,
                       "expiration_timestamp": {
                           "microseconds_since_unix_epoch": w.expiration_secs * 1_000_000,
                           "utc_date_time": datetime.fromtimestamp(w.expiration_secs, timezone.utc).isoformat()}},
            "payload": {"Move": {"function": w.function_id, "type_arguments": [], "arguments": []}},
            "output": {"Move": {"gas_used": 0, "events": [], "vm_status": ""}},
            "status": "Unexecuted" if v1 else "Pending",
            "block_header": None}


__all__ = ["Mempool", "Refused", "parse_body", "pending_json"]
