"""The embedded chain: the three modules' ABI, transactions, views, and the drills the chain does on its own.

``Chain.run`` and ``Chain.view`` take Supra-CLI arguments (``u64:5``, ``hex:ab..``) and
return what the Supra CLI prints (transaction JSON, view result values), so the
in-process backend and ``dualwrite-supra`` share one code path.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from dualwrite import layouts as L
from dualwrite.bcs import BOOL, BYTES, U8, U64, MoveType, OptionType, VectorType, parse_hex
from dualwrite.bcs.layout import RecordType
from dualwrite.bcs.types import AddressType, BoolType, BytesType, StringType, UIntType
from dualwrite.errors import DecodeError, FieldError, InputError, MoveAbort, TransactionFailed
from dualwrite.sim import modules as M
from dualwrite.sim.accounts import MODULE_HOME, Addresses, normalize_address
from dualwrite.sim.store import Store, default_state_path, u64_from_sql, u64_to_sql
from dualwrite.words import count

if TYPE_CHECKING:  # pragma: no cover
    from dualwrite.structs import LegacySummary, LotterySummary


class CliError(InputError):
    """What the real CLI reports as ``Error: ...`` before anything reaches the chain."""


@dataclass(frozen=True)
class Function:
    module: str
    name: str
    params: list[MoveType]
    impl: Callable[..., Any]
    returns: MoveType | None = None  # views only

    @property
    def is_view(self) -> bool:
        return self.returns is not None


ENTRY: list[Function] = [
    Function("legacy_bridge", "init_dual_write", [BOOL, BOOL], M.init_dual_write),
    Function("legacy_bridge", "update_flags", [BOOL, BOOL, BOOL], M.update_flags),
    Function("legacy_bridge", "set_expected_hash", [U64, BYTES], M.set_expected_hash),
    Function("legacy_bridge", "clear_expected_hash", [U64], M.clear_expected_hash),
    Function("legacy_bridge", "enable_legacy_mirror", [], M.enable_legacy_mirror),
    Function("legacy_bridge", "disable_legacy_mirror", [], M.disable_legacy_mirror),
    Function("history", "init_history", [], M.init_history),
    Function("history", "import_legacy_summary_admin", [U64, BYTES, BYTES], M.import_legacy_summary_admin),
    Function("history", "mirror_summary_admin", [U64], M.mirror_summary_admin),
    Function("history", "rollback_legacy_summary_admin", [U64], M.rollback_legacy_summary_admin),
    Function("history", "update_legacy_classification_admin", [U64, U8, U64], M.update_legacy_classification_admin),
    Function("history_bridge", "init_bridge", [], M.init_bridge),
]
VIEW: list[Function] = [
    Function("legacy_bridge", "dual_write_status", [U64], M.dual_write_status, RecordType(L.DualWriteStatus)),
    Function("legacy_bridge", "dual_write_flags", [], M.dual_write_flags, RecordType(L.DualWriteStatus)),
    Function("legacy_bridge", "pending_expected_hashes", [], M.pending_expected_hashes, VectorType(U64)),
    Function("legacy_bridge", "has_expected_hash", [U64], M.has_expected_hash, BOOL),
    Function("legacy_bridge", "is_enabled", [], M.is_enabled, BOOL),
    Function("legacy_bridge", "is_mirror_enabled", [], M.is_mirror_enabled, BOOL),
    Function("history", "get_summary", [U64], M.get_summary, RecordType(L.LotterySummary)),
    Function("history", "list_finalized", [U64, U64], M.list_finalized, VectorType(U64)),
    Function("history", "is_legacy_summary", [U64], M.is_legacy_summary, BOOL),
    Function("history_bridge", "get_summary", [U64], M.bridge_get_summary, OptionType(RecordType(L.LegacySummary))),
    Function("history_bridge", "is_initialized", [], M.bridge_initialized, BOOL),
]
FUNCTIONS: dict[tuple[str, str], Function] = {(f.module, f.name): f for f in ENTRY + VIEW}
INTERNAL = {("history", "record_summary"), ("history", "store_summary"),
            ("legacy_bridge", "notify_summary_written"), ("legacy_bridge", "mirror_summary_to_legacy"),
            ("history_bridge", "record_summary")}

CLI_ARG_TYPES = ("address", "bool", "hex", "string", "u8", "u16", "u32", "u64", "u128", "u256", "raw")


def parse_cli_arg(text: str, param: MoveType, index: int) -> Any:
    """One ``--args TYPE:VALUE`` against the function's parameter type, as the CLI and VM would take it."""
    where = f"argument {index + 1} ({text!r})"
    kind, sep, value = text.partition(":")
    if not sep or kind not in CLI_ARG_TYPES:
        raise CliError(f"Invalid arguments: {where}: expected TYPE:VALUE with TYPE one of {', '.join(CLI_ARG_TYPES)}")
    try:
        if kind == "raw":
            from dualwrite.bcs import Reader

            data = parse_hex(value, where)
            r = Reader(data)
            out = param.decode(r, where)
            if r.pos != len(data):
                raise CliError(f"Invalid arguments: {where}: trailing bytes in raw value")
            return out
        is_vec = value.startswith("[")
        if is_vec:
            items = json.loads(value)
            if not isinstance(items, list):
                raise ValueError("not a JSON array")
            if kind == "u8" and isinstance(param, BytesType):
                return bytes(_scalar("u8", str(v), U8, where) for v in items)
            if not isinstance(param, VectorType):
                raise CliError(f"Invalid arguments: {where}: a vector given for parameter of type {param.name}")
            return [_scalar(kind, v if isinstance(v, str) else json.dumps(v), param.elem, where) for v in items]
        return _scalar(kind, value, param, where)
    except (FieldError, DecodeError) as e:
        raise CliError(f"Invalid arguments: {where}: {e}") from None
    except (ValueError, json.JSONDecodeError) as e:
        raise CliError(f"Invalid arguments: {where}: {e}") from None


def _scalar(kind: str, value: str, param: MoveType, where: str) -> Any:
    def mismatch() -> CliError:
        return CliError(f"Invalid arguments: {where}: a {kind} value for a parameter of type {param.name}")

    if kind == "bool":
        if not isinstance(param, BoolType):
            raise mismatch()
        if value not in ("true", "false"):
            raise CliError(f"Invalid arguments: {where}: bool must be true or false")
        return value == "true"
    if kind.startswith("u"):
        if not isinstance(param, UIntType) or param.name != kind:
            raise mismatch()
        if not value.isascii() or not value.isdigit():
            raise CliError(f"Invalid arguments: {where}: {value!r} is not a decimal {kind}")
        n = int(value)
        if n > param.max:
            raise CliError(f"Invalid arguments: {where}: {n} does not fit in {kind}")
        return n
    if kind == "hex":
        if not isinstance(param, BytesType):
            raise mismatch()
        return parse_hex(value, where)
    if kind == "string":
        if isinstance(param, StringType):
            return value
        if isinstance(param, BytesType):
            return value.encode("utf-8")
        raise mismatch()
    if kind == "address":
        if not isinstance(param, AddressType):
            raise mismatch()
        return bytes.fromhex(normalize_address(value, where)[2:])
    raise mismatch()  # pragma: no cover


def txn_hash(*parts: Any) -> str:
    return "0x" + hashlib.sha3_256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class Chain:
    """One embedded chain, persisted in one SQLite file."""

    def __init__(self, state: Path | str | None = None, *, lottery_multi: str | None = None,
                 lottery: str | None = None, create: bool = True) -> None:
        self.store = Store(state or default_state_path(), create=create)
        self.addresses = self._addresses(lottery_multi, lottery)

    def _addresses(self, lottery_multi: str | None, lottery: str | None) -> Addresses:
        """Module addresses are fixed when a state file is created; later openers must agree."""
        stored = self.store.meta_get("addr.lottery_multi"), self.store.meta_get("addr.lottery")
        if stored[0] is not None:  # the common case: read only, no write lock
            want = Addresses(normalize_address(lottery_multi, "--lottery-multi-address") if lottery_multi else stored[0],
                             normalize_address(lottery, "--lottery-address") if lottery else stored[1])
            if (want.lottery_multi, want.lottery) != stored:
                raise InputError(
                    f"simulator state {self.store.path} was created with lottery_multi={stored[0]} "
                    f"lottery={stored[1]}; reset it to use other module addresses")
            return want
        if not self.store.create:  # an existing state without addresses: read them as the defaults, write nothing
            return Addresses(normalize_address(lottery_multi, "--lottery-multi-address") if lottery_multi else Addresses().lottery_multi,
                             normalize_address(lottery, "--lottery-address") if lottery else Addresses().lottery)
        with self.store.write():
            stored_lm = self.store.meta_get("addr.lottery_multi")
            stored_l = self.store.meta_get("addr.lottery")
            want = Addresses(
                normalize_address(lottery_multi, "--lottery-multi-address") if lottery_multi else (stored_lm or Addresses().lottery_multi),
                normalize_address(lottery, "--lottery-address") if lottery else (stored_l or Addresses().lottery),
            )
            if stored_lm is None:
                self.store.meta_set("addr.lottery_multi", want.lottery_multi)
                self.store.meta_set("addr.lottery", want.lottery)
            elif (stored_lm, stored_l) != (want.lottery_multi, want.lottery):
                raise InputError(
                    f"simulator state {self.store.path} was created with lottery_multi={stored_lm} "
                    f"lottery={stored_l}; reset it to use other module addresses"
                )
        return want

    @property
    def path(self) -> Path:
        return self.store.path

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Chain":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- function ids ----------------------------------------------------------------------------

    def resolve(self, function_id: str) -> Function:
        parts = function_id.split("::")
        if len(parts) != 3 or not all(parts):
            raise CliError(f"Invalid function id {function_id!r}: expected ADDRESS::module::function")
        addr = self.addresses.resolve(parts[0], "--function-id")
        module, name = parts[1], parts[2]
        home = MODULE_HOME.get(module)
        if home is None or addr != getattr(self.addresses, home):
            raise CliError(f"Module {addr}::{module} not found (LINKER_ERROR)")
        fn = FUNCTIONS.get((module, name))
        if fn is None:
            if (module, name) in INTERNAL:
                raise CliError(f"Function {addr}::{module}::{name} is not an entry or view function")
            raise CliError(f"Function {addr}::{module}::{name} not found (FUNCTION_RESOLUTION_FAILURE)")
        return fn

    def _args(self, fn: Function, args: list[str], type_args: list[str]) -> list[Any]:
        if type_args:
            raise CliError(f"Invalid arguments: {fn.module}::{fn.name} takes no type arguments, got {len(type_args)}")
        if len(args) != len(fn.params):
            raise CliError(
                f"Invalid arguments: {fn.module}::{fn.name} takes {count(len(fn.params), 'argument')} "
                f"({', '.join(p.name for p in fn.params) or 'none'}), got {len(args)} (NUMBER_OF_ARGUMENTS_MISMATCH)"
            )
        return [parse_cli_arg(a, p, i) for i, (a, p) in enumerate(zip(args, fn.params))]

    def _txn(self, sender: str | None) -> M.Txn:
        return M.Txn(self.store, self.addresses.lottery_multi, self.addresses.lottery, sender)

    # -- transactions ---------------------------------------------------------------------------------

    def run(self, function_id: str, args: list[str] = (), *, profile: str = "default",
            type_args: list[str] = (), max_gas: int | None = None, gas_unit_price: int | None = None) -> dict[str, Any]:
        """Execute an entry function as ``profile``; the Supra CLI's transaction JSON, or MoveAbort."""
        sender, payload, body = self._entry_call(function_id, args, profile, type_args)
        return self._execute(sender, payload, body, max_gas, gas_unit_price, user=True)

    def simulate(self, function_id: str, args: list[str] = (), *, profile: str = "default",
                 type_args: list[str] = ()) -> dict[str, Any]:
        """What ``run`` would print, without committing anything (the CLI's simulation before it asks)."""
        sender, payload, body = self._entry_call(function_id, args, profile, type_args)
        try:
            self._execute(sender, payload, body, dry_run=True)
        except _DryRun as done:
            return done.txn
        raise AssertionError("dry run committed")  # pragma: no cover

    def _entry_call(self, function_id: str, args: list[str], profile: str,
                    type_args: list[str]) -> tuple[str, dict[str, Any], Callable[[M.Txn], None]]:
        fn = self.resolve(function_id)
        if fn.is_view:
            raise CliError(f"Function {fn.module}::{fn.name} is a view function, not an entry function")
        values = self._args(fn, list(args), list(type_args))
        sender = self.addresses.account(profile)
        payload = {
            "function": f"{getattr(self.addresses, MODULE_HOME[fn.module])}::{fn.module}::{fn.name}",
            "type_arguments": [],
            "arguments": [p.to_json(v) for p, v in zip(fn.params, values)],
        }
        return sender, payload, lambda t: fn.impl(t, *values)

    def _execute(self, sender: str, payload: dict[str, Any], body: Callable[[M.Txn], None],
                 max_gas: int | None = None, gas_unit_price: int | None = None,
                 dry_run: bool = False, *, user: bool = False) -> dict[str, Any]:
        """One transaction in its own write transaction; ``user``: a user transaction (it moves the sender's
        sequence number; what the chain does on its own, finalisation, does not)."""
        with self.store.write():
            txn = self._apply(sender, payload, body, max_gas, gas_unit_price)
            if user:
                self._bump_sequence(sender)
            if dry_run:
                raise _DryRun(txn)  # rolls the write transaction back
        return txn

    def _bump_sequence(self, sender: str) -> None:
        self.store.conn.execute("INSERT INTO accounts VALUES (?, 1) ON CONFLICT(addr) DO UPDATE SET "
                                "sequence_number = sequence_number + 1", (sender,))

    def _apply(self, sender: str, payload: dict[str, Any], body: Callable[[M.Txn], None], max_gas: int | None,
               gas_unit_price: int | None, h: str | None = None) -> dict[str, Any]:
        """Run ``body`` as ``sender`` inside the caller's write transaction; commit its events, its block and its
        row (``h``: the hash it is known by, else one derived from its content)."""
        t = self._txn(sender)
        body(t)
        gas_used = 5 + 3 * len(t.events)
        if max_gas is not None and gas_used > max_gas:
            # out of gas: the chain keeps the transaction as failed; nothing it wrote stays
            raise OutOfGas(self._txn_json(sender, payload, [], gas_used, None, "OUT_OF_GAS", "Fail",
                                           max_gas, gas_unit_price))
        version = int(self.store.meta_get("version") or 0) + 1
        self.store.meta_set("version", str(version))
        h = h or txn_hash(version, sender, payload)
        block = self._new_block(version, h)
        events = []
        for account, module, event, fields in t.events:
            etype, data = M.event_json(account, module, event, fields)
            # the fully qualified type is the event handle: one stream per account, module and type
            (seq,) = self.store.conn.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE handle=?", (etype,)).fetchone()
            lottery = data.get("lottery_id", data.get("id"))
            self.store.conn.execute(
                "INSERT INTO events (version, txn_hash, handle, seq, type, data, lottery_id) VALUES (?,?,?,?,?,?,?)",
                (version, h, etype, seq, etype, json.dumps(data), None if lottery is None else u64_to_sql(int(lottery))))
            events.append({"guid": {"creation_number": "0", "account_address": account},
                           "sequence_number": str(seq), "type": etype, "data": data})
        self.store.conn.execute(
            "INSERT INTO transactions VALUES (?,?,?,?,?,?,?)",
            (version, h, sender, payload["function"], json.dumps(payload["arguments"]), gas_used,
             block["timestamp_us"]))
        return self._txn_json(sender, payload, events, gas_used, h, "Executed successfully", "Success",
                              max_gas, gas_unit_price, version, block)

    def execute_signed(self, batch: list[dict[str, Any]], *, abort_style: str = "node",
                       dry_run: bool = False) -> list[tuple[str, Any]]:
        """Transactions the emulated node accepted (signature and key checked there), run in order as their
        senders, all in one SQLite transaction (one commit for the batch), each its own savepoint. Each item
        has ``sender, function_id, values, txn_hash, sequence_number, expiration_secs, max_gas,
        gas_unit_price``; each outcome is ``("committed", status)`` — Success, or Fail (a Move abort, out of
        gas: nothing it wrote stays, but it is kept with its vm_status and its sequence number is used) —,
        ``("expired", None)`` (the clock is past its expiry: dropped, never commits), or ``("sequence", n)`` (the
        account's sequence number is n, not this one's). ``dry_run``: the simulation of one, rolled back, its
        transaction JSON as the outcome."""
        out: list[tuple[str, Any]] = []
        try:
            with self.store.write():
                for item in batch:
                    out.append(self._signed(**item, abort_style=abort_style, dry_run=dry_run))
                if dry_run:
                    raise _DryRun(self.transaction(batch[0]["txn_hash"]))
        except _DryRun as done:
            return [("committed", done.txn)]
        return out

    def _signed(self, *, sender: str, function_id: str, values: list[Any], txn_hash: str, sequence_number: int,
                expiration_secs: int, max_gas: int, gas_unit_price: int, abort_style: str,
                dry_run: bool) -> tuple[str, Any]:
        from dualwrite.sim.abort_styles import move_abort_text

        if not dry_run:
            if self.clock_us() >= expiration_secs * 1_000_000:
                return "expired", None
            n = self.sequence_number(sender)
            if n != sequence_number:
                return "sequence", n
        fn = self.resolve(function_id)
        payload = {"function": f"{getattr(self.addresses, MODULE_HOME[fn.module])}::{fn.module}::{fn.name}",
                   "type_arguments": [], "arguments": [p.to_json(v) for p, v in zip(fn.params, values)]}
        self.store.conn.execute("SAVEPOINT user_txn")
        try:
            txn = self._apply(sender, payload, lambda t: fn.impl(t, *values), max_gas, gas_unit_price, txn_hash)
            status, vm_status, gas_used, version = "Success", "Executed successfully", \
                txn["output"]["Move"]["gas_used"], txn["block_height"]
        except (MoveAbort, OutOfGas, InputError) as e:  # InputError: what the VM would not take (a bad summary)
            self.store.conn.execute("ROLLBACK TO user_txn")
            if isinstance(e, MoveAbort):
                vm_status = move_abort_text(e, "named" if abort_style.startswith("node") else abort_style)
            else:
                vm_status = "OUT_OF_GAS" if isinstance(e, OutOfGas) else f"MISCELLANEOUS_ERROR: {e}"
            gas_used = e.txn["output"]["Move"]["gas_used"] if isinstance(e, OutOfGas) else 5
            status = "Fail"
            version = int(self.store.meta_get("version") or 0) + 1  # a failed one is in a block too
            self.store.meta_set("version", str(version))
            self._new_block(version, txn_hash)
        self.store.conn.execute("RELEASE user_txn")
        self._bump_sequence(sender)
        self.store.conn.execute(
            "INSERT INTO node_txns VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (txn_hash, sender, sequence_number, status, vm_status, version, gas_used, max_gas, gas_unit_price,
             expiration_secs, payload["function"], json.dumps(payload["arguments"])))
        return "committed", status

    def _txn_json(self, sender: str, payload: dict, events: list, gas_used: int, h: str | None, vm_status: str,
                  status: str, max_gas: int | None, gas_unit_price: int | None, version: int | None = None,
                  block: dict | None = None) -> dict:
        now_us = block["timestamp_us"] if block else self.clock_us()
        return {
            "hash": h or txn_hash("failed", sender, payload, now_us),
            "header": {"sender": sender, "sequence_number": version or 0, "max_gas_amount": max_gas or 500000,
                       "gas_unit_price": gas_unit_price or 100, "expiration_timestamp_secs": now_us // 1_000_000 + 300,
                       "chain_id": CHAIN_ID},
            "payload": {"Move": payload},
            "output": {"Move": {"gas_used": gas_used, "events": events, "vm_status": vm_status}},
            "status": status,
            "block_height": version,
            "block_header": block_header(block) if block else None,
        }

    # -- blocks and the clock ----------------------------------------------------------------------------

    def clock_us(self) -> int:
        """The simulator's clock: wall time plus every ``advance``, never behind the last block."""
        offset = int(self.store.meta_get("clock_offset_us") or 0)
        row = self.store.conn.execute("SELECT timestamp_us FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        return max(int(time.time() * 1e6) + offset, row[0] if row else 0)

    def _new_block(self, height: int, h: str | None) -> dict[str, Any]:
        """The block that carries transaction ``h`` (or none: an empty block); inside a write transaction."""
        prev = self.store.conn.execute("SELECT hash, timestamp_us FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        parent, last_ts = (prev[0], prev[1]) if prev else ("0x" + "00" * 32, 0)
        ts = max(self.clock_us(), last_ts + 1)  # strictly increasing, as the node's are
        bh = txn_hash("block", height, ts, h)
        self.store.conn.execute("INSERT INTO blocks VALUES (?,?,?,?,?)", (height, bh, parent, ts, h))
        return {"height": height, "hash": bh, "parent": parent, "timestamp_us": ts, "txn_hash": h}

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the clock forward; the chain produces an (empty) block at the new time, as a live node would."""
        if seconds < 0:
            raise InputError("the simulator's clock only moves forward")
        with self.store.write():
            offset = int(self.store.meta_get("clock_offset_us") or 0) + int(seconds * 1e6)
            self.store.meta_set("clock_offset_us", str(offset))
            version = int(self.store.meta_get("version") or 0) + 1
            self.store.meta_set("version", str(version))
            return self._new_block(version, None)

    def block(self, height: int | None = None) -> dict[str, Any] | None:
        """A block by height (None: the latest), with its transaction hash (None for an empty block)."""
        if height is None:
            row = self.store.conn.execute(
                "SELECT height, hash, parent, timestamp_us, txn_hash FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        else:
            row = self.store.conn.execute(
                "SELECT height, hash, parent, timestamp_us, txn_hash FROM blocks WHERE height=?", (height,)).fetchone()
        if row is None:
            return None
        return dict(zip(("height", "hash", "parent", "timestamp_us", "txn_hash"), row))

    def transaction(self, h: str) -> dict[str, Any] | None:
        """A committed transaction by hash, as the node serves it (events rebuilt from the log); one signed
        and submitted through the node with its own header (sequence number, gas, expiry) and status."""
        node = self.store.conn.execute(
            "SELECT sender, sequence_number, status, vm_status, version, gas_used, max_gas, gas_unit_price, "
            "expiration_secs, function, arguments FROM node_txns WHERE hash=?", (h.lower(),)).fetchone()
        if node is not None:
            sender, seq, status, vm_status, version, gas_used, max_gas, price, expiry, function, arguments = node
            payload = {"function": function, "type_arguments": [], "arguments": json.loads(arguments)}
            events = self._events_of(version) if status == "Success" else []
            txn = self._txn_json(sender, payload, events, gas_used, h.lower(), vm_status, status, max_gas, price,
                                 version, self.block(version))
            txn["header"].update(sequence_number=seq, expiration_timestamp_secs=expiry)
            return txn
        row = self.store.conn.execute(
            "SELECT version, hash, sender, function, arguments, gas_used FROM transactions WHERE hash=?",
            (h.lower(),)).fetchone()
        if row is None:
            return None
        version, h, sender, function, arguments, gas_used = row
        events = self._events_of(version)
        payload = {"function": function, "type_arguments": [], "arguments": json.loads(arguments)}
        return self._txn_json(sender, payload, events, gas_used, h, "Executed successfully", "Success",
                              None, None, version, self.block(version))

    def _events_of(self, version: int) -> list[dict[str, Any]]:
        return [{"guid": {"creation_number": "0", "account_address": ty.split("::", 1)[0]},
                 "sequence_number": str(seq), "type": ty, "data": json.loads(d)}
                for seq, ty, d in self.store.conn.execute(
                    "SELECT seq, type, data FROM events WHERE version=? ORDER BY id", (version,))]

    def sequence_number(self, account: str) -> int:
        """The account's next sequence number: how many user transactions it has sent (a failed one counts)."""
        row = self.store.conn.execute("SELECT sequence_number FROM accounts WHERE addr=?", (account,)).fetchone()
        return row[0] if row else 0

    def view(self, function_id: str, args: list[str] = (), *, type_args: list[str] = ()) -> list[Any]:
        """Call a view function; the ``result`` array in Move JSON, or MoveAbort."""
        fn = self.resolve(function_id)
        if not fn.is_view:
            raise CliError(f"Function {fn.module}::{fn.name} is not a view function")
        values = self._args(fn, list(args), list(type_args))
        with self.store.read():
            out = fn.impl(self._txn(None), *values)
        return [fn.returns.to_json(out)]  # type: ignore[union-attr]

    # -- what the chain does on its own (lottery finalisation) and drills ------------------------------

    def finalize(self, summary: LotterySummary) -> dict[str, Any]:
        """``history::record_summary`` for one summary, as finalisation does: its own transaction."""
        payload = {"function": f"{self.addresses.lottery_multi}::history::record_summary",
                   "type_arguments": [], "arguments": [str(summary.id), summary.to_move_json()]}
        return self._execute(self.addresses.lottery_multi, payload,
                             lambda t: M.record_summary(t, summary.id, summary))

    def legacy_raw(self, lottery_id: int) -> LegacySummary | None:
        with self.store.read():
            return M.bridge_get_summary(self._txn(None), lottery_id)

    def write_legacy_raw(self, lottery_id: int, value: LegacySummary | None) -> None:
        """Drills only: overwrite or delete a legacy copy behind the chain's back (no event, no version)."""
        with self.store.write():
            if value is None:
                self.store.conn.execute("DELETE FROM legacy WHERE lottery_id=?", (u64_to_sql(lottery_id),))
            else:
                self.store.conn.execute(
                    "INSERT INTO legacy VALUES (?, ?) ON CONFLICT(lottery_id) DO UPDATE SET value=excluded.value",
                    (u64_to_sql(lottery_id), value.to_bcs()))

    def events(self, type_name: str | None = None, lottery_id: int | None = None,
               limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, version, txn_hash, seq, type, data FROM events"
        where, params = [], []
        if type_name:
            # the fully qualified type, or its tail after a "::" (exact and case-sensitive, no LIKE wildcards)
            suffix = "::" + type_name
            where.append("(type = ? OR substr(type, -?) = ?)")
            params += [type_name, len(suffix), suffix]
        if lottery_id is not None:
            where.append("lottery_id = ?")
            params.append(u64_to_sql(lottery_id))
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit:
            # the last N, still oldest first (emission order within a transaction kept)
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT {int(limit)}) ORDER BY id"
        else:
            sql += " ORDER BY id"
        rows = self.store.conn.execute(sql, params).fetchall()
        return [{"version": v, "transaction_hash": h, "sequence_number": str(seq), "type": ty, "data": json.loads(d)}
                for _id, v, h, seq, ty, d in rows]

    def events_page(self, event_type: str, start_height: int | None = None, end_height: int | None = None,
                    limit: int = 20, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``GET /rpc/v3/events/{type}``: events of exactly that type with
        ``start_height <= height < end_height``, oldest first, and the next page's cursor (None at the end).

        The cursor is opaque to clients (the position after the page's last event)."""
        after = decode_cursor(cursor) if cursor else 0
        sql = ("SELECT id, version, txn_hash, seq, type, data FROM events WHERE type = ? AND id > ?"
               + (" AND version >= ?" if start_height is not None else "")
               + (" AND version < ?" if end_height is not None else "") + " ORDER BY id LIMIT ?")
        params: list[Any] = [event_type, after]
        params += [h for h in (start_height, end_height) if h is not None]
        rows = self.store.conn.execute(sql, [*params, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        data = [{"event": {"guid": {"creation_number": "0", "account_address": ty.split("::", 1)[0]},
                           "sequence_number": str(seq), "type": ty, "data": json.loads(d)},
                 "block_height": v, "transaction_hash": h}
                for _id, v, h, seq, ty, d in rows]
        return data, (encode_cursor(rows[-1][0]) if more else None)

    def last_event_time(self, type_name: str, lottery_id: int) -> float | None:
        """Commit time (unix seconds) of the newest event of that type for that lottery."""
        suffix = "::" + type_name
        row = self.store.conn.execute(
            "SELECT b.timestamp_us FROM events e JOIN blocks b ON b.height = e.version "
            "WHERE e.lottery_id = ? AND (e.type = ? OR substr(e.type, -?) = ?) ORDER BY e.id DESC LIMIT 1",
            (u64_to_sql(lottery_id), type_name, len(suffix), suffix)).fetchone()
        return None if row is None else row[0] / 1e6

    def version(self) -> int:
        return int(self.store.meta_get("version") or 0)

    def info(self) -> dict[str, Any]:
        return {
            "state": str(self.store.path),
            "version": self.version(),
            "modules": {
                "lottery_multi": self.addresses.lottery_multi,
                "lottery": self.addresses.lottery,
                "legacy_bridge": f"{self.addresses.lottery_multi}::legacy_bridge",
                "history": f"{self.addresses.lottery_multi}::history",
                "history_bridge": f"{self.addresses.lottery}::history_bridge",
            },
            "profiles": self.addresses.profiles(),
        }


CHAIN_ID = 255  # the simulator's chain id (x-supra-chain-id)


def encode_cursor(event_id: int) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps({"after": event_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position an ``encode_cursor`` cursor names; InputError for anything else."""
    import base64

    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = doc["after"]
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValueError(after)
        return after
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InputError(f"invalid cursor {cursor[:40]!r}") from None


def block_header(block: dict[str, Any]) -> dict[str, Any]:
    """A ``BlockHeaderInfo`` as the node renders it (supra-cli.md, "RPC node")."""
    from datetime import datetime, timezone

    ts = block["timestamp_us"]
    utc = datetime.fromtimestamp(ts // 1_000_000, timezone.utc).replace(microsecond=ts % 1_000_000)
    return {"author": "0x" + "00" * 31 + "01", "hash": block["hash"], "height": block["height"],
            "parent": block["parent"], "timestamp": {"microseconds_since_unix_epoch": ts,
                                                     "utc_date_time": utc.isoformat()},
            "view": block["height"]}


class _DryRun(Exception):
    """Carries a simulated transaction's JSON out of the write transaction, which it rolls back."""

    def __init__(self, txn: dict[str, Any]) -> None:
        super().__init__("dry run")
        self.txn = txn


class OutOfGas(TransactionFailed):
    """A transaction that ran out of gas: kept by the chain as failed, with nothing it wrote.

    Carries the transaction JSON so ``dualwrite-supra`` prints it as the node would.
    """

    def __init__(self, txn: dict[str, Any]) -> None:
        super().__init__("Fail", txn_hash=txn["hash"], detail="OUT_OF_GAS")
        self.txn = txn

__all__ = ["Chain", "CliError", "OutOfGas", "FUNCTIONS", "ENTRY", "VIEW", "MoveAbort", "u64_from_sql"]
