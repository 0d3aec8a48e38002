"""Writes over RPC: entry functions signed here and submitted to the node, no Supra CLI anywhere.

``RpcWriter`` implements ``Backend.run`` (prepare, submit, wait by hash) over an ``RpcClient`` (the reader's own:
one pool, one set of provider headers, the same retries), and exposes the primitives a pipelined sender builds on.
The transaction bytes, signature and hash come from ``dualwrite.txn``.

Rules it keeps (supra-cli.md, "RPC node"):
- before the first transaction: the chain id from the node (checked against ``expect_chain_id`` when a plan or
  journal names one), the account's authentication key from ``GET rpc/v3/accounts/{sender}`` (it must be the
  key's, else ``KeyMismatch``, exit 2, nothing sent), the node's ``parameters`` (``--tx-ttl`` must be within
  ``max_transaction_time_to_live_seconds``), the gas price (``estimate_gas_price`` unless ``--gas-unit-price``);
- expiry = the node's clock (latest block time) + ``--tx-ttl``; a transaction the node does not know is
  waited for until the node's clock passes its expiry, and only then counted as never sent (``TxnExpired``);
- a submit is idempotent (the same signed bytes have the same hash), so a lost answer is looked up by hash,
  never rebuilt with another sequence number while it may still commit.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dualwrite.backends.base import ModuleAddresses, TxnResult, url_identity
from dualwrite.errors import (
    BackendError,
    ChainChanged,
    ChainIdRefused,
    DualwriteError,
    ExpiredAtSubmit,
    InputError,
    KeyMismatch,
    MempoolFull,
    SequenceTooNew,
    SequenceTooOld,
    SubmissionUnknown,
    SubmitRefused,
    TransactionFailed,
    TxnExpired,
    WrongChain,
)

#: retried inside one submit (the same bytes: idempotent); 503 is the node's "mempool full", handed to the caller
SUBMIT_RETRY_STATUS = frozenset({429, 502, 504})
PENDING = ("Pending", "Unexecuted", "PendingAfterExecution")
FAILED = ("Fail", "Invalid")
POLL_FIRST_S = 0.005
POLL_MAX_S = 0.25
#: past the expiry, how long the node's clock may stand still before the outcome is called unknown
STALLED_CLOCK_S = 120.0
CLOCK_REFRESH_S = 5.0
_HASH = re.compile(r"0x[0-9a-f]{64}")
_REFUSALS: tuple[tuple[re.Pattern, type[SubmitRefused], str], ...] = (
    (re.compile(r"SEQUENCE_NUMBER_TOO_OLD|sequence number (?:is )?too old", re.I), SequenceTooOld,
     "SEQUENCE_NUMBER_TOO_OLD"),
    (re.compile(r"SEQUENCE_NUMBER_TOO_NEW|sequence number (?:is )?too new", re.I), SequenceTooNew,
     "SEQUENCE_NUMBER_TOO_NEW"),
    (re.compile(r"TRANSACTION_EXPIRED|transaction (?:has )?expired", re.I), ExpiredAtSubmit, "TRANSACTION_EXPIRED"),
    (re.compile(r"BAD_CHAIN_ID|(?:wrong|bad) chain id|chain id mismatch", re.I), ChainIdRefused, "BAD_CHAIN_ID"),
)
_STATUS_CODE = re.compile(r"\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b")
_pause = threading.Event()  # never set: wait(t) is an interruptible pause


@dataclass(frozen=True)
class SignedTxn:
    """A signed transaction ready to submit: what a journal records before it is sent (no key material:
    ``body`` holds the public key and the signature, as the node receives them)."""

    hash: str
    sender: str
    sequence_number: int
    expiration_secs: int
    function: str
    args: tuple[str, ...]
    chain_id: int
    body: bytes = field(repr=False)


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool):
        raise ValueError(what)
    if isinstance(v, str) and v.isascii() and v.isdigit():
        return int(v)
    if isinstance(v, int):
        return v
    raise ValueError(what)


def failure_of(result: TxnResult) -> DualwriteError:
    """The typed error of a failed transaction: the ``MoveAbort`` its vm_status names (the same parser as the
    CLI path), else ``TransactionFailed``."""
    from dualwrite.backends.cli_output import find_abort

    return find_abort(result.vm_status) or TransactionFailed(result.status, txn_hash=result.hash,
                                                             detail=result.vm_status)


def node_result(body: dict[str, Any], txn_hash: str) -> TxnResult:
    """The node's transaction JSON (v3, or v1's ``Unexecuted``) as a ``TxnResult``; status Pending, Success or Fail."""
    status = body.get("status")
    output = body.get("output")
    move = output.get("Move") if isinstance(output, dict) else None
    move = move if isinstance(move, dict) else {}
    vm = move.get("vm_status")
    vm = vm if isinstance(vm, str) else ""
    header = body.get("block_header")
    height = header.get("height") if isinstance(header, dict) else None
    events = move.get("events") if isinstance(move.get("events"), list) else []
    gas = move.get("gas_used")

    def num(v: Any) -> int | None:
        try:
            return None if v is None or isinstance(v, bool) else int(v)
        except (TypeError, ValueError):
            return None

    h = body.get("hash") if isinstance(body.get("hash"), str) else txn_hash
    if status in PENDING:
        return TxnResult(h, "Pending", vm, None)
    if status == "Success":
        return TxnResult(h, "Success", vm, num(gas), events, num(body.get("version", height)), num(height))
    if status in FAILED:
        return TxnResult(h, "Fail", vm or str(status), num(gas), events, None, num(height))
    raise BackendError(f"transaction {txn_hash}: unknown status {str(status)[:40]!r} from the node")


class RpcWriter:
    """The ``Backend.run`` of the RPC write path, and the primitives of a pipelined sender.

    Contract (kept stable for ``dualwrite.cutover`` / ``heal``'s sender):

    - ``sender: str`` — the account it signs as (0x + 64 hex); ``chain_id: int`` — the node's (checked once);
    - ``check() -> None`` — the checks before the first transaction (chain id, authentication key, ttl within
      the node's parameters, gas price); every primitive below calls it; idempotent;
    - ``next_sequence_number() -> int`` — the account's next sequence number, from the node;
    - ``node_time() -> float`` — the node's clock: its latest block's timestamp, in seconds;
    - ``prepare(function, args, sequence_number, *, expiration_secs=None) -> SignedTxn`` — built and signed,
      nothing sent; the hash is known here (journal it before ``submit``); expiry default: node clock + ttl;
    - ``submit(txn) -> str`` — the hash the node answers (authoritative when it differs from ``txn.hash``);
      raises ``MempoolFull`` (503, retryable, not accepted), ``SequenceTooOld`` / ``SequenceTooNew`` /
      ``ExpiredAtSubmit`` / ``ChainIdRefused`` / ``SubmitRefused`` (refused: will never commit),
      ``SubmissionUnknown`` (no answer: it may have been accepted; look it up by hash);
    - ``lookup(hash) -> TxnResult | None`` — None: the node does not know it; else status ``Pending``,
      ``Success`` or ``Fail`` (``failure_of(result)`` gives the ``MoveAbort``);
    - ``wait(hash, expiration_secs) -> TxnResult`` — until Success (returned) or Fail (``MoveAbort`` /
      ``TransactionFailed`` raised); ``TxnExpired`` once the node's clock is past the expiry and it still does not
      know the hash (never committed, never will: safe to send again with a new sequence number);
    - ``run(function, args) -> TxnResult`` — all of it, for one transaction (``Backend.run``).
    """

    name = "rpc"
    in_process = False

    def __init__(self, client, addresses: ModuleAddresses, signer, *, sender: str | None = None,
                 max_gas: int = 500_000, gas_unit_price: int | None = None, ttl: int = 60,
                 expect_chain_id: int | None = None, retries: int = 2, owns_client: bool = False) -> None:
        from dualwrite.sim.accounts import normalize_address

        self.client = client
        self.addresses = addresses
        self._signer = signer
        self.sender = normalize_address(sender, "--sender") if sender else signer.address
        self.key_source = signer.source
        self.max_gas = max_gas
        self.gas_unit_price = gas_unit_price
        self.ttl = ttl
        self.expect_chain_id = expect_chain_id
        self.retries = retries
        self.owns_client = owns_client
        self.max_ttl: int | None = None
        self._chain_id: int | None = None
        self._checked = False
        self._lock = threading.Lock()
        self._clock: tuple[float, float] | None = None  # (node time, monotonic time when read)
        self.node_hash_differs = 0  # submits whose answer was another hash than ours (a real node's digest)

    # -- checks ----------------------------------------------------------------------------------

    def _get_json(self, path: str, what: str, *, missing_ok: bool = False, limit: str = "account") -> Any:
        from dualwrite.backends.rpc import MAX_BYTES

        r = self.client.request("GET", path, what=what, limit=MAX_BYTES[limit])
        if r.status_code == 404 and missing_ok:
            return None
        if r.status_code != 200:
            raise self.client._error(r, what)
        return self.client._json(r, what)

    def check(self) -> None:
        """Chain id, the account's authentication key, the ttl against the node's parameters, the gas price."""
        if self._checked:
            return
        with self._lock:
            if self._checked:
                return
            url = self.client.url
            # the chain id endpoint, held to the chain this client's answers pinned (ChainChanged otherwise)
            chain_id = int(self.client.check_chain())
            if self.expect_chain_id is not None and chain_id != self.expect_chain_id:
                raise WrongChain(f"RPC node {url} is on chain {chain_id}, not chain {self.expect_chain_id} "
                                 f"(which the plan or journal names): nothing was sent")
            account = self._get_json(f"rpc/v3/accounts/{self.sender}", f"account {self.sender}", missing_ok=True)
            if account is None:
                raise KeyMismatch(f"account {self.sender} does not exist on RPC node {url}: nothing was sent")
            node_key = str(account.get("authentication_key", "")) if isinstance(account, dict) else ""
            ours = "0x" + self._signer.auth_key.hex()
            if _norm_key(node_key) != ours:
                raise KeyMismatch(f"account {self.sender}: the node's authentication key is {node_key or 'missing'}, "
                                  f"the key of {self.key_source} has {ours}: refusing to sign as {self.sender} "
                                  f"(nothing was sent)")
            params = self._get_json("rpc/v3/transactions/parameters", "transaction parameters", missing_ok=True)
            if isinstance(params, dict) and params.get("max_transaction_time_to_live_seconds") is not None:
                try:
                    self.max_ttl = _int(params["max_transaction_time_to_live_seconds"], "max ttl")
                except ValueError:
                    self.max_ttl = None
            if self.max_ttl is not None and self.ttl > self.max_ttl:
                raise InputError(f"--tx-ttl {self.ttl}: RPC node {url} accepts transactions that expire at most "
                                 f"{self.max_ttl} s ahead (max_transaction_time_to_live_seconds)")
            if self.gas_unit_price is None:
                self.gas_unit_price = self._estimate_gas_price()
            self._chain_id = chain_id
            self._checked = True

    def _estimate_gas_price(self) -> int:
        body = self._get_json("rpc/v3/transactions/estimate_gas_price", "estimate gas price", missing_ok=True)
        if isinstance(body, dict):
            for key in ("mean_gas_price", "gas_estimate", "median_gas_price"):
                try:
                    return max(1, _int(body.get(key), key))
                except ValueError:
                    continue
        raise BackendError(f"RPC node {self.client.url}: estimate_gas_price gave no price ({str(body)[:80]}); "
                           f"pass --gas-unit-price N")

    @property
    def chain_id(self) -> int:
        self.check()
        return self._chain_id  # type: ignore[return-value]

    # -- primitives ------------------------------------------------------------------------------

    def next_sequence_number(self) -> int:
        self.check()
        body = self._get_json(f"rpc/v3/accounts/{self.sender}", f"account {self.sender}")
        try:
            return _int(body.get("sequence_number") if isinstance(body, dict) else None, "sequence number")
        except ValueError:
            raise BackendError(f"RPC node {self.client.url}: account {self.sender}: no sequence_number in "
                               f"{str(body)[:80]}") from None

    def node_time(self) -> float:
        body = self.client.block()
        t = int(body["header"]["timestamp"]["microseconds_since_unix_epoch"]) / 1e6
        self._clock = (t, time.monotonic())
        return t

    def _node_clock(self) -> float:
        """The node's clock estimated from its last reading (read again every few seconds)."""
        if self._clock is None or time.monotonic() - self._clock[1] > CLOCK_REFRESH_S:
            return self.node_time()
        t, at = self._clock
        return t + (time.monotonic() - at)

    def prepare(self, function: str, args: list[str], sequence_number: int, *,
                expiration_secs: int | None = None) -> SignedTxn:
        from dualwrite import txn

        self.check()
        if expiration_secs is None:
            expiration_secs = int(self._node_clock()) + self.ttl
        payload = txn.entry_function(self.addresses.function_id(function), list(args))
        raw = txn.raw_transaction(self.sender, sequence_number, payload, max_gas_amount=self.max_gas,
                                  gas_unit_price=int(self.gas_unit_price or 1), expiration_timestamp_secs=expiration_secs,
                                  chain_id=self._chain_id or 0)
        body, h = txn.sign(self._signer, raw)
        return SignedTxn(h, self.sender, sequence_number, expiration_secs, function, tuple(args), self._chain_id or 0,
                         body)

    def submit(self, t: SignedTxn) -> str:
        from dualwrite.backends.rpc import MAX_BYTES
        from dualwrite.txn import BCS_CONTENT_TYPE

        what = f"submit {t.function} (sequence number {t.sequence_number}, hash {t.hash})"
        try:
            r = self.client.request("POST", "rpc/v3/transactions/submit", what=what, retry_status=SUBMIT_RETRY_STATUS,
                                    content=t.body, content_type=BCS_CONTENT_TYPE, limit=MAX_BYTES["account"])
        except ChainChanged:
            raise  # the node is another chain's now: the transaction (for this chain) is refused there
        except BackendError as e:
            # no answer: the node may have it. The same bytes may be sent again (same hash), or looked up.
            raise SubmissionUnknown(f"{e.message} (it may have been accepted: look it up by hash {t.hash})",
                                    txn_hash=t.hash) from None
        if r.status_code == 200:
            body = self.client._json(r, what)
            answer = body.lower() if isinstance(body, str) else ""
            if not _HASH.fullmatch(answer):
                raise SubmissionUnknown(f"RPC node {self.client.url}: {what}: answered {str(body)[:80]!r}, not a "
                                        f"transaction hash", txn_hash=t.hash)
            if answer != t.hash:
                self.node_hash_differs += 1
            return answer
        text = _message(self.client, r)
        if r.status_code == 503:
            raise MempoolFull(f"RPC node {self.client.url}: {what}: HTTP 503 (mempool full, not accepted): {text}",
                              txn_hash=t.hash)
        if 400 <= r.status_code < 500 and r.status_code not in (401, 403, 408, 429):
            for pattern, cls, status in _REFUSALS:
                if pattern.search(text):
                    raise cls(f"RPC node {self.client.url} refused {what}: {text}", status=status, txn_hash=t.hash)
            m = _STATUS_CODE.search(text)
            raise SubmitRefused(f"RPC node {self.client.url} refused {what}: HTTP {r.status_code}: {text}",
                                status=m[0] if m else "", txn_hash=t.hash)
        if r.status_code in (401, 403):
            raise self.client._error(r, what)
        raise SubmissionUnknown(f"RPC node {self.client.url}: {what}: HTTP {r.status_code}: {text} (it may have "
                                f"been accepted: look it up by hash)", txn_hash=t.hash)

    def lookup(self, txn_hash: str) -> TxnResult | None:
        what = f"transaction {txn_hash}"
        from dualwrite.backends.rpc import MAX_BYTES

        r = self.client.request("GET", f"rpc/v3/transactions/{txn_hash}", what=what, limit=MAX_BYTES["transaction"])
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self.client._error(r, what)
        body = self.client._json(r, what)
        if body is None:  # v1's answer for a hash it does not know
            return None
        if not isinstance(body, dict):
            raise BackendError(f"RPC node {self.client.url}: {what}: expected a transaction, got {str(body)[:80]}")
        return node_result(body, txn_hash)

    def wait(self, txn_hash: str, expiration_secs: int) -> TxnResult:
        pause = POLL_FIRST_S
        stalled_since: float | None = None
        while True:
            res = self.lookup(txn_hash)
            if res is not None and res.status == "Success":
                return res
            if res is not None and res.status == "Fail":
                raise failure_of(res)
            if res is None:
                now = self.node_time()
                if now >= expiration_secs:
                    res = self.lookup(txn_hash)  # one more look: it may have committed at the last moment
                    if res is None:
                        raise TxnExpired(f"transaction {txn_hash} expired unexecuted: the node's clock "
                                         f"({now:.0f}) is past its expiry ({expiration_secs}) and the node does not "
                                         f"know it: it never committed", txn_hash=txn_hash,
                                         expiration_secs=expiration_secs, node_time=now)
                    continue
            elif self._node_clock() >= expiration_secs + 1:
                # Pending past its expiry: a node drops such a one; if its clock stands still, stop at some point
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > STALLED_CLOCK_S:
                    raise SubmissionUnknown(f"transaction {txn_hash}: still pending {STALLED_CLOCK_S:g}s after its "
                                            f"expiry: outcome unknown, not re-sent", txn_hash=txn_hash)
            _pause.wait(pause)
            pause = min(pause * 1.5, POLL_MAX_S)

    # -- Backend -----------------------------------------------------------------------------------

    def run(self, function: str, args: list[str]) -> TxnResult:
        """One transaction: the account's next sequence number, signed, submitted, waited for by hash.

        Sent again (newly numbered) only when it certainly never committed: refused as too old (another
        transaction took the number), mempool full, or expired unknown to the node."""
        attempt = 0
        while True:
            t = self.prepare(function, args, self.next_sequence_number())
            try:
                h = self._submit_known(t)
                return self.wait(h, t.expiration_secs)
            except SequenceTooOld:
                # the number is used: by another transaction, or by this very one (a resubmission after a lost
                # answer, committed meanwhile): that one is waited for, never sent again
                if self.lookup(t.hash) is not None:
                    return self.wait(t.hash, t.expiration_secs)
                if attempt >= self.retries:
                    raise
            except (MempoolFull, TxnExpired):
                if attempt >= self.retries:
                    raise
            attempt += 1
            _pause.wait(min(0.2 * 2 ** attempt, 2.0))

    def _submit_known(self, t: SignedTxn) -> str:
        """``submit``, where a lost answer is answered by looking the hash up (and by sending the same bytes
        again while the node does not have them: they cannot commit twice)."""
        for _ in range(self.retries + 1):
            try:
                return self.submit(t)
            except SubmissionUnknown:
                if self.lookup(t.hash) is not None:
                    return t.hash
        raise SubmissionUnknown(f"transaction {t.hash}: no answer from RPC node {self.client.url} to "
                                f"{self.retries + 1} submissions; it may still commit before {t.expiration_secs}",
                                txn_hash=t.hash)

    def view(self, function: str, args: list[str]) -> list[Any]:
        raise InputError(f"{function}: the RPC writer does not read (its backend reads through the node)")

    def tx_writer(self) -> "RpcWriter":
        return self

    def describe(self) -> str:
        return f"rpc writes signed as {self.sender} ({self.client.describe()})"

    def chain_identity(self) -> dict[str, str]:
        return {"backend": "rpc", "rpc_url": url_identity(str(self.client.url)), "sender": self.sender,
                "chain_id": str(self._chain_id) if self._chain_id is not None else (self.client.chain_id or "unknown"),
                "lottery_multi": self.addresses.lottery_multi or "", "lottery": self.addresses.lottery or ""}

    def close(self) -> None:
        if self.owns_client:
            self.client.close()


def _norm_key(text: str) -> str:
    s = text.lower()
    s = s[2:] if s.startswith("0x") else s
    return "0x" + s.rjust(64, "0")


def _message(client, r) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200] or r.reason_phrase
    if isinstance(body, dict) and body.get("message") is not None:
        return str(body["message"])[:400]
    return json.dumps(body)[:200]


def open_writer(cfg, client) -> RpcWriter:
    """The writer ``cfg`` names (its key file loaded and checked now; the node's checks on first use)."""
    from dualwrite.txn import load_key_file

    if not cfg.private_key_file:
        raise InputError("writes over RPC need --private-key-file FILE (env DUALWRITE_PRIVATE_KEY_FILE)")
    signer = load_key_file(cfg.private_key_file)
    return RpcWriter(client, cfg.addresses, signer, sender=cfg.sender, max_gas=cfg.max_gas,
                     gas_unit_price=cfg.gas_unit_price, ttl=cfg.tx_ttl, retries=cfg.retries)


__all__ = ["RpcWriter", "SignedTxn", "failure_of", "node_result", "open_writer"]
